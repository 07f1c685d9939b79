//! Starting and finishing one continuation transaction.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use sentry::protocol::{SpanStatus, Value};
use sentry::{Hub, TracesSamplingStrategy, Transaction, TransactionContext, TransactionOrSpan};

use crate::context::{Parent, TraceContext};
use crate::propagation::{self, Remote};
use crate::verdict::Verdict;

/// Data key of the time, in milliseconds (a float), between the call that captured the context and
/// the start of the body: time spent queued behind other work of the executor. For a context
/// rebuilt from headers or serde, it counts from the rebuild.
///
/// ```
/// # fn sent(f: impl FnOnce()) -> sentry::protocol::TraceContext {
/// #     let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
/// #     let envelopes = sentry::test::with_captured_envelopes_options(f, options);
/// #     let mut items = envelopes.iter().flat_map(|envelope| envelope.items());
/// #     items.find_map(|item| match item {
/// #         sentry::protocol::EnvelopeItem::Transaction(tx) => match tx.contexts.get("trace") {
/// #             Some(sentry::protocol::Context::Trace(trace)) => Some((**trace).clone()),
/// #             _ => None,
/// #         },
/// #         _ => None,
/// #     })
/// #     .expect("one transaction")
/// # }
/// let trace = sent(|| traced_spawn::Builder::new("job").spawn_thread(|| ()).join().unwrap());
/// let queued_ms = trace.data[traced_spawn::QUEUE_DELAY_KEY].as_f64().unwrap();
/// assert!(queued_ms >= 0.0);
/// ```
pub const QUEUE_DELAY_KEY: &str = "spawn.queue_delay_ms";
/// Data key of the executing thread's id: the number of its `ThreadId`, as a string.
///
/// ```
/// # fn sent(f: impl FnOnce()) -> sentry::protocol::TraceContext {
/// #     let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
/// #     let envelopes = sentry::test::with_captured_envelopes_options(f, options);
/// #     let mut items = envelopes.iter().flat_map(|envelope| envelope.items());
/// #     items.find_map(|item| match item {
/// #         sentry::protocol::EnvelopeItem::Transaction(tx) => match tx.contexts.get("trace") {
/// #             Some(sentry::protocol::Context::Trace(trace)) => Some((**trace).clone()),
/// #             _ => None,
/// #         },
/// #         _ => None,
/// #     })
/// #     .expect("one transaction")
/// # }
/// let trace = sent(|| traced_spawn::Builder::new("job").spawn_thread(|| ()).join().unwrap());
/// let id: u64 = trace.data[traced_spawn::THREAD_ID_KEY].as_str().unwrap().parse().unwrap();
/// assert!(id > 0);
/// ```
pub const THREAD_ID_KEY: &str = "thread.id";
/// Data key of the executing thread's name, when it has one.
///
/// ```
/// # fn sent(f: impl FnOnce()) -> sentry::protocol::TraceContext {
/// #     let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
/// #     let envelopes = sentry::test::with_captured_envelopes_options(f, options);
/// #     let mut items = envelopes.iter().flat_map(|envelope| envelope.items());
/// #     items.find_map(|item| match item {
/// #         sentry::protocol::EnvelopeItem::Transaction(tx) => match tx.contexts.get("trace") {
/// #             Some(sentry::protocol::Context::Trace(trace)) => Some((**trace).clone()),
/// #             _ => None,
/// #         },
/// #         _ => None,
/// #     })
/// #     .expect("one transaction")
/// # }
/// let trace = sent(|| {
///     let job = traced_spawn::Builder::new("job").thread_name("reply-worker");
///     job.spawn_thread(|| ()).join().unwrap()
/// });
/// assert_eq!(trace.data[traced_spawn::THREAD_NAME_KEY], "reply-worker");
/// ```
pub const THREAD_NAME_KEY: &str = "thread.name";
/// `origin` of every continuation transaction: Sentry shows it as automatic instrumentation.
///
/// ```
/// # fn sent(f: impl FnOnce()) -> sentry::protocol::TraceContext {
/// #     let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
/// #     let envelopes = sentry::test::with_captured_envelopes_options(f, options);
/// #     let mut items = envelopes.iter().flat_map(|envelope| envelope.items());
/// #     items.find_map(|item| match item {
/// #         sentry::protocol::EnvelopeItem::Transaction(tx) => match tx.contexts.get("trace") {
/// #             Some(sentry::protocol::Context::Trace(trace)) => Some((**trace).clone()),
/// #             _ => None,
/// #         },
/// #         _ => None,
/// #     })
/// #     .expect("one transaction")
/// # }
/// let trace = sent(|| traced_spawn::Builder::new("job").spawn_thread(|| ()).join().unwrap());
/// assert_eq!(trace.origin.as_deref(), Some(traced_spawn::ORIGIN));
/// ```
pub const ORIGIN: &str = "auto.function.traced_spawn";

/// How a body ended, which decides the continuation's status.
pub(crate) enum Ending {
    Returned(Verdict),
    Panicked,
}

/// A started continuation: the forked hub the body runs in and, when the trace is sampled, the
/// transaction bound as its active span. Finished exactly once, by [`Self::finish`] or, if it is
/// dropped first, as `cancelled`.
pub(crate) struct Continuation {
    hub: Arc<Hub>,
    /// The continuation transaction, or the child span of a [`Shape::ChildSpan`] continuation.
    recording: Option<TransactionOrSpan>,
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
            hub,
            remote,
            propagated,
            captured_at,
        } = ctx;
        let hub = fork(hub);
        let remote = propagation::enter(&hub, remote, propagated);
        let parent_span = match (shape, &remote) {
            (Shape::ChildSpan, None) => hub.configure_scope(|scope| scope.get_span()),
            _ => None,
        };
        let recording = match parent_span {
            Some(parent) => start_child_span(&hub, &parent, name, op),
            None => start_transaction(&hub, remote, name, op).map(TransactionOrSpan::from),
        };
        if let Some(recording) = &recording {
            record(recording, captured_at);
        }
        Continuation { hub, recording }
    }

    /// The hub the body runs in.
    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Finishes the continuation: captures the failure event in its hub if there is one, sets
    /// the status and sends the transaction. Called under the continuation's hub.
    ///
    /// A panic always sets its status; otherwise a status the body set itself on the transaction
    /// is kept (for a failure, only a non-`ok` one).
    pub(crate) fn finish(mut self, ending: Ending) {
        let (status, forced) = match ending {
            Ending::Returned(verdict) => {
                let status = verdict.status();
                if let Verdict::FailedWithEvent(event) = verdict {
                    self.hub.capture_event(*event);
                }
                (status, false)
            }
            Ending::Panicked => (SpanStatus::InternalError, true),
        };
        if let Some(tx) = self.recording.take() {
            let status = match tx.get_status() {
                Some(set) if !forced && (status == SpanStatus::Ok || set != SpanStatus::Ok) => set,
                _ => status,
            };
            tx.set_status(status);
            tx.finish();
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

/// Starts the continuation transaction in `hub` and binds it as the active span, unless there is
/// nothing to record: no client, tracing disabled, or an in-process parent that was not sampled (the
/// forked scope still carries the parent span, so errors keep linking to the caller's trace).
fn start_transaction(
    hub: &Arc<Hub>,
    remote: Option<Remote>,
    name: &str,
    op: &str,
) -> Option<Transaction> {
    let client = hub.client()?;
    let tracing = !matches!(
        client.options().traces_sampling_strategy,
        TracesSamplingStrategy::Disabled
    );
    if !tracing && remote.is_none() {
        return None;
    }
    hub.configure_scope(|scope| {
        let tx_ctx = match &remote {
            Some(remote) => {
                propagation::remote_transaction_context(hub, remote, name, op, client.options())
            }
            None => match scope.get_span() {
                Some(span) => {
                    // The parent's decision first, with empty labels (which do not allocate):
                    // an unsampled parent needs neither a transaction nor its name and op.
                    let ids = TransactionContext::continue_from_span("", "", Some(span.clone()));
                    if ids.sampled() == Some(false) {
                        return None;
                    }
                    TransactionContext::continue_from_span(name, op, Some(span))
                }
                None => continuation_of(name, op, Parent::of_scope(scope)?),
            },
        };
        // In-process, an unsampled parent needs no transaction: the forked scope still holds
        // the parent span, so errors link. A remote parent has no span here: its (unsampled)
        // transaction is what links them.
        if remote.is_none() && tx_ctx.sampled() == Some(false) {
            return None;
        }
        let tx = hub.start_transaction(tx_ctx);
        scope.set_span(Some(tx.clone().into()));
        Some(tx)
    })
}

/// Starts a child span of `parent`, the caller's active span, and binds it as the active span of
/// the fork. An unsampled parent records nothing: the fork still holds it, so errors link.
fn start_child_span(
    hub: &Hub,
    parent: &TransactionOrSpan,
    name: &str,
    op: &str,
) -> Option<TransactionOrSpan> {
    let sampled = TransactionContext::continue_from_span("", "", Some(parent.clone())).sampled();
    if sampled == Some(false) {
        return None;
    }
    let span = TransactionOrSpan::from(parent.start_child(op, name));
    hub.configure_scope(|scope| scope.set_span(Some(span.clone())));
    Some(span)
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

/// Records where and after how long the body started, under one lock of the transaction or span.
fn record(recording: &TransactionOrSpan, captured_at: Option<Instant>) {
    match recording {
        TransactionOrSpan::Transaction(tx) => {
            tx.set_origin(ORIGIN);
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
            QUEUE_DELAY_KEY,
            Value::from(queue_delay.as_secs_f64() * 1000.0),
        );
    }
    THREAD_DATA.with(|(id, name)| {
        data.put(THREAD_ID_KEY, id.clone());
        if let Some(name) = name {
            data.put(THREAD_NAME_KEY, name.clone());
        }
    });
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
