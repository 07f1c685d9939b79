//! The caller's trace context, captured at spawn time.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use sentry::protocol::{SpanId, TraceId};
use sentry::{Hub, Scope, TransactionContext, TransactionOrSpan};

use crate::carried::{carried, Propagated};
use crate::ids::{self, Parent};

/// The caller's trace, captured on the calling thread, to be continued somewhere else.
///
/// A `TraceContext` holds a snapshot of the caller's [`Hub`] (client and scope, including the
/// active span) taken by [`TraceContext::capture`], and the point the continuation hangs from:
/// the trace id, parent span id and sampling decision, read once from the caller's scope at
/// capture. The snapshot is copy-on-write, so what the caller changes afterwards does not affect
/// it, and neither the snapshot nor the parent ever change.
///
/// When no Sentry client is bound at capture time the context is *empty*: continuing it runs the
/// body as it is, with no hub and no transaction.
///
/// A context is cheap to clone (one reference count) and can be sent to any thread. Each
/// continuation of it runs in its own hub, forked from the snapshot.
///
/// ```
/// use traced_spawn::TraceContext;
///
/// let ctx = TraceContext::capture(); // no client bound in this example: an empty context
/// assert!(ctx.is_empty());
/// let answer = std::thread::spawn(move || ctx.run("worker::answer", "thread", || 42))
///     .join()
///     .unwrap();
/// assert_eq!(answer, 42);
/// ```
#[derive(Clone, Default)]
pub struct TraceContext {
    /// Where the context comes from, and the point its continuation hangs from.
    pub(crate) origin: Origin,
    /// What the trace carries across processes besides its ids (incoming baggage, `tracestate`):
    /// read from headers for a remote context; for a captured one, inherited from the
    /// continuation it was captured in. `None` when there is nothing of the kind.
    pub(crate) propagated: Option<Arc<Propagated>>,
    pub(crate) captured_at: Option<Instant>,
    /// The `tracing` span current at capture, which the body runs inside (feature `tracing`).
    #[cfg(feature = "tracing")]
    pub(crate) tracing: crate::tracing::CallerSpan,
    /// The OpenTelemetry `Context` current at capture, which the body runs inside (feature
    /// `opentelemetry`).
    #[cfg(feature = "opentelemetry")]
    pub(crate) otel: crate::opentelemetry::CallerContext,
}

/// Where a context comes from: what its continuation forks its hub from and hangs from.
#[derive(Clone, Default)]
pub(crate) enum Origin {
    /// Nothing to continue: no client was bound at capture (or the default context).
    #[default]
    Empty,
    /// Captured in this process: a fork of the caller's hub (client and scope, copy-on-write),
    /// and the caller's active span, else its propagation context (`None`: neither was found).
    Captured {
        hub: Arc<Hub>,
        anchor: Option<Anchor>,
    },
    /// Rebuilt from headers or serde: the parent in another process, continued under Sentry's
    /// org rule; the hub of the thread that hands the context on, once it is anchored there
    /// (see [`TraceContext::anchored`]), else the hub current where it runs.
    Remote {
        parent: Parent,
        hub: Option<Arc<Hub>>,
    },
}

/// What a continuation hangs from, as the capture found it.
#[derive(Clone)]
pub(crate) enum Anchor {
    /// The caller's active span. The span itself is kept (one reference count): its ids are read
    /// only when they are asked for, and a continuation starts from it the way sentry's
    /// `continue_from_span` does.
    Span {
        span: TransactionOrSpan,
        /// Whether the span's trace is sent, read at capture: a continuation under a span that
        /// is not sent records nothing.
        sent: bool,
    },
    /// A parent known by its ids: the caller's propagation context when it had no active span,
    /// or a parent in another process.
    Ids(Parent),
}

impl Anchor {
    /// The anchor of a continuation of `scope`: its active span, or else its propagation context
    /// (the trace its errors are reported in).
    fn of_scope(scope: &Scope) -> Option<Anchor> {
        match scope.get_span() {
            Some(span) => {
                // Whether finishing a span of this trace sends it: sampled, with tracing enabled.
                // That is the question here (sentry deprecates the call as an answer to "was
                // the trace sampled", which headers answer), and it takes no id or allocation.
                #[allow(deprecated)]
                let sent = span.is_sampled();
                Some(Anchor::Span { span, sent })
            }
            None => scope
                .iter_trace_propagation_headers()
                .find_map(|(_, value)| ids::parse(&value).ok())
                .map(Anchor::Ids),
        }
    }

    /// Whether an in-process continuation of this anchor records anything. A span that is not
    /// sent is unsampled, or its client has tracing disabled: either way the continuation, in the
    /// same client, would send nothing.
    pub(crate) fn records(&self) -> bool {
        match self {
            Anchor::Span { sent, .. } => *sent,
            Anchor::Ids(parent) => parent.sampled != Some(false),
        }
    }

    /// The anchor's ids.
    pub(crate) fn parent(&self) -> Parent {
        let span = match self {
            Anchor::Span { span, .. } => span,
            Anchor::Ids(parent) => return *parent,
        };
        let span_id = match span {
            TransactionOrSpan::Transaction(tx) => tx.get_trace_context().span_id,
            TransactionOrSpan::Span(span) => span.get_span_id(),
        };
        let ctx = TransactionContext::continue_from_span("", "", Some(span.clone()));
        Parent {
            trace_id: ctx.trace_id(),
            span_id,
            sampled: ctx.sampled(),
        }
    }
}

impl TraceContext {
    /// Captures the current hub and its active span on the calling thread.
    ///
    /// With no client bound (or a disabled one) this returns an empty context at the cost of one
    /// thread-local read. Otherwise it reads the caller's scope once (sentry's `configure_scope`,
    /// as its own docs show for work handed to another thread) for the parent and its sampling
    /// decision, and forks the hub. Under an unsampled parent nothing else is paid: no clock is
    /// read, because nothing will be recorded.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use traced_spawn::TraceContext;
    ///
    /// let transport = sentry::test::TestTransport::new();
    /// let mut options = sentry::ClientOptions::new().traces_sample_rate(1.0);
    /// options.dsn = Some("https://public@sentry.invalid/1".parse().unwrap());
    /// options.transport = Some(Arc::new(transport.clone()));
    /// let hub = Arc::new(sentry::Hub::new(Some(Arc::new(options.into())), Default::default()));
    /// sentry::Hub::run(hub, || {
    ///     let tx = sentry::start_transaction(sentry::TransactionContext::new("request", "http.server"));
    ///     sentry::configure_scope(|scope| scope.set_span(Some(tx.clone().into())));
    ///
    ///     let ctx = TraceContext::capture();
    ///     assert_eq!(ctx.trace_id(), Some(tx.get_trace_context().trace_id));
    ///     assert_eq!(ctx.parent_span_id(), Some(tx.get_trace_context().span_id));
    ///     assert_eq!(ctx.sampled(), Some(true));
    ///     tx.finish();
    /// });
    /// ```
    #[must_use]
    pub fn capture() -> TraceContext {
        #[cfg(feature = "opentelemetry")]
        let otel = crate::opentelemetry::CallerContext::current();
        let ctx = Hub::with_active(|hub| {
            // Read before the fork shares the caller's scope: reading a shared scope copies it.
            let anchor = hub.configure_scope(|scope| Anchor::of_scope(scope));
            // With no active Sentry span, the current OpenTelemetry span, if any.
            #[cfg(feature = "opentelemetry")]
            let anchor = match anchor {
                Some(Anchor::Span { .. }) => anchor,
                _ => otel.parent().map(Anchor::Ids).or(anchor),
            };
            let recorded = anchor.as_ref().is_none_or(Anchor::records);
            TraceContext {
                origin: Origin::Captured {
                    hub: Arc::new(Hub::new_from_top(hub)),
                    anchor,
                },
                propagated: carried(),
                captured_at: recorded.then(Instant::now),
                #[cfg(feature = "tracing")]
                tracing: Default::default(),
                #[cfg(feature = "opentelemetry")]
                otel: Default::default(),
            }
        });
        // With a client bound or not: the body runs inside the caller's `tracing` span.
        #[cfg(feature = "tracing")]
        let ctx = TraceContext {
            tracing: crate::tracing::CallerSpan::current(),
            ..ctx
        };
        // With a client bound or not: the body runs inside the caller's OpenTelemetry `Context`.
        #[cfg(feature = "opentelemetry")]
        let ctx = TraceContext { otel, ..ctx };
        ctx
    }

    /// What [`TraceContext::capture`] gives while `span` is the active span of the current scope
    /// (for a span opened to wrap an outgoing call: a `queue.publish`, an `http.client`), so
    /// what is continued from it hangs under that span; the scope's own with `None`.
    pub(crate) fn capture_under(span: Option<&TransactionOrSpan>) -> TraceContext {
        let Some(span) = span else {
            return TraceContext::capture();
        };
        let previous = sentry::configure_scope(|scope| {
            let previous = scope.get_span();
            scope.set_span(Some(span.clone()));
            previous
        });
        let ctx = TraceContext::capture();
        sentry::configure_scope(|scope| scope.set_span(previous));
        ctx
    }

    /// A context rebuilt from a parent outside this process (headers, a job payload).
    pub(crate) fn from_remote(parent: Parent, propagated: Option<Arc<Propagated>>) -> TraceContext {
        TraceContext {
            origin: Origin::Remote { parent, hub: None },
            propagated,
            captured_at: Some(Instant::now()),
            #[cfg(feature = "tracing")]
            tracing: Default::default(),
            #[cfg(feature = "opentelemetry")]
            otel: Default::default(),
        }
    }

    /// A context that will run on another thread: a remote context (which has no hub of its own)
    /// takes a snapshot of the hub current here, so the work reports to this thread's client.
    pub(crate) fn anchored(mut self) -> TraceContext {
        if let Origin::Remote {
            hub: hub @ None, ..
        } = &mut self.origin
        {
            *hub = Some(Arc::new(Hub::new_from_top(Hub::current())));
        }
        self
    }

    /// `true` for a context captured under a parent whose trace is not sent (unsampled, or tracing
    /// disabled): its continuation records nothing and only runs under a fork of the hub.
    pub(crate) fn unrecorded(&self) -> bool {
        matches!(&self.origin, Origin::Captured { anchor: Some(anchor), .. } if !anchor.records())
    }

    /// The context without its `tracing` span, and the span.
    #[cfg(feature = "tracing")]
    pub(crate) fn split_tracing(mut self) -> (TraceContext, crate::tracing::CallerSpan) {
        let span = std::mem::take(&mut self.tracing);
        (self, span)
    }

    /// The context without its OpenTelemetry `Context`, and the `Context`.
    #[cfg(feature = "opentelemetry")]
    pub(crate) fn split_otel(mut self) -> (TraceContext, crate::opentelemetry::CallerContext) {
        let otel = std::mem::take(&mut self.otel);
        (self, otel)
    }

    /// `true` when there is nothing to continue: no client was bound at capture time.
    ///
    /// ```
    /// assert!(traced_spawn::TraceContext::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self.origin, Origin::Empty)
    }

    /// The parent: the remote one, or the caller's, read at capture.
    pub(crate) fn parent(&self) -> Option<Parent> {
        match &self.origin {
            Origin::Empty => None,
            Origin::Captured { anchor, .. } => anchor.as_ref().map(Anchor::parent),
            Origin::Remote { parent, .. } => Some(*parent),
        }
    }

    /// The trace the continuation joins, or `None` for an empty context.
    ///
    /// ```
    /// assert_eq!(traced_spawn::TraceContext::default().trace_id(), None);
    /// ```
    pub fn trace_id(&self) -> Option<TraceId> {
        self.parent().map(|parent| parent.trace_id)
    }

    /// The span the continuation hangs from: the caller's active span, or with no active span the
    /// span id of the caller's propagation context. `None` for an empty context.
    ///
    /// ```
    /// assert_eq!(traced_spawn::TraceContext::default().parent_span_id(), None);
    /// ```
    pub fn parent_span_id(&self) -> Option<SpanId> {
        self.parent().map(|parent| parent.span_id)
    }

    /// The caller's sampling decision: `Some(true)` sampled, `Some(false)` dropped, `None` not
    /// decided yet (no active span, or tracing disabled), in which case the continuation's own
    /// sampler decides.
    ///
    /// ```
    /// assert_eq!(traced_spawn::TraceContext::default().sampled(), None);
    /// ```
    pub fn sampled(&self) -> Option<bool> {
        self.parent().and_then(|parent| parent.sampled)
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("TraceContext(empty)");
        }
        let parent = self.parent();
        f.debug_struct("TraceContext")
            .field("trace_id", &parent.map(|p| p.trace_id))
            .field("parent_span_id", &parent.map(|p| p.span_id))
            .field("sampled", &parent.and_then(|p| p.sampled))
            .field("remote", &matches!(self.origin, Origin::Remote { .. }))
            .finish()
    }
}
