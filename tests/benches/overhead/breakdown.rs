//! `--breakdown`: the sentry calls a continuation is made of (and tokio's runtime lookup), each timed
//! alone (interleaved like the scenarios), under a caller with a client and a sampled active
//! transaction. This is how the cost of a traced spawn is attributed in BENCHMARKS.md.

use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use sentry::protocol::Value;
use sentry::{Hub, TransactionContext};

use traced_spawn::Builder;

use crate::fixtures::{work, Caller, Sampling};
use crate::harness::Variant;

const TX: &str = "bench::inline";

/// `n` times `op` under the caller's hub; `op` returns a value that is dropped inside the loop.
fn timed<T>(
    name: &'static str,
    caller: &Rc<Caller>,
    mut op: impl FnMut() -> T + 'static,
) -> Variant {
    let caller = caller.clone();
    Variant::new(name, move |n| {
        Hub::run(caller.hub.clone(), || {
            let start = Instant::now();
            for _ in 0..n {
                black_box(op());
            }
            (start.elapsed(), (0..n as u64).sum())
        })
    })
}

/// tokio's `Handle::try_current()` inside `block_on`, outside any task: the check a tokio spawn
/// makes there before anything is captured (inside a task, `tokio::task::try_id()` answers), so
/// that a call outside a runtime panics with the fix.
fn runtime_lookup() -> Variant {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    Variant::new(
        "tokio: Handle::try_current() in block_on (the runtime check outside a task)",
        move |n| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..n {
                    assert!(black_box(tokio::runtime::Handle::try_current()).is_ok());
                }
                (start.elapsed(), (0..n as u64).sum())
            })
        },
    )
}

pub fn variants() -> (Vec<Variant>, Vec<Rc<Caller>>) {
    let sampled = Rc::new(Caller::new(Sampling::Sampled, false));
    let unsampled = Rc::new(Caller::new(Sampling::UnsampledParent, false));
    let no_client = Rc::new(Caller::new(Sampling::NoClient, false));
    let parent = {
        let hub = sampled.hub.clone();
        move || hub.configure_scope(|s| s.get_span())
    };
    let variants = vec![
        timed("Instant::now()", &sampled, Instant::now),
        timed("Hub::current()", &sampled, Hub::current),
        timed(
            "Hub::with_active (the client check), client bound",
            &sampled,
            crate::client_check,
        ),
        timed(
            "no client: Hub::with_active (the client check)",
            &no_client,
            crate::client_check,
        ),
        runtime_lookup(),
        timed("span.is_sampled() (the sampling decision)", &sampled, {
            let span = parent();
            move || crate::sampling_decision(&span)
        }),
        timed(
            "Arc::new(Hub::new_from_top(Hub::current())) (fork)",
            &sampled,
            || Arc::new(Hub::new_from_top(Hub::current())),
        ),
        timed("caller: hub.configure_scope(get_span)", &sampled, || {
            Hub::current().configure_scope(|s| s.get_span())
        }),
        timed("fork + fork.configure_scope(get_span)", &sampled, || {
            let fork = Arc::new(Hub::new_from_top(Hub::current()));
            fork.configure_scope(|s| s.get_span())
        }),
        timed("fork + fork.client()", &sampled, || {
            Arc::new(Hub::new_from_top(Hub::current())).client()
        }),
        timed(
            "continue_from_span(name, op, parent) (sampled)",
            &sampled,
            {
                let parent = parent.clone();
                move || TransactionContext::continue_from_span("bench::x", "task", parent())
            },
        ),
        timed(
            "continue_from_span(\"\", \"\", parent) (no name/op alloc)",
            &sampled,
            {
                let parent = parent.clone();
                move || TransactionContext::continue_from_span("", "", parent()).sampled()
            },
        ),
        timed(
            "parent() alone (caller configure_scope, for the two above)",
            &sampled,
            parent.clone(),
        ),
        timed("start_transaction, dropped unfinished", &sampled, {
            let parent = parent.clone();
            move || {
                sentry::start_transaction(TransactionContext::continue_from_span(
                    "bench::x",
                    "task",
                    parent(),
                ))
            }
        }),
        timed("start_transaction + finish (sent, discarded)", &sampled, {
            let parent = parent.clone();
            move || {
                let tx = sentry::start_transaction(TransactionContext::continue_from_span(
                    "bench::x",
                    "task",
                    parent(),
                ));
                tx.finish();
            }
        }),
        timed(
            "start + set_origin + 3 x set_data + finish (what traced records)",
            &sampled,
            {
                let parent = parent.clone();
                move || {
                    let tx = sentry::start_transaction(TransactionContext::continue_from_span(
                        "bench::x",
                        "task",
                        parent(),
                    ));
                    tx.set_origin("auto.function.traced_spawn");
                    tx.set_data("thread.id", Value::from("17"));
                    tx.set_data("thread.name", Value::from("tokio-runtime-worker"));
                    tx.set_data("spawn.queue_delay_ms", Value::from(0.012));
                    tx.finish();
                }
            },
        ),
        timed(
            "unsampled: fork + fork.configure_scope(get_span)",
            &unsampled,
            || {
                let fork = Arc::new(Hub::new_from_top(Hub::current()));
                fork.configure_scope(|s| s.get_span())
            },
        ),
        timed(
            "inline Builder::run (capture + continuation, no spawn), unsampled",
            &unsampled,
            || Builder::new(TX).run(|| work(1)),
        ),
        timed(
            "inline Builder::run (capture + continuation, no spawn), sampled",
            &sampled,
            || Builder::new(TX).run(|| work(1)),
        ),
        timed(
            "inline hand-written (capture + fork + Hub::run + tx), sampled",
            &sampled,
            || {
                let hub = Hub::current();
                let parent = hub.configure_scope(|s| s.get_span());
                let hub = Arc::new(Hub::new_from_top(hub));
                Hub::run(hub, || {
                    let ctx = TransactionContext::continue_from_span(TX, "thread", parent);
                    let tx = sentry::start_transaction(ctx);
                    sentry::configure_scope(|s| s.set_span(Some(tx.clone().into())));
                    let out = work(1);
                    tx.finish();
                    out
                })
            },
        ),
    ];
    let callers = variants
        .iter()
        .map(|v| {
            if v.name.starts_with("no client") {
                no_client.clone()
            } else if v.name.starts_with("unsampled") || v.name.ends_with("unsampled") {
                unsampled.clone()
            } else {
                sampled.clone()
            }
        })
        .collect();
    (variants, callers)
}
