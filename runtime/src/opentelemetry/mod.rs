//! Traced work in the caller's OpenTelemetry trace (feature `opentelemetry`).
//!
//! A service traced with OpenTelemetry has its request in an OpenTelemetry span, current in the
//! OpenTelemetry [`Context`] of the handler's thread. Under sentry's OpenTelemetry integration
//! (`sentry::integrations::opentelemetry`: its `SentrySpanProcessor` and `SentryPropagator`,
//! the supported way to use OpenTelemetry with Sentry in Rust), the Sentry transaction of that
//! span is kept in the integration's own map, not in Sentry's scope: the scope has no active span.
//! Without this feature a continuation would then hang from the scope's propagation context, a
//! trace unrelated to the request's, and OpenTelemetry spans opened in the body would start
//! traces of their own. With it:
//!
//! - **Capture**: when Sentry's scope has no active span, the continuation hangs from the current
//!   OpenTelemetry span: its trace id, its span id as the parent, and its sampled flag. The
//!   continuation transaction is then in the request's trace, a child of the request's span (the
//!   integration gives a Sentry span the id of its OpenTelemetry span). A request that continues
//!   incoming `sentry-trace` headers through `SentryPropagator` is, in Sentry, in the incoming
//!   trace (not in its OpenTelemetry span's own trace id): so is the continuation, with the
//!   incoming sampling decision when it has one. Sentry's own active span, when there is one,
//!   wins: it is what the continuation hangs from, as without the feature.
//! - **Body**: the caller's OpenTelemetry `Context` is attached around the body (once on a
//!   thread, around each poll of a task), so spans opened in it through the OpenTelemetry API are
//!   children of the caller's span, in its trace, whatever exports them.
//!
//! Nothing is to be called: turn the feature on, and every traced spawn, [`Builder`] and
//! [`TraceContext`] run or future does it.
//!
//! ```
//! use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
//! use opentelemetry::Context;
//! use traced_spawn::traced_spawn;
//!
//! #[traced_spawn]
//! fn generate_answer(question: String) -> TraceId {
//!     // OpenTelemetry spans started here are children of the caller's span.
//!     Context::current().span().span_context().trace_id()
//! }
//!
//! // The request's span, as the service's OpenTelemetry layer makes it current.
//! let request = SpanContext::new(
//!     TraceId::from_hex("771a43a4192642f0b136d5159a501700").unwrap(),
//!     SpanId::from_hex("b7ad6b7169203331").unwrap(),
//!     TraceFlags::SAMPLED,
//!     true,
//!     TraceState::default(),
//! );
//! let _request = Context::new().with_remote_span_context(request.clone()).attach();
//!
//! // A Sentry client with no active Sentry span, as under sentry-opentelemetry.
//! let transport = sentry::test::TestTransport::new();
//! let _guard = sentry::init(
//!     sentry::ClientOptions::new()
//!         .dsn("https://public@o1.ingest.sentry.io/1")
//!         .transport(transport.clone())
//!         .traces_sample_rate(1.0),
//! );
//! let ctx = traced_spawn::TraceContext::capture();
//! assert_eq!(ctx.trace_id().unwrap().to_string(), request.trace_id().to_string());
//! assert_eq!(ctx.parent_span_id().unwrap().to_string(), request.span_id().to_string());
//!
//! let in_body = generate_answer("why?".into()).join().unwrap();
//! assert_eq!(in_body, request.trace_id());
//! ```
//!
//! Setting up sentry's integration is as its documentation shows: `SentryPropagator` as the text
//! map propagator, and `SentrySpanProcessor` in the SDK's tracer provider, with a Sentry client
//! bound (`traces_sample_rate` or `traces_sampler` set).
//!
//! # Version
//!
//! The `Context` read and attached is the one of `opentelemetry` 0.32, the version
//! sentry-opentelemetry 0.49 builds on. An application must use that version for its spans
//! (`cargo tree -i opentelemetry` lists one version): another major version is another crate,
//! with a current `Context` of its own, which this feature does not see.
//!
//! # Sentry and the spans of the body
//!
//! The continuation is Sentry's active span inside the body, so Sentry spans, errors and nested
//! traced spawns of the body belong to it. OpenTelemetry spans of the body go where the
//! OpenTelemetry parent puts them: with sentry-opentelemetry's processor, a span opened while the
//! caller's span is still open becomes a Sentry child span of the caller's (sentry drops it if
//! the caller's transaction was sent before it finishes), and one opened after becomes a
//! transaction of its own in the same trace. The integration keeps its spans apart from Sentry's
//! scope, so they are never children of the continuation; its event processor likewise links
//! events to the caller's span while that span is open. For work that outlives the request, open
//! the body's spans with sentry's API (or `#[tracing::instrument]` with sentry-tracing).
//!
//! # What is carried
//!
//! - A context captured with an OpenTelemetry span current carries it, with or without a Sentry
//!   client bound: with none, the body still runs inside the caller's `Context` (no hub, no
//!   transaction).
//! - A context rebuilt from headers or serde carries none: its caller is in another process.
//! - An OpenTelemetry span that is not sampled (dropped by the OpenTelemetry sampler) leaves the
//!   continuation unsampled: sentry-opentelemetry records nothing for it either.
//! - Code that keeps its OpenTelemetry context in `tracing` spans (tracing-opentelemetry) has it
//!   in the `tracing` span rather than in the current `Context`: feature `tracing` runs the body
//!   inside the caller's `tracing` span.
//!
//! # Cost
//!
//! With no OpenTelemetry span current, one thread-local read at capture (OpenTelemetry's current
//! `Context`), and nothing where the body runs. With one, the `Context` is kept (reference
//! counts, boxed: a context or a traced future grows by one pointer), and attached once per run
//! or poll (a push and a pop on OpenTelemetry's thread-local stack).
//!
//! [`Builder`]: crate::Builder
//! [`TraceContext`]: crate::TraceContext

use ::opentelemetry::trace::TraceContextExt as _;
use ::opentelemetry::{Context, ContextGuard};
use sentry::{TracePropagationContext, TransactionContext};

use crate::ids::Parent;

/// The OpenTelemetry `Context` current where a context was captured, when it had a span; none
/// otherwise. Boxed: a context or a future with none grows by one pointer.
#[derive(Clone, Default)]
pub(crate) struct CallerContext(Option<Box<Context>>);

impl CallerContext {
    /// The `Context` current on this thread, if it has a span: one thread-local read.
    #[inline]
    pub(crate) fn current() -> CallerContext {
        CallerContext(Context::map_current(|cx| {
            cx.has_active_span().then(|| Box::new(cx.clone()))
        }))
    }

    /// `true` when there is no `Context` to run the body in.
    #[inline]
    pub(crate) fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// The parent a continuation hangs from when Sentry's scope has no active span: the span's
    /// trace id, span id and sampled flag. A span that continues incoming `sentry-trace` headers
    /// (extracted by sentry-opentelemetry's propagator) is in their trace in Sentry, and keeps
    /// their sampling decision.
    pub(crate) fn parent(&self) -> Option<Parent> {
        let cx = self.0.as_deref()?;
        let span = cx.span();
        let ids = span.span_context();
        if !ids.is_valid() {
            return None;
        }
        let sampled = ids.is_sampled();
        let (trace_id, sampled) = match cx.get::<TracePropagationContext>() {
            Some(incoming) => {
                let incoming = TransactionContext::continue_from_trace_propagation_context(
                    "", "", incoming, None,
                );
                (
                    incoming.trace_id(),
                    sampled && incoming.sampled() != Some(false),
                )
            }
            None => (ids.trace_id().to_bytes().into(), sampled),
        };
        Some(Parent {
            trace_id,
            span_id: ids.span_id().to_bytes().into(),
            sampled: Some(sampled),
        })
    }

    /// Attaches the caller's `Context` for one run or poll.
    #[inline]
    pub(crate) fn attach(&self) -> Option<ContextGuard> {
        self.0.as_deref().map(|cx| cx.clone().attach())
    }

    /// Attaches the caller's `Context` until the guard drops, for a body that runs once.
    #[inline]
    pub(crate) fn attached(self) -> Option<ContextGuard> {
        self.0.map(|cx| (*cx).attach())
    }
}
