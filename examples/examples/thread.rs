//! A sync fn on a new std thread: `#[traced_spawn]` with no executor option.
//!
//! ```text
//! cargo run -p traced-spawn-examples --example thread
//! ```
//!
//! A request handler starts rendering a report on a thread and answers at once. The thread makes
//! its own child spans and spawns a second traced thread (the upload): both continuations hang
//! under the request, the upload under the render, although both finish after the request.

use std::process::ExitCode;
use std::time::Duration;

use sentry::protocol::SpanStatus;
use traced_spawn::traced_spawn;

#[derive(Debug)]
struct ReportError(String);

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReportError {}

/// Runs `f` as a child span of the active span (here: the continuation transaction).
fn child_span<R>(op: &str, description: &str, f: impl FnOnce() -> R) -> R {
    let span = sentry::configure_scope(|scope| scope.get_span())
        .map(|parent| parent.start_child(op, description));
    let output = f();
    if let Some(span) = span {
        span.set_status(SpanStatus::Ok);
        span.finish();
    }
    output
}

/// Calling it spawns the body on a new thread named `render_report` and returns a
/// `JoinHandle<Result<usize, ReportError>>` at once. `err`: an `Err` would also be captured as an
/// error event, linked to this continuation.
#[traced_spawn(err)]
fn render_report(user_id: u64) -> Result<usize, ReportError> {
    let rows = child_span(
        "db.query",
        "SELECT * FROM orders WHERE user_id = $1",
        || {
            std::thread::sleep(Duration::from_millis(15));
            120
        },
    );
    let pdf = child_span("render", "layout 120 rows as PDF", || {
        std::thread::sleep(Duration::from_millis(10));
        vec![0u8; rows * 100]
    });
    // A traced spawn inside a traced spawn: the upload continues *this* continuation.
    let upload = upload_report(format!("reports/{user_id}.pdf"), pdf);
    upload
        .join()
        .map_err(|_| ReportError("upload thread panicked".into()))?
}

/// The second hop: its own thread (named by `thread_name`), its own continuation.
#[traced_spawn(thread_name = "uploader", err)]
fn upload_report(key: String, bytes: Vec<u8>) -> Result<usize, ReportError> {
    child_span("http.client", &format!("PUT s3://bucket/{key}"), || {
        std::thread::sleep(Duration::from_millis(20));
    });
    Ok(bytes.len())
}

fn main() -> ExitCode {
    // Prints each trace as a tree; with SENTRY_DSN set, also sends it there.
    let reporter = traced_spawn::console::init();

    // The handler: capture + spawn happen in the call, the handler returns at once.
    let handle = traced_spawn_examples::in_request("POST /reports", || render_report(7));

    // Only so the example can print the finished trace: wait for the work.
    let size = handle.join().expect("render thread panicked");
    println!("report uploaded: {size:?} bytes\n");

    let traces = reporter.print_trees();
    traced_spawn_examples::check_linked(&traces, 1, 2)
}
