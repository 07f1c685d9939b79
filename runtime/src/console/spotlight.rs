//! Sending to Spotlight (<https://spotlightjs.com>), the local Sentry viewer: `SENTRY_SPOTLIGHT`,
//! and a small HTTP/1.1 sender over std's `TcpStream`.
//!
//! Spotlight's sidecar takes an envelope on `POST /stream` (or `/api/<id>/envelope/`) only with
//! `Content-Type: application/x-sentry-envelope`; without it, it answers `200` and drops the body.
//! sentry-rust's HTTP transports send no `Content-Type`, so Spotlight gets its own sender. It is
//! plain HTTP (Spotlight runs on the developer's machine), needs no dependency, and does not lose
//! an envelope to an idle keep-alive connection the server closed (Spotlight's Node server closes
//! them after 5 s):
//! - a connection idle for [`IDLE_TIMEOUT`] is not reused (below any common server keep-alive);
//! - a request on a reused connection that fails before any byte of the response arrived is sent
//!   again once, on a new connection (the server closed it while it was idle).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sentry::Envelope;

/// The sidecar URL `SENTRY_SPOTLIGHT=1` (or `true`) stands for, as in Sentry's other SDKs.
///
/// ```
/// assert_eq!(traced_spawn::console::SPOTLIGHT_DEFAULT_URL, "http://localhost:8969/stream");
/// # let url = traced_spawn::console::SPOTLIGHT_DEFAULT_URL;
/// # assert!(url.starts_with("http://") && url.ends_with("/stream"));
/// ```
pub const SPOTLIGHT_DEFAULT_URL: &str = "http://localhost:8969/stream";

/// The content type Spotlight requires on an envelope.
const ENVELOPE_CONTENT_TYPE: &str = "application/x-sentry-envelope";

/// A connection idle for longer is closed rather than reused: below the keep-alive of common
/// servers (Node and Spotlight 5 s, Apache 5 s, gunicorn 2 s, nginx 75 s).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const QUEUE_CAPACITY: usize = 100;

/// What `SENTRY_SPOTLIGHT` asks for: `Ok(None)` when off (unset, empty, `0`, `false`, `no`,
/// `off`), the default URL for `1`/`true`/`yes`/`on`, or the URL given.
pub(crate) fn spotlight_url(value: Option<&str>) -> Result<Option<String>, String> {
    let Some(value) = value.map(str::trim) else {
        return Ok(None);
    };
    match value.to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "off" | "f" | "n" => Ok(None),
        "1" | "true" | "yes" | "on" | "t" | "y" => Ok(Some(SPOTLIGHT_DEFAULT_URL.to_owned())),
        _ => Endpoint::parse(value).map(|_| Some(value.to_owned())),
    }
}

/// Where requests go: `http://host[:port][/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    host: String,
    port: u16,
    path: String,
}

impl Endpoint {
    pub(crate) fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("{url:?} is not an http:// URL (Spotlight is served over plain HTTP)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/stream"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (
                host,
                port.parse::<u16>()
                    .map_err(|_| format!("{url:?} has an invalid port {port:?}"))?,
            ),
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['@', '?', '#', ' ']) {
            return Err(format!("{url:?} has no valid host"));
        }
        if path.contains([' ', '\r', '\n']) {
            return Err(format!("{url:?} has an invalid path"));
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        for address in (self.host.as_str(), self.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(IO_TIMEOUT))?;
                    stream.set_write_timeout(Some(IO_TIMEOUT))?;
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(err) => last = err,
            }
        }
        Err(last)
    }
}

/// How a request failed.
#[derive(Debug)]
struct Failure {
    error: io::Error,
    /// Whether any byte of a response had arrived: if not, the server did not answer at all.
    answered: bool,
}

/// One kept-alive connection and since when it is idle.
struct Connection {
    reader: BufReader<TcpStream>,
    idle_since: Instant,
}

/// Posts envelopes to one HTTP endpoint, one at a time, reusing a connection while it is fresh.
pub(crate) struct HttpPoster {
    endpoint: Endpoint,
    connection: Option<Connection>,
    idle_timeout: Duration,
    retry_stale: bool,
}

impl HttpPoster {
    pub(crate) fn new(endpoint: Endpoint) -> HttpPoster {
        HttpPoster {
            endpoint,
            connection: None,
            idle_timeout: IDLE_TIMEOUT,
            retry_stale: true,
        }
    }

    /// Posts `body`; returns the response status.
    pub(crate) fn post(&mut self, body: &[u8]) -> io::Result<u16> {
        if let Some(connection) = self.connection.take() {
            if connection.idle_since.elapsed() < self.idle_timeout {
                match self.exchange(connection.reader, body) {
                    Ok(status) => return Ok(status),
                    // The server closed the connection while it sat idle: send again, once.
                    Err(failure) if !failure.answered && self.retry_stale => {}
                    Err(failure) => return Err(failure.error),
                }
            }
        }
        let stream = self.endpoint.connect()?;
        self.exchange(BufReader::new(stream), body)
            .map_err(|failure| failure.error)
    }

    fn exchange(&mut self, mut reader: BufReader<TcpStream>, body: &[u8]) -> Result<u16, Failure> {
        let unanswered = |error| Failure {
            error,
            answered: false,
        };
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: traced-spawn/{}\r\nContent-Type: {}\r\n\
             Content-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            self.endpoint.path,
            self.endpoint.host_header(),
            env!("CARGO_PKG_VERSION"),
            ENVELOPE_CONTENT_TYPE,
            body.len()
        );
        let stream = reader.get_mut();
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .and_then(|()| stream.flush())
            .map_err(unanswered)?;

        let mut status_line = String::new();
        match reader.read_line(&mut status_line) {
            Ok(0) => {
                return Err(unanswered(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection was closed before a response",
                )))
            }
            Ok(_) => {}
            Err(err) => return Err(unanswered(err)),
        }
        let answered = |error| Failure {
            error,
            answered: true,
        };
        let mut parts = status_line.split_whitespace();
        let version = parts.next().unwrap_or_default().to_owned();
        let status: u16 = parts
            .next()
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| answered(invalid(format!("bad status line {status_line:?}"))))?;

        let (mut length, mut chunked, mut close) = (None, false, version == "HTTP/1.0");
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).map_err(answered)? == 0 {
                return Err(answered(invalid(
                    "the response ended in its headers".into(),
                )));
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            match name.as_str() {
                "content-length" => length = value.parse::<u64>().ok(),
                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        // Read the body to its end, so the connection can carry the next request.
        if chunked {
            read_chunked(&mut reader).map_err(answered)?;
        } else if let Some(length) = length {
            io::copy(&mut (&mut reader).take(length), &mut io::sink()).map_err(answered)?;
        } else if !(status == 204 || status == 304 || (100..200).contains(&status)) {
            // No length: the body ends when the server closes the connection.
            io::copy(&mut reader, &mut io::sink()).map_err(answered)?;
            close = true;
        }
        if !close {
            self.connection = Some(Connection {
                reader,
                idle_since: Instant::now(),
            });
        }
        Ok(status)
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> io::Result<()> {
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size = size.trim().split(';').next().unwrap_or_default();
        let size = u64::from_str_radix(size.trim(), 16)
            .map_err(|_| invalid(format!("bad chunk size {size:?}")))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(());
                }
            }
        }
        io::copy(&mut reader.take(size + 2), &mut io::sink())?;
    }
}

enum Task {
    Send(Box<Envelope>),
    Flush(SyncSender<()>),
}

/// Sends envelopes to Spotlight on a background thread, in order. Failures are reported on stderr
/// (once per run of failures, with what to do) and, when Spotlight is the only destination, as
/// client reports.
pub(crate) struct SpotlightSender {
    url: String,
    queue: Mutex<Option<SyncSender<Task>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    recorder: Option<sentry::client_report::Recorder>,
    /// Envelopes queued and not sent (or failed) yet.
    unsent: Arc<AtomicUsize>,
}

impl SpotlightSender {
    /// Starts the sender thread. `recorder`: where to count lost envelopes, if anywhere.
    pub(crate) fn start(
        url: &str,
        recorder: Option<sentry::client_report::Recorder>,
    ) -> Result<SpotlightSender, String> {
        let endpoint = Endpoint::parse(url)?;
        let (queue, tasks) = sync_channel(QUEUE_CAPACITY);
        let unsent = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            poster: HttpPoster::new(endpoint),
            url: url.to_owned(),
            recorder: recorder.clone(),
            failing: false,
            unsent: unsent.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("traced-spawn-spotlight".to_owned())
            .spawn(move || worker.run(tasks))
            .map_err(|err| format!("cannot start the Spotlight sender thread: {err}"))?;
        Ok(SpotlightSender {
            url: url.to_owned(),
            queue: Mutex::new(Some(queue)),
            thread: Mutex::new(Some(thread)),
            recorder,
            unsent,
        })
    }

    pub(crate) fn send(&self, envelope: Envelope) {
        self.unsent.fetch_add(1, Ordering::SeqCst);
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(queue) = queue.as_ref() else {
            return self.lost(&envelope, "the client is shut down");
        };
        match queue.try_send(Task::Send(Box::new(envelope))) {
            Ok(()) => {}
            Err(TrySendError::Full(Task::Send(envelope))) => {
                self.lost(&envelope, "its queue is full");
            }
            Err(TrySendError::Disconnected(Task::Send(envelope))) => {
                self.lost(&envelope, "its sender thread stopped");
            }
            Err(_) => {}
        }
    }

    fn lost(&self, envelope: &Envelope, why: &str) {
        self.unsent.fetch_sub(1, Ordering::SeqCst);
        eprintln!(
            "traced_spawn::console: an envelope for Spotlight at {} was dropped: {why}",
            self.url
        );
        if let Some(recorder) = &self.recorder {
            recorder.record_lost_data(envelope, sentry::client_report::Reason::QueueOverflow);
        }
    }

    /// Waits until what was queued before the call has been sent (or failed), up to `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let (done, wait) = sync_channel(1);
        let queued = {
            let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.as_ref().is_some_and(|queue| {
                let deadline = Instant::now() + timeout;
                let mut task = Task::Flush(done);
                loop {
                    match queue.try_send(task) {
                        Ok(()) => return true,
                        Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                            task = back;
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => return false,
                    }
                }
            })
        };
        queued && !matches!(wait.recv_timeout(timeout), Err(RecvTimeoutError::Timeout))
    }

    /// Envelopes queued and not sent (or failed) yet.
    pub(crate) fn unsent(&self) -> usize {
        self.unsent.load(Ordering::SeqCst)
    }

    /// Flushes, then stops the thread. What was still queued at the timeout is dropped, and
    /// stderr says how much.
    pub(crate) fn shutdown(&self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        if !flushed {
            eprintln!("{}", not_sent(self.unsent(), &self.url, timeout));
        }
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if flushed {
            if let Some(thread) = self
                .thread
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
            {
                let _ = thread.join();
            }
        }
        flushed
    }
}

/// The line stderr gets when the client shuts down before Spotlight took everything.
fn not_sent(unsent: usize, url: &str, timeout: Duration) -> String {
    let envelopes = if unsent == 1 { "envelope" } else { "envelopes" };
    format!(
        "traced_spawn::console: {unsent} {envelopes} for Spotlight at {url} dropped at shutdown: \
         it did not take them within {:.1} s",
        timeout.as_secs_f64()
    )
}

struct Worker {
    poster: HttpPoster,
    url: String,
    recorder: Option<sentry::client_report::Recorder>,
    failing: bool,
    unsent: Arc<AtomicUsize>,
}

impl Worker {
    fn run(mut self, tasks: Receiver<Task>) {
        for task in tasks {
            match task {
                Task::Send(envelope) => {
                    self.send(&envelope);
                    self.unsent.fetch_sub(1, Ordering::SeqCst);
                }
                Task::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    fn send(&mut self, envelope: &Envelope) {
        use sentry::client_report::Reason as TransportLossReason;

        let mut body = Vec::new();
        if let Err(err) = envelope.to_writer(&mut body) {
            self.failed(
                envelope,
                TransportLossReason::InternalError,
                &err.to_string(),
            );
            return;
        }
        match self.poster.post(&body) {
            Ok(status) if (200..300).contains(&status) => {
                if self.failing {
                    eprintln!(
                        "traced_spawn::console: Spotlight at {} is reachable again",
                        self.url
                    );
                    self.failing = false;
                }
            }
            Ok(status) => {
                let why = format!("it answered HTTP {status}");
                self.failed(envelope, TransportLossReason::SendError, &why);
            }
            Err(err) => self.failed(
                envelope,
                TransportLossReason::NetworkError,
                &err.to_string(),
            ),
        }
    }

    fn failed(&mut self, envelope: &Envelope, reason: sentry::client_report::Reason, why: &str) {
        if !self.failing {
            eprintln!(
                "traced_spawn::console: cannot send to Spotlight at {} ({why}); is it running? \
                 (`npx @spotlightjs/spotlight`, or unset SENTRY_SPOTLIGHT)",
                self.url
            );
            self.failing = true;
        }
        if let Some(recorder) = &self.recorder {
            recorder.record_lost_data(envelope, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::mpsc;

    #[test]
    fn sentry_spotlight_values() {
        assert_eq!(spotlight_url(None), Ok(None));
        for off in ["", " ", "0", "false", "False", "no", "off"] {
            assert_eq!(spotlight_url(Some(off)), Ok(None), "{off:?}");
        }
        for on in ["1", "true", "TRUE", "yes", "on"] {
            assert_eq!(
                spotlight_url(Some(on)),
                Ok(Some(SPOTLIGHT_DEFAULT_URL.to_owned())),
                "{on:?}"
            );
        }
        assert_eq!(
            spotlight_url(Some("http://127.0.0.1:9000/stream")),
            Ok(Some("http://127.0.0.1:9000/stream".to_owned()))
        );
        assert!(spotlight_url(Some("https://spotlight.example/stream")).is_err());
        assert!(spotlight_url(Some("localhost:8969")).is_err());
        assert!(spotlight_url(Some("http://:8969/stream")).is_err());
        assert!(spotlight_url(Some("http://localhost:99999/stream")).is_err());
    }

    #[test]
    fn a_spotlight_that_never_answers_is_named_with_what_was_dropped() {
        // Accepts connections and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/stream", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                held.push(stream);
            }
        });
        let sender = SpotlightSender::start(&url, None).unwrap();
        for _ in 0..3 {
            sender.send(Envelope::new());
        }
        assert_eq!(sender.unsent(), 3);
        let started = Instant::now();
        assert!(!sender.shutdown(Duration::from_millis(200)));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(sender.unsent(), 3, "nothing was taken");
        assert_eq!(
            not_sent(3, &url, Duration::from_millis(200)),
            format!(
                "traced_spawn::console: 3 envelopes for Spotlight at {url} dropped at shutdown: \
                 it did not take them within 0.2 s"
            )
        );
    }

    #[test]
    fn endpoints() {
        let endpoint = Endpoint::parse("http://localhost:8969/stream").unwrap();
        assert_eq!((endpoint.host.as_str(), endpoint.port), ("localhost", 8969));
        assert_eq!(endpoint.path, "/stream");
        assert_eq!(endpoint.host_header(), "localhost:8969");
        let endpoint = Endpoint::parse("http://[::1]:8969").unwrap();
        assert_eq!(
            (endpoint.host.as_str(), endpoint.path.as_str()),
            ("::1", "/stream")
        );
        assert_eq!(endpoint.host_header(), "[::1]:8969");
        assert_eq!(Endpoint::parse("http://example").unwrap().port, 80);
    }

    /// A server that answers each request on a connection, then closes the connection once it
    /// has been idle for `idle`; reports each request head it received.
    fn server(idle: Duration) -> (String, mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/stream", listener.local_addr().unwrap());
        let (heads, received) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let heads = heads.clone();
                std::thread::spawn(move || serve(stream, idle, &heads));
            }
        });
        (url, received)
    }

    fn serve(stream: TcpStream, idle: Duration, heads: &mpsc::Sender<String>) {
        stream.set_read_timeout(Some(idle)).unwrap();
        let mut reader = BufReader::new(stream);
        loop {
            let mut head = String::new();
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return, // closed, or idle too long: close
                    Ok(_) => {}
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let length: u64 = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            io::copy(&mut (&mut reader).take(length), &mut io::sink()).unwrap();
            let _ = heads.send(head);
            reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
        }
    }

    #[test]
    fn posts_with_the_envelope_content_type_and_reuses_a_fresh_connection() {
        let (url, heads) = server(Duration::from_secs(5));
        let mut poster = HttpPoster::new(Endpoint::parse(&url).unwrap());
        assert_eq!(poster.post(b"{}\n").unwrap(), 200);
        assert_eq!(poster.post(b"{}\n").unwrap(), 200);
        let head = heads.recv().unwrap();
        assert!(head.starts_with("POST /stream HTTP/1.1\r\n"), "{head}");
        assert!(
            head.contains("\r\nContent-Type: application/x-sentry-envelope\r\n"),
            "{head}"
        );
        heads.recv().unwrap();
        assert!(poster.connection.is_some(), "the connection is kept alive");
    }

    /// The server closes idle connections after 200 ms; requests 400 ms apart. Each knob alone
    /// keeps every request; with neither, the request after the pause fails.
    #[test]
    fn no_request_is_lost_to_a_connection_the_server_closed() {
        let pause = Duration::from_millis(400);
        for (idle_timeout, retry_stale, expect_ok) in [
            (Duration::from_secs(60), false, false),
            (Duration::from_secs(60), true, true),
            (Duration::from_millis(100), false, true),
            (IDLE_TIMEOUT.min(Duration::from_millis(100)), true, true),
        ] {
            let (url, heads) = server(Duration::from_millis(200));
            let mut poster = HttpPoster::new(Endpoint::parse(&url).unwrap());
            poster.idle_timeout = idle_timeout;
            poster.retry_stale = retry_stale;
            assert_eq!(poster.post(b"{}\n").unwrap(), 200);
            std::thread::sleep(pause);
            let second = poster.post(b"{}\n");
            assert_eq!(
                second.is_ok(),
                expect_ok,
                "{idle_timeout:?} {retry_stale}: {second:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
            let received = heads.try_iter().count();
            assert_eq!(received, if expect_ok { 2 } else { 1 });
        }
    }
}
