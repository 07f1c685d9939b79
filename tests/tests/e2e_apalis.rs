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
use std::time::{Duration, Instant};

use serde_json::Value;
use traced_spawn_tests::e2e::{
    assert_one_job_linked, assert_processed_again, down_url, only, requests_and_publishes, trace,
    unique, Example, Proc,
};

/// The `apalis_queue` example, on Redis.
static APALIS: Example = Example {
    name: "apalis_queue",
    bin_var: "APALIS_QUEUE_BIN",
    url_var: "REDIS_URL",
    server: "Redis",
    scripts: "redis",
};

#[test]
fn a_request_and_its_task_in_a_worker_process_are_one_trace() {
    let Some(url) = APALIS.url("a_request_and_its_task_in_a_worker_process_are_one_trace") else {
        return;
    };
    let queue = unique("q-one");
    let mut worker = APALIS.start(&url, &["--worker", "--queue", &queue, "--jobs", "1"]);
    let mut producer = APALIS.start(&url, &["--produce", "1", "--queue", &queue]);
    producer.succeed();
    worker.succeed();

    let (produced, consumed) = (producer.transactions(), worker.transactions());
    let (_, consumer, process) = assert_one_job_linked(&produced, &consumed, "redis", &queue);
    assert!(process["data"]["messaging.message.receive.latency"].is_u64());
    let work = only(consumer, "llm.generate");
    assert_eq!(work["parent_span_id"], process["span_id"]);
}

#[test]
fn each_attempt_of_apalis_retry_layer_continues_the_same_publish_span() {
    let Some(url) =
        APALIS.url("each_attempt_of_apalis_retry_layer_continues_the_same_publish_span")
    else {
        return;
    };
    let queue = unique("q-retry");
    let mut worker = APALIS.start(
        &url,
        &["--worker", "--queue", &queue, "--jobs", "1", "--fail-first"],
    );
    let mut producer = APALIS.start(&url, &["--produce", "1", "--queue", &queue]);
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
    let Some(url) =
        APALIS.url("a_task_whose_worker_is_killed_is_processed_again_in_the_same_trace")
    else {
        return;
    };
    let queue = unique("q-kill");
    let (mut doomed, took) = APALIS.start_watching(
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
        "took task ",
    );
    let mut producer = APALIS.start(&url, &["--produce", "1", "--queue", &queue]);
    producer.succeed();
    took.recv_timeout(Duration::from_secs(20))
        .expect("the first worker takes the task");
    doomed.child.kill().expect("SIGKILL the worker"); // no cleanup at all
    let (status, _, _) = doomed.wait();
    assert!(!status.success());

    // Another worker re-enqueues the task once the dead one has missed its heartbeats.
    let mut rescuer = APALIS.start(
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

    assert_processed_again(&producer, &doomed, &rescuer);
}

#[test]
fn a_push_to_a_redis_that_is_down_fails_clearly_without_a_panic() {
    // Nothing listens on a port just released by the kernel.
    let (url, port) = down_url("redis");
    let mut producer = APALIS.start(&url, &["--produce", "1", "--queue", "q-down"]);
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
    let Some(url) = APALIS.url("a_push_that_redis_refuses_marks_the_publish_span_internal_error")
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
    let mut producer = APALIS.start(&url, &["--produce", "1", "--queue", &queue]);
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
    let Some(url) = APALIS.url("a_thousand_tasks_through_four_workers_none_lost") else {
        return;
    };
    const JOBS: usize = 1_000;
    let queue = unique("q-load");
    let mut workers: Vec<Proc> = (0..4)
        .map(|_| {
            APALIS.start(
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
    let mut producer = APALIS.start(&url, &["--produce", &JOBS.to_string(), "--queue", &queue]);
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
