//! `--scale`: 50,000 tasks in flight at once. For plain / no client / unsampled / sampled / the
//! unsampled floor / an unsampled remote parent: the bytes each in-flight task holds (live heap
//! bytes from the counting allocator, once every task has been polled and is parked), and spawns
//! per second (the spawning calls only) with 1, 2 and 8 callers spawning at once.
//!
//! The remote-parent rows are the usual production shape: each caller is itself the continuation
//! of an incoming request (`sentry-trace` and `baggage` headers of an unsampled trace, a trace of
//! its own per caller), as every service behind a Sentry-instrumented frontend runs.
//! Variants run interleaved, rounds rotate the starting variant; results are medians over rounds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use sentry::{Hub, SentryFutureExt};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use traced_spawn::{traced_spawn, TraceContext};

use crate::alloc;
use crate::fixtures::{work, Caller, Sampling};

/// Tasks that have been polled once (and are parked on the gate, or past it).
static STARTED: AtomicUsize = AtomicUsize::new(0);

async fn wait_then_work(gate: Arc<Semaphore>, x: u64) -> u64 {
    STARTED.fetch_add(1, Ordering::Relaxed);
    // The gate is closed, never given permits: `acquire` returns (an error) once it closes.
    let _closed = gate.acquire().await;
    work(x)
}

fn plain(gate: Arc<Semaphore>, x: u64) -> JoinHandle<u64> {
    tokio::spawn(async move { wait_then_work(gate, x).await })
}

/// The floor for an unsampled parent: one `configure_scope` read, a forked hub, `bind_hub`.
fn floor(gate: Arc<Semaphore>, x: u64) -> JoinHandle<u64> {
    let hub = Hub::current();
    std::hint::black_box(hub.configure_scope(|s| s.get_span()));
    let fork = Arc::new(Hub::new_from_top(hub));
    tokio::spawn(async move { wait_then_work(gate, x).await }.bind_hub(fork))
}

#[traced_spawn]
async fn traced(gate: Arc<Semaphore>, x: u64) -> u64 {
    wait_then_work(gate, x).await
}

type Spawn = fn(Arc<Semaphore>, u64) -> JoinHandle<u64>;

struct ScaleVariant {
    name: &'static str,
    caller: Caller,
    spawn: Spawn,
    /// Each caller spawns from inside the continuation of an incoming request (see the module
    /// docs).
    remote: bool,
    expect_transactions: bool,
    bytes: Vec<f64>,
    /// Spawns per second, per caller count (index into `CALLERS`), one sample per round.
    rates: Vec<Vec<f64>>,
}

const CALLERS: [usize; 3] = [1, 2, 8];

/// Spawns `tasks` tasks from `callers` threads at once under the caller's hub, waits until every
/// task has been polled, then (optionally) reads the live bytes; releases and awaits them all.
/// Returns (spawn phase duration, live bytes per task if counted).
fn one_run(
    rt: &tokio::runtime::Runtime,
    v: &ScaleVariant,
    tasks: usize,
    callers: usize,
    count: bool,
) -> (Duration, Option<f64>) {
    let gate = Arc::new(Semaphore::new(0));
    STARTED.store(0, Ordering::SeqCst);
    let per = tasks / callers;
    let barrier = Arc::new(Barrier::new(callers + 1));
    let threads: Vec<_> = (0..callers)
        .map(|c| {
            let (gate, barrier, hub, handle) = (
                gate.clone(),
                barrier.clone(),
                v.caller.hub.clone(),
                rt.handle().clone(),
            );
            let (spawn, remote) = (v.spawn, v.remote);
            let mut handles = Vec::with_capacity(per);
            std::thread::spawn(move || {
                let _rt = handle.enter();
                Hub::run(hub, || {
                    let mut spawn_all = || {
                        barrier.wait();
                        for i in 0..per {
                            handles.push(spawn(gate.clone(), (c * per + i) as u64));
                        }
                    };
                    if remote {
                        let headers = incoming_request(c);
                        let incoming = TraceContext::from_headers(
                            headers.iter().map(|(name, value)| (*name, value.as_str())),
                        )
                        .expect("valid incoming headers");
                        incoming.run("bench.request", "http.server", spawn_all);
                    } else {
                        spawn_all();
                    }
                });
                barrier.wait();
                handles
            })
        })
        .collect();
    if count {
        alloc::counting(true);
    }
    barrier.wait();
    let start = Instant::now();
    barrier.wait();
    let elapsed = start.elapsed();
    while STARTED.load(Ordering::SeqCst) < per * callers {
        std::thread::sleep(Duration::from_millis(1));
    }
    let bytes = count.then(|| {
        let live = alloc::snapshot().live;
        alloc::counting(false);
        live as f64 / (per * callers) as f64
    });
    gate.close();
    let mut sum = 0;
    for thread in threads {
        for handle in thread.join().expect("caller thread panicked") {
            sum += rt.block_on(handle).expect("task panicked");
        }
    }
    let n = (per * callers) as u64;
    assert_eq!(sum, n * (n - 1) / 2, "{}: wrong outputs", v.name);
    (elapsed, bytes)
}

/// The headers of an unsampled incoming request, a trace of its own for caller `c`, with the
/// dynamic sampling context a Sentry SDK upstream froze.
fn incoming_request(c: usize) -> [(&'static str, String); 2] {
    let trace_id = format!(
        "{:032x}",
        0x5ca1_e000_0000_0000_0000_0000_0000_0000_u128 + c as u128
    );
    [
        ("sentry-trace", format!("{trace_id}-b7ad6b7169203331-0")),
        (
            "baggage",
            format!(
                "sentry-trace_id={trace_id},sentry-public_key=public,sentry-org_id=1,\
                 sentry-release=frontend@1.0.0,sentry-environment=production,\
                 sentry-transaction=GET%20%2Fapi,sentry-sample_rate=0.1,sentry-sampled=false"
            ),
        ),
    ]
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

pub fn run(smoke: bool) {
    let (tasks, rounds) = if smoke { (400, 1) } else { (50_000, 3) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("multi-thread runtime");
    let variant = |name, sampling, spawn: Spawn, expect_transactions| ScaleVariant {
        name,
        caller: Caller::new(sampling, false),
        spawn,
        remote: false,
        expect_transactions,
        bytes: Vec::new(),
        rates: vec![Vec::new(); CALLERS.len()],
    };
    let mut variants = [
        variant("plain tokio::spawn", Sampling::NoClient, plain, false),
        variant("traced, no client", Sampling::NoClient, traced, false),
        variant(
            "traced, unsampled parent",
            Sampling::UnsampledParent,
            traced,
            false,
        ),
        variant("traced, sampled", Sampling::Sampled, traced, true),
        variant(
            "floor, unsampled parent",
            Sampling::UnsampledParent,
            floor,
            false,
        ),
        ScaleVariant {
            remote: true,
            ..variant(
                "traced, unsampled remote parent",
                Sampling::UnsampledParent,
                traced,
                false,
            )
        },
    ];
    let started = Instant::now();
    // One warm-up round, then the measured rounds, the starting variant rotating.
    let count = variants.len();
    for round in 0..=rounds {
        for k in 0..variants.len() {
            let v = &mut variants[(round + k) % count];
            let (_, bytes) = one_run(&rt, v, tasks, 1, true);
            let mut rates = Vec::new();
            for callers in CALLERS {
                let (elapsed, _) = one_run(&rt, v, tasks, callers, false);
                rates.push(tasks as f64 / elapsed.as_secs_f64());
            }
            if round > 0 {
                v.bytes.push(bytes.expect("counted"));
                for (samples, rate) in v.rates.iter_mut().zip(rates) {
                    samples.push(rate);
                }
            }
        }
    }
    let runs = (rounds + 1) * (1 + CALLERS.len());
    for v in &variants {
        let expected = if v.expect_transactions {
            runs * tasks
        } else {
            0
        };
        assert_eq!(
            v.caller.transactions(),
            expected,
            "{}: transactions sent",
            v.name
        );
    }
    eprintln!(
        "  scale: {rounds} rounds (+1 warm-up) x {count} variants x {tasks} in-flight tasks in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let plain_bytes = median(&variants[0].bytes);
    let plain_rates: Vec<f64> = variants[0].rates.iter().map(|r| median(r)).collect();
    println!(
        "\n| scale: {tasks} in-flight tasks | bytes/task | vs plain | spawns/s, 1 caller | vs plain | 2 callers | vs plain | 8 callers | vs plain |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for v in &variants {
        let bytes = median(&v.bytes);
        let mut line = format!(
            "| {} | {bytes:.0} | {:+.0} B |",
            v.name,
            // Rounded first, so that a fraction of a byte below plain prints as +0, not -0.
            (bytes - plain_bytes).round() + 0.0
        );
        for (i, samples) in v.rates.iter().enumerate() {
            let rate = median(samples);
            line += &format!(" {rate:.0} | {:.2}x |", rate / plain_rates[i]);
        }
        println!("{line}");
    }
    println!(
        "(size_of::<sentry::Scope>() = {} B: what a `configure_scope` on a hub whose scope is shared copies)",
        std::mem::size_of::<sentry::Scope>()
    );
    if smoke {
        return;
    }
    let unsampled = &variants[2];
    let remote = &variants[5];
    let extra = median(&unsampled.bytes) - plain_bytes;
    let ratio = median(&unsampled.rates[2]) / plain_rates[2];
    let remote_extra = median(&remote.bytes) - median(&unsampled.bytes);
    let remote_ratios: Vec<f64> = (0..CALLERS.len())
        .map(|i| median(&remote.rates[i]) / median(&unsampled.rates[i]))
        .collect();
    let verdict = |ok: bool| if ok { "met" } else { "not met" };
    println!("\ntargets at scale ({tasks} in-flight tasks, this run):");
    println!(
        "  unsampled bytes per in-flight task vs plain: {extra:+.0} B, target <= +256 B: {}",
        verdict(extra <= 256.0)
    );
    println!(
        "  unsampled spawns/s vs plain, 8 callers: {ratio:.2}x, target >= 0.50x: {}",
        verdict(ratio >= 0.50)
    );
    println!(
        "  remote-parent bytes per in-flight task vs in-process unsampled: {remote_extra:+.0} B, target <= +64 B: {}",
        verdict(remote_extra <= 64.0)
    );
    println!(
        "  remote-parent spawns/s vs in-process unsampled, 1 / 2 / 8 callers: {:.2}x / {:.2}x / {:.2}x, target >= 0.90x (8 callers): {}",
        remote_ratios[0],
        remote_ratios[1],
        remote_ratios[2],
        verdict(remote_ratios[2] >= 0.90)
    );
}
