//! NATS messages in the caller's trace, in the shape of Sentry's Queues module (feature `nats`).
//!
//! The trace travels in the message's NATS headers, so any producer and consumer that read and
//! write headers can continue it, across processes and machines:
//!
//! - **Headers**: [`inject`] writes a [`MessageTrace`] into a [`HeaderMap`] (the propagation
//!   headers under their own names, `sentry-trace`, `baggage`, `traceparent`, and the publish time
//!   under [`PUBLISHED_AT_HEADER`]); [`extract`] reads it back. Use them with core NATS
//!   (`Client::publish_with_headers`) around [`Publish`] and [`Process`].
//! - **Publish**: [`publish`] publishes to JetStream inside a `queue.publish` span under the
//!   caller's active span, with the trace in the headers and a `Nats-Msg-Id` (the message id both
//!   sides record, and JetStream's de-duplication id). The span ends when JetStream acknowledges
//!   the message (it is stored); a publish that fails or is not acknowledged finishes it as
//!   `internal_error` and returns async-nats' error.
//! - **Consume**: [`Delivery::new`] turns a JetStream message (from a durable pull or push
//!   consumer) into a continuation of its publish span: [`Delivery::bind`] / [`Delivery::run`]
//!   run the handler in a continuation transaction holding a `queue.process` span, whose status
//!   is the handler's result.
//!
//! | data of `queue.process` | from |
//! |---|---|
//! | `messaging.system` | `nats` |
//! | `messaging.destination.name` | the message's subject |
//! | `messaging.message.id` | the `Nats-Msg-Id` header, else the stream sequence |
//! | `messaging.message.retry.count` | JetStream's delivery count minus one |
//! | `messaging.message.receive.latency` | now minus [`PUBLISHED_AT_HEADER`] (else the time JetStream stored the message) |
//! | `messaging.message.body.size` | the payload's length |
//! | [`ENVELOPE_SIZE_KEY`] `messaging.message.envelope.size` | the payload plus the serialized header block, as NATS counts them against `max_payload` |
//!
//! The retry count comes from the server: a message whose consumer died before acknowledging it
//! (killed, out of memory) is delivered again after the consumer's `ack_wait`, in the same trace,
//! with retry count 1. Delivery is at least once; make the work idempotent where that matters.
//! Acknowledge after the handler, with its result: `ack` for `Ok`, a `nak` (or nothing) for
//! `Err`.
//!
//! ```no_run
//! use async_nats::jetstream::{self, consumer::pull, AckKind};
//! use futures_util::StreamExt;
//! use traced_spawn::nats::{publish, Delivery};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let client = async_nats::connect("nats://127.0.0.1:4222").await?;
//! let js = jetstream::new(client);
//! let stream = js
//!     .get_or_create_stream(jetstream::stream::Config {
//!         name: "REPLIES".to_owned(),
//!         subjects: vec!["slack.replies".to_owned()],
//!         ..Default::default()
//!     })
//!     .await?;
//!
//! // Producer, inside a request's transaction: a queue.publish span, the trace in the headers.
//! publish(&js, "slack.replies", async_nats::HeaderMap::new(), "why?".into()).await?;
//!
//! // Consumer (usually another process): a durable pull consumer.
//! let consumer = stream
//!     .get_or_create_consumer("worker", pull::Config {
//!         durable_name: Some("worker".to_owned()),
//!         ..Default::default()
//!     })
//!     .await?;
//! let mut messages = consumer.messages().await?;
//! while let Some(message) = messages.next().await {
//!     let message = message?;
//!     let done = Delivery::new(&message)
//!         .bind("worker::reply", async { Ok::<_, std::io::Error>(()) })
//!         .await;
//!     match done {
//!         Ok(()) => message.ack().await?,
//!         Err(_) => message.ack_with(AckKind::Nak(None)).await?,
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::future::Future;

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::context::PublishError;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, Context};
use async_nats::HeaderMap;
use bytes::Bytes;
use sentry::protocol::Value;

use crate::header::{BAGGAGE, SENTRY_TRACE, TRACEPARENT, TRACESTATE};
use crate::queue::{MessageTrace, Process, Publish};

/// `messaging.system` of NATS: `nats`.
///
/// ```
/// assert_eq!(traced_spawn::nats::SYSTEM, "nats");
/// ```
pub const SYSTEM: &str = "nats";

/// Header of the publish time, in milliseconds since the Unix epoch (the same name as apalis
/// metadata uses). The propagation headers are stored under their own names.
///
/// ```
/// use traced_spawn::nats::{inject, PUBLISHED_AT_HEADER};
/// use traced_spawn::queue::MessageTrace;
///
/// let mut headers = async_nats::HeaderMap::new();
/// inject(&MessageTrace { published_at_ms: 42, ..Default::default() }, &mut headers);
/// assert_eq!(headers.get(PUBLISHED_AT_HEADER).unwrap().as_str(), "42");
/// ```
pub const PUBLISHED_AT_HEADER: &str = "sentry-published-at-ms";

/// Span data key of the size of the whole message in bytes, payload and headers:
/// `messaging.message.envelope.size` (OpenTelemetry's messaging conventions). Recorded on
/// `queue.publish` by [`publish`] and on `queue.process` by [`Delivery`].
///
/// ```
/// assert_eq!(traced_spawn::nats::ENVELOPE_SIZE_KEY, "messaging.message.envelope.size");
/// ```
pub use crate::queue::ENVELOPE_SIZE_KEY;

/// Writes `trace` into `headers`: each propagation header under its name, the publish time under
/// [`PUBLISHED_AT_HEADER`]. Replaces earlier values of those headers and keeps every other header.
///
/// ```
/// use traced_spawn::nats::{extract, inject};
/// use traced_spawn::queue::MessageTrace;
///
/// let trace = MessageTrace {
///     headers: [("sentry-trace".to_owned(), "0123456789abcdef0123456789abcdef-0123456789abcdef-1".to_owned())].into(),
///     published_at_ms: 1_700_000_000_000,
/// };
/// let mut headers = async_nats::HeaderMap::new();
/// headers.insert("tenant", "acme");
/// inject(&trace, &mut headers);
/// assert_eq!(extract(&headers), trace);
/// assert_eq!(headers.get("tenant").unwrap().as_str(), "acme");
/// ```
pub fn inject(trace: &MessageTrace, headers: &mut HeaderMap) {
    for (name, value) in &trace.headers {
        headers.insert(name.as_str(), value.as_str());
    }
    headers.insert(PUBLISHED_AT_HEADER, trace.published_at_ms.to_string());
}

/// Reads the trace [`inject`] wrote. Never fails: missing headers give an empty trace (the
/// consumer then continues its own scope's trace) and a missing or malformed publish time gives
/// 0. Several values of one propagation header are joined with `,` in order, as HTTP combines
/// header lines (W3C `tracestate` and `baggage` are lists).
///
/// ```
/// use traced_spawn::nats::extract;
///
/// let mut headers = async_nats::HeaderMap::new();
/// headers.append("baggage", "sentry-trace_id=0123456789abcdef0123456789abcdef");
/// headers.append("baggage", "tenant=acme");
/// let trace = extract(&headers);
/// assert_eq!(trace.headers["baggage"], "sentry-trace_id=0123456789abcdef0123456789abcdef,tenant=acme");
/// assert_eq!(trace.published_at_ms, 0);
/// ```
pub fn extract(headers: &HeaderMap) -> MessageTrace {
    let headers_of = |name: &str| {
        let values: Vec<&str> = headers.get_all(name).map(|value| value.as_str()).collect();
        (!values.is_empty()).then(|| values.join(","))
    };
    let trace_headers = [SENTRY_TRACE, BAGGAGE, TRACEPARENT, TRACESTATE]
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), headers_of(name)?)))
        .collect();
    let published_at_ms = headers
        .get_last(PUBLISHED_AT_HEADER)
        .and_then(|ms| ms.as_str().trim().parse().ok())
        .unwrap_or(0);
    MessageTrace {
        headers: trace_headers,
        published_at_ms,
    }
}

/// Size in bytes of a message as NATS counts it against the server's `max_payload`: the payload
/// plus the serialized header block (`NATS/1.0\r\n`, each `name: value\r\n`, `\r\n`), if any.
///
/// ```
/// let mut headers = async_nats::HeaderMap::new();
/// headers.insert("a", "b");
/// assert_eq!(traced_spawn::nats::envelope_size(Some(&headers), 3), 10 + 6 + 2 + 3);
/// assert_eq!(traced_spawn::nats::envelope_size(None, 3), 3);
/// ```
pub fn envelope_size(headers: Option<&HeaderMap>, payload_len: usize) -> usize {
    let headers_len = match headers {
        Some(headers) if !headers.is_empty() => {
            let lines: usize = headers
                .iter()
                .map(|(name, values)| {
                    let name: &str = name.as_ref();
                    values
                        .iter()
                        .map(|value| name.len() + 2 + value.as_str().len() + 2)
                        .sum::<usize>()
                })
                .sum();
            b"NATS/1.0\r\n".len() + lines + 2
        }
        _ => 0,
    };
    headers_len + payload_len
}

/// What [`publish`] published: the message id, JetStream's acknowledgement and the trace put into
/// the headers.
///
/// ```no_run
/// # async fn run(js: async_nats::jetstream::Context) -> Result<(), async_nats::jetstream::context::PublishError> {
/// let published = traced_spawn::nats::publish(&js, "jobs", Default::default(), "7".into()).await?;
/// println!("message {} is #{} of {}", published.id, published.ack.sequence, published.ack.stream);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Published {
    /// The message id (`Nats-Msg-Id`): the one given in the headers, or a new random one.
    pub id: String,
    /// JetStream's acknowledgement: the stream and the sequence the message got.
    pub ack: PublishAck,
    /// The trace in the message's headers.
    pub trace: MessageTrace,
}

/// Publishes `payload` to JetStream on `subject` inside a `queue.publish` span (under the caller's
/// active span), with the trace [`inject`]ed into `headers`, and waits for JetStream's
/// acknowledgement.
///
/// The message id is the `Nats-Msg-Id` of `headers`, or a new random one set there, so that the
/// publish span and the consumer's `queue.process` span name the same message (JetStream also
/// drops a second message with the same id within its duplicate window). The span records the
/// body size and ends with the acknowledgement: `ok`, or `internal_error` when the publish fails
/// (no stream for the subject, the connection is down, the acknowledgement times out), whose error
/// is returned as async-nats gives it.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let js = async_nats::jetstream::new(async_nats::connect("nats://127.0.0.1:4222").await?);
/// let mut headers = async_nats::HeaderMap::new();
/// headers.insert("Nats-Msg-Id", "order-42");
/// let published = traced_spawn::nats::publish(&js, "orders.created", headers, "{}".into()).await?;
/// assert_eq!(published.id, "order-42");
/// # Ok(())
/// # }
/// ```
pub async fn publish(
    jetstream: &Context,
    subject: impl Into<String>,
    mut headers: HeaderMap,
    payload: Bytes,
) -> Result<Published, PublishError> {
    let subject = subject.into();
    let id = match headers.get_last(NATS_MESSAGE_ID) {
        Some(id) => id.as_str().to_owned(),
        None => {
            let id = sentry::protocol::TraceId::default().to_string();
            headers.insert(NATS_MESSAGE_ID, id.as_str());
            id
        }
    };
    let publish = Publish::start(SYSTEM, &subject, id.as_str());
    publish.body_size(payload.len());
    let trace = publish.trace().clone();
    inject(&trace, &mut headers);
    publish.envelope_size(envelope_size(Some(&headers), payload.len()));
    let result = async {
        jetstream
            .publish_with_headers(subject, headers, payload)
            .await?
            .await
    }
    .await;
    publish.finish(&result);
    result.map(|ack| Published { id, ack, trace })
}

/// The time JetStream stored the message, in milliseconds since the Unix epoch, from the
/// `$JS.ACK` reply subject (ADR-15: `…<stream sequence>.<consumer sequence>.<nanos>.<pending>`,
/// optionally followed by a token).
fn stored_at_ms(reply: &str) -> Option<u64> {
    let tokens: Vec<&str> = reply.strip_prefix("$JS.ACK.")?.split('.').collect();
    let nanos = match tokens.len() {
        7 => tokens[5],
        n if n >= 9 => tokens[7],
        _ => return None,
    };
    nanos.parse::<u64>().ok().map(|nanos| nanos / 1_000_000)
}

/// One delivery of a JetStream message, as the processing of a queued message: a continuation of
/// its publish span with a `queue.process` span.
///
/// [`Delivery::new`] reads everything from the message (see the [module](self) table): the trace
/// from its headers, the retry count from JetStream's delivery count, the publish time, the
/// message id and its sizes. [`Delivery::bind`] (a future) and [`Delivery::run`] (the current
/// thread) run the handler as [`Process::bind`] and [`Process::run`] do, with the envelope size
/// recorded on the `queue.process` span. A message without trace headers is processed in the
/// trace of the scope where it runs.
///
/// ```
/// use traced_spawn::nats::{inject, Delivery};
/// use traced_spawn::queue::MessageTrace;
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # rt.block_on(async {
/// # let client = async_nats::ConnectOptions::new().retry_on_initial_connect()
/// #     .connect("127.0.0.1:1").await.unwrap();
/// # let context = async_nats::jetstream::new(client);
/// let mut headers = async_nats::HeaderMap::new();
/// inject(&MessageTrace { published_at_ms: 1_700_000_000_000, ..Default::default() }, &mut headers);
/// headers.insert("Nats-Msg-Id", "job-7");
/// // A message as a consumer receives it: its third delivery.
/// let message = async_nats::jetstream::Message {
///     message: async_nats::Message {
///         subject: "jobs".into(),
///         reply: Some("$JS.ACK.JOBS.worker.3.7.9.1700000000000000000.0".into()),
///         payload: "7".into(),
///         headers: Some(headers),
///         status: None,
///         description: None,
///         length: 0,
///     },
///     context,
/// };
/// let delivery = Delivery::new(&message);
/// assert_eq!(delivery.message_id(), "job-7");
/// assert_eq!(delivery.retry_count(), 2);
/// let doubled = delivery.bind("worker::double", async { Ok::<_, ()>(14) }).await;
/// assert_eq!(doubled, Ok(14));
/// # });
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Delivery does nothing until it is run or bound"]
pub struct Delivery {
    message_id: String,
    retry_count: u64,
    envelope_size: usize,
    trace: MessageTrace,
    process: Process,
}

impl Delivery {
    /// Reads the trace, the retry count, the message id and the sizes of `message`.
    ///
    /// The retry count is `delivered - 1` from the message's JetStream info (0 when the message
    /// carries none: it did not come from a JetStream consumer). Without [`PUBLISHED_AT_HEADER`],
    /// the receive latency counts from the time JetStream stored the message.
    ///
    /// ```no_run
    /// # async fn run(message: async_nats::jetstream::Message) {
    /// let delivery = traced_spawn::nats::Delivery::new(&message);
    /// println!("attempt {} of {}", delivery.retry_count() + 1, delivery.message_id());
    /// # }
    /// ```
    pub fn new(message: &jetstream::Message) -> Delivery {
        let info = message.info().ok();
        let retry_count = info.as_ref().map_or(0, |info| {
            u64::try_from(info.delivered).map_or(0, |delivered| delivered.saturating_sub(1))
        });
        let headers = message.headers.as_ref();
        let mut trace = headers.map(extract).unwrap_or_default();
        if trace.published_at_ms == 0 {
            if let Some(stored) = message.reply.as_deref().and_then(stored_at_ms) {
                trace.published_at_ms = stored;
            }
        }
        let message_id = headers
            .and_then(|headers| headers.get_last(NATS_MESSAGE_ID))
            .map(|id| id.as_str().to_owned())
            .or_else(|| info.as_ref().map(|info| info.stream_sequence.to_string()))
            .unwrap_or_default();
        let envelope_size = envelope_size(headers, message.payload.len());
        let process = Process::new(SYSTEM, message.subject.as_str(), &message_id, &trace)
            .body_size(message.payload.len())
            .retry_count(retry_count);
        Delivery {
            message_id,
            retry_count,
            envelope_size,
            trace,
            process,
        }
    }

    /// The message id recorded as `messaging.message.id`: `Nats-Msg-Id`, else the stream
    /// sequence.
    ///
    /// ```no_run
    /// # fn run(message: async_nats::jetstream::Message) {
    /// let id = traced_spawn::nats::Delivery::new(&message).message_id().to_owned();
    /// # }
    /// ```
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The number of earlier deliveries of this message: 0 the first time.
    ///
    /// ```no_run
    /// # fn run(message: async_nats::jetstream::Message) {
    /// if traced_spawn::nats::Delivery::new(&message).retry_count() > 0 {
    ///     println!("a redelivery: the last consumer did not acknowledge it");
    /// }
    /// # }
    /// ```
    pub fn retry_count(&self) -> u64 {
        self.retry_count
    }

    /// The size of the message in bytes, payload and headers (see [`envelope_size`]).
    ///
    /// ```no_run
    /// # fn run(message: async_nats::jetstream::Message) {
    /// let delivery = traced_spawn::nats::Delivery::new(&message);
    /// assert!(delivery.envelope_size() >= message.payload.len());
    /// # }
    /// ```
    pub fn envelope_size(&self) -> usize {
        self.envelope_size
    }

    /// The trace the message carried.
    ///
    /// ```no_run
    /// # fn run(message: async_nats::jetstream::Message) {
    /// let trace = traced_spawn::nats::Delivery::new(&message).trace().clone();
    /// println!("published at {} ms", trace.published_at_ms);
    /// # }
    /// ```
    pub fn trace(&self) -> &MessageTrace {
        &self.trace
    }

    /// The generic [`Process`] of this delivery (without the envelope size), to add to it or run
    /// it another way.
    ///
    /// ```no_run
    /// # fn run(message: async_nats::jetstream::Message) {
    /// let process = traced_spawn::nats::Delivery::new(&message).into_process();
    /// let _ = process.run("worker::job", || Ok::<_, ()>(()));
    /// # }
    /// ```
    pub fn into_process(self) -> Process {
        self.process
    }

    /// Wraps `handler` as the processing of the message, in a continuation transaction named
    /// `name` that starts at the first poll; `Err` finishes it and its `queue.process` span as
    /// `internal_error`. Acknowledge the message after it, with its result.
    ///
    /// ```no_run
    /// # async fn run(message: async_nats::jetstream::Message) -> Result<(), async_nats::Error> {
    /// let sent = traced_spawn::nats::Delivery::new(&message)
    ///     .bind("worker::send", async { Ok::<_, std::io::Error>(()) })
    ///     .await;
    /// if sent.is_ok() {
    ///     message.ack().await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn bind<T, E, F>(
        self,
        name: impl Into<String>,
        handler: F,
    ) -> impl Future<Output = Result<T, E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let size = self.envelope_size;
        self.process.bind(name, async move {
            record_envelope_size(size);
            handler.await
        })
    }

    /// Runs `handler` on the current thread as the processing of the message, in a continuation
    /// transaction named `name`; returns what it returns.
    ///
    /// ```no_run
    /// # fn run(message: async_nats::jetstream::Message) {
    /// let answer = traced_spawn::nats::Delivery::new(&message)
    ///     .run("worker::answer", || Ok::<_, std::io::Error>(42));
    /// # }
    /// ```
    pub fn run<T, E>(
        self,
        name: impl Into<String>,
        handler: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let size = self.envelope_size;
        self.process.run(name, || {
            record_envelope_size(size);
            handler()
        })
    }
}

/// Records the envelope size on the active span: inside the handler of [`Process`], the
/// `queue.process` span it opened (it opens one whenever the continuation has an active span,
/// and there is none otherwise).
fn record_envelope_size(size: usize) {
    if let Some(span) = sentry::configure_scope(|scope| scope.get_span()) {
        span.set_data(ENVELOPE_SIZE_KEY, Value::from(size));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_time_is_read_from_both_ack_subject_formats() {
        let v1 = "$JS.ACK.JOBS.worker.1.7.7.1700000000123456789.0";
        assert_eq!(stored_at_ms(v1), Some(1_700_000_000_123));
        let v2 = "$JS.ACK._.hash.JOBS.worker.1.7.7.1700000000123456789.0.token";
        assert_eq!(stored_at_ms(v2), Some(1_700_000_000_123));
        assert_eq!(stored_at_ms("_INBOX.x"), None);
        assert_eq!(stored_at_ms("$JS.ACK.a.b"), None);
    }

    #[test]
    fn the_envelope_size_is_what_nats_serializes() {
        let mut headers = HeaderMap::new();
        headers.append("Key", "value");
        headers.append("Key", "second");
        headers.insert("Nats-Msg-Id", "id-1");
        let serialized = "NATS/1.0\r\nKey: value\r\nKey: second\r\nNats-Msg-Id: id-1\r\n\r\n";
        assert_eq!(envelope_size(Some(&headers), 5), serialized.len() + 5);
        assert_eq!(envelope_size(Some(&HeaderMap::new()), 5), 5);
    }

    #[test]
    fn a_second_delivery_is_processed_with_retry_count_1_and_its_sizes() {
        use std::sync::Arc;

        use sentry::protocol::EnvelopeItem;

        let transport = sentry::test::TestTransport::new();
        let mut options = sentry::ClientOptions::new().traces_sample_rate(1.0);
        options.dsn = Some("https://public@sentry.invalid/1".parse().unwrap());
        options.transport = Some(Arc::new(transport.clone()));
        let hub = Arc::new(sentry::Hub::new(
            Some(Arc::new(options.into())),
            Default::default(),
        ));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let trace = MessageTrace {
            headers: [(
                SENTRY_TRACE.to_owned(),
                "0123456789abcdef0123456789abcdef-0123456789abcdef-1".to_owned(),
            )]
            .into(),
            published_at_ms: 1_700_000_000_000,
        };
        let mut headers = HeaderMap::new();
        inject(&trace, &mut headers);
        headers.insert(NATS_MESSAGE_ID, "job-7");
        let size = envelope_size(Some(&headers), 4);
        sentry::Hub::run(hub, || {
            rt.block_on(async {
                let client = async_nats::ConnectOptions::new()
                    .retry_on_initial_connect()
                    .connect("127.0.0.1:1")
                    .await
                    .unwrap();
                let message = jetstream::Message {
                    message: async_nats::Message {
                        subject: "jobs".into(),
                        reply: Some("$JS.ACK.JOBS.worker.2.7.9.1700000000000000000.0".into()),
                        payload: "ping".into(),
                        headers: Some(headers),
                        status: None,
                        description: None,
                        length: 0,
                    },
                    context: jetstream::new(client),
                };
                let done = Delivery::new(&message)
                    .bind("worker::job", async { Err::<(), _>("refused") })
                    .await;
                assert_eq!(done, Err("refused"));
            });
        });
        let txs: Vec<_> = transport
            .fetch_and_clear_envelopes()
            .iter()
            .flat_map(|envelope| envelope.items().cloned().collect::<Vec<_>>())
            .filter_map(|item| match item {
                EnvelopeItem::Transaction(tx) => Some(tx),
                _ => None,
            })
            .collect();
        assert_eq!(txs.len(), 1);
        let tx = &txs[0];
        let Some(sentry::protocol::Context::Trace(consumer)) = tx.contexts.get("trace") else {
            panic!("no trace context")
        };
        assert_eq!(
            consumer.trace_id.to_string(),
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            consumer.parent_span_id.map(|id| id.to_string()).as_deref(),
            Some("0123456789abcdef")
        );
        let process = &tx.spans[0];
        assert_eq!(process.op.as_deref(), Some("queue.process"));
        assert_eq!(
            process.status,
            Some(sentry::protocol::SpanStatus::InternalError)
        );
        assert_eq!(process.data["messaging.system"], "nats");
        assert_eq!(process.data["messaging.destination.name"], "jobs");
        assert_eq!(process.data["messaging.message.id"], "job-7");
        assert_eq!(process.data["messaging.message.retry.count"], 1);
        assert_eq!(process.data["messaging.message.body.size"], 4);
        assert_eq!(process.data[ENVELOPE_SIZE_KEY], size);
        assert!(process.data["messaging.message.receive.latency"].as_u64() > Some(0));
    }

    #[test]
    fn a_malformed_publish_time_reads_as_zero() {
        let mut headers = HeaderMap::new();
        headers.insert(PUBLISHED_AT_HEADER, "yesterday");
        assert_eq!(extract(&headers), MessageTrace::default());
    }
}
