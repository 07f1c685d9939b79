//! Transports: [`ConsoleTransport`] keeps what the printer shows; the client [`init`] binds sends
//! every envelope to it, to Spotlight (`SENTRY_SPOTLIGHT`) and to the DSN (`SENTRY_DSN`).
//!
//! [`init`]: super::init

use std::collections::{HashMap, HashSet};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sentry::protocol::{EnvelopeItem, Event, ItemContainer, Log, TraceId};
use sentry::types::Dsn;
use sentry::{ClientOptions, Envelope, Transport, TransportFactory, TransportOptions};

use super::spotlight::{SpotlightSender, IDLE_TIMEOUT};
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
            let recorder = self
                .upstream
                .is_none()
                .then(|| options.client_report_recorder.clone());
            SpotlightSender::start(url, recorder)
                .inspect_err(|err| eprintln!("traced_spawn::console: {err}: not sending to it"))
                .ok()
        });
        let upstream = self
            .upstream
            .clone()
            .and_then(|factory| FreshUpstream::new(factory, options));
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
    spotlight: Option<SpotlightSender>,
    upstream: Option<FreshUpstream>,
}

impl Transport for Tee {
    fn send_envelope(&self, envelope: Envelope) {
        if let Some(spotlight) = &self.spotlight {
            spotlight.send(envelope.clone());
        }
        if let Some(upstream) = &self.upstream {
            upstream.send(envelope.clone());
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

/// The DSN's transport (sentry's, from `options.transport` or its default HTTP transport),
/// replaced by a new one, with a new connection pool, when it has been idle for
/// [`IDLE_TIMEOUT`].
///
/// sentry's HTTP transports keep idle connections for up to 90 s, longer than many servers and
/// proxies keep them open (Spotlight and Node 5 s); an envelope sent on a connection the server
/// already closed fails and is dropped with a `network_error` client report. A fresh transport
/// after an idle pause opens a new connection instead. The one it replaces is flushed and
/// dropped on a thread of its own, so the caller never waits for it.
struct FreshUpstream {
    factory: Arc<dyn TransportFactory>,
    settings: UpstreamSettings,
    current: Mutex<Current>,
}

/// What a new transport for the DSN is created with (sentry's `TransportOptions` is not `Clone`).
struct UpstreamSettings {
    dsn: Dsn,
    user_agent: std::borrow::Cow<'static, str>,
    http_proxy: Option<std::borrow::Cow<'static, str>>,
    https_proxy: Option<std::borrow::Cow<'static, str>>,
    accept_invalid_certs: bool,
    capacity: Option<std::num::NonZeroUsize>,
    recorder: sentry::client_report::Recorder,
}

struct Current {
    transport: Option<Arc<dyn Transport>>,
    last_send: Instant,
    retired: Vec<JoinHandle<()>>,
}

impl FreshUpstream {
    /// `None` when `factory` cannot create a transport (reported on stderr).
    fn new(factory: Arc<dyn TransportFactory>, options: TransportOptions) -> Option<FreshUpstream> {
        let settings = UpstreamSettings {
            dsn: options.dsn.clone(),
            user_agent: options.user_agent.clone(),
            http_proxy: options.http_proxy.clone(),
            https_proxy: options.https_proxy.clone(),
            accept_invalid_certs: options.accept_invalid_certs,
            capacity: options.transport_channel_capacity,
            recorder: options.client_report_recorder.clone(),
        };
        let transport = create(&*factory, options)?;
        Some(FreshUpstream {
            factory,
            settings,
            current: Mutex::new(Current {
                transport: Some(transport),
                last_send: Instant::now(),
                retired: Vec::new(),
            }),
        })
    }

    fn options(&self) -> Option<TransportOptions> {
        let s = &self.settings;
        let mut client = ClientOptions::new();
        client.dsn = Some(s.dsn.clone());
        client.user_agent = s.user_agent.clone();
        client.http_proxy = s.http_proxy.clone();
        client.https_proxy = s.https_proxy.clone();
        client.accept_invalid_certs = s.accept_invalid_certs;
        client.transport_channel_capacity = s.capacity;
        let mut options = TransportOptions::try_from_client_options(&client)?;
        options.client_report_recorder = s.recorder.clone();
        Some(options)
    }

    fn current(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, envelope: Envelope) {
        let mut current = self.current();
        if current.last_send.elapsed() >= IDLE_TIMEOUT {
            if let Some(options) = self.options() {
                if let Some(fresh) = create(&*self.factory, options) {
                    if let Some(old) = current.transport.replace(fresh) {
                        current.retired.retain(|handle| !handle.is_finished());
                        let retire = std::thread::Builder::new()
                            .name("traced-spawn-console-retire".to_owned())
                            .spawn(move || {
                                old.shutdown(Duration::from_secs(2));
                            });
                        if let Ok(handle) = retire {
                            current.retired.push(handle);
                        }
                    }
                }
            }
        }
        current.last_send = Instant::now();
        if let Some(transport) = &current.transport {
            transport.send_envelope(envelope);
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        let transport = self.current().transport.clone();
        transport.is_none_or(|transport| transport.flush(timeout))
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        let (transport, retired) = {
            let mut current = self.current();
            (
                current.transport.take(),
                std::mem::take(&mut current.retired),
            )
        };
        let done = transport.is_none_or(|transport| transport.shutdown(timeout));
        for handle in retired {
            let _ = handle.join();
        }
        done
    }
}

/// Creates a transport with `factory`. sentry's default factory panics when the `sentry` crate
/// has no HTTP transport compiled in: say what to do and keep printing rather than take the
/// program down.
fn create(factory: &dyn TransportFactory, options: TransportOptions) -> Option<Arc<dyn Transport>> {
    match panic::catch_unwind(AssertUnwindSafe(|| {
        factory.create_transport_with_options(options)
    })) {
        Ok(transport) => Some(transport),
        Err(_) => {
            eprintln!(
                "traced_spawn::console: no HTTP transport to send to the DSN: reporting to the \
                 console only (enable one in your `sentry` dependency, e.g. its `reqwest` feature)"
            );
            None
        }
    }
}
