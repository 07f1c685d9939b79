//! `tracing` inside a continuation: instrumented functions become child spans, and log lines
//! carry the trace id.
//!
//! ```text
//! cargo run -p traced-spawn-examples --example tracing_logs
//! ```
//!
//! Two `tracing_subscriber` layers:
//! - sentry-tracing's `SpanLayer` turns each `#[tracing::instrument]` span into a Sentry child
//!   span of the active span: inside a `#[traced_spawn]` body, the continuation transaction.
//! - a `fmt` layer whose lines start with the current Sentry `trace=` and `span=` ids, so the
//!   logs of the offloaded work can be found from its trace (and the other way round).
//!
//! Do not put `#[tracing::instrument]` on the `#[traced_spawn]` fn itself: the continuation
//! transaction already is the span of its body, and the instrument span would be a second,
//! identical Sentry span under it. Instrument what the body calls.

use std::fmt;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sentry::integrations::tracing::SpanLayer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

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

/// A log format that prefixes each line with the Sentry trace and span ids current where the
/// line is logged (the active span of the current hub, or the scope's propagation context),
/// then formats the rest as `inner` does.
struct WithSentryTrace<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithSentryTrace<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        // `sentry-trace` is `<trace id>-<span id>[-<sampled>]`.
        let sentry_trace = sentry::configure_scope(|scope| {
            scope
                .iter_trace_propagation_headers()
                .find(|(name, _)| *name == "sentry-trace")
                .map(|(_, value)| value)
        });
        if let Some(value) = sentry_trace {
            let mut ids = value.split('-');
            let (trace, span) = (ids.next().unwrap_or("-"), ids.next().unwrap_or("-"));
            write!(writer, "trace={trace} span={span} ")?;
        }
        self.0.format_event(ctx, writer, event)
    }
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
    let format = WithSentryTrace(tracing_subscriber::fmt::format());
    tracing_subscriber::registry()
        .with(SpanLayer::new().with_filter(LevelFilter::INFO))
        .with(
            tracing_subscriber::fmt::layer()
                .event_format(format)
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
    println!("child spans of the continuation: {spans:?}; log lines with the trace id: {tagged}");
    if spans != ["fetch_messages", "summarize"] || tagged != 5 {
        eprintln!(
            "error: expected spans [fetch_messages, summarize] and 5 log lines with the trace id"
        );
        return ExitCode::FAILURE;
    }
    outcome
}
