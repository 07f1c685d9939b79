//! Reliability under load, faults and hostile conditions: nothing lost, nothing mixed, nothing left
//! behind.
//!
//! - load: 10,000 traced tasks and 1,000 traced threads from 20 concurrent parents;
//! - faults in bodies: panics, aborts, a runtime shut down with traced work in flight;
//! - faults in Sentry: a closed port and an endpoint that never answers behind sentry's real
//!   HTTP transport, a transport that blocks: the spawning call never waits on them, and
//!   `client.close` stays bounded except where sentry itself waits (see the comments there);
//! - memory: 100,000 traced spawns, resident memory flat, no hub or scope outliving its spawn;
//! - privacy: a secret argument or return value is in no envelope.
//!
//! The tests of this file run one at a time (they measure time and memory). Run with
//! `--nocapture` to see the figures they measure.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use sentry::protocol::{SpanId, SpanStatus, TraceId};
use sentry::{ClientOptions, Envelope, Hub, SentryFutureExt as _, Transport};
use traced_spawn::traced_spawn;
use traced_spawn_tests::{capture, event_trace, in_request, in_span, sampled, tx_trace};

/// The tests of this file measure time and resident memory: they run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Waits (yielding) until `counter` reaches `target`, for at most 10 s.
async fn until(counter: &AtomicUsize, target: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter.load(Ordering::SeqCst) < target {
        assert!(Instant::now() < deadline, "timed out waiting for {target}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn percentile(mut samples: Vec<Duration>, pct: usize) -> Duration {
    samples.sort();
    samples[(samples.len() - 1) * pct / 100]
}

// ---------------------------------------------------------------- 1. load

const TASK_PARENTS: usize = 10;
const TASKS_PER_PARENT: usize = 1_000;
const THREAD_PARENTS: usize = 10;
const THREADS_PER_PARENT: usize = 100;
/// Threads a thread parent has alive at once: 10 parents x 10 = at most 100 body threads.
const THREAD_WAVE: usize = 10;

/// Each body marks its own scope with a tag key unique to it.
fn body_key(kind: &str, parent: usize, body: usize) -> String {
    format!("body.{kind}.{parent}.{body}")
}

#[traced_spawn]
async fn load_task(parent: usize, body: usize) -> usize {
    sentry::configure_scope(|scope| scope.set_tag(&body_key("task", parent, body), body));
    tokio::task::yield_now().await;
    body
}

#[traced_spawn]
fn load_thread(parent: usize, body: usize) -> usize {
    sentry::configure_scope(|scope| scope.set_tag(&body_key("thread", parent, body), body));
    body
}

#[test]
fn load_every_continuation_once_with_its_own_parent_and_scope() {
    let _serial = serial();
    let started = Instant::now();
    let captured = capture(sampled(), || {
        let main = Hub::current();
        // Thread parents: each on its own thread, in its own hub, spawning in waves.
        let thread_parents: Vec<_> = (0..THREAD_PARENTS)
            .map(|parent| {
                let hub = Arc::new(Hub::new_from_top(&main));
                std::thread::spawn(move || {
                    Hub::run(hub, || {
                        sentry::configure_scope(|scope| {
                            scope.set_tag("parent", format!("thread.{parent}"));
                        });
                        in_request(&format!("request.thread.{parent}"), |_| {
                            for wave in (0..THREADS_PER_PARENT).step_by(THREAD_WAVE) {
                                let handles: Vec<_> = (wave..wave + THREAD_WAVE)
                                    .map(|body| load_thread(parent, body))
                                    .collect();
                                for (handle, body) in handles.into_iter().zip(wave..) {
                                    assert_eq!(handle.join().unwrap(), body);
                                }
                            }
                        });
                    });
                })
            })
            .collect();
        // Task parents: each a task in its own hub, on a 2-worker runtime, all at once.
        let rt = runtime(2);
        rt.block_on(async {
            let parents: Vec<_> = (0..TASK_PARENTS)
                .map(|parent| {
                    let hub = Arc::new(Hub::new_from_top(&main));
                    tokio::spawn(
                        async move {
                            sentry::configure_scope(|scope| {
                                scope.set_tag("parent", format!("task.{parent}"));
                            });
                            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                                &format!("request.task.{parent}"),
                                "http.server",
                            ));
                            let handles: Vec<_> = in_span(&tx, || {
                                (0..TASKS_PER_PARENT)
                                    .map(|body| load_task(parent, body))
                                    .collect()
                            });
                            for (handle, body) in handles.into_iter().zip(0..) {
                                assert_eq!(handle.await.unwrap(), body);
                            }
                            tx.finish();
                        }
                        .bind_hub(hub),
                    )
                })
                .collect();
            for parent in parents {
                parent.await.unwrap();
            }
        });
        for parent in thread_parents {
            parent.join().unwrap();
        }
        rt.shutdown_timeout(Duration::from_secs(5));
    });
    let elapsed = started.elapsed();

    // The parents: one transaction each, with only the parent's own tag.
    let mut parents: HashMap<String, (TraceId, SpanId)> = HashMap::new();
    for (kind, count) in [("task", TASK_PARENTS), ("thread", THREAD_PARENTS)] {
        for parent in 0..count {
            let label = format!("{kind}.{parent}");
            let request = captured.only(&format!("request.{label}"));
            assert_eq!(request.tags.get("parent"), Some(&label));
            assert!(
                !request.tags.keys().any(|key| key.starts_with("body.")),
                "a body's tag leaked into its parent {label}: {:?}",
                request.tags
            );
            let trace = tx_trace(request);
            parents.insert(label, (trace.trace_id, trace.span_id));
        }
    }

    // The continuations: each exactly once, hanging from its own parent, with only its own tag.
    let mut span_ids = HashSet::new();
    let mut bodies = HashSet::new();
    for (kind, name, count) in [
        (
            "task",
            "reliability::load_task",
            TASK_PARENTS * TASKS_PER_PARENT,
        ),
        (
            "thread",
            "reliability::load_thread",
            THREAD_PARENTS * THREADS_PER_PARENT,
        ),
    ] {
        let continuations = captured.named(name);
        assert_eq!(continuations.len(), count, "{name} sent");
        for tx in continuations {
            let trace = tx_trace(tx);
            assert!(span_ids.insert(trace.span_id), "{name} sent twice");
            assert_eq!(trace.status, Some(SpanStatus::Ok));
            let keys: Vec<&String> = tx
                .tags
                .keys()
                .filter(|key| key.starts_with("body."))
                .collect();
            assert_eq!(keys.len(), 1, "scopes mixed: {:?}", tx.tags);
            let key = keys[0];
            assert!(bodies.insert(key.clone()), "{key} on two transactions");
            let mut parts = key.split('.').skip(1);
            assert_eq!(parts.next(), Some(kind));
            let parent: usize = parts.next().unwrap().parse().unwrap();
            let label = format!("{kind}.{parent}");
            // Forked from its own parent's scope, linked to its own parent's span.
            assert_eq!(tx.tags.get("parent"), Some(&label), "wrong parent scope");
            let (trace_id, span_id) = parents[&label];
            assert_eq!(trace.trace_id, trace_id, "{key}: wrong trace");
            assert_eq!(trace.parent_span_id, Some(span_id), "{key}: wrong parent");
        }
    }
    assert_eq!(
        bodies.len(),
        TASK_PARENTS * TASKS_PER_PARENT + THREAD_PARENTS * THREADS_PER_PARENT
    );
    eprintln!(
        "[reliability] load: {} task + {} thread continuations from {} parents, each delivered \
         once with its own parent and scope, in {elapsed:?}",
        TASK_PARENTS * TASKS_PER_PARENT,
        THREAD_PARENTS * THREADS_PER_PARENT,
        TASK_PARENTS + THREAD_PARENTS
    );
}

// ---------------------------------------------------------------- 2. faults in bodies

const CRASHING_TASKS: usize = 300;
const ABORTED_STARTED: usize = 150;
const ABORTED_UNSTARTED: usize = 150;
const CRASHING_THREADS: usize = 100;
const CRASHING_BLOCKING: usize = 100;
const CRASHING_RAYON: usize = 50;

#[traced_spawn]
async fn crash_task(id: usize) -> usize {
    tokio::task::yield_now().await;
    panic!("task {id} crashed")
}

#[traced_spawn]
fn crash_thread(id: usize) -> usize {
    panic!("thread {id} crashed")
}

#[traced_spawn(blocking)]
fn crash_blocking(id: usize) -> usize {
    panic!("blocking {id} crashed")
}

#[traced_spawn(rayon)]
fn crash_rayon(id: usize) -> usize {
    panic!("rayon {id} crashed")
}

#[traced_spawn]
async fn hang(started: Arc<AtomicUsize>) {
    started.fetch_add(1, Ordering::SeqCst);
    std::future::pending::<()>().await;
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => panic!("unexpected panic payload {payload:?}"),
    }
}

/// Every continuation named `name`: exactly `count`, each once, each with `status`.
fn finished_once(
    captured: &traced_spawn_tests::Captured,
    name: &str,
    count: usize,
    status: SpanStatus,
) -> HashSet<SpanId> {
    let sent = captured.named(name);
    assert_eq!(sent.len(), count, "{name}");
    let mut span_ids = HashSet::new();
    for tx in sent {
        let trace = tx_trace(tx);
        assert_eq!(trace.status, Some(status), "{name}");
        assert!(span_ids.insert(trace.span_id), "{name} finished twice");
    }
    span_ids
}

#[test]
fn storm_of_panics_and_aborts_finishes_everything_once_and_leaves_no_hub_bound() {
    let _serial = serial();
    let started_at = Instant::now();
    let captured = capture(sampled(), || {
        // One worker: the plain task after the storm runs on the very thread the storm ran on.
        let rt = runtime(1);
        let own_hub = rt.block_on(async { tokio::spawn(async { Hub::current() }).await.unwrap() });
        assert!(
            own_hub.client().is_none(),
            "the worker starts with its own hub"
        );

        let hub = Hub::current();
        rt.block_on(async move {
            tokio::spawn(
                async move {
                    let tx = sentry::start_transaction(sentry::TransactionContext::new(
                        "storm",
                        "http.server",
                    ));
                    let started = Arc::new(AtomicUsize::new(0));
                    let (crashes, unstarted, hanging, threads, blocking, rayon) =
                        in_span(&tx, || {
                            let crashes: Vec<_> = (0..CRASHING_TASKS).map(crash_task).collect();
                            // This task holds the only worker: these cannot have been polled when
                            // they are aborted below.
                            let unstarted: Vec<_> = (0..ABORTED_UNSTARTED)
                                .map(|_| hang(started.clone()))
                                .collect();
                            let hanging: Vec<_> = (0..ABORTED_STARTED)
                                .map(|_| hang(started.clone()))
                                .collect();
                            let threads: Vec<_> = (0..CRASHING_THREADS).map(crash_thread).collect();
                            let blocking: Vec<_> =
                                (0..CRASHING_BLOCKING).map(crash_blocking).collect();
                            let rayon: Vec<_> = (0..CRASHING_RAYON).map(crash_rayon).collect();
                            (crashes, unstarted, hanging, threads, blocking, rayon)
                        });
                    for handle in &unstarted {
                        handle.abort();
                    }
                    until(&started, ABORTED_STARTED).await;
                    for handle in &hanging {
                        handle.abort();
                    }
                    for (id, handle) in crashes.into_iter().enumerate() {
                        let err = handle.await.unwrap_err();
                        assert!(err.is_panic());
                        assert_eq!(
                            panic_message(err.into_panic()),
                            format!("task {id} crashed")
                        );
                    }
                    for handle in unstarted.into_iter().chain(hanging) {
                        assert!(handle.await.unwrap_err().is_cancelled());
                    }
                    for (id, handle) in blocking.into_iter().enumerate() {
                        let err = handle.await.unwrap_err();
                        assert_eq!(
                            panic_message(err.into_panic()),
                            format!("blocking {id} crashed")
                        );
                    }
                    for (id, handle) in threads.into_iter().enumerate() {
                        let payload = handle.join().unwrap_err();
                        assert_eq!(panic_message(payload), format!("thread {id} crashed"));
                    }
                    for (id, handle) in rayon.into_iter().enumerate() {
                        let payload = handle.await.unwrap_err();
                        assert_eq!(panic_message(payload), format!("rayon {id} crashed"));
                    }
                    assert_eq!(started.load(Ordering::SeqCst), ABORTED_STARTED);
                    tx.finish();
                }
                .bind_hub(hub),
            )
            .await
            .unwrap();
        });

        // After the storm, a plain task on the same worker sees the worker's own hub.
        let (after, has_client, has_span) = rt.block_on(async {
            tokio::spawn(async {
                let hub = Hub::current();
                let has_client = hub.client().is_some();
                let has_span = hub.configure_scope(|scope| scope.get_span().is_some());
                (hub, has_client, has_span)
            })
            .await
            .unwrap()
        });
        assert!(
            Arc::ptr_eq(&own_hub, &after),
            "a continuation's hub is still bound on the worker"
        );
        assert!(!has_client, "the test client leaked onto the worker");
        assert!(!has_span, "a span leaked onto the worker");
        rt.shutdown_timeout(Duration::from_secs(5));
    });

    let storm = tx_trace(captured.only("storm"));
    let mut failed = HashSet::new();
    for (name, count) in [
        ("reliability::crash_task", CRASHING_TASKS),
        ("reliability::crash_thread", CRASHING_THREADS),
        ("reliability::crash_blocking", CRASHING_BLOCKING),
        ("reliability::crash_rayon", CRASHING_RAYON),
    ] {
        failed.extend(finished_once(
            &captured,
            name,
            count,
            SpanStatus::InternalError,
        ));
    }
    finished_once(
        &captured,
        "reliability::hang",
        ABORTED_STARTED + ABORTED_UNSTARTED,
        SpanStatus::Cancelled,
    );
    for tx in captured.transactions() {
        let trace = tx_trace(tx);
        assert_eq!(trace.trace_id, storm.trace_id);
        if trace.span_id != storm.span_id {
            assert_eq!(trace.parent_span_id, Some(storm.span_id));
        }
    }
    // Every panic was reported once, linked to the continuation it crashed.
    let events = captured.events();
    assert_eq!(events.len(), failed.len());
    let linked: HashSet<SpanId> = events.iter().map(|e| event_trace(e).span_id).collect();
    assert_eq!(linked, failed);
    eprintln!(
        "[reliability] storm: {} panicking bodies (tasks, threads, blocking, rayon) finished \
         internal_error once with the panic at their JoinHandle, {} aborted tasks ({} never \
         polled) finished cancelled once, the worker's own hub bound afterwards; {:?}",
        failed.len(),
        ABORTED_STARTED + ABORTED_UNSTARTED,
        ABORTED_UNSTARTED,
        started_at.elapsed()
    );
}

const IN_FLIGHT: usize = 200;

#[traced_spawn(local)]
async fn hang_local(started: Arc<AtomicUsize>) {
    started.fetch_add(1, Ordering::SeqCst);
    std::future::pending::<()>().await;
}

#[test]
fn runtime_shutdown_cancels_traced_tasks_in_flight() {
    let _serial = serial();
    let captured = capture(sampled(), || {
        // Started and pending forever when a multi-thread runtime shuts down.
        let rt = runtime(2);
        let hub = Hub::current();
        let started = Arc::new(AtomicUsize::new(0));
        let counter = started.clone();
        rt.block_on(async move {
            tokio::spawn(
                async move {
                    in_request("shutdown.started", |_| {
                        for _ in 0..IN_FLIGHT {
                            drop(hang(counter.clone()));
                        }
                    });
                }
                .bind_hub(hub),
            )
            .await
            .unwrap();
            until(&started, IN_FLIGHT).await;
        });
        let shutdown = Instant::now();
        rt.shutdown_timeout(Duration::from_secs(2));
        let shutdown = shutdown.elapsed();
        eprintln!(
            "[reliability] shutdown_timeout with {IN_FLIGHT} traced tasks pending: {shutdown:?}"
        );
        assert!(shutdown < Duration::from_secs(2));

        // Spawned but never polled when a current-thread runtime is dropped.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let unused = Arc::new(AtomicUsize::new(0));
            in_request("shutdown.unstarted", |_| {
                for _ in 0..IN_FLIGHT {
                    drop(hang(unused.clone()));
                }
            });
        });
        drop(rt);

        // Started and pending forever in a `LocalSet` that is dropped.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let started = Arc::new(AtomicUsize::new(0));
        local.block_on(&rt, async {
            in_request("shutdown.local", |_| {
                for _ in 0..IN_FLIGHT {
                    drop(hang_local(started.clone()));
                }
            });
            while started.load(Ordering::SeqCst) < IN_FLIGHT {
                tokio::task::yield_now().await;
            }
        });
        drop(local);
        drop(rt);
    });
    let local = captured.named("reliability::hang_local");
    assert_eq!(local.len(), IN_FLIGHT);
    let parent = tx_trace(captured.only("shutdown.local"));
    let mut local_ids = HashSet::new();
    for tx in local {
        let trace = tx_trace(tx);
        assert_eq!(trace.status, Some(SpanStatus::Cancelled));
        assert_eq!(trace.parent_span_id, Some(parent.span_id));
        assert!(local_ids.insert(trace.span_id));
    }
    let sent = captured.named("reliability::hang");
    assert_eq!(sent.len(), 2 * IN_FLIGHT);
    let mut span_ids = HashSet::new();
    for request in ["shutdown.started", "shutdown.unstarted"] {
        let parent = tx_trace(captured.only(request));
        let children: Vec<_> = sent
            .iter()
            .map(|tx| tx_trace(tx))
            .filter(|trace| trace.parent_span_id == Some(parent.span_id))
            .collect();
        assert_eq!(children.len(), IN_FLIGHT, "{request}");
        for trace in children {
            assert_eq!(trace.status, Some(SpanStatus::Cancelled));
            assert_eq!(trace.trace_id, parent.trace_id);
            assert!(span_ids.insert(trace.span_id));
        }
    }
    eprintln!(
        "[reliability] runtime shutdown: {IN_FLIGHT} started + {IN_FLIGHT} never-polled traced \
         tasks, and {IN_FLIGHT} local tasks of a dropped LocalSet, each finished cancelled once"
    );
}

// ---------------------------------------------------------------- 3. faults in Sentry

/// Drops every envelope: a client that works, with no cost of delivery.
struct Discard;

impl Transport for Discard {
    fn send_envelope(&self, envelope: Envelope) {
        drop(envelope);
    }
}

const BLOCK: Duration = Duration::from_millis(200);

/// A transport whose `send_envelope` blocks, like a synchronous HTTP call to a slow endpoint.
struct Blocking {
    sent: AtomicUsize,
}

impl Transport for Blocking {
    fn send_envelope(&self, envelope: Envelope) {
        std::thread::sleep(BLOCK);
        drop(envelope);
        self.sent.fetch_add(1, Ordering::SeqCst);
    }
}

fn options_with(transport: Arc<dyn sentry::TransportFactory>, dsn: &str) -> ClientOptions {
    let mut options = ClientOptions::new().traces_sample_rate(1.0);
    options.dsn = Some(dsn.parse().expect("dsn"));
    options.transport = Some(transport);
    options
}

const TEST_DSN: &str = "https://public@sentry.invalid/1";

/// A loopback port nothing listens on.
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// What one run of spawns under a client measured.
struct Spawns {
    task_calls: Vec<Duration>,
    thread_calls: Vec<Duration>,
    bodies: usize,
    /// How long `client.close(Some(timeout))` took, and whether it flushed everything; `None`
    /// when it had not returned [`CLOSE_WATCHDOG`] after its timeout.
    close: Option<(Duration, bool)>,
}

/// How long past its timeout `client.close` is waited for before the fault is removed.
const CLOSE_WATCHDOG: Duration = Duration::from_secs(1);

#[traced_spawn]
async fn fault_task(ran: Arc<AtomicUsize>) {
    ran.fetch_add(1, Ordering::SeqCst);
}

#[traced_spawn]
fn fault_thread(ran: Arc<AtomicUsize>) {
    ran.fetch_add(1, Ordering::SeqCst);
}

/// Spawns `count` traced tasks and `count` traced threads inside a request under a client built
/// from `options`, timing each spawning call; a short pause between spawns lets earlier bodies
/// finish (and hit the transport) while later ones are spawned. Then closes the client with
/// `close_timeout` and times that; `remove_fault` runs after it (or when it has not returned in
/// time), before the client is dropped.
fn spawn_under(
    options: ClientOptions,
    count: usize,
    close_timeout: Duration,
    remove_fault: impl FnOnce(),
) -> Spawns {
    let client = Arc::new(sentry::Client::from(options));
    let hub = Arc::new(Hub::new(Some(client.clone()), Default::default()));
    let ran = Arc::new(AtomicUsize::new(0));
    let rt = runtime(2);
    let (task_calls, thread_calls) = {
        let ran = ran.clone();
        let hub = hub.clone();
        rt.block_on(async move {
            tokio::spawn(
                async move {
                    let tx = sentry::start_transaction(sentry::TransactionContext::new(
                        "request",
                        "http.server",
                    ));
                    let mut task_calls = Vec::with_capacity(count);
                    let mut tasks = Vec::with_capacity(count);
                    let mut thread_calls = Vec::with_capacity(count);
                    let mut threads = Vec::with_capacity(count);
                    for _ in 0..count {
                        in_span(&tx, || {
                            let start = Instant::now();
                            let handle = fault_task(ran.clone());
                            task_calls.push(start.elapsed());
                            tasks.push(handle);
                            let start = Instant::now();
                            let handle = fault_thread(ran.clone());
                            thread_calls.push(start.elapsed());
                            threads.push(handle);
                        });
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    for task in tasks {
                        task.await.unwrap();
                    }
                    for thread in threads {
                        thread.join().unwrap();
                    }
                    tx.finish();
                    (task_calls, thread_calls)
                }
                .bind_hub(hub),
            )
            .await
            .unwrap()
        })
    };
    rt.shutdown_timeout(Duration::from_secs(5));
    let bodies = ran.load(Ordering::SeqCst);
    let (done, closed) = std::sync::mpsc::channel();
    let closer = std::thread::spawn({
        let client = client.clone();
        move || {
            let start = Instant::now();
            let flushed = client.close(Some(close_timeout));
            let _ = done.send((start.elapsed(), flushed));
        }
    });
    let close = closed.recv_timeout(close_timeout + CLOSE_WATCHDOG).ok();
    remove_fault();
    closer.join().unwrap();
    Spawns {
        task_calls,
        thread_calls,
        bodies,
        close,
    }
}

fn report(label: &str, spawns: &Spawns) {
    eprintln!(
        "[reliability] {label:<34} spawn call median/p90: task {:>9.1?} / {:>9.1?}, thread {:>9.1?} / {:>9.1?}; \
         bodies run {}; client.close: {}",
        median(spawns.task_calls.clone()),
        percentile(spawns.task_calls.clone(), 90),
        median(spawns.thread_calls.clone()),
        percentile(spawns.thread_calls.clone(), 90),
        spawns.bodies,
        match spawns.close {
            Some((took, flushed)) => format!("{took:?} (flushed: {flushed})"),
            None => format!("had not returned {CLOSE_WATCHDOG:?} after its timeout"),
        }
    );
}

#[test]
fn the_spawning_call_never_waits_on_sentry() {
    let _serial = serial();
    const COUNT: usize = 24;
    const CLOSE: Duration = Duration::from_secs(1);
    const MARGIN: Duration = Duration::from_millis(500);
    // Far below the transport's block time, far above a spawn (tens of microseconds).
    const SPAWN_BUDGET: Duration = Duration::from_millis(20);

    let check = |label: &str, spawns: &Spawns, close_is_bounded: bool| {
        report(label, spawns);
        assert_eq!(spawns.bodies, 2 * COUNT, "{label}: not every body ran");
        let task = median(spawns.task_calls.clone());
        let thread = median(spawns.thread_calls.clone());
        assert!(task < SPAWN_BUDGET, "{label}: task spawn median {task:?}");
        assert!(
            thread < SPAWN_BUDGET,
            "{label}: thread spawn median {thread:?}"
        );
        let took = spawns.close.map(|(took, _)| took);
        assert!(
            !close_is_bounded || took.is_some_and(|took| took <= CLOSE + MARGIN),
            "{label}: client.close({CLOSE:?}) took {took:?}"
        );
    };

    // Without a fault.
    let healthy = spawn_under(
        options_with(Arc::new(Arc::new(Discard)), TEST_DSN),
        COUNT,
        CLOSE,
        || {},
    );
    check("no fault (discarding transport)", &healthy, true);

    // Sentry's HTTP transport (ureq with this crate's features alone, reqwest when the workspace
    // enables it too), nothing listening.
    eprintln!(
        "[reliability] sentry's HTTP transport: {}",
        std::any::type_name::<sentry::transports::HttpTransport>()
    );
    let dsn = format!("http://public@{}/1", closed_port());
    let refused = spawn_under(
        options_with(Arc::new(sentry::transports::DefaultTransportFactory), &dsn),
        COUNT,
        CLOSE,
        || {},
    );
    check("HTTP transport, closed port", &refused, true);

    // Sentry's HTTP transport, a listener that never accepts nor answers: every request hangs.
    // Closing the listener afterwards resets the hung connections, so the transport thread ends.
    // Spawning is unaffected; `client.close` is not bounded here, by sentry itself: it drops the
    // transport, whose drop joins the transport thread, which waits on a request that has no
    // timeout (the default ureq/reqwest clients set none). Printed, not asserted.
    let black_hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let dsn = format!("http://public@{}/1", black_hole.local_addr().unwrap());
    let hanging = spawn_under(
        options_with(Arc::new(sentry::transports::DefaultTransportFactory), &dsn),
        COUNT,
        CLOSE,
        move || drop(black_hole),
    );
    check("HTTP transport, endpoint never answers", &hanging, false);

    // A transport whose `send_envelope` blocks 200 ms (on whichever thread finishes a
    // transaction: the body's, not the spawner's).
    let blocking = Arc::new(Blocking {
        sent: AtomicUsize::new(0),
    });
    let slow = spawn_under(
        options_with(Arc::new(blocking.clone()), TEST_DSN),
        COUNT,
        CLOSE,
        || {},
    );
    check("transport blocking 200 ms per send", &slow, true);
    // Each continuation and the request were handed to the transport.
    assert_eq!(blocking.sent.load(Ordering::SeqCst), 2 * COUNT + 1);
    let slow_median = median(slow.task_calls.clone()).max(median(slow.thread_calls.clone()));
    assert!(
        slow_median * 10 < BLOCK,
        "spawn median {slow_median:?} vs block {BLOCK:?}"
    );
}

#[test]
fn client_close_with_blocked_sends_in_flight_stays_bounded() {
    let _serial = serial();
    const THREADS: usize = 8;
    const CLOSE: Duration = Duration::from_millis(50);
    const MARGIN: Duration = Duration::from_millis(300);
    let blocking = Arc::new(Blocking {
        sent: AtomicUsize::new(0),
    });
    let client = Arc::new(sentry::Client::from(options_with(
        Arc::new(blocking.clone()),
        TEST_DSN,
    )));
    let hub = Arc::new(Hub::new(Some(client.clone()), Default::default()));
    let ran = Arc::new(AtomicUsize::new(0));
    // No request transaction: the continuations continue the scope's propagation context.
    let threads: Vec<_> = Hub::run(hub, || {
        (0..THREADS).map(|_| fault_thread(ran.clone())).collect()
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while ran.load(Ordering::SeqCst) < THREADS {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    // Every body has run; their transactions are now blocked in `send_envelope`.
    std::thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    let flushed = client.close(Some(CLOSE));
    let took = start.elapsed();
    for thread in threads {
        thread.join().unwrap();
    }
    eprintln!(
        "[reliability] client.close({CLOSE:?}) with {THREADS} sends blocked 200 ms in flight: \
         {took:?} (flushed: {flushed}); {} envelopes handed to the transport",
        blocking.sent.load(Ordering::SeqCst)
    );
    // sentry holds its transport lock for reading during `send_envelope` and takes it for
    // writing to close: close waits for the sends in flight, once, then for its own timeout.
    assert!(took <= CLOSE + BLOCK + MARGIN, "client.close took {took:?}");
    assert_eq!(blocking.sent.load(Ordering::SeqCst), THREADS);
}

// ---------------------------------------------------------------- 4. memory

const SPAWNS: usize = 100_000;
const WARM_UP: usize = 10_000;
const BATCH: usize = 1_000;
/// Every this many spawns, the body hands out a weak reference to its hub.
const WEAK_EVERY: usize = 100;

static ARGS_DROPPED: AtomicUsize = AtomicUsize::new(0);
static SCOPES_DROPPED: AtomicUsize = AtomicUsize::new(0);

/// Counts its drops in the given counter.
struct Tracked(&'static AtomicUsize);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[traced_spawn]
async fn tiny(arg: Tracked, keep_weak: bool) -> Option<Weak<Hub>> {
    let _arg = arg;
    // Ties a drop counter to the body's scope: it drops when the last copy of the scope does.
    let in_scope = Tracked(&SCOPES_DROPPED);
    sentry::configure_scope(move |scope| {
        scope.add_event_processor(move |event| {
            let _ = &in_scope;
            Some(event)
        });
    });
    keep_weak.then(|| Arc::downgrade(&Hub::current()))
}

/// Resident set size in bytes: `VmRSS` of `/proc/self/status` (the resident pages of
/// `/proc/self/statm`, in kB, so no page size needs to be known).
fn resident() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: usize = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

#[test]
fn a_hundred_thousand_spawns_keep_memory_flat_and_leave_nothing_alive() {
    let _serial = serial();
    const MIB: f64 = 1024.0 * 1024.0;
    const MAX_GROWTH: usize = 16 << 20;
    let client = Arc::new(sentry::Client::from(options_with(
        Arc::new(Arc::new(Discard)),
        TEST_DSN,
    )));
    let hub = Arc::new(Hub::new(Some(client), Default::default()));
    let rt = runtime(2);
    let started = Instant::now();
    let (weak_hubs, after_warm_up, at_end, checkpoints) = rt.block_on(
        async move {
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "request",
                "http.server",
            ));
            let mut weak_hubs = Vec::new();
            let mut after_warm_up = 0;
            let mut checkpoints = Vec::new();
            for batch in (0..SPAWNS).step_by(BATCH) {
                let handles: Vec<_> = in_span(&tx, || {
                    (batch..batch + BATCH)
                        .map(|i| tiny(Tracked(&ARGS_DROPPED), i.is_multiple_of(WEAK_EVERY)))
                        .collect()
                });
                for handle in handles {
                    weak_hubs.extend(handle.await.unwrap());
                }
                let done = batch + BATCH;
                if done.is_multiple_of(10_000) {
                    let rss = resident();
                    checkpoints.push((done, rss));
                    if done == WARM_UP {
                        after_warm_up = rss;
                    }
                }
            }
            tx.finish();
            (weak_hubs, after_warm_up, resident(), checkpoints)
        }
        .bind_hub(hub),
    );
    let elapsed = started.elapsed();
    rt.shutdown_timeout(Duration::from_secs(5));

    let figures: Vec<String> = checkpoints
        .iter()
        .map(|(done, rss)| format!("{}k: {:.1}", done / 1000, *rss as f64 / MIB))
        .collect();
    eprintln!(
        "[reliability] memory: {SPAWNS} sampled traced tasks in {elapsed:?}; resident MiB after \
         {}",
        figures.join(", ")
    );
    let growth = at_end.saturating_sub(after_warm_up);
    eprintln!(
        "[reliability] memory: resident after {WARM_UP} warm-up spawns {:.1} MiB, after {SPAWNS} \
         {:.1} MiB, growth {:.2} MiB",
        after_warm_up as f64 / MIB,
        at_end as f64 / MIB,
        growth as f64 / MIB
    );
    assert!(
        growth < MAX_GROWTH,
        "resident memory grew {:.1} MiB over {} spawns",
        growth as f64 / MIB,
        SPAWNS - WARM_UP
    );
    // Nothing a spawn made outlives it: its hub, its scope, its arguments.
    assert_eq!(weak_hubs.len(), SPAWNS / WEAK_EVERY);
    let alive = weak_hubs
        .iter()
        .filter(|weak| weak.upgrade().is_some())
        .count();
    assert_eq!(alive, 0, "continuation hubs still alive");
    assert_eq!(
        ARGS_DROPPED.load(Ordering::SeqCst),
        SPAWNS,
        "arguments not dropped"
    );
    assert_eq!(
        SCOPES_DROPPED.load(Ordering::SeqCst),
        SPAWNS,
        "body scopes still alive"
    );
    eprintln!(
        "[reliability] memory: 0 of {} sampled continuation hubs alive, {SPAWNS} of {SPAWNS} \
         argument and body-scope drop counters fired",
        weak_hubs.len()
    );
}

// ---------------------------------------------------------------- 7. privacy

/// An error that carries the secret but does not display it.
#[derive(Debug)]
struct AuthError {
    token: String,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("authentication failed")
    }
}

impl std::error::Error for AuthError {}

#[traced_spawn]
fn secret_thread(token: String) -> String {
    token
}

#[traced_spawn]
async fn secret_task(token: String) -> String {
    token
}

#[traced_spawn(blocking)]
fn secret_blocking(token: String) -> String {
    token
}

#[traced_spawn(rayon)]
fn secret_rayon(token: String) -> String {
    token
}

#[traced_spawn(err)]
fn secret_err_thread(token: String) -> Result<(), AuthError> {
    Err(AuthError { token })
}

#[traced_spawn(err)]
async fn secret_err_task(token: String) -> Result<(), AuthError> {
    Err(AuthError { token })
}

#[traced_spawn]
fn secret_panic_thread(token: String) -> String {
    if !token.is_empty() {
        panic!("the token was rejected");
    }
    token
}

#[traced_spawn]
async fn secret_panic_task(token: String) -> String {
    if !token.is_empty() {
        panic!("the token was rejected");
    }
    token
}

fn envelope_bytes(envelopes: &[Envelope]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for envelope in envelopes {
        envelope.to_writer(&mut bytes).expect("serialize envelope");
        bytes.push(b'\n');
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn secret_arguments_and_return_values_reach_no_envelope() {
    let _serial = serial();
    // Made at run time, so it is nowhere in the binary either.
    let secret = format!("tok-{:x}-{}", std::process::id(), "s3cr3t-pa55w0rd");

    // The search finds the secret when it is sent.
    let control = capture(sampled(), || {
        sentry::capture_message(&secret, sentry::Level::Error);
    });
    assert!(contains(&envelope_bytes(&control.envelopes), &secret));

    let token = secret.clone();
    let captured = capture(sampled(), move || {
        in_request("request", |_| {
            assert_eq!(secret_thread(token.clone()).join().unwrap(), token);
            let err = secret_err_thread(token.clone())
                .join()
                .unwrap()
                .unwrap_err();
            assert_eq!(err.token, token);
            assert!(secret_panic_thread(token.clone()).join().is_err());
            assert_eq!(secret_rayon(token.clone()).join().unwrap(), token);
        });
        let hub = Hub::current();
        let token = token.clone();
        runtime(2).block_on(
            async move {
                let tx = sentry::start_transaction(sentry::TransactionContext::new(
                    "request.async",
                    "http.server",
                ));
                let (value, err, panicked, blocking) = in_span(&tx, || {
                    (
                        secret_task(token.clone()),
                        secret_err_task(token.clone()),
                        secret_panic_task(token.clone()),
                        secret_blocking(token.clone()),
                    )
                });
                assert_eq!(value.await.unwrap(), token);
                assert_eq!(err.await.unwrap().unwrap_err().token, token);
                assert!(panicked.await.unwrap_err().is_panic());
                assert_eq!(blocking.await.unwrap(), token);
                tx.finish();
            }
            .bind_hub(hub),
        );
    });

    for name in [
        "secret_thread",
        "secret_task",
        "secret_blocking",
        "secret_rayon",
        "secret_err_thread",
        "secret_err_task",
        "secret_panic_thread",
        "secret_panic_task",
    ] {
        captured.only(&format!("reliability::{name}"));
    }
    // The two `err` events and the two panics.
    assert_eq!(captured.events().len(), 4);
    let bytes = envelope_bytes(&captured.envelopes);
    assert!(
        !contains(&bytes, &secret),
        "the secret left the process:\n{}",
        String::from_utf8_lossy(&bytes)
    );
    eprintln!(
        "[reliability] privacy: {} envelopes ({} bytes, {} transactions, {} events) searched, \
         secret found 0 times",
        captured.envelopes.len(),
        bytes.len(),
        captured.transactions().len(),
        captured.events().len()
    );
}
