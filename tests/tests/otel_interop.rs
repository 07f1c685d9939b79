//! Interop with OpenTelemetry: `opentelemetry_sdk`'s W3C `TraceContextPropagator` reads the
//! `traceparent`/`tracestate` this crate writes to the same ids, and this crate continues what it
//! injects.

use std::collections::HashMap;
use std::str::FromStr;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use traced_spawn::{header, TraceContext};
use traced_spawn_tests::{capture, in_request, rate, sampled, tx_trace};

/// What OpenTelemetry extracts from `headers`.
fn extract(headers: &[(&'static str, String)]) -> SpanContext {
    let carrier: HashMap<String, String> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect();
    TraceContextPropagator::new()
        .extract(&carrier)
        .span()
        .span_context()
        .clone()
}

#[test]
fn opentelemetry_extracts_our_traceparent_to_the_same_ids() {
    for (options, sampled_flag) in [(sampled(), true), (rate(0.0), false)] {
        let mut headers = Vec::new();
        let captured = capture(options, || {
            in_request("GET /ask", |tx| {
                headers = TraceContext::capture().to_headers();
                // Only a sampled transaction is sent; read the ids from the live one.
                let trace = tx.get_trace_context();
                headers.push(("x-ids", format!("{}-{}", trace.trace_id, trace.span_id)));
            });
        });
        let (trace_id, span_id) = headers
            .pop()
            .unwrap()
            .1
            .split_once('-')
            .map(|(t, s)| (t.to_owned(), s.to_owned()))
            .unwrap();
        if sampled_flag {
            let request = tx_trace(captured.only("GET /ask"));
            assert_eq!(request.trace_id.to_string(), trace_id);
        }
        let otel = extract(&headers);
        assert!(otel.is_valid() && otel.is_remote());
        assert_eq!(otel.trace_id(), TraceId::from_hex(&trace_id).unwrap());
        assert_eq!(otel.span_id(), SpanId::from_hex(&span_id).unwrap());
        assert_eq!(otel.is_sampled(), sampled_flag);
    }
}

#[test]
fn we_continue_what_opentelemetry_injects_and_pass_its_tracestate_on() {
    let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let span_id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
    let state = TraceState::from_str("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE").unwrap();
    let remote = SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, true, state.clone());
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(
        &Context::new().with_remote_span_context(remote),
        &mut carrier,
    );
    assert!(carrier.contains_key(header::TRACEPARENT) && carrier.contains_key(header::TRACESTATE));

    let mut inside = Vec::new();
    let captured = capture(sampled(), || {
        let ctx = TraceContext::from_headers(carrier.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .expect("opentelemetry's headers");
        ctx.run("consume", "queue.process", || {
            inside = TraceContext::capture().to_headers()
        });
    });
    let consume = tx_trace(captured.only("consume"));
    assert_eq!(consume.trace_id.to_string(), trace_id.to_string());
    assert_eq!(
        consume.parent_span_id.unwrap().to_string(),
        span_id.to_string()
    );

    // What the continuation sends onwards, OpenTelemetry reads as its child, with the same state.
    let next = extract(&inside);
    assert_eq!(next.trace_id(), trace_id);
    assert_eq!(next.span_id().to_string(), consume.span_id.to_string());
    assert!(next.is_sampled());
    assert_eq!(next.trace_state().header(), state.header());
}

#[test]
fn an_unsampled_opentelemetry_parent_is_kept_unsampled() {
    let remote = SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::default(),
        true,
        TraceState::default(),
    );
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(
        &Context::new().with_remote_span_context(remote),
        &mut carrier,
    );
    let captured = capture(sampled(), || {
        let ctx = TraceContext::from_headers(carrier.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .unwrap();
        assert_eq!(ctx.sampled(), Some(false));
        ctx.run("consume", "queue.process", || ());
    });
    assert!(captured.transactions().is_empty());
}
