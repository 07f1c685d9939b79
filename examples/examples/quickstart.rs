//! A Slack slash-command handler in miniature, without network or Sentry account.
//!
//! Slack wants an answer within 3 seconds, so the handler answers `200` at once and offloads the
//! slow work: generating the reply on a std thread, and showing a typing indicator on a tokio task.
//! With `#[traced_spawn]` both stay in the request's trace, even though they finish after it.
//!
//! ```text
//! cargo run -p traced-spawn-examples --example quickstart
//! ```
//!
//! It prints the trace as a tree, then a summary line; it exits non-zero when the two
//! continuations are not linked under the request, so CI runs it as a check.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use sentry::protocol::SpanStatus;
use traced_spawn::traced_spawn;

/// What the bot's work can fail with.
#[derive(Debug)]
struct BotError(String);

impl std::fmt::Display for BotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BotError {}

/// Generates the answer and posts it to the channel.
///
/// Calling it spawns the body on a new std thread and returns a
/// `std::thread::JoinHandle<Result<String, BotError>>` at once. The body runs inside a
/// continuation transaction of the caller's trace; returning `Err` (or panicking) would mark it
/// `internal_error`.
#[traced_spawn]
fn send_generated_response(channel: String, question: String) -> Result<String, BotError> {
    if question.trim().is_empty() {
        return Err(BotError("empty question".to_owned()));
    }
    // The continuation transaction is the active span here: child spans made with sentry's own API
    // hang under it, exactly as they would in the request handler.
    let llm = sentry::configure_scope(|scope| scope.get_span())
        .map(|parent| parent.start_child("llm.generate", "generate answer"));
    std::thread::sleep(Duration::from_millis(30)); // the slow model call
    if let Some(span) = llm {
        span.set_status(SpanStatus::Ok);
        span.finish();
    }
    Ok(format!("#{channel}: the answer to {question:?} is 42"))
}

/// Shows "bot is typing…" in the channel while the answer is generated.
///
/// An async fn: calling it spawns the body with `tokio::spawn` right away and returns a
/// `tokio::task::JoinHandle<Result<(), BotError>>`.
#[traced_spawn]
async fn show_typing(channel: String) -> Result<(), BotError> {
    // What the body sets on its scope stays in its own forked hub.
    sentry::configure_scope(|scope| scope.set_tag("slack.channel", &channel));
    tokio::time::sleep(Duration::from_millis(10)).await; // the Slack API call
    Ok(())
}

/// The work the handler offloaded; a real handler would not keep these, it just returns.
struct Offloaded {
    reply: std::thread::JoinHandle<Result<String, BotError>>,
    typing: tokio::task::JoinHandle<Result<(), BotError>>,
}

/// `POST /slack/commands`: answers `200` at once and leaves the work running.
fn handle_slash_command(channel: &str, question: &str) -> (u16, Offloaded) {
    // In a real service sentry's tower or actix integration starts this transaction and binds it
    // as the active span; here it is done by hand.
    let tx = sentry::start_transaction(sentry::TransactionContext::new(
        "POST /slack/commands",
        "http.server",
    ));
    sentry::configure_scope(|scope| scope.set_span(Some(tx.clone().into())));

    // Each call captures the trace context here, on the handler's thread, and returns at once.
    let offloaded = Offloaded {
        reply: send_generated_response(channel.to_owned(), question.to_owned()),
        typing: show_typing(channel.to_owned()),
    };

    sentry::configure_scope(|scope| scope.set_span(None));
    tx.set_status(SpanStatus::Ok);
    tx.finish(); // the request is over, long before the offloaded work
    (200, offloaded)
}

#[tokio::main]
async fn main() -> ExitCode {
    // A Sentry client that prints traces (and, with SENTRY_DSN set, also sends them there).
    let reporter = traced_spawn::console::init();

    let started = Instant::now();
    let (status, offloaded) = handle_slash_command("general", "why is the build red?");
    println!(
        "handler answered {status} after {:.1} ms; the work goes on in the background",
        started.elapsed().as_secs_f64() * 1000.0
    );

    // The last thing `main` does, in every app: wait until the offloaded work has finished and
    // been sent, before the client closes (here, so the example can print the finished trace).
    if !traced_spawn::flush(Duration::from_secs(10)).await {
        eprintln!("error: the offloaded work did not finish within 10 s");
        return ExitCode::FAILURE;
    }
    let reply = offloaded.reply.join().expect("reply thread panicked");
    let typing = offloaded.typing.await.expect("typing task panicked");
    match (&reply, &typing) {
        (Ok(answer), Ok(())) => println!("posted: {answer}\n"),
        _ => println!("failed: {reply:?} {typing:?}\n"),
    }

    // Print the trace, then check that both continuations hang under the request.
    let traces = reporter.print_trees();
    let continuations = traces
        .iter()
        .flat_map(|trace| trace.nodes())
        .filter(|node| node.is_continuation())
        .count();
    for trace in &traces {
        let requests: Vec<_> = trace
            .roots
            .iter()
            .filter(|node| node.op == "http.server")
            .collect();
        let linked = requests
            .iter()
            .flat_map(|request| request.nodes())
            .filter(|node| node.is_continuation())
            .count();
        println!(
            "\ntrace {}: {} request, {linked} continuations linked",
            trace.trace_id,
            requests.len()
        );
        if traces.len() == 1 && requests.len() == 1 && linked == 2 && continuations == 2 {
            return ExitCode::SUCCESS;
        }
    }
    eprintln!(
        "error: expected one trace with 1 request and its 2 continuations linked under it; \
         got {} trace(s) and {continuations} continuation(s)",
        traces.len()
    );
    ExitCode::FAILURE
}
