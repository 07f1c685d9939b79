//! What the example programs share: a stand-in for a web framework's request transaction, and
//! the check each program ends with.
//!
//! The printing itself is `traced_spawn::console` (feature `console` of `traced-spawn`), which you
//! can use in your own programs: `let reporter = traced_spawn::console::init();` first thing in
//! `main`, `reporter.print_trees()` at the end.
//!
//! ```
//! let reporter = traced_spawn::console::init();
//! let handle = traced_spawn_examples::in_request("GET /report", || {
//!     traced_spawn::Builder::new("render").spawn_thread(|| 2 + 2)
//! });
//! assert_eq!(handle.join().unwrap(), 4);
//! let traces = reporter.print_trees();
//! assert_eq!(traced_spawn_examples::check_linked(&traces, 1, 1), std::process::ExitCode::SUCCESS);
//! ```

#![warn(missing_docs)]

use std::process::ExitCode;

use sentry::protocol::SpanStatus;
use traced_spawn::console::Trace;

/// Runs `handler` inside an `http.server` transaction named `name`, bound as the active span, the
/// way sentry's tower or actix integration runs a request handler (the `slack_bot` example uses
/// the real thing). The transaction finishes when `handler` returns, with status `ok`.
///
/// ```
/// let reporter = traced_spawn::console::init();
/// let answer = traced_spawn_examples::in_request("GET /", || 42);
/// assert_eq!(answer, 42);
/// assert_eq!(reporter.traces()[0].roots[0].op, "http.server");
/// ```
pub fn in_request<R>(name: &str, handler: impl FnOnce() -> R) -> R {
    let tx = sentry::start_transaction(sentry::TransactionContext::new(name, "http.server"));
    let previous = sentry::configure_scope(|scope| {
        let previous = scope.get_span();
        scope.set_span(Some(tx.clone().into()));
        previous
    });
    let output = handler();
    sentry::configure_scope(|scope| scope.set_span(previous));
    tx.set_status(SpanStatus::Ok);
    tx.finish();
    output
}

/// The check every example ends with: `traces` holds exactly `expected_traces` traces, and each of
/// them exactly `continuations_per_trace` continuation transactions, every one linked under its
/// caller (none is a root of its trace). Prints one summary line per trace and returns the exit
/// code: a failure when anything is not linked, so CI can run the examples as checks.
///
/// ```
/// use std::process::ExitCode;
///
/// let reporter = traced_spawn::console::init();
/// // A continuation with no caller: a root of its own trace, not linked.
/// traced_spawn::Builder::new("orphan").run(|| ());
/// let traces = reporter.traces();
/// assert_eq!(traced_spawn_examples::check_linked(&traces, 1, 1), ExitCode::FAILURE);
/// ```
pub fn check_linked(
    traces: &[Trace],
    expected_traces: usize,
    continuations_per_trace: usize,
) -> ExitCode {
    let mut ok = traces.len() == expected_traces;
    println!();
    for trace in traces {
        let roots = trace.roots.iter().filter(|root| !root.is_continuation());
        let linked = roots
            .flat_map(|root| root.nodes())
            .filter(|node| node.is_continuation())
            .count();
        let unlinked = trace
            .roots
            .iter()
            .filter(|root| root.is_continuation())
            .count();
        println!(
            "trace {}: {linked} continuation(s) linked, {unlinked} not linked",
            trace.trace_id
        );
        ok &= linked == continuations_per_trace && unlinked == 0;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "error: expected {expected_traces} trace(s), each with {continuations_per_trace} \
             continuation(s) linked under its caller; got {} trace(s)",
            traces.len()
        );
        ExitCode::FAILURE
    }
}
