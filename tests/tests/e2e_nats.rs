//! End to end through NATS JetStream on a real server: the `nats_queue` example's producer and
//! workers (a durable pull consumer, `traced_spawn::nats`) run as separate processes, each writing
//! every transaction it sends as a JSON line to a file of its own (`--envelopes FILE`, a custom
//! sentry `Transport`); the tests read those files.
//!
//! ```text
//! bash scripts/nats/setup.sh && export NATS_URL="$(bash scripts/nats/start.sh)"
//! cargo test --workspace --all-features --test e2e_nats -- --nocapture
//! bash scripts/nats/stop.sh
//! ```
//!
//! Without `NATS_URL` the NATS tests are skipped with a notice, unless `CI=true`: then they fail.
//! The example binary is the one `cargo test --workspace` builds next to this test
//! (`target/debug/examples/nats_queue`); `NATS_QUEUE_BIN` overrides the path.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any one process of a test may run.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(40);

/// The NATS server to use, or `None` (with a printed notice) when the test is to be skipped.
fn nats_url(test: &str) -> Option<String> {
    match std::env::var("NATS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("NATS_URL is not set, and CI=true: start NATS with scripts/nats/start.sh")
        }
        _ => {
            eprintln!(
                "SKIPPED {test}: NATS_URL is not set (bash scripts/nats/setup.sh && export \
                 NATS_URL=\"$(bash scripts/nats/start.sh)\")"
            );
            None
        }
    }
}

/// The `nats_queue` example program.
fn example_binary() -> PathBuf {
    traced_spawn_tests::example_binary("nats_queue", "NATS_QUEUE_BIN")
}

/// A name no other test or run uses: for subjects, consumers and envelope files.
fn unique(what: &str) -> String {
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

/// One process of the example, writing its transactions to its own file.
struct Proc {
    child: Child,
    envelopes: PathBuf,
    out: Option<std::thread::JoinHandle<String>>,
    err: Option<std::thread::JoinHandle<String>>,
}

impl Proc {
    fn start(url: &str, args: &[&str]) -> Proc {
        Proc::start_with(url, args, |_| {})
    }

    /// Starts the example with `args`; `on_line` sees each stdout line as it is printed.
    fn start_with(url: &str, args: &[&str], on_line: impl FnMut(&str) + Send + 'static) -> Proc {
        let envelopes = std::env::temp_dir().join(format!("{}.jsonl", unique("e2e_nats")));
        let mut child = Command::new(example_binary())
            .args(args)
            .arg("--envelopes")
            .arg(&envelopes)
            .env("NATS_URL", url)
            .env_remove("SENTRY_DSN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nats_queue");
        let out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let mut on_line = on_line;
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
            child,
            envelopes,
            out: Some(out),
            err: Some(err),
        }
    }

    /// Waits for the process (killing it after [`PROCESS_TIMEOUT`]); returns its status, stdout
    /// and stderr.
    fn wait(&mut self) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for nats_queue") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "nats_queue did not finish in {PROCESS_TIMEOUT:?}:\n{}\n{}",
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
    fn succeed(&mut self) -> String {
        let (status, out, err) = self.wait();
        assert!(
            status.success(),
            "nats_queue failed ({status}):\n{out}\n{err}"
        );
        out
    }

    /// Every transaction the process sent.
    fn transactions(&self) -> Vec<Value> {
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

fn read_transactions(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new(); // nothing was ever sent
    };
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
        .filter_map(|mut line| line.get_mut("transaction").map(Value::take))
        .collect()
}

fn trace(tx: &Value) -> &Value {
    &tx["contexts"]["trace"]
}

fn only<'a>(tx: &'a Value, op: &str) -> &'a Value {
    let found: Vec<&Value> = tx["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|span| span["op"] == op)
        .collect();
    assert_eq!(found.len(), 1, "one {op} span expected in {tx:#}");
    found[0]
}

fn requests_and_publishes(producer: &[Value]) -> Vec<(&Value, &Value)> {
    producer
        .iter()
        .map(|request| {
            assert_eq!(request["transaction"], "POST /slack/commands");
            (request, only(request, "queue.publish"))
        })
        .collect()
}

#[test]
fn a_request_and_its_message_in_a_worker_process_are_one_trace() {
    let Some(url) = nats_url("a_request_and_its_message_in_a_worker_process_are_one_trace") else {
        return;
    };
    let subject = format!("e2e.{}", unique("one"));
    let mut producer = Proc::start(&url, &["--produce", "1", "--subject", &subject]);
    producer.succeed();
    let mut worker = Proc::start(&url, &["--worker", "--subject", &subject, "--jobs", "1"]);
    worker.succeed();

    let produced = producer.transactions();
    let (request, publish) = requests_and_publishes(&produced)[0];
    assert_eq!(publish["status"], "ok");
    assert_eq!(publish["parent_span_id"], trace(request)["span_id"]);
    assert_eq!(publish["data"]["messaging.system"], "nats");
    assert_eq!(
        publish["data"]["messaging.destination.name"],
        subject.as_str()
    );
    let body_size = &publish["data"]["messaging.message.body.size"];
    assert!(
        body_size.as_u64().is_some_and(|size| size > 0),
        "{publish:#}"
    );

    let consumed = worker.transactions();
    assert_eq!(consumed.len(), 1, "{consumed:#?}");
    let consumer = &consumed[0];
    assert_eq!(trace(consumer)["trace_id"], trace(request)["trace_id"]);
    assert_eq!(trace(consumer)["parent_span_id"], publish["span_id"]);
    assert_eq!(trace(consumer)["op"], "function");
    let process = only(consumer, "queue.process");
    assert_eq!(process["status"], "ok");
    assert_eq!(process["data"]["messaging.system"], "nats");
    assert_eq!(
        process["data"]["messaging.destination.name"],
        subject.as_str()
    );
    assert_eq!(process["data"]["messaging.message.retry.count"], 0);
    assert_eq!(
        process["data"]["messaging.message.id"],
        publish["data"]["messaging.message.id"]
    );
    assert_eq!(process["data"]["messaging.message.body.size"], *body_size);
    // The headers (trace, publish time, message id) come on top of the body.
    let envelope = process["data"]["messaging.message.envelope.size"]
        .as_u64()
        .unwrap_or_else(|| panic!("no envelope size: {process:#}"));
    assert!(envelope > body_size.as_u64().unwrap() + 100, "{process:#}");
    let latency = process["data"]["messaging.message.receive.latency"]
        .as_u64()
        .unwrap_or_else(|| panic!("no receive latency: {process:#}"));
    assert!(latency < 60_000, "{latency} ms");
    let work = only(consumer, "llm.generate");
    assert_eq!(work["parent_span_id"], process["span_id"]);
}

#[test]
fn a_message_whose_worker_is_killed_before_its_ack_is_delivered_again_in_the_same_trace() {
    let Some(url) = nats_url(
        "a_message_whose_worker_is_killed_before_its_ack_is_delivered_again_in_the_same_trace",
    ) else {
        return;
    };
    let subject = format!("e2e.{}", unique("kill"));
    let durable = unique("worker");
    let (took_tx, took) = std::sync::mpsc::channel();
    // The durable consumer is created by this worker: the server redelivers what it does not
    // acknowledge within 1 s.
    let mut doomed = Proc::start_with(
        &url,
        &[
            "--worker",
            "--subject",
            &subject,
            "--durable",
            &durable,
            "--ack-wait-ms",
            "1000",
            "--work-ms",
            "60000",
        ],
        move |line| {
            if line.starts_with("took message ") {
                let _ = took_tx.send(line.to_owned());
            }
        },
    );
    let mut producer = Proc::start(&url, &["--produce", "1", "--subject", &subject]);
    producer.succeed();
    let line = took
        .recv_timeout(Duration::from_secs(20))
        .expect("the first worker takes the message");
    assert!(line.ends_with(" delivery 1"), "{line}");
    doomed.child.kill().expect("SIGKILL the worker"); // no ack, no cleanup at all
    let (status, _, _) = doomed.wait();
    assert!(!status.success());

    // Another worker on the same durable consumer gets it once the ack wait has passed.
    let mut rescuer = Proc::start(
        &url,
        &[
            "--worker",
            "--subject",
            &subject,
            "--durable",
            &durable,
            "--work-ms",
            "5",
            "--jobs",
            "1",
        ],
    );
    let out = rescuer.succeed();
    assert_eq!(out.matches("took message ").count(), 1, "{out}");
    assert!(out.contains(" delivery 2"), "{out}");

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
    // Measured from the publish, so it includes the first attempt and the ack wait.
    let latency = process["data"]["messaging.message.receive.latency"]
        .as_u64()
        .unwrap();
    assert!(latency >= 1_000, "{latency} ms");
}

#[test]
fn a_nats_that_is_down_fails_clearly_without_a_panic() {
    // Nothing listens on a port just released by the kernel.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    for args in [
        &["--produce", "1", "--subject", "e2e.down"][..],
        &["--worker", "--subject", "e2e.down", "--jobs", "1"][..],
    ] {
        let started = Instant::now();
        let mut proc = Proc::start(&url, args);
        let (status, out, err) = proc.wait();
        assert_eq!(
            status.code(),
            Some(1),
            "{args:?}: a clear failure, not a panic (101):\n{out}\n{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains(&format!("127.0.0.1:{port}")),
            "{args:?}: the error says what failed and where: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?}: fails at once, took {:?}",
            started.elapsed()
        );
        assert!(proc.transactions().is_empty(), "{args:?}: nothing was sent");
    }
}
