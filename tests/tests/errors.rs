//! How a body's `Err` becomes the continuation's status and, with `err`, an error event: for every
//! error type services return (`E: Error`, `anyhow::Error`, boxed errors, types without `Debug`).

use std::fmt;

use sentry::protocol::{Event, SpanStatus};
use traced_spawn::traced_spawn;
use traced_spawn_tests::{capture, event_trace, in_request, sampled, tx_trace, Captured};

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
    let event = linked_event(&captured, "errors::answer_anyhow");
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
    let event = linked_event(&captured, "errors::answer_boxed");
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
    let cont = tx_trace(captured.only("errors::answer_opaque"));
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
    let event = linked_event(&captured, "errors::answer_opaque_captured");
    let exception = &event.exception.values[0];
    assert_eq!(exception.ty, "errors::Opaque", "{event:?}");
}
