//! Overhead of `#[traced_spawn]`: plain spawn vs traced spawn (no client, unsampled parent,
//! sampled parent) vs the hand-written sentry pattern, for std threads, tokio tasks spawned from a
//! worker of a multi-thread runtime, tokio tasks on a current-thread runtime, and the capture
//! alone (what the calling thread pays).
//!
//! ```text
//! cargo bench -p traced-spawn-tests --bench overhead              # full run, < 60 s on 2 cores
//! cargo bench -p traced-spawn-tests --bench overhead -- --smoke   # every variant, a few times
//! BENCH_SMOKE=1 cargo bench -p traced-spawn-tests --bench overhead
//! cargo bench -p traced-spawn-tests --bench overhead -- --breakdown   # sentry calls, one by one
//! cargo bench -p traced-spawn-tests --bench overhead -- tokio         # scenarios whose title has "tokio"
//! cargo bench -p traced-spawn-tests --bench overhead -- --profile=unsampled current-thread
//! ```
//!
//! `--profile=WORD` runs only the variants whose name has WORD, batch after batch for 10 s, with
//! no table: a steady load to record with `perf record -e cpu-clock`.
//!
//! The variants of a scenario run interleaved in this one process (see `harness.rs`); the table
//! gives the median over rounds of each variant's per-op time, the ratio of those medians to the
//! reference variant, and (paired) the median over rounds of the per-round ratio.
//! Method and results: `BENCHMARKS.md` at the workspace root.
//!
//! Smoke mode asserts nothing about timing; it asserts (as the full run does) that every body ran
//! and that the sampled variants sent exactly one transaction per op and the unsampled one none,
//! and in addition that every continuation sent is linked to the caller's transaction and that
//! each body ran under the span it should.

mod alloc;
mod breakdown;
mod fixtures;
mod harness;
mod scale;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use sentry::protocol::EnvelopeItem;
use sentry::{Hub, SentryFutureExt, TransactionContext, TransactionOrSpan};
use traced_spawn::{traced_spawn, TraceContext};

use fixtures::{observe, observed, work, Caller, Sampling};
use harness::{interleave, Measured, Plan, Ratio, Variant};

/// The transaction names of the traced fns below: the macro's default, the fn's path. The
/// hand-written variants use the same names.
const THREAD_TX: &str = "overhead::traced_thread";
const TASK_TX: &str = "overhead::traced_task";

// ---------------------------------------------------------------------------------------------
// The operations, one function per variant.

/// Traced std thread, through the macro (default name, thread `traced_thread`, op `thread`).
#[traced_spawn]
fn traced_thread(x: u64) -> u64 {
    work(x)
}

/// Traced tokio task, through the macro (default name, op `task`).
#[traced_spawn]
async fn traced_task(x: u64) -> u64 {
    work(x)
}

fn plain_thread(x: u64) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || work(x))
}

/// A plain thread named like the macro names its threads (diagnostic: the cost of the name).
fn plain_named_thread(x: u64) -> std::thread::JoinHandle<u64> {
    std::thread::Builder::new()
        .name("traced_thread".to_owned())
        .spawn(move || work(x))
        .expect("spawn thread")
}

/// A plain thread whose body allocates once (diagnostic: the first allocation on a new thread sets
/// up the allocator's per-thread state, a cost every traced variant pays and `plain` does not).
fn plain_allocating_thread(x: u64) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || *black_box(Box::new(work(x))))
}

/// The pattern a careful user writes today for a thread.
fn hand_written_thread(x: u64) -> std::thread::JoinHandle<u64> {
    let hub = Hub::current();
    let parent = hub.configure_scope(|s| s.get_span());
    std::thread::spawn(move || {
        let hub = Arc::new(Hub::new_from_top(hub));
        Hub::run(hub, || {
            let ctx = TransactionContext::continue_from_span(THREAD_TX, "thread", parent);
            let tx = sentry::start_transaction(ctx);
            sentry::configure_scope(|s| s.set_span(Some(tx.clone().into())));
            let out = work(x);
            tx.finish();
            out
        })
    })
}

/// The floor sentry 0.49's public API allows for an unsampled parent, thread: one
/// `configure_scope` read on the caller, a forked hub, the body run under it.
fn floor_thread(x: u64) -> std::thread::JoinHandle<u64> {
    let hub = Hub::current();
    black_box(hub.configure_scope(|s| s.get_span()));
    std::thread::spawn(move || Hub::run(Arc::new(Hub::new_from_top(hub)), || work(x)))
}

/// The data a continuation records, for the hand-written pattern that records the same: its status
/// (`ok`: the body of the bench never fails), origin, queue delay, thread id and name.
fn record_same_data(tx: &sentry::TransactionOrSpan, captured_at: Instant) {
    thread_local! {
        static THREAD: (String, Option<String>) = {
            let thread = std::thread::current();
            let id = format!("{:?}", thread.id());
            let id = id
                .strip_prefix("ThreadId(")
                .and_then(|rest| rest.strip_suffix(')'))
                .map_or_else(|| id.clone(), str::to_owned);
            (id, thread.name().map(str::to_owned))
        };
    }
    let TransactionOrSpan::Transaction(tx) = tx else {
        return;
    };
    tx.set_status(sentry::protocol::SpanStatus::Ok);
    tx.set_origin(traced_spawn::data::ORIGIN);
    tx.set_data(
        traced_spawn::data::QUEUE_DELAY_MS,
        (captured_at.elapsed().as_secs_f64() * 1000.0).into(),
    );
    THREAD.with(|(id, name)| {
        tx.set_data(traced_spawn::data::THREAD_ID, id.as_str().into());
        if let Some(name) = name {
            tx.set_data(traced_spawn::data::THREAD_NAME, name.as_str().into());
        }
    });
}

/// The hand-written thread pattern, recording the same data as a continuation (origin, thread id
/// and name, queue delay): its thread is named as the macro names its threads, so that it has a
/// name to record.
fn hand_written_data_thread(x: u64) -> std::thread::JoinHandle<u64> {
    let captured_at = Instant::now();
    let hub = Hub::current();
    let parent = hub.configure_scope(|s| s.get_span());
    let thread = std::thread::Builder::new().name("traced_thread".to_owned());
    let spawned = thread.spawn(move || {
        let hub = Arc::new(Hub::new_from_top(hub));
        Hub::run(hub, || {
            continue_with_data((THREAD_TX, "thread"), parent, captured_at, x)
        })
    });
    spawned.expect("spawn thread")
}

/// The body of the hand-written pattern with the same data, run in the fork: the continuation
/// started, recorded, bound as the active span and finished around the work.
fn continue_with_data(
    (name, op): (&str, &str),
    parent: Option<TransactionOrSpan>,
    captured_at: Instant,
    x: u64,
) -> u64 {
    let ctx = TransactionContext::continue_from_span(name, op, parent);
    let tx = sentry::start_transaction(ctx);
    let tx_or_span: TransactionOrSpan = tx.clone().into();
    record_same_data(&tx_or_span, captured_at);
    sentry::configure_scope(|s| s.set_span(Some(tx_or_span)));
    let out = work(x);
    tx.finish();
    out
}

fn plain_task(x: u64) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move { work(x) })
}

/// The pattern a careful user writes today for a task: the future bound to a forked hub.
fn hand_written_task(x: u64) -> tokio::task::JoinHandle<u64> {
    let hub = Hub::current();
    let parent = hub.configure_scope(|s| s.get_span());
    let hub = Arc::new(Hub::new_from_top(hub));
    tokio::spawn(
        async move {
            let ctx = TransactionContext::continue_from_span(TASK_TX, "task", parent);
            let tx = sentry::start_transaction(ctx);
            sentry::configure_scope(|s| s.set_span(Some(tx.clone().into())));
            let out = work(x);
            tx.finish();
            out
        }
        .bind_hub(hub),
    )
}

/// The floor sentry 0.49's public API allows for an unsampled parent, task: one `configure_scope`
/// read on the caller, `Hub::new_from_top`, the future bound with `bind_hub`.
fn floor_task(x: u64) -> tokio::task::JoinHandle<u64> {
    let hub = Hub::current();
    black_box(hub.configure_scope(|s| s.get_span()));
    tokio::spawn(async move { work(x) }.bind_hub(Arc::new(Hub::new_from_top(hub))))
}

/// Whether the current hub has an enabled client: sentry's `Hub::with_active`, the check that sends
/// work spawned where Sentry is not set up on as plain work.
fn client_check() -> bool {
    Hub::with_active(|_| true)
}

/// Whether `span`'s trace is sent: the sampling decision a continuation takes before it records
/// anything (`is_sampled` is what that question reads; sentry deprecates it as an answer to
/// "was the trace sampled", which headers answer).
#[allow(deprecated)]
fn sampling_decision(span: &Option<TransactionOrSpan>) -> bool {
    span.as_ref().is_some_and(TransactionOrSpan::is_sampled)
}

/// Plain, after the client check every correct continuation takes first (no client: it fails,
/// and the plain future is spawned).
fn checked_plain_task(x: u64) -> tokio::task::JoinHandle<u64> {
    assert!(!black_box(client_check()));
    tokio::spawn(async move { work(x) })
}

/// The floor, plus the two decisions a continuation cannot skip: the client check, and the
/// sampling decision read from the parent span (unsampled: nothing recorded, only the fork bound).
fn checked_floor_task(x: u64) -> tokio::task::JoinHandle<u64> {
    assert!(black_box(client_check()));
    let hub = Hub::current();
    let span = hub.configure_scope(|s| s.get_span());
    assert!(!black_box(sampling_decision(&span)));
    tokio::spawn(async move { work(x) }.bind_hub(Arc::new(Hub::new_from_top(hub))))
}

/// The hand-written task pattern, recording the same data as a continuation.
fn hand_written_data_task(x: u64) -> tokio::task::JoinHandle<u64> {
    let captured_at = Instant::now();
    let hub = Hub::current();
    let parent = hub.configure_scope(|s| s.get_span());
    spawn_with_data(x, captured_at, &hub, parent)
}

/// The hand-written task pattern with the same data, plus the two decisions a continuation cannot
/// skip: the client check and the sampling decision (sampled: the transaction is started).
fn checked_hand_written_data_task(x: u64) -> tokio::task::JoinHandle<u64> {
    let captured_at = Instant::now();
    assert!(black_box(client_check()));
    let hub = Hub::current();
    let parent = hub.configure_scope(|s| s.get_span());
    assert!(black_box(sampling_decision(&parent)));
    spawn_with_data(x, captured_at, &hub, parent)
}

/// The hand-written task pattern with the same data, once the caller's span has been read: the
/// hub forked, the future bound to it, the continuation started, recorded and finished in it.
fn spawn_with_data(
    x: u64,
    captured_at: Instant,
    caller: &Arc<Hub>,
    parent: Option<TransactionOrSpan>,
) -> tokio::task::JoinHandle<u64> {
    let hub = Arc::new(Hub::new_from_top(caller));
    tokio::spawn(
        async move { continue_with_data((TASK_TX, "task"), parent, captured_at, x) }.bind_hub(hub),
    )
}

/// What the hand-written pattern does on the calling thread.
fn hand_written_capture() -> (Arc<Hub>, Option<TransactionOrSpan>) {
    let hub = Hub::current();
    let parent = hub.configure_scope(|s| s.get_span());
    (hub, parent)
}

// ---------------------------------------------------------------------------------------------
// Variants: an operation, run `n` times in a row under the caller's hub, timed as a whole.

type SpawnThread = fn(u64) -> std::thread::JoinHandle<u64>;
type SpawnTask = fn(u64) -> tokio::task::JoinHandle<u64>;

fn thread_variant(name: &'static str, caller: &Rc<Caller>, spawn: SpawnThread) -> Variant {
    let caller = caller.clone();
    Variant::new(name, move |n| {
        Hub::run(caller.hub.clone(), || {
            let mut sum = 0;
            let start = Instant::now();
            for i in 0..n as u64 {
                sum += black_box(spawn(black_box(i)).join().expect("thread panicked"));
            }
            (start.elapsed(), sum)
        })
    })
}

/// Spawned (and awaited) from inside a task running on a worker of the multi-thread runtime, the
/// task bound to the caller's hub.
fn worker_variant(
    name: &'static str,
    rt: &Rc<tokio::runtime::Runtime>,
    caller: &Rc<Caller>,
    spawn: SpawnTask,
) -> Variant {
    let (rt, caller) = (rt.clone(), caller.clone());
    Variant::new(name, move |n| {
        let batch = async move {
            let mut sum = 0;
            let start = Instant::now();
            for i in 0..n as u64 {
                sum += black_box(spawn(black_box(i)).await.expect("task panicked"));
            }
            (start.elapsed(), sum)
        };
        let hub = caller.hub.clone();
        rt.block_on(async move { tokio::spawn(batch.bind_hub(hub)).await })
            .expect("driver task panicked")
    })
}

/// Spawned (and awaited) from the `block_on` future of a current-thread runtime, bound to the
/// caller's hub.
fn current_thread_variant(
    name: &'static str,
    rt: &Rc<tokio::runtime::Runtime>,
    caller: &Rc<Caller>,
    spawn: SpawnTask,
) -> Variant {
    let (rt, caller) = (rt.clone(), caller.clone());
    Variant::new(name, move |n| {
        let batch = async move {
            let mut sum = 0;
            let start = Instant::now();
            for i in 0..n as u64 {
                sum += black_box(spawn(black_box(i)).await.expect("task panicked"));
            }
            (start.elapsed(), sum)
        };
        rt.block_on(batch.bind_hub(caller.hub.clone()))
    })
}

/// `n` captures in a row; the captured values are kept (in a buffer reserved beforehand) and
/// dropped after the clock stops: the drop is paid where the work runs, not by the caller.
fn capture_variant<T: 'static>(
    name: &'static str,
    caller: &Rc<Caller>,
    capture: fn() -> T,
) -> Variant {
    let caller = caller.clone();
    let mut kept: Vec<T> = Vec::new();
    Variant::new(name, move |n| {
        Hub::run(caller.hub.clone(), || {
            kept.reserve(n);
            let start = Instant::now();
            for _ in 0..n {
                kept.push(capture());
            }
            let elapsed = start.elapsed();
            kept.clear();
            (elapsed, (0..n as u64).sum())
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// What a variant's bodies must have run under, and what its client must have received.
#[derive(Clone, Copy)]
enum Expect {
    /// `--breakdown` rows: sentry primitives, nothing to check.
    Unchecked,
    /// Plain spawn / no client: nothing sent, nothing asserted about the span.
    Nothing,
    /// Unsampled parent: no transaction sent; the body runs under the caller's (unsampled) span,
    /// so its errors still link to the caller's trace.
    UnderParent,
    /// A continuation transaction named `name` with op `op`, child of the caller's active span,
    /// sent once per op and active in the body.
    Continuation {
        name: &'static str,
        op: &'static str,
    },
}

struct Scenario {
    title: &'static str,
    variants: Vec<Variant>,
    callers: Vec<Rc<Caller>>,
    expect: Vec<Expect>,
    plan: Plan,
    /// Row the "vs plain" ratio divides by.
    plain: Option<usize>,
    /// Row the "vs hand-written" ratio divides by, and the rows that get that ratio.
    hand_written: Option<(usize, Vec<usize>)>,
    /// Row of the floor for an unsampled parent, and the rows compared with it.
    floor: Option<(usize, Vec<usize>)>,
    /// Row of the hand-written pattern recording the same data, and the rows compared with it.
    with_data: Option<(usize, Vec<usize>)>,
    /// Diagnostic references: the floor (or plain) plus the checks every correct continuation
    /// takes through sentry's public API, each with the rows compared with it.
    checked: Vec<(usize, Vec<usize>)>,
}

struct Callers {
    no_client: Rc<Caller>,
    unsampled: Rc<Caller>,
    sampled: Rc<Caller>,
    hand_written: Rc<Caller>,
    floor: Rc<Caller>,
    with_data: Rc<Caller>,
    checked_with_data: Rc<Caller>,
}

impl Callers {
    /// One caller per variant, so each variant's transport counts only its own transactions.
    fn new(smoke: bool) -> Callers {
        Callers {
            no_client: Rc::new(Caller::new(Sampling::NoClient, smoke)),
            unsampled: Rc::new(Caller::new(Sampling::UnsampledParent, smoke)),
            sampled: Rc::new(Caller::new(Sampling::Sampled, smoke)),
            hand_written: Rc::new(Caller::new(Sampling::Sampled, smoke)),
            floor: Rc::new(Caller::new(Sampling::UnsampledParent, smoke)),
            with_data: Rc::new(Caller::new(Sampling::Sampled, smoke)),
            checked_with_data: Rc::new(Caller::new(Sampling::Sampled, smoke)),
        }
    }
}

fn threads(plan: Plan, smoke: bool) -> Scenario {
    let c = Callers::new(smoke);
    let cont = Expect::Continuation {
        name: THREAD_TX,
        op: "thread",
    };
    Scenario {
        title: "std thread: spawn + join",
        variants: vec![
            thread_variant("plain std::thread::spawn", &c.no_client, plain_thread),
            thread_variant("plain, named thread", &c.no_client, plain_named_thread),
            thread_variant(
                "plain, body allocates once",
                &c.no_client,
                plain_allocating_thread,
            ),
            thread_variant("traced, no client", &c.no_client, traced_thread),
            thread_variant("traced, unsampled parent", &c.unsampled, traced_thread),
            thread_variant("traced, sampled", &c.sampled, traced_thread),
            thread_variant(
                "hand-written, sampled",
                &c.hand_written,
                hand_written_thread,
            ),
            thread_variant("floor, unsampled parent", &c.floor, floor_thread),
            thread_variant(
                "hand-written with the same data, sampled",
                &c.with_data,
                hand_written_data_thread,
            ),
        ],
        callers: vec![
            c.no_client.clone(),
            c.no_client.clone(),
            c.no_client.clone(),
            c.no_client,
            c.unsampled,
            c.sampled,
            c.hand_written,
            c.floor,
            c.with_data,
        ],
        expect: vec![
            Expect::Nothing,
            Expect::Nothing,
            Expect::Nothing,
            Expect::Nothing,
            Expect::UnderParent,
            cont,
            cont,
            Expect::UnderParent,
            cont,
        ],
        plan,
        plain: Some(0),
        hand_written: Some((6, vec![5])),
        floor: Some((7, vec![4])),
        with_data: Some((8, vec![5])),
        checked: Vec::new(),
    }
}

fn task_variants(
    c: &Callers,
    make: impl Fn(&'static str, &Rc<Caller>, SpawnTask) -> Variant,
) -> Vec<Variant> {
    vec![
        make("plain tokio::spawn", &c.no_client, plain_task),
        make("traced, no client", &c.no_client, traced_task),
        make("traced, unsampled parent", &c.unsampled, traced_task),
        make("traced, sampled", &c.sampled, traced_task),
        make("hand-written, sampled", &c.hand_written, hand_written_task),
        make("floor, unsampled parent", &c.floor, floor_task),
        make(
            "hand-written with the same data, sampled",
            &c.with_data,
            hand_written_data_task,
        ),
        make(
            "plain + client check (no client)",
            &c.no_client,
            checked_plain_task,
        ),
        make(
            "floor + client check + sampling decision, unsampled parent",
            &c.floor,
            checked_floor_task,
        ),
        make(
            "hand-written with the same data + client check + sampling decision, sampled",
            &c.checked_with_data,
            checked_hand_written_data_task,
        ),
    ]
}

fn task_scenario(title: &'static str, plan: Plan, c: Callers, variants: Vec<Variant>) -> Scenario {
    let cont = Expect::Continuation {
        name: TASK_TX,
        op: "task",
    };
    Scenario {
        title,
        variants,
        callers: vec![
            c.no_client.clone(),
            c.no_client.clone(),
            c.unsampled,
            c.sampled,
            c.hand_written,
            c.floor.clone(),
            c.with_data,
            c.no_client,
            c.floor,
            c.checked_with_data,
        ],
        expect: vec![
            Expect::Nothing,
            Expect::Nothing,
            Expect::UnderParent,
            cont,
            cont,
            Expect::UnderParent,
            cont,
            Expect::Nothing,
            Expect::UnderParent,
            cont,
        ],
        plan,
        plain: Some(0),
        hand_written: Some((4, vec![3])),
        floor: Some((5, vec![2])),
        with_data: Some((6, vec![3])),
        checked: vec![(7, vec![1]), (8, vec![2]), (9, vec![3])],
    }
}

fn worker_tasks(plan: Plan, smoke: bool, rt: &Rc<tokio::runtime::Runtime>) -> Scenario {
    let c = Callers::new(smoke);
    let variants = task_variants(&c, |name, caller, spawn| {
        worker_variant(name, rt, caller, spawn)
    });
    task_scenario(
        "tokio task from a multi-thread worker: spawn + await",
        plan,
        c,
        variants,
    )
}

fn current_thread_tasks(plan: Plan, smoke: bool, rt: &Rc<tokio::runtime::Runtime>) -> Scenario {
    let c = Callers::new(smoke);
    let variants = task_variants(&c, |name, caller, spawn| {
        current_thread_variant(name, rt, caller, spawn)
    });
    task_scenario(
        "tokio task on a current-thread runtime: spawn + await",
        plan,
        c,
        variants,
    )
}

fn captures(plan: Plan, smoke: bool) -> Scenario {
    let c = Callers::new(smoke);
    Scenario {
        title: "capture only (paid by the calling thread)",
        variants: vec![
            capture_variant(
                "TraceContext::capture, no client",
                &c.no_client,
                TraceContext::capture,
            ),
            capture_variant(
                "TraceContext::capture, unsampled",
                &c.unsampled,
                TraceContext::capture,
            ),
            capture_variant(
                "TraceContext::capture, sampled",
                &c.sampled,
                TraceContext::capture,
            ),
            capture_variant(
                "hand-written capture, sampled",
                &c.hand_written,
                hand_written_capture,
            ),
        ],
        callers: vec![c.no_client, c.unsampled, c.sampled, c.hand_written],
        expect: vec![Expect::Nothing; 4],
        plan,
        plain: None,
        hand_written: Some((3, vec![0, 1, 2])),
        floor: None,
        with_data: None,
        checked: Vec::new(),
    }
}

fn primitives(plan: Plan) -> Scenario {
    let (variants, callers) = breakdown::variants();
    let n = variants.len();
    let expect = vec![Expect::Unchecked; n];
    Scenario {
        title: "sentry primitives (--breakdown)",
        variants,
        callers,
        expect,
        plan,
        plain: None,
        // The last two rows: inline traced continuation vs inline hand-written, sampled.
        hand_written: Some((n - 1, vec![n - 2])),
        floor: None,
        with_data: None,
        checked: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks.

/// The transactions each client received match the ops run: one per op for a continuation, none
/// for an unsampled parent. Checked after every run, smoke or full.
fn check_counts(scenario: &Scenario) {
    for ((variant, caller), expect) in scenario
        .variants
        .iter()
        .zip(&scenario.callers)
        .zip(&scenario.expect)
    {
        let expected = match expect {
            Expect::Unchecked => continue,
            Expect::Continuation { .. } => variant.ops,
            Expect::UnderParent | Expect::Nothing => 0,
        };
        assert_eq!(
            caller.transactions(),
            expected,
            "{} / {}: transactions sent",
            scenario.title,
            variant.name
        );
    }
}

/// Smoke only: every transaction kept is a continuation of the caller's active span, and the
/// bodies run under the span they should.
fn check_links(scenario: &mut Scenario) {
    for ((variant, caller), expect) in scenario
        .variants
        .iter_mut()
        .zip(&scenario.callers)
        .zip(&scenario.expect)
    {
        let what = format!("{} / {}", scenario.title, variant.name);
        observe(true);
        variant.batch(3);
        let seen = observed();
        observe(false);
        let (trace_id, parent_span_id) = (caller.trace_id(), caller.span_id());
        match *expect {
            Expect::Nothing | Expect::Unchecked => {}
            Expect::UnderParent => {
                assert_eq!(seen.len(), 3, "{what}: bodies observed");
                for seen in &seen {
                    let seen =
                        seen.unwrap_or_else(|| panic!("{what}: body ran with no active span"));
                    assert_eq!(
                        seen.trace_id, trace_id,
                        "{what}: body not in the caller's trace"
                    );
                    assert_eq!(
                        seen.span_id, parent_span_id,
                        "{what}: body not under the caller's span"
                    );
                }
            }
            Expect::Continuation { name, op } => {
                assert_eq!(seen.len(), 3, "{what}: bodies observed");
                for seen in &seen {
                    let seen =
                        seen.unwrap_or_else(|| panic!("{what}: body ran with no active span"));
                    assert_eq!(
                        seen.trace_id, trace_id,
                        "{what}: body not in the caller's trace"
                    );
                    assert_eq!(
                        seen.parent_span_id,
                        Some(parent_span_id),
                        "{what}: body's span is not a child of the caller's span"
                    );
                }
                let transport = caller.transport.as_ref().expect("a client");
                let kept = transport.take_kept();
                let mut transactions = 0;
                for item in kept.iter().flat_map(|envelope| envelope.items()) {
                    let EnvelopeItem::Transaction(tx) = item else {
                        continue;
                    };
                    transactions += 1;
                    let Some(sentry::protocol::Context::Trace(trace)) = tx.contexts.get("trace")
                    else {
                        panic!("{what}: transaction without a trace context");
                    };
                    assert_eq!(tx.name.as_deref(), Some(name), "{what}: transaction name");
                    assert_eq!(trace.op.as_deref(), Some(op), "{what}: transaction op");
                    assert_eq!(
                        trace.trace_id, trace_id,
                        "{what}: not in the caller's trace"
                    );
                    assert_eq!(
                        trace.parent_span_id,
                        Some(parent_span_id),
                        "{what}: not a child of the caller's span"
                    );
                }
                assert_eq!(transactions, variant.ops, "{what}: transactions kept");
            }
        }
    }
    check_counts(scenario);
}

/// Smoke only: what `TraceContext::capture` returns under each caller.
fn check_captures(callers: &Callers) {
    let no_client = Hub::run(callers.no_client.hub.clone(), TraceContext::capture);
    assert!(no_client.is_empty(), "no client: the context must be empty");
    let unsampled = Hub::run(callers.unsampled.hub.clone(), TraceContext::capture);
    assert_eq!(
        unsampled.sampled(),
        Some(false),
        "unsampled parent: sampling decision"
    );
    assert_eq!(unsampled.trace_id(), Some(callers.unsampled.trace_id()));
    let sampled = Hub::run(callers.sampled.hub.clone(), TraceContext::capture);
    assert_eq!(
        sampled.sampled(),
        Some(true),
        "sampled parent: sampling decision"
    );
    assert_eq!(sampled.trace_id(), Some(callers.sampled.trace_id()));
    assert_eq!(sampled.parent_span_id(), Some(callers.sampled.span_id()));
}

/// Heap allocations per op of each variant (on every thread, the runtime's workers included), from
/// one batch per variant run with the counting allocator switched on, after the timed rounds.
fn count_allocations(scenario: &mut Scenario) -> Vec<f64> {
    let n = scenario.plan.batch.min(1_000);
    scenario
        .variants
        .iter_mut()
        .map(|variant| {
            alloc::counting(true);
            variant.batch(n);
            let counted = alloc::snapshot();
            alloc::counting(false);
            counted.allocs as f64 / n as f64
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Report.

struct Row {
    scenario: &'static str,
    variant: &'static str,
    median: f64,
    p25: f64,
    p75: f64,
    vs_plain: Option<Ratio>,
    vs_hand_written: Option<Ratio>,
    vs_floor: Option<Ratio>,
    vs_with_data: Option<Ratio>,
    vs_checked: Option<Ratio>,
    /// Heap allocations per op (all threads), from one counted batch after the timed rounds.
    allocs: f64,
}

fn rows(scenario: &Scenario, measured: &[Measured], allocs: &[f64]) -> Vec<Row> {
    let against = |reference: &Option<(usize, Vec<usize>)>, i: usize, m: &Measured| {
        reference
            .as_ref()
            .and_then(|(r, rows)| rows.contains(&i).then(|| m.ratio_to(&measured[*r])))
    };
    measured
        .iter()
        .enumerate()
        .map(|(i, m)| Row {
            vs_floor: against(&scenario.floor, i, m),
            vs_with_data: against(&scenario.with_data, i, m),
            vs_checked: scenario
                .checked
                .iter()
                .find_map(|(r, rows)| rows.contains(&i).then(|| m.ratio_to(&measured[*r]))),
            allocs: allocs[i],
            scenario: scenario.title,
            variant: m.name,
            median: m.median(),
            p25: m.quantile(0.25),
            p75: m.quantile(0.75),
            vs_plain: scenario.plain.map(|p| m.ratio_to(&measured[p])),
            vs_hand_written: scenario
                .hand_written
                .as_ref()
                .and_then(|(hw, rows)| rows.contains(&i).then(|| m.ratio_to(&measured[*hw]))),
        })
        .collect()
}

fn ratio(r: Option<Ratio>) -> String {
    r.map_or_else(
        || "- | -".to_owned(),
        |r| format!("{:.2}x | {:.2}x", r.of_medians, r.paired),
    )
}

fn print_table(rows: &[Row]) {
    println!(
        "| scenario | variant | median ns/op | p25-p75 ns/op | vs plain | (paired) | vs hand-written | (paired) | vs floor | (paired) | vs hand-written with data | (paired) | vs the same + sentry's checks | (paired) | allocs/op |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {} | {:.0} | {:.0}-{:.0} | {} | {} | {} | {} | {} | {:.2} |",
            row.scenario,
            row.variant,
            row.median,
            row.p25,
            row.p75,
            ratio(row.vs_plain),
            ratio(row.vs_hand_written),
            ratio(row.vs_floor),
            ratio(row.vs_with_data),
            ratio(row.vs_checked),
            row.allocs
        );
    }
}

/// The targets (BENCHMARKS.md), read off the rows of this run.
fn print_targets(rows: &[Row]) {
    let find = |scenario: &str, variant: &str| {
        rows.iter()
            .find(|r| r.scenario.starts_with(scenario) && r.variant == variant)
    };
    let mut lines = Vec::new();
    let mut check =
        |what: String, row: Option<&Row>, ratio: fn(&Row) -> Option<Ratio>, limit: f64| {
            // A scenario left out by a filter has no row.
            let Some(value) = row.and_then(ratio) else {
                return;
            };
            let verdict = if value.of_medians <= limit {
                "met"
            } else {
                "not met"
            };
            lines.push(format!(
                "{what}: {:.2}x (paired {:.2}x), target <= {limit:.2}x: {verdict}",
                value.of_medians, value.paired
            ));
        };
    let vs_plain: fn(&Row) -> Option<Ratio> = |r| r.vs_plain;
    let vs_floor: fn(&Row) -> Option<Ratio> = |r| r.vs_floor;
    let vs_with_data: fn(&Row) -> Option<Ratio> = |r| r.vs_with_data;
    let vs_checked: fn(&Row) -> Option<Ratio> = |r| r.vs_checked;
    for (short, scenario) in [
        ("multi-thread", "tokio task from"),
        ("current-thread", "tokio task on"),
    ] {
        check(
            format!("tokio task ({short}) no client vs plain"),
            find(scenario, "traced, no client"),
            vs_plain,
            1.05,
        );
        check(
            format!("tokio task ({short}) unsampled vs floor"),
            find(scenario, "traced, unsampled parent"),
            vs_floor,
            1.10,
        );
        check(
            format!("tokio task ({short}) sampled vs hand-written with the same data"),
            find(scenario, "traced, sampled"),
            vs_with_data,
            1.0,
        );
        check(
            format!("tokio task ({short}) no client vs plain + sentry's client check"),
            find(scenario, "traced, no client"),
            vs_checked,
            1.05,
        );
        check(
            format!("tokio task ({short}) unsampled vs floor + sentry's client check and sampling decision"),
            find(scenario, "traced, unsampled parent"),
            vs_checked,
            1.10,
        );
        check(
            format!(
                "tokio task ({short}) sampled vs hand-written with the same data + the same checks"
            ),
            find(scenario, "traced, sampled"),
            vs_checked,
            1.0,
        );
    }
    check(
        "std thread unsampled vs floor".to_owned(),
        find("std thread", "traced, unsampled parent"),
        vs_floor,
        1.10,
    );
    check(
        "std thread sampled vs hand-written with the same data".to_owned(),
        find("std thread", "traced, sampled"),
        vs_with_data,
        1.0,
    );
    for variant in [
        "traced, no client",
        "traced, unsampled parent",
        "traced, sampled",
    ] {
        check(
            format!("std thread {variant} vs plain"),
            find("std thread", variant),
            vs_plain,
            1.10,
        );
    }
    if lines.is_empty() {
        return;
    }
    println!("\ntargets (ratios of medians, this run):");
    for line in lines {
        println!("  {line}");
    }
}

// ---------------------------------------------------------------------------------------------

/// Runs the variants whose name contains `word`, one batch after another, for 10 s.
fn profile(scenarios: &mut [Scenario], word: &str) {
    let started = Instant::now();
    let mut ops = 0;
    while started.elapsed().as_secs() < 10 {
        for scenario in scenarios.iter_mut() {
            let batch = scenario.plan.batch;
            for variant in scenario
                .variants
                .iter_mut()
                .filter(|v| v.name.contains(word))
            {
                variant.batch(batch);
                ops += batch;
            }
        }
    }
    assert!(ops > 0, "no variant's name contains {word:?}");
    println!(
        "profiled {ops} ops of variants named *{word}* in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke")
        || std::env::var("BENCH_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0");
    let breakdown = std::env::args().any(|a| a == "--breakdown");
    if std::env::args().any(|a| a == "--scale") {
        println!(
            "traced-spawn overhead bench (scale mode{})",
            if cfg!(debug_assertions) {
                ", DEBUG BUILD: numbers meaningless"
            } else {
                ""
            }
        );
        scale::run(smoke);
        return;
    }
    let plan = |warmup_rounds: usize, rounds: usize, batch: usize| {
        if smoke {
            Plan {
                warmup_rounds: 1,
                rounds: 2,
                batch: (batch / 20).max(4),
            }
        } else {
            Plan {
                warmup_rounds,
                rounds,
                batch,
            }
        }
    };
    let started = Instant::now();
    println!(
        "traced-spawn overhead bench ({} mode, {} CPUs available{})",
        if smoke { "smoke" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            ", DEBUG BUILD: numbers meaningless"
        } else {
            ""
        }
    );

    let worker_rt = Rc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("multi-thread runtime"),
    );
    let current_rt = Rc::new(
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("current-thread runtime"),
    );

    let mut scenarios = if breakdown {
        vec![primitives(plan(5, 100, 5_000))]
    } else {
        vec![
            threads(plan(3, 300, 100), smoke),
            worker_tasks(plan(5, 250, 6_000), smoke, &worker_rt),
            current_thread_tasks(plan(5, 250, 8_000), smoke, &current_rt),
            captures(plan(5, 250, 40_000), smoke),
        ]
    };
    // Any other argument that is not a flag selects scenarios by a word of their title.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !filters.is_empty() {
        scenarios.retain(|s| filters.iter().any(|f| s.title.contains(f.as_str())));
    }

    if let Some(word) =
        std::env::args().find_map(|a| a.strip_prefix("--profile=").map(str::to_owned))
    {
        profile(&mut scenarios, &word);
        return;
    }

    let mut all_rows = Vec::new();
    for scenario in &mut scenarios {
        let t = Instant::now();
        let measured = interleave(&mut scenario.variants, scenario.plan);
        eprintln!(
            "  {}: {} rounds ({} warm-up) x {} variants x {} ops in {:.1} s",
            scenario.title,
            scenario.plan.warmup_rounds + scenario.plan.rounds,
            scenario.plan.warmup_rounds,
            scenario.variants.len(),
            scenario.plan.batch,
            t.elapsed().as_secs_f64()
        );
        let allocs = count_allocations(scenario);
        check_counts(scenario);
        if smoke {
            check_links(scenario);
        }
        all_rows.extend(rows(scenario, &measured, &allocs));
    }
    if smoke && !breakdown {
        check_captures(&Callers::new(false));
    }

    println!();
    print_table(&all_rows);
    if !smoke && !breakdown {
        print_targets(&all_rows);
    }
    if !breakdown {
        println!(
            "\nchecks passed: every body ran; sampled variants sent one transaction per op, the unsampled none{}",
            if smoke {
                "; continuations linked to the caller's span"
            } else {
                ""
            }
        );
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
