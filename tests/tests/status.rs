//! Status: how the end of a traced body becomes its continuation's status. `Ok` is `ok`; an `Err`
//! is `internal_error`, with `err` also an error event linked to the continuation (for every error
//! type services return); a panic is `internal_error` with a panic event, and reaches the handle;
//! an aborted task or a future dropped unpolled is `cancelled`, with the spans its body had open
//! sent inside it; a status the body set is kept. A tokio executor called outside a runtime panics
//! at the caller's line and sends nothing for the work that never started.

use std::time::Duration;

use sentry::protocol::SpanStatus;
use traced_spawn::classify::Verdict;
use traced_spawn::{traced_spawn, Builder, TraceContext};
use traced_spawn_tests::{
    assert_linked, capture, event_trace, in_request, on_local_set, on_worker, sampled, tx_trace,
    BotError,
};

// std threads: `#[traced_spawn]` on sync fns.

#[traced_spawn]
fn generate(question: String) -> Result<usize, BotError> {
    std::thread::sleep(std::time::Duration::from_millis(2));
    if question.is_empty() {
        return Err(BotError("empty question"));
    }
    Ok(question.len())
}

#[traced_spawn]
fn explode(message: &'static str) -> u32 {
    panic!("{message}")
}

#[test]
fn panic_fails_the_continuation_and_reaches_the_join_handle() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            let payload = explode("engine crashed").join().unwrap_err();
            assert_eq!(
                payload.downcast_ref::<String>().map(String::as_str),
                Some("engine crashed")
            );
        });
    });
    let cont = tx_trace(captured.only("status::explode"));
    assert_eq!(cont.status, Some(SpanStatus::InternalError));
    let events = captured.events();
    assert_eq!(events.len(), 1, "one panic event");
    let panic_trace = event_trace(events[0]);
    assert_eq!(panic_trace.trace_id, cont.trace_id);
    assert_eq!(panic_trace.span_id, cont.span_id);
}

#[test]
fn err_fails_the_continuation() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            assert_eq!(
                generate(String::new()).join().unwrap(),
                Err(BotError("empty question"))
            );
        });
    });
    let cont = tx_trace(captured.only("status::generate"));
    assert_eq!(cont.status, Some(SpanStatus::InternalError));
    assert!(captured.events().is_empty(), "no event without `err`");
}

/// `#[traced_spawn]` on async fns: tokio tasks, spawned from a worker of a multi-thread runtime.
mod tasks {
    use std::time::Duration;

    use sentry::protocol::SpanStatus;
    use traced_spawn::traced_spawn;
    use traced_spawn_tests::{capture, event_trace, in_request, on_worker, sampled, tx_trace};

    #[traced_spawn]
    async fn generate(question: String) -> Result<usize, String> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        if question.is_empty() {
            return Err("empty question".to_owned());
        }
        Ok(question.len())
    }

    #[traced_spawn]
    async fn explode() -> u32 {
        tokio::task::yield_now().await;
        panic!("task crashed")
    }

    #[test]
    fn panic_fails_the_continuation_and_reaches_the_join_handle() {
        let captured = capture(sampled(), || {
            on_worker(async {
                let handle = in_request("request", |_| explode());
                let err = handle.await.unwrap_err();
                assert!(err.is_panic());
                let payload = err.into_panic();
                assert_eq!(payload.downcast_ref::<&str>(), Some(&"task crashed"));
            });
        });
        let cont = tx_trace(captured.only("status::tasks::explode"));
        assert_eq!(cont.status, Some(SpanStatus::InternalError));
        let events = captured.events();
        assert_eq!(events.len(), 1);
        assert_eq!(event_trace(events[0]).trace_id, cont.trace_id);
        assert_eq!(event_trace(events[0]).span_id, cont.span_id);
    }

    #[test]
    fn err_fails_the_continuation() {
        let captured = capture(sampled(), || {
            on_worker(async {
                let handle = in_request("request", |_| generate(String::new()));
                assert!(handle.await.unwrap().is_err());
            });
        });
        assert_eq!(
            tx_trace(captured.only("status::tasks::generate")).status,
            Some(SpanStatus::InternalError)
        );
    }

    #[traced_spawn]
    async fn forever() {
        std::future::pending::<()>().await;
    }

    #[test]
    fn abort_cancels_the_continuation() {
        let captured = capture(sampled(), || {
            on_worker(async {
                let handle = in_request("request", |_| forever());
                tokio::time::sleep(Duration::from_millis(20)).await;
                handle.abort();
                assert!(handle.await.unwrap_err().is_cancelled());
            });
        });
        assert_eq!(
            tx_trace(captured.only("status::tasks::forever")).status,
            Some(SpanStatus::Cancelled)
        );
    }

    #[test]
    fn abort_before_first_poll_is_still_recorded_as_cancelled() {
        let captured = capture(sampled(), || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async {
                // On a current-thread runtime the task cannot start before this task yields.
                let handle = in_request("request", |_| forever());
                handle.abort();
                assert!(handle.await.unwrap_err().is_cancelled());
            });
        });
        let request = tx_trace(captured.only("request"));
        let cont = tx_trace(captured.only("status::tasks::forever"));
        assert_eq!(cont.status, Some(SpanStatus::Cancelled));
        assert_eq!(cont.parent_span_id, Some(request.span_id));
    }
}

// tokio's blocking pool, a `LocalSet`, rayon's pool.

#[traced_spawn(blocking)]
fn query(sql: &'static str) -> Result<usize, std::io::Error> {
    std::thread::sleep(Duration::from_millis(2));
    if sql.is_empty() {
        return Err(std::io::Error::other("empty query"));
    }
    Ok(sql.len())
}

#[test]
fn blocking_err_and_panic_fail() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let failed = in_request("request", |_| query(""));
            assert!(failed.await.unwrap().is_err());
        });
    });
    assert_eq!(
        assert_linked(&captured, "status::query").status,
        Some(SpanStatus::InternalError)
    );
}

#[traced_spawn(local)]
async fn local_forever() {
    std::future::pending::<()>().await;
}

#[test]
fn local_abort_cancels() {
    let captured = capture(sampled(), || {
        on_local_set(async {
            let handle = in_request("request", |_| local_forever());
            tokio::task::yield_now().await;
            handle.abort();
            assert!(handle.await.unwrap_err().is_cancelled());
        });
    });
    assert_eq!(
        assert_linked(&captured, "status::local_forever").status,
        Some(SpanStatus::Cancelled)
    );
}

#[traced_spawn(rayon)]
fn index_panics() -> u32 {
    panic!("index corrupt")
}

#[test]
fn rayon_panic_reaches_the_handle_and_fails() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            let payload = index_panics().join().unwrap_err();
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"index corrupt"));
        });
    });
    let cont = assert_linked(&captured, "status::index_panics");
    assert_eq!(cont.status, Some(SpanStatus::InternalError));
    let event = event_trace(captured.events()[0]);
    assert_eq!(event.span_id, cont.span_id);
}

/// How a body's `Err` becomes the continuation's status and, with `err`, an error event linked
/// to it: for every error type services return (`E: Error`, `anyhow::Error`, boxed errors, types
/// without `Debug`), on a thread and on a task.
mod errors {
    use std::fmt;

    use sentry::protocol::{Event, SpanStatus};
    use traced_spawn::traced_spawn;
    use traced_spawn_tests::{
        assert_linked, capture, event_trace, in_request, on_worker, sampled, tx_trace, Captured,
    };

    #[derive(Debug)]
    struct ModelTimeout;

    impl fmt::Display for ModelTimeout {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("model timed out")
        }
    }

    impl std::error::Error for ModelTimeout {}

    #[traced_spawn(err)]
    fn answer_anyhow() -> anyhow::Result<()> {
        use anyhow::Context as _;
        Err(ModelTimeout).context("answer generation failed")
    }

    #[traced_spawn(err)]
    fn answer_boxed() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let err: Box<dyn std::error::Error + Send + Sync> = Box::new(ModelTimeout);
        Err(err)
    }

    /// An error type that implements neither `Debug` nor `Error`.
    struct Opaque;

    #[traced_spawn]
    fn answer_opaque() -> Result<u8, Opaque> {
        Err(Opaque)
    }

    #[traced_spawn(err)]
    fn answer_opaque_captured() -> Result<u8, Opaque> {
        Err(Opaque)
    }

    /// The one error event, checked to be linked to the one continuation named `name`.
    fn linked_event<'a>(captured: &'a Captured, name: &str) -> &'a Event<'static> {
        let cont = tx_trace(captured.only(name));
        assert_eq!(cont.status, Some(SpanStatus::InternalError));
        let events = captured.events();
        assert_eq!(events.len(), 1, "one error event: {events:?}");
        let event = events[0];
        assert_eq!(event_trace(event).trace_id, cont.trace_id);
        assert_eq!(event_trace(event).span_id, cont.span_id);
        event
    }

    fn values(event: &Event<'static>) -> Vec<String> {
        event
            .exception
            .values
            .iter()
            .map(|exception| exception.value.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn anyhow_error_is_an_exception_chain_not_a_debug_dump() {
        std::env::set_var("RUST_BACKTRACE", "1");
        let captured = capture(sampled(), || {
            in_request("request", |_| {
                assert!(answer_anyhow().join().unwrap().is_err());
            });
        });
        let event = linked_event(&captured, "status::errors::answer_anyhow");
        // sentry lists the chain innermost first.
        assert_eq!(
            values(event),
            ["model timed out", "answer generation failed"],
            "{event:?}"
        );
        assert_eq!(event.message, None, "no Debug dump as the message");
    }

    #[test]
    fn boxed_dyn_error_keeps_its_display_text() {
        let captured = capture(sampled(), || {
            in_request("request", |_| {
                assert!(answer_boxed().join().unwrap().is_err());
            });
        });
        let event = linked_event(&captured, "status::errors::answer_boxed");
        assert_eq!(values(event), ["model timed out"], "{event:?}");
        assert_eq!(event.message, None);
    }

    #[test]
    fn err_of_a_type_without_debug_still_fails() {
        let captured = capture(sampled(), || {
            in_request("request", |_| {
                assert!(answer_opaque().join().unwrap().is_err());
            });
        });
        let cont = tx_trace(captured.only("status::errors::answer_opaque"));
        assert_eq!(cont.status, Some(SpanStatus::InternalError));
        assert!(captured.events().is_empty(), "no `err` option, no event");
    }

    #[test]
    fn err_of_a_type_without_debug_is_captured_by_its_type_name() {
        let captured = capture(sampled(), || {
            in_request("request", |_| {
                assert!(answer_opaque_captured().join().unwrap().is_err());
            });
        });
        let event = linked_event(&captured, "status::errors::answer_opaque_captured");
        let exception = &event.exception.values[0];
        assert_eq!(exception.ty, "status::errors::Opaque", "{event:?}");
    }

    #[derive(Debug)]
    struct EngineError {
        source: std::io::Error,
    }

    impl std::fmt::Display for EngineError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("answer generation failed")
        }
    }

    impl std::error::Error for EngineError {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[traced_spawn(err)]
    fn generate() -> Result<String, EngineError> {
        Err(EngineError {
            source: std::io::Error::other("model timed out"),
        })
    }

    #[traced_spawn(err)]
    async fn generate_async() -> Result<String, EngineError> {
        Err(EngineError {
            source: std::io::Error::other("model timed out"),
        })
    }

    fn assert_error_event(captured: &Captured, name: &str) {
        let cont = assert_linked(captured, name);
        assert_eq!(cont.status, Some(SpanStatus::InternalError));
        let events = captured.events();
        assert_eq!(events.len(), 1, "one error event");
        let event = events[0];
        assert_eq!(event_trace(event).trace_id, cont.trace_id);
        assert_eq!(event_trace(event).span_id, cont.span_id);
        // The whole chain, outermost error last (sentry's convention).
        let values: Vec<_> = event
            .exception
            .values
            .iter()
            .map(|e| e.value.as_deref())
            .collect();
        assert_eq!(
            values,
            [Some("model timed out"), Some("answer generation failed")]
        );
        assert_eq!(event.exception.values[1].ty, "EngineError");
    }

    #[test]
    fn err_option_captures_the_error_chain_on_a_thread() {
        let captured = capture(sampled(), || {
            in_request("request", |_| assert!(generate().join().unwrap().is_err()));
        });
        assert_error_event(&captured, "status::errors::generate");
    }

    #[test]
    fn err_option_captures_the_error_chain_on_a_task() {
        let captured = capture(sampled(), || {
            on_worker(async {
                let handle = in_request("request", |_| generate_async());
                assert!(handle.await.unwrap().is_err());
            });
        });
        assert_error_event(&captured, "status::errors::generate_async");
    }

    #[traced_spawn(err)]
    fn generate_string_error() -> Result<(), String> {
        Err("quota exhausted".into())
    }

    #[test]
    fn err_option_with_a_non_error_type_reports_its_type_and_debug_text() {
        let captured = capture(sampled(), || {
            in_request("request", |_| {
                assert!(generate_string_error().join().unwrap().is_err())
            });
        });
        let cont = assert_linked(&captured, "status::errors::generate_string_error");
        let event = captured.events()[0];
        let exception = &event.exception.values[0];
        assert_eq!(exception.ty, "alloc::string::String");
        assert_eq!(exception.value.as_deref(), Some("\"quota exhausted\""));
        assert_eq!(event_trace(event).span_id, cont.span_id);
    }
}

/// A task aborted mid-body: the spans its body had open are closed under the continuation, before
/// the continuation finishes as `cancelled`, so they are sent inside it.
mod cancellation {
    use std::sync::Once;
    use std::time::Duration;

    use sentry::protocol::SpanStatus;
    use traced_spawn::traced_spawn;
    use traced_spawn_tests::{capture, in_span, on_worker, sampled, tx_trace};

    /// sentry-tracing turns `tracing` spans into Sentry spans; one subscriber for this test binary.
    fn init_tracing() {
        static INIT: Once = Once::new();
        INIT.call_once(|| {
            use tracing_subscriber::layer::SubscriberExt as _;
            let subscriber = tracing_subscriber::registry()
                .with(sentry::integrations::tracing::SpanLayer::new());
            tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        });
    }

    #[tracing::instrument]
    async fn call_model() {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }

    #[traced_spawn]
    async fn generate() {
        call_model().await;
    }

    #[test]
    fn aborted_task_sends_its_open_child_spans_in_the_cancelled_continuation() {
        init_tracing();
        let captured = capture(sampled(), || {
            on_worker(async {
                let tx = sentry::start_transaction(sentry::TransactionContext::new(
                    "request",
                    "http.server",
                ));
                let handle = in_span(&tx, generate);
                tokio::time::sleep(Duration::from_millis(100)).await;
                handle.abort();
                assert!(handle.await.unwrap_err().is_cancelled());
                tx.finish();
            });
        });
        let cont = captured.only("status::cancellation::generate");
        assert_eq!(tx_trace(cont).status, Some(SpanStatus::Cancelled));
        let step = cont
            .spans
            .iter()
            .find(|span| span.description.as_deref() == Some("call_model"))
            .unwrap_or_else(|| {
                panic!(
                    "the open step is sent in the continuation: {:?}",
                    cont.spans
                )
            });
        assert_eq!(step.parent_span_id, Some(tx_trace(cont).span_id));
        assert_eq!(step.trace_id, tx_trace(cont).trace_id);
    }
}

/// Calling a traced async fn (or a `local` / `blocking` one) outside a tokio runtime panics at the
/// caller's line, with a message that says what to write instead, and sends nothing.
///
/// It installs a panic hook to read the panic's location (see [`panic_of`]).
mod outside_runtime {
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::Mutex;

    use traced_spawn::traced_spawn;
    use traced_spawn_tests::{capture, in_request, sampled};

    #[traced_spawn]
    async fn fetch(n: u32) -> u32 {
        n * 2
    }

    #[traced_spawn(local)]
    async fn render(n: u32) -> u32 {
        n + 1
    }

    #[traced_spawn(blocking)]
    fn query(n: u32) -> u32 {
        n + 1
    }

    static PANICS: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());

    /// The panics [`panic_of`] records go to one global list: the tests of this module run one at a
    /// time.
    fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f`, which must panic, and returns the panic's message and line.
    ///
    /// The other tests of this binary run meanwhile, and some of them panic and count the panic events
    /// sentry's hook sends. The hook is installed once, and in one step (`take_hook` then `set_hook`
    /// would leave the default hook in place for the panics that come in between): it records the
    /// panics of a thread inside `panic_of`, and does for the others what the hook it replaces did,
    /// sentry's (installed at a client's first start, so a client is started first) on top of the
    /// default one.
    fn panic_of(f: impl FnOnce()) -> (String, u32) {
        thread_local!(static RECORDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            capture(sampled(), || {});
            panic::set_hook(Box::new(|info| {
                if !RECORDING.with(std::cell::Cell::get) {
                    sentry::integrations::panic::panic_handler(info);
                    let thread = std::thread::current();
                    eprintln!("\nthread '{}' {info}", thread.name().unwrap_or("<unnamed>"));
                    let backtrace = std::backtrace::Backtrace::capture();
                    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
                        eprintln!("stack backtrace:\n{backtrace}");
                    }
                    return;
                }
                let message = info
                    .payload()
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| {
                        info.payload()
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                    })
                    .unwrap_or_default();
                let line = info.location().map_or(0, |location| location.line());
                PANICS
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((message, line));
            }));
        });
        RECORDING.with(|recording| recording.set(true));
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        RECORDING.with(|recording| recording.set(false));
        assert!(result.is_err(), "expected a panic");
        // The guard is released before a failed `expect` panics: the hook locks it too.
        let seen = PANICS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        seen.expect("the hook saw the panic")
    }

    #[test]
    fn async_fn_called_before_block_on_panics_at_the_callers_line_and_sends_nothing() {
        let _serial = one_at_a_time();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (mut seen, mut expected_line) = (None, 0);
        let captured = capture(sampled(), || {
            in_request("request", |_| {
                seen = Some(panic_of(|| {
                    // The common mistake: the call runs before `block_on` enters the runtime.
                    expected_line = line!() + 1;
                    let _ = rt.block_on(fetch(2));
                }));
            });
        });
        let (message, line) = seen.unwrap();
        assert_eq!(
            line, expected_line,
            "located at the caller's line: {message}"
        );
        assert!(message.contains("outside a tokio runtime"), "{message}");
        assert!(
            message.contains("block_on(async"),
            "says what to write: {message}"
        );
        assert!(message.contains("fetch"), "names the fn: {message}");
        assert_eq!(
            captured.transactions().len(),
            1,
            "only the request, no continuation for work that never started"
        );
    }

    /// A sync `blocking` fn is called from plain code, where `block_on(async { .. })` is no answer: the
    /// advice is to enter a runtime, or to let the fn run on a std thread of its own.
    #[test]
    fn blocking_fn_outside_a_runtime_panics_at_the_callers_line_with_advice_for_sync_code() {
        let _serial = one_at_a_time();
        let (mut seen, mut expected_line) = (None, 0);
        let captured = capture(sampled(), || {
            in_request("request", |_| {
                seen = Some(panic_of(|| {
                    expected_line = line!() + 1;
                    let _handle = query(1);
                }));
            });
        });
        let (message, line) = seen.unwrap();
        assert_eq!(line, expected_line, "{message}");
        assert!(message.contains("`query(..)`"), "names the fn: {message}");
        assert!(message.contains("outside a tokio runtime"), "{message}");
        assert!(
            message.contains("blocking pool"),
            "says what it spawns: {message}"
        );
        assert!(
            message.contains("let _guard = handle.enter();"),
            "says how to enter a runtime: {message}"
        );
        assert!(
            message.contains("drop `blocking`"),
            "offers the std thread executor: {message}"
        );
        assert!(
            !message.contains(".await"),
            "no advice written for an async fn: {message}"
        );
        assert_eq!(
            captured.transactions().len(),
            1,
            "only the request, no continuation for work that never started"
        );
    }

    #[test]
    fn builder_spawn_blocking_outside_a_runtime_panics_with_advice_for_sync_code() {
        let _serial = one_at_a_time();
        let mut expected_line = 0;
        let (message, line) = panic_of(|| {
            expected_line = line!() + 1;
            let _handle = traced_spawn::Builder::new("db::query").spawn_blocking(|| 1);
        });
        assert_eq!(line, expected_line, "{message}");
        assert!(
            message.contains("`Builder::spawn_blocking(..)`"),
            "names the call: {message}"
        );
        assert!(message.contains("outside a tokio runtime"), "{message}");
        assert!(
            message.contains("let _guard = handle.enter();"),
            "says how to enter a runtime: {message}"
        );
        assert!(
            message.contains("Builder::spawn_thread"),
            "offers the std thread executor: {message}"
        );
        assert!(
            !message.contains(".await"),
            "no advice written for an async fn: {message}"
        );
    }

    /// `Builder::spawn_task` keeps the advice for a future: await the call inside `block_on`.
    #[test]
    fn builder_spawn_task_outside_a_runtime_panics_with_the_block_on_advice() {
        let _serial = one_at_a_time();
        let mut expected_line = 0;
        let (message, line) = panic_of(|| {
            expected_line = line!() + 1;
            let _handle = traced_spawn::Builder::new("fetch").spawn_task(async { 1 });
        });
        assert_eq!(line, expected_line, "{message}");
        assert!(
            message.contains("rt.block_on(async { Builder::spawn_task(..).await })"),
            "{message}"
        );
    }

    #[test]
    fn local_fn_outside_a_runtime_panics_at_the_callers_line() {
        let _serial = one_at_a_time();
        let mut expected_line = 0;
        let (message, line) = panic_of(|| {
            expected_line = line!() + 1;
            let _handle = render(1);
        });
        assert_eq!(line, expected_line, "{message}");
        assert!(message.contains("LocalSet"), "{message}");
        assert!(
            message.contains("local.block_on(&rt, async { render(..).await })"),
            "{message}"
        );
    }

    /// Inside a runtime but outside a `LocalSet`, tokio's own check panics (tokio offers no way to ask
    /// beforehand, and its check runs in a closure, so its location is inside tokio): the message is
    /// tokio's, and nothing is sent for the work that never started.
    #[test]
    fn local_fn_outside_a_local_set_panics_and_sends_nothing() {
        let _serial = one_at_a_time();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut seen = None;
        let captured = capture(sampled(), || {
            in_request("request", |_| {
                seen = Some(panic_of(|| {
                    rt.block_on(async {
                        let _handle = render(1);
                    });
                }));
            });
        });
        let (message, _) = seen.unwrap();
        assert!(message.contains("LocalSet"), "{message}");
        assert_eq!(
            captured.transactions().len(),
            1,
            "only the request, no continuation for work that never started"
        );
    }
}

// Without the macro: `Builder::fallible`, `Builder::capture_errors`, `Builder::classify`, a
// bound future dropped unpolled.

#[test]
fn fallible_builder_fails_on_err() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            let out = Builder::new("parse")
                .fallible()
                .spawn_thread(|| "x".parse::<u8>())
                .join()
                .unwrap();
            assert!(out.is_err());
        });
    });
    assert_eq!(
        tx_trace(captured.only("parse")).status,
        Some(SpanStatus::InternalError)
    );
    assert!(captured.events().is_empty());
}

#[test]
fn capture_errors_sends_a_linked_error_event() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            let out = Builder::new("parse")
                .capture_errors()
                .spawn_thread(|| "x".parse::<u8>())
                .join()
                .unwrap();
            assert!(out.is_err());
        });
    });
    let cont = tx_trace(captured.only("parse"));
    assert_eq!(cont.status, Some(SpanStatus::InternalError));
    let events = captured.events();
    assert_eq!(events.len(), 1);
    assert_eq!(event_trace(events[0]).trace_id, cont.trace_id);
    assert_eq!(event_trace(events[0]).span_id, cont.span_id);
    let exception = &events[0].exception.values[0];
    assert_eq!(exception.ty, "ParseIntError");
    assert_eq!(
        exception.value.as_deref(),
        Some("invalid digit found in string")
    );
}

#[test]
fn a_status_set_by_the_body_is_kept() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            Builder::new("slow")
                .classify(|_: &()| Verdict::Failed)
                .spawn_thread(|| {
                    sentry::configure_scope(|scope| {
                        if let Some(span) = scope.get_span() {
                            span.set_status(SpanStatus::DeadlineExceeded);
                        }
                    });
                })
                .join()
                .unwrap();
        });
    });
    assert_eq!(
        tx_trace(captured.only("slow")).status,
        Some(SpanStatus::DeadlineExceeded)
    );
}

#[test]
fn a_future_dropped_unpolled_is_recorded_as_cancelled() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            drop(TraceContext::capture().bind("never", "task", async { 7 }));
        });
    });
    assert_eq!(
        tx_trace(captured.only("never")).status,
        Some(SpanStatus::Cancelled)
    );
}
