//! Traced work inside the caller's `tracing` span (feature `tracing`).
//!
//! Services that log with [`tracing`](https://docs.rs/tracing) put the request's fields on a
//! span (`#[tracing::instrument(fields(request_id))]` on the handler), and every line logged
//! inside it carries them. Work moved to another thread or task leaves that span: its lines lose
//! the fields. With this feature, a traced body runs inside the span that was current where its
//! context was captured (the caller's, at the spawning call), so its lines keep them:
//!
//! ```text
//! before:  INFO app: generating answer
//! after:   INFO handle{request_id=42}:traced_spawn: app: generating answer
//! ```
//!
//! Nothing is to be called: turn the feature on, and every traced spawn, [`Builder`] and
//! [`TraceContext`] run or future does it.
//!
//! ```
//! use traced_spawn::traced_spawn;
//!
//! #[traced_spawn]
//! fn generate_answer(question: String) -> usize {
//!     // With a fmt layer installed, this line reads
//!     // `INFO handle{request_id=42}:traced_spawn: app: generating answer`.
//!     tracing::info!("generating answer");
//!     question.len()
//! }
//!
//! // A handler, inside its request's span (`#[tracing::instrument(fields(request_id))]`):
//! let span = tracing::info_span!("handle", request_id = 42);
//! let handle = span.in_scope(|| generate_answer("why?".into()));
//! assert_eq!(handle.join().unwrap(), 4);
//! ```
//!
//! # How
//!
//! The `tracing` span current at capture is kept with the context (a reference count). Where
//! the body runs, a span of this crate, `traced_spawn`, is made with the caller's span as its
//! parent, and entered around the body: once on a thread, around each poll of a task. fmt layers
//! (and any layer that reads the span scope) print the caller's spans, with their fields, before
//! `traced_spawn:`; `#[tracing::instrument]` spans of the body are children of it.
//!
//! The caller's span itself is never entered on another thread. With sentry-tracing, entering a
//! span makes the Sentry span made for it the active span again, in a fork of the hub it was
//! made in: spans opened in the body would become children of the request's Sentry span, and be
//! lost with its transaction, finished long before (`.in_current_span()` does exactly that;
//! sentry-rust issues 863 and 946). Sentry parenting stays the continuation's: the continuation
//! hangs from the caller's active span, and spans opened in the body belong to the continuation.
//!
//! `traced_spawn` is made under a hub with no client, so the span sentry-tracing makes of it is a
//! no-op that records and sends nothing, and the hub sentry-tracing switches to when it is
//! entered is replaced, inside it, by the continuation's. Nothing of it reaches Sentry.
//!
//! # Lifetime of the caller's span
//!
//! `tracing` closes a span when its last handle and its last child are gone, so the caller's span
//! stays open until the body ends (as it does under `.in_current_span()`): nothing else can keep
//! its fields readable by the body's lines. sentry-tracing finishes the Sentry span it made of a
//! `tracing` span when that span closes, so that Sentry span ends when the body ends:
//!
//! - a handler's span that sentry-tracing made a child span of the request's transaction (the
//!   transaction of sentry's tower layer, say) finishes after that transaction was sent, and
//!   sentry drops it; the continuation still hangs from its id;
//! - a request span that sentry-tracing made a transaction of (no transaction bound when it was
//!   opened) is sent when the body ends, its duration covering the body.
//!
//! Work that outlives the request is what this crate is for, so with sentry-tracing this is the
//! usual case: it is the price of the request's fields on the body's lines.
//!
//! # Cost
//!
//! Outside any span, or with no subscriber, nothing is made: at capture, one atomic load (no
//! subscriber ever installed) or one read of the current span. Inside a span, `traced_spawn` is
//! one `tracing` span in the installed subscriber, made, entered once per run or poll, and
//! closed; with sentry-tracing's span layer and a fmt layer, a tokio task spawned and awaited
//! costs about 2 µs more than the same spawn outside any span, 0.8x the by-hand
//! `.in_current_span()` (`cargo bench -p traced-spawn-tests --bench tracing_overhead`). A
//! context, and a traced future, is one pointer larger.
//!
//! # Filters and levels
//!
//! `traced_spawn` has target `traced_spawn` and level `ERROR`, the one level every level filter
//! lets through, so it exists wherever the caller's span does. A filter that turns targets off
//! one by one (`RUST_LOG=app=debug`, with no default) turns it off too: add `traced_spawn=error`
//! (or a default level) to keep the caller's fields on the body's lines.
//!
//! # What is carried
//!
//! - A context captured outside any span, or with no subscriber installed, carries nothing: the
//!   body runs as it did without the feature.
//! - A context rebuilt from headers or serde carries no span: its caller is in another process.
//! - With no Sentry client bound, the body still runs inside the caller's span (no hub, no
//!   transaction: only the span).
//! - The body's lines go to the subscriber of the thread that runs it; `traced_spawn` is made in
//!   the caller's span's subscriber.
//!
//! [`Builder`]: crate::Builder
//! [`TraceContext`]: crate::TraceContext

use std::sync::{Arc, OnceLock};

use ::tracing::span::{Entered, EnteredSpan};
use ::tracing::Span;
use sentry::{Hub, HubSwitchGuard};

/// The `tracing` span current where a context was captured (none outside any span, or with no
/// subscriber), and once the body ran, the body's span under it. Boxed: a context or a future
/// with no span grows by one pointer.
#[derive(Clone, Default)]
pub(crate) struct CallerSpan(Option<Box<Carried>>);

#[derive(Clone)]
struct Carried {
    /// The caller's span until `made`, then the body's span, `traced_spawn`.
    span: Span,
    made: bool,
}

impl CallerSpan {
    /// The span current on this thread. With no subscriber ever installed, one atomic load.
    #[inline]
    pub(crate) fn current() -> CallerSpan {
        if !::tracing::dispatcher::has_been_set() {
            return CallerSpan(None);
        }
        let span = Span::current();
        CallerSpan((!span.is_none()).then(|| Box::new(Carried { span, made: false })))
    }

    /// `true` when there is no span to run the body in.
    #[inline]
    pub(crate) fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// Enters the body's span for one run or poll; made at the first, on the thread that runs
    /// the body.
    ///
    /// Entered before the continuation's hub is switched to: sentry-tracing switches to a hub of
    /// its own when a span it knows is entered, and the continuation's replaces it inside.
    #[inline]
    pub(crate) fn enter(&mut self) -> Option<Entered<'_>> {
        let carried = self.0.as_deref_mut()?;
        if !carried.made {
            carried.span = child_of(&carried.span);
            carried.made = true;
        }
        Some(carried.span.enter())
    }

    /// Enters the body's span again if the body ran: around the drop of a body polled before.
    #[inline]
    pub(crate) fn resume(&self) -> Option<Entered<'_>> {
        let carried = self.0.as_deref()?;
        carried.made.then(|| carried.span.enter())
    }

    /// Makes and enters the body's span, for a body that runs once, until the guard drops.
    #[inline]
    pub(crate) fn entered(self) -> Option<EnteredSpan> {
        let Carried { span, made } = *self.0?;
        Some(if made { span } else { child_of(&span) }.entered())
    }
}

/// `traced_spawn`, a child of `caller`, made in `caller`'s subscriber under a hub with no client.
fn child_of(caller: &Span) -> Span {
    let _no_client = HubSwitchGuard::new(no_client());
    caller
        .with_subscriber(|(_, dispatch)| {
            ::tracing::dispatcher::with_default(
                dispatch,
                || ::tracing::error_span!(target: "traced_spawn", parent: caller, "traced_spawn"),
            )
        })
        .unwrap_or_else(Span::none)
}

/// A hub with no client: what sentry-tracing makes of a span under it records nothing.
fn no_client() -> Arc<Hub> {
    static HUB: OnceLock<Arc<Hub>> = OnceLock::new();
    HUB.get_or_init(|| Arc::new(Hub::new(None, Arc::default())))
        .clone()
}
