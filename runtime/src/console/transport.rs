//! Transports: [`ConsoleTransport`] keeps what the printer shows; the client [`init`] binds sends
//! every envelope to it, to Spotlight (`SENTRY_SPOTLIGHT`) and to the DSN (`SENTRY_DSN`), the
//! last two through sentry's reqwest transport with a client configured by [`client_builder`].
//!
//! [`init`]: super::init

use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sentry::client_report::Recorder;
use sentry::protocol::{EnvelopeItem, Event, ItemContainer, Log, TraceId};
use sentry::transports::ReqwestHttpTransportOptions;
use sentry::{Envelope, Transport, TransportFactory, TransportOptions};

use super::spotlight::Spotlight;
use super::tree::{build_traces, trace_context, Trace};

/// A [`sentry::Transport`] that keeps transactions, error events and logs in memory, to print
/// them.
///
/// Other envelope items (sessions, client reports, attachments, metrics) are ignored.
///
/// ```
/// use std::sync::Arc;
/// use traced_spawn::console::{ConsoleTransport, PLACEHOLDER_DSN};
///
/// let transport = Arc::new(ConsoleTransport::new());
/// let mut options = sentry::ClientOptions::new()
///     .traces_sample_rate(1.0)
///     .transport(transport.clone());
/// options.dsn = Some(PLACEHOLDER_DSN.parse().unwrap());
/// let _guard = sentry::init(options);
/// sentry::capture_message("hello", sentry::Level::Error);
/// assert_eq!(transport.events().len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct ConsoleTransport {
    received: Mutex<Received>,
}

#[derive(Debug, Default)]
struct Received {
    transactions: Vec<sentry::protocol::Transaction<'static>>,
    events: Vec<Event<'static>>,
    logs: Vec<Log>,
    /// Per trace: what the live printer needs to know when a trace has settled.
    activity: HashMap<TraceId, Activity>,
}

#[derive(Debug, Clone, Copy)]
struct Activity {
    last: Instant,
    received: usize,
    printed: usize,
}

impl Received {
    fn touch(&mut self, trace_id: TraceId) {
        let activity = self.activity.entry(trace_id).or_insert(Activity {
            last: Instant::now(),
            received: 0,
            printed: 0,
        });
        activity.last = Instant::now();
        activity.received += 1;
    }
}

impl ConsoleTransport {
    /// An empty transport.
    ///
    /// ```
    /// let transport = traced_spawn::console::ConsoleTransport::new();
    /// assert!(transport.transactions().is_empty());
    /// ```
    pub fn new() -> ConsoleTransport {
        ConsoleTransport::default()
    }

    fn received(&self) -> MutexGuard<'_, Received> {
        // A panic while holding the lock cannot leave `Received` half-updated: keep going.
        self.received.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every transaction received so far, in the order they finished.
    ///
    /// ```
    /// let transport = traced_spawn::console::ConsoleTransport::new();
    /// assert_eq!(transport.transactions().len(), 0);
    /// ```
    pub fn transactions(&self) -> Vec<sentry::protocol::Transaction<'static>> {
        self.received().transactions.clone()
    }

    /// Every error event received so far, in the order they were captured.
    ///
    /// ```
    /// let transport = traced_spawn::console::ConsoleTransport::new();
    /// assert_eq!(transport.events().len(), 0);
    /// ```
    pub fn events(&self) -> Vec<Event<'static>> {
        self.received().events.clone()
    }

    /// Every Sentry log received so far, in the order they arrived (sentry sends them in batches).
    ///
    /// ```
    /// let reporter = traced_spawn::console::init();
    /// sentry::logger_warn!("disk almost full");
    /// let _ = reporter.traces(); // flushes the client, and with it the batch of logs
    /// assert_eq!(reporter.transport().logs()[0].body, "disk almost full");
    /// ```
    pub fn logs(&self) -> Vec<Log> {
        self.received().logs.clone()
    }

    /// Builds one [`Trace`] per trace id from what was received, ordered by start time.
    ///
    /// ```
    /// let transport = traced_spawn::console::ConsoleTransport::new();
    /// assert!(transport.traces().is_empty());
    /// ```
    pub fn traces(&self) -> Vec<Trace> {
        let received = self.received();
        build_traces(&received.transactions, &received.events, &received.logs)
    }

    /// The traces that received something since they were last returned by this method and
    /// nothing for `quiet` (every such trace when `all`), marked as printed.
    pub(crate) fn take_settled(&self, quiet: Duration, all: bool) -> Vec<Trace> {
        let mut received = self.received();
        let settled: HashSet<TraceId> = received
            .activity
            .iter_mut()
            .filter(|(_, a)| a.received > a.printed && (all || a.last.elapsed() >= quiet))
            .map(|(trace_id, a)| {
                a.printed = a.received;
                *trace_id
            })
            .collect();
        if settled.is_empty() {
            return Vec::new();
        }
        let mut traces = build_traces(&received.transactions, &received.events, &received.logs);
        traces.retain(|trace| settled.contains(&trace.trace_id));
        traces
    }
}

impl Transport for ConsoleTransport {
    fn send_envelope(&self, envelope: Envelope) {
        let mut received = self.received();
        for item in envelope.into_items() {
            match item {
                EnvelopeItem::Transaction(tx) => {
                    if let Some(trace) = trace_context(&tx.contexts) {
                        received.touch(trace.trace_id);
                    }
                    received.transactions.push(*tx);
                }
                EnvelopeItem::Event(event) => {
                    if let Some(trace) = trace_context(&event.contexts) {
                        received.touch(trace.trace_id);
                    }
                    received.events.push(*event);
                }
                EnvelopeItem::ItemContainer(ItemContainer::Logs(logs)) => {
                    for log in logs {
                        if let Some(trace_id) = log.trace_id {
                            received.touch(trace_id);
                        }
                        received.logs.push(log);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Creates the transport of the client [`init`](super::init) binds.
pub(crate) struct ConsoleFactory {
    pub(crate) console: Arc<ConsoleTransport>,
    /// Spotlight's URL, when `SENTRY_SPOTLIGHT` asks for it.
    pub(crate) spotlight: Option<String>,
    /// The transport factory for the DSN, when there is one.
    pub(crate) upstream: Option<Arc<dyn TransportFactory>>,
}

impl TransportFactory for ConsoleFactory {
    fn create_transport_with_options(&self, options: TransportOptions) -> Arc<dyn Transport> {
        let spotlight = self.spotlight.as_deref().and_then(|url| {
            // Losses count in client reports only when Spotlight is the one destination: the DSN
            // received what Spotlight missed.
            let recorder = match self.upstream {
                Some(_) => Recorder::default(),
                None => options.client_report_recorder.clone(),
            };
            let capacity = options.transport_channel_capacity;
            Spotlight::start(url, &options.user_agent, capacity, recorder)
                .inspect_err(|err| {
                    eprintln!("traced_spawn::console: Spotlight at {url}: {err}: not sending to it")
                })
                .ok()
        });
        let upstream = self
            .upstream
            .as_ref()
            .map(|factory| factory.create_transport_with_options(options));
        Arc::new(Tee {
            console: self.console.clone(),
            spotlight,
            upstream,
        })
    }
}

/// Records every envelope for the console and sends it to Spotlight and the DSN.
struct Tee {
    console: Arc<ConsoleTransport>,
    spotlight: Option<Spotlight>,
    upstream: Option<Arc<dyn Transport>>,
}

impl Transport for Tee {
    fn send_envelope(&self, envelope: Envelope) {
        if let Some(spotlight) = &self.spotlight {
            spotlight.send(envelope.clone());
        }
        if let Some(upstream) = &self.upstream {
            upstream.send_envelope(envelope.clone());
        }
        self.console.send_envelope(envelope);
    }

    fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let spotlight = self.spotlight.as_ref().is_none_or(|s| s.flush(timeout));
        let left = deadline.saturating_duration_since(Instant::now());
        let upstream = self.upstream.as_ref().is_none_or(|u| u.flush(left));
        spotlight && upstream
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let spotlight = self.spotlight.as_ref().is_none_or(|s| s.shutdown(timeout));
        let left = deadline.saturating_duration_since(Instant::now());
        let upstream = self.upstream.as_ref().is_none_or(|u| u.shutdown(left));
        spotlight && upstream
    }
}

/// Creates the DSN's transport when the options set none: sentry's reqwest transport, with a
/// client from [`client_builder`] that also applies the options' proxies and
/// `accept_invalid_certs` (as sentry's own client does), and says on stderr when the DSN's server
/// cannot be reached.
pub(crate) struct DsnFactory;

impl TransportFactory for DsnFactory {
    fn create_transport_with_options(&self, options: TransportOptions) -> Arc<dyn Transport> {
        let client = dsn_client(&options);
        let options = ReqwestHttpTransportOptions::from(options);
        Arc::new(
            match client {
                Some(client) => options.with_client(client),
                None => options,
            }
            .build(),
        )
    }
}

fn dsn_client(options: &TransportOptions) -> Option<reqwest::Client> {
    let dsn = &options.dsn;
    let name = format!("{}://{}:{}", dsn.scheme(), dsn.host(), dsn.port());
    let mut builder = client_builder(Arc::new(Watch::new(name, "")), dsn.host())
        .tls_danger_accept_invalid_certs(options.accept_invalid_certs);
    let proxies = [
        options.http_proxy.as_deref().map(reqwest::Proxy::http),
        options.https_proxy.as_deref().map(reqwest::Proxy::https),
    ];
    for proxy in proxies.into_iter().flatten() {
        match proxy {
            Ok(proxy) => builder = builder.proxy(proxy),
            Err(err) => eprintln!("traced_spawn::console: ignoring a proxy: {err}"),
        }
    }
    builder
        .build()
        .inspect_err(|err| eprintln!("traced_spawn::console: {err}: using sentry's own client"))
        .ok()
}

/// A pooled connection idle for longer is closed rather than reused: below the keep-alive of
/// common servers (Node and Spotlight 5 s, Apache 5 s, gunicorn 2 s, nginx 75 s), so that no
/// envelope goes to a connection the server has just closed. (A request on one the server closed
/// sooner is sent again: see [`client_builder`].)
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// The console's reqwest client for sentry's transport:
/// - connections idle for [`IDLE_TIMEOUT`] are not reused;
/// - a request on a kept-alive connection that the server closed before answering (it closed it
///   while the transport's thread was waiting for the next envelope, so nothing saw it closed) is
///   sent again, once, on a new connection;
/// - `watch` sees the outcome of every request.
///
/// The last two through reqwest's retry policy, which classifies each attempt.
pub(crate) fn client_builder(watch: Arc<Watch>, host: &str) -> reqwest::ClientBuilder {
    let policy = reqwest::retry::for_host(host.to_owned()).classify_fn(move |attempt| {
        let error = attempt.error();
        if error.is_some_and(closed_before_answering) && watch.resend() {
            return attempt.retryable();
        }
        watch.observe(match (attempt.status(), error) {
            (Some(status), _) => Ok(status.as_u16()),
            (None, error) => Err(error.map_or_else(String::new, innermost)),
        });
        attempt.success()
    });
    reqwest::Client::builder()
        .pool_idle_timeout(IDLE_TIMEOUT)
        .retry(policy)
}

/// Whether the connection was closed before any complete answer: the server did not take the
/// request (sending it again is what hyper does when it sees the close before sending).
fn closed_before_answering(mut err: &(dyn Error + 'static)) -> bool {
    loop {
        if let Some(err) = err.downcast_ref::<hyper::Error>() {
            return err.is_incomplete_message();
        }
        match err.source() {
            Some(source) => err = source,
            None => return false,
        }
    }
}

/// The innermost cause: "Connection refused (os error 111)" rather than "error sending request".
fn innermost(mut err: &(dyn Error + 'static)) -> String {
    while let Some(source) = err.source() {
        err = source;
    }
    err.to_string()
}

/// What one destination answered: says on stderr when it stops answering (once per run of
/// failures, with what to do) and when it answers again.
pub(crate) struct Watch {
    /// The destination, as messages name it: `Spotlight at http://…`.
    name: String,
    /// What to do, appended to the failure line.
    advice: &'static str,
    failing: AtomicBool,
    /// Whether the request in flight is being sent again (one at a time: the transport's thread
    /// sends them in turn).
    resent: AtomicBool,
    /// Requests answered, or failed before any answer.
    settled: AtomicUsize,
}

impl Watch {
    pub(crate) fn new(name: String, advice: &'static str) -> Watch {
        Watch {
            name,
            advice,
            failing: AtomicBool::new(false),
            resent: AtomicBool::new(false),
            settled: AtomicUsize::new(0),
        }
    }

    /// Requests answered, or failed before any answer (a timeout is neither).
    pub(crate) fn settled(&self) -> usize {
        self.settled.load(Ordering::SeqCst)
    }

    /// Whether the last request failed.
    #[cfg(test)]
    pub(crate) fn failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }

    /// Whether to send the request in flight again: not when it already was.
    fn resend(&self) -> bool {
        !self.resent.swap(true, Ordering::SeqCst)
    }

    /// One request's outcome: its status, or why it got none.
    fn observe(&self, outcome: Result<u16, String>) {
        self.resent.store(false, Ordering::SeqCst);
        self.settled.fetch_add(1, Ordering::SeqCst);
        let why = match outcome {
            // sentry's transport counts 429 as rate limiting, not as a loss.
            Ok(status) if status < 400 || status == 429 => {
                if self.failing.swap(false, Ordering::SeqCst) {
                    eprintln!("traced_spawn::console: {} is reachable again", self.name);
                }
                return;
            }
            Ok(status) => format!("it answered HTTP {status}"),
            Err(why) => why,
        };
        if !self.failing.swap(true, Ordering::SeqCst) {
            eprintln!(
                "traced_spawn::console: cannot send to {} ({why}){}",
                self.name, self.advice
            );
        }
    }
}
