//! Sentry structured logs emitted inside a traced body belong to the continuation: its trace id,
//! and the continuation (or the span under it) as their span. Read from the envelopes sentry's
//! test transport captured, and from the lines `console::fmt_layer` writes.

use sentry::protocol::{EnvelopeItem, ItemContainer, Log};
use traced_spawn_tests::{capture, in_request, sampled, tx_trace, Captured, Lines};
use tracing_subscriber::prelude::*;

fn logs(captured: &Captured) -> Vec<&Log> {
    captured
        .envelopes
        .iter()
        .flat_map(|envelope| envelope.items())
        .flat_map(|item| match item {
            EnvelopeItem::ItemContainer(ItemContainer::Logs(logs)) => logs.iter().collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn span_of(log: &Log) -> Option<&str> {
    log.attributes
        .get("parent_span_id")
        .and_then(|value| value.0.as_str())
}

#[test]
fn a_sentry_log_in_a_traced_body_carries_the_continuation_trace() {
    let captured = capture(sampled(), || {
        let handle = in_request("POST /digest", |_| {
            sentry::logger_info!("digest requested");
            traced_spawn::Builder::new("digest").spawn_thread(|| {
                sentry::logger_info!("summarizing {}", "general");
            })
        });
        handle.join().expect("the body ran");
    });
    let request = tx_trace(captured.only("POST /digest"));
    let continuation = tx_trace(captured.only("digest"));
    let logs = logs(&captured);
    let in_body = logs
        .iter()
        .find(|log| log.body == "summarizing general")
        .expect("the body's log was sent");
    assert_eq!(in_body.trace_id, Some(continuation.trace_id));
    assert_eq!(in_body.trace_id, Some(request.trace_id));
    assert_eq!(
        span_of(in_body),
        Some(continuation.span_id.to_string().as_str())
    );
    let in_request = logs
        .iter()
        .find(|log| log.body == "digest requested")
        .expect("the request's log was sent");
    assert_eq!(
        span_of(in_request),
        Some(request.span_id.to_string().as_str())
    );
}

#[test]
fn tracing_events_in_a_traced_body_become_logs_and_lines_of_the_continuation() {
    let lines = Lines::default();
    let writer = lines.clone();
    let captured = capture(sampled(), || {
        let handle = in_request("POST /digest", |_| {
            traced_spawn::Builder::new("digest").spawn_thread(move || {
                // sentry-tracing's log layer and the console's fmt layer, in the body's thread.
                let subscriber = tracing_subscriber::registry()
                    .with(sentry::integrations::tracing::LogLayer::new())
                    .with(
                        traced_spawn::console::fmt_layer()
                            .with_ansi(false)
                            .with_writer(move || writer.clone()),
                    );
                tracing::subscriber::with_default(subscriber, || {
                    tracing::warn!(channel = "general", "the model is slow today");
                });
            })
        });
        handle.join().expect("the body ran");
    });
    let continuation = tx_trace(captured.only("digest"));
    let logs = logs(&captured);
    let log = logs
        .iter()
        .find(|log| log.body == "the model is slow today")
        .expect("sentry-tracing's LogLayer sent the event as a log");
    assert_eq!(log.trace_id, Some(continuation.trace_id));

    let written = lines.text();
    let expected = format!(
        "trace_id={} span_id={} ",
        continuation.trace_id, continuation.span_id
    );
    assert!(written.starts_with(&expected), "{written}");
    assert!(written.contains("the model is slow today"), "{written}");
}
