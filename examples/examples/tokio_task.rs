//! An async fn on a tokio task: `#[traced_spawn]` on an `async fn`.
//!
//! ```text
//! cargo run -p traced-spawn-examples --example tokio_task
//! ```
//!
//! A handler fans a notification out to three channels, one task each, and answers at once. Each
//! task is a continuation of the request; the one that hangs is aborted, and its continuation is
//! still recorded, as `cancelled`.

use std::process::ExitCode;
use std::time::Duration;

use sentry::protocol::SpanStatus;
use traced_spawn::traced_spawn;

/// Calling it spawns the body with `tokio::spawn` right away (not at the first poll) and returns
/// a `tokio::task::JoinHandle<Result<(), String>>`.
#[traced_spawn(name = "notify::send", op = "queue.publish")]
async fn notify(channel: String, delay_ms: u64) -> Result<(), String> {
    // Sentry's scope is per continuation: this tag stays on this task's events.
    sentry::configure_scope(|scope| scope.set_tag("channel", &channel));
    // Child spans work across `.await`: every poll of the task runs under its own hub.
    let span = sentry::configure_scope(|scope| scope.get_span())
        .map(|parent| parent.start_child("http.client", &format!("POST /hooks/{channel}")));
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    if let Some(span) = span {
        span.set_status(SpanStatus::Ok);
        span.finish();
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    // Prints each trace as a tree; with SENTRY_DSN set, also sends it there.
    let reporter = traced_spawn::console::init();

    let handles = traced_spawn_examples::in_request("POST /announcements", || {
        ["email", "slack", "webhook"].map(|channel| {
            let delay = if channel == "webhook" { 60_000 } else { 20 };
            notify(channel.to_owned(), delay)
        })
    });

    // Give up on the webhook after 100 ms: aborting its task finishes its continuation as
    // `cancelled`.
    let [email, slack, webhook] = handles;
    tokio::time::sleep(Duration::from_millis(100)).await;
    webhook.abort();
    println!(
        "email: {:?}, slack: {:?}, webhook cancelled: {}\n",
        email.await.expect("email task"),
        slack.await.expect("slack task"),
        webhook.await.expect_err("aborted").is_cancelled()
    );

    let traces = reporter.print_trees();
    traced_spawn_examples::check_linked(&traces, 1, 3)
}
