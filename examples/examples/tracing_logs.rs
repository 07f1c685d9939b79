//! `tracing` inside a continuation: instrumented functions become child spans, and log lines
//! carry the trace id.
//!
//! ```text
//! cargo run -p traced-spawn-examples --example tracing_logs
//! ```
//!
//! Three `tracing_subscriber` layers:
//! - sentry-tracing's `SpanLayer` turns each `#[tracing::instrument]` span into a Sentry child
//!   span of the active span: inside a `#[traced_spawn]` body, the continuation transaction.
//! - sentry-tracing's `LogLayer` turns each event into a Sentry structured log of the active span:
//!   the console prints them under their trace, in time order (and Spotlight shows them).
//! - `traced_spawn::console::fmt_layer()` (feature `console-tracing`): plain log lines that start
//!   with the Sentry `trace_id=` and `span_id=`, so the logs of the offloaded work can be found
//!   from its trace (and the other way round).
//!
//! Do not put `#[tracing::instrument]` on the `#[traced_spawn]` fn itself: the continuation
//! transaction already is the span of its body, and the instrument span would be a second,
//! identical Sentry span under it. Instrument what the body calls.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sentry::integrations::tracing::{LogLayer, SpanLayer};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

use traced_spawn::traced_spawn;

/// The offloaded work: a continuation on a std thread.
#[traced_spawn(name = "digest::summarize_channel")]
fn summarize_channel(channel: String) -> usize {
    tracing::info!(%channel, "summarizing"); // carries the continuation's trace id
    let messages = fetch_messages(&channel);
    let summary = summarize(messages);
    tracing::info!(words = summary, "summary posted");
    summary
}

/// A child span of the continuation (op `tracing_logs::fetch_messages`, as sentry-tracing names
/// it: `<target>::<span name>`).
#[tracing::instrument]
fn fetch_messages(channel: &str) -> Vec<String> {
    std::thread::sleep(Duration::from_millis(10));
    tracing::info!(count = 3, "fetched");
    vec![
        "the build is red".into(),
        "who broke it".into(),
        "fixed".into(),
    ]
}

/// Another child span; its argument is skipped, so it is not recorded as span data.
#[tracing::instrument(skip(messages))]
fn summarize(messages: Vec<String>) -> usize {
    std::thread::sleep(Duration::from_millis(20));
    tracing::warn!("the model is slow today");
    messages.iter().map(|m| m.split_whitespace().count()).sum()
}

/// Where the log lines go: stdout, and a copy kept so the example can check them.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        std::io::stdout().write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

fn main() -> ExitCode {
    // Prints each trace as a tree; with SENTRY_DSN set, also sends it there.
    let reporter = traced_spawn::console::init();

    let lines = Lines::default();
    let writer = lines.clone();
    tracing_subscriber::registry()
        .with(SpanLayer::new().with_filter(LevelFilter::INFO))
        .with(LogLayer::new().with_filter(LevelFilter::INFO))
        .with(
            traced_spawn::console::fmt_layer()
                .with_writer(move || writer.clone())
                .with_filter(LevelFilter::INFO),
        )
        .init();

    let handle = traced_spawn_examples::in_request("POST /digest", || {
        tracing::info!("digest requested"); // the request's own trace
        summarize_channel("general".to_owned())
    });
    let words = handle.join().expect("digest thread panicked");
    println!("\nsummary: {words} words\n");

    let traces = reporter.print_trees();
    let outcome = traced_spawn_examples::check_linked(&traces, 1, 1);

    // The two instrumented functions are child spans of the continuation, and every log line
    // (the handler's and the continuation's) carries the request's trace id.
    let continuation = traces
        .iter()
        .flat_map(|trace| trace.nodes())
        .find(|node| node.is_continuation());
    let spans: Vec<&str> = continuation
        .map(|c| c.children.iter().map(|span| span.name.as_str()).collect())
        .unwrap_or_default();
    let logged = String::from_utf8(lines.0.lock().expect("log buffer").clone()).unwrap_or_default();
    let trace_id = traces.first().map(|trace| trace.trace_id.to_string());
    let tagged = logged
        .lines()
        .filter(|line| {
            trace_id
                .as_ref()
                .is_some_and(|id| line.contains(id.as_str()))
        })
        .count();
    // The same five events as Sentry logs, in the trace.
    let sentry_logs = traces.first().map_or(0, |trace| trace.logs.len());
    println!(
        "child spans of the continuation: {spans:?}; log lines with the trace id: {tagged}; \
         Sentry logs in the trace: {sentry_logs}"
    );
    if spans != ["fetch_messages", "summarize"] || tagged != 5 || sentry_logs != 5 {
        eprintln!(
            "error: expected spans [fetch_messages, summarize], 5 log lines with the trace id and \
             5 Sentry logs in the trace"
        );
        return ExitCode::FAILURE;
    }
    outcome
}
