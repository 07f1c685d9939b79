//! A Slack bot whose replies go through Redis to a separate worker process, in one trace.
//!
//! ```text
//! bash scripts/redis/setup.sh && export REDIS_URL="$(bash scripts/redis/start.sh)"
//!
//! # starts a worker process, sends one command, prints the one trace (non-zero if not linked)
//! cargo run -p traced-spawn-examples --example redis_queue -- --demo
//!
//! # or by hand, in two terminals
//! cargo run -p traced-spawn-examples --example redis_queue -- --worker
//! cargo run -p traced-spawn-examples --example redis_queue -- --produce 3
//! ```
//!
//! The handler of a slash command answers at once and publishes the reply job to a Redis list
//! inside a `queue.publish` span ([`traced_spawn::queue::Publish`]); the job carries the trace
//! (propagation headers and publish time). A worker process takes it and continues the trace
//! ([`traced_spawn::queue::Process`]): a `function` transaction whose parent is the publish span,
//! with a `queue.process` span (retry count, receive latency) around the work:
//!
//! ```text
//! tx   http.server  POST /slack/commands          producer process
//! └─ span queue.publish  slack.replies
//!    └─ tx   function  redis_queue::send_reply    worker process
//!       └─ span queue.process  slack.replies
//!          ├─ span llm.generate  generate answer
//!          └─ span http.client  POST /api/chat.update
//! ```
//!
//! # The reliable queue
//!
//! Jobs are list items `RETRY|JSON` in `QUEUE` (pushed on the left, taken from the right).
//! - Each worker has an id, a lease key `QUEUE:lease:ID` that expires after [`LEASE`] unless its
//!   heartbeat renews it, a membership in the set `QUEUE:workers`, and its own processing list
//!   `QUEUE:processing:ID`.
//! - A worker takes a job with `BLMOVE QUEUE QUEUE:processing:ID RIGHT LEFT`: atomically, so a job
//!   is always in exactly one list. It acks with `LREM QUEUE:processing:ID 1 ITEM` once done.
//! - Every worker runs a reaper every [`REAP_EVERY`]: for the members of `QUEUE:workers` whose
//!   lease is gone (the process died, or hung longer than the lease) it first closes their Redis
//!   connections (each worker names its connections `rq-ID`), so a hung worker that wakes up cannot
//!   take another job into a list nobody watches any more; then one Lua script ([`REAP`], atomic)
//!   moves every item of their processing lists back to the consuming end of `QUEUE` with
//!   `RETRY + 1` and drops them from the set.
//! - A worker's heartbeat renews its lease only while it is still a member ([`HEARTBEAT`]); a
//!   worker that finds itself reaped, or cannot reach Redis any more, exits at once: its job is
//!   someone else's now.
//!
//! So a job is never lost (it is in `QUEUE` or in exactly one processing list until acked, and a
//! list is only given up once its worker can no longer add to it) and, once acked, never delivered
//! again (the ack removes the only copy). A job whose worker dies is processed again, once, by
//! another worker, in the same trace, with retry count 1. Delivery is at least once: a worker
//! that hangs longer than its lease while in the middle of a job may finish that job after it
//! was requeued, unless its heartbeat stops it first; make the work idempotent where that
//! matters. The scripts build key names from the queue name, so they need one Redis, not a
//! Redis Cluster.
//!
//! Flags (the end-to-end test `tests/tests/queue_redis.rs` drives these):
//! `--demo` (the default), `--worker`, `--produce N`; `--queue NAME` (default `slack.replies`);
//! `--envelopes FILE` (write every transaction as a JSON line to FILE instead of printing trees);
//! worker only: `--work-ms MS` (time the simulated answer takes, default 20),
//! `--exit-when-idle MS` (exit after MS without a job; default: run until killed),
//! `--lease-ms MS` (default 3000);
//! `--bench ROUNDS` (jobs/s through Redis with and without tracing, interleaved).

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use sentry::protocol::{EnvelopeItem, SpanStatus};
use sentry::{ClientOptions, Envelope, Hub, SentryFutureExt, Transport};
use serde::{Deserialize, Serialize};
use traced_spawn::console::{ConsoleTransport, Trace};
use traced_spawn::queue::{
    MessageTrace, Process, Publish, OP_PROCESS, OP_PUBLISH, RECEIVE_LATENCY_KEY,
};

/// How long a worker's lease lasts without a heartbeat, unless `--lease-ms` says otherwise: a dead
/// worker's job is requeued this long (plus one reaper period) after its death. The heartbeat
/// renews it three times per lease, so a live worker keeps it even when it misses two beats.
const LEASE: Duration = Duration::from_millis(3_000);
/// How often each worker looks for dead workers' jobs.
const REAP_EVERY: Duration = Duration::from_millis(250);
/// `messaging.system` of the spans.
const SYSTEM: &str = "redis";

/// Renews the lease of worker ARGV[1] (KEYS[2], for ARGV[2] ms) if it is still a member of the
/// set KEYS[1]; 0 when it was reaped.
const HEARTBEAT: &str = r"
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
  return 1
end
return 0";

/// The members of the set `QUEUE:workers` (KEYS[1] = QUEUE) whose lease expired.
const EXPIRED: &str = r"
local expired = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1] .. ':workers')) do
  if redis.call('EXISTS', KEYS[1] .. ':lease:' .. id) == 0 then
    table.insert(expired, id)
  end
end
return expired";

/// For each worker ARGV[i] that is still a member of `QUEUE:workers` (KEYS[1] = QUEUE) without a
/// lease: moves its processing list back to the consuming end of QUEUE with the retry count + 1,
/// and forgets the worker. Returns how many jobs were requeued. One script: Redis runs it
/// atomically.
const REAP: &str = r"
local queue = KEYS[1]
local requeued = 0
for _, id in ipairs(ARGV) do
  if redis.call('SISMEMBER', queue .. ':workers', id) == 1
      and redis.call('EXISTS', queue .. ':lease:' .. id) == 0 then
    local processing = queue .. ':processing:' .. id
    while true do
      local item = redis.call('RPOP', processing)
      if not item then break end
      local retry, job = string.match(item, '^(%d+)|(.*)$')
      if retry then
        redis.call('RPUSH', queue, (tonumber(retry) + 1) .. '|' .. job)
      else
        redis.call('LPUSH', queue .. ':dead', item)
      end
      requeued = requeued + 1
    end
    redis.call('SREM', queue .. ':workers', id)
  end
end
return requeued";

/// A reply job, as it travels through Redis (JSON).
#[derive(Serialize, Deserialize)]
struct Job {
    id: String,
    channel: String,
    question: String,
    /// The trace to continue: propagation headers of the publish span, publish time.
    trace: MessageTrace,
}

#[derive(Clone)]
struct Options {
    queue: String,
    envelopes: Option<PathBuf>,
    work_ms: u64,
    exit_when_idle: Option<Duration>,
    lease: Duration,
}

enum Mode {
    Demo,
    Worker,
    Produce(usize),
    Bench(usize),
}

fn main() -> ExitCode {
    let (mode, options) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("redis_queue: {message}");
            return ExitCode::from(2);
        }
    };
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());

    // Where the transactions go: a JSON-lines file (for another process to read), the bench's
    // recorder, or the console.
    let mut guard = None;
    let mut reporter = None;
    let recorder = Arc::new(BenchTransport::default());
    match (&mode, &options.envelopes) {
        (Mode::Bench(_), _) => guard = Some(init_with_transport(recorder.clone())),
        (_, Some(path)) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => guard = Some(init_with_transport(Arc::new(JsonLines(Mutex::new(file))))),
            Err(err) => {
                eprintln!("redis_queue: --envelopes {}: {err}", path.display());
                return ExitCode::from(2);
            }
        },
        (_, None) => reporter = Some(traced_spawn::console::init()),
    }
    if let (Some(reporter), Mode::Worker) = (&reporter, &mode) {
        // A worker runs until stopped: print each trace once it has been quiet for a moment.
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
                    eprintln!("redis_queue: worker: {err}");
                    ExitCode::FAILURE
                }
            },
            Mode::Produce(n) => produce(&url, &options, n).await,
            Mode::Bench(rounds) => bench(&url, &options, rounds, &recorder).await,
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
        exit_when_idle: None,
        lease: LEASE,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, text: String| {
            text.parse::<u64>()
                .map_err(|_| format!("{name}: not a number: {text:?}"))
        };
        match arg.as_str() {
            "--demo" => mode = Mode::Demo,
            "--worker" => mode = Mode::Worker,
            "--produce" => mode = Mode::Produce(number("--produce", value("--produce")?)? as usize),
            "--bench" => mode = Mode::Bench(number("--bench", value("--bench")?)? as usize),
            "--queue" => options.queue = value("--queue")?,
            "--envelopes" => options.envelopes = Some(value("--envelopes")?.into()),
            "--work-ms" => options.work_ms = number("--work-ms", value("--work-ms")?)?,
            "--lease-ms" => {
                let ms = number("--lease-ms", value("--lease-ms")?)?.max(30);
                options.lease = Duration::from_millis(ms);
            }
            "--exit-when-idle" => {
                let ms = number("--exit-when-idle", value("--exit-when-idle")?)?;
                options.exit_when_idle = Some(Duration::from_millis(ms));
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; use --demo | --worker | --produce N | --bench \
                     ROUNDS, with --queue NAME, --envelopes FILE, --work-ms MS, --exit-when-idle MS, --lease-ms MS"
                ))
            }
        }
    }
    Ok((mode, options))
}

// ---------------------------------------------------------------------------------------------
// Producer: the slash-command handler.

/// Publishes reply jobs to Redis. Connects on first use, inside the first publish span, so a
/// Redis that is down shows up as a failed publish.
struct Producer {
    client: redis::Client,
    connection: tokio::sync::OnceCell<MultiplexedConnection>,
    queue: String,
}

impl Producer {
    fn new(url: &str, queue: &str) -> Result<Producer, redis::RedisError> {
        Ok(Producer {
            client: redis::Client::open(url)?,
            connection: tokio::sync::OnceCell::new(),
            queue: queue.to_owned(),
        })
    }

    /// The producer side of the queue: a `queue.publish` span around the push, the trace in the
    /// job.
    async fn publish(&self, channel: &str, question: &str) -> Result<String, redis::RedisError> {
        let id = new_id();
        let publish = Publish::start(SYSTEM, &self.queue, id.as_str());
        let job = Job {
            id: id.clone(),
            channel: channel.to_owned(),
            question: question.to_owned(),
            trace: publish.trace().clone(),
        };
        let body = serde_json::to_string(&job).expect("a job serializes");
        publish.body_size(body.len());
        let result = self.push(format!("0|{body}")).await;
        publish.finish(&result);
        result.map(|_| id)
    }

    async fn push(&self, item: String) -> Result<(), redis::RedisError> {
        let connection = self
            .connection
            .get_or_try_init(|| self.client.get_multiplexed_async_connection())
            .await?;
        let mut connection = connection.clone();
        redis::cmd("LPUSH")
            .arg(&self.queue)
            .arg(item)
            .query_async::<i64>(&mut connection)
            .await?;
        Ok(())
    }
}

/// The handler of `POST /slack/commands`, inside its `http.server` transaction (what sentry's
/// tower or actix integration would start): queues the reply and answers at once.
async fn slash_command(
    producer: &Producer,
    channel: &str,
    question: &str,
) -> Result<String, String> {
    let request = sentry::start_transaction(sentry::TransactionContext::new(
        "POST /slack/commands",
        "http.server",
    ));
    sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
    let answer = match producer.publish(channel, question).await {
        Ok(id) => Ok(format!("200 working on it (job {id})")),
        Err(err) => Err(format!(
            "could not queue the reply: Redis at {} refused the job: {err}",
            producer.client.get_connection_info().addr()
        )),
    };
    request.set_status(if answer.is_ok() {
        SpanStatus::Ok
    } else {
        SpanStatus::InternalError
    });
    sentry::configure_scope(|scope| scope.set_span(None));
    request.finish();
    answer
}

/// Each request in a hub of its own, as a web framework's Sentry integration does.
async fn handle(producer: &Producer, channel: &str, question: &str) -> Result<String, String> {
    slash_command(producer, channel, question)
        .bind_hub(Arc::new(Hub::new_from_top(Hub::current())))
        .await
}

async fn produce(url: &str, options: &Options, n: usize) -> ExitCode {
    let producer = match Producer::new(url, &options.queue) {
        Ok(producer) => producer,
        Err(err) => {
            eprintln!("redis_queue: REDIS_URL {url:?}: {err}");
            return ExitCode::FAILURE;
        }
    };
    for i in 0..n {
        match handle(&producer, "C042", &format!("question {i}")).await {
            Ok(answer) if n == 1 => println!("{answer}"),
            Ok(_) => {}
            Err(err) => {
                eprintln!("redis_queue: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("published {n} job(s) to {}", options.queue);
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------
// Worker: the reliable consumer.

async fn connect(client: &redis::Client) -> Result<MultiplexedConnection, redis::RedisError> {
    // No response timeout: BLMOVE blocks for up to a second by design.
    let config = AsyncConnectionConfig::new().set_response_timeout(None);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

async fn worker(url: &str, options: &Options) -> Result<(), redis::RedisError> {
    let client = redis::Client::open(url)?;
    let mut blocking = connect(&client).await?; // BLMOVE only: it blocks its connection
    let mut conn = connect(&client).await?;
    let id = new_id();
    // Named, so that a reaper can cut this worker off once its lease has expired.
    for connection in [&mut blocking, &mut conn] {
        redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(format!("rq-{id}"))
            .query_async::<()>(connection)
            .await?;
    }
    let queue = options.queue.as_str();
    let processing = format!("{queue}:processing:{id}");
    let workers = format!("{queue}:workers");
    let lease = format!("{queue}:lease:{id}");

    // The lease first: a member without one would be reaped at once.
    redis::cmd("SET")
        .arg(&lease)
        .arg(1)
        .arg("PX")
        .arg(options.lease.as_millis() as u64)
        .query_async::<()>(&mut conn)
        .await?;
    redis::cmd("SADD")
        .arg(&workers)
        .arg(&id)
        .query_async::<i64>(&mut conn)
        .await?;
    println!("worker {id} ready on {queue}");

    let heartbeat = tokio::spawn(heartbeat(
        conn.clone(),
        workers.clone(),
        lease.clone(),
        id.clone(),
        options.lease,
    ));
    let reaper = tokio::spawn(reaper(conn.clone(), queue.to_owned(), id.clone()));

    let mut idle_since = Instant::now();
    let result = loop {
        let item: Option<String> = match redis::cmd("BLMOVE")
            .arg(queue)
            .arg(&processing)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(0.5)
            .query_async(&mut blocking)
            .await
        {
            Ok(item) => item,
            Err(err) => break Err(err),
        };
        let Some(item) = item else {
            if options
                .exit_when_idle
                .is_some_and(|idle| idle_since.elapsed() >= idle)
            {
                break Ok(());
            }
            continue;
        };
        let Some((retry, job)) = parse_item(&item) else {
            // Not a job: set it aside, never lose it, never retry it forever.
            eprintln!("worker {id}: not a job, moved to {queue}:dead: {item:.80}");
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("LPUSH")
                .arg(format!("{queue}:dead"))
                .arg(&item)
                .cmd("LREM")
                .arg(&processing)
                .arg(1)
                .arg(&item);
            pipe.query_async::<()>(&mut conn).await?;
            continue;
        };
        let waited_ms = job.trace.receive_latency_ms(unix_ms());
        println!(
            "worker {id} took job {} ({waited_ms} ms in the queue) retry {retry}",
            job.id
        );
        let _ = std::io::stdout().flush();
        let body_size = item.len() - item.find('|').map_or(0, |bar| bar + 1);
        let result = Process::new(SYSTEM, queue, job.id.as_str(), &job.trace)
            .body_size(body_size)
            .retry_count(retry)
            .bind(
                "redis_queue::send_reply",
                send_reply(job.channel.clone(), job.question.clone(), options.work_ms),
            )
            .await;
        // Ack: remove the only copy. 0 removed: the lease was lost and the job requeued.
        let removed: i64 = redis::cmd("LREM")
            .arg(&processing)
            .arg(1)
            .arg(&item)
            .query_async(&mut conn)
            .await?;
        if removed == 1 {
            println!(
                "worker {id} acked job {} ({})",
                job.id,
                if result.is_ok() { "ok" } else { "failed" }
            );
        } else {
            eprintln!(
                "worker {id}: job {} was requeued before its ack (lease lost)",
                job.id
            );
        }
        idle_since = Instant::now();
    };
    heartbeat.abort();
    reaper.abort();
    // Leave: no more lease, no membership. The processing list is empty (every job was acked).
    redis::pipe()
        .cmd("SREM")
        .arg(&workers)
        .arg(&id)
        .cmd("DEL")
        .arg(&lease)
        .query_async::<()>(&mut conn)
        .await?;
    result
}

fn parse_item(item: &str) -> Option<(u64, Job)> {
    let (retry, json) = item.split_once('|')?;
    Some((retry.parse().ok()?, serde_json::from_str(json).ok()?))
}

async fn heartbeat(
    mut conn: MultiplexedConnection,
    workers: String,
    lease: String,
    id: String,
    every: Duration,
) {
    let script = redis::cmd("EVAL");
    loop {
        tokio::time::sleep(every / 3).await;
        let alive: Result<i64, _> = script
            .clone()
            .arg(HEARTBEAT)
            .arg(2)
            .arg(&workers)
            .arg(&lease)
            .arg(&id)
            .arg(every.as_millis() as u64)
            .query_async(&mut conn)
            .await;
        match alive {
            Ok(1) => {}
            // Hung longer than the lease, and reaped: the job in hand belongs to another worker
            // now. Stop before finishing it.
            Ok(_) => {
                eprintln!("worker {id}: reaped while alive (lease expired); exiting");
                std::process::exit(3);
            }
            Err(err) => {
                eprintln!("worker {id}: cannot renew the lease ({err}); exiting");
                std::process::exit(3);
            }
        }
    }
}

async fn reaper(mut conn: MultiplexedConnection, queue: String, id: String) {
    loop {
        if let Ok(n @ 1..) = reap(&mut conn, &queue).await {
            println!("worker {id} requeued {n} job(s) of dead worker(s)");
        }
        tokio::time::sleep(REAP_EVERY).await;
    }
}

/// Requeues the jobs of the workers whose lease expired. Their connections are closed first
/// (Redis names them `rq-ID`), so a worker that was only hung cannot take another job into a list
/// that nobody watches any more: once it wakes up, its next command fails and it exits.
async fn reap(conn: &mut MultiplexedConnection, queue: &str) -> redis::RedisResult<i64> {
    let expired: Vec<String> = redis::cmd("EVAL")
        .arg(EXPIRED)
        .arg(1)
        .arg(queue)
        .query_async(conn)
        .await?;
    if expired.is_empty() {
        return Ok(0);
    }
    let clients: String = redis::cmd("CLIENT").arg("LIST").query_async(conn).await?;
    for line in clients.lines() {
        let field = |key: &str| line.split(' ').find_map(|pair| pair.strip_prefix(key));
        let named = field("name=rq-").is_some_and(|name| expired.iter().any(|id| id == name));
        if let (true, Some(client)) = (named, field("id=")) {
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(client)
                .query_async::<i64>(conn)
                .await?;
        }
    }
    redis::cmd("EVAL")
        .arg(REAP)
        .arg(1)
        .arg(queue)
        .arg(&expired)
        .query_async(conn)
        .await
}

/// The work: generate the answer, post it. Its spans nest under `queue.process`.
async fn send_reply(channel: String, question: String, work_ms: u64) -> Result<(), String> {
    let parent = sentry::configure_scope(|scope| scope.get_span());
    let child = |op: &str, description: &str| {
        parent
            .as_ref()
            .map(|parent| parent.start_child(op, description))
    };
    let generate = child("llm.generate", "generate answer");
    tokio::time::sleep(Duration::from_millis(work_ms)).await;
    let answer = format!("the answer to {question:?} is 42");
    if let Some(span) = generate {
        span.set_status(SpanStatus::Ok);
        span.finish();
    }
    let post = child("http.client", "POST /api/chat.update");
    let posted = format!("#{channel}: {answer}");
    if let Some(span) = post {
        span.set_status(SpanStatus::Ok);
        span.finish();
    }
    if work_ms > 0 {
        println!("posted: {posted}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Demo: producer here, worker in a child process, one trace printed.

async fn demo(
    url: &str,
    options: &Options,
    reporter: Option<&traced_spawn::console::Reporter>,
) -> ExitCode {
    let Some(reporter) = reporter else {
        eprintln!("redis_queue: --demo prints the trace: it cannot write --envelopes");
        return ExitCode::from(2);
    };
    let queue = format!("{}:demo-{}", options.queue, &new_id()[..6]);
    let envelopes = std::env::temp_dir().join(format!("redis_queue-worker-{}.jsonl", new_id()));
    let exe = std::env::current_exe().expect("path of this program");
    let mut worker = match Command::new(exe)
        .args(["--worker", "--queue", &queue, "--exit-when-idle", "1000"])
        .arg("--envelopes")
        .arg(&envelopes)
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            eprintln!("redis_queue: could not start the worker process: {err}");
            return ExitCode::FAILURE;
        }
    };

    let producer = match Producer::new(url, &queue) {
        Ok(producer) => producer,
        Err(err) => {
            eprintln!("redis_queue: REDIS_URL {url:?}: {err}");
            let _ = worker.kill();
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    match handle(&producer, "C042", "why is the build red?").await {
        Ok(answer) => println!(
            "handler answered {answer} after {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        ),
        Err(err) => {
            eprintln!("redis_queue: {err}");
            let _ = worker.kill();
            let _ = worker.wait();
            return ExitCode::FAILURE;
        }
    }

    // The worker exits once the queue has been idle for a second.
    let status = tokio::task::spawn_blocking(move || worker.wait())
        .await
        .expect("waiting for the worker");
    if !status.as_ref().is_ok_and(|status| status.success()) {
        eprintln!("redis_queue: the worker process failed: {status:?}");
        return ExitCode::FAILURE;
    }
    let received = read_json_lines(&envelopes, reporter.transport());
    let _ = std::fs::remove_file(&envelopes);
    if let Err(err) = received {
        eprintln!("redis_queue: reading the worker's transactions: {err}");
        return ExitCode::FAILURE;
    }
    let traces = reporter.print_trees();
    check_shape(&traces)
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

// ---------------------------------------------------------------------------------------------
// Bench: jobs/s through Redis, with and without tracing, interleaved in one process.

async fn bench(url: &str, options: &Options, rounds: usize, recorder: &BenchTransport) -> ExitCode {
    const JOBS: usize = 500;
    const WORKERS: usize = 4;
    let traced_client = Hub::current().client();
    let mut rates: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 0..rounds {
        // Alternate which variant goes first, so that neither always runs on a warmer Redis.
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for traced in order {
            // Untraced: the same code under a hub with no client (no spans, no headers).
            let hub = Arc::new(Hub::new(
                traced.then(|| traced_client.clone()).flatten(),
                Default::default(),
            ));
            let queue = format!("{}:bench:{}", options.queue, new_id());
            let run = bench_round(url.to_owned(), queue, JOBS, WORKERS).bind_hub(hub);
            match run.await {
                Ok(elapsed) => {
                    let rate = JOBS as f64 / elapsed.as_secs_f64();
                    rates
                        .entry(if traced { "traced" } else { "plain" })
                        .or_default()
                        .push(rate);
                    println!(
                        "round {round} {:6}: {rate:8.0} jobs/s",
                        if traced { "traced" } else { "plain" }
                    );
                }
                Err(err) => {
                    eprintln!("redis_queue: bench: {err}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let plain = median(rates.get_mut("plain").expect("plain rounds"));
    let traced = median(rates.get_mut("traced").expect("traced rounds"));
    println!(
        "median over {rounds} rounds of {JOBS} jobs, {WORKERS} consumers: plain {plain:.0} jobs/s, \
         traced {traced:.0} jobs/s, traced/plain {:.2}",
        traced / plain
    );
    let mut latencies = recorder
        .latencies_ms
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    latencies.sort_unstable();
    if latencies.len() != rounds * JOBS {
        eprintln!(
            "redis_queue: bench: {} traced jobs recorded, expected {}",
            latencies.len(),
            rounds * JOBS
        );
        return ExitCode::FAILURE;
    }
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "receive latency of the traced jobs (publish to start of processing, all {JOBS} published \
         back to back): median {} ms, p90 {} ms, max {} ms",
        at(0.5),
        at(0.9),
        at(1.0)
    );
    ExitCode::SUCCESS
}

/// Publishes `jobs` jobs from one request each and consumes them with `workers` consumers
/// (BLMOVE, Process, LREM: the worker's path, without its lease bookkeeping); returns the time
/// from the first publish to the last ack.
async fn bench_round(
    url: String,
    queue: String,
    jobs: usize,
    workers: usize,
) -> Result<Duration, String> {
    let producer = Producer::new(&url, &queue).map_err(|err| err.to_string())?;
    let client = redis::Client::open(url.as_str()).map_err(|err| err.to_string())?;
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut consumers = Vec::new();
    for n in 0..workers {
        let mut blocking = connect(&client).await.map_err(|err| err.to_string())?;
        let mut conn = connect(&client).await.map_err(|err| err.to_string())?;
        let (queue, done) = (queue.clone(), done.clone());
        let processing = format!("{queue}:processing:bench{n}");
        let hub = Arc::new(Hub::new_from_top(Hub::current()));
        consumers.push(tokio::spawn(
            async move {
                let mut last_ack = None;
                while done.load(Ordering::SeqCst) < jobs as u64 {
                    let item: Option<String> = redis::cmd("BLMOVE")
                        .arg(&queue)
                        .arg(&processing)
                        .arg("RIGHT")
                        .arg("LEFT")
                        .arg(0.1)
                        .query_async(&mut blocking)
                        .await?;
                    let Some(item) = item else { continue };
                    let (retry, job) = parse_item(&item).expect("a job");
                    let _ = Process::new(SYSTEM, queue.as_str(), job.id.as_str(), &job.trace)
                        .retry_count(retry)
                        .bind(
                            "redis_queue::send_reply",
                            send_reply(job.channel, job.question, 0),
                        )
                        .await;
                    redis::cmd("LREM")
                        .arg(&processing)
                        .arg(1)
                        .arg(&item)
                        .query_async::<i64>(&mut conn)
                        .await?;
                    done.fetch_add(1, Ordering::SeqCst);
                    last_ack = Some(Instant::now());
                }
                Ok::<_, redis::RedisError>(last_ack)
            }
            .bind_hub(hub),
        ));
    }
    for i in 0..jobs {
        handle(&producer, "C042", &format!("question {i}")).await?;
    }
    // Until the last ack, not until the idle consumers' BLMOVE times out.
    let mut finished = started;
    for consumer in consumers {
        let last_ack = consumer
            .await
            .expect("a consumer task")
            .map_err(|err| err.to_string())?;
        finished = finished.max(last_ack.unwrap_or(started));
    }
    Ok(finished - started)
}

// ---------------------------------------------------------------------------------------------
// Transactions as JSON lines, to hand them from one process to another.

/// A transport that appends every transaction and error event to a file, one JSON object a line
/// (`{"transaction": ...}` or `{"event": ...}`), written and flushed before `send_envelope`
/// returns: nothing is lost when the process exits.
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
                eprintln!("redis_queue: could not write a transaction: {err}");
            }
        }
    }
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

/// The bench's transport: serializes every envelope (as an HTTP transport would, but here on the
/// finishing thread, so its cost is counted) into nothing, and records the receive latencies.
#[derive(Default)]
struct BenchTransport {
    latencies_ms: Mutex<Vec<u64>>,
}

impl Transport for BenchTransport {
    fn send_envelope(&self, envelope: Envelope) {
        let _ = envelope.to_writer(std::io::sink());
        for item in envelope.items() {
            let EnvelopeItem::Transaction(tx) = item else {
                continue;
            };
            let latencies = tx
                .spans
                .iter()
                .filter(|span| span.op.as_deref() == Some(OP_PROCESS))
                .filter_map(|span| span.data.get(RECEIVE_LATENCY_KEY)?.as_u64());
            self.latencies_ms
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(latencies);
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

/// The wall clock in milliseconds since the Unix epoch, as in [`MessageTrace::published_at_ms`].
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// A random 16-hex-digit id (message ids, worker ids, queue names of one run).
fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!(
        "{:016x}",
        RandomState::new().hash_one((std::process::id(), n, now))
    )
}
