//! Sending to Spotlight (<https://spotlightjs.com>), the local Sentry viewer: `SENTRY_SPOTLIGHT`,
//! and sentry's reqwest transport pointed at the sidecar.
//!
//! Spotlight's sidecar takes an envelope on `POST /stream` or `POST /api/<id>/envelope/`, only
//! with `Content-Type: application/x-sentry-envelope`; without it, it answers `200` and drops the
//! body. sentry's reqwest transport posts to a DSN's `/api/<id>/envelope/` and sets no
//! `Content-Type`, so the sidecar gets a DSN of its own (`http://spotlight@HOST:PORT/0` for
//! `http://HOST:PORT/stream`) and a client with that content type as a default header (and the
//! console's other settings: see [`client_builder`]).

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use sentry::client_report::Recorder;
use sentry::transports::{ReqwestHttpTransport, ReqwestHttpTransportOptions};
use sentry::types::Dsn;
use sentry::{ClientOptions, Envelope, Transport, TransportOptions};

use super::transport::{client_builder, Watch};

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

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one request may take, answer included: Spotlight runs on this machine.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How many envelopes may wait for Spotlight when the client sets no `transport_channel_capacity`.
const QUEUE_CAPACITY: NonZeroUsize = NonZeroUsize::new(100).expect("not zero");

/// What `SENTRY_SPOTLIGHT` asks for: `Ok(None)` when off (unset, empty, `0`, `false`, `no`,
/// `off`), the default URL for `1`/`true`/`yes`/`on`, or the URL given.
pub(crate) fn spotlight_url(value: Option<&str>) -> Result<Option<String>, String> {
    let Some(value) = value.map(str::trim) else {
        return Ok(None);
    };
    match value.to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "off" | "f" | "n" => Ok(None),
        "1" | "true" | "yes" | "on" | "t" | "y" => Ok(Some(SPOTLIGHT_DEFAULT_URL.to_owned())),
        _ => spotlight_dsn(value).map(|_| Some(value.to_owned())),
    }
}

/// The DSN whose envelope endpoint is the sidecar's at `url`: `http://HOST:PORT[/PREFIX][/stream]`
/// gives `http://spotlight@HOST:PORT[/PREFIX]/0`, whose envelopes go to
/// `http://HOST:PORT[/PREFIX]/api/0/envelope/`.
pub(crate) fn spotlight_dsn(url: &str) -> Result<Dsn, String> {
    let parsed = reqwest::Url::parse(url).map_err(|err| format!("{url:?} is not a URL ({err})"))?;
    if parsed.scheme() != "http" {
        return Err(format!(
            "{url:?} is not an http:// URL (Spotlight is served over plain HTTP)"
        ));
    }
    let host = parsed
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| format!("{url:?} has no valid host"))?;
    let port = parsed.port().unwrap_or(80);
    let path = parsed.path().trim_end_matches('/');
    let prefix = path.strip_suffix("/stream").unwrap_or(path);
    format!("http://spotlight@{host}:{port}{prefix}/0")
        .parse()
        .map_err(|err| format!("{url:?} gives no valid DSN ({err})"))
}

/// sentry's reqwest transport, sending to Spotlight. Failures are reported on stderr (once per run
/// of failures, with what to do) and, with a recorder, as client reports.
pub(crate) struct Spotlight {
    url: String,
    /// Taken at shutdown.
    transport: Mutex<Option<Arc<ReqwestHttpTransport>>>,
    watch: Arc<Watch>,
    /// Envelopes handed to the transport.
    handed: AtomicUsize,
}

impl Spotlight {
    /// Starts the transport (its thread). `recorder`: where to count lost envelopes; a default
    /// one counts nowhere.
    pub(crate) fn start(
        url: &str,
        user_agent: &str,
        capacity: Option<NonZeroUsize>,
        recorder: Recorder,
    ) -> Result<Spotlight, String> {
        let dsn = spotlight_dsn(url)?;
        let watch = Arc::new(Watch::new(
            format!("Spotlight at {url}"),
            "; is it running? (`npx @spotlightjs/spotlight`, or unset SENTRY_SPOTLIGHT)",
        ));
        let headers = HeaderMap::from_iter([(
            CONTENT_TYPE,
            HeaderValue::from_static(ENVELOPE_CONTENT_TYPE),
        )]);
        let client = client_builder(watch.clone(), dsn.host())
            .default_headers(headers)
            .user_agent(user_agent)
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|err| format!("cannot build its HTTP client: {err}"))?;
        let mut client_options = ClientOptions::new();
        client_options.dsn = Some(dsn);
        client_options.user_agent = user_agent.to_owned().into();
        client_options.transport_channel_capacity = Some(capacity.unwrap_or(QUEUE_CAPACITY));
        let mut options =
            TransportOptions::try_from_client_options(&client_options).expect("a DSN is set");
        options.client_report_recorder = recorder;
        let transport = ReqwestHttpTransportOptions::from(options)
            .with_client(client)
            .build();
        Ok(Spotlight {
            url: url.to_owned(),
            transport: Mutex::new(Some(Arc::new(transport))),
            watch,
            handed: AtomicUsize::new(0),
        })
    }

    /// The transport, to call through `&ReqwestHttpTransport`: sentry's `Transport for Arc<T>`
    /// does not forward `flush` (it answers `true` at once).
    fn transport(&self) -> Option<Arc<ReqwestHttpTransport>> {
        let transport = self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        transport.clone()
    }

    pub(crate) fn send(&self, envelope: Envelope) {
        if let Some(transport) = self.transport() {
            self.handed.fetch_add(1, Ordering::SeqCst);
            transport.send_envelope(envelope);
        }
    }

    /// Waits until what was handed over before the call has been sent (or failed), up to
    /// `timeout` (and, when the transport's queue is full, up to the request in flight).
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        self.transport()
            .is_none_or(|transport| ReqwestHttpTransport::flush(&transport, timeout))
    }

    /// Envelopes handed over that Spotlight has not answered (nor refused the connection for):
    /// queued, in flight, timed out, or dropped because the queue was full.
    pub(crate) fn unsent(&self) -> usize {
        self.handed
            .load(Ordering::SeqCst)
            .saturating_sub(self.watch.settled())
    }

    /// Flushes, then stops the transport. When Spotlight did not take everything within
    /// `timeout`, stderr says how much, and the transport's thread is left to end on its own
    /// (after the request in flight), so the program does not wait for it.
    pub(crate) fn shutdown(&self, timeout: Duration) -> bool {
        let transport = self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(transport) = transport else {
            return true;
        };
        let flushed = ReqwestHttpTransport::shutdown(&transport, timeout);
        if !flushed {
            eprintln!("{}", not_sent(self.unsent(), &self.url, timeout));
            let _ = std::thread::Builder::new()
                .name("traced-spawn-spotlight-stop".to_owned())
                .spawn(move || drop(transport));
        }
        flushed
    }
}

/// The line stderr gets when the client shuts down before Spotlight took everything.
fn not_sent(unsent: usize, url: &str, timeout: Duration) -> String {
    let envelopes = if unsent == 1 { "envelope" } else { "envelopes" };
    format!(
        "traced_spawn::console: {unsent} {envelopes} for Spotlight at {url} not delivered: it did \
         not answer for them (waited {:.1} s at shutdown)",
        timeout.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::time::Instant;

    use super::super::transport::IDLE_TIMEOUT;

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
    fn envelopes_go_to_the_sidecar_envelope_endpoint() {
        let endpoint = |url| spotlight_dsn(url).unwrap().envelope_api_url().to_string();
        assert_eq!(
            endpoint(SPOTLIGHT_DEFAULT_URL),
            "http://localhost:8969/api/0/envelope/"
        );
        assert_eq!(
            endpoint("http://[::1]:8969"),
            "http://[::1]:8969/api/0/envelope/"
        );
        assert_eq!(
            endpoint("http://example/spotlight/stream/"),
            "http://example/spotlight/api/0/envelope/"
        );
    }

    /// An envelope with one event (the transport drops an envelope without items).
    fn envelope() -> Envelope {
        let mut envelope = Envelope::new();
        envelope.add_item(sentry::protocol::Event::default());
        envelope
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
        let spotlight = Spotlight::start(&url, "test", None, Recorder::default()).unwrap();
        for _ in 0..3 {
            spotlight.send(envelope());
        }
        assert_eq!(spotlight.unsent(), 3);
        let started = Instant::now();
        assert!(!spotlight.shutdown(Duration::from_millis(200)));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(spotlight.unsent(), 3, "nothing was taken");
        assert_eq!(
            not_sent(3, &url, Duration::from_millis(200)),
            format!(
                "traced_spawn::console: 3 envelopes for Spotlight at {url} not delivered: it did \
                 not answer for them (waited 0.2 s at shutdown)"
            )
        );
    }

    #[test]
    fn a_spotlight_that_is_not_running_is_reported_and_counted_as_answered() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/stream", listener.local_addr().unwrap());
        drop(listener); // nothing listens there now
        let spotlight = Spotlight::start(&url, "test", None, Recorder::default()).unwrap();
        spotlight.send(envelope());
        spotlight.send(envelope());
        assert!(spotlight.flush(Duration::from_secs(5)));
        assert!(spotlight.watch.failing());
        assert_eq!(spotlight.unsent(), 0, "refused, not waiting");
        assert!(spotlight.shutdown(Duration::from_secs(1)));
    }

    /// One request a server received, and on which of its connections.
    #[derive(Debug)]
    struct Received {
        head: String,
        connection: usize,
    }

    /// A server that answers each request on a connection, then closes the connection once it
    /// has been idle for `idle`; reports each request it received.
    fn server(idle: Duration) -> (String, mpsc::Receiver<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/stream", listener.local_addr().unwrap());
        let (requests, received) = mpsc::channel();
        std::thread::spawn(move || {
            for (connection, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                let requests = requests.clone();
                std::thread::spawn(move || serve(stream, idle, connection, &requests));
            }
        });
        (url, received)
    }

    fn serve(stream: TcpStream, idle: Duration, connection: usize, to: &mpsc::Sender<Received>) {
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
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            io::copy(&mut (&mut reader).take(length), &mut io::sink()).unwrap();
            let _ = to.send(Received { head, connection });
            reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                .unwrap();
        }
    }

    /// A server that reads each request and closes the connection without answering.
    fn server_that_hangs_up() -> (String, mpsc::Receiver<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/stream", listener.local_addr().unwrap());
        let (requests, received) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                // The whole request (nothing left unread, so the close is a plain one).
                let mut reader = BufReader::new(stream);
                let (mut line, mut length) = (String::new(), 0);
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    line.clear();
                }
                let _ = io::copy(&mut reader.take(length), &mut io::sink());
                let _ = requests.send(());
            }
        });
        (url, received)
    }

    #[test]
    fn a_request_the_server_hung_up_on_is_sent_once_more_then_reported() {
        let (url, requests) = server_that_hangs_up();
        let spotlight = Spotlight::start(&url, "test", None, Recorder::default()).unwrap();
        // Sent, then sent again once. Under load the resend was once seen to fail before it
        // reached the server (one request counted, the failure reported): never more than two,
        // and the failure is always reported and nothing is left queued.
        send_one(&spotlight);
        let first = requests.try_iter().count();
        assert!((1..=2).contains(&first), "sent at most twice: {first}");
        assert!(spotlight.watch.failing());
        assert_eq!(spotlight.unsent(), 0);
        send_one(&spotlight);
        let second = requests.try_iter().count();
        assert!(
            (1..=2).contains(&second),
            "each envelope at most twice: {second}"
        );
        assert_eq!(spotlight.unsent(), 0);
    }

    /// Sends one envelope and waits until it was answered.
    fn send_one(spotlight: &Spotlight) {
        spotlight.send(envelope());
        assert!(spotlight.flush(Duration::from_secs(5)));
    }

    #[test]
    fn posts_to_the_envelope_endpoint_with_the_envelope_content_type() {
        let (url, requests) = server(Duration::from_secs(5));
        let spotlight = Spotlight::start(&url, "test/1", None, Recorder::default()).unwrap();
        send_one(&spotlight);
        send_one(&spotlight);
        let first = requests.recv().unwrap();
        let head = first.head.to_ascii_lowercase();
        assert!(
            head.starts_with("post /api/0/envelope/ http/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.contains("\r\ncontent-type: application/x-sentry-envelope\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nuser-agent: test/1\r\n"), "{head}");
        let second = requests.recv().unwrap();
        assert_eq!(
            second.connection, first.connection,
            "a fresh connection is reused"
        );
        assert!(!spotlight.watch.failing());
        assert_eq!(spotlight.unsent(), 0);
    }

    #[test]
    fn a_connection_idle_for_the_idle_timeout_is_not_reused() {
        // The server would keep it open: the client does not use it.
        let (url, requests) = server(IDLE_TIMEOUT * 4);
        let spotlight = Spotlight::start(&url, "test", None, Recorder::default()).unwrap();
        send_one(&spotlight);
        std::thread::sleep(IDLE_TIMEOUT + Duration::from_millis(300));
        send_one(&spotlight);
        let (first, second) = (requests.recv().unwrap(), requests.recv().unwrap());
        assert_ne!(first.connection, second.connection);
    }

    #[test]
    fn no_envelope_is_lost_to_a_connection_the_server_closed_sooner() {
        // The server's keep-alive is shorter than the client's idle limit.
        let (url, requests) = server(Duration::from_millis(200));
        let spotlight = Spotlight::start(&url, "test", None, Recorder::default()).unwrap();
        for _ in 0..3 {
            send_one(&spotlight);
            std::thread::sleep(Duration::from_millis(400));
        }
        assert_eq!(requests.try_iter().count(), 3);
        assert!(!spotlight.watch.failing());
        assert_eq!(spotlight.unsent(), 0);
    }
}
