//! How a user tests their own traced code with sentry's test transport, reliably: the patterns
//! the docs show ("Testing your traced code"), each run 50 times, every run capturing the
//! continuation; and, printed for comparison, what `sentry::test::with_captured_envelopes` alone
//! captures when the test does not wait for the work it leaves running.
//!
//! The code under test is written as a user writes it: a handler that answers at once and leaves
//! a traced thread or task running. Nothing here uses this crate's test helpers.
//!
//! ```text
//! cargo test -p traced-spawn-tests --all-features --test testing_pattern -- --nocapture
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use sentry::protocol::{Context, EnvelopeItem};
use sentry::test::{with_captured_envelopes_options, TestTransport};
use sentry::{ClientOptions, Envelope, Hub, SentryFutureExt as _};
use traced_spawn::traced_spawn;

const RUNS: usize = 50;

// ---------------------------------------------------------------- the code under test

#[traced_spawn]
fn send_answer(question: String) -> usize {
    std::thread::sleep(Duration::from_millis(5));
    question.len()
}

#[traced_spawn]
async fn answer(question: String) -> usize {
    tokio::time::sleep(Duration::from_millis(5)).await;
    question.len()
}

/// Runs `f` in a request transaction bound as the active span, as sentry's tower layer does.
fn in_request<R>(f: impl FnOnce() -> R) -> R {
    let tx = sentry::start_transaction(sentry::TransactionContext::new("POST /ask", "http.server"));
    let previous = sentry::configure_scope(|scope| {
        let previous = scope.get_span();
        scope.set_span(Some(tx.clone().into()));
        previous
    });
    let out = f();
    sentry::configure_scope(|scope| scope.set_span(previous));
    tx.finish();
    out
}

/// A sync handler: answers at once, the answer is sent by a thread nobody joins.
fn handle(question: &str) {
    in_request(|| drop(send_answer(question.to_owned())));
}

/// An async handler: answers at once, the answer is sent by a task nobody awaits.
async fn handle_async(question: &str) {
    in_request(|| drop(answer(question.to_owned())));
}

// ---------------------------------------------------------------- reading what was captured

/// Whether `envelopes` hold the request and the continuation `name`, in the request's trace with
/// the request's span as parent.
fn captured(envelopes: &[Envelope], name: &str) -> bool {
    let trace = |name: &str| {
        envelopes
            .iter()
            .flat_map(|envelope| envelope.items())
            .find_map(|item| match item {
                EnvelopeItem::Transaction(tx) if tx.name.as_deref() == Some(name) => {
                    match tx.contexts.get("trace") {
                        Some(Context::Trace(trace)) => Some(trace.clone()),
                        _ => None,
                    }
                }
                _ => None,
            })
    };
    match (trace("POST /ask"), trace(name)) {
        (Some(request), Some(continuation)) => {
            continuation.trace_id == request.trace_id
                && continuation.parent_span_id == Some(request.span_id)
        }
        _ => false,
    }
}

fn report(shape: &str, hits: usize, started: Instant) {
    eprintln!(
        "[testing_pattern] {shape:<66} captured {hits:>2}/{RUNS} in {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------- the documented patterns

/// Sync test, a thread nobody joins: `flush_blocking` inside `with_captured_envelopes_options`.
fn sync_test() -> Vec<Envelope> {
    with_captured_envelopes_options(
        || {
            handle("why?");
            assert!(traced_spawn::flush_blocking(Duration::from_secs(5)));
        },
        ClientOptions::new().traces_sample_rate(1.0),
    )
}

/// Sync test, a task nobody awaits on a runtime that outlives the closure: `flush().await` in the
/// same `block_on` (it keeps the runtime running the task while it waits, current-thread or not).
fn runtime_test(rt: &tokio::runtime::Runtime) -> Vec<Envelope> {
    with_captured_envelopes_options(
        || {
            rt.block_on(async {
                handle_async("why?").await;
                assert!(traced_spawn::flush(Duration::from_secs(5)).await);
            });
        },
        ClientOptions::new().traces_sample_rate(1.0),
    )
}

/// `#[tokio::test]`: a hub bound by hand to a client on sentry's `TestTransport`, bound to the
/// test's future; `flush().await` inside it; then the transport's envelopes.
async fn tokio_test() -> Vec<Envelope> {
    let transport = TestTransport::new();
    let options = ClientOptions::new()
        .dsn("https://public@sentry.invalid/1")
        .traces_sample_rate(1.0)
        .transport(transport.clone());
    let hub = Arc::new(Hub::new(Some(Arc::new(options.into())), Arc::default()));
    async {
        handle_async("why?").await;
        assert!(traced_spawn::flush(Duration::from_secs(5)).await);
    }
    .bind_hub(hub)
    .await;
    transport.fetch_and_clear_envelopes()
}

#[test]
fn sync_test_with_a_thread_never_joined_captures_every_run() {
    let started = Instant::now();
    let hits = (0..RUNS)
        .filter(|_| captured(&sync_test(), "testing_pattern::send_answer"))
        .count();
    report(
        "sync test, thread never joined, flush_blocking",
        hits,
        started,
    );
    assert_eq!(hits, RUNS);
}

#[test]
fn runtime_outliving_the_closure_with_a_task_never_awaited_captures_every_run() {
    for multi_thread in [false, true] {
        let rt = if multi_thread {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        let started = Instant::now();
        let hits = (0..RUNS)
            .filter(|_| captured(&runtime_test(&rt), "testing_pattern::answer"))
            .count();
        report(
            &format!(
                "runtime outliving the closure ({}), task never awaited, flush",
                if multi_thread {
                    "multi-thread"
                } else {
                    "current-thread"
                }
            ),
            hits,
            started,
        );
        assert_eq!(hits, RUNS);
    }
}

/// The pattern as a user writes it, once.
#[tokio::test]
async fn tokio_test_with_a_task_never_awaited_is_captured() {
    assert!(captured(&tokio_test().await, "testing_pattern::answer"));
}

/// The same test 50 times, each on a fresh runtime of each `#[tokio::test]` flavor (what the
/// attribute expands to).
#[test]
fn tokio_test_with_a_task_never_awaited_captures_every_run() {
    for multi_thread in [false, true] {
        let started = Instant::now();
        let hits = (0..RUNS)
            .filter(|_| {
                let mut builder = if multi_thread {
                    tokio::runtime::Builder::new_multi_thread()
                } else {
                    tokio::runtime::Builder::new_current_thread()
                };
                let envelopes = builder.enable_all().build().unwrap().block_on(tokio_test());
                captured(&envelopes, "testing_pattern::answer")
            })
            .count();
        report(
            &format!(
                "#[tokio::test{}], task never awaited, bound hub + flush",
                if multi_thread {
                    "(flavor = \"multi_thread\")"
                } else {
                    ""
                }
            ),
            hits,
            started,
        );
        assert_eq!(hits, RUNS);
    }
}

// ---------------------------------------------------------------- without the wait (measured)

/// What `with_captured_envelopes_options` alone captures of work the test leaves running: the
/// envelopes are read when the closure returns, and the continuation finishes later. Printed,
/// not asserted (it depends on timing).
#[test]
fn without_flush_the_continuation_is_mostly_missed() {
    let options = || ClientOptions::new().traces_sample_rate(1.0);

    let started = Instant::now();
    let hits = (0..RUNS)
        .filter(|_| {
            let envelopes = with_captured_envelopes_options(|| handle("why?"), options());
            captured(&envelopes, "testing_pattern::send_answer")
        })
        .count();
    report(
        "naive: sync test, thread never joined, no flush",
        hits,
        started,
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let hits = (0..RUNS)
        .filter(|_| {
            let envelopes =
                with_captured_envelopes_options(|| rt.block_on(handle_async("why?")), options());
            captured(&envelopes, "testing_pattern::answer")
        })
        .count();
    report(
        "naive: runtime outliving the closure, task never awaited, no flush",
        hits,
        started,
    );

    // `#[tokio::test]`: the task is awaited, but after the closure returned.
    let started = Instant::now();
    let hits = (0..RUNS)
        .filter(|_| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut task = None;
                    let envelopes = with_captured_envelopes_options(
                        || {
                            in_request(|| task = Some(answer("why?".to_owned())));
                        },
                        options(),
                    );
                    task.unwrap().await.unwrap();
                    captured(&envelopes, "testing_pattern::answer")
                })
        })
        .count();
    report(
        "naive: #[tokio::test], task awaited after the closure",
        hits,
        started,
    );

    // Nothing left running for the other tests' flushes to wait for.
    assert!(traced_spawn::flush_blocking(Duration::from_secs(5)));
}
