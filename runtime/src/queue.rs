//! Work that leaves the process through a queue, traced in the shape of Sentry's Queues module.
//!
//! Sentry's Queues dashboard (publish and process throughput, time in queue, failures) is built
//! from two kinds of spans: a `queue.publish` span on the producer and a `queue.process` span on
//! the consumer, both carrying `messaging.*` data. This module writes both over any queue, from
//! Redis lists to a database table, using only what goes into the message.
//!
//! - **Producer**: [`Publish::start`] opens a `queue.publish` span under the caller's active span
//!   and gives the [`MessageTrace`] to put into the message: the propagation headers of the publish
//!   span (whatever [`TraceContext::to_headers`] returns) and the publish time. Finish it with the
//!   result of the publish: an `Err` finishes the span as `internal_error`.
//! - **Consumer**: [`Process`] continues the message's trace. It runs the handler inside a
//!   continuation transaction (op [`OP_CONSUMER`], parent = the publish span) and, inside it, a
//!   `queue.process` span with the same data plus the retry count and the receive latency.
//!
//! ```text
//! tx   http.server    POST /slack/commands          the producer's request
//! └─ span queue.publish  slack.replies              Publish::start .. Publish::finish
//!    └─ tx   function  worker::send_reply           Process::run / Process::bind, maybe in another process
//!       └─ span queue.process  slack.replies        receive latency, retry count
//!          └─ ...                                   the work
//! ```
//!
//! | data key | producer | consumer |
//! |---|---|---|
//! | [`SYSTEM_KEY`] `messaging.system` | yes | yes |
//! | [`DESTINATION_KEY`] `messaging.destination.name` | yes | yes |
//! | [`MESSAGE_ID_KEY`] `messaging.message.id` | yes | yes |
//! | [`BODY_SIZE_KEY`] `messaging.message.body.size` | when given | when given |
//! | [`RETRY_COUNT_KEY`] `messaging.message.retry.count` | | yes (0 unless given) |
//! | [`RECEIVE_LATENCY_KEY`] `messaging.message.receive.latency` | | yes, in milliseconds |
//!
//! The receive latency is the time between [`Publish::start`] and the start of processing,
//! measured with the wall clocks of the two machines (milliseconds since the Unix epoch), so clock
//! skew between them shows up in it; a negative difference is recorded as 0.
//!
//! The whole round trip, with a `Vec` as the queue:
//!
//! ```
//! use std::sync::Arc;
//! use traced_spawn::queue::{MessageTrace, Process, Publish};
//!
//! # let transport = sentry::test::TestTransport::new();
//! # let mut options = sentry::ClientOptions::new().traces_sample_rate(1.0);
//! # options.dsn = Some("https://public@sentry.invalid/1".parse().unwrap());
//! # options.transport = Some(Arc::new(transport.clone()));
//! # let hub = Arc::new(sentry::Hub::new(Some(Arc::new(options.into())), Default::default()));
//! # sentry::Hub::run(hub, || {
//! let mut queue: Vec<(String, MessageTrace, String)> = Vec::new();
//!
//! // Producer, inside a request transaction.
//! let request = sentry::start_transaction(sentry::TransactionContext::new("POST /ask", "http.server"));
//! sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
//! let publish = Publish::start("vec", "answers", "msg-1");
//! publish.body_size("why?".len());
//! queue.push(("msg-1".into(), publish.trace().clone(), "why?".into()));
//! publish.finish(&Ok::<(), ()>(()));
//! request.finish();
//!
//! // Consumer.
//! let (id, trace, body) = queue.pop().unwrap();
//! let answered = Process::new("vec", "answers", id, &trace)
//!     .body_size(body.len())
//!     .run("worker::answer", || Ok::<_, ()>(format!("{body} 42")));
//! assert_eq!(answered, Ok("why? 42".to_owned()));
//! # });
//! # let txs: Vec<_> = transport.fetch_and_clear_envelopes().iter()
//! #     .flat_map(|e| e.items().cloned().collect::<Vec<_>>())
//! #     .filter_map(|i| match i { sentry::protocol::EnvelopeItem::Transaction(t) => Some(t), _ => None })
//! #     .collect();
//! # assert_eq!(txs.len(), 2);
//! # assert_eq!(txs[0].spans[0].op.as_deref(), Some("queue.publish"));
//! # assert_eq!(txs[1].spans[0].op.as_deref(), Some("queue.process"));
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use sentry::protocol::{SpanStatus, Value};
use sentry::{Span, TransactionOrSpan};

use crate::{Builder, HeaderError, TraceContext};

/// Op of the producer's span around a publish: `queue.publish`.
///
/// ```
/// use traced_spawn::queue::{Publish, OP_PUBLISH};
///
/// # let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
/// # let envelopes = sentry::test::with_captured_envelopes_options(|| {
/// # let request = sentry::start_transaction(sentry::TransactionContext::new("POST /ask", "http.server"));
/// # sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
/// let publish = Publish::start("redis", "jobs", "msg-1");
/// publish.body_size(64);
/// publish.finish(&Ok::<(), ()>(()));
/// # request.finish();
/// # }, options);
/// # let Some(sentry::protocol::EnvelopeItem::Transaction(tx)) = envelopes[0].items().next() else { panic!() };
/// let span = &tx.spans[0]; // the publish span, in the request's transaction
/// assert_eq!(span.op.as_deref(), Some(OP_PUBLISH));
/// ```
pub const OP_PUBLISH: &str = "queue.publish";

/// Op of the consumer's span around the processing of one message: `queue.process`.
///
/// ```
/// use traced_spawn::queue::{MessageTrace, Process, OP_PROCESS};
///
/// # let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
/// # let envelopes = sentry::test::with_captured_envelopes_options(|| {
/// let published_at_ms = std::time::SystemTime::now()
///     .duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 - 250;
/// let trace = MessageTrace { published_at_ms, ..Default::default() };
/// Process::new("redis", "jobs", "msg-1", &trace)
///     .retry_count(1)
///     .run("worker::job", || Ok::<_, ()>(()))
///     .unwrap();
/// # }, options);
/// # let Some(sentry::protocol::EnvelopeItem::Transaction(tx)) = envelopes[0].items().next() else { panic!() };
/// let span = &tx.spans[0]; // queue.process, in the consumer's transaction
/// assert_eq!(span.op.as_deref(), Some(OP_PROCESS));
/// ```
pub const OP_PROCESS: &str = "queue.process";

/// Op of the consumer's continuation transaction, which holds the `queue.process` span:
/// `function`, as in Sentry's documented consumer instrumentation.
///
/// ```
/// use traced_spawn::queue::{MessageTrace, Process, OP_CONSUMER};
///
/// # let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
/// # let envelopes = sentry::test::with_captured_envelopes_options(|| {
/// let published_at_ms = std::time::SystemTime::now()
///     .duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 - 250;
/// let trace = MessageTrace { published_at_ms, ..Default::default() };
/// Process::new("redis", "jobs", "msg-1", &trace)
///     .retry_count(1)
///     .run("worker::job", || Ok::<_, ()>(()))
///     .unwrap();
/// # }, options);
/// # let Some(sentry::protocol::EnvelopeItem::Transaction(tx)) = envelopes[0].items().next() else { panic!() };
/// let span = &tx.spans[0]; // queue.process, in the consumer's transaction
/// let Some(sentry::protocol::Context::Trace(consumer)) = tx.contexts.get("trace") else { panic!() };
/// assert_eq!(consumer.op.as_deref(), Some(OP_CONSUMER));
/// ```
pub const OP_CONSUMER: &str = "function";

/// Span data key of the messaging system (`redis`, `kafka`, `aws_sqs`, ...).
///
/// ```
/// use traced_spawn::queue::{Publish, SYSTEM_KEY};
///
/// # let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
/// # let envelopes = sentry::test::with_captured_envelopes_options(|| {
/// # let request = sentry::start_transaction(sentry::TransactionContext::new("POST /ask", "http.server"));
/// # sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
/// let publish = Publish::start("redis", "jobs", "msg-1");
/// publish.body_size(64);
/// publish.finish(&Ok::<(), ()>(()));
/// # request.finish();
/// # }, options);
/// # let Some(sentry::protocol::EnvelopeItem::Transaction(tx)) = envelopes[0].items().next() else { panic!() };
/// let span = &tx.spans[0]; // the publish span, in the request's transaction
/// assert_eq!(span.data[SYSTEM_KEY], "redis");
/// ```
pub const SYSTEM_KEY: &str = "messaging.system";

/// Span data key of the queue or topic name.
///
/// ```
/// use traced_spawn::queue::{Publish, DESTINATION_KEY};
///
/// # let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
/// # let envelopes = sentry::test::with_captured_envelopes_options(|| {
/// # let request = sentry::start_transaction(sentry::TransactionContext::new("POST /ask", "http.server"));
/// # sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
/// let publish = Publish::start("redis", "jobs", "msg-1");
/// publish.body_size(64);
/// publish.finish(&Ok::<(), ()>(()));
/// # request.finish();
/// # }, options);
/// # let Some(sentry::protocol::EnvelopeItem::Transaction(tx)) = envelopes[0].items().next() else { panic!() };
/// let span = &tx.spans[0]; // the publish span, in the request's transaction
/// assert_eq!(span.data[DESTINATION_KEY], "jobs");
/// ```
pub const DESTINATION_KEY: &str = "messaging.destination.name";

/// Span data key of the message identifier.
///
/// ```
/// use traced_spawn::queue::{Publish, MESSAGE_ID_KEY};
///
/// # let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
/// # let envelopes = sentry::test::with_captured_envelopes_options(|| {
/// # let request = sentry::start_transaction(sentry::TransactionContext::new("POST /ask", "http.server"));
/// # sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
/// let publish = Publish::start("redis", "jobs", "msg-1");
/// publish.body_size(64);
/// publish.finish(&Ok::<(), ()>(()));
/// # request.finish();
/// # }, options);
/// # let Some(sentry::protocol::EnvelopeItem::Transaction(tx)) = envelopes[0].items().next() else { panic!() };
/// let span = &tx.spans[0]; // the publish span, in the request's transaction
/// assert_eq!(span.data[MESSAGE_ID_KEY], "msg-1");
/// ```
pub const MESSAGE_ID_KEY: &str = "messaging.message.id";

/// Span data key of the size of the message body, in bytes.
///
/// ```
/// use traced_spawn::queue::{Publish, BODY_SIZE_KEY};
///
/// # let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
/// # let envelopes = sentry::test::with_captured_envelopes_options(|| {
/// # let request = sentry::start_transaction(sentry::TransactionContext::new("POST /ask", "http.server"));
/// # sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
/// let publish = Publish::start("redis", "jobs", "msg-1");
/// publish.body_size(64);
/// publish.finish(&Ok::<(), ()>(()));
/// # request.finish();
/// # }, options);
/// # let Some(sentry::protocol::EnvelopeItem::Transaction(tx)) = envelopes[0].items().next() else { panic!() };
/// let span = &tx.spans[0]; // the publish span, in the request's transaction
/// assert_eq!(span.data[BODY_SIZE_KEY], 64);
/// ```
pub const BODY_SIZE_KEY: &str = "messaging.message.body.size";

/// Span data key of the size of the whole message in bytes, body and the engine's envelope
/// (headers, metadata) together, where the engine knows it.
///
/// ```
/// let publish = traced_spawn::queue::Publish::start("nats", "jobs", "1");
/// publish.envelope_size(700);
/// publish.finish(&Ok::<(), ()>(()));
/// assert_eq!(traced_spawn::queue::ENVELOPE_SIZE_KEY, "messaging.message.envelope.size");
/// ```
pub const ENVELOPE_SIZE_KEY: &str = "messaging.message.envelope.size";

/// Span data key of the number of earlier attempts at processing the message (0 the first time).
///
/// ```
/// use traced_spawn::queue::{MessageTrace, Process, RETRY_COUNT_KEY};
///
/// # let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
/// # let envelopes = sentry::test::with_captured_envelopes_options(|| {
/// let published_at_ms = std::time::SystemTime::now()
///     .duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 - 250;
/// let trace = MessageTrace { published_at_ms, ..Default::default() };
/// Process::new("redis", "jobs", "msg-1", &trace)
///     .retry_count(1)
///     .run("worker::job", || Ok::<_, ()>(()))
///     .unwrap();
/// # }, options);
/// # let Some(sentry::protocol::EnvelopeItem::Transaction(tx)) = envelopes[0].items().next() else { panic!() };
/// let span = &tx.spans[0]; // queue.process, in the consumer's transaction
/// assert_eq!(span.data[RETRY_COUNT_KEY], 1);
/// ```
pub const RETRY_COUNT_KEY: &str = "messaging.message.retry.count";

/// Span data key of the time the message waited, in milliseconds: from the publish to the start
/// of processing.
///
/// ```
/// use traced_spawn::queue::{MessageTrace, Process, RECEIVE_LATENCY_KEY};
///
/// # let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
/// # let envelopes = sentry::test::with_captured_envelopes_options(|| {
/// let published_at_ms = std::time::SystemTime::now()
///     .duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 - 250;
/// let trace = MessageTrace { published_at_ms, ..Default::default() };
/// Process::new("redis", "jobs", "msg-1", &trace)
///     .retry_count(1)
///     .run("worker::job", || Ok::<_, ()>(()))
///     .unwrap();
/// # }, options);
/// # let Some(sentry::protocol::EnvelopeItem::Transaction(tx)) = envelopes[0].items().next() else { panic!() };
/// let span = &tx.spans[0]; // queue.process, in the consumer's transaction
/// assert!(span.data[RECEIVE_LATENCY_KEY].as_u64().unwrap() >= 250);
/// ```
pub const RECEIVE_LATENCY_KEY: &str = "messaging.message.receive.latency";

/// The trace part of a queued message: what the producer puts into the message and the consumer
/// continues.
///
/// `headers` are the propagation headers of the publish span, exactly as
/// [`TraceContext::to_headers`] gives them (header name to value); `published_at_ms` is the
/// publish time in milliseconds since the Unix epoch. Carry both as they are: in message
/// attributes or headers where the queue has them, or inside the payload (with the `serde`
/// feature, `MessageTrace` implements `Serialize` and `Deserialize`).
///
/// ```
/// use traced_spawn::queue::MessageTrace;
///
/// let trace = MessageTrace {
///     headers: [("sentry-trace".to_owned(), "0123456789abcdef0123456789abcdef-0123456789abcdef-1".to_owned())]
///         .into_iter()
///         .collect(),
///     published_at_ms: 1_700_000_000_000,
/// };
/// let ctx = trace.context().unwrap();
/// assert_eq!(ctx.parent_span_id().unwrap().to_string(), "0123456789abcdef");
/// assert_eq!(trace.receive_latency_ms(1_700_000_000_250), 250);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MessageTrace {
    /// Propagation headers of the publish span, header name to value. Empty when the producer had
    /// no Sentry client bound.
    #[cfg_attr(feature = "serde", serde(default))]
    pub headers: BTreeMap<String, String>,
    /// When the message was published, in milliseconds since the Unix epoch.
    pub published_at_ms: u64,
}

impl MessageTrace {
    /// The context a consumer continues: the headers parsed by [`TraceContext::from_headers`].
    /// A message without trace headers gives [`HeaderError::Missing`]; a malformed one another
    /// [`HeaderError`] ([`Process`] then continues the scope where it runs rather than use part of
    /// it).
    ///
    /// ```
    /// use traced_spawn::{queue::MessageTrace, HeaderError};
    ///
    /// assert_eq!(MessageTrace::default().context().unwrap_err(), HeaderError::Missing);
    /// ```
    pub fn context(&self) -> Result<TraceContext, HeaderError> {
        TraceContext::from_headers(
            self.headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )
    }

    /// Milliseconds from the publish to `now_ms` (milliseconds since the Unix epoch); 0 when the
    /// consumer's clock is behind the producer's.
    ///
    /// ```
    /// let trace = traced_spawn::queue::MessageTrace { published_at_ms: 1_000, ..Default::default() };
    /// assert_eq!(trace.receive_latency_ms(1_400), 400);
    /// assert_eq!(trace.receive_latency_ms(900), 0);
    /// ```
    pub fn receive_latency_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.published_at_ms)
    }
}

/// The wall clock in milliseconds since the Unix epoch (0 before 1970).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

fn set_common_data(
    span: &TransactionOrSpan,
    system: &str,
    destination: &str,
    message_id: &str,
    body_size: Option<usize>,
) {
    span.set_data(SYSTEM_KEY, Value::from(system));
    span.set_data(DESTINATION_KEY, Value::from(destination));
    span.set_data(MESSAGE_ID_KEY, Value::from(message_id));
    if let Some(size) = body_size {
        span.set_data(BODY_SIZE_KEY, Value::from(size));
    }
}

/// Makes `span` the active span of the current scope; returns the one it replaced.
fn activate(span: &TransactionOrSpan) -> Option<TransactionOrSpan> {
    sentry::configure_scope(|scope| {
        let previous = scope.get_span();
        scope.set_span(Some(span.clone()));
        previous
    })
}

fn restore(previous: Option<TransactionOrSpan>) {
    sentry::configure_scope(|scope| scope.set_span(previous));
}

/// The producer side of one message: a `queue.publish` span and the [`MessageTrace`] to send.
///
/// [`Publish::start`] opens the span as a child of the caller's active span (Sentry recognizes a
/// producer span only inside a transaction); with no active span there is no span, and the message
/// carries the scope's trace instead, so the consumer still joins the caller's trace. The span
/// stays open until [`Publish::finish`], so it times the publish itself; it is not made the
/// active span meanwhile (a future awaiting the publish may move between threads).
///
/// Dropped without `finish` (a publish future cancelled half-way), the span finishes as
/// `cancelled`.
///
/// ```
/// use traced_spawn::queue::Publish;
///
/// let (queue, worker) = std::sync::mpsc::channel();
/// let publish = Publish::start("channel", "jobs", "job-1");
/// let sent = queue.send((publish.trace().clone(), "job body"));
/// publish.finish(&sent);
/// let (trace, body) = worker.recv().unwrap();
/// assert_eq!(body, "job body");
/// assert!(trace.published_at_ms > 0);
/// ```
#[derive(Debug)]
#[must_use = "finish the publish span with the result of the publish"]
pub struct Publish {
    span: Option<Span>,
    trace: MessageTrace,
}

impl Publish {
    /// Opens a `queue.publish` span named after `destination` under the current active span, with
    /// `messaging.system`, `messaging.destination.name` and `messaging.message.id`, and records the
    /// publish time.
    ///
    /// ```
    /// let publish = traced_spawn::queue::Publish::start("redis", "slack.replies", "42");
    /// // No client bound in this example: nothing to propagate, but the time is there.
    /// assert!(publish.trace().headers.is_empty());
    /// assert!(publish.trace().published_at_ms > 1_600_000_000_000);
    /// publish.finish(&Ok::<(), ()>(()));
    /// ```
    pub fn start(system: &str, destination: &str, message_id: impl Into<String>) -> Publish {
        let message_id = message_id.into();
        let published_at_ms = now_ms();
        let parent = sentry::configure_scope(|scope| scope.get_span());
        let span = parent.map(|parent| parent.start_child(OP_PUBLISH, destination));
        let active = span.clone().map(TransactionOrSpan::from);
        if let Some(active) = &active {
            set_common_data(active, system, destination, &message_id, None);
        }
        // The consumer hangs under the publish span.
        let ctx = TraceContext::capture_under(active.as_ref());
        let headers = ctx
            .to_headers()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        Publish {
            span,
            trace: MessageTrace {
                headers,
                published_at_ms,
            },
        }
    }

    /// Records `messaging.message.body.size`: the size of the message body in bytes.
    ///
    /// ```
    /// let publish = traced_spawn::queue::Publish::start("redis", "jobs", "1");
    /// publish.body_size(512);
    /// publish.finish(&Ok::<(), ()>(()));
    /// ```
    pub fn body_size(&self, bytes: usize) {
        if let Some(span) = &self.span {
            span.set_data(BODY_SIZE_KEY, Value::from(bytes));
        }
    }

    /// Records `messaging.message.envelope.size`: the size of the whole message in bytes, body
    /// and envelope, where the engine knows it.
    ///
    /// ```
    /// let publish = traced_spawn::queue::Publish::start("nats", "jobs", "1");
    /// publish.envelope_size(700);
    /// publish.finish(&Ok::<(), ()>(()));
    /// ```
    pub fn envelope_size(&self, bytes: usize) {
        if let Some(span) = &self.span {
            span.set_data(ENVELOPE_SIZE_KEY, Value::from(bytes));
        }
    }

    /// What goes into the message: the propagation headers of the publish span and the publish
    /// time.
    ///
    /// ```
    /// let publish = traced_spawn::queue::Publish::start("redis", "jobs", "1");
    /// let trace = publish.trace().clone();
    /// publish.finish(&Ok::<(), ()>(()));
    /// assert!(trace.published_at_ms > 0);
    /// ```
    pub fn trace(&self) -> &MessageTrace {
        &self.trace
    }

    /// Finishes the publish span: `ok` for `Ok`, `internal_error` for `Err` (the message did not
    /// reach the queue).
    ///
    /// ```
    /// let publish = traced_spawn::queue::Publish::start("redis", "jobs", "1");
    /// let sent: Result<(), &str> = Err("connection refused");
    /// publish.finish(&sent);
    /// ```
    pub fn finish<T, E>(mut self, result: &Result<T, E>) {
        if let Some(span) = self.span.take() {
            span.set_status(match result {
                Ok(_) => SpanStatus::Ok,
                Err(_) => SpanStatus::InternalError,
            });
            span.finish();
        }
    }
}

impl Drop for Publish {
    fn drop(&mut self) {
        if let Some(span) = self.span.take() {
            span.set_status(SpanStatus::Cancelled);
            span.finish();
        }
    }
}

/// The consumer side of one message: continues the producer's trace and runs the handler inside a
/// `queue.process` span.
///
/// [`Process::run`] (on the current thread) and [`Process::bind`] (a future) start a continuation
/// transaction of the message's trace (op [`OP_CONSUMER`], parent = the publish span, the
/// producer's sampling decision) and inside it a `queue.process` span named after the destination,
/// with the messaging data, the retry count and the receive latency, measured when processing
/// starts. The handler runs with the `queue.process` span active, so its own spans nest under it.
/// An `Err` from the handler finishes both as `internal_error`, as does a panic.
///
/// A message without valid trace headers (a producer without Sentry, or a malformed value) is
/// never partly used: it is processed like a [`TraceContext::capture`] taken where it runs, in the
/// trace of that scope.
///
/// ```
/// use traced_spawn::queue::{MessageTrace, Process};
///
/// let trace = MessageTrace { published_at_ms: 1_700_000_000_000, ..Default::default() };
/// let result = Process::new("redis", "jobs", "job-7", &trace)
///     .retry_count(1)
///     .run("worker::job", || Ok::<_, std::io::Error>("done"));
/// assert_eq!(result.unwrap(), "done");
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Process does nothing until it is run or bound"]
pub struct Process {
    system: String,
    destination: String,
    message_id: String,
    body_size: Option<usize>,
    retry_count: u64,
    trace: MessageTrace,
}

impl Process {
    /// Describes the message to process: the messaging system, the queue it came from, its id and
    /// the [`MessageTrace`] it carried.
    ///
    /// ```
    /// let trace = traced_spawn::queue::MessageTrace::default();
    /// let process = traced_spawn::queue::Process::new("redis", "jobs", "job-1", &trace);
    /// assert_eq!(process.run("worker::job", || Ok::<_, ()>(1)), Ok(1));
    /// ```
    pub fn new(
        system: impl Into<String>,
        destination: impl Into<String>,
        message_id: impl Into<String>,
        trace: &MessageTrace,
    ) -> Process {
        Process {
            system: system.into(),
            destination: destination.into(),
            message_id: message_id.into(),
            body_size: None,
            retry_count: 0,
            trace: trace.clone(),
        }
    }

    /// Records `messaging.message.body.size`: the size of the message body in bytes.
    ///
    /// ```
    /// let trace = traced_spawn::queue::MessageTrace::default();
    /// let process = traced_spawn::queue::Process::new("redis", "jobs", "1", &trace).body_size(64);
    /// assert_eq!(process.run("worker::job", || Ok::<_, ()>(())), Ok(()));
    /// ```
    pub fn body_size(mut self, bytes: usize) -> Process {
        self.body_size = Some(bytes);
        self
    }

    /// Records `messaging.message.retry.count`: how many attempts at this message came before
    /// this one (0, the default, for the first delivery).
    ///
    /// ```
    /// let trace = traced_spawn::queue::MessageTrace::default();
    /// let process = traced_spawn::queue::Process::new("redis", "jobs", "1", &trace).retry_count(2);
    /// assert_eq!(process.run("worker::job", || Ok::<_, ()>(())), Ok(()));
    /// ```
    pub fn retry_count(mut self, retries: u64) -> Process {
        self.retry_count = retries;
        self
    }

    fn builder(&self, name: String) -> Builder<crate::classify::ErrIsFailure> {
        let builder = Builder::new(name).op(OP_CONSUMER).fallible();
        match self.trace.context() {
            Ok(ctx) => builder.context(ctx),
            // No (valid) trace in the message: the trace of the scope current here.
            Err(_) => builder.context(TraceContext::capture()),
        }
    }

    /// Opens the `queue.process` span under the continuation and makes it the active span.
    fn open(&self) -> Option<(Span, Option<TransactionOrSpan>)> {
        let latency = self.trace.receive_latency_ms(now_ms());
        let parent = sentry::configure_scope(|scope| scope.get_span())?;
        let span = parent.start_child(OP_PROCESS, &self.destination);
        let active = TransactionOrSpan::from(span.clone());
        set_common_data(
            &active,
            &self.system,
            &self.destination,
            &self.message_id,
            self.body_size,
        );
        active.set_data(RETRY_COUNT_KEY, Value::from(self.retry_count));
        active.set_data(RECEIVE_LATENCY_KEY, Value::from(latency));
        let previous = activate(&active);
        Some((span, previous))
    }

    /// Runs `handler` on the current thread as the processing of the message, in a continuation
    /// transaction named `name`; returns what it returns.
    ///
    /// ```
    /// use traced_spawn::queue::{Process, Publish};
    ///
    /// let (queue, worker) = std::sync::mpsc::channel();
    /// let publish = Publish::start("channel", "jobs", "job-1");
    /// let sent = queue.send((publish.trace().clone(), 20));
    /// publish.finish(&sent);
    ///
    /// let consumer = std::thread::spawn(move || {
    ///     let (trace, n) = worker.recv().unwrap();
    ///     Process::new("channel", "jobs", "job-1", &trace).run("worker::double", || Ok::<_, ()>(n * 2))
    /// });
    /// assert_eq!(consumer.join().unwrap(), Ok(40));
    /// ```
    pub fn run<T, E>(
        self,
        name: impl Into<String>,
        handler: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        self.builder(name.into()).run(|| match self.open() {
            None => handler(),
            Some((span, previous)) => {
                // Finishes the span even when the handler panics.
                let guard = ProcessSpan {
                    span: Some(span),
                    previous,
                };
                let result = handler();
                guard.finish(result.is_ok());
                result
            }
        })
    }

    /// Wraps `handler` (a future) as the processing of the message, in a continuation transaction
    /// named `name` that starts at the first poll; every poll runs under the continuation's hub.
    ///
    /// ```
    /// use traced_spawn::queue::{MessageTrace, Process};
    ///
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let trace = MessageTrace::default();
    /// let job = Process::new("redis", "jobs", "job-1", &trace)
    ///     .bind("worker::job", async { Ok::<_, ()>("sent") });
    /// assert_eq!(rt.block_on(job), Ok("sent"));
    /// ```
    pub fn bind<T, E, F>(
        self,
        name: impl Into<String>,
        handler: F,
    ) -> impl Future<Output = Result<T, E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let builder = self.builder(name.into());
        builder.bind(async move {
            match self.open() {
                None => handler.await,
                Some((span, previous)) => {
                    // Dropped before the end (cancelled), the guard finishes the span as such.
                    let mut guard = ProcessSpan {
                        span: Some(span),
                        previous,
                    };
                    let result = handler.await;
                    guard.finish_ref(result.is_ok());
                    result
                }
            }
        })
    }
}

/// An open `queue.process` span, finished exactly once: by `finish`, or on drop (a panic, a
/// cancelled future) as `internal_error` / `cancelled`.
struct ProcessSpan {
    span: Option<Span>,
    previous: Option<TransactionOrSpan>,
}

impl ProcessSpan {
    fn finish(mut self, ok: bool) {
        self.finish_ref(ok);
    }

    fn finish_ref(&mut self, ok: bool) {
        if let Some(span) = self.span.take() {
            span.set_status(if ok {
                SpanStatus::Ok
            } else {
                SpanStatus::InternalError
            });
            span.finish();
            restore(self.previous.take());
        }
    }
}

impl Drop for ProcessSpan {
    fn drop(&mut self) {
        if let Some(span) = self.span.take() {
            span.set_status(if std::thread::panicking() {
                SpanStatus::InternalError
            } else {
                SpanStatus::Cancelled
            });
            span.finish();
            restore(self.previous.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use sentry::protocol::{EnvelopeItem, Transaction};
    use sentry::test::TestTransport;
    use sentry::{ClientOptions, Hub};

    use super::*;

    /// Runs `f` on a hub with a sampled client on sentry's test transport; returns the
    /// transactions sent.
    fn captured(f: impl FnOnce()) -> Vec<Transaction<'static>> {
        let transport = TestTransport::new();
        let mut options = ClientOptions::new().traces_sample_rate(1.0);
        options.dsn = Some("https://public@sentry.invalid/1".parse().unwrap());
        options.transport = Some(Arc::new(transport.clone()));
        let hub = Arc::new(Hub::new(Some(Arc::new(options.into())), Default::default()));
        Hub::run(hub, f);
        transport
            .fetch_and_clear_envelopes()
            .iter()
            .flat_map(|envelope| envelope.items().cloned().collect::<Vec<_>>())
            .filter_map(|item| match item {
                EnvelopeItem::Transaction(tx) => Some(*tx),
                _ => None,
            })
            .collect()
    }

    fn in_request<R>(f: impl FnOnce() -> R) -> (R, sentry::protocol::TraceContext) {
        let tx =
            sentry::start_transaction(sentry::TransactionContext::new("POST /ask", "http.server"));
        let previous = activate(&tx.clone().into());
        let out = f();
        restore(previous);
        let ctx = tx.get_trace_context();
        tx.finish();
        (out, ctx)
    }

    fn named<'a>(txs: &'a [Transaction<'static>], name: &str) -> &'a Transaction<'static> {
        txs.iter()
            .find(|tx| tx.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no transaction {name}"))
    }

    fn trace_of<'a>(tx: &'a Transaction<'static>) -> &'a sentry::protocol::TraceContext {
        match tx.contexts.get("trace") {
            Some(sentry::protocol::Context::Trace(trace)) => trace,
            other => panic!("no trace context: {other:?}"),
        }
    }

    #[test]
    fn consumer_hangs_under_the_publish_span_with_the_queue_data() {
        let mut request = None;
        let txs = captured(|| {
            let (trace, ctx) = in_request(|| {
                let publish = Publish::start("test", "answers", "m-1");
                publish.body_size(4);
                let trace = publish.trace().clone();
                publish.finish(&Ok::<(), ()>(()));
                trace
            });
            request = Some(ctx);
            std::thread::sleep(Duration::from_millis(30));
            // A consumer on another thread with the process hub: only the message links it.
            let hub = Hub::current();
            std::thread::spawn(move || {
                Hub::run(hub, || {
                    Process::new("test", "answers", "m-1", &trace)
                        .body_size(4)
                        .retry_count(2)
                        .run("worker::answer", || {
                            sentry::configure_scope(|scope| scope.get_span())
                                .unwrap()
                                .start_child("llm.generate", "answer")
                                .finish();
                            Ok::<_, ()>(())
                        })
                })
            })
            .join()
            .unwrap()
            .unwrap();
        });
        let request = request.unwrap();
        let producer = named(&txs, "POST /ask");
        let publish = &producer.spans[0];
        assert_eq!(publish.op.as_deref(), Some(OP_PUBLISH));
        assert_eq!(publish.description.as_deref(), Some("answers"));
        assert_eq!(publish.parent_span_id, Some(request.span_id));
        assert_eq!(publish.status, Some(SpanStatus::Ok));
        assert_eq!(publish.data[SYSTEM_KEY], "test");
        assert_eq!(publish.data[DESTINATION_KEY], "answers");
        assert_eq!(publish.data[MESSAGE_ID_KEY], "m-1");
        assert_eq!(publish.data[BODY_SIZE_KEY], 4);

        let consumer = named(&txs, "worker::answer");
        let consumer_trace = trace_of(consumer);
        assert_eq!(consumer_trace.op.as_deref(), Some(OP_CONSUMER));
        assert_eq!(consumer_trace.trace_id, request.trace_id);
        assert_eq!(consumer_trace.parent_span_id, Some(publish.span_id));
        assert_eq!(consumer_trace.status, Some(SpanStatus::Ok));
        let process = consumer
            .spans
            .iter()
            .find(|span| span.op.as_deref() == Some(OP_PROCESS))
            .unwrap();
        assert_eq!(process.parent_span_id, Some(consumer_trace.span_id));
        assert_eq!(process.status, Some(SpanStatus::Ok));
        assert_eq!(process.data[SYSTEM_KEY], "test");
        assert_eq!(process.data[DESTINATION_KEY], "answers");
        assert_eq!(process.data[MESSAGE_ID_KEY], "m-1");
        assert_eq!(process.data[BODY_SIZE_KEY], 4);
        assert_eq!(process.data[RETRY_COUNT_KEY], 2);
        let latency = process.data[RECEIVE_LATENCY_KEY].as_u64().unwrap();
        assert!((30..5_000).contains(&latency), "latency {latency} ms");
        // The work nests under queue.process.
        let work = consumer
            .spans
            .iter()
            .find(|span| span.op.as_deref() == Some("llm.generate"))
            .unwrap();
        assert_eq!(work.parent_span_id, Some(process.span_id));
    }

    #[test]
    fn the_message_carries_the_headers_of_the_publish_span_unchanged() {
        captured(|| {
            in_request(|| {
                let publish = Publish::start("test", "q", "1");
                let span_id = publish.span.as_ref().unwrap().get_span_id();
                let trace = publish.trace().clone();
                // What `to_headers` gives for a context whose active span is the publish span.
                let previous = activate(&publish.span.clone().unwrap().into());
                let expected: BTreeMap<String, String> = TraceContext::capture()
                    .to_headers()
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value))
                    .collect();
                restore(previous);
                assert_eq!(trace.headers, expected);
                assert_eq!(trace.context().unwrap().parent_span_id(), Some(span_id));
                publish.finish(&Ok::<(), ()>(()));
            });
        });
    }

    #[test]
    fn a_failed_publish_is_an_internal_error_and_a_dropped_one_cancelled() {
        let txs = captured(|| {
            in_request(|| {
                Publish::start("test", "q", "1").finish(&Err::<(), _>("refused"));
                drop(Publish::start("test", "q", "2"));
            });
        });
        let spans = &named(&txs, "POST /ask").spans;
        assert_eq!(spans[0].status, Some(SpanStatus::InternalError));
        assert_eq!(spans[1].status, Some(SpanStatus::Cancelled));
    }

    #[test]
    fn a_failed_or_panicking_handler_is_an_internal_error() {
        let txs = captured(|| {
            let (trace, _) = in_request(|| {
                let publish = Publish::start("test", "q", "1");
                let trace = publish.trace().clone();
                publish.finish(&Ok::<(), ()>(()));
                trace
            });
            let failed = Process::new("test", "q", "1", &trace)
                .run("worker::fails", || Err::<(), _>("boom"));
            assert_eq!(failed, Err("boom"));
            let panicked = std::panic::catch_unwind(|| {
                Process::new("test", "q", "1", &trace)
                    .run("worker::panics", || -> Result<(), ()> { panic!("boom") })
            });
            assert!(panicked.is_err());
        });
        for name in ["worker::fails", "worker::panics"] {
            let tx = named(&txs, name);
            assert_eq!(
                trace_of(tx).status,
                Some(SpanStatus::InternalError),
                "{name}"
            );
            assert_eq!(tx.spans[0].op.as_deref(), Some(OP_PROCESS), "{name}");
            assert_eq!(
                tx.spans[0].status,
                Some(SpanStatus::InternalError),
                "{name}"
            );
        }
    }

    #[test]
    fn bind_processes_a_future_in_the_message_trace() {
        let mut request = None;
        let txs = captured(|| {
            let (trace, ctx) = in_request(|| {
                let publish = Publish::start("test", "q", "7");
                let trace = publish.trace().clone();
                publish.finish(&Ok::<(), ()>(()));
                trace
            });
            request = Some(ctx);
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let out = rt.block_on(Process::new("test", "q", "7", &trace).retry_count(1).bind(
                "worker::async",
                async {
                    tokio::task::yield_now().await;
                    Ok::<_, ()>(7)
                },
            ));
            assert_eq!(out, Ok(7));
        });
        let request = request.unwrap();
        let publish = &named(&txs, "POST /ask").spans[0];
        let consumer = named(&txs, "worker::async");
        assert_eq!(trace_of(consumer).trace_id, request.trace_id);
        assert_eq!(trace_of(consumer).parent_span_id, Some(publish.span_id));
        assert_eq!(consumer.spans[0].op.as_deref(), Some(OP_PROCESS));
        assert_eq!(consumer.spans[0].data[RETRY_COUNT_KEY], 1);
    }

    #[test]
    fn without_a_transaction_the_message_carries_the_scope_trace() {
        let txs = captured(|| {
            let scope_trace = TraceContext::capture().trace_id();
            let publish = Publish::start("test", "q", "1");
            assert!(publish.span.is_none());
            let trace = publish.trace().clone();
            publish.finish(&Ok::<(), ()>(()));
            assert_eq!(trace.context().unwrap().trace_id(), scope_trace);
            Process::new("test", "q", "1", &trace)
                .run("worker::job", || Ok::<_, ()>(()))
                .unwrap();
        });
        assert_eq!(txs.len(), 1);
        assert_eq!(txs[0].spans[0].op.as_deref(), Some(OP_PROCESS));
    }

    #[test]
    fn a_message_with_malformed_trace_headers_continues_the_consumer_scope() {
        let mut scope_trace = None;
        let txs = captured(|| {
            scope_trace = TraceContext::capture().trace_id();
            let trace = MessageTrace {
                headers: [("sentry-trace".to_owned(), "not a trace".to_owned())].into(),
                published_at_ms: now_ms(),
            };
            assert!(trace.context().is_err());
            Process::new("test", "q", "1", &trace)
                .run("worker::job", || Ok::<_, ()>(()))
                .unwrap();
        });
        assert_eq!(txs.len(), 1);
        assert_eq!(Some(trace_of(&txs[0]).trace_id), scope_trace);
        assert_eq!(txs[0].spans[0].op.as_deref(), Some(OP_PROCESS));
    }

    #[test]
    fn an_unsampled_message_is_processed_without_a_transaction() {
        let txs = captured(|| {
            let trace = MessageTrace {
                headers: [(
                    "sentry-trace".to_owned(),
                    "0123456789abcdef0123456789abcdef-0123456789abcdef-0".to_owned(),
                )]
                .into(),
                published_at_ms: now_ms(),
            };
            let out = Process::new("test", "q", "1", &trace).run("worker::job", || Ok::<_, ()>(5));
            assert_eq!(out, Ok(5));
        });
        assert!(
            txs.is_empty(),
            "the producer's decision not to sample is kept"
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn a_message_trace_round_trips_through_json() {
        let trace = MessageTrace {
            headers: [("baggage".to_owned(), "sentry-trace_id=1".to_owned())].into(),
            published_at_ms: 1_700_000_000_123,
        };
        let json = serde_json::to_string(&trace).unwrap();
        assert_eq!(serde_json::from_str::<MessageTrace>(&json).unwrap(), trace);
    }
}
