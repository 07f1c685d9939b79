//! A job queue: the trace context travels inside the job, through a channel, to a worker pool.
//!
//! ```text
//! cargo run -p traced-spawn-examples --example job_queue
//! ```
//!
//! The queue here is a channel of JSON strings standing in for Redis, SQS or a database table:
//! the job payload carries a `TraceContext` (feature `serde` of `traced-spawn`: it serializes as
//! its propagation headers, `sentry-trace`, `baggage` and `traceparent`, printed as each job is
//! queued). Two worker threads take jobs in whatever order; each job runs as a
//! continuation of the request that queued it, so two requests give two traces, each with its
//! own job under it, whichever worker ran it.
//!
//! Within one process you can also send the `TraceContext` itself through a channel (see the
//! `without_macro` example); it then also carries the caller's hub (its tags, user, ...).

use std::process::ExitCode;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use traced_spawn::{Builder, TraceContext};

/// What the queue holds: the work, and the trace it belongs to.
#[derive(Serialize, Deserialize)]
struct Job {
    question: String,
    /// `{"sentry-trace": "…", "baggage": "sentry-trace_id=…,…", "traceparent": "00-…"}` on the
    /// wire.
    trace: TraceContext,
}

fn answer(question: &str) -> Result<String, String> {
    std::thread::sleep(Duration::from_millis(15));
    Ok(format!("{} words", question.split_whitespace().count()))
}

fn main() -> ExitCode {
    // Prints each trace as a tree; with SENTRY_DSN set, also sends it there.
    let reporter = traced_spawn::console::init();

    let (queue, jobs) = mpsc::channel::<String>();
    let jobs = Arc::new(Mutex::new(jobs));
    let workers: Vec<_> = (1..=2)
        .map(|n| {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("worker-{n}"))
                .spawn(move || loop {
                    let next = jobs.lock().expect("queue lock").recv();
                    let Ok(payload) = next else { return }; // queue closed
                    let job: Job = serde_json::from_str(&payload).expect("a valid job");
                    // The continuation: same trace as the request that queued the job, parent =
                    // the request's span. `fallible`: an `Err` finishes it as `internal_error`.
                    let result = Builder::new("jobs::answer")
                        .op("queue.process")
                        .context(job.trace)
                        .fallible()
                        .run(|| answer(&job.question));
                    println!("worker-{n}: {:?} -> {result:?}", job.question);
                })
                .expect("spawn worker")
        })
        .collect();

    // Two requests, each queueing one job with its own trace context.
    for question in ["why is the build red?", "who broke main?"] {
        traced_spawn_examples::in_request("POST /questions", || {
            let job = Job {
                question: question.to_owned(),
                trace: TraceContext::capture(),
            };
            let payload = serde_json::to_string(&job).expect("serializable job");
            println!("queued: {payload}");
            queue.send(payload).expect("workers are running");
        });
    }

    drop(queue); // closes the queue: the workers exit once it is drained
    for worker in workers {
        worker.join().expect("worker panicked");
    }
    println!();

    let traces = reporter.print_trees();
    traced_spawn_examples::check_linked(&traces, 2, 1)
}
