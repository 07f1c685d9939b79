//! `flush` / `flush_blocking` at the end of `main`: the shapes apps have, with sentry's guard
//! inside `main`, so the client is closed when `main` returns. Each test is an app of its own:
//! the in-flight count is process-wide, so they run one at a time.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sentry::protocol::{EnvelopeItem, SpanStatus};
use sentry::test::TestTransport;
use traced_spawn::traced_spawn;

/// One app at a time.
fn exclusive() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `sentry::init` as an app does it, on a transport the test reads after the guard is gone.
fn init(transport: &Arc<TestTransport>) -> sentry::ClientInitGuard {
    let transport = transport.clone();
    sentry::init(
        sentry::ClientOptions::new()
            .dsn("https://public@o1.ingest.sentry.io/1")
            .traces_sample_rate(1.0)
            .transport(move |_: &sentry::ClientOptions| {
                transport.clone() as Arc<dyn sentry::Transport>
            }),
    )
}

/// Name and status of every transaction the app sent.
fn sent(transport: &TestTransport) -> Vec<(String, Option<SpanStatus>)> {
    let mut sent: Vec<_> = transport
        .fetch_and_clear_envelopes()
        .iter()
        .flat_map(|envelope| envelope.items())
        .filter_map(|item| match item {
            EnvelopeItem::Transaction(tx) => Some((
                tx.name.clone().unwrap_or_default(),
                tx.contexts.get("trace").and_then(|trace| match trace {
                    sentry::protocol::Context::Trace(trace) => trace.status,
                    _ => None,
                }),
            )),
            _ => None,
        })
        .collect();
    sent.sort_by(|a, b| a.0.cmp(&b.0));
    sent
}

#[traced_spawn]
async fn answer(question: String) -> usize {
    tokio::time::sleep(Duration::from_millis(100)).await;
    question.len()
}

#[traced_spawn]
fn report(text: String) -> usize {
    std::thread::sleep(Duration::from_millis(100));
    text.len()
}

#[traced_spawn]
async fn forever() {
    std::future::pending::<()>().await;
}

/// `#[tokio::main]` as it expands: the runtime outlives `main`'s body, and with it the guard.
fn tokio_main(multi_thread: bool, body: impl std::future::Future<Output = ()>) {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().unwrap().block_on(body);
}

fn a_task_never_awaited(multi_thread: bool, flush: bool) -> Vec<(String, Option<SpanStatus>)> {
    let transport = TestTransport::new();
    tokio_main(multi_thread, async {
        let _guard = init(&transport);
        let request =
            sentry::start_transaction(sentry::TransactionContext::new("POST /ask", "http.server"));
        sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
        drop(answer("why?".into())); // the handler answers at once
        request.finish();
        if flush {
            assert!(traced_spawn::flush(Duration::from_secs(10)).await);
        }
    });
    sent(&transport)
}

#[test]
fn current_thread_main_loses_the_task_without_flush_and_sends_it_with() {
    let _one = exclusive();
    let lost = a_task_never_awaited(false, false);
    assert_eq!(lost, [("POST /ask".to_owned(), None)]);
    let kept = a_task_never_awaited(false, true);
    assert_eq!(
        kept,
        [
            ("POST /ask".to_owned(), None),
            ("flush::answer".to_owned(), Some(SpanStatus::Ok)),
        ]
    );
}

#[test]
fn multi_thread_main_sends_the_task_with_flush() {
    let _one = exclusive();
    let kept = a_task_never_awaited(true, true);
    assert_eq!(
        kept,
        [
            ("POST /ask".to_owned(), None),
            ("flush::answer".to_owned(), Some(SpanStatus::Ok)),
        ]
    );
}

#[test]
fn a_thread_never_joined_is_sent_with_flush_blocking() {
    let _one = exclusive();
    let transport = TestTransport::new();
    {
        let _guard = init(&transport);
        let request = sentry::start_transaction(sentry::TransactionContext::new(
            "POST /report",
            "http.server",
        ));
        sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
        drop(report("done".into()));
        request.finish();
        assert!(traced_spawn::flush_blocking(Duration::from_secs(10)));
    }
    assert_eq!(
        sent(&transport),
        [
            ("POST /report".to_owned(), None),
            ("flush::report".to_owned(), Some(SpanStatus::Ok)),
        ]
    );
}

#[test]
fn a_body_that_never_ends_gives_false_at_the_timeout() {
    let _one = exclusive();
    let transport = TestTransport::new();
    let mut waited = Duration::ZERO;
    tokio_main(true, async {
        let _guard = init(&transport);
        let request =
            sentry::start_transaction(sentry::TransactionContext::new("GET /hang", "http.server"));
        sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
        drop(forever());
        request.finish();
        let started = Instant::now();
        assert!(!traced_spawn::flush(Duration::from_millis(300)).await);
        waited = started.elapsed();
    });
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "flush returned after {waited:?}"
    );
    // What finished was still flushed.
    assert_eq!(sent(&transport), [("GET /hang".to_owned(), None)]);
}

#[test]
fn with_nothing_in_flight_flush_returns_at_once() {
    let _one = exclusive();
    let started = Instant::now();
    assert!(traced_spawn::flush_blocking(Duration::from_secs(10)));
    assert!(started.elapsed() < Duration::from_secs(2));
}
