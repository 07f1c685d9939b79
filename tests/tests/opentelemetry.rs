//! Feature `opentelemetry`: a service traced with OpenTelemetry keeps offloaded work in the
//! caller's trace.
//!
//! - Under sentry's OpenTelemetry integration (its span processor and propagator), a request is
//!   an OpenTelemetry span and Sentry's scope has no active span: the continuation hangs from the
//!   request's span (trace id, span id, sampling), not from the scope's unrelated trace.
//! - With any OpenTelemetry SDK (here its in-memory exporter), spans opened in the body are
//!   children of the caller's OpenTelemetry span, on a thread and in a task, with a Sentry client
//!   or without.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::Context;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use sentry::integrations::opentelemetry::{SentryPropagator, SentrySpanProcessor};
use sentry::protocol::{SpanId, TraceId};
use traced_spawn::{traced_spawn, TraceContext};
use traced_spawn_tests::{capture, in_request, rate, sampled, tx_trace};

fn trace_id(cx: &SpanContext) -> TraceId {
    cx.trace_id().to_bytes().into()
}

fn span_id(cx: &SpanContext) -> SpanId {
    cx.span_id().to_bytes().into()
}

// ---- Sentry's OpenTelemetry integration: the continuation's parent ----------------------------

#[traced_spawn]
fn generate_answer(question: String) -> usize {
    question.len()
}

#[traced_spawn]
async fn send_reply(text: String) -> usize {
    text.len()
}

/// A tracer provider that sends its spans to Sentry through sentry-opentelemetry's processor, as
/// its README sets it up. Made under the hub the test binds (the processor adds its event
/// processor to the current scope).
fn sentry_tracer_provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_span_processor(SentrySpanProcessor::new())
        .build()
}

#[test]
fn a_thread_continues_the_opentelemetry_request_span() {
    let ids = Arc::new(Mutex::new(None));
    let seen = ids.clone();
    let captured = capture(sampled(), move || {
        let tracer = sentry_tracer_provider().tracer("app");
        let handle = tracer.in_span("GET /ask", |cx| {
            *seen.lock().unwrap() = Some(cx.span().span_context().clone());
            generate_answer("why?".into())
        });
        assert_eq!(handle.join().unwrap(), 4);
    });
    let request = ids.lock().unwrap().clone().expect("the request span");

    let sent = tx_trace(captured.only("GET /ask"));
    assert_eq!(
        sent.trace_id,
        trace_id(&request),
        "the processor's transaction"
    );
    assert_eq!(sent.span_id, span_id(&request));

    let continuation = tx_trace(captured.only("opentelemetry::generate_answer"));
    assert_eq!(continuation.trace_id, trace_id(&request));
    assert_eq!(continuation.parent_span_id, Some(span_id(&request)));
    assert_ne!(continuation.span_id, span_id(&request));
}

#[test]
fn a_task_continues_the_opentelemetry_request_span() {
    let ids = Arc::new(Mutex::new(None));
    let seen = ids.clone();
    let captured = capture(sampled(), move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let tracer = sentry_tracer_provider().tracer("app");
        let handle = tracer.in_span("POST /reply", |cx| {
            *seen.lock().unwrap() = Some(cx.span().span_context().clone());
            let _rt = rt.enter();
            send_reply("hello".into())
        });
        assert_eq!(rt.block_on(handle).unwrap(), 5);
    });
    let request = ids.lock().unwrap().clone().expect("the request span");

    let continuation = tx_trace(captured.only("opentelemetry::send_reply"));
    assert_eq!(continuation.trace_id, trace_id(&request));
    assert_eq!(continuation.parent_span_id, Some(span_id(&request)));
}

/// A request that continues an incoming `sentry-trace` through `SentryPropagator`: Sentry's
/// transaction of it is in the incoming trace (not the OpenTelemetry span's own trace id), and so
/// is the continuation.
#[test]
fn a_request_continuing_incoming_headers_is_continued_in_their_trace() {
    let incoming_trace = "771a43a4192642f0b136d5159a501700";
    let incoming_span = "b7ad6b7169203331";
    let ids = Arc::new(Mutex::new(None));
    let seen = ids.clone();
    let captured = capture(sampled(), move || {
        let tracer = sentry_tracer_provider().tracer("app");
        let headers = HashMap::from([(
            "sentry-trace".to_owned(),
            format!("{incoming_trace}-{incoming_span}-1"),
        )]);
        let extracted = SentryPropagator::new().extract_with_context(&Context::new(), &headers);
        let span = tracer.start_with_context("GET /ask", &extracted);
        let cx = extracted.with_span(span);
        let handle = {
            let _attached = cx.clone().attach();
            *seen.lock().unwrap() = Some(cx.span().span_context().clone());
            generate_answer("why?".into())
        };
        cx.span().end();
        handle.join().unwrap();
    });
    let request = ids.lock().unwrap().clone().expect("the request span");

    let sent = tx_trace(captured.only("GET /ask"));
    assert_eq!(sent.trace_id.to_string(), incoming_trace);
    let continuation = tx_trace(captured.only("opentelemetry::generate_answer"));
    assert_eq!(continuation.trace_id.to_string(), incoming_trace);
    assert_eq!(continuation.parent_span_id, Some(span_id(&request)));
    assert_eq!(continuation.parent_span_id, Some(sent.span_id));
}

/// An OpenTelemetry span that is not recorded (dropped by the OpenTelemetry sampler: no Sentry
/// transaction either) leaves the continuation unsampled.
#[test]
fn an_unsampled_opentelemetry_span_is_continued_unsampled() {
    let captured = capture(sampled(), || {
        let provider = SdkTracerProvider::builder()
            .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff)
            .with_span_processor(SentrySpanProcessor::new())
            .build();
        let tracer = provider.tracer("app");
        let handle = tracer.in_span("GET /ask", |cx| {
            assert!(cx.span().span_context().is_valid());
            let ctx = TraceContext::capture();
            assert_eq!(ctx.sampled(), Some(false));
            generate_answer("why?".into())
        });
        handle.join().unwrap();
    });
    assert!(captured.transactions().is_empty(), "{captured:?}");
}

/// Sentry's own active span wins: the OpenTelemetry span is only read when Sentry has none.
#[test]
fn an_active_sentry_span_wins_over_the_opentelemetry_span() {
    let exporter = InMemorySpanExporter::default();
    let tracer = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build()
        .tracer("app");
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            tracer.in_span("otel step", |_| generate_answer("why?".into()))
        })
        .join()
        .unwrap();
    });
    let request = tx_trace(captured.only("request"));
    let continuation = tx_trace(captured.only("opentelemetry::generate_answer"));
    assert_eq!(continuation.trace_id, request.trace_id);
    assert_eq!(continuation.parent_span_id, Some(request.span_id));
}

// ---- Any OpenTelemetry SDK: spans opened in the body --------------------------------------------

#[traced_spawn]
fn step_on_thread(tracer: opentelemetry_sdk::trace::SdkTracer) {
    tracer.in_span("thread step", |_| {});
}

#[traced_spawn]
async fn step_in_task(tracer: opentelemetry_sdk::trace::SdkTracer) {
    let span = tracer.start("task step");
    let cx = Context::current_with_span(span);
    tokio::task::yield_now().await;
    cx.span().end();
}

/// Runs the two traced steps (thread, then task on a worker) inside an OpenTelemetry span
/// `caller`; the caller's span context and every span exported.
fn steps_inside_caller() -> (SpanContext, Vec<SpanData>) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("app");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let caller = tracer.in_span("caller", |cx| {
        step_on_thread(tracer.clone()).join().unwrap();
        rt.block_on(async { step_in_task(tracer.clone()).await.unwrap() });
        cx.span().span_context().clone()
    });
    let spans = exporter.get_finished_spans().unwrap();
    (caller, spans)
}

fn assert_children_of(caller: &SpanContext, spans: &[SpanData]) {
    for name in ["thread step", "task step"] {
        let span = spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("no span {name:?} in {spans:#?}"));
        assert_eq!(
            span.span_context.trace_id(),
            caller.trace_id(),
            "{name}: the caller's trace"
        );
        assert_eq!(
            span.parent_span_id,
            caller.span_id(),
            "{name}: a child of the caller's span"
        );
    }
}

#[test]
fn spans_in_the_body_are_children_of_the_callers_span_without_a_client() {
    let (caller, spans) = steps_inside_caller();
    assert_children_of(&caller, &spans);
}

#[test]
fn spans_in_the_body_are_children_of_the_callers_span_with_a_client() {
    let mut result = None;
    let captured = capture(sampled(), || result = Some(steps_inside_caller()));
    let (caller, spans) = result.unwrap();
    assert_children_of(&caller, &spans);
    // The Sentry continuations hang from the caller's OpenTelemetry span too.
    for name in [
        "opentelemetry::step_on_thread",
        "opentelemetry::step_in_task",
    ] {
        let continuation = tx_trace(captured.only(name));
        assert_eq!(continuation.trace_id, trace_id(&caller));
        assert_eq!(continuation.parent_span_id, Some(span_id(&caller)));
    }
}

#[test]
fn spans_in_the_body_are_children_of_the_callers_span_under_an_unsampled_trace() {
    let mut result = None;
    let captured = capture(rate(0.0), || {
        in_request("request", |_| result = Some(steps_inside_caller()));
    });
    let (caller, spans) = result.unwrap();
    assert_children_of(&caller, &spans);
    assert!(captured.transactions().is_empty());
}

#[test]
fn a_context_run_by_hand_attaches_the_callers_context() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("app");
    let (caller, ctx) = tracer.in_span("caller", |cx| {
        (cx.span().span_context().clone(), TraceContext::capture())
    });
    std::thread::spawn(move || {
        ctx.run("consumer", "queue.process", || {
            tracer.in_span("job", |_| {})
        })
    })
    .join()
    .unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let job = spans
        .iter()
        .find(|span| span.name == "job")
        .unwrap_or_else(|| panic!("no span \"job\" in {spans:#?}"));
    assert_eq!(job.span_context.trace_id(), caller.trace_id());
    assert_eq!(job.parent_span_id, caller.span_id());
}

/// With no OpenTelemetry span current, capture is what it was: the scope's propagation context.
#[test]
fn without_an_opentelemetry_span_the_scopes_trace_is_continued() {
    capture(sampled(), || {
        let ctx = TraceContext::capture();
        let scope_trace = sentry::configure_scope(|scope| {
            scope
                .iter_trace_propagation_headers()
                .find(|(name, _)| *name == "sentry-trace")
                .map(|(_, value)| value[..32].to_owned())
        });
        assert_eq!(ctx.trace_id().map(|id| id.to_string()), scope_trace);
        assert!(
            Context::current().span().span_context().trace_id() == opentelemetry::TraceId::INVALID
        );
    });
}
