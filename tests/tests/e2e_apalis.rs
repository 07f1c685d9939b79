//! End to end through apalis on a real Redis: the `apalis_queue` example's producer and apalis
//! workers (apalis-redis, apalis' retry layer, `traced_spawn::apalis`) run as separate processes,
//! each writing every transaction it sends as a JSON line to a file of its own (`--envelopes
//! FILE`, a custom sentry `Transport`); the tests read those files.
//!
//! ```text
//! bash scripts/redis/setup.sh && export REDIS_URL="$(bash scripts/redis/start.sh)"
//! cargo test --workspace --all-features --test e2e_apalis -- --nocapture
//! bash scripts/redis/stop.sh
//! ```
//!
//! Without `REDIS_URL` the Redis tests are skipped with a notice, unless `CI=true`: then they
//! fail. The example binary is the one `cargo test --workspace` builds next to this test
//! (`target/debug/examples/apalis_queue`); `APALIS_QUEUE_BIN` overrides the path.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any one process of a test may run.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(40);

/// The Redis to use, or `None` (with a printed notice) when the test is to be skipped.
fn redis_url(test: &str) -> Option<String> {
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("REDIS_URL is not set, and CI=true: start Redis with scripts/redis/start.sh")
        }
        _ => {
            eprintln!(
                "SKIPPED {test}: REDIS_URL is not set (bash scripts/redis/setup.sh && export \
                 REDIS_URL=\"$(bash scripts/redis/start.sh)\")"
            );
            None
        }
    }
}

/// The `apalis_queue` example program.
fn example_binary() -> PathBuf {
    traced_spawn_tests::example_binary("apalis_queue", "APALIS_QUEUE_BIN")
}

/// A name no other test or run uses: for queues and envelope files.
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
        let envelopes = std::env::temp_dir().join(format!("{}.jsonl", unique("e2e_apalis")));
        let mut child = Command::new(example_binary())
            .args(args)
            .arg("--envelopes")
            .arg(&envelopes)
            .env("REDIS_URL", url)
            .env_remove("SENTRY_DSN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start apalis_queue");
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
            if let Some(status) = self.child.try_wait().expect("wait for apalis_queue") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "apalis_queue did not finish in {PROCESS_TIMEOUT:?}:\n{}\n{}",
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
            "apalis_queue failed ({status}):\n{out}\n{err}"
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
fn a_request_and_its_task_in_a_worker_process_are_one_trace() {
    let Some(url) = redis_url("a_request_and_its_task_in_a_worker_process_are_one_trace") else {
        return;
    };
    let queue = unique("q-one");
    let mut worker = Proc::start(&url, &["--worker", "--queue", &queue, "--jobs", "1"]);
    let mut producer = Proc::start(&url, &["--produce", "1", "--queue", &queue]);
    producer.succeed();
    worker.succeed();

    let produced = producer.transactions();
    let (request, publish) = requests_and_publishes(&produced)[0];
    assert_eq!(publish["status"], "ok");
    assert_eq!(publish["parent_span_id"], trace(request)["span_id"]);
    assert_eq!(publish["data"]["messaging.system"], "redis");
    assert_eq!(
        publish["data"]["messaging.destination.name"],
        queue.as_str()
    );
    let consumed = worker.transactions();
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
    assert!(process["data"]["messaging.message.receive.latency"].is_u64());
    let work = only(consumer, "llm.generate");
    assert_eq!(work["parent_span_id"], process["span_id"]);
}

#[test]
fn each_attempt_of_apalis_retry_layer_continues_the_same_publish_span() {
    let Some(url) = redis_url("each_attempt_of_apalis_retry_layer_continues_the_same_publish_span")
    else {
        return;
    };
    let queue = unique("q-retry");
    let mut worker = Proc::start(
        &url,
        &["--worker", "--queue", &queue, "--jobs", "1", "--fail-first"],
    );
    let mut producer = Proc::start(&url, &["--produce", "1", "--queue", &queue]);
    producer.succeed();
    worker.succeed();

    let produced = producer.transactions();
    let (_, publish) = requests_and_publishes(&produced)[0];
    let consumed = worker.transactions();
    assert_eq!(consumed.len(), 2, "two attempts: {consumed:#?}");
    let mut by_retry: Vec<(u64, &str)> = consumed
        .iter()
        .map(|consumer| {
            assert_eq!(trace(consumer)["parent_span_id"], publish["span_id"]);
            let process = only(consumer, "queue.process");
            (
                process["data"]["messaging.message.retry.count"]
                    .as_u64()
                    .unwrap(),
                process["status"].as_str().unwrap(),
            )
        })
        .collect();
    by_retry.sort_unstable();
    assert_eq!(by_retry, [(0, "internal_error"), (1, "ok")]);
}

#[test]
fn a_task_whose_worker_is_killed_is_processed_again_in_the_same_trace() {
    let Some(url) = redis_url("a_task_whose_worker_is_killed_is_processed_again_in_the_same_trace")
    else {
        return;
    };
    let queue = unique("q-kill");
    let (took_tx, took) = std::sync::mpsc::channel();
    let mut doomed = Proc::start_with(
        &url,
        &[
            "--worker",
            "--queue",
            &queue,
            "--work-ms",
            "60000",
            "--heartbeat-ms",
            "500",
        ],
        move |line| {
            if line.starts_with("took task ") {
                let _ = took_tx.send(line.to_owned());
            }
        },
    );
    let mut producer = Proc::start(&url, &["--produce", "1", "--queue", &queue]);
    producer.succeed();
    took.recv_timeout(Duration::from_secs(20))
        .expect("the first worker takes the task");
    doomed.child.kill().expect("SIGKILL the worker"); // no cleanup at all
    let (status, _, _) = doomed.wait();
    assert!(!status.success());

    // Another worker re-enqueues the task once the dead one has missed its heartbeats.
    let mut rescuer = Proc::start(
        &url,
        &[
            "--worker",
            "--queue",
            &queue,
            "--work-ms",
            "5",
            "--jobs",
            "1",
            "--heartbeat-ms",
            "500",
        ],
    );
    let out = rescuer.succeed();
    assert_eq!(out.matches("took task ").count(), 1, "{out}");

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
}

#[test]
fn a_push_to_a_redis_that_is_down_fails_clearly_without_a_panic() {
    // Nothing listens on a port just released by the kernel.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut producer = Proc::start(&url, &["--produce", "1", "--queue", "q-down"]);
    let (status, out, err) = producer.wait();
    assert_eq!(
        status.code(),
        Some(1),
        "a clear failure, not a panic (101):\n{out}\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")),
        "the error says what failed and where: {err}"
    );
}

#[test]
fn a_push_that_redis_refuses_marks_the_publish_span_internal_error() {
    let Some(url) = redis_url("a_push_that_redis_refuses_marks_the_publish_span_internal_error")
    else {
        return;
    };
    // The producer connects, then the push fails: the queue's task hash is a key of the wrong
    // type, so Redis refuses the write (as it does when it is out of memory or read-only).
    let queue = unique("q-broken");
    let client = redis::Client::open(url.as_str()).expect("REDIS_URL");
    let mut conn = client.get_connection().expect("connect to Redis");
    let broken = format!("{queue}:data");
    let _: () = redis::cmd("SET")
        .arg(&broken)
        .arg("not a list")
        .query(&mut conn)
        .unwrap();
    let mut producer = Proc::start(&url, &["--produce", "1", "--queue", &queue]);
    let (status, out, err) = producer.wait();
    let _: () = redis::cmd("DEL").arg(&broken).query(&mut conn).unwrap();
    assert_eq!(status.code(), Some(1), "{out}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("could not queue the reply"), "{err}");
    let produced = producer.transactions();
    let (request, publish) = requests_and_publishes(&produced)[0];
    assert_eq!(publish["status"], "internal_error");
    assert_eq!(publish["parent_span_id"], trace(request)["span_id"]);
    assert_eq!(trace(request)["status"], "internal_error");
}

#[test]
fn a_thousand_tasks_through_four_workers_none_lost() {
    let Some(url) = redis_url("a_thousand_tasks_through_four_workers_none_lost") else {
        return;
    };
    const JOBS: usize = 1_000;
    let queue = unique("q-load");
    let mut workers: Vec<Proc> = (0..4)
        .map(|_| {
            Proc::start(
                &url,
                &[
                    "--worker",
                    "--queue",
                    &queue,
                    "--work-ms",
                    "0",
                    "--exit-when-idle",
                    "3000",
                ],
            )
        })
        .collect();
    let started = Instant::now();
    let mut producer = Proc::start(&url, &["--produce", &JOBS.to_string(), "--queue", &queue]);
    producer.succeed();
    for worker in &mut workers {
        worker.succeed();
    }
    eprintln!(
        "{JOBS} tasks through 4 worker processes in {:?} (including 3 s of idle exit)",
        started.elapsed()
    );

    let produced = producer.transactions();
    let publishes: BTreeMap<String, (&Value, &Value)> = requests_and_publishes(&produced)
        .into_iter()
        .map(|(request, publish)| {
            assert_eq!(publish["status"], "ok");
            let id = publish["data"]["messaging.message.id"]
                .as_str()
                .unwrap()
                .to_owned();
            (id, (request, publish))
        })
        .collect();
    assert_eq!(publishes.len(), JOBS, "{JOBS} distinct tasks pushed");

    let mut processed: BTreeMap<String, usize> = BTreeMap::new();
    let mut busy_workers = 0;
    for worker in &workers {
        let consumed = worker.transactions();
        busy_workers += usize::from(!consumed.is_empty());
        for consumer in &consumed {
            let process = only(consumer, "queue.process");
            let id = process["data"]["messaging.message.id"].as_str().unwrap();
            let (request, publish) = publishes
                .get(id)
                .unwrap_or_else(|| panic!("processed a task never pushed: {id}"));
            assert_eq!(trace(consumer)["trace_id"], trace(request)["trace_id"]);
            assert_eq!(trace(consumer)["parent_span_id"], publish["span_id"]);
            assert_eq!(process["status"], "ok");
            *processed.entry(id.to_owned()).or_default() += 1;
        }
    }
    let lost: BTreeSet<_> = publishes
        .keys()
        .filter(|id| !processed.contains_key(*id))
        .collect();
    assert!(lost.is_empty(), "{} tasks lost: {lost:?}", lost.len());
    let twice = processed.values().filter(|n| **n > 1).count();
    eprintln!("{twice} task(s) processed more than once (at least once delivery)");
    assert!(busy_workers >= 2, "the tasks were shared between workers");
}
