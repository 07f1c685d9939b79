//! Where services spawn: a `JoinSet`, a tokio-util `TaskTracker` with graceful shutdown, and an
//! awaited fan-out recorded as child spans.
//!
//! ```text
//! cargo run -p traced-spawn-examples --example fan_out
//! ```
//!
//! - `POST /digest` collects five channels' news with `#[traced_spawn(future)]` futures in a
//!   `JoinSet`: five continuations under the request.
//! - `POST /summaries` fans out to twenty parts with `#[traced_spawn(child)]` and joins them: one
//!   transaction with twenty child spans, where plain traced spawns would send twenty-one
//!   transactions.
//! - `POST /replies` hands three replies to a `TaskTracker`; shutting down closes the tracker and
//!   waits for them, so no traced work is cut off.

use std::process::ExitCode;
use std::time::Duration;

use sentry::protocol::SpanStatus;
use traced_spawn::console::NodeKind;
use traced_spawn::traced_spawn;

/// The call captures the trace context and returns the traced future, unspawned.
#[traced_spawn(future)]
async fn fetch_news(channel: String) -> usize {
    tokio::time::sleep(Duration::from_millis(5)).await;
    channel.len()
}

/// A child span of the caller's span: the caller awaits it before its own span finishes.
#[traced_spawn(child, name = "summarize part")]
async fn summarize(part: u32) -> Result<u32, String> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    if part == 13 {
        return Err("part 13 is empty".to_owned());
    }
    Ok(part)
}

#[traced_spawn(future)]
async fn send_reply(user: String) -> String {
    tokio::time::sleep(Duration::from_millis(20)).await;
    format!("sent to {user}")
}

#[tokio::main]
async fn main() -> ExitCode {
    let reporter = traced_spawn::console::init();

    let mut news = tokio::task::JoinSet::new();
    traced_spawn_examples::in_request("POST /digest", || {
        for channel in ["general", "random", "builds", "alerts", "design"] {
            news.spawn(fetch_news(channel.to_owned()));
        }
    });
    let mut items = 0;
    while let Some(count) = news.join_next().await {
        items += count.expect("news task");
    }
    println!("digest: {items} items from 5 channels");

    let tx = sentry::start_transaction(sentry::TransactionContext::new(
        "POST /summaries",
        "http.server",
    ));
    sentry::configure_scope(|scope| scope.set_span(Some(tx.clone().into())));
    let parts: Vec<_> = (0..20).map(summarize).collect();
    sentry::configure_scope(|scope| scope.set_span(None));
    let mut failed = 0;
    for part in parts {
        failed += usize::from(part.await.expect("part task").is_err());
    }
    tx.set_status(SpanStatus::Ok);
    tx.finish();
    println!("summaries: 20 parts, {failed} failed");

    let tracker = tokio_util::task::TaskTracker::new();
    traced_spawn_examples::in_request("POST /replies", || {
        for user in ["ana", "bo", "cy"] {
            tracker.spawn(send_reply(user.to_owned()));
        }
    });
    // Graceful shutdown: no new work, then wait for the traced work in flight.
    tracker.close();
    tracker.wait().await;
    println!("replies: all sent before shutdown\n");

    let traces = reporter.print_trees();
    check(&traces)
}

/// Each trace has the shape described above; prints the transaction count of the fan-out.
fn check(traces: &[traced_spawn::console::Trace]) -> ExitCode {
    let shape = |trace: &traced_spawn::console::Trace| {
        let nodes: Vec<_> = trace.roots.iter().flat_map(|root| root.nodes()).collect();
        let transactions = nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Transaction)
            .count();
        let continuations = nodes.iter().filter(|n| n.is_continuation()).count();
        let children = nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Span && n.name == "summarize part")
            .count();
        (trace.roots.len(), transactions, continuations, children)
    };
    let shapes: Vec<_> = traces.iter().map(shape).collect();
    println!("(roots, transactions, continuations, child spans) per trace: {shapes:?}");
    let expected = [(1, 6, 5, 0), (1, 1, 0, 20), (1, 4, 3, 0)];
    if shapes.len() == 3 && expected.iter().all(|e| shapes.contains(e)) {
        println!("fan-out of 20: 1 transaction sent (21 without `child`)");
        ExitCode::SUCCESS
    } else {
        eprintln!("error: expected the shapes {expected:?}");
        ExitCode::FAILURE
    }
}
