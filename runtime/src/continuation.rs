//! Starting and finishing one continuation transaction.

use std::borrow::Cow;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use sentry::protocol::{SpanStatus, Value};
use sentry::{Hub, TracesSamplingStrategy, Transaction, TransactionContext};

use crate::context::{Parent, TraceContext};
use crate::propagation::{self, Remote};
use crate::verdict::{Classifier, Verdict};

/// Data key of the time, in milliseconds (a float), between the call that captured the context and
/// the start of the body: time spent queued behind other work of the executor. For a context
/// rebuilt from headers or serde, it counts from the rebuild.
///
/// ```
/// assert_eq!(traced_spawn::QUEUE_DELAY_KEY, "spawn.queue_delay_ms");
/// ```
pub const QUEUE_DELAY_KEY: &str = "spawn.queue_delay_ms";
/// Data key of the executing thread's id: the number of its `ThreadId`, as a string.
///
/// ```
/// assert_eq!(traced_spawn::THREAD_ID_KEY, "thread.id");
/// ```
pub const THREAD_ID_KEY: &str = "thread.id";
/// Data key of the executing thread's name, when it has one.
///
/// ```
/// assert_eq!(traced_spawn::THREAD_NAME_KEY, "thread.name");
/// ```
pub const THREAD_NAME_KEY: &str = "thread.name";
/// `origin` of every continuation transaction: Sentry shows it as automatic instrumentation.
///
/// ```
/// assert_eq!(traced_spawn::ORIGIN, "auto.function.traced_spawn");
/// ```
pub const ORIGIN: &str = "auto.function.traced_spawn";

/// How a body ended, which decides the continuation's status.
pub(crate) enum Ending {
    Returned(Verdict),
    Panicked,
}

/// A running continuation: the forked hub the body runs in and, when the trace is sampled, the
/// transaction bound as its active span. Finishing is done exactly once, by [`Self::finish`] or,
/// if it is dropped first, as `cancelled`.
pub(crate) struct Continuation {
    pub(crate) hub: Arc<Hub>,
    transaction: Option<Transaction>,
}

impl Continuation {
    /// Forks the hub and starts the continuation, on the thread that runs the body. `None` for an
    /// empty context: the body runs as it is.
    pub(crate) fn start(ctx: TraceContext, name: &str, op: &str) -> Option<Continuation> {
        if ctx.is_empty() {
            return None;
        }
        let TraceContext {
            hub,
            remote,
            propagated,
            captured_at,
        } = ctx;
        let hub = fork(hub);
        let remote = propagation::enter(&hub, remote, propagated);
        let transaction = start_transaction(&hub, remote, name, op);
        if let Some(tx) = &transaction {
            record(tx, captured_at);
        }
        Some(Continuation { hub, transaction })
    }

    /// Finishes the continuation under its own hub: captures the failure event if there is one,
    /// sets the status and sends the transaction.
    ///
    /// A panic or a cancellation always sets its status; otherwise a status the body set itself on
    /// the transaction is kept (for a failure, only a non-`ok` one).
    pub(crate) fn finish(mut self, ending: Ending) {
        let transaction = self.transaction.take();
        let hub = self.hub.clone();
        Hub::run(hub, || {
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
            if let Some(tx) = transaction {
                let status = match tx.get_status() {
                    Some(set) if !forced && (status == SpanStatus::Ok || set != SpanStatus::Ok) => {
                        set
                    }
                    _ => status,
                };
                tx.set_status(status);
                tx.finish();
            }
        });
    }

    /// Runs `body` under this continuation's hub, then finishes it with the body's verdict; a
    /// panic finishes it as `internal_error` and is resumed.
    pub(crate) fn run<R, C: Classifier<R>>(self, body: impl FnOnce() -> R, classifier: C) -> R {
        let hub = self.hub.clone();
        Hub::run(hub, || match panic::catch_unwind(AssertUnwindSafe(body)) {
            Ok(output) => {
                self.finish(Ending::Returned(classifier.classify(&output)));
                output
            }
            Err(payload) => {
                self.finish(Ending::Panicked);
                panic::resume_unwind(payload)
            }
        })
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
                Some(span) => TransactionContext::continue_from_span(name, op, Some(span)),
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

/// Records where and after how long the body started, under one lock of the transaction.
fn record(tx: &Transaction, captured_at: Option<Instant>) {
    tx.set_origin(ORIGIN);
    let mut data = tx.data();
    if let Some(captured_at) = captured_at {
        let queue_delay = captured_at.elapsed();
        data.set_data(
            Cow::Borrowed(QUEUE_DELAY_KEY),
            Value::from(queue_delay.as_secs_f64() * 1000.0),
        );
    }
    THREAD_DATA.with(|(id, name)| {
        data.set_data(Cow::Borrowed(THREAD_ID_KEY), id.clone());
        if let Some(name) = name {
            data.set_data(Cow::Borrowed(THREAD_NAME_KEY), name.clone());
        }
    });
}

impl Drop for Continuation {
    /// A continuation dropped before it was finished (an aborted or dropped task) ends as
    /// `cancelled`.
    fn drop(&mut self) {
        if let Some(tx) = self.transaction.take() {
            Hub::run(self.hub.clone(), || {
                tx.set_status(SpanStatus::Cancelled);
                tx.finish();
            });
        }
    }
}
