//! No Sentry account needed to see how your work links up: [`init`] binds a Sentry client that
//! records every transaction and error event in a [`ConsoleTransport`]; [`Reporter::print_trees`]
//! prints them as one tree per trace, parent -> child, with op, name, duration and status.
//! Transactions and spans are linked by `parent_span_id` across transactions of the same trace, so
//! a continuation transaction appears under the span that spawned it (and a continuation that is
//! *not* linked shows up as a root).
//!
//! With `SENTRY_DSN` set (or a DSN in the options given to [`init_with`]) the same client also
//! sends everything to that DSN, with the transport your `sentry` dependency compiles in (for
//! example its `reqwest` feature), and the trees are still printed.
//!
//! [`init`]: crate::console::init
//! [`init_with`]: crate::console::init_with
//! [`ConsoleTransport`]: crate::console::ConsoleTransport
//! [`Reporter::print_trees`]: crate::console::Reporter::print_trees
//!
//! ```
//! let reporter = traced_spawn::console::init();
//!
//! let tx = sentry::start_transaction(sentry::TransactionContext::new("GET /", "http.server"));
//! sentry::configure_scope(|scope| scope.set_span(Some(tx.clone().into())));
//! let handle = traced_spawn::Builder::new("render").spawn_thread(|| 2 + 2);
//! sentry::configure_scope(|scope| scope.set_span(None));
//! tx.finish();
//! assert_eq!(handle.join().unwrap(), 4);
//!
//! // trace 3f0c…
//! // └─ tx   http.server  GET /  0.1 ms
//! //    └─ tx   thread  render  0.1 ms  ok  queued 0.1 ms
//! let traces = reporter.print_trees();
//! assert_eq!(traces.len(), 1);
//! assert_eq!(traces[0].roots[0].children[0].name, "render");
//! assert!(traces[0].roots[0].children[0].is_continuation());
//! ```
//!
//! This is a development aid: it keeps everything it receives in memory until the reporter is
//! dropped. Use a real transport in production.

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use sentry::protocol::{Context, EnvelopeItem, Event, SpanId, SpanStatus, TraceId, Value};
use sentry::types::Dsn;
use sentry::{ClientInitGuard, ClientOptions, Envelope, Transport, TransportFactory};

use crate::{ORIGIN, QUEUE_DELAY_KEY, THREAD_NAME_KEY};

/// DSN the console client is configured with when no DSN is given: a client needs one to be
/// enabled. Nothing is ever sent to it (the `.invalid` top-level domain never resolves).
///
/// ```
/// let dsn: sentry::types::Dsn = traced_spawn::console::PLACEHOLDER_DSN.parse().unwrap();
/// assert_eq!(dsn.host(), "console.invalid");
/// ```
pub const PLACEHOLDER_DSN: &str = "https://public@console.invalid/0";

/// A [`sentry::Transport`] that keeps transactions and error events in memory, to print them.
///
/// Other envelope items (sessions, client reports, attachments, logs) are ignored.
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

    /// Builds one [`Trace`] per trace id from what was received, ordered by start time.
    ///
    /// ```
    /// let transport = traced_spawn::console::ConsoleTransport::new();
    /// assert!(transport.traces().is_empty());
    /// ```
    pub fn traces(&self) -> Vec<Trace> {
        let received = self.received();
        build_traces(&received.transactions, &received.events)
    }

    /// The traces that received something since they were last returned by this method and
    /// nothing for `quiet` (every such trace when `all`), marked as printed.
    fn take_settled(&self, quiet: Duration, all: bool) -> Vec<Trace> {
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
        let mut traces = build_traces(&received.transactions, &received.events);
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
                _ => {}
            }
        }
    }
}

/// Creates the transport of a client that sends to a real DSN and records for the console too.
struct TeeFactory {
    console: Arc<ConsoleTransport>,
    upstream: Arc<dyn TransportFactory>,
}

impl TransportFactory for TeeFactory {
    fn create_transport_with_options(
        &self,
        options: sentry::TransportOptions,
    ) -> Arc<dyn Transport> {
        // sentry's default factory panics when the `sentry` crate has no HTTP transport compiled
        // in: say what to do and keep printing rather than take the program down.
        let upstream = self.upstream.clone();
        let created = panic::catch_unwind(AssertUnwindSafe(move || {
            upstream.create_transport_with_options(options)
        }));
        let upstream = match created {
            Ok(transport) => Some(transport),
            Err(_) => {
                eprintln!(
                    "traced_spawn::console: no HTTP transport to send to the DSN: reporting to the \
                     console only (enable one in your `sentry` dependency, e.g. its `reqwest` \
                     feature)"
                );
                None
            }
        };
        Arc::new(Tee {
            console: self.console.clone(),
            upstream,
        })
    }
}

/// Sends every envelope upstream and records it for the console.
struct Tee {
    console: Arc<ConsoleTransport>,
    upstream: Option<Arc<dyn Transport>>,
}

impl Transport for Tee {
    fn send_envelope(&self, envelope: Envelope) {
        match &self.upstream {
            Some(upstream) => {
                self.console.send_envelope(envelope.clone());
                upstream.send_envelope(envelope);
            }
            None => self.console.send_envelope(envelope),
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.upstream
            .as_ref()
            .is_none_or(|upstream| upstream.flush(timeout))
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        self.upstream
            .as_ref()
            .is_none_or(|upstream| upstream.shutdown(timeout))
    }
}

/// The client bound by [`init`]: keep it alive for as long as the program reports, then call
/// [`Reporter::print_trees`] (or let [`Reporter::print_live`] print each trace as it settles).
///
/// Dropping it closes the client, like dropping the guard of `sentry::init`: what is still queued
/// for a DSN is sent first (within the client's `shutdown_timeout`).
///
/// ```
/// let reporter = traced_spawn::console::init();
/// assert!(reporter.traces().is_empty());
/// drop(reporter); // the client is closed
/// assert!(!sentry::Hub::current().client().is_some_and(|client| client.is_enabled()));
/// ```
#[must_use = "the client is closed when the reporter is dropped"]
pub struct Reporter {
    transport: Arc<ConsoleTransport>,
    dsn: Option<Dsn>,
    live: Mutex<Option<Live>>,
    guard: ClientInitGuard,
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("transport", &self.transport)
            .field("dsn", &self.dsn)
            .finish_non_exhaustive()
    }
}

/// Binds a Sentry client on the current hub that prints traces, with every transaction sampled
/// (`traces_sample_rate` 1.0). With `SENTRY_DSN` set, the client also sends to that DSN.
///
/// Shorthand for `init_with(ClientOptions::new().traces_sample_rate(1.0))`; see [`init_with`].
///
/// ```
/// let reporter = traced_spawn::console::init();
/// assert!(sentry::Hub::current().client().is_some());
/// assert!(reporter.traces().is_empty());
/// ```
pub fn init() -> Reporter {
    init_with(ClientOptions::new().traces_sample_rate(1.0))
}

/// Binds a Sentry client on the current hub, configured with `options`, that records every
/// transaction and error event for the console.
///
/// Call it first thing in `main`, on the main thread, before starting threads or a tokio runtime
/// (like `sentry::init`): threads started later inherit the client.
///
/// - With a DSN (`options.dsn`, or else the `SENTRY_DSN` environment variable), the client also
///   sends everything to it, through `options.transport` or, when none is set, sentry's default
///   HTTP transport: the one your `sentry` dependency compiles in (features `reqwest`, `curl` or
///   `ureq`). Without one, a note is printed and the client reports to the console only.
/// - Without a DSN, the client uses [`PLACEHOLDER_DSN`] and sends nothing anywhere.
///
/// An invalid `SENTRY_DSN` is reported on stderr and ignored.
///
/// ```
/// let options = sentry::ClientOptions::new()
///     .traces_sample_rate(1.0)
///     .release("my-app@1.0.0");
/// let reporter = traced_spawn::console::init_with(options);
/// let client = sentry::Hub::current().client().unwrap();
/// assert_eq!(client.options().release.as_deref(), Some("my-app@1.0.0"));
/// # if std::env::var_os("SENTRY_DSN").is_none() {
/// assert!(reporter.dsn().is_none()); // no SENTRY_DSN: console only
/// # }
/// ```
pub fn init_with(mut options: ClientOptions) -> Reporter {
    let dsn = options.dsn.clone().or_else(dsn_from_env);
    let transport = Arc::new(ConsoleTransport::new());
    match &dsn {
        Some(dsn) => {
            let upstream = options
                .transport
                .take()
                .unwrap_or_else(|| Arc::new(sentry::transports::DefaultTransportFactory));
            eprintln!(
                "traced_spawn::console: sending to {}://{}:{} and printing here",
                dsn.scheme(),
                dsn.host(),
                dsn.port()
            );
            options.dsn = Some(dsn.clone());
            options.transport = Some(Arc::new(TeeFactory {
                console: transport.clone(),
                upstream,
            }));
        }
        None => {
            options.dsn = Some(PLACEHOLDER_DSN.parse().expect("a valid DSN"));
            options.transport = Some(Arc::new(transport.clone()));
        }
    }
    let guard = sentry::init(options);
    Reporter {
        transport,
        dsn,
        live: Mutex::new(None),
        guard,
    }
}

fn dsn_from_env() -> Option<Dsn> {
    let value = std::env::var("SENTRY_DSN").ok()?;
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    match value.parse::<Dsn>() {
        Ok(dsn) => Some(dsn),
        Err(err) => {
            eprintln!("traced_spawn::console: SENTRY_DSN is not a valid DSN ({err}): ignoring it");
            None
        }
    }
}

impl Reporter {
    /// The transport the client records into.
    ///
    /// ```
    /// let reporter = traced_spawn::console::init();
    /// assert!(reporter.transport().events().is_empty());
    /// ```
    pub fn transport(&self) -> &ConsoleTransport {
        &self.transport
    }

    /// The DSN the client also sends to, or `None` when it reports to the console only.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// // Normally the transport is left unset (sentry's HTTP transport); here it sends nowhere.
    /// let mut options = sentry::ClientOptions::new()
    ///     .traces_sample_rate(1.0)
    ///     .transport(Arc::new(traced_spawn::console::ConsoleTransport::new()));
    /// options.dsn = Some("http://public@127.0.0.1:8969/0".parse().unwrap());
    /// let reporter = traced_spawn::console::init_with(options);
    /// assert_eq!(reporter.dsn().unwrap().host(), "127.0.0.1");
    /// ```
    pub fn dsn(&self) -> Option<&Dsn> {
        self.dsn.as_ref()
    }

    /// Flushes the client (waiting up to 2 s for a DSN), then returns the traces received so far
    /// (see [`ConsoleTransport::traces`]).
    ///
    /// ```
    /// let reporter = traced_spawn::console::init();
    /// sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task")).finish();
    /// assert_eq!(reporter.traces().len(), 1);
    /// ```
    pub fn traces(&self) -> Vec<Trace> {
        self.guard.flush(Some(Duration::from_secs(2)));
        self.transport.traces()
    }

    /// Flushes the client, prints every trace received so far as a tree on stdout and returns
    /// them, so a program can check what was linked.
    ///
    /// Call it once the work is done (its join handles joined): a transaction is printed only once
    /// it has finished.
    ///
    /// ```
    /// let reporter = traced_spawn::console::init();
    /// let traces = reporter.print_trees(); // nothing finished yet: prints nothing
    /// assert!(traces.is_empty());
    /// ```
    pub fn print_trees(&self) -> Vec<Trace> {
        let traces = self.traces();
        for trace in &traces {
            print!("{trace}");
        }
        traces
    }

    /// Waits until `done` returns `true` for the traces received so far, or `timeout` has passed;
    /// returns whether `done` was satisfied. Checks every 10 ms.
    ///
    /// For a program that cannot join the work it wants to print (it runs in a server, say):
    /// wait until the transactions it expects have arrived.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let reporter = traced_spawn::console::init();
    /// let tx = sentry::start_transaction(sentry::TransactionContext::new("GET /", "http.server"));
    /// sentry::configure_scope(|scope| scope.set_span(Some(tx.clone().into())));
    /// let _work = traced_spawn::Builder::new("work").spawn_thread(|| ());
    /// sentry::configure_scope(|scope| scope.set_span(None));
    /// tx.finish();
    ///
    /// let linked = |traces: &[traced_spawn::console::Trace]| {
    ///     traces.iter().flat_map(|t| t.nodes()).any(|node| node.name == "work")
    /// };
    /// assert!(reporter.wait_until(Duration::from_secs(5), linked));
    /// ```
    pub fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&[Trace]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.transport.traces()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Prints each trace, on a background thread, once nothing new has arrived for it for `quiet`
    /// (its request and the continuations of that request have finished, most likely). A trace
    /// that receives more later is printed again. For servers, which have no "end of the work" to
    /// call [`Reporter::print_trees`] at.
    ///
    /// What is left unprinted when the reporter is dropped is printed then. Calling it again
    /// changes `quiet`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let reporter = traced_spawn::console::init();
    /// reporter.print_live(Duration::from_millis(500));
    /// sentry::start_transaction(sentry::TransactionContext::new("GET /", "http.server")).finish();
    /// drop(reporter); // prints the trace, if the printer has not printed it yet
    /// ```
    pub fn print_live(&self, quiet: Duration) {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(previous) = live.take() {
            previous.stop(false);
        }
        *live = Some(Live::start(Arc::downgrade(&self.transport), quiet));
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let live = self
            .live
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(live) = live {
            self.guard.flush(Some(Duration::from_secs(2)));
            live.stop(true);
        }
    }
}

/// The background printer of [`Reporter::print_live`].
struct Live {
    stop: Arc<(Mutex<Option<bool>>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Live {
    fn start(transport: Weak<ConsoleTransport>, quiet: Duration) -> Live {
        // `Some(print_rest)` once asked to stop.
        let stop = Arc::new((Mutex::new(None::<bool>), Condvar::new()));
        let signal = stop.clone();
        let tick = (quiet / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        let thread = std::thread::Builder::new()
            .name("traced-spawn-console".to_owned())
            .spawn(move || {
                let (lock, condvar) = &*signal;
                let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    let print_rest = *stopped;
                    drop(stopped);
                    let Some(transport) = transport.upgrade() else {
                        return;
                    };
                    if print_rest == Some(false) {
                        return;
                    }
                    for trace in transport.take_settled(quiet, print_rest == Some(true)) {
                        println!("{trace}");
                    }
                    if print_rest.is_some() {
                        return;
                    }
                    stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    if stopped.is_none() {
                        stopped = condvar
                            .wait_timeout(stopped, tick)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                }
            })
            .expect("failed to spawn the console printer thread");
        Live {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the printer; with `print_rest`, it first prints every trace not printed yet.
    fn stop(mut self, print_rest: bool) {
        let (lock, condvar) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = Some(print_rest);
        condvar.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One trace: its transactions, spans and error events arranged parent -> child.
///
/// ```
/// let reporter = traced_spawn::console::init();
/// sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task")).finish();
/// let trace = &reporter.traces()[0];
/// assert_eq!(trace.roots.len(), 1);
/// assert_eq!(trace.roots[0].name, "job");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The trace id shared by every node.
    pub trace_id: TraceId,
    /// Nodes whose parent was not received: normally the one transaction that started the trace
    /// (or, for a trace continued from another service, the first one received). A continuation
    /// that shows up here is *not* linked to its caller.
    pub roots: Vec<Node>,
}

impl Trace {
    /// Every node of the trace, depth first.
    ///
    /// ```
    /// let reporter = traced_spawn::console::init();
    /// let tx = sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task"));
    /// tx.finish();
    /// let traces = reporter.traces();
    /// assert_eq!(traces[0].nodes().count(), 1);
    /// ```
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.roots.iter().flat_map(Node::nodes)
    }
}

/// Prints the trace as a tree, one line per node:
///
/// ```text
/// trace 0f8e…
/// └─ tx   http.server  POST /slack/commands  0.4 ms  ok
///    └─ tx   thread  quickstart::send_generated_response  31.2 ms  ok  thread.name=send_generated_response  queued 0.1 ms
///       └─ span llm.generate  generate answer  30.1 ms  ok
/// ```
///
/// ```
/// let reporter = traced_spawn::console::init();
/// sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task")).finish();
/// let text = reporter.traces()[0].to_string();
/// assert!(text.starts_with("trace "));
/// assert!(text.contains("└─ tx   queue.task  job"));
/// ```
impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "trace {}", self.trace_id)?;
        for (i, root) in self.roots.iter().enumerate() {
            root.write_tree(f, "", i + 1 == self.roots.len())?;
        }
        Ok(())
    }
}

/// What a [`Node`] is.
///
/// ```
/// use traced_spawn::console::NodeKind;
///
/// let reporter = traced_spawn::console::init();
/// sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task")).finish();
/// assert_eq!(reporter.traces()[0].roots[0].kind, NodeKind::Transaction);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A transaction (the request, or a continuation).
    Transaction,
    /// A child span of a transaction.
    Span,
    /// An error event, placed under the span that was active when it was captured.
    Error,
}

/// One line of a trace tree.
///
/// ```
/// let reporter = traced_spawn::console::init();
/// let tx = sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task"));
/// tx.set_status(sentry::protocol::SpanStatus::Ok);
/// tx.finish();
/// let node = &reporter.traces()[0].roots[0];
/// assert_eq!((node.op.as_str(), node.name.as_str()), ("queue.task", "job"));
/// assert_eq!(node.status, Some(sentry::protocol::SpanStatus::Ok));
/// assert!(node.duration_ms.is_some());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Transaction, span or error event.
    pub kind: NodeKind,
    /// The span id (for an error event: the span it was captured under).
    pub span_id: SpanId,
    /// The parent span id, if any.
    pub parent_span_id: Option<SpanId>,
    /// The op (for an error event: its level).
    pub op: String,
    /// The transaction name, the span description, or the error message.
    pub name: String,
    /// When the node started (for an error event: when it was captured).
    pub start: SystemTime,
    /// Duration in milliseconds; `None` for an error event.
    pub duration_ms: Option<f64>,
    /// The status, if one was set.
    pub status: Option<SpanStatus>,
    /// The transaction's `origin` ([`ORIGIN`] for a continuation).
    pub origin: Option<String>,
    /// The [`THREAD_NAME_KEY`] data of a continuation transaction.
    pub thread_name: Option<String>,
    /// The [`QUEUE_DELAY_KEY`] data of a continuation transaction.
    pub queue_delay_ms: Option<f64>,
    /// The nodes under this one, ordered by start time.
    pub children: Vec<Node>,
}

impl Node {
    /// Whether this is a continuation transaction started by `traced-spawn`.
    ///
    /// ```
    /// let reporter = traced_spawn::console::init();
    /// traced_spawn::Builder::new("job").run(|| ());
    /// let traces = reporter.traces();
    /// assert!(traces[0].roots[0].is_continuation());
    /// ```
    pub fn is_continuation(&self) -> bool {
        self.kind == NodeKind::Transaction && self.origin.as_deref() == Some(ORIGIN)
    }

    /// This node and every node under it, depth first.
    ///
    /// ```
    /// let reporter = traced_spawn::console::init();
    /// let tx = sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task"));
    /// tx.start_child("db", "select").finish();
    /// tx.finish();
    /// assert_eq!(reporter.traces()[0].roots[0].nodes().count(), 2);
    /// ```
    pub fn nodes(&self) -> Box<dyn Iterator<Item = &Node> + '_> {
        Box::new(std::iter::once(self).chain(self.children.iter().flat_map(Node::nodes)))
    }

    fn line(&self) -> String {
        let mut line = match self.kind {
            NodeKind::Transaction => format!("tx   {}  {}", self.op, self.name),
            NodeKind::Span => format!("span {}  {}", self.op, self.name),
            NodeKind::Error => format!("{}: {}", self.op, self.name),
        };
        if let Some(ms) = self.duration_ms {
            let _ = write!(line, "  {ms:.1} ms");
        }
        if let Some(status) = &self.status {
            let _ = write!(line, "  {status}");
        }
        if let Some(thread_name) = &self.thread_name {
            let _ = write!(line, "  {THREAD_NAME_KEY}={thread_name}");
        }
        if let Some(delay) = self.queue_delay_ms {
            let _ = write!(line, "  queued {delay:.1} ms");
        }
        line
    }

    fn write_tree(&self, f: &mut fmt::Formatter<'_>, prefix: &str, last: bool) -> fmt::Result {
        let branch = if last { "└─ " } else { "├─ " };
        writeln!(f, "{prefix}{branch}{}", self.line())?;
        let prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
        for (i, child) in self.children.iter().enumerate() {
            child.write_tree(f, &prefix, i + 1 == self.children.len())?;
        }
        Ok(())
    }
}

fn duration_ms(start: SystemTime, end: Option<SystemTime>) -> Option<f64> {
    let end = end?;
    Some(
        end.duration_since(start)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
            * 1000.0,
    )
}

fn trace_context(
    contexts: &sentry::protocol::Map<String, Context>,
) -> Option<&sentry::protocol::TraceContext> {
    match contexts.get("trace") {
        Some(Context::Trace(trace)) => Some(trace),
        _ => None,
    }
}

fn event_message(event: &Event<'static>) -> String {
    if let Some(exception) = event.exception.values.last() {
        return match &exception.value {
            Some(value) => format!("{}: {value}", exception.ty),
            None => exception.ty.clone(),
        };
    }
    event
        .message
        .clone()
        .or_else(|| event.logentry.as_ref().map(|entry| entry.message.clone()))
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// A node before it is placed in its tree: the node and the trace it belongs to.
struct Loose {
    trace_id: TraceId,
    node: Node,
}

fn build_traces(
    transactions: &[sentry::protocol::Transaction<'static>],
    events: &[Event<'static>],
) -> Vec<Trace> {
    let mut loose = Vec::new();
    for tx in transactions {
        let Some(trace) = trace_context(&tx.contexts) else {
            continue;
        };
        let number = |key: &str| trace.data.get(key).and_then(Value::as_f64);
        loose.push(Loose {
            trace_id: trace.trace_id,
            node: Node {
                kind: NodeKind::Transaction,
                span_id: trace.span_id,
                parent_span_id: trace.parent_span_id,
                op: trace.op.clone().unwrap_or_default(),
                name: tx.name.clone().unwrap_or_default(),
                start: tx.start_timestamp,
                duration_ms: duration_ms(tx.start_timestamp, tx.timestamp),
                status: trace.status,
                origin: trace.origin.clone(),
                thread_name: trace
                    .data
                    .get(THREAD_NAME_KEY)
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                queue_delay_ms: number(QUEUE_DELAY_KEY),
                children: Vec::new(),
            },
        });
        for span in &tx.spans {
            loose.push(Loose {
                trace_id: span.trace_id,
                node: Node {
                    kind: NodeKind::Span,
                    span_id: span.span_id,
                    parent_span_id: span.parent_span_id,
                    op: span.op.clone().unwrap_or_default(),
                    name: span.description.clone().unwrap_or_default(),
                    start: span.start_timestamp,
                    duration_ms: duration_ms(span.start_timestamp, span.timestamp),
                    status: span.status,
                    origin: None,
                    thread_name: None,
                    queue_delay_ms: None,
                    children: Vec::new(),
                },
            });
        }
    }
    for event in events {
        let Some(trace) = trace_context(&event.contexts) else {
            continue;
        };
        loose.push(Loose {
            trace_id: trace.trace_id,
            node: Node {
                kind: NodeKind::Error,
                span_id: trace.span_id,
                // An error hangs under the span it was captured in.
                parent_span_id: Some(trace.span_id),
                op: event.level.to_string(),
                name: event_message(event),
                start: event.timestamp,
                duration_ms: None,
                status: None,
                origin: None,
                thread_name: None,
                queue_delay_ms: None,
                children: Vec::new(),
            },
        });
    }

    // Group by trace, keeping the order in which traces first started.
    loose.sort_by_key(|item| item.node.start);
    let mut order: Vec<TraceId> = Vec::new();
    let mut by_trace: HashMap<TraceId, Vec<Node>> = HashMap::new();
    for item in loose {
        if !by_trace.contains_key(&item.trace_id) {
            order.push(item.trace_id);
        }
        by_trace.entry(item.trace_id).or_default().push(item.node);
    }
    order
        .into_iter()
        .map(|trace_id| Trace {
            trace_id,
            roots: arrange(by_trace.remove(&trace_id).unwrap_or_default()),
        })
        .collect()
}

/// Arranges the nodes of one trace (sorted by start time) into trees by `parent_span_id`.
fn arrange(nodes: Vec<Node>) -> Vec<Node> {
    // Only spans and transactions can be parents; error events are leaves.
    let parents: HashMap<SpanId, usize> = nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| node.kind != NodeKind::Error)
        .map(|(i, node)| (node.span_id, i))
        .collect();
    let parent_of: Vec<Option<usize>> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            node.parent_span_id
                .and_then(|id| parents.get(&id).copied())
                .filter(|&parent| parent != i)
        })
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut roots = Vec::new();
    for (i, parent) in parent_of.iter().enumerate() {
        match parent {
            Some(parent) => children[*parent].push(i),
            None => roots.push(i),
        }
    }
    let mut slots: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    fn take(i: usize, slots: &mut [Option<Node>], children: &[Vec<usize>]) -> Option<Node> {
        let mut node = slots[i].take()?;
        node.children = children[i]
            .iter()
            .filter_map(|&child| take(child, slots, children))
            .collect();
        Some(node)
    }
    roots
        .into_iter()
        .filter_map(|root| take(root, &mut slots, &children))
        .collect()
}
