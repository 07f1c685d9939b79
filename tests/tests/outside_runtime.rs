//! Calling a traced async fn (or a `local` / `blocking` one) outside a tokio runtime panics at the
//! caller's line, with a message that says what to write instead, and sends nothing.
//!
//! A test binary of its own: it installs a panic hook to read the panic's location.

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

/// The panic hook is global (and sentry's panic integration installs its own at a client's first
/// start): the tests of this binary run one at a time.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `f`, which must panic, and returns the panic's message and line.
fn panic_of(f: impl FnOnce()) -> (String, u32) {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(|info| {
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
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(previous);
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
