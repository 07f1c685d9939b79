//! End to end, over HTTP on loopback, against a real receiver of the Sentry protocol: Spotlight,
//! unmodified (`scripts/spotlight/server.mjs` only makes it listen on 127.0.0.1).
//!
//! Runs the `slack_bot` example with `SENTRY_SPOTLIGHT` pointing at Spotlight, as a developer
//! would: the example starts an axum server traced by sentry-tower, gets slash commands carrying a
//! `sentry-trace` header from a fake upstream, and its `#[traced_spawn]` continuation posts the
//! reply. `traced_spawn::console` sends the envelopes; the tests read them back from Spotlight's
//! `/stream` and check that
//! - the request and the continuation are one trace, linked (`--demo`);
//! - nothing is lost after the connection sat idle: a second command 7 s after the first (past
//!   Spotlight's 5 s keep-alive) arrives whole, and no client report of a discard is sent.
//!
//! Needs `SPOTLIGHT_URL` (e.g. `http://127.0.0.1:8969`), which CI sets; **without it the test is
//! skipped**, with a message saying so. To run it locally:
//!
//! ```text
//! bash scripts/spotlight/setup.sh
//! export SPOTLIGHT_URL="$(bash scripts/spotlight/start.sh)"
//! cargo test --workspace --all-features --test spotlight -- --nocapture
//! bash scripts/spotlight/stop.sh
//! ```
//!
//! The example binary is the one `cargo test --workspace` builds next to this test
//! (`target/debug/examples/slack_bot`); `SLACK_BOT_BIN` overrides the path.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long the example may run, and how long Spotlight has to hand its envelopes back.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// The three transactions of one slash command.
const COMMAND_TRANSACTIONS: [&str; 3] = [
    "POST /slack/commands",
    "slack_bot::send_generated_response",
    "POST /api/chat.update",
];

/// Spotlight's address from `SPOTLIGHT_URL`, or `None` (the test is skipped, with a notice).
fn spotlight_or_skip(test: &str) -> Option<SocketAddr> {
    let Some(url) = std::env::var("SPOTLIGHT_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
    else {
        // Straight to stderr, past the test harness's output capture, so the skip is visible.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED spotlight end-to-end test {test}: SPOTLIGHT_URL is not set (CI sets it; see \
             tests/tests/spotlight.rs to run it locally)"
        );
        return None;
    };
    Some(loopback_address(&url))
}

#[test]
fn slack_bot_demo_reaches_spotlight_as_one_linked_trace() {
    let Some(spotlight) = spotlight_or_skip("slack_bot_demo_reaches_spotlight_as_one_linked_trace")
    else {
        return;
    };
    let bin = slack_bot_binary();

    // 1. The example, sending to Spotlight because SENTRY_SPOTLIGHT says so.
    let stdout = run_with_timeout(
        Command::new(&bin)
            .arg("--demo")
            .env("SENTRY_SPOTLIGHT", format!("http://{spotlight}/stream"))
            .env_remove("SENTRY_DSN")
            .env_remove("SENTRY_RELEASE"),
    );
    let upstream = stdout
        .lines()
        .find_map(|line| line.strip_prefix("upstream sentry-trace: "))
        .unwrap_or_else(|| panic!("the demo printed no upstream sentry-trace:\n{stdout}"));
    let mut parts = upstream.trim().split('-');
    let (upstream_trace, upstream_span) = (
        parts.next().expect("trace id").to_owned(),
        parts.next().expect("span id").to_owned(),
    );

    // 2. What Spotlight received for that trace.
    let txs = received(spotlight, &[upstream_trace.as_str()]).transactions;
    let find = |name: &str| {
        txs.iter()
            .find(|tx| tx["transaction"] == name)
            .unwrap_or_else(|| {
                let names: Vec<&Value> = txs.iter().map(|tx| &tx["transaction"]).collect();
                panic!("no transaction {name:?} received for trace {upstream_trace}; got {names:?}")
            })
    };
    let request = find("POST /slack/commands");
    let continuation = find("slack_bot::send_generated_response");
    let chat_update = find("POST /api/chat.update");
    let (request, continuation, chat_update) = (
        trace_of(request),
        trace_of(continuation),
        trace_of(chat_update),
    );

    // 3. One trace: the upstream's, continued by sentry-tower...
    assert_eq!(request["trace_id"], upstream_trace.as_str());
    assert_eq!(request["parent_span_id"], upstream_span.as_str());
    assert_eq!(request["op"], "http.server");
    assert_eq!(request["origin"], "auto.http.tower");
    // ... and the continuation hangs under the request's span, in the same trace.
    assert_eq!(continuation["trace_id"], request["trace_id"]);
    assert_eq!(continuation["parent_span_id"], request["span_id"]);
    assert_eq!(continuation["origin"], "auto.function.traced_spawn");
    assert_eq!(continuation["op"], "task");
    // The reply it posted is a request of the same trace, under the continuation's client span.
    let continuation_tx = find("slack_bot::send_generated_response");
    let client_span = continuation_tx["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|span| span["op"] == "http.client"))
        .expect("an http.client span in the continuation");
    assert_eq!(chat_update["trace_id"], request["trace_id"]);
    assert_eq!(chat_update["parent_span_id"], client_span["span_id"]);
    assert_eq!(client_span["parent_span_id"], continuation["span_id"]);
}

/// The `host:port` of a Spotlight URL, which must be on loopback.
fn loopback_address(url: &str) -> SocketAddr {
    let authority = url
        .trim()
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("SPOTLIGHT_URL must be http://127.0.0.1:PORT, got {url:?}"))
        .trim_end_matches('/');
    let address: SocketAddr = authority
        .parse()
        .unwrap_or_else(|_| panic!("SPOTLIGHT_URL must be http://127.0.0.1:PORT, got {url:?}"));
    assert!(
        address.ip().is_loopback(),
        "SPOTLIGHT_URL must be on loopback, got {url:?}"
    );
    address
}

/// The `slack_bot` example program.
fn slack_bot_binary() -> PathBuf {
    traced_spawn_tests::example_binary("slack_bot", "SLACK_BOT_BIN")
}

/// Runs the command to completion (killing it after [`RUN_TIMEOUT`]), asserts it succeeded and
/// returns its stdout.
fn run_with_timeout(command: &mut Command) -> String {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start slack_bot");
    // Drain the pipes on threads, so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for slack_bot") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    match status {
        Some(status) if status.success() => out,
        Some(status) => panic!("slack_bot --demo failed ({status}):\n{out}\n{err}"),
        None => panic!("slack_bot --demo did not finish in {RUN_TIMEOUT:?}:\n{out}\n{err}"),
    }
}

/// How long the bot sits idle between two commands: longer than Spotlight's (Node's) 5 s
/// keep-alive, so the connection of the first command is closed by Spotlight before the second.
const IDLE_PAUSE: Duration = Duration::from_secs(7);

#[test]
fn nothing_is_lost_after_the_connection_to_spotlight_sat_idle() {
    let Some(spotlight) =
        spotlight_or_skip("nothing_is_lost_after_the_connection_to_spotlight_sat_idle")
    else {
        return;
    };
    // The bot as a server (no --demo), on any free port, sending to Spotlight.
    let mut bot = Bot::start(
        Command::new(slack_bot_binary())
            .args(["--port", "0"])
            .env("SENTRY_SPOTLIGHT", format!("http://{spotlight}/stream"))
            .env_remove("SENTRY_DSN")
            .env_remove("SENTRY_RELEASE"),
    );
    let address = bot.address();
    // Spotlight replays everything it received since it started: only reports from now on count.
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();

    let first = slash_command(address);
    let _ = received(spotlight, &[first.as_str()]); // the first command arrived whole
    std::thread::sleep(IDLE_PAUSE);
    let second = slash_command(address);
    std::thread::sleep(Duration::from_millis(300));
    let third = slash_command(address); // carries a client report, had the second lost anything

    let got = received(
        spotlight,
        &[first.as_str(), second.as_str(), third.as_str()],
    );
    for trace_id in [&first, &second, &third] {
        let names: Vec<&Value> = got
            .transactions
            .iter()
            .filter(|tx| trace_of(tx)["trace_id"] == trace_id.as_str())
            .map(|tx| &tx["transaction"])
            .collect();
        assert_eq!(names.len(), 3, "trace {trace_id}: {names:?}");
    }
    let discards: Vec<&Value> = got
        .discards
        .iter()
        .filter(|report| {
            report["timestamp"]
                .as_f64()
                .is_some_and(|at| at >= started - 1.0)
        })
        .collect();
    assert!(
        discards.is_empty(),
        "Spotlight received client reports of discarded data: {discards:?}"
    );
    bot.stop();
}

/// The `slack_bot` example serving; killed when dropped.
struct Bot {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Bot {
    fn start(command: &mut Command) -> Bot {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start slack_bot");
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        Bot { child, lines }
    }

    /// The address it listens on, from its `listening on http://ADDRESS` line.
    fn address(&mut self) -> SocketAddr {
        let deadline = Instant::now() + RUN_TIMEOUT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                break;
            };
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let address = rest.split_whitespace().next().unwrap_or_default();
                return address
                    .parse()
                    .unwrap_or_else(|_| panic!("slack_bot printed {line:?}"));
            }
        }
        panic!("slack_bot did not say where it listens within {RUN_TIMEOUT:?}");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends one slash command with a new upstream `sentry-trace`; returns its trace id once the bot
/// answered `200`.
fn slash_command(bot: SocketAddr) -> String {
    let (trace_id, span_id) = (
        sentry::protocol::TraceId::default().to_string(),
        sentry::protocol::SpanId::default().to_string(),
    );
    let body = "channel_id=C042&user_name=ada&command=%2Fask&text=why+is+the+build+red%3F";
    let mut stream = TcpStream::connect_timeout(&bot, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    write!(
        stream,
        "POST /slack/commands HTTP/1.1\r\nHost: {bot}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         sentry-trace: {trace_id}-{span_id}-1\r\n\
         baggage: sentry-trace_id={trace_id},sentry-sampled=true\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send the command");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "POST /slack/commands: {response}"
    );
    trace_id
}

/// What Spotlight handed back for some traces.
struct Received {
    /// The transaction payloads of those traces.
    transactions: Vec<Value>,
    /// Every client report payload Spotlight received (from any client, since it started) that
    /// reports a discard.
    discards: Vec<Value>,
}

/// Reads Spotlight's `/stream` (server-sent events replaying every envelope it received) until
/// the three transactions of a command have arrived for each of `trace_ids`, or [`READ_TIMEOUT`]
/// has passed (then it panics, naming what arrived).
fn received(spotlight: SocketAddr, trace_ids: &[&str]) -> Received {
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&spotlight, Duration::from_secs(5))
        .unwrap_or_else(|err| panic!("cannot connect to Spotlight at {spotlight}: {err}"));
    write!(
        stream,
        "GET /stream?client=traced-spawn-tests HTTP/1.1\r\nHost: {spotlight}\r\n\
         Accept: text/event-stream\r\nConnection: close\r\n\r\n"
    )
    .expect("send GET /stream");
    let mut reader = BufReader::new(stream);

    let mut status = String::new();
    timed(&mut reader, deadline, |r| r.read_line(&mut status)).expect("status line");
    assert!(status.contains(" 200 "), "GET /stream: {status}");
    let mut chunked = false;
    loop {
        let mut header = String::new();
        timed(&mut reader, deadline, |r| r.read_line(&mut header)).expect("header line");
        if header.trim().is_empty() {
            break;
        }
        let header = header.to_ascii_lowercase();
        chunked |= header.starts_with("transfer-encoding:") && header.contains("chunked");
    }

    let mut body = Vec::new();
    let mut got = Received {
        transactions: Vec::new(),
        discards: Vec::new(),
    };
    loop {
        let complete = trace_ids.iter().all(|trace_id| {
            COMMAND_TRANSACTIONS.iter().all(|name| {
                got.transactions
                    .iter()
                    .any(|tx| tx["transaction"] == *name && trace_of(tx)["trace_id"] == *trace_id)
            })
        });
        if complete {
            return got;
        }
        let more = if chunked {
            read_chunk(&mut reader, deadline)
        } else {
            let mut buf = vec![0; 8192];
            timed(&mut reader, deadline, |r| r.read(&mut buf)).map(|n| {
                buf.truncate(n);
                buf
            })
        };
        match more {
            Some(bytes) if !bytes.is_empty() => body.extend_from_slice(&bytes),
            _ => {
                let names: Vec<String> = got
                    .transactions
                    .iter()
                    .map(|tx| format!("{} {}", trace_of(tx)["trace_id"], tx["transaction"]))
                    .collect();
                panic!(
                    "Spotlight did not hand back the traces {trace_ids:?} within \
                     {READ_TIMEOUT:?}; got {names:?}; client reports of discards: {:?}",
                    got.discards
                );
            }
        }
        // Complete events end with a blank line; their `data:` is the parsed envelope,
        // `[headers, [[item header, item payload], ...]]`.
        while let Some(end) = find(&body, b"\n\n") {
            let event: Vec<u8> = body.drain(..end + 2).collect();
            let event = String::from_utf8_lossy(&event);
            for data in event.lines().filter_map(|line| line.strip_prefix("data:")) {
                let Ok(envelope) = serde_json::from_str::<Value>(data.trim()) else {
                    continue;
                };
                let items = envelope[1].as_array().cloned().unwrap_or_default();
                for item in items {
                    match item[0]["type"].as_str() {
                        Some("transaction") => {
                            let trace_id = &trace_of(&item[1])["trace_id"];
                            if trace_ids.iter().any(|id| trace_id == *id) {
                                got.transactions.push(item[1].clone());
                            }
                        }
                        Some("client_report") => {
                            let discarded = ["discarded_events", "rate_limited_events"]
                                .iter()
                                .any(|key| item[1][key].as_array().is_some_and(|a| !a.is_empty()));
                            if discarded {
                                got.discards.push(item[1].clone());
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

fn trace_of(tx: &Value) -> &Value {
    &tx["contexts"]["trace"]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Runs one read with the socket's timeout set to what is left until `deadline`; `None` once the
/// deadline has passed or the read failed.
fn timed<T>(
    reader: &mut BufReader<TcpStream>,
    deadline: Instant,
    read: impl FnOnce(&mut BufReader<TcpStream>) -> std::io::Result<T>,
) -> Option<T> {
    let left = deadline.checked_duration_since(Instant::now())?;
    reader
        .get_ref()
        .set_read_timeout(Some(left.max(Duration::from_millis(1))))
        .ok()?;
    read(reader).ok()
}

/// One chunk of a chunked body (`<hex size>\r\n<bytes>\r\n`); an empty one at the end.
fn read_chunk(reader: &mut BufReader<TcpStream>, deadline: Instant) -> Option<Vec<u8>> {
    let mut size = String::new();
    timed(reader, deadline, |r| r.read_line(&mut size))?;
    let size = usize::from_str_radix(size.trim().split(';').next()?.trim(), 16).ok()?;
    let mut bytes = vec![0; size + 2]; // and its CRLF
    timed(reader, deadline, |r| r.read_exact(&mut bytes))?;
    bytes.truncate(size);
    Some(bytes)
}
