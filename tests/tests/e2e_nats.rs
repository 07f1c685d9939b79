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

use std::time::{Duration, Instant};

use traced_spawn_tests::e2e::{
    assert_one_job_linked, assert_processed_again, down_url, only, unique, Example,
};

/// The `nats_queue` example, on NATS JetStream.
static NATS: Example = Example {
    name: "nats_queue",
    bin_var: "NATS_QUEUE_BIN",
    url_var: "NATS_URL",
    server: "NATS",
    scripts: "nats",
};

#[test]
fn a_request_and_its_message_in_a_worker_process_are_one_trace() {
    let Some(url) = NATS.url("a_request_and_its_message_in_a_worker_process_are_one_trace") else {
        return;
    };
    let subject = format!("e2e.{}", unique("one"));
    let mut producer = NATS.start(&url, &["--produce", "1", "--subject", &subject]);
    producer.succeed();
    let mut worker = NATS.start(&url, &["--worker", "--subject", &subject, "--jobs", "1"]);
    worker.succeed();

    let (produced, consumed) = (producer.transactions(), worker.transactions());
    let (publish, consumer, process) =
        assert_one_job_linked(&produced, &consumed, "nats", &subject);
    let body_size = &publish["data"]["messaging.message.body.size"];
    assert!(
        body_size.as_u64().is_some_and(|size| size > 0),
        "{publish:#}"
    );
    assert_eq!(process["data"]["messaging.system"], "nats");
    assert_eq!(
        process["data"]["messaging.destination.name"],
        subject.as_str()
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
    let Some(url) = NATS.url(
        "a_message_whose_worker_is_killed_before_its_ack_is_delivered_again_in_the_same_trace",
    ) else {
        return;
    };
    let subject = format!("e2e.{}", unique("kill"));
    let durable = unique("worker");
    // The durable consumer is created by this worker: the server redelivers what it does not
    // acknowledge within 1 s.
    let (mut doomed, took) = NATS.start_watching(
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
        "took message ",
    );
    let mut producer = NATS.start(&url, &["--produce", "1", "--subject", &subject]);
    producer.succeed();
    let line = took
        .recv_timeout(Duration::from_secs(20))
        .expect("the first worker takes the message");
    assert!(line.ends_with(" delivery 1"), "{line}");
    doomed.child.kill().expect("SIGKILL the worker"); // no ack, no cleanup at all
    let (status, _, _) = doomed.wait();
    assert!(!status.success());

    // Another worker on the same durable consumer gets it once the ack wait has passed.
    let mut rescuer = NATS.start(
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

    let process = assert_processed_again(&producer, &doomed, &rescuer);
    // Measured from the publish, so it includes the first attempt and the ack wait.
    let latency = process["data"]["messaging.message.receive.latency"]
        .as_u64()
        .unwrap();
    assert!(latency >= 1_000, "{latency} ms");
}

#[test]
fn a_nats_that_is_down_fails_clearly_without_a_panic() {
    // Nothing listens on a port just released by the kernel.
    let (url, port) = down_url("nats");
    for args in [
        &["--produce", "1", "--subject", "e2e.down"][..],
        &["--worker", "--subject", "e2e.down", "--jobs", "1"][..],
    ] {
        let started = Instant::now();
        let mut proc = NATS.start(&url, args);
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
