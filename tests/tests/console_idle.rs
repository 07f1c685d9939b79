//! `traced_spawn::console::init` loses no envelope because a kept-alive connection sat idle and
//! the server closed it, neither the ones for Spotlight (`SENTRY_SPOTLIGHT`) nor the ones for the
//! DSN (`SENTRY_DSN`, sentry's own HTTP transport).
//!
//! The receiver is a real HTTP/1.1 server on loopback that closes a connection once it has been
//! idle for [`SERVER_KEEP_ALIVE`], as Spotlight's Node server does after 5 s. The client sends,
//! waits [`PAUSE`] (past that keep-alive), sends twice more: every envelope must arrive at both
//! endpoints (Spotlight's envelope endpoint `/api/0/envelope/`, beside the `/stream` of
//! `SENTRY_SPOTLIGHT`, and the DSN's `/api/1/envelope/`), Spotlight's with
//! `Content-Type: application/x-sentry-envelope`, and no client report of a discard may be sent.

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use traced_spawn_tests::read_request_head;

/// How long the server keeps an idle connection open.
const SERVER_KEEP_ALIVE: Duration = Duration::from_secs(2);
/// The pause between the first and the second send.
const PAUSE: Duration = Duration::from_secs(3);

/// One request the server received.
#[derive(Debug)]
struct Request {
    path: String,
    content_type: Option<String>,
    body: String,
}

/// Starts the server; returns its `host:port` and the requests it receives.
fn server() -> (String, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let (requests, received) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let requests = requests.clone();
            std::thread::spawn(move || serve(stream, &requests));
        }
    });
    (address, received)
}

/// Serves one connection: answers each request `200`, closes the connection once idle for
/// [`SERVER_KEEP_ALIVE`].
fn serve(stream: TcpStream, requests: &mpsc::Sender<Request>) {
    stream
        .set_read_timeout(Some(SERVER_KEEP_ALIVE))
        .expect("timeout");
    let mut reader = BufReader::new(stream);
    loop {
        // Nothing for SERVER_KEEP_ALIVE (or the client closed): close the connection.
        let Some((request_line, headers)) = read_request_head(&mut reader) else {
            return;
        };
        let (mut length, mut content_type) = (0usize, None);
        for (name, value) in headers {
            match name.as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "content-type" => content_type = Some(value),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let _ = requests.send(Request {
            path,
            content_type,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        let answer =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        if reader.get_mut().write_all(answer).is_err() {
            return;
        }
    }
}

/// Finishes a transaction named `name` and waits until the client has sent it.
fn send(reporter: &traced_spawn::console::Reporter, name: &str) {
    sentry::start_transaction(sentry::TransactionContext::new(name, "test")).finish();
    // `traces` flushes the client (every destination) before it returns.
    assert!(reporter
        .traces()
        .iter()
        .flat_map(|trace| trace.nodes())
        .any(|node| node.name == name));
}

#[test]
fn no_envelope_is_lost_to_a_connection_closed_while_idle() {
    let (address, requests) = server();
    // The only test of this binary: no other test reads the environment meanwhile.
    std::env::set_var("SENTRY_SPOTLIGHT", format!("http://{address}/stream"));
    std::env::set_var("SENTRY_DSN", format!("http://public@{address}/1"));
    let reporter = traced_spawn::console::init();
    assert_eq!(
        reporter.spotlight(),
        Some(format!("http://{address}/stream").as_str())
    );
    assert!(reporter.dsn().is_some());

    send(&reporter, "first");
    std::thread::sleep(PAUSE); // the server closes the idle connections
    send(&reporter, "second");
    send(&reporter, "third"); // would carry a client report, had "second" been lost
    drop(reporter);

    let received: Vec<Request> = requests.try_iter().collect();
    for (path, content_type) in [
        ("/api/0/envelope/", Some("application/x-sentry-envelope")),
        ("/api/1/envelope/", None),
    ] {
        let bodies: Vec<&Request> = received.iter().filter(|r| r.path == path).collect();
        for name in ["first", "second", "third"] {
            let transaction = format!("\"transaction\":\"{name}\"");
            assert!(
                bodies.iter().any(|r| r.body.contains(&transaction)),
                "{path} did not receive {name:?}: got {:?}",
                bodies.iter().map(|r| r.body.len()).collect::<Vec<_>>()
            );
        }
        if let Some(content_type) = content_type {
            assert!(
                bodies
                    .iter()
                    .all(|r| r.content_type.as_deref() == Some(content_type)),
                "{path}: {:?}",
                bodies.iter().map(|r| &r.content_type).collect::<Vec<_>>()
            );
        }
        for request in &bodies {
            assert!(
                !request.body.contains("\"discarded_events\""),
                "{path} received a client report of a discard: {}",
                request.body
            );
        }
    }
}
