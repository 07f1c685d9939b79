//! End to end through a real Redis: the `redis_queue` example's producer and workers run as
//! separate processes, each writing every transaction it sends as a JSON line to a file of its
//! own (`--envelopes FILE`, a custom sentry `Transport`); the tests read those files and Redis.
//!
//! ```text
//! bash scripts/redis/setup.sh && export REDIS_URL="$(bash scripts/redis/start.sh)"
//! cargo test --workspace --all-features --test queue_redis -- --nocapture
//! bash scripts/redis/stop.sh
//! ```
//!
//! Without `REDIS_URL` the Redis tests are skipped with a notice, unless `CI=true`: then they
//! fail. The example binary is the one `cargo test --workspace` builds next to this test
//! (`target/debug/examples/redis_queue`); `REDIS_QUEUE_BIN` overrides the path.

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

/// The `redis_queue` example program.
fn example_binary() -> PathBuf {
    traced_spawn_tests::example_binary("redis_queue", "REDIS_QUEUE_BIN")
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
        let envelopes = std::env::temp_dir().join(format!("{}.jsonl", unique("queue_redis")));
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
            .expect("start redis_queue");
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
            if let Some(status) = self.child.try_wait().expect("wait for redis_queue") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "redis_queue did not finish in {PROCESS_TIMEOUT:?}:\n{}\n{}",
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
            "redis_queue failed ({status}):\n{out}\n{err}"
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

/// The keys of `queue` left in Redis (the queue, processing lists, leases, worker sets).
fn keys_left(url: &str, queue: &str) -> Vec<String> {
    let client = redis::Client::open(url).expect("REDIS_URL");
    let mut conn = client.get_connection().expect("connect to Redis");
    redis::cmd("KEYS")
        .arg(format!("{queue}*"))
        .query(&mut conn)
        .expect("KEYS")
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
fn a_request_and_its_job_in_a_worker_process_are_one_trace() {
    let Some(url) = redis_url("a_request_and_its_job_in_a_worker_process_are_one_trace") else {
        return;
    };
    let queue = unique("q-one");
    let mut producer = Proc::start(&url, &["--produce", "1", "--queue", &queue]);
    producer.succeed();
    // The job waits in Redis: its receive latency must show at least this.
    let delay = Duration::from_millis(300);
    std::thread::sleep(delay);
    let mut worker = Proc::start(
        &url,
        &[
            "--worker",
            "--queue",
            &queue,
            "--work-ms",
            "5",
            "--exit-when-idle",
            "600",
        ],
    );
    worker.succeed();

    let produced = producer.transactions();
    let pairs = requests_and_publishes(&produced);
    assert_eq!(pairs.len(), 1);
    let (request, publish) = pairs[0];
    let trace_id = &trace(request)["trace_id"];
    assert_eq!(publish["parent_span_id"], trace(request)["span_id"]);
    assert_eq!(publish["status"], "ok");
    assert_eq!(publish["description"], queue.as_str());
    assert_eq!(publish["data"]["messaging.system"], "redis");
    assert_eq!(
        publish["data"]["messaging.destination.name"],
        queue.as_str()
    );
    assert!(
        publish["data"]["messaging.message.body.size"]
            .as_u64()
            .unwrap()
            > 0
    );
    let message_id = publish["data"]["messaging.message.id"].as_str().unwrap();

    let consumed = worker.transactions();
    assert_eq!(consumed.len(), 1, "{consumed:#?}");
    let consumer = &consumed[0];
    assert_eq!(consumer["transaction"], "redis_queue::send_reply");
    assert_eq!(trace(consumer)["op"], "function");
    assert_eq!(&trace(consumer)["trace_id"], trace_id, "one trace");
    assert_eq!(
        trace(consumer)["parent_span_id"],
        publish["span_id"],
        "the consumer hangs under the publish span"
    );
    assert_eq!(trace(consumer)["status"], "ok");
    let process = only(consumer, "queue.process");
    assert_eq!(process["parent_span_id"], trace(consumer)["span_id"]);
    assert_eq!(process["status"], "ok");
    assert_eq!(process["data"]["messaging.system"], "redis");
    assert_eq!(
        process["data"]["messaging.destination.name"],
        queue.as_str()
    );
    assert_eq!(process["data"]["messaging.message.id"], message_id);
    assert_eq!(process["data"]["messaging.message.retry.count"], 0);
    assert!(
        process["data"]["messaging.message.body.size"]
            .as_u64()
            .unwrap()
            > 0
    );
    let latency = process["data"]["messaging.message.receive.latency"]
        .as_u64()
        .unwrap();
    assert!(
        latency >= delay.as_millis() as u64,
        "receive latency {latency} ms, but the job waited {delay:?} in Redis"
    );
    eprintln!("receive latency after a {delay:?} wait: {latency} ms");
    let work = only(consumer, "llm.generate");
    assert_eq!(
        work["parent_span_id"], process["span_id"],
        "the work hangs under queue.process"
    );
    assert!(keys_left(&url, &queue).is_empty(), "the job was acked");
}

/// A worker whose job takes a minute, with a short lease (its death is noticed within a second),
/// and a producer that published one job to it: returns both and the worker's "took job" line,
/// once the worker is in the middle of the job.
fn stuck_on_one_job(url: &str, queue: &str) -> (Proc, Proc, String) {
    let (took_tx, took) = std::sync::mpsc::channel();
    let worker = Proc::start_with(
        url,
        &[
            "--worker",
            "--queue",
            queue,
            "--work-ms",
            "60000",
            "--lease-ms",
            "1000",
        ],
        move |line| {
            if line.contains(" took job ") {
                let _ = took_tx.send(line.to_owned());
            }
        },
    );
    let mut producer = Proc::start(url, &["--produce", "1", "--queue", queue]);
    producer.succeed();
    let line = took
        .recv_timeout(Duration::from_secs(20))
        .expect("the first worker takes the job");
    (worker, producer, line)
}

/// The worker that takes over the jobs of a dead one, and stops once the queue stays empty.
fn start_rescuer(url: &str, queue: &str) -> Proc {
    Proc::start(
        url,
        &[
            "--worker",
            "--queue",
            queue,
            "--work-ms",
            "5",
            "--exit-when-idle",
            "3000",
        ],
    )
}

#[test]
fn a_job_whose_worker_is_killed_is_processed_once_more_by_another_worker() {
    let Some(url) =
        redis_url("a_job_whose_worker_is_killed_is_processed_once_more_by_another_worker")
    else {
        return;
    };
    let queue = unique("q-kill");
    let (mut doomed, producer, line) = stuck_on_one_job(&url, &queue);
    assert!(line.ends_with(" retry 0"), "{line}");
    doomed.child.kill().expect("SIGKILL the worker"); // SIGKILL on Unix: no cleanup at all
    let (status, _, _) = doomed.wait();
    assert!(!status.success());

    let mut rescuer = start_rescuer(&url, &queue);
    let out = rescuer.succeed();
    assert!(out.contains("requeued 1 job(s) of dead worker(s)"), "{out}");
    assert_eq!(out.matches(" took job ").count(), 1, "{out}");

    let produced = producer.transactions();
    let (request, publish) = requests_and_publishes(&produced)[0];
    assert!(
        doomed.transactions().is_empty(),
        "the killed worker sent nothing"
    );
    let consumed = rescuer.transactions();
    assert_eq!(
        consumed.len(),
        1,
        "processed once more, once: {consumed:#?}"
    );
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
    assert!(
        keys_left(&url, &queue).is_empty(),
        "{:?}",
        keys_left(&url, &queue)
    );
}

/// Sends `signal` (`STOP`, `CONT`) to the process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

#[test]
fn a_hung_worker_is_cut_off_and_its_job_processed_by_another_worker() {
    let Some(url) = redis_url("a_hung_worker_is_cut_off_and_its_job_processed_by_another_worker")
    else {
        return;
    };
    let queue = unique("q-hung");
    let (mut hung, producer, _) = stuck_on_one_job(&url, &queue);
    // Frozen mid-job: its lease expires, but its connections stay open.
    signal(hung.child.id(), "STOP");
    let mut rescuer = start_rescuer(&url, &queue);
    let out = rescuer.succeed();
    assert!(out.contains("requeued 1 job(s) of dead worker(s)"), "{out}");
    // Woken up, it finds its connections closed and exits before finishing the job.
    signal(hung.child.id(), "CONT");
    let (status, out, err) = hung.wait();
    assert_eq!(status.code(), Some(3), "{out}\n{err}");
    assert!(
        err.contains("cannot renew the lease"),
        "cut off, not merely reaped: {err}"
    );
    assert!(
        hung.transactions().is_empty(),
        "the hung worker never finished its job"
    );

    let produced = producer.transactions();
    let (request, publish) = requests_and_publishes(&produced)[0];
    let consumed = rescuer.transactions();
    assert_eq!(consumed.len(), 1, "{consumed:#?}");
    assert_eq!(trace(&consumed[0])["trace_id"], trace(request)["trace_id"]);
    assert_eq!(trace(&consumed[0])["parent_span_id"], publish["span_id"]);
    let process = only(&consumed[0], "queue.process");
    assert_eq!(process["data"]["messaging.message.retry.count"], 1);
    assert!(
        keys_left(&url, &queue).is_empty(),
        "{:?}",
        keys_left(&url, &queue)
    );
}

#[test]
fn a_publish_to_a_redis_that_is_down_fails_clearly_without_a_panic() {
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
        err.contains("could not queue the reply") && err.contains(&format!("127.0.0.1:{port}")),
        "the error says what failed and where: {err}"
    );
    let produced = producer.transactions();
    let (request, publish) = requests_and_publishes(&produced)[0];
    assert_eq!(publish["status"], "internal_error");
    assert_eq!(publish["parent_span_id"], trace(request)["span_id"]);
    assert_eq!(trace(request)["status"], "internal_error");
}

#[test]
fn a_thousand_jobs_through_four_workers_none_lost_none_twice() {
    let Some(url) = redis_url("a_thousand_jobs_through_four_workers_none_lost_none_twice") else {
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
                    "2000",
                ],
            )
        })
        .collect();
    let started = Instant::now();
    let mut producer = Proc::start(&url, &["--produce", &JOBS.to_string(), "--queue", &queue]);
    producer.succeed();
    let outputs: Vec<String> = workers.iter_mut().map(Proc::succeed).collect();
    eprintln!(
        "{JOBS} jobs through 4 worker processes in {:?} (including 2 s of idle exit)",
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
    assert_eq!(publishes.len(), JOBS, "{JOBS} distinct messages published");

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
                .unwrap_or_else(|| panic!("processed a message never published: {id}"));
            assert_eq!(trace(consumer)["trace_id"], trace(request)["trace_id"]);
            assert_eq!(trace(consumer)["parent_span_id"], publish["span_id"]);
            assert_eq!(process["data"]["messaging.message.retry.count"], 0);
            *processed.entry(id.to_owned()).or_default() += 1;
        }
    }
    let twice: Vec<_> = processed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "processed more than once: {twice:?}");
    let lost: BTreeSet<_> = publishes
        .keys()
        .filter(|id| !processed.contains_key(*id))
        .collect();
    assert!(lost.is_empty(), "{} jobs lost: {lost:?}", lost.len());
    let acked: usize = outputs
        .iter()
        .map(|out| out.matches(" acked job ").count())
        .sum();
    assert_eq!(acked, JOBS, "every job acked once");
    assert!(busy_workers >= 2, "the jobs were shared between workers");
    assert!(
        keys_left(&url, &queue).is_empty(),
        "{:?}",
        keys_left(&url, &queue)
    );
}
