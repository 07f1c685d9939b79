//! Everything the crate sends passes Sentry's own ingestion normalization unchanged: each event
//! and transaction item, exactly as it goes on the wire (the envelope written by
//! `Envelope::to_writer`, split by its item headers), is run through the normalizer Relay runs
//! (PyPI `sentry-relay`, pinned in scripts/python/requirements.txt) by
//! scripts/python/normalize.py, which reports every `_meta` error, every event error, and every
//! key, span or data value dropped or changed (see its list of the additions and rewrites it
//! ignores). Each test asserts no problem at all, and that the normalized transaction keeps the
//! trace context (trace_id, span_id, parent_span_id, op, status) and every span with all of its
//! data keys and values.
//!
//! Check-ins are sent along but not normalized: sentry-relay's Python bindings have no check-in
//! processing (normalize.py reports them as skipped).
//!
//! Needs the Python side's virtualenv: `bash scripts/python/setup.sh` (CI runs it). Without it the
//! tests are skipped with a notice, except when `CI` is set: then a missing venv is a failure.
//! `cargo test -p traced-spawn-tests --all-features --test relay_normalization -- --nocapture`
//! prints one summary line per item.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use traced_spawn::queue::{MessageTrace, Process, Publish};
use traced_spawn::{traced_spawn, Builder, TraceContext};
use traced_spawn_tests::{capture, in_request, in_span, on_worker, sampled, Captured};

/// One item of an envelope as it goes on the wire: its header and its payload parsed as JSON.
#[derive(Debug)]
struct WireItem {
    /// The item header's `type`: `event`, `transaction`, `check_in`, ...
    ty: String,
    payload: Value,
    /// The envelope header's `trace` (the dynamic sampling context), if any.
    dsc: Option<Value>,
}

/// The items of type event, transaction and check_in of every envelope `captured` holds, read
/// from the bytes `Envelope::to_writer` writes: a header line, then per item a header line and a
/// payload of the header's `length` (up to the next newline without one).
fn wire_items(captured: &Captured) -> Vec<WireItem> {
    let mut items = Vec::new();
    for envelope in &captured.envelopes {
        let mut bytes = Vec::new();
        envelope
            .to_writer(&mut bytes)
            .expect("an envelope serializes");
        let mut rest = bytes.as_slice();
        let header: Value = serde_json::from_slice(next_line(&mut rest)).expect("envelope header");
        let dsc = header.get("trace").cloned();
        while !rest.is_empty() {
            let item_header: Value =
                serde_json::from_slice(next_line(&mut rest)).expect("an item header");
            let payload = match item_header["length"].as_u64() {
                Some(length) => {
                    let length = usize::try_from(length).expect("an item length");
                    let (payload, tail) = rest.split_at(length);
                    rest = tail.strip_prefix(b"\n").unwrap_or(tail);
                    payload
                }
                None => next_line(&mut rest),
            };
            let ty = item_header["type"].as_str().unwrap_or_default().to_owned();
            if ["event", "transaction", "check_in"].contains(&ty.as_str()) {
                items.push(WireItem {
                    payload: serde_json::from_slice(payload)
                        .unwrap_or_else(|err| panic!("a {ty} payload is JSON: {err}")),
                    ty,
                    dsc: dsc.clone(),
                });
            }
        }
    }
    items
}

/// The bytes up to the next newline (or the end), which are consumed with it.
fn next_line<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let line = &rest[..end];
    *rest = rest.get(end + 1..).unwrap_or_default();
    line
}

/// Runs normalize.py on the items; its JSON output, one report per item.
fn normalize(python: &Path, items: &[WireItem]) -> Vec<Value> {
    let script = traced_spawn_tests::python_peer_dir().join("normalize.py");
    let mut child = Command::new(python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("start {}: {err}", script.display()));
    let input: Vec<Value> = items
        .iter()
        .map(|item| serde_json::json!({"item_type": item.ty, "payload": item.payload}))
        .collect();
    let input = serde_json::to_vec(&input).expect("items serialize");
    let mut stdin = child.stdin.take().expect("stdin");
    // Written from a thread of its own: the script may answer before it has read everything.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut stdout)
        .expect("read normalize.py's output");
    let output = child.wait_with_output().expect("normalize.py ran");
    let written = writer.join().expect("writer thread");
    assert!(
        output.status.success(),
        "normalize.py failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    written.expect("write normalize.py's input");
    let reports: Vec<Value> = serde_json::from_slice(&stdout).unwrap_or_else(|err| {
        panic!(
            "normalize.py printed no JSON ({err}): {}",
            String::from_utf8_lossy(&stdout)
        )
    });
    assert_eq!(reports.len(), items.len(), "one report per item");
    reports
}

/// Runs every event, transaction and check-in item `captured` sent through Relay's normalization
/// and asserts it passes unchanged; returns the items and their reports (empty when the venv is
/// missing and `CI` is not set: the test is skipped). Prints one line per item.
fn assert_normalized(test: &str, captured: &Captured) -> Vec<(WireItem, Value)> {
    let Some(python) = traced_spawn_tests::python_peer() else {
        return Vec::new();
    };
    let items = wire_items(captured);
    assert!(!items.is_empty(), "{test}: nothing was sent");
    let reports = normalize(&python, &items);
    let mut failures = Vec::new();
    for (item, report) in items.iter().zip(&reports) {
        let problems = report["problems"].as_array().cloned().unwrap_or_default();
        let verdict = if let Some(reason) = report["skipped"].as_str() {
            format!("skipped ({reason})")
        } else if problems.is_empty() {
            "ok".to_owned()
        } else {
            format!("{} problem(s)", problems.len())
        };
        println!(
            "{test}: {} {:?} op={} spans={}: {verdict}",
            item.ty,
            name_of(&item.payload),
            item.payload["contexts"]["trace"]["op"],
            item.payload["spans"].as_array().map_or(0, Vec::len),
        );
        for note in report["notes"].as_array().into_iter().flatten() {
            println!("    note: {}", note.as_str().unwrap_or_default());
        }
        for problem in &problems {
            println!("    {}", describe(problem));
            failures.push(format!(
                "{} {:?}: {}",
                item.ty,
                name_of(&item.payload),
                describe(problem)
            ));
        }
        if report["skipped"].is_null() && problems.is_empty() {
            assert_kept(item, &report["normalized"]);
        }
    }
    assert!(
        failures.is_empty(),
        "{test}: Relay's normalization does not accept what was sent unchanged:\n{}",
        failures.join("\n")
    );
    items.into_iter().zip(reports).collect()
}

fn name_of(payload: &Value) -> String {
    payload["transaction"]
        .as_str()
        .or(payload["monitor_slug"].as_str())
        .or(payload["message"].as_str())
        .or(payload["logentry"]["message"].as_str())
        .or(payload["exception"]["values"][0]["type"].as_str())
        .unwrap_or("-")
        .to_owned()
}

fn describe(problem: &Value) -> String {
    format!(
        "{} at {}: {}",
        problem["kind"].as_str().unwrap_or("?"),
        problem["path"].as_str().unwrap_or("?"),
        problem["detail"].as_str().unwrap_or("?")
    )
}

/// Asserts, independently of normalize.py's diff, that the normalized payload keeps the trace
/// context and every span with its ids, op, status, description and every data key with its
/// value. (A transaction sent without a status, as the tests' request transactions are, gets
/// Relay's default `unknown`; a status that was sent must be kept.)
fn assert_kept(item: &WireItem, normalized: &Value) {
    let sent = &item.payload;
    let what = format!("{} {:?}", item.ty, name_of(sent));
    let (sent_trace, kept_trace) = (&sent["contexts"]["trace"], &normalized["contexts"]["trace"]);
    assert!(
        sent_trace.is_object(),
        "{what}: sent without a trace context"
    );
    let fields: &[&str] = if item.ty == "transaction" {
        &[
            "trace_id",
            "span_id",
            "parent_span_id",
            "op",
            "status",
            "origin",
        ]
    } else {
        &["trace_id", "span_id", "parent_span_id"]
    };
    for &field in fields {
        if field == "status" && sent_trace[field].is_null() {
            assert_eq!(
                kept_trace[field], "unknown",
                "{what}: contexts.trace.status"
            );
            continue;
        }
        assert_eq!(
            kept_trace[field], sent_trace[field],
            "{what}: contexts.trace.{field}"
        );
    }
    assert_data_kept(
        &sent_trace["data"],
        &kept_trace["data"],
        &what,
        "contexts.trace",
    );
    if item.ty == "transaction" {
        if let (Some(dsc), Some(trace_id)) = (&item.dsc, sent_trace["trace_id"].as_str()) {
            assert_eq!(dsc["trace_id"], trace_id, "{what}: the envelope's DSC");
        }
    }
    let no_spans = Vec::new();
    let sent_spans = sent["spans"].as_array().unwrap_or(&no_spans);
    let kept_spans = normalized["spans"].as_array().unwrap_or(&no_spans);
    assert_eq!(
        kept_spans.len(),
        sent_spans.len(),
        "{what}: every span kept"
    );
    for (sent_span, kept_span) in sent_spans.iter().zip(kept_spans) {
        let span = format!("span {}", sent_span["span_id"]);
        for field in [
            "trace_id",
            "span_id",
            "parent_span_id",
            "op",
            "status",
            "description",
            "origin",
        ] {
            assert_eq!(kept_span[field], sent_span[field], "{what}: {span} {field}");
        }
        assert_data_kept(&sent_span["data"], &kept_span["data"], &what, &span);
    }
}

/// Asserts that every data key sent is kept with its value (numbers compared as numbers); keys
/// Relay adds (normalize.py lists them) are no loss.
fn assert_data_kept(sent: &Value, kept: &Value, what: &str, owner: &str) {
    let Some(sent) = sent.as_object() else {
        return;
    };
    for (key, value) in sent {
        let kept_value = &kept[key];
        let same = match (value.as_f64(), kept_value.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => kept_value == value,
        };
        assert!(
            same,
            "{what}: {owner} data {key:?}: sent {value}, normalized {kept_value}"
        );
    }
}

/// The normalized transaction named `name`.
fn normalized<'a>(results: &'a [(WireItem, Value)], name: &str) -> &'a Value {
    results
        .iter()
        .find(|(item, _)| item.ty == "transaction" && item.payload["transaction"] == name)
        .map(|(_, report)| &report["normalized"])
        .unwrap_or_else(|| panic!("no transaction {name:?} normalized"))
}

// ---- what the crate sends ----

#[traced_spawn]
fn answer_on_a_thread(question: String) -> Result<usize, String> {
    std::thread::sleep(Duration::from_millis(2));
    if question.is_empty() {
        return Err("empty question".to_owned());
    }
    Ok(question.len())
}

#[traced_spawn]
async fn answer_in_a_task(question: String) -> Result<usize, String> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    Ok(question.len())
}

#[traced_spawn(blocking)]
fn answer_blocking() -> u32 {
    1
}

#[traced_spawn(rayon)]
fn answer_on_rayon() -> u32 {
    2
}

#[traced_spawn(child)]
fn part_on_a_thread(n: u32) -> Result<u32, String> {
    if n == 1 {
        return Err("part 1 failed".to_owned());
    }
    Ok(n)
}

#[traced_spawn(child)]
async fn part_in_a_task(n: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    n
}

#[derive(Debug)]
struct ModelTimeout;

impl std::fmt::Display for ModelTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("model timed out")
    }
}

impl std::error::Error for ModelTimeout {}

#[traced_spawn(err)]
fn answer_with_a_captured_error() -> Result<(), ModelTimeout> {
    sentry::capture_message("about to time out", sentry::Level::Warning);
    Err(ModelTimeout)
}

#[traced_spawn]
fn answer_with_a_panic() {
    panic!("the answer exploded");
}

#[traced_spawn(name = "nightly", monitor = "nightly-report", schedule = "0 3 * * *")]
fn nightly_report() -> Result<u32, String> {
    Ok(7)
}

#[test]
fn thread_continuations_and_their_err_status() {
    let captured = capture(sampled(), || {
        in_request("POST /slack/commands", |_| {
            assert_eq!(answer_on_a_thread("why?".into()).join().unwrap(), Ok(4));
            assert!(answer_on_a_thread(String::new()).join().unwrap().is_err());
        });
    });
    let results = assert_normalized("threads", &captured);
    if results.is_empty() {
        return;
    }
    let statuses: Vec<&Value> = results
        .iter()
        .filter(|(item, _)| {
            item.payload["transaction"] == "relay_normalization::answer_on_a_thread"
        })
        .map(|(_, report)| &report["normalized"]["contexts"]["trace"]["status"])
        .collect();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.contains(&&Value::from("ok")), "{statuses:?}");
    assert!(
        statuses.contains(&&Value::from("internal_error")),
        "{statuses:?}"
    );
}

#[test]
fn task_blocking_and_rayon_continuations() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "GET /answers",
                "http.server",
            ));
            let (task, blocking, rayon) = in_span(&tx, || {
                (
                    answer_in_a_task("why?".into()),
                    answer_blocking(),
                    answer_on_rayon(),
                )
            });
            assert_eq!(task.await.unwrap(), Ok(4));
            assert_eq!(blocking.await.unwrap(), 1);
            assert_eq!(rayon.join().unwrap(), 2);
            tx.finish();
        });
    });
    let results = assert_normalized("tasks", &captured);
    if results.is_empty() {
        return;
    }
    let task = normalized(&results, "relay_normalization::answer_in_a_task");
    assert_eq!(task["contexts"]["trace"]["op"], "task");
}

#[test]
fn child_spans_of_threads_and_tasks() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "POST /summaries",
                "http.server",
            ));
            let (threads, tasks) = in_span(&tx, || {
                (
                    (0..2).map(part_on_a_thread).collect::<Vec<_>>(),
                    (0..2).map(part_in_a_task).collect::<Vec<_>>(),
                )
            });
            for handle in threads {
                let _ = handle.join().unwrap();
            }
            for handle in tasks {
                handle.await.unwrap();
            }
            tx.finish();
        });
    });
    let results = assert_normalized("child spans", &captured);
    if results.is_empty() {
        return;
    }
    let request = normalized(&results, "POST /summaries");
    let spans = request["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 4, "{spans:#?}");
    assert!(spans.iter().any(|span| span["status"] == "internal_error"));
}

#[test]
fn error_events_inside_a_continuation() {
    let captured = capture(sampled(), || {
        in_request("POST /ask", |_| {
            assert!(answer_with_a_captured_error().join().unwrap().is_err());
            assert!(answer_with_a_panic().join().is_err());
        });
    });
    let results = assert_normalized("error events", &captured);
    if results.is_empty() {
        return;
    }
    let events = results
        .iter()
        .filter(|(item, _)| item.ty == "event")
        .count();
    assert_eq!(events, 3, "a message, an error and a panic");
}

#[test]
fn queue_publish_and_process_with_all_messaging_data() {
    let mut queue: Vec<(String, MessageTrace, String)> = Vec::new();
    let captured = capture(sampled(), || {
        in_request("POST /slack/commands", |_| {
            let body = "why?".to_owned();
            let publish = Publish::start("redis", "slack.replies", "msg-1");
            publish.body_size(body.len());
            publish.envelope_size(body.len() + 64);
            queue.push(("msg-1".into(), publish.trace().clone(), body));
            publish.finish(&Ok::<(), ()>(()));
            // A publish that failed.
            let failed = Publish::start("redis", "slack.replies", "msg-2");
            failed.finish(&Err::<(), _>("connection refused"));
        });
        std::thread::sleep(Duration::from_millis(3));
        let (id, trace, body) = queue.pop().unwrap();
        let answered = Process::new("redis", "slack.replies", id, &trace)
            .body_size(body.len())
            .retry_count(1)
            .run("worker::send_reply", || Ok::<_, String>(body.len()));
        assert_eq!(answered, Ok(4));
        let failed = Process::new("redis", "slack.replies", "msg-3", &trace)
            .run("worker::send_reply", || {
                Err::<(), _>("Slack is down".to_owned())
            });
        assert!(failed.is_err());
    });
    let results = assert_normalized("queue", &captured);
    if results.is_empty() {
        return;
    }
    let producer = normalized(&results, "POST /slack/commands");
    let publish = &producer["spans"][0];
    assert_eq!(publish["op"], "queue.publish");
    for key in [
        "messaging.system",
        "messaging.destination.name",
        "messaging.message.id",
        "messaging.message.body.size",
        "messaging.message.envelope.size",
    ] {
        assert!(
            !publish["data"][key].is_null(),
            "publish {key}: {publish:#}"
        );
    }
    let consumer = normalized(&results, "worker::send_reply");
    let process = &consumer["spans"][0];
    assert_eq!(process["op"], "queue.process");
    for key in [
        "messaging.system",
        "messaging.destination.name",
        "messaging.message.id",
        "messaging.message.body.size",
        "messaging.message.retry.count",
        "messaging.message.receive.latency",
    ] {
        assert!(
            !process["data"][key].is_null(),
            "process {key}: {process:#}"
        );
    }
    assert_eq!(
        consumer["contexts"]["trace"]["parent_span_id"],
        publish["span_id"]
    );
}

#[test]
fn remote_continuation_from_headers() {
    let mut headers = Vec::new();
    let service_a = capture(sampled(), || {
        in_request("GET /ask", |_| {
            headers = TraceContext::capture().to_headers();
        });
    });
    let service_b = capture(sampled(), || {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let ctx = TraceContext::from_headers(pairs).expect("valid headers");
        Builder::new("answer")
            .context(ctx.clone())
            .spawn_thread(|| 42)
            .join()
            .unwrap();
        ctx.run("answer.inline", "function", || ());
    });
    let a = assert_normalized("remote (service A)", &service_a);
    let b = assert_normalized("remote (service B)", &service_b);
    if a.is_empty() || b.is_empty() {
        return;
    }
    let request = &normalized(&a, "GET /ask")["contexts"]["trace"];
    let answer = &normalized(&b, "answer")["contexts"]["trace"];
    assert_eq!(answer["trace_id"], request["trace_id"]);
    assert_eq!(answer["parent_span_id"], request["span_id"]);
}

#[test]
fn monitored_work_and_its_check_ins() {
    let mut options = sampled();
    options.environment = Some("staging".into());
    options.release = Some("app@2.0.0".into());
    let captured = capture(options, || {
        in_request("POST /reports", |_| {
            assert_eq!(nightly_report().join().unwrap(), Ok(7));
        });
    });
    let results = assert_normalized("monitor", &captured);
    if results.is_empty() {
        return;
    }
    let check_ins = results
        .iter()
        .filter(|(item, _)| item.ty == "check_in")
        .count();
    assert_eq!(check_ins, 2, "in_progress and ok");
}

/// An HTTP/1.1 server on loopback that answers each request `200 ok` and closes the connection.
fn http_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let address = listener.local_addr().expect("local address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone stream"));
            if traced_spawn_tests::read_request_head(&mut reader).is_some() {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        }
    });
    format!("http://{address}")
}

#[traced_spawn]
async fn call(url: String) -> Result<u16, reqwest_middleware::Error> {
    let client = reqwest_middleware::ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
        .with(traced_spawn::reqwest::TraceRequests::new())
        .build();
    let response = client.get(url).send().await?;
    Ok(response.status().as_u16())
}

#[test]
fn http_client_span_of_the_reqwest_middleware() {
    let base = http_server();
    let captured = capture(sampled(), || {
        on_worker(async move {
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "POST /slack",
                "http.server",
            ));
            let handle = in_span(&tx, || call(format!("{base}/answers?q=why")));
            assert_eq!(handle.await.unwrap().unwrap(), 200);
            tx.finish();
        });
    });
    let results = assert_normalized("http.client", &captured);
    if results.is_empty() {
        return;
    }
    let call = normalized(&results, "relay_normalization::call");
    let span = &call["spans"][0];
    assert_eq!(span["op"], "http.client");
    assert_eq!(span["data"]["http.response.status_code"], 200);
}

/// The check itself: normalize.py reports what Relay rejects, flags or drops, so that the tests
/// above cannot pass by a check that sees nothing. Each case is a transaction the crate sent,
/// broken in one way.
#[test]
fn the_check_reports_what_relay_rejects_or_drops() {
    let Some(python) = traced_spawn_tests::python_peer() else {
        return;
    };
    let mut queue = Vec::new();
    let captured = capture(sampled(), || {
        in_request("POST /slack/commands", |_| {
            let publish = Publish::start("redis", "slack.replies", "msg-1");
            queue.push(publish.trace().clone());
            publish.finish(&Ok::<(), ()>(()));
        });
    });
    let sent = wire_items(&captured)
        .into_iter()
        .find(|item| item.ty == "transaction")
        .expect("the request transaction");
    type Break = fn(&mut Value);
    let cases: [(&str, &str, &str, Break); 5] = [
        ("an unknown attribute", "meta_error", "bogus", |tx| {
            tx["bogus"] = 1.into();
        }),
        (
            "an invalid span status",
            "meta_error",
            "spans[0].status",
            |tx| {
                tx["spans"][0]["status"] = "not_a_status".into();
            },
        ),
        (
            "an invalid parent span id",
            "dropped",
            "spans[0].parent_span_id",
            |tx| {
                tx["spans"][0]["parent_span_id"] = "zz".into();
            },
        ),
        ("no trace id", "rejected", "(root)", |tx| {
            tx["contexts"]["trace"]
                .as_object_mut()
                .unwrap()
                .remove("trace_id");
        }),
        (
            "an op over Relay's limit",
            "meta_remark",
            "contexts.trace.op",
            |tx| {
                tx["contexts"]["trace"]["op"] = "x".repeat(300).into();
            },
        ),
    ];
    let broken: Vec<WireItem> = cases
        .iter()
        .map(|(_, _, _, break_it)| {
            let mut payload = sent.payload.clone();
            break_it(&mut payload);
            WireItem {
                ty: "transaction".to_owned(),
                payload,
                dsc: None,
            }
        })
        .collect();
    let reports = normalize(&python, &broken);
    for ((case, kind, path, _), report) in cases.iter().zip(&reports) {
        let problems = report["problems"].as_array().expect("problems");
        assert!(
            problems
                .iter()
                .any(|problem| problem["kind"] == *kind && problem["path"] == *path),
            "{case}: expected a {kind} problem at {path}, got {problems:#?}"
        );
    }
}
