//! Test support for `traced-spawn`: a client on sentry's own test transport, and readers for the
//! envelopes it captured.

use sentry::integrations::panic::PanicIntegration;
use sentry::protocol::{Context, EnvelopeItem, Event, TraceContext, Transaction};
use sentry::{ClientOptions, Hub};

/// Everything a client sent while a test ran.
#[derive(Debug)]
pub struct Captured {
    /// The envelopes, in the order they were sent.
    pub envelopes: Vec<sentry::Envelope>,
}

/// Client options with every transaction sampled and the panic integration installed.
pub fn sampled() -> ClientOptions {
    rate(1.0)
}

/// Client options with the given `traces_sample_rate` and the panic integration installed.
pub fn rate(traces_sample_rate: f32) -> ClientOptions {
    ClientOptions::new()
        .traces_sample_rate(traces_sample_rate)
        .add_integration(PanicIntegration::new())
}

/// Runs `f` with a fresh hub bound to a client on sentry's test transport and returns what it sent.
pub fn capture(options: ClientOptions, f: impl FnOnce()) -> Captured {
    Captured {
        envelopes: sentry::test::with_captured_envelopes_options(f, options),
    }
}

impl Captured {
    /// Every transaction sent.
    pub fn transactions(&self) -> Vec<&Transaction<'static>> {
        self.items()
            .filter_map(|item| match item {
                EnvelopeItem::Transaction(tx) => Some(&**tx),
                _ => None,
            })
            .collect()
    }

    /// Every error event sent.
    pub fn events(&self) -> Vec<&Event<'static>> {
        self.items()
            .filter_map(|item| match item {
                EnvelopeItem::Event(event) => Some(&**event),
                _ => None,
            })
            .collect()
    }

    /// Every transaction named `name`.
    pub fn named(&self, name: &str) -> Vec<&Transaction<'static>> {
        self.transactions()
            .into_iter()
            .filter(|tx| tx.name.as_deref() == Some(name))
            .collect()
    }

    /// The one transaction named `name`; panics, listing what was sent, when there is not exactly
    /// one.
    pub fn only(&self, name: &str) -> &Transaction<'static> {
        let found = self.named(name);
        assert_eq!(
            found.len(),
            1,
            "expected one transaction named {name:?}; sent: {:?}",
            self.transactions()
                .iter()
                .map(|tx| tx.name.as_deref())
                .collect::<Vec<_>>()
        );
        found[0]
    }

    fn items(&self) -> impl Iterator<Item = &EnvelopeItem> {
        self.envelopes.iter().flat_map(|envelope| envelope.items())
    }
}

/// The trace context of a transaction or an event.
pub fn trace(contexts: &sentry::protocol::Map<String, Context>) -> &TraceContext {
    match contexts.get("trace") {
        Some(Context::Trace(trace)) => trace,
        other => panic!("no trace context: {other:?}"),
    }
}

/// The trace context of a transaction.
pub fn tx_trace<'a>(tx: &'a Transaction<'static>) -> &'a TraceContext {
    trace(&tx.contexts)
}

/// The trace context of an event.
pub fn event_trace<'a>(event: &'a Event<'static>) -> &'a TraceContext {
    trace(&event.contexts)
}

/// Runs `f` inside a transaction named `name` (op `http.server`) bound as the active span, like a
/// request handler under sentry's tower layer; the transaction finishes after `f`.
pub fn in_request<R>(name: &str, f: impl FnOnce(&sentry::Transaction) -> R) -> R {
    let tx = sentry::start_transaction(sentry::TransactionContext::new(name, "http.server"));
    let out = in_span(&tx, || f(&tx));
    tx.finish();
    out
}

/// Runs `f` with `span` bound as the active span of the current hub, then restores the previous one.
pub fn in_span<R>(
    span: &(impl Clone + Into<sentry::TransactionOrSpan>),
    f: impl FnOnce() -> R,
) -> R {
    let previous = sentry::configure_scope(|scope| {
        let previous = scope.get_span();
        scope.set_span(Some(span.clone().into()));
        previous
    });
    let out = f();
    sentry::configure_scope(|scope| scope.set_span(previous));
    out
}

/// A multi-thread tokio runtime (2 workers) that runs `f` as a task spawned on a worker, with the
/// current hub bound to it (as sentry's tower layer does for a request).
pub fn on_worker<F>(f: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    use sentry::SentryFutureExt;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let hub = Hub::current();
    let out = rt.block_on(async move {
        tokio::spawn(f.bind_hub(hub))
            .await
            .expect("caller task panicked")
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    out
}

/// Asserts that the transactions named `name` form a chain of `depth` nested continuations under
/// the transaction named `root`: each one's parent is the level above, all in the root's trace.
pub fn assert_chain(captured: &Captured, root: &str, name: &str, depth: usize) {
    let root = tx_trace(captured.only(root));
    let chain = captured.named(name);
    assert_eq!(chain.len(), depth, "{name}: one transaction per level");
    let mut parent = root.span_id;
    for level in 0..depth {
        let next = chain
            .iter()
            .map(|tx| tx_trace(tx))
            .find(|t| t.parent_span_id == Some(parent))
            .unwrap_or_else(|| panic!("{name}: no continuation of level {level}"));
        assert_eq!(next.trace_id, root.trace_id);
        parent = next.span_id;
    }
}

/// Asserts that exactly `count` transactions named `name` were sent, each a continuation of the
/// transaction named `root` (same trace, parent = its span) with status `ok` and its own span id.
pub fn assert_all_linked(captured: &Captured, root: &str, name: &str, count: usize) {
    let root = tx_trace(captured.only(root));
    let children = captured.named(name);
    assert_eq!(
        children.len(),
        count,
        "{name}: every continuation delivered"
    );
    let mut span_ids = std::collections::HashSet::new();
    for tx in children {
        let t = tx_trace(tx);
        assert_eq!(t.trace_id, root.trace_id);
        assert_eq!(t.parent_span_id, Some(root.span_id));
        assert_eq!(t.status, Some(sentry::protocol::SpanStatus::Ok));
        assert!(span_ids.insert(t.span_id), "{name}: span ids are unique");
    }
}

/// Asserts that the transaction named `request` and the one continuation named `name` are linked
/// parent to child (same trace, parent = the request's span); returns the continuation's trace
/// context.
pub fn assert_linked(captured: &Captured, name: &str) -> TraceContext {
    let request = tx_trace(captured.only("request"));
    let cont = tx_trace(captured.only(name)).clone();
    assert_eq!(cont.trace_id, request.trace_id, "{name}: trace id");
    assert_eq!(cont.parent_span_id, Some(request.span_id), "{name}: parent");
    cont
}

/// Runs `future` on a `LocalSet` of a current-thread runtime.
pub fn on_local_set<F: std::future::Future>(future: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, future)
}

/// The error of the traced sync fns the tests call as a bot's answer generator: its message is
/// its `Display` text.
#[derive(Debug, PartialEq)]
pub struct BotError(pub &'static str);

impl std::fmt::Display for BotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BotError {}

/// The example program `name`, built next to the running test's `deps/` directory
/// (`target/<profile>/examples/<name>`), or the path in the environment variable `override_var`.
/// `cargo test --workspace` builds the examples before it runs the tests.
pub fn example_binary(name: &str, override_var: &str) -> std::path::PathBuf {
    if let Some(path) = std::env::var_os(override_var) {
        return std::path::PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("path of the test binary");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p traced-spawn-examples --example {name}` \
         (`cargo test --workspace` builds it), or set {override_var}",
        bin.display()
    );
    bin
}

/// A Sentry-protocol receiver over HTTP/1.1 on loopback, for sentry's real HTTP transport: it
/// parses every envelope it is sent, counts its transactions (by event id) and the discards its
/// client reports declare, and answers `200` after an optional added latency per request.
///
/// An envelope is counted when its body has been read, before the latency and the answer: once
/// the transport has its answer (or has been joined), what it sent is counted.
#[derive(Debug)]
pub struct Receiver {
    address: std::net::SocketAddr,
    received: std::sync::Arc<std::sync::Mutex<Received>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// What a [`Receiver`] was sent.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// HTTP requests received.
    pub requests: usize,
    /// Envelopes whose body could not be parsed.
    pub malformed: usize,
    /// Every transaction item, in the order received.
    pub transactions: Vec<Transaction<'static>>,
    /// Discards declared by client reports: `(reason, category)` to quantity, summed.
    pub discarded: std::collections::BTreeMap<(String, String), u64>,
}

impl Received {
    /// Transaction items received (duplicates included).
    pub fn transaction_count(&self) -> usize {
        self.transactions.len()
    }

    /// Distinct event ids among the transactions received.
    pub fn distinct_transactions(&self) -> usize {
        self.transactions
            .iter()
            .map(|tx| tx.event_id)
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    /// Transactions named `name`.
    pub fn named(&self, name: &str) -> Vec<&Transaction<'static>> {
        self.transactions
            .iter()
            .filter(|tx| tx.name.as_deref() == Some(name))
            .collect()
    }

    /// Transactions the client reports declare lost for `reason` (`queue_overflow`,
    /// `network_error`, ...).
    pub fn transactions_lost(&self, reason: &str) -> u64 {
        self.discarded
            .get(&(reason.to_owned(), "transaction".to_owned()))
            .copied()
            .unwrap_or(0)
    }
}

impl Receiver {
    /// Starts a receiver on `127.0.0.1` that waits `latency` before it answers each request.
    pub fn start(latency: std::time::Duration) -> Receiver {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let address = listener.local_addr().expect("local address");
        let received = std::sync::Arc::new(std::sync::Mutex::new(Received::default()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (state, stopped) = (received.clone(), stop.clone());
        std::thread::Builder::new()
            .name("receiver".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let state = state.clone();
                    std::thread::spawn(move || serve_envelopes(stream, &state, latency));
                }
            })
            .expect("receiver thread");
        Receiver {
            address,
            received,
            stop,
        }
    }

    /// A DSN that points sentry's HTTP transport at this receiver (plain `http`).
    pub fn dsn(&self) -> String {
        format!("http://public@{}/1", self.address)
    }

    /// What was received so far.
    pub fn received(&self) -> Received {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(self.address);
    }
}

/// Serves one connection of a [`Receiver`]: HTTP/1.1 requests with a `content-length` or
/// chunked body, kept alive until the client closes it or is idle for 10 s.
fn serve_envelopes(
    stream: std::net::TcpStream,
    received: &std::sync::Mutex<Received>,
    latency: std::time::Duration,
) {
    use std::io::{BufRead, Read, Write};
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let _ = stream.set_nodelay(true);
    let mut reader = std::io::BufReader::new(stream);
    loop {
        let Some((_, headers)) = read_request_head(&mut reader) else {
            return;
        };
        let (mut length, mut chunked, mut close) = (0usize, false, false);
        for (name, value) in headers {
            let value = value.to_ascii_lowercase();
            match name.as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "transfer-encoding" => chunked = value.contains("chunked"),
                "connection" => close = value == "close",
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let size = size.trim().split(';').next().unwrap_or_default();
                let Ok(size) = usize::from_str_radix(size, 16) else {
                    return;
                };
                let mut chunk = vec![0; size + 2]; // the chunk and its CRLF
                if reader.read_exact(&mut chunk).is_err() {
                    return;
                }
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(length, 0);
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        }
        record_envelope(&body, received);
        std::thread::sleep(latency);
        let answer =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        if reader.get_mut().write_all(answer).is_err() || close {
            return;
        }
    }
}

/// Counts what one envelope body carries into `received`.
fn record_envelope(body: &[u8], received: &std::sync::Mutex<Received>) {
    let mut received = received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    received.requests += 1;
    let Ok(envelope) = sentry::Envelope::from_slice(body) else {
        received.malformed += 1;
        return;
    };
    for item in envelope.items() {
        match item {
            EnvelopeItem::Transaction(tx) => received.transactions.push((**tx).clone()),
            EnvelopeItem::ClientReport(report) => {
                let report = serde_json::to_value(report).unwrap_or_default();
                let discards = report["discarded_events"].as_array().cloned();
                for discard in discards.unwrap_or_default() {
                    let key = (
                        discard["reason"].as_str().unwrap_or_default().to_owned(),
                        discard["category"].as_str().unwrap_or_default().to_owned(),
                    );
                    *received.discarded.entry(key).or_default() +=
                        discard["quantity"].as_u64().unwrap_or(0);
                }
            }
            _ => {}
        }
    }
}

/// The directory of the Python peer (Sentry's Python SDK in a venv): `scripts/python`.
pub fn python_peer_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/python")
}

/// The Python peer's interpreter; `None` (with a notice) when it is not installed and `CI` is not
/// set. With `CI` set, a missing peer fails the test instead.
pub fn python_peer() -> Option<std::path::PathBuf> {
    use std::io::Write as _;

    let python = python_peer_dir().join(".venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    let ci = std::env::var("CI").is_ok_and(|ci| !ci.is_empty() && ci != "false" && ci != "0");
    assert!(
        !ci,
        "the Python peer is missing ({}): run `bash scripts/python/setup.sh`",
        python.display()
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED python peer test: {} is missing (run `bash scripts/python/setup.sh`; with CI set, \
         this is a failure)",
        python.display()
    );
    None
}

/// Reads the head of an HTTP/1.1 request: its request line, and its header lines up to the blank
/// line that ends them, each as its name in lowercase and its value trimmed. `None` when the
/// connection ends (or a read times out) first.
pub fn read_request_head(
    reader: &mut impl std::io::BufRead,
) -> Option<(String, Vec<(String, String)>)> {
    let mut request_line = String::new();
    if !matches!(reader.read_line(&mut request_line), Ok(n) if n > 0) {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Some((request_line, headers));
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
}

/// A writer for `fmt` layers that keeps what was written: pass `move || lines.clone()` as the
/// layer's writer, read it back with [`Lines::text`].
#[derive(Debug, Clone, Default)]
pub struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Lines {
    /// Everything written so far.
    pub fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        String::from_utf8(bytes).expect("UTF-8 lines")
    }
}

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the benches run against.
pub mod bench {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, PoisonError};

    use sentry::protocol::EnvelopeItem;
    use sentry::{Envelope, Transport};

    /// A transport that discards every envelope after counting the transactions in it (one
    /// relaxed atomic add); with `keep`, it also keeps the envelopes, so a smoke run can check
    /// the links.
    #[derive(Default)]
    pub struct CountingTransport {
        transactions: AtomicUsize,
        keep: bool,
        kept: Mutex<Vec<Envelope>>,
    }

    impl CountingTransport {
        /// A transport that keeps what it is handed when `keep` is set.
        pub fn new(keep: bool) -> CountingTransport {
            CountingTransport {
                keep,
                ..CountingTransport::default()
            }
        }

        /// Transactions received so far.
        pub fn transactions(&self) -> usize {
            self.transactions.load(Ordering::Relaxed)
        }

        /// Takes the envelopes kept so far (none without `keep`).
        pub fn take_kept(&self) -> Vec<Envelope> {
            std::mem::take(&mut *self.kept.lock().unwrap_or_else(PoisonError::into_inner))
        }
    }

    impl Transport for CountingTransport {
        fn send_envelope(&self, envelope: Envelope) {
            let transactions = envelope
                .items()
                .filter(|item| matches!(item, EnvelopeItem::Transaction(_)))
                .count();
            self.transactions.fetch_add(transactions, Ordering::Relaxed);
            if self.keep {
                self.kept
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(envelope);
            }
        }
    }
}

/// End to end through a queue: an example program (`apalis_queue`, `nats_queue`) run as separate
/// processes against a real server, each writing every transaction it sends as a JSON line to a
/// file of its own (`--envelopes FILE`), read back as JSON values.
pub mod e2e {
    use std::io::{BufRead, BufReader, Read};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use serde_json::Value;

    /// How long any one process of a test may run.
    pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(40);

    /// An example program and the server it needs.
    #[derive(Debug)]
    pub struct Example {
        /// The example's name (`apalis_queue`).
        pub name: &'static str,
        /// The environment variable that overrides the path of its binary (`APALIS_QUEUE_BIN`).
        pub bin_var: &'static str,
        /// The environment variable with the server's URL (`REDIS_URL`), also passed to the
        /// example.
        pub url_var: &'static str,
        /// The server's name (`Redis`).
        pub server: &'static str,
        /// Its folder under `scripts/` (`redis`).
        pub scripts: &'static str,
    }

    impl Example {
        /// The server to use, or `None` (with a printed notice) when the test is to be skipped;
        /// with `CI=true`, a missing URL fails the test.
        pub fn url(&self, test: &str) -> Option<String> {
            let (var, scripts) = (self.url_var, self.scripts);
            match std::env::var(var) {
                Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
                _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
                    panic!(
                        "{var} is not set, and CI=true: start {} with scripts/{scripts}/start.sh",
                        self.server
                    )
                }
                _ => {
                    eprintln!(
                        "SKIPPED {test}: {var} is not set (bash scripts/{scripts}/setup.sh && \
                         export {var}=\"$(bash scripts/{scripts}/start.sh)\")"
                    );
                    None
                }
            }
        }

        /// The example program.
        pub fn binary(&self) -> PathBuf {
            crate::example_binary(self.name, self.bin_var)
        }

        /// Starts the example with `args` against the server at `url`.
        pub fn start(&'static self, url: &str, args: &[&str]) -> Proc {
            self.start_with(url, args, |_| {})
        }

        /// Starts the example with `args`; the receiver gets each stdout line that starts with
        /// `prefix`, as it is printed.
        pub fn start_watching(
            &'static self,
            url: &str,
            args: &[&str],
            prefix: &'static str,
        ) -> (Proc, std::sync::mpsc::Receiver<String>) {
            let (lines, watched) = std::sync::mpsc::channel();
            let proc = self.start_with(url, args, move |line| {
                if line.starts_with(prefix) {
                    let _ = lines.send(line.to_owned());
                }
            });
            (proc, watched)
        }

        /// Starts the example with `args`; `on_line` sees each stdout line as it is printed.
        pub fn start_with(
            &'static self,
            url: &str,
            args: &[&str],
            mut on_line: impl FnMut(&str) + Send + 'static,
        ) -> Proc {
            let envelopes = std::env::temp_dir()
                .join(format!("{}.jsonl", unique(&format!("e2e-{}", self.name))));
            let mut child = Command::new(self.binary())
                .args(args)
                .arg("--envelopes")
                .arg(&envelopes)
                .env(self.url_var, url)
                .env_remove("SENTRY_DSN")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|err| panic!("start {}: {err}", self.name));
            let out = child.stdout.take().expect("stdout");
            let mut err = child.stderr.take().expect("stderr");
            let out = std::thread::spawn(move || {
                let mut text = String::new();
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    on_line(&line);
                    text.push_str(&line);
                    text.push('\n');
                }
                text
            });
            let err = std::thread::spawn(move || {
                let mut text = String::new();
                let _ = err.read_to_string(&mut text);
                text
            });
            Proc {
                example: self,
                child,
                envelopes,
                out: Some(out),
                err: Some(err),
            }
        }
    }

    /// A name no other test or run uses: for queues, subjects, consumers and envelope files.
    pub fn unique(what: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        format!(
            "{what}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        )
    }

    /// One process of the example, writing its transactions to its own file; killed (if still
    /// running) and its file removed when dropped.
    #[derive(Debug)]
    pub struct Proc {
        example: &'static Example,
        /// The process.
        pub child: Child,
        envelopes: PathBuf,
        out: Option<std::thread::JoinHandle<String>>,
        err: Option<std::thread::JoinHandle<String>>,
    }

    impl Proc {
        /// Waits for the process (killing it after [`PROCESS_TIMEOUT`]); returns its status,
        /// stdout and stderr.
        pub fn wait(&mut self) -> (ExitStatus, String, String) {
            let name = self.example.name;
            let deadline = Instant::now() + PROCESS_TIMEOUT;
            let status = loop {
                if let Some(status) = self
                    .child
                    .try_wait()
                    .unwrap_or_else(|err| panic!("wait for {name}: {err}"))
                {
                    break status;
                }
                if Instant::now() >= deadline {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "{name} did not finish in {PROCESS_TIMEOUT:?}:\n{}\n{}",
                        self.out.take().unwrap().join().unwrap_or_default(),
                        self.err.take().unwrap().join().unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let out = self
                .out
                .take()
                .map(|t| t.join().unwrap_or_default())
                .unwrap_or_default();
            let err = self
                .err
                .take()
                .map(|t| t.join().unwrap_or_default())
                .unwrap_or_default();
            (status, out, err)
        }

        /// Waits and asserts the process succeeded; returns its stdout.
        pub fn succeed(&mut self) -> String {
            let (status, out, err) = self.wait();
            assert!(
                status.success(),
                "{} failed ({status}):\n{out}\n{err}",
                self.example.name
            );
            out
        }

        /// Every transaction the process sent.
        pub fn transactions(&self) -> Vec<Value> {
            read_transactions(&self.envelopes)
        }
    }

    impl Drop for Proc {
        fn drop(&mut self) {
            if self.child.try_wait().ok().flatten().is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
            let _ = std::fs::remove_file(&self.envelopes);
        }
    }

    /// The transactions in a file of JSON lines (none when there is no file: nothing was sent).
    pub fn read_transactions(path: &Path) -> Vec<Value> {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Vec::new(); // nothing was ever sent
        };
        text.lines()
            .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
            .filter_map(|mut line| line.get_mut("transaction").map(Value::take))
            .collect()
    }

    /// One job through an engine, as both engines' end-to-end tests read it: the producer's one
    /// request and its `queue.publish` span (`ok`, under the request's span, with the engine's
    /// `system` and the `destination`), and the worker's one continuation, in the request's trace
    /// under the publish span, with its `queue.process` span (`ok`, first attempt, the same
    /// message id). Returns the publish span, the continuation and the process span, for the
    /// engine's own checks.
    pub fn assert_one_job_linked<'a>(
        produced: &'a [Value],
        consumed: &'a [Value],
        system: &str,
        destination: &str,
    ) -> (&'a Value, &'a Value, &'a Value) {
        let (request, publish) = requests_and_publishes(produced)[0];
        assert_eq!(publish["status"], "ok");
        assert_eq!(publish["parent_span_id"], trace(request)["span_id"]);
        assert_eq!(publish["data"]["messaging.system"], system);
        assert_eq!(publish["data"]["messaging.destination.name"], destination);
        assert_eq!(consumed.len(), 1, "{consumed:#?}");
        let consumer = &consumed[0];
        assert_eq!(trace(consumer)["trace_id"], trace(request)["trace_id"]);
        assert_eq!(trace(consumer)["parent_span_id"], publish["span_id"]);
        assert_eq!(trace(consumer)["op"], "function");
        let process = only(consumer, "queue.process");
        assert_eq!(process["status"], "ok");
        assert_eq!(process["data"]["messaging.message.retry.count"], 0);
        assert_eq!(
            process["data"]["messaging.message.id"],
            publish["data"]["messaging.message.id"]
        );
        (publish, consumer, process)
    }

    /// The trace context of a transaction.
    pub fn trace(tx: &Value) -> &Value {
        &tx["contexts"]["trace"]
    }

    /// The one span of `tx` with op `op`; panics when there is not exactly one.
    pub fn only<'a>(tx: &'a Value, op: &str) -> &'a Value {
        let found: Vec<&Value> = tx["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|span| span["op"] == op)
            .collect();
        assert_eq!(found.len(), 1, "one {op} span expected in {tx:#}");
        found[0]
    }

    /// Each of the producer's request transactions (`POST /slack/commands`) with its one
    /// `queue.publish` span.
    pub fn requests_and_publishes(producer: &[Value]) -> Vec<(&Value, &Value)> {
        producer
            .iter()
            .map(|request| {
                assert_eq!(request["transaction"], "POST /slack/commands");
                (request, only(request, "queue.publish"))
            })
            .collect()
    }

    /// Asserts that the one task `producer` sent, whose first worker `doomed` was killed before
    /// it finished, was processed once more by `rescuer`: in the same trace, under the same
    /// publish span, as retry 1, with status `ok`, while `doomed` sent nothing. Returns that
    /// `queue.process` span.
    pub fn assert_processed_again(producer: &Proc, doomed: &Proc, rescuer: &Proc) -> Value {
        let produced = producer.transactions();
        let (request, publish) = requests_and_publishes(&produced)[0];
        assert!(
            doomed.transactions().is_empty(),
            "the killed worker sent nothing"
        );
        let consumed = rescuer.transactions();
        assert_eq!(consumed.len(), 1, "processed once more: {consumed:#?}");
        let consumer = &consumed[0];
        assert_eq!(
            trace(consumer)["trace_id"],
            trace(request)["trace_id"],
            "same trace"
        );
        assert_eq!(trace(consumer)["parent_span_id"], publish["span_id"]);
        let process = only(consumer, "queue.process");
        assert_eq!(process["data"]["messaging.message.retry.count"], 1);
        assert_eq!(
            process["data"]["messaging.message.id"],
            publish["data"]["messaging.message.id"]
        );
        assert_eq!(process["status"], "ok");
        process.clone()
    }

    /// A URL on loopback where nothing listens (a port just released by the kernel), in
    /// `scheme`.
    pub fn down_url(scheme: &str) -> (String, u16) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        (format!("{scheme}://127.0.0.1:{port}"), port)
    }
}
