//! What feature `tracing` costs a traced spawn: the body run inside the caller's `tracing` span
//! (a span of the crate's, `traced_spawn`, made under the caller's and entered around the body),
//! against the same spawn outside any span, and against the by-hand fix it replaces
//! (`.in_current_span()` / `span.in_scope`, which re-enters the caller's span).
//!
//! ```text
//! cargo bench -p traced-spawn-tests --bench tracing_overhead              # full run, about 20 s
//! cargo bench -p traced-spawn-tests --bench tracing_overhead -- --smoke   # a few rounds
//! ```
//!
//! One process-wide subscriber, as a tracing-first service installs it: sentry-tracing's span
//! layer (filtered only while the "left out of sentry" variant runs) and a fmt layer writing to
//! `io::sink`. Every caller has a sampled
//! transaction bound (`fixtures::Caller`, as in the overhead bench); "in span" variants spawn
//! inside `info_span!("request", request_id)`, which sentry-tracing makes a child span of it.
//! Variants run interleaved (`overhead/harness.rs`): per-op medians, ratios of medians and paired
//! ratios to the first variant of each scenario.

#[path = "overhead/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
#[path = "overhead/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use fixtures::{work, Caller, Sampling};
use harness::{interleave, Plan, Variant};
use sentry::Hub;
use traced_spawn::traced_spawn;
use tracing::Instrument as _;

const THREAD_TX: &str = "tracing_overhead::traced_thread";
const TASK_TX: &str = "tracing_overhead::traced_task";

#[traced_spawn]
fn traced_thread(x: u64) -> u64 {
    work(x)
}

#[traced_spawn]
async fn traced_task(x: u64) -> u64 {
    work(x)
}

/// How a variant's caller stands in `tracing`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Outside any span.
    Outside,
    /// Inside the request's span.
    InSpan,
    /// Inside the request's span, with sentry-tracing's span layer filtered to leave out target
    /// `traced_spawn` (the body's span, of no use to Sentry).
    InSpanFiltered,
    /// Inside the request's span, re-entering it by hand in the body.
    ByHand,
}

/// While set, sentry-tracing's span layer leaves out target `traced_spawn`.
static SKIP_OURS: AtomicBool = AtomicBool::new(false);

/// Runs `f` with [`SKIP_OURS`] set for `place`.
fn placed<R>(place: Place, f: impl FnOnce() -> R) -> R {
    SKIP_OURS.store(place == Place::InSpanFiltered, Ordering::Relaxed);
    let out = f();
    SKIP_OURS.store(false, Ordering::Relaxed);
    out
}

fn request_span() -> tracing::Span {
    tracing::info_span!("request", request_id = 42)
}

fn thread_variant(name: &'static str, how: Place) -> Variant {
    let caller = Rc::new(Caller::new(Sampling::Sampled, false));
    Variant::new(name, move |n| {
        placed(how, || {
            Hub::run(caller.hub.clone(), || {
                let span = if how == Place::Outside {
                    tracing::Span::none()
                } else {
                    request_span()
                };
                let _entered = span.enter();
                let start = Instant::now();
                let mut sum = 0;
                for i in 0..n as u64 {
                    let handle = match how {
                        Place::Outside | Place::InSpan | Place::InSpanFiltered => traced_thread(i),
                        Place::ByHand => {
                            let span = tracing::Span::current();
                            traced_spawn::Builder::new(THREAD_TX)
                                .spawn_thread(move || span.in_scope(|| work(i)))
                        }
                    };
                    sum += handle.join().expect("body ran");
                }
                (start.elapsed(), sum)
            })
        })
    })
}

fn task_variant(name: &'static str, how: Place) -> Variant {
    let caller = Rc::new(Caller::new(Sampling::Sampled, false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    Variant::new(name, move |n| {
        placed(how, || {
            Hub::run(caller.hub.clone(), || {
                let span = if how == Place::Outside {
                    tracing::Span::none()
                } else {
                    request_span()
                };
                // Entered for the whole batch, on the thread that polls the caller: the caller pays
                // nothing per await for being inside it.
                let _entered = span.enter();
                rt.block_on(async {
                    let start = Instant::now();
                    let mut sum = 0;
                    for i in 0..n as u64 {
                        let handle = match how {
                            Place::Outside | Place::InSpan | Place::InSpanFiltered => {
                                traced_task(i)
                            }
                            Place::ByHand => traced_spawn::Builder::new(TASK_TX)
                                .spawn_task(async move { work(i) }.in_current_span()),
                        };
                        sum += handle.await.expect("body ran");
                    }
                    (start.elapsed(), sum)
                })
            })
        })
    })
}

fn report(title: &str, variants: &mut [Variant], plan: Plan) {
    let measured = interleave(variants, plan);
    println!("\n{title}");
    println!(
        "{:<38} {:>12} {:>10} {:>10}",
        "variant", "median/op", "ratio", "paired"
    );
    let reference = &measured[0];
    for m in &measured {
        let ratio = m.ratio_to(reference);
        println!(
            "{:<38} {:>9.0} ns {:>9.3}x {:>9.3}x",
            m.name,
            m.median(),
            ratio.of_medians,
            ratio.paired
        );
    }
}

fn main() {
    let smoke =
        std::env::args().any(|arg| arg == "--smoke") || std::env::var_os("BENCH_SMOKE").is_some();
    {
        use tracing_subscriber::prelude::*;
        let fmt = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(std::io::sink);
        tracing_subscriber::registry()
            .with(sentry::integrations::tracing::SpanLayer::new().with_filter(
                tracing_subscriber::filter::filter_fn(|metadata| {
                    !(SKIP_OURS.load(Ordering::Relaxed) && metadata.target() == "traced_spawn")
                }),
            ))
            .with(fmt)
            .init();
    }
    println!(
        "size_of::<TraceContext>() = {} bytes (feature `tracing` adds one pointer)",
        std::mem::size_of::<traced_spawn::TraceContext>(),
    );
    let (threads, tasks) = if smoke {
        let plan = Plan {
            warmup_rounds: 1,
            rounds: 2,
            batch: 4,
        };
        (plan, plan)
    } else {
        (
            Plan {
                warmup_rounds: 5,
                rounds: 61,
                batch: 200,
            },
            Plan {
                warmup_rounds: 5,
                rounds: 61,
                batch: 2_000,
            },
        )
    };
    report(
        "std thread: spawn + join, sampled parent",
        &mut [
            thread_variant("traced, outside any span", Place::Outside),
            thread_variant("traced, in the request's span", Place::InSpan),
            thread_variant(
                "same, traced_spawn left out of sentry",
                Place::InSpanFiltered,
            ),
            thread_variant("by hand: span.in_scope in body", Place::ByHand),
        ],
        threads,
    );
    report(
        "tokio task (current-thread): spawn + await, sampled parent",
        &mut [
            task_variant("traced, outside any span", Place::Outside),
            task_variant("traced, in the request's span", Place::InSpan),
            task_variant(
                "same, traced_spawn left out of sentry",
                Place::InSpanFiltered,
            ),
            task_variant("by hand: .in_current_span()", Place::ByHand),
        ],
        tasks,
    );
}
