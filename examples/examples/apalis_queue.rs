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

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apalis::prelude::{
    BoxDynError, RetryPolicy, TaskId, WorkerBuilder, WorkerBuilderExt, WorkerContext,
};
use apalis_redis::{Config, ConnectionManager, RedisStorage};
use sentry::protocol::{EnvelopeItem, SpanStatus};
use sentry::{ClientOptions, Envelope, Transport};
use serde::{Deserialize, Serialize};
use traced_spawn::console::{ConsoleTransport, Trace};
use traced_spawn::queue::{OP_PROCESS, OP_PUBLISH};

/// The task: post an answer to a question in a channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reply {
    channel: String,
    question: String,
}

#[derive(Debug)]
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
            eprintln!("apalis_queue: {message}");
            return ExitCode::from(2);
        }
    };
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());

    let mut guard = None;
    let mut reporter = None;
    match &options.envelopes {
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => guard = Some(init_with_transport(Arc::new(JsonLines(Mutex::new(file))))),
            Err(err) => {
                eprintln!("apalis_queue: --envelopes {}: {err}", path.display());
                return ExitCode::from(2);
            }
        },
        None => reporter = Some(traced_spawn::console::init()),
    }
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
                    eprintln!("apalis_queue: worker: {err}");
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
            eprintln!("apalis_queue: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for i in 0..n {
        match handle(&mut storage, options, "C042", &format!("question {i}")).await {
            Ok(answer) => println!("handler answered {answer}"),
            Err(err) => {
                eprintln!("apalis_queue: {err}");
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

/// The work: generate the answer, post it. Its spans nest under `queue.process`.
async fn send_reply(reply: Reply, work_ms: u64) -> Result<(), String> {
    let parent = sentry::configure_scope(|scope| scope.get_span());
    let child = |op: &str, description: &str| {
        parent
            .as_ref()
            .map(|parent| parent.start_child(op, description))
    };
    let generate = child("llm.generate", "generate answer");
    tokio::time::sleep(Duration::from_millis(work_ms)).await;
    let answer = format!("the answer to {:?} is 42", reply.question);
    if let Some(span) = generate {
        span.set_status(SpanStatus::Ok);
        span.finish();
    }
    let post = child("http.client", "POST /api/chat.update");
    if let Some(span) = post {
        span.set_status(SpanStatus::Ok);
        span.finish();
    }
    if work_ms > 0 {
        println!("posted: #{}: {answer}", reply.channel);
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
        eprintln!("apalis_queue: --demo prints the trace: it cannot write --envelopes");
        return ExitCode::from(2);
    };
    let id = format!("{:x}", unix_ms() ^ u64::from(std::process::id()));
    let queue_name = format!("{}:demo-{id}", options.queue);
    let envelopes = std::env::temp_dir().join(format!("apalis_queue-worker-{id}.jsonl"));
    let mut storage = match storage(
        url,
        &Options {
            queue: queue_name.clone(),
            ..clone_options(options)
        },
    )
    .await
    {
        Ok(storage) => storage,
        Err(err) => {
            eprintln!("apalis_queue: {err}");
            return ExitCode::FAILURE;
        }
    };
    let exe = std::env::current_exe().expect("path of this program");
    let mut worker = match Command::new(exe)
        .args(["--worker", "--queue", &queue_name, "--jobs", "1"])
        .arg("--envelopes")
        .arg(&envelopes)
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            eprintln!("apalis_queue: could not start the worker process: {err}");
            return ExitCode::FAILURE;
        }
    };

    let started = Instant::now();
    let demo_options = Options {
        queue: queue_name,
        ..clone_options(options)
    };
    match handle(&mut storage, &demo_options, "C042", "why is the build red?").await {
        Ok(answer) => println!(
            "handler answered {answer} after {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        ),
        Err(err) => {
            eprintln!("apalis_queue: {err}");
            let _ = worker.kill();
            let _ = worker.wait();
            return ExitCode::FAILURE;
        }
    }

    // The worker stops after its one task.
    let status = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || {
            let status = worker.wait();
            (worker, status)
        }),
    )
    .await;
    let ok = matches!(&status, Ok(Ok((_, Ok(status)))) if status.success());
    if !ok {
        eprintln!("apalis_queue: the worker process failed or did not stop: {status:?}");
        return ExitCode::FAILURE;
    }
    let received = read_json_lines(&envelopes, reporter.transport());
    let _ = std::fs::remove_file(&envelopes);
    if let Err(err) = received {
        eprintln!("apalis_queue: reading the worker's transactions: {err}");
        return ExitCode::FAILURE;
    }
    let traces = reporter.print_trees();
    check_shape(&traces)
}

fn clone_options(options: &Options) -> Options {
    Options {
        queue: options.queue.clone(),
        envelopes: options.envelopes.clone(),
        work_ms: options.work_ms,
        jobs: options.jobs,
        exit_when_idle: options.exit_when_idle,
        fail_first: options.fail_first,
        heartbeat_ms: options.heartbeat_ms,
    }
}

/// One trace: request -> queue.publish -> the worker's continuation -> queue.process -> the work.
fn check_shape(traces: &[Trace]) -> ExitCode {
    let code = traced_spawn_examples::check_linked(traces, 1, 1);
    let linked = traces.first().is_some_and(|trace| {
        let request = &trace.roots[0];
        let publish = request.children.iter().find(|node| node.op == OP_PUBLISH);
        let consumer =
            publish.and_then(|publish| publish.children.iter().find(|node| node.is_continuation()));
        let process = consumer
            .and_then(|consumer| consumer.children.iter().find(|node| node.op == OP_PROCESS));
        process.is_some_and(|process| {
            process
                .children
                .iter()
                .any(|node| node.op == "llm.generate")
        })
    });
    if !linked {
        eprintln!(
            "error: expected request -> queue.publish -> continuation -> queue.process -> work"
        );
        return ExitCode::FAILURE;
    }
    code
}

/// Binds a client that samples every transaction and hands every envelope to `transport`.
fn init_with_transport(transport: Arc<dyn Transport>) -> sentry::ClientInitGuard {
    let mut options = ClientOptions::new().traces_sample_rate(1.0);
    options.dsn = Some(
        traced_spawn::console::PLACEHOLDER_DSN
            .parse()
            .expect("a valid DSN"),
    );
    options.transport = Some(Arc::new(move |_: &ClientOptions| transport.clone()));
    sentry::init(options)
}

/// Writes each transaction (and event) as a JSON line, for another process to read.
struct JsonLines(Mutex<std::fs::File>);

impl Transport for JsonLines {
    fn send_envelope(&self, envelope: Envelope) {
        let mut file = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for item in envelope.items() {
            let line = match item {
                EnvelopeItem::Transaction(tx) => serde_json::json!({ "transaction": tx }),
                EnvelopeItem::Event(event) => serde_json::json!({ "event": event }),
                _ => continue,
            };
            if let Err(err) = writeln!(file, "{line}").and_then(|()| file.flush()) {
                eprintln!("apalis_queue: could not write a transaction: {err}");
            }
        }
    }
}

/// Feeds the transactions another process wrote with [`JsonLines`] to the console.
fn read_json_lines(path: &PathBuf, console: &ConsoleTransport) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    for line in text.lines() {
        let mut value: serde_json::Value =
            serde_json::from_str(line).map_err(|err| err.to_string())?;
        if let Some(tx) = value.get_mut("transaction").map(serde_json::Value::take) {
            let tx: sentry::protocol::Transaction<'static> =
                serde_json::from_value(tx).map_err(|err| err.to_string())?;
            let mut envelope = Envelope::new();
            envelope.add_item(tx);
            console.send_envelope(envelope);
        }
    }
    Ok(())
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
