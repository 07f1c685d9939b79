//! A Slack bot whose replies are apalis tasks on Redis, run by a separate worker process, in one
//! trace.
//!
//! ```text
//! bash scripts/redis/setup.sh && export REDIS_URL="$(bash scripts/redis/start.sh)"
//!
//! # starts a worker process, handles one command, prints the one trace (non-zero if not linked)
//! cargo run -p traced-spawn-examples --example apalis_queue -- --demo
//!
//! # or by hand, in two terminals
//! cargo run -p traced-spawn-examples --example apalis_queue -- --worker
//! cargo run -p traced-spawn-examples --example apalis_queue -- --produce 3
//! ```
//!
//! The handler of a slash command answers at once and pushes the reply task with
//! [`traced_spawn::apalis::Queue::push`]: a `queue.publish` span, and the trace in the task's
//! metadata. The worker is an apalis worker over apalis-redis with apalis' retry layer and
//! [`traced_spawn::apalis::Queue::layer`] under it: every attempt is a continuation of the publish
//! span with a `queue.process` span (retry count, receive latency, status):
//!
//! ```text
//! tx   http.server  POST /slack/commands          producer process
//! └─ span queue.publish  slack.replies
//!    └─ tx   function  slack.replies              worker process
//!       └─ span queue.process  slack.replies
//!          ├─ span llm.generate  generate answer
//!          └─ span http.client  POST /api/chat.update
//! ```
//!
//! Delivery is apalis-redis': at least once. A task whose worker dies is re-enqueued once the
//! worker has missed its heartbeats, and processed again by another worker, in the same trace,
//! with retry count 1; make the work idempotent where that matters.
//!
//! Flags (the end-to-end test `tests/tests/e2e_apalis.rs` drives these): `--demo` (the default),
//! `--worker`, `--produce N`; `--queue NAME` (default `slack.replies`); `--envelopes FILE` (write
//! every transaction as a JSON line to FILE instead of printing trees); worker only:
//! `--work-ms MS` (time the simulated answer takes, default 20), `--jobs N` (stop after N tasks
//! are done), `--exit-when-idle MS` (stop after MS without a task; default: run until killed),
//! `--fail-first` (the first attempt of each task fails,
//! so apalis' retry layer runs it again), `--heartbeat-ms MS` (apalis-redis' heartbeat; a worker
//! that misses 2 is dead and its tasks re-enqueued; default 1000).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{
    BoxDynError, RetryPolicy, TaskId, WorkerBuilder, WorkerBuilderExt, WorkerContext,
};
use apalis_redis::{Config, ConnectionManager, RedisStorage};
use sentry::protocol::SpanStatus;
use traced_spawn_examples::queue::{self, demo_id, report_to, send_reply, unix_ms, Reply};

const PROGRAM: &str = "apalis_queue";

#[derive(Debug, Clone)]
struct Options {
    queue: String,
    envelopes: Option<PathBuf>,
    work_ms: u64,
    jobs: Option<usize>,
    exit_when_idle: Option<u64>,
    fail_first: bool,
    heartbeat_ms: u64,
}

#[derive(Debug, PartialEq)]
enum Mode {
    Demo,
    Worker,
    Produce(usize),
}

fn main() -> ExitCode {
    let (mode, options) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{PROGRAM}: {message}");
            return ExitCode::from(2);
        }
    };
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());

    let (guard, reporter) = match report_to(PROGRAM, options.envelopes.as_deref()) {
        Ok(report) => report,
        Err(code) => return code,
    };
    if let (Some(reporter), Mode::Worker) = (&reporter, &mode) {
        reporter.print_live(Duration::from_millis(500));
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = rt.block_on(async {
        match mode {
            Mode::Demo => demo(&url, &options, reporter.as_ref()).await,
            Mode::Worker => match worker(&url, &options).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("{PROGRAM}: worker: {err}");
                    ExitCode::FAILURE
                }
            },
            Mode::Produce(n) => produce(&url, &options, n).await,
        }
    });
    drop(rt);
    if let (Some(reporter), Mode::Produce(_)) = (&reporter, &mode) {
        reporter.print_trees();
    }
    drop(guard);
    code
}

fn parse_args() -> Result<(Mode, Options), String> {
    let mut mode = Mode::Demo;
    let mut options = Options {
        queue: "slack.replies".to_owned(),
        envelopes: None,
        work_ms: 20,
        jobs: None,
        exit_when_idle: None,
        fail_first: false,
        heartbeat_ms: 1000,
    };
    let mut args = std::env::args().skip(1);
    let number = |flag: &str, value: Option<String>| -> Result<u64, String> {
        value
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--demo" => mode = Mode::Demo,
            "--worker" => mode = Mode::Worker,
            "--produce" => mode = Mode::Produce(number("--produce", args.next())? as usize),
            "--queue" => options.queue = args.next().ok_or("--queue needs a name")?,
            "--envelopes" => {
                options.envelopes = Some(args.next().ok_or("--envelopes needs a file")?.into());
            }
            "--work-ms" => options.work_ms = number("--work-ms", args.next())?,
            "--jobs" => options.jobs = Some(number("--jobs", args.next())? as usize),
            "--exit-when-idle" => {
                options.exit_when_idle = Some(number("--exit-when-idle", args.next())?);
            }
            "--fail-first" => options.fail_first = true,
            "--heartbeat-ms" => options.heartbeat_ms = number("--heartbeat-ms", args.next())?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((mode, options))
}

fn queue(options: &Options) -> traced_spawn::apalis::Queue {
    traced_spawn::apalis::Queue::new("redis", &options.queue)
}

async fn connect(url: &str) -> Result<ConnectionManager, String> {
    tokio::time::timeout(Duration::from_secs(5), apalis_redis::connect(url))
        .await
        .map_err(|_| format!("REDIS_URL {url:?}: no answer within 5 s"))?
        .map_err(|err| format!("REDIS_URL {url:?}: {err}"))
}

async fn storage(url: &str, options: &Options) -> Result<RedisStorage<Reply>, String> {
    let conn = connect(url).await?;
    let config = Config::default()
        .queue(&options.queue)
        .heartbeat_interval(Duration::from_millis(options.heartbeat_ms))
        .missed_heartbeats(2);
    Ok(RedisStorage::new(conn).with_config(config))
}

/// The slash-command handler: pushes the reply task, answers at once.
async fn handle(
    storage: &mut RedisStorage<Reply>,
    options: &Options,
    channel: &str,
    question: &str,
) -> Result<String, String> {
    let request = sentry::start_transaction(sentry::TransactionContext::new(
        "POST /slack/commands",
        "http.server",
    ));
    sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
    let reply = Reply {
        channel: channel.to_owned(),
        question: question.to_owned(),
    };
    let pushed = queue(options).push(storage, reply).await;
    request.set_status(if pushed.is_ok() {
        SpanStatus::Ok
    } else {
        SpanStatus::InternalError
    });
    sentry::configure_scope(|scope| scope.set_span(None));
    request.finish();
    match pushed {
        Ok(pushed) => Ok(format!("\"on it\" (task {})", pushed.id)),
        Err(err) => Err(format!("could not queue the reply: {err}")),
    }
}

async fn produce(url: &str, options: &Options, n: usize) -> ExitCode {
    let mut storage = match storage(url, options).await {
        Ok(storage) => storage,
        Err(err) => {
            eprintln!("{PROGRAM}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for i in 0..n {
        match handle(&mut storage, options, "C042", &format!("question {i}")).await {
            Ok(answer) => println!("handler answered {answer}"),
            Err(err) => {
                eprintln!("{PROGRAM}: {err}");
                failed = true;
                break;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// What each task of this worker shares: the options, the count of finished tasks, the tasks
/// in progress and when the last one ended (for `--exit-when-idle`).
#[derive(Clone)]
struct Shared {
    work_ms: u64,
    jobs: Option<usize>,
    fail_first: bool,
    done: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
    last_ms: Arc<AtomicU64>,
}

async fn worker(url: &str, options: &Options) -> Result<(), String> {
    let storage = storage(url, options).await?;
    let shared = Shared {
        work_ms: options.work_ms,
        jobs: options.jobs,
        fail_first: options.fail_first,
        done: Arc::new(AtomicUsize::new(0)),
        running: Arc::new(AtomicUsize::new(0)),
        last_ms: Arc::new(AtomicU64::new(unix_ms())),
    };
    let idle = shared.clone();
    // Deliveries counted in Redis, beside apalis' own keys: apalis-redis counts an attempt only
    // when its worker reports a result, so a task whose worker died would come back as retry 0.
    let conn = connect(url).await?;
    let deliveries = format!("{}:sentry-deliveries", options.queue);
    let layer = queue(options).layer().count_deliveries(move |id| {
        let mut conn = conn.clone();
        let deliveries = deliveries.clone();
        async move {
            redis::cmd("HINCRBY")
                .arg(&deliveries)
                .arg(id)
                .arg(1)
                .query_async::<u64>(&mut conn)
                .await
                .ok()
        }
    });
    let worker = WorkerBuilder::new(format!("apalis_queue-{}", std::process::id()))
        .backend(storage)
        .data(shared)
        .retry(RetryPolicy::retries(1))
        // Under the retry layer: every attempt is a continuation of the publish span.
        .layer(layer)
        .build(run_task);
    let ran = match options.exit_when_idle {
        None => worker.run().await,
        Some(idle_ms) => {
            worker
                .run_until(async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let quiet = unix_ms().saturating_sub(idle.last_ms.load(Ordering::SeqCst));
                        if idle.running.load(Ordering::SeqCst) == 0 && quiet >= idle_ms {
                            return Ok::<(), std::io::Error>(());
                        }
                    }
                })
                .await
        }
    };
    ran.map_err(|err| err.to_string())
}

/// One task: the reply, and the worker's bookkeeping.
async fn run_task(
    reply: Reply,
    id: TaskId,
    attempt: apalis::prelude::Attempt,
    shared: apalis::prelude::Data<Shared>,
    worker: WorkerContext,
) -> Result<(), BoxDynError> {
    shared.running.fetch_add(1, Ordering::SeqCst);
    println!("took task {id} attempt {}", attempt.current());
    let result = if shared.fail_first && attempt.current() <= 1 {
        Err(format!("task {id}: the first attempt fails (--fail-first)"))
    } else {
        send_reply(reply, shared.work_ms).await
    };
    shared.last_ms.store(unix_ms(), Ordering::SeqCst);
    shared.running.fetch_sub(1, Ordering::SeqCst);
    result?;
    let done = shared.done.fetch_add(1, Ordering::SeqCst) + 1;
    println!("done: task {id} ({done})");
    if shared.jobs.is_some_and(|jobs| done >= jobs) {
        let _ = worker.stop();
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Demo: the handler here, the worker in a child process, one trace printed.

async fn demo(
    url: &str,
    options: &Options,
    reporter: Option<&traced_spawn::console::Reporter>,
) -> ExitCode {
    let Some(reporter) = reporter else {
        eprintln!("{PROGRAM}: --demo prints the trace: it cannot write --envelopes");
        return ExitCode::from(2);
    };
    let id = demo_id();
    let demo_options = Options {
        queue: format!("{}:demo-{id}", options.queue),
        ..options.clone()
    };
    let mut storage = match storage(url, &demo_options).await {
        Ok(storage) => storage,
        Err(err) => {
            eprintln!("{PROGRAM}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let worker = ["--worker", "--queue", &demo_options.queue, "--jobs", "1"];
    let handler = handle(&mut storage, &demo_options, "C042", "why is the build red?");
    queue::demo(PROGRAM, &id, &worker, reporter, handler).await
}
