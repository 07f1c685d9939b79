//! Starting and finishing one continuation transaction.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use sentry::protocol::{SpanStatus, Value};
use sentry::{
    Hub, HubSwitchGuard, TracesSamplingStrategy, Transaction, TransactionContext, TransactionOrSpan,
};

use crate::carried::{Carrying, Propagated};
use crate::classify::Verdict;
use crate::context::{Anchor, Origin, TraceContext};
use crate::data;
use crate::flush::InFlight;
use crate::ids::Parent;
use crate::monitor::{CheckIn, Monitor};
use crate::propagation::{self, Remote};

/// A started continuation: the forked hub the body runs in and, when the trace is sampled, the
/// transaction bound as its active span. Finished exactly once, by [`Self::finish`] or, if it is
/// dropped first, as `cancelled`.
pub(crate) struct Continuation {
    hub: Arc<Hub>,
    /// What the trace carries besides its ids, when it came from another process: carried on
    /// the thread that runs the body (see [`Carrying`]).
    propagated: Option<Arc<Propagated>>,
    /// The Sentry Crons check-in of monitored work, ended with the continuation (dropped
    /// unfinished: `error`).
    check_in: Option<Box<CheckIn>>,
    /// The continuation transaction, or the child span of a [`Shape::ChildSpan`] continuation.
    recording: Option<TransactionOrSpan>,
    /// Counted until finished or dropped (declared last: dropped after the transaction is sent).
    _in_flight: InFlight,
}

/// What a continuation records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A transaction of its own, continuing the caller's trace.
    Transaction,
    /// A child span of the caller's active span, for work the caller awaits; a transaction when
    /// there is no active span here (a remote parent, or none).
    ChildSpan,
}

impl Continuation {
    /// Forks the hub and starts the continuation, on the thread that runs the body. `ctx` is not
    /// empty: an empty context is spawned as plain work before it gets here.
    pub(crate) fn start(ctx: TraceContext, name: &str, op: &str, shape: Shape) -> Continuation {
        debug_assert!(!ctx.is_empty(), "an empty context has nothing to continue");
        let TraceContext {
            origin,
            propagated,
            captured_at,
            ..
        } = ctx;
        let (hub, recording, propagated) = match origin {
            Origin::Remote { parent, hub } => {
                let hub = fork(hub);
                let remote = Remote { parent, propagated };
                match start_transaction(&hub, &remote, name, op) {
                    Some((tx, propagated)) => (hub, Some(tx.into()), Some(propagated)),
                    None => (hub, None, None),
                }
            }
            // In-process, an unsampled parent needs no transaction: the fork's scope still holds
            // the parent span, so errors link to the caller's trace.
            Origin::Captured { hub, anchor } => {
                let hub = fork(Some(hub));
                let recording = match anchor {
                    Some(anchor) if anchor.records() => {
                        continue_in_process(&hub, anchor, name, op, shape)
                    }
                    _ => None,
                };
                (hub, recording, propagated)
            }
            Origin::Empty => (fork(None), None, propagated),
        };
        if let Some(recording) = &recording {
            record(recording, captured_at);
        }
        Continuation {
            hub,
            propagated,
            recording,
            check_in: None,
            _in_flight: InFlight::new(),
        }
    }

    /// The continuation of an [unrecorded](TraceContext::unrecorded) context: the fork only.
    /// Made where the work is spawned; nothing is started, so nothing is left for the executor.
    pub(crate) fn unrecorded(ctx: TraceContext) -> Continuation {
        debug_assert!(
            ctx.unrecorded(),
            "a recorded context is started where it runs"
        );
        let hub = match ctx.origin {
            Origin::Captured { hub, .. } => Some(hub),
            Origin::Remote { hub, .. } => hub,
            Origin::Empty => None,
        };
        Continuation {
            hub: fork(hub),
            // What the trace carries still goes downstream from inside the work.
            propagated: ctx.propagated,
            recording: None,
            check_in: None,
            _in_flight: InFlight::new(),
        }
    }

    /// Makes this continuation's hub the thread's current one, and carries what its trace
    /// carries, until the guard drops: around each run or poll of the body.
    pub(crate) fn enter(&self) -> Entered {
        Entered {
            _carrying: Carrying::begin(self.propagated.as_ref()),
            _hub: HubSwitchGuard::new(self.hub.clone()),
        }
    }

    /// Checks in to `monitor`, whatever the sampling: `in_progress` now, as the body starts; the
    /// final check-in when the continuation ends.
    pub(crate) fn check_in(&mut self, monitor: Box<Monitor>) {
        self.check_in = CheckIn::start(monitor, &self.hub).map(Box::new);
    }

    /// Finishes the continuation: captures the failure event in its hub if there is one, sets
    /// the status and sends the transaction. Called under the continuation's hub.
    ///
    /// A panic always sets its status; otherwise a status the body set itself on the transaction
    /// is kept (for a failure, only a non-`ok` one). A recording starts as `ok`, so a success
    /// takes no lock here.
    pub(crate) fn finish(self, verdict: Verdict) {
        let status = verdict.status();
        if let Verdict::FailedWithEvent(event) = verdict {
            self.hub.capture_event(*event);
        }
        self.end(status, false);
    }

    /// Finishes the continuation of a body that panicked: `internal_error`, whatever the body
    /// set. The panic itself reaches the hub's panic integration, if any, as it unwinds.
    pub(crate) fn panicked(self) {
        self.end(SpanStatus::InternalError, true);
    }

    fn end(mut self, status: SpanStatus, forced: bool) {
        if let Some(tx) = self.recording.take() {
            // The status is `ok` from the start (see `record`): a success keeps whatever the
            // body left there.
            let failed_unmarked =
                || status != SpanStatus::Ok && tx.get_status() == Some(SpanStatus::Ok);
            if forced || failed_unmarked() {
                tx.set_status(status);
            }
            tx.finish();
        }
        if let Some(check_in) = self.check_in.take() {
            check_in.finish(status);
        }
    }
}

/// The body's hub: the captured snapshot itself when this is its only continuation, a fork of it
/// otherwise; for a remote context not anchored anywhere, a fork of the hub current here.
fn fork(snapshot: Option<Arc<Hub>>) -> Arc<Hub> {
    match snapshot {
        // Nobody else holds the snapshot (a spawned context is moved, not cloned): it is a fork
        // already, made at capture time.
        Some(hub) if Arc::strong_count(&hub) == 1 && Arc::weak_count(&hub) == 0 => hub,
        Some(shared) => Arc::new(Hub::new_from_top(shared)),
        None => Arc::new(Hub::new_from_top(Hub::current())),
    }
}

/// Starts the continuation of an in-process `anchor` that was not dropped by sampling, and binds
/// it as the fork's active span: a child span of the caller's active span for
/// [`Shape::ChildSpan`] when there is one, else a transaction (none when the client has tracing
/// disabled).
fn continue_in_process(
    hub: &Arc<Hub>,
    anchor: Anchor,
    name: &str,
    op: &str,
    shape: Shape,
) -> Option<TransactionOrSpan> {
    if let (Anchor::Span { span, .. }, Shape::ChildSpan) = (&anchor, shape) {
        let child = TransactionOrSpan::from(span.start_child(op, name));
        hub.configure_scope(|scope| scope.set_span(Some(child.clone())));
        return Some(child);
    }
    let tx_ctx = match anchor {
        // A span that is sent was started with tracing enabled: no need to ask the client.
        Anchor::Span { span, .. } => TransactionContext::continue_from_span(name, op, Some(span)),
        Anchor::Ids(parent) => {
            let client = hub.client()?;
            if matches!(
                client.options().traces_sampling_strategy,
                TracesSamplingStrategy::Disabled
            ) {
                return None;
            }
            continuation_of(name, op, parent)
        }
    };
    let tx = hub.start_transaction(tx_ctx);
    hub.configure_scope(|scope| scope.set_span(Some(tx.clone().into())));
    Some(tx.into())
}

/// Starts the continuation transaction of a remote parent in `hub` and binds it as the active
/// span. Even an unsampled one is started: the parent has no span here, and its transaction is
/// what links errors to the trace.
fn start_transaction(
    hub: &Arc<Hub>,
    remote: &Remote,
    name: &str,
    op: &str,
) -> Option<(Transaction, Arc<Propagated>)> {
    let client = hub.client()?;
    let (tx_ctx, propagated) =
        propagation::remote_transaction_context(remote, name, op, client.options());
    let tx = hub.start_transaction(tx_ctx);
    hub.configure_scope(|scope| scope.set_span(Some(tx.clone().into())));
    Some((tx, propagated))
}

/// A transaction context continuing the in-process `parent`, built directly (not through headers,
/// so `strict_trace_continuation` never mistakes it for a foreign trace).
fn continuation_of(name: &str, op: &str, parent: Parent) -> TransactionContext {
    TransactionContext::builder(name, op)
        .with_trace_id(parent.trace_id)
        .with_parent_span_id(Some(parent.span_id))
        .with_sampled(parent.sampled)
        .finish()
}

thread_local! {
    /// The executing thread's id and name, formatted once per thread.
    static THREAD_DATA: (Value, Option<Value>) = {
        let thread = std::thread::current();
        let id = format!("{:?}", thread.id());
        let id = id
            .strip_prefix("ThreadId(")
            .and_then(|rest| rest.strip_suffix(')'))
            .map_or_else(|| id.clone(), str::to_owned);
        (Value::from(id), thread.name().map(Value::from))
    };
}

/// Records where and after how long the body started, and the status `ok` it has unless it fails.
fn record(recording: &TransactionOrSpan, captured_at: Option<Instant>) {
    recording.set_status(SpanStatus::Ok);
    match recording {
        TransactionOrSpan::Transaction(tx) => {
            tx.set_origin(data::ORIGIN);
            record_data(&mut tx.data(), captured_at);
        }
        TransactionOrSpan::Span(span) => record_data(&mut span.data(), captured_at),
    }
}

/// The data of a transaction or a span, whose setters differ in the key type only.
trait DataSink {
    fn put(&mut self, key: &'static str, value: Value);
}

impl DataSink for sentry::TransactionData<'_> {
    fn put(&mut self, key: &'static str, value: Value) {
        self.set_data(Cow::Borrowed(key), value);
    }
}

impl DataSink for sentry::Data<'_> {
    fn put(&mut self, key: &'static str, value: Value) {
        self.set_data(key.to_owned(), value);
    }
}

fn record_data(data: &mut impl DataSink, captured_at: Option<Instant>) {
    if let Some(captured_at) = captured_at {
        let queue_delay = captured_at.elapsed();
        data.put(
            data::QUEUE_DELAY_MS,
            Value::from(queue_delay.as_secs_f64() * 1000.0),
        );
    }
    THREAD_DATA.with(|(id, name)| {
        data.put(data::THREAD_ID, id.clone());
        if let Some(name) = name {
            data.put(data::THREAD_NAME, name.clone());
        }
    });
}

/// A continuation whose body runs on this thread: entered until dropped, and finished as
/// `internal_error` if it is dropped before [`Running::finish`] (the body unwound). A drop guard
/// rather than `catch_unwind`: nothing of it is generic over the body, so a release build
/// compiles it once, not once per traced fn, and a panic unwinds untouched.
pub(crate) struct Running {
    continuation: Option<Continuation>,
    // Dropped after `drop` has finished the continuation, under its hub.
    _entered: Entered,
}

impl Running {
    pub(crate) fn begin(continuation: Continuation) -> Running {
        Running {
            _entered: continuation.enter(),
            continuation: Some(continuation),
        }
    }

    /// The body returned: finishes the continuation with `verdict`.
    pub(crate) fn finish(mut self, verdict: Verdict) {
        if let Some(continuation) = self.continuation.take() {
            continuation.finish(verdict);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(continuation) = self.continuation.take() {
            continuation.panicked();
        }
    }
}

/// A continuation entered on this thread (see [`Continuation::enter`]).
pub(crate) struct Entered {
    _carrying: Carrying,
    _hub: HubSwitchGuard,
}

impl Drop for Continuation {
    /// A continuation dropped before it was finished (an aborted or dropped task) ends as
    /// `cancelled`.
    fn drop(&mut self) {
        if let Some(tx) = self.recording.take() {
            tx.set_status(SpanStatus::Cancelled);
            tx.finish();
        }
    }
}
