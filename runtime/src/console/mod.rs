//! No Sentry account needed to see how your work links up: [`init`] binds a Sentry client that
//! records every transaction, error event and Sentry log in a [`ConsoleTransport`];
//! [`Reporter::print_trees`] prints them as one tree per trace, parent -> child, with op, name,
//! duration and status, a time waterfall beside the tree (each transaction and span as a bar
//! placed by its start and duration, as in Sentry's trace view) and the trace's logs in time order.
//! Transactions and spans are linked by `parent_span_id` across transactions of the same trace, so
//! a continuation transaction appears under the span that spawned it (and a continuation that is
//! *not* linked shows up as a root).
//!
//! The same client, like Sentry's other SDKs, also sends every envelope, through sentry's own
//! reqwest transport (`sentry::transports::ReqwestHttpTransport`; the `console` feature turns on
//! sentry's `reqwest` feature):
//! - to [Spotlight](https://spotlightjs.com) when `SENTRY_SPOTLIGHT` is set (`1`/`true` for
//!   [`SPOTLIGHT_DEFAULT_URL`], or the sidecar's URL; `0`/`false`/empty: off), at the sidecar's
//!   `/api/0/envelope/` endpoint next to `/stream`, with the
//!   `Content-Type: application/x-sentry-envelope` an unmodified Spotlight requires;
//! - to `SENTRY_DSN` when set (or a DSN in the options given to [`init_with`]), over `https`
//!   with rustls (the `console` feature turns on sentry's `rustls` feature too).
//!
//! Neither loses an envelope because a kept-alive connection sat idle and the server closed it:
//! their reqwest clients do not reuse a connection idle for a second or more (below Spotlight's
//! and Node's 5 s keep-alive, and most servers'), and send a request again, once, on a new
//! connection when the server closed a kept-alive one before answering it.
//!
//! [`init`]: crate::console::init
//! [`init_with`]: crate::console::init_with
//! [`ConsoleTransport`]: crate::console::ConsoleTransport
//! [`Reporter::print_trees`]: crate::console::Reporter::print_trees
//! [`SPOTLIGHT_DEFAULT_URL`]: crate::console::SPOTLIGHT_DEFAULT_URL
//!
//! ```
//! let reporter = traced_spawn::console::init();
//!
//! let tx = sentry::start_transaction(sentry::TransactionContext::new("GET /", "http.server"));
//! sentry::configure_scope(|scope| scope.set_span(Some(tx.clone().into())));
//! let handle = traced_spawn::Builder::new("render").spawn_thread(|| {
//!     sentry::logger_info!("rendering"); // a Sentry log, in the continuation's trace
//!     2 + 2
//! });
//! sentry::configure_scope(|scope| scope.set_span(None));
//! tx.finish();
//! assert_eq!(handle.join().unwrap(), 4);
//!
//! // trace 3f0c…                                              0 … 0.3 ms
//! // └─ tx   http.server  GET /  0.1 ms             │███████               │
//! //    └─ tx   thread  render  0.1 ms  ok  queued… │       ██████████████ │
//! // logs
//! //   +0.2 ms  info   rendering                    │            •         │
//! let traces = reporter.print_trees();
//! assert_eq!(traces.len(), 1);
//! assert_eq!(traces[0].roots[0].children[0].name, "render");
//! assert!(traces[0].roots[0].children[0].is_continuation());
//! assert_eq!(traces[0].logs[0].body, "rendering");
//! ```
//!
//! This is a development aid: it keeps everything it receives in memory until the reporter is
//! dropped. Use a real transport in production.

#[cfg(feature = "console-tracing")]
mod fmt_layer;
mod live;
mod spotlight;
mod transport;
mod tree;
mod waterfall;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sentry::types::Dsn;
use sentry::{ClientInitGuard, ClientOptions};

#[cfg(feature = "console-tracing")]
pub use self::fmt_layer::{fmt_layer, TraceIds};
pub use self::spotlight::SPOTLIGHT_DEFAULT_URL;
pub use self::transport::ConsoleTransport;
pub use self::tree::{LogLine, Node, NodeKind, Trace};
pub use self::waterfall::Layout;

use self::live::Live;
use self::transport::{ConsoleFactory, DsnFactory};

/// DSN the console client is configured with when no DSN is given: a client needs one to be
/// enabled. Nothing is ever sent to it (the `.invalid` top-level domain never resolves).
///
/// ```
/// let dsn: sentry::types::Dsn = traced_spawn::console::PLACEHOLDER_DSN.parse().unwrap();
/// assert_eq!(dsn.host(), "console.invalid");
/// ```
pub const PLACEHOLDER_DSN: &str = "https://public@console.invalid/0";

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
    spotlight: Option<String>,
    live: Mutex<Option<Live>>,
    guard: ClientInitGuard,
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("transport", &self.transport)
            .field("dsn", &self.dsn)
            .field("spotlight", &self.spotlight)
            .finish_non_exhaustive()
    }
}

/// Binds a Sentry client on the current hub that prints traces, with every transaction sampled
/// (`traces_sample_rate` 1.0). With `SENTRY_SPOTLIGHT` set, the client also sends to Spotlight;
/// with `SENTRY_DSN` set, to that DSN.
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
/// transaction, error event and log for the console.
///
/// Call it first thing in `main`, on the main thread, before starting threads or a tokio runtime
/// (like `sentry::init`): threads started later inherit the client.
///
/// - With `SENTRY_SPOTLIGHT` set to `1`/`true` (or `yes`/`on`), the client also sends every
///   envelope to Spotlight at [`SPOTLIGHT_DEFAULT_URL`]; set to an `http://` URL, there (at
///   `/api/0/envelope/` beside the URL's `/stream`). `0`, `false`, `no`, `off` or empty: off. An
///   invalid value is reported on stderr and ignored; so is a Spotlight that does not answer
///   (once, until it answers again). Up to 100 envelopes wait for it (the options'
///   `transport_channel_capacity` when set); each request may take up to 5 s. When the client
///   closes before Spotlight took everything, stderr says how many envelopes it did not take.
/// - With a DSN (`options.dsn`, or else the `SENTRY_DSN` environment variable), the client also
///   sends everything to it, through `options.transport` or, when none is set, sentry's reqwest
///   transport with the console's client (idle connections not reused; the options' proxies and
///   `accept_invalid_certs` applied; failures said on stderr, once per run of failures).
/// - Without a DSN, the client uses [`PLACEHOLDER_DSN`] and sends to no DSN.
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
    let spotlight = spotlight_from_env();
    let transport = Arc::new(ConsoleTransport::new());
    let upstream = dsn.as_ref().map(|dsn| {
        eprintln!(
            "traced_spawn::console: sending to {}://{}:{} and printing here",
            dsn.scheme(),
            dsn.host(),
            dsn.port()
        );
        options
            .transport
            .take()
            .unwrap_or_else(|| Arc::new(DsnFactory))
    });
    if let Some(url) = &spotlight {
        eprintln!("traced_spawn::console: sending to Spotlight at {url} and printing here");
    }
    options.dsn = Some(match &dsn {
        Some(dsn) => dsn.clone(),
        None => PLACEHOLDER_DSN.parse().expect("a valid DSN"),
    });
    options.transport = Some(Arc::new(ConsoleFactory {
        console: transport.clone(),
        spotlight: spotlight.clone(),
        upstream,
    }));
    let guard = sentry::init(options);
    Reporter {
        transport,
        dsn,
        spotlight,
        live: Mutex::new(None),
        guard,
    }
}

fn spotlight_from_env() -> Option<String> {
    let value = std::env::var("SENTRY_SPOTLIGHT").ok();
    match spotlight::spotlight_url(value.as_deref()) {
        Ok(url) => url,
        Err(err) => {
            eprintln!("traced_spawn::console: SENTRY_SPOTLIGHT: {err}: ignoring it");
            None
        }
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

    /// The Spotlight URL the client also sends to (from `SENTRY_SPOTLIGHT`), if any.
    ///
    /// ```
    /// let reporter = traced_spawn::console::init();
    /// # if std::env::var_os("SENTRY_SPOTLIGHT").is_none() {
    /// assert_eq!(reporter.spotlight(), None); // SENTRY_SPOTLIGHT unset: not sending to Spotlight
    /// # }
    /// ```
    pub fn spotlight(&self) -> Option<&str> {
        self.spotlight.as_deref()
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
        let layout = Layout::from_env();
        for (i, trace) in traces.iter().enumerate() {
            let gap = if i == 0 { "" } else { "\n" };
            print!("{gap}{}", trace.render(&layout));
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
