//! Jobs per second through a real queue engine, untraced vs traced: apalis on Redis
//! (apalis-redis) and NATS JetStream (async-nats), producer and worker in this one process.
//!
//! ```text
//! bash scripts/redis/setup.sh && export REDIS_URL="$(bash scripts/redis/start.sh)"
//! bash scripts/nats/setup.sh && export NATS_URL="$(bash scripts/nats/start.sh)"
//! cargo bench -p traced-spawn-tests --bench engines              # 1 + 7 rounds x 2,000 jobs
//! cargo bench -p traced-spawn-tests --bench engines -- --smoke   # 50 jobs, 1 round, checked
//! cargo bench -p traced-spawn-tests --bench engines -- nats      # only engines named *nats*
//! cargo bench -p traced-spawn-tests --bench engines -- --rounds=11 --jobs=5000
//! bash scripts/redis/stop.sh; bash scripts/nats/stop.sh
//! ```
//!
//! One round of a variant: a fresh queue (stream), a worker (consumer) started and ready, then a
//! producer pushes N jobs one after the other; the time is from the first push to the end of the
//! last job's processing. The two variants of an engine run interleaved, the first of each round
//! alternating; the table gives each variant's median jobs/s over rounds, the ratio of medians
//! traced/untraced and (paired) the median over rounds of that round's ratio, the time each job
//! adds (1/traced - 1/untraced), and the CPU time this process (producer, worker, client I/O; not
//! the server) spent per job, from `/proc/self/task/*/schedstat` over the same interval.
//!
//! - **untraced**: the engine used plainly: `TaskSink::push` / `jetstream::Context::publish`, and
//!   a worker with the same shape and handler as the traced one.
//! - **traced**: what the project documents: each push from a request transaction
//!   (`http.server`) with [`traced_spawn::apalis::Queue::push`] / [`traced_spawn::nats::publish`],
//!   the worker under [`traced_spawn::apalis::Queue::layer`] / each delivery through
//!   [`traced_spawn::nats::Delivery::bind`]. A Sentry client is bound to the process hub with
//!   `traces_sample_rate(1.0)` and a transport that counts the transactions it is handed and
//!   drops them, so what the traced variant adds is the tracing work, not network I/O.
//!
//! Checked in every mode (full and smoke): every job was processed exactly once, a traced round
//! sent two transactions per job (the request and the consumer's continuation) and an untraced
//! round none. Smoke mode (`--smoke` or `BENCH_SMOKE=1`) asserts nothing about timing; it also
//! waits a moment after the last job for duplicate deliveries, and checks that every consumer
//! transaction continues its producer's trace: same trace id, parent = the `queue.publish` span
//! of the same message id. Without `REDIS_URL` / `NATS_URL` an engine is skipped with a notice,
//! unless `CI` is set: then the run fails.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use apalis::prelude::{
    BackendExt, BoxDynError, Data, Layer, PollSnapshot, PollStrategy, Service, Task, TaskSink,
    WorkerBuilder, WorkerContext,
};
use apalis_redis::{Config, ConnectionManager, RedisStorage};
use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;
use sentry::protocol::{EnvelopeItem, SpanId, TraceId, Transaction};
use sentry::{ClientOptions, Envelope, Hub, SentryFutureExt, TransactionContext};
use serde::{Deserialize, Serialize};
use traced_spawn::queue::{OP_PROCESS, OP_PUBLISH};
use traced_spawn_tests::bench::CountingTransport;

/// A DSN that is never contacted: the client needs one to be enabled; the transport is ours.
const DSN: &str = "https://public@sentry.invalid/1";
/// How often an idle apalis worker asks Redis for tasks again ([`Every`]): apalis-redis 1.0 has no
/// blocking fetch, and without a poll strategy an idle worker waits for its next heartbeat.
const APALIS_POLL: Duration = Duration::from_millis(1);
/// Smoke mode: how long the worker keeps running after the last job, for duplicate deliveries.
const GRACE: Duration = Duration::from_millis(300);
/// The longest a round may take before the bench fails.
const ROUND_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Sentry: a client that samples everything and a transport that counts and drops.

/// The transactions of the envelopes a smoke run kept.
fn transactions_of(envelopes: Vec<Envelope>) -> Vec<Transaction<'static>> {
    envelopes
        .iter()
        .flat_map(Envelope::items)
        .filter_map(|item| match item {
            EnvelopeItem::Transaction(tx) => Some((**tx).clone()),
            _ => None,
        })
        .collect()
}

/// Binds a sampling client with the counting transport to the process hub, which every thread's
/// hub starts from. Called before any runtime thread exists.
fn install_client(keep: bool) -> Arc<CountingTransport> {
    let transport = Arc::new(CountingTransport::new(keep));
    let mut options = ClientOptions::new().traces_sample_rate(1.0);
    options.dsn = Some(DSN.parse().expect("valid DSN"));
    options.transport = Some(Arc::new(transport.clone()));
    Hub::main().bind_client(Some(Arc::new(options.into())));
    transport
}

/// The producer's hub: a fork of the process hub, bound to the producer's future so that its
/// request transaction stays its scope's span whichever runtime thread polls it.
fn producer_hub() -> Arc<Hub> {
    Arc::new(Hub::new_from_top(Hub::main()))
}

/// One request of a service: a transaction bound as the scope's span while `push` runs, as
/// sentry's tower layer does; `push` pushes one job with the project's traced publish.
async fn in_request<T, E, F>(push: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let request = sentry::start_transaction(TransactionContext::new("POST /jobs", "http.server"));
    sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
    let pushed = push.await;
    sentry::configure_scope(|scope| scope.set_span(None));
    request.finish();
    pushed
}

// ---------------------------------------------------------------------------------------------
// What every round shares: the job, the bookkeeping, the round's result.

/// The payload of a job: its index in the round.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Job {
    index: u32,
}

/// What a round's handler records: how many times each job was processed, how many jobs are
/// done, and when the last one was.
struct Tally {
    seen: Vec<AtomicU32>,
    done: AtomicUsize,
    finished: OnceLock<Instant>,
    finished_cpu: OnceLock<Option<u64>>,
    all_done: tokio::sync::Notify,
}

impl Tally {
    fn new(jobs: usize) -> Arc<Tally> {
        Arc::new(Tally {
            seen: (0..jobs).map(|_| AtomicU32::new(0)).collect(),
            done: AtomicUsize::new(0),
            finished: OnceLock::new(),
            finished_cpu: OnceLock::new(),
            all_done: tokio::sync::Notify::new(),
        })
    }

    /// The handler's work: marks the job seen.
    fn process(&self, job: Job) -> Result<(), String> {
        let seen = self
            .seen
            .get(job.index as usize)
            .ok_or_else(|| format!("job {} is not of this round", job.index))?;
        seen.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// One job's processing ended (after its continuation, when traced).
    fn one_done(&self) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        if done == self.seen.len() {
            let _ = self.finished.set(Instant::now());
            let _ = self.finished_cpu.set(process_cpu_ns());
            self.all_done.notify_one();
        }
    }

    async fn wait_all_done(&self) {
        while self.done.load(Ordering::SeqCst) < self.seen.len() {
            self.all_done.notified().await;
        }
    }

    /// The round's figures: from `started` (and `cpu_before`) to the end of the last job.
    fn round(&self, started: Instant, cpu_before: Option<u64>) -> Round {
        let elapsed = *self.finished.get().expect("all jobs done") - started;
        let cpu = match (self.finished_cpu.get().copied().flatten(), cpu_before) {
            (Some(after), Some(before)) => Some(after.saturating_sub(before)),
            _ => None,
        };
        Round::new(self.seen.len(), elapsed, cpu)
    }

    /// Panics unless every job was processed exactly once.
    fn assert_exactly_once(&self, what: &str) {
        let counts: Vec<u32> = self.seen.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        let missing = counts.iter().filter(|&&c| c == 0).count();
        let repeated = counts.iter().filter(|&&c| c > 1).count();
        assert!(
            missing == 0 && repeated == 0,
            "{what}: {missing} of {} jobs never processed, {repeated} processed more than once",
            counts.len()
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Untraced,
    Traced,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Untraced => "untraced",
            Variant::Traced => "traced",
        }
    }
}

/// A round's figures, from the first push to the end of the last job's processing: jobs/s, and
/// the CPU time this process (producer, worker and client I/O) spent per job.
struct Round {
    jobs_per_s: f64,
    cpu_us_per_job: Option<f64>,
}

impl Round {
    fn new(jobs: usize, elapsed: Duration, cpu_ns: Option<u64>) -> Round {
        Round {
            jobs_per_s: jobs as f64 / elapsed.as_secs_f64(),
            cpu_us_per_job: cpu_ns.map(|ns| ns as f64 / 1000.0 / jobs as f64),
        }
    }
}

/// CPU time of every thread of this process so far, in nanoseconds (Linux: the first field of
/// `/proc/self/task/*/schedstat`); `None` where that is not available.
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(stat) = std::fs::read_to_string(task.ok()?.path().join("schedstat")) else {
            continue; // a thread that has just exited
        };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

fn unique(what: &str, round: usize, variant: Variant) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{what}-{}-{round}-{}-{nanos}",
        std::process::id(),
        variant.name()
    )
}

// ---------------------------------------------------------------------------------------------
// apalis on Redis.

/// The outermost layer of both apalis workers: counts a job done once the service (with the
/// tracing layer, when traced) has finished with it.
#[derive(Clone)]
struct CountDone(Arc<Tally>);

impl<S> Layer<S> for CountDone {
    type Service = CountDoneService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountDoneService {
            tally: self.0.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
struct CountDoneService<S> {
    tally: Arc<Tally>,
    inner: S,
}

impl<S, Args> Service<Task<Args>> for CountDoneService<S>
where
    S: Service<Task<Args>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, task: Task<Args>) -> Self::Future {
        let tally = self.tally.clone();
        let processing = self.inner.call(task);
        Box::pin(async move {
            let processed = processing.await;
            if processed.is_ok() {
                tally.one_done();
            }
            processed
        })
    }
}

/// Wakes an idle apalis worker every `period`, so that it fetches again.
///
/// apalis-core 1.0.0's own `IntervalStrategy` (`poll_with_interval`) replaces its timer when it
/// fires without polling the new one: when that wake-up's fetch comes back empty, nothing wakes
/// the worker again until its heartbeat (30 s by default). That showed here as rounds of 66 jobs/s
/// (2,000 jobs in 30 s). This strategy polls each new timer at once, so one is always armed.
struct Every {
    period: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Every {
    fn new(period: Duration) -> Every {
        Every {
            period,
            timer: None,
        }
    }
}

impl Clone for Every {
    fn clone(&self) -> Every {
        Every::new(self.period)
    }
}

impl PollStrategy for Every {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let period = self.period;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(period)));
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        timer.as_mut().reset(tokio::time::Instant::now() + period);
        // Registers the waker with the next tick.
        let _ = timer.as_mut().poll(cx);
        Poll::Ready(Some(()))
    }
}

/// The handler of both apalis workers.
async fn apalis_job(job: Job, tally: Data<Arc<Tally>>) -> Result<(), BoxDynError> {
    tally.process(job)?;
    Ok(())
}

struct Apalis {
    url: String,
    producer: ConnectionManager,
    worker: ConnectionManager,
}

impl Apalis {
    async fn connect(url: &str) -> Apalis {
        let connect = || async {
            tokio::time::timeout(Duration::from_secs(5), apalis_redis::connect(url))
                .await
                .unwrap_or_else(|_| panic!("REDIS_URL {url:?}: no answer within 5 s"))
                .unwrap_or_else(|err| panic!("REDIS_URL {url:?}: {err}"))
        };
        Apalis {
            url: url.to_owned(),
            producer: connect().await,
            worker: connect().await,
        }
    }

    async fn round(&self, variant: Variant, round: usize, jobs: usize, smoke: bool) -> Round {
        let queue_name = unique("bench-engines", round, variant);
        let config = Config::default().queue(&queue_name);
        let mut producer =
            RedisStorage::<Job>::new(self.producer.clone()).with_config(config.clone());
        let backend = RedisStorage::<Job>::new(self.worker.clone())
            .with_config(config)
            .poll_with_strategy(Every::new(APALIS_POLL));
        let tally = Tally::new(jobs);
        let queue = traced_spawn::apalis::Queue::new("redis", &queue_name);
        let worker_ctx = WorkerContext::new(&format!("{queue_name}-worker"));

        let until = {
            let tally = tally.clone();
            async move {
                tally.wait_all_done().await;
                if smoke {
                    tokio::time::sleep(GRACE).await;
                }
                Ok::<(), std::io::Error>(())
            }
        };
        let builder = WorkerBuilder::new(&worker_ctx)
            .backend(backend)
            .data(tally.clone())
            .layer(CountDone(tally.clone()));
        let worker = match variant {
            Variant::Untraced => tokio::spawn(builder.build(apalis_job).run_until(until)),
            // Under the counting layer: a job is done once its continuation has finished.
            Variant::Traced => tokio::spawn(
                builder
                    .layer(queue.layer())
                    .build(apalis_job)
                    .run_until(until),
            ),
        };
        wait_ready(&worker_ctx).await;

        let cpu_before = process_cpu_ns();
        let started = Instant::now();
        let produce = async move {
            for index in 0..jobs as u32 {
                let job = Job { index };
                match variant {
                    Variant::Untraced => producer.push(job).await.map(|_| ()),
                    Variant::Traced => in_request(queue.push(&mut producer, job)).await.map(|_| ()),
                }
                .unwrap_or_else(|err| panic!("push job {index}: {err}"));
            }
        };
        tokio::spawn(produce.bind_hub(producer_hub()))
            .await
            .expect("producer");
        tokio::time::timeout(ROUND_TIMEOUT, worker)
            .await
            .unwrap_or_else(|_| panic!("apalis: {jobs} jobs not processed in {ROUND_TIMEOUT:?}"))
            .expect("worker task")
            .unwrap_or_else(|err| panic!("apalis worker: {err}"));
        tally.assert_exactly_once(&format!("apalis {} round {round}", variant.name()));
        self.delete_queue(&queue_name).await;
        tally.round(started, cpu_before)
    }

    /// Deletes every Redis key of the round's queue (all are named `{queue}:...`).
    async fn delete_queue(&self, queue: &str) {
        let mut conn = self.producer.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{queue}:*"))
            .query_async(&mut conn)
            .await
            .unwrap_or_else(|err| panic!("{}: KEYS: {err}", self.url));
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<u64>(&mut conn)
                .await
                .unwrap_or_else(|err| panic!("{}: DEL: {err}", self.url));
        }
    }
}

/// Waits until the apalis worker takes tasks (it has registered with its backend).
async fn wait_ready(worker: &WorkerContext) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !worker.is_ready() {
        assert!(Instant::now() < deadline, "the apalis worker did not start");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// NATS JetStream.

struct Nats {
    producer: jetstream::Context,
    consumer: jetstream::Context,
}

impl Nats {
    async fn connect(url: &str) -> Nats {
        let connect = || async {
            let client = tokio::time::timeout(
                Duration::from_secs(5),
                async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_secs(3))
                    .connect(url),
            )
            .await
            .unwrap_or_else(|_| panic!("NATS_URL {url:?}: no answer within 5 s"))
            .unwrap_or_else(|err| panic!("NATS_URL {url:?}: {err}"));
            jetstream::new(client)
        };
        Nats {
            producer: connect().await,
            consumer: connect().await,
        }
    }

    async fn round(&self, variant: Variant, round: usize, jobs: usize, smoke: bool) -> Round {
        let stream_name = unique("BENCH_ENGINES", round, variant).replace('-', "_");
        let subject = format!("bench.engines.{}", stream_name.to_ascii_lowercase());
        let stream = self
            .consumer
            .create_stream(jetstream::stream::Config {
                name: stream_name.clone(),
                subjects: vec![subject.clone()],
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("create stream {stream_name}: {err}"));
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some("bench".to_owned()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|err| panic!("create consumer: {err}"));
        let mut messages = consumer
            .messages()
            .await
            .unwrap_or_else(|err| panic!("consumer messages: {err}"));
        let tally = Tally::new(jobs);

        let consume = {
            let tally = tally.clone();
            let subject = subject.clone();
            async move {
                let grace = async {
                    tally.wait_all_done().await;
                    if smoke {
                        tokio::time::sleep(GRACE).await;
                    }
                };
                tokio::pin!(grace);
                loop {
                    let message = tokio::select! {
                        () = &mut grace => return,
                        message = messages.next() => message,
                    };
                    let message = message
                        .expect("the consumer's message stream ended")
                        .unwrap_or_else(|err| panic!("receiving: {err}"));
                    let handle = async {
                        let job = serde_json::from_slice::<Job>(&message.payload)
                            .map_err(|err| err.to_string())?;
                        tally.process(job)
                    };
                    let processed = match variant {
                        Variant::Untraced => handle.await,
                        Variant::Traced => {
                            traced_spawn::nats::Delivery::new(&message)
                                .bind(subject.clone(), handle)
                                .await
                        }
                    };
                    processed.unwrap_or_else(|err| panic!("processing: {err}"));
                    message
                        .ack()
                        .await
                        .unwrap_or_else(|err| panic!("ack: {err}"));
                    tally.one_done();
                }
            }
        };
        let consumer = tokio::spawn(consume);

        let cpu_before = process_cpu_ns();
        let started = Instant::now();
        let producer = self.producer.clone();
        let produce = async move {
            for index in 0..jobs as u32 {
                let payload: Vec<u8> = serde_json::to_vec(&Job { index }).expect("a Job");
                match variant {
                    Variant::Untraced => async {
                        producer
                            .publish(subject.clone(), payload.into())
                            .await?
                            .await
                    }
                    .await
                    .map(|_| ()),
                    Variant::Traced => in_request(traced_spawn::nats::publish(
                        &producer,
                        subject.clone(),
                        async_nats::HeaderMap::new(),
                        payload.into(),
                    ))
                    .await
                    .map(|_| ()),
                }
                .unwrap_or_else(|err| panic!("publish job {index}: {err}"));
            }
        };
        tokio::spawn(produce.bind_hub(producer_hub()))
            .await
            .expect("producer");
        tokio::time::timeout(ROUND_TIMEOUT, consumer)
            .await
            .unwrap_or_else(|_| panic!("nats: {jobs} jobs not processed in {ROUND_TIMEOUT:?}"))
            .expect("consumer task");
        tally.assert_exactly_once(&format!("nats {} round {round}", variant.name()));
        self.consumer
            .delete_stream(&stream_name)
            .await
            .unwrap_or_else(|err| panic!("delete stream {stream_name}: {err}"));
        tally.round(started, cpu_before)
    }
}

// ---------------------------------------------------------------------------------------------
// Checks of what the traced rounds sent.

fn trace_of(tx: &Transaction<'static>) -> (TraceId, SpanId, Option<SpanId>, Option<String>) {
    match tx.contexts.get("trace") {
        Some(sentry::protocol::Context::Trace(trace)) => (
            trace.trace_id,
            trace.span_id,
            trace.parent_span_id,
            trace.op.clone(),
        ),
        _ => panic!("transaction {:?} has no trace context", tx.name),
    }
}

fn message_id(span: &sentry::protocol::Span) -> String {
    span.data
        .get("messaging.message.id")
        .and_then(|id| id.as_str())
        .unwrap_or_else(|| panic!("span {:?} has no messaging.message.id", span.op))
        .to_owned()
}

/// Smoke mode: `jobs` requests, each with one `queue.publish` span, and `jobs` consumer
/// transactions, each in its request's trace with the publish span of its message as parent.
fn check_links(engine: &str, txs: &[Transaction<'static>], jobs: usize) {
    let mut publishes: HashMap<String, (TraceId, SpanId)> = HashMap::new();
    let mut consumers = Vec::new();
    for tx in txs {
        let (trace_id, _, _, op) = trace_of(tx);
        if op.as_deref() == Some("http.server") {
            let publish: Vec<_> = tx
                .spans
                .iter()
                .filter(|span| span.op.as_deref() == Some(OP_PUBLISH))
                .collect();
            assert_eq!(publish.len(), 1, "{engine}: a request with {publish:?}");
            let publish = publish[0];
            assert_eq!(publish.trace_id, trace_id);
            publishes.insert(message_id(publish), (trace_id, publish.span_id));
        } else {
            consumers.push(tx);
        }
    }
    assert_eq!(publishes.len(), jobs, "{engine}: requests with a publish");
    assert_eq!(consumers.len(), jobs, "{engine}: consumer transactions");
    for consumer in consumers {
        let (trace_id, _, parent, _) = trace_of(consumer);
        let process = consumer
            .spans
            .iter()
            .find(|span| span.op.as_deref() == Some(OP_PROCESS))
            .unwrap_or_else(|| panic!("{engine}: {:?} has no {OP_PROCESS} span", consumer.name));
        let id = message_id(process);
        let (producer_trace, publish_span) = publishes
            .get(&id)
            .unwrap_or_else(|| panic!("{engine}: message {id} was not published"));
        assert_eq!(
            trace_id, *producer_trace,
            "{engine}: message {id}: the consumer is not in the producer's trace"
        );
        assert_eq!(
            parent,
            Some(*publish_span),
            "{engine}: message {id}: the consumer's parent is not the publish span"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The run: rounds, medians, report.

struct Plan {
    warmup_rounds: usize,
    rounds: usize,
    jobs: usize,
}

enum Engine {
    Apalis(Apalis),
    Nats(Box<Nats>),
}

impl Engine {
    async fn round(&self, variant: Variant, round: usize, jobs: usize, smoke: bool) -> Round {
        match self {
            Engine::Apalis(apalis) => apalis.round(variant, round, jobs, smoke).await,
            Engine::Nats(nats) => nats.round(variant, round, jobs, smoke).await,
        }
    }
}

/// The engines of this run: name, title, URL variable, scripts folder.
const ENGINES: [(&str, &str, &str, &str); 2] = [
    (
        "apalis",
        "apalis 1 on Redis (apalis-redis)",
        "REDIS_URL",
        "redis",
    ),
    ("nats", "NATS JetStream (async-nats)", "NATS_URL", "nats"),
];

/// The engine's server URL; `None` (with a notice) to skip it; with `CI` set, a missing URL
/// fails the run.
fn server_url(name: &str, var: &str, scripts: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ if std::env::var("CI").is_ok_and(|ci| !ci.is_empty() && ci != "false" && ci != "0") => {
            panic!(
                "{var} is not set, and CI is: the {name} engine needs its server \
                 (bash scripts/{scripts}/setup.sh && export {var}=\"$(bash scripts/{scripts}/start.sh)\")"
            )
        }
        _ => {
            println!(
                "SKIPPED {name}: {var} is not set (bash scripts/{scripts}/setup.sh && \
                 export {var}=\"$(bash scripts/{scripts}/start.sh)\")"
            );
            None
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn commit() -> String {
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".to_owned();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{head} (with uncommitted changes)"),
        _ => head,
    }
}

fn number_arg(name: &str) -> Option<usize> {
    std::env::args().find_map(|arg| {
        let value = arg.strip_prefix(name)?.strip_prefix('=')?;
        Some(
            value
                .parse()
                .unwrap_or_else(|_| panic!("{name}= needs a number, not {value:?}")),
        )
    })
}

fn main() {
    let smoke = std::env::args().any(|arg| arg == "--smoke")
        || std::env::var("BENCH_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0");
    let plan = if smoke {
        Plan {
            warmup_rounds: 0,
            rounds: 1,
            jobs: 50,
        }
    } else {
        Plan {
            warmup_rounds: 1,
            rounds: 7,
            jobs: 2_000,
        }
    };
    let plan = Plan {
        rounds: number_arg("--rounds").unwrap_or(plan.rounds).max(1),
        jobs: number_arg("--jobs").unwrap_or(plan.jobs).max(1),
        ..plan
    };
    // Arguments that are not flags select engines by a word of their name; cargo bench passes
    // `--bench` itself.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let user_args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .collect();
    println!(
        "traced-spawn queue engines bench ({} mode, {} CPUs available{})",
        if smoke { "smoke" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            ", DEBUG BUILD: numbers meaningless"
        } else {
            ""
        }
    );
    println!(
        "command: cargo bench -p traced-spawn-tests --bench engines{}",
        if user_args.is_empty() {
            String::new()
        } else {
            format!(" -- {}", user_args.join(" "))
        }
    );
    println!("commit: {}", commit());
    println!(
        "plan: {} warm-up + {} measured rounds x 2 variants x {} jobs per engine",
        plan.warmup_rounds, plan.rounds, plan.jobs
    );

    // Before the runtime: its threads' hubs start from the process hub.
    let transport = install_client(smoke);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let mut report = Vec::new();
    for (name, title, var, scripts) in ENGINES {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let Some(url) = server_url(name, var, scripts) else {
            continue;
        };
        let started = Instant::now();
        let engine = rt.block_on(async {
            match name {
                "apalis" => Engine::Apalis(Apalis::connect(&url).await),
                _ => Engine::Nats(Box::new(Nats::connect(&url).await)),
            }
        });
        println!("\n{title} at {url}:");
        let mut rows = Rows::default();
        for round in 0..plan.warmup_rounds + plan.rounds {
            let measured = round >= plan.warmup_rounds;
            // The first variant alternates from round to round.
            let order = if round % 2 == 0 {
                [Variant::Untraced, Variant::Traced]
            } else {
                [Variant::Traced, Variant::Untraced]
            };
            let mut line = Vec::new();
            for variant in order {
                let sent_before = transport.transactions();
                let result = rt.block_on(engine.round(variant, round, plan.jobs, smoke));
                let sent = transport.transactions() - sent_before;
                let expected = match variant {
                    Variant::Untraced => 0,
                    Variant::Traced => 2 * plan.jobs,
                };
                assert_eq!(
                    sent,
                    expected,
                    "{name} {} round {round}: transactions sent",
                    variant.name()
                );
                if smoke && variant == Variant::Traced {
                    check_links(name, &transactions_of(transport.take_kept()), plan.jobs);
                }
                line.push(format!(
                    "{} {:.0} jobs/s{}",
                    variant.name(),
                    result.jobs_per_s,
                    result
                        .cpu_us_per_job
                        .map_or(String::new(), |cpu| format!(" ({cpu:.1} µs CPU/job)"))
                ));
                if measured {
                    rows.push(variant, &result);
                }
            }
            println!(
                "  round {}{}: {}",
                round + 1,
                if measured { "" } else { " (warm-up)" },
                line.join(", ")
            );
        }
        println!(
            "  {} rounds in {:.1} s; every job processed exactly once; traced rounds sent 2 \
             transactions per job, untraced none{}",
            plan.warmup_rounds + plan.rounds,
            started.elapsed().as_secs_f64(),
            if smoke {
                "; every consumer transaction continues its producer's trace"
            } else {
                ""
            }
        );
        report.push((title, rows));
    }

    if report.is_empty() {
        println!("\nno engine ran (no server URL set)");
        return;
    }
    println!(
        "\nmedians over {} rounds of {} jobs; (paired): median of the per-round ratio; CPU: this \
         process (producer, worker, client I/O; not the server)",
        plan.rounds, plan.jobs
    );
    println!(
        "| engine | untraced jobs/s | traced jobs/s | traced/untraced | (paired) | time added per job \
         | untraced CPU µs/job | traced CPU µs/job | CPU added per job |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (title, rows) in &report {
        let (u, t) = (median(&rows.untraced), median(&rows.traced));
        let paired: Vec<f64> = rows
            .traced
            .iter()
            .zip(&rows.untraced)
            .map(|(t, u)| t / u)
            .collect();
        let cpu = match (rows.untraced_cpu(), rows.traced_cpu()) {
            (Some(uc), Some(tc)) => format!("{uc:.1} | {tc:.1} | {:+.1} µs", tc - uc),
            _ => "- | - | -".to_owned(),
        };
        println!(
            "| {title} | {u:.0} | {t:.0} | {:.2}x | {:.2}x | {:+.1} µs | {cpu} |",
            t / u,
            median(&paired),
            (1.0 / t - 1.0 / u) * 1e6
        );
    }
    println!("\nper round (jobs/s, measured rounds in order):");
    for (title, rows) in &report {
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "  {title}: untraced {}; traced {}",
            list(&rows.untraced),
            list(&rows.traced)
        );
    }
}

/// An engine's measured rounds, per variant.
#[derive(Default)]
struct Rows {
    untraced: Vec<f64>,
    traced: Vec<f64>,
    cpu_untraced: Vec<Option<f64>>,
    cpu_traced: Vec<Option<f64>>,
}

impl Rows {
    fn push(&mut self, variant: Variant, round: &Round) {
        let (jobs_per_s, cpu) = match variant {
            Variant::Untraced => (&mut self.untraced, &mut self.cpu_untraced),
            Variant::Traced => (&mut self.traced, &mut self.cpu_traced),
        };
        jobs_per_s.push(round.jobs_per_s);
        cpu.push(round.cpu_us_per_job);
    }

    fn untraced_cpu(&self) -> Option<f64> {
        Some(median(
            &self
                .cpu_untraced
                .iter()
                .copied()
                .collect::<Option<Vec<_>>>()?,
        ))
    }

    fn traced_cpu(&self) -> Option<f64> {
        Some(median(
            &self
                .cpu_traced
                .iter()
                .copied()
                .collect::<Option<Vec<_>>>()?,
        ))
    }
}
