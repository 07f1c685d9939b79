//! Sentry Crons check-ins of monitored work (`#[traced_spawn(monitor = "slug")]`,
//! `Builder::monitor`), read from the envelopes sentry's test transport captured, and compared
//! field by field with what sentry-python's `monitor` decorator (`capture_checkin`) sends for the
//! same job (scripts/python/checkin.py).
//!
//! The Python comparison needs the peer's virtualenv: `bash scripts/python/setup.sh` (CI runs
//! it). Without it that test is skipped with a notice, except when `CI` is set: then a missing
//! peer is a failure.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use traced_spawn::sentry::protocol::MonitorSchedule;
use traced_spawn::{traced_spawn, Builder, TraceContext};
use traced_spawn_tests::{capture, in_request, on_worker, rate, sampled, tx_trace, Captured};

/// The JSON of every `check_in` item sent, in the order sent. A check-in travels in an envelope
/// of its own, written as bytes (sentry-types' check-in has no `contexts`), so the envelopes are
/// read as they go on the wire.
fn check_ins(captured: &Captured) -> Vec<Value> {
    let mut items = Vec::new();
    for envelope in &captured.envelopes {
        let mut bytes = Vec::new();
        envelope
            .to_writer(&mut bytes)
            .expect("an envelope serializes");
        let text = String::from_utf8(bytes).expect("JSON items only");
        let mut lines = text.lines().skip(1);
        while let Some(header) = lines.next() {
            let header: Value = serde_json::from_str(header).expect("an item header");
            let payload = lines.next().expect("an item payload");
            if header["type"] == "check_in" {
                items.push(serde_json::from_str(payload).expect("a check-in payload"));
            }
        }
    }
    items
}

/// Client options with an environment and a release, every trace sampled.
fn options() -> sentry::ClientOptions {
    with_release(sampled())
}

fn with_release(mut options: sentry::ClientOptions) -> sentry::ClientOptions {
    options.environment = Some("staging".into());
    options.release = Some("app@2.0.0".into());
    options
}

/// The two check-ins of one run: `in_progress`, then the final one with the same id.
#[track_caller]
fn started_and_ended(items: &[Value]) -> (Value, Value) {
    let [start, end] = items else {
        panic!("expected two check-ins, got {items:#?}");
    };
    assert_eq!(start["status"], "in_progress", "{start}");
    assert_eq!(start["check_in_id"], end["check_in_id"]);
    let id = start["check_in_id"].as_str().expect("a check-in id");
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert!(start.get("duration").is_none(), "{start}");
    let duration = end["duration"]
        .as_f64()
        .expect("a final check-in's duration");
    assert!(duration > 0.0, "{end}");
    for item in [start, end] {
        assert_eq!(item["monitor_slug"], "nightly-report");
        assert_eq!(item["environment"], "staging");
        assert_eq!(item["release"], "app@2.0.0");
        assert_eq!(
            item["contexts"]["trace"]["trace_id"],
            start["contexts"]["trace"]["trace_id"]
        );
    }
    (start.clone(), end.clone())
}

fn trace_id_of(item: &Value) -> &str {
    item["contexts"]["trace"]["trace_id"]
        .as_str()
        .expect("contexts.trace.trace_id")
}

/// What a nightly report returns: 7, or an error when it is to `fail`.
fn report(fail: bool) -> Result<u32, String> {
    if fail {
        Err("the report failed".to_owned())
    } else {
        Ok(7)
    }
}

#[traced_spawn(name = "nightly", monitor = "nightly-report")]
fn nightly_report(fail: bool) -> Result<u32, String> {
    std::thread::sleep(Duration::from_millis(5));
    report(fail)
}

#[test]
fn a_monitored_thread_checks_in_and_out_in_the_continuations_trace() {
    let captured = capture(options(), || {
        in_request("POST /reports", |_| {
            assert_eq!(nightly_report(false).join().unwrap(), Ok(7));
        });
    });
    let (start, end) = started_and_ended(&check_ins(&captured));
    assert_eq!(end["status"], "ok");
    // No schedule: no monitor config.
    assert!(start.get("monitor_config").is_none());
    let continuation = tx_trace(captured.only("nightly"));
    assert_eq!(trace_id_of(&start), continuation.trace_id.to_string());
    assert_eq!(
        continuation.trace_id,
        tx_trace(captured.only("POST /reports")).trace_id
    );
}

#[test]
fn an_err_ends_the_check_in_as_error() {
    let captured = capture(options(), || {
        in_request("POST /reports", |_| {
            assert!(nightly_report(true).join().unwrap().is_err());
        });
    });
    let (_, end) = started_and_ended(&check_ins(&captured));
    assert_eq!(end["status"], "error");
}

#[traced_spawn(name = "nightly", monitor = "nightly-report")]
fn exploding_report() {
    std::thread::sleep(Duration::from_millis(5));
    panic!("the report exploded");
}

#[test]
fn a_panic_ends_the_check_in_as_error() {
    let captured = capture(options(), || {
        in_request("POST /reports", |_| {
            assert!(exploding_report().join().is_err());
        });
    });
    let (_, end) = started_and_ended(&check_ins(&captured));
    assert_eq!(end["status"], "error");
}

#[traced_spawn(
    name = "nightly",
    monitor = "nightly-report",
    schedule = "0 3 * * *",
    max_runtime = 30,
    checkin_margin = 5
)]
async fn nightly_task(fail: bool) -> Result<u32, String> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    report(fail)
}

#[test]
fn a_monitored_task_sends_its_schedule_as_the_monitor_config() {
    let captured = capture(options(), || {
        on_worker(async {
            let tx = sentry::start_transaction(sentry::TransactionContext::new("cron", "cron"));
            let handle = traced_spawn_tests::in_span(&tx, || nightly_task(false));
            assert_eq!(handle.await.unwrap(), Ok(7));
            tx.finish();
        });
    });
    let (start, end) = started_and_ended(&check_ins(&captured));
    assert_eq!(end["status"], "ok");
    let config = serde_json::json!({
        "schedule": {"type": "crontab", "value": "0 3 * * *"},
        "max_runtime": 30,
        "checkin_margin": 5,
    });
    assert_eq!(start["monitor_config"], config);
    assert_eq!(end["monitor_config"], config);
    assert_eq!(
        trace_id_of(&start),
        tx_trace(captured.only("nightly")).trace_id.to_string()
    );
}

#[test]
fn a_failing_task_ends_its_check_in_as_error() {
    let captured = capture(options(), || {
        on_worker(async {
            assert!(nightly_task(true).await.unwrap().is_err());
        });
    });
    let (_, end) = started_and_ended(&check_ins(&captured));
    assert_eq!(end["status"], "error");
}

#[traced_spawn(name = "nightly", monitor = "nightly-report")]
async fn stuck_report(started: tokio::sync::oneshot::Sender<()>) {
    let _ = started.send(());
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[test]
fn a_cancelled_task_ends_its_check_in_as_error() {
    let captured = capture(options(), || {
        on_worker(async {
            let (started, running) = tokio::sync::oneshot::channel();
            let handle = stuck_report(started);
            running.await.unwrap();
            handle.abort();
            assert!(handle.await.unwrap_err().is_cancelled());
        });
    });
    let (start, end) = started_and_ended(&check_ins(&captured));
    assert_eq!(end["status"], "error");
    assert_eq!(
        trace_id_of(&start),
        tx_trace(captured.only("nightly")).trace_id.to_string()
    );
}

#[traced_spawn(name = "nightly", monitor = "nightly-report", future)]
async fn report_later() -> u32 {
    7
}

#[test]
fn work_dropped_before_it_ran_checks_in_as_error() {
    let captured = capture(options(), || {
        on_worker(async {
            drop(report_later());
        });
    });
    let (_, end) = started_and_ended(&check_ins(&captured));
    assert_eq!(end["status"], "error");
}

#[test]
fn an_unsampled_trace_still_checks_in_with_the_callers_trace_id() {
    let mut caller_trace = None;
    let captured = capture(with_release(rate(0.0)), || {
        in_request("POST /reports", |_| {
            caller_trace = TraceContext::capture().trace_id();
            assert_eq!(nightly_report(false).join().unwrap(), Ok(7));
        });
    });
    assert!(captured.transactions().is_empty(), "nothing is sampled");
    let (start, end) = started_and_ended(&check_ins(&captured));
    assert_eq!(end["status"], "ok");
    // The trace the request's errors, and the job's, are reported in.
    assert_eq!(
        trace_id_of(&start),
        caller_trace.expect("a trace id").to_string()
    );
}

#[test]
fn the_builder_checks_in_with_a_schedule() {
    let captured = capture(options(), || {
        let handle = Builder::new("nightly")
            .monitor("nightly-report")
            .schedule(MonitorSchedule::from_crontab("*/15 * * * *").unwrap())
            .max_runtime(10)
            .fallible()
            .spawn_thread(|| "x".parse::<u32>());
        assert!(handle.join().unwrap().is_err());
    });
    let (start, end) = started_and_ended(&check_ins(&captured));
    assert_eq!(end["status"], "error");
    assert_eq!(
        start["monitor_config"],
        serde_json::json!({"schedule": {"type": "crontab", "value": "*/15 * * * *"}, "max_runtime": 10})
    );
    assert_eq!(
        trace_id_of(&start),
        tx_trace(captured.only("nightly")).trace_id.to_string()
    );
}

#[test]
fn without_a_client_nothing_is_sent_and_the_body_runs() {
    assert_eq!(nightly_report(false).join().unwrap(), Ok(7));
}

// ---------------------------------------------------------------- sentry-python's check-ins

/// The keys of a check-in item Sentry's check-in protocol defines (develop.sentry.dev, "Check-Ins"),
/// which Relay's `CheckIn` reads (`release` aside, which the protocol lists and Relay drops).
const PROTOCOL_KEYS: [&str; 8] = [
    "check_in_id",
    "monitor_slug",
    "status",
    "duration",
    "release",
    "environment",
    "monitor_config",
    "contexts",
];

/// What sentry-python adds to a check-in because it sends it as an event (`capture_event`):
/// Relay's `CheckIn` has none of them and drops them.
const PYTHON_EVENT_KEYS: [&str; 6] = [
    "type",
    "event_id",
    "timestamp",
    "server_name",
    "sdk",
    "platform",
];

/// The check-in items sentry-python sends for the job, ending `ok` or `error`.
fn python_check_ins(python: &PathBuf, mode: &str) -> Vec<Value> {
    let output = Command::new(python)
        .arg(traced_spawn_tests::python_peer_dir().join("checkin.py"))
        .arg(mode)
        .output()
        .expect("run the python peer");
    assert!(
        output.status.success(),
        "python peer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "python peer printed no JSON ({err}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    let items: Vec<Value> = out["check_ins"]
        .as_array()
        .expect("check_ins")
        .iter()
        .map(|item| {
            assert_eq!(item["headers"]["type"], "check_in");
            item["payload"].clone()
        })
        .collect();
    for item in &items {
        assert_eq!(
            trace_id_of(item),
            out["trace_id"],
            "python links its trace too"
        );
    }
    items
}

/// The same job in Rust: the monitor, schedule and client of checkin.py.
#[traced_spawn(
    name = "nightly",
    monitor = "nightly-report",
    schedule = "0 3 * * *",
    max_runtime = 30,
    checkin_margin = 5
)]
fn peer_job(fail: bool) -> Result<(), String> {
    std::thread::sleep(Duration::from_millis(10));
    if fail {
        Err("the report failed".to_owned())
    } else {
        Ok(())
    }
}

fn rust_check_ins(fail: bool) -> Vec<Value> {
    let mut options = sampled();
    options.dsn = Some("https://rustkey@o42.ingest.sentry.io/9".parse().unwrap());
    options.environment = Some("peer".into());
    options.release = Some("py@1.0".into());
    let captured = capture(options, || {
        in_request("nightly.cron", |_| {
            let _ = peer_job(fail).join().unwrap();
        });
    });
    check_ins(&captured)
}

/// The JSON type of a value, with `null` as absent.
fn json_type(value: Option<&Value>) -> &'static str {
    match value {
        None | Some(Value::Null) => "absent",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .map(|map| {
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k.as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// Every key `rust` has, `python` has with the same JSON type, recursively; `path` names the
/// object in messages.
#[track_caller]
fn assert_same_shape(rust: &Value, python: &Value, path: &str) {
    for key in keys(rust) {
        let (r, p) = (rust.get(key), python.get(key));
        assert_eq!(
            json_type(r),
            json_type(p),
            "{path}.{key}: rust {r:?}, python {p:?}"
        );
        if let (Some(r @ Value::Object(_)), Some(p)) = (r, p) {
            assert_same_shape(r, p, &format!("{path}.{key}"));
        }
    }
}

#[test]
fn check_ins_match_what_sentry_python_sends_for_the_same_job() {
    let Some(python) = traced_spawn_tests::python_peer() else {
        return;
    };
    for (mode, fail) in [("ok", false), ("error", true)] {
        let python_items = python_check_ins(&python, mode);
        let rust_items = rust_check_ins(fail);
        assert_eq!(python_items.len(), 2, "{python_items:#?}");
        assert_eq!(rust_items.len(), 2, "{rust_items:#?}");
        for (rust, python) in rust_items.iter().zip(&python_items) {
            let status = python["status"].as_str().unwrap();
            // Keys and value types: every key Rust sends, Python sends with the same type...
            assert_same_shape(rust, python, status);
            // ...and every key of the check-in protocol Python sends, Rust sends.
            for key in PROTOCOL_KEYS {
                assert_eq!(
                    json_type(rust.get(key)),
                    json_type(python.get(key)),
                    "{status}: {key}"
                );
            }
            // What Python sends beyond that is the event envelope it sends check-ins in, and
            // trace context fields past the trace id; Relay reads neither.
            for key in keys(python) {
                assert!(
                    PROTOCOL_KEYS.contains(&key) || PYTHON_EVENT_KEYS.contains(&key),
                    "{status}: python sends `{key}`, which Rust does not: {python}"
                );
            }
            assert_eq!(
                keys(&rust["contexts"]["trace"]),
                BTreeSet::from(["trace_id"])
            );
            // Values: the same job, the same client; ids and timings differ.
            for key in [
                "monitor_slug",
                "status",
                "environment",
                "release",
                "monitor_config",
            ] {
                assert_eq!(rust[key], python[key], "{status}: {key}");
            }
            for item in [rust, python] {
                let id = item["check_in_id"].as_str().unwrap();
                assert!(
                    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{id}"
                );
                assert_eq!(trace_id_of(item).len(), 32);
            }
        }
        assert_eq!(rust_items[1]["status"], mode);
        assert!(rust_items[1]["duration"].as_f64().unwrap() >= 0.01);
        assert!(python_items[1]["duration"].as_f64().unwrap() >= 0.01);
    }
}
