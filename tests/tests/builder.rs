//! The API without the macro, for its shape: what `TraceContext::capture` reads and when,
//! `TraceContext::bind` on a future, and `ContinueTrace` (`continue_trace`, `continue_as_child`) on
//! any future. What these continuations link to and what status they end with is tested with each
//! behaviour (`linking.rs`, `status.rs`, `isolation.rs`).

use sentry::protocol::SpanStatus;
use traced_spawn::TraceContext;
use traced_spawn_tests::{capture, in_request, sampled, tx_trace};

#[test]
fn capture_reads_the_callers_active_span() {
    capture(sampled(), || {
        in_request("request", |tx| {
            let ctx = TraceContext::capture();
            let trace = tx.get_trace_context();
            assert_eq!(ctx.trace_id(), Some(trace.trace_id));
            assert_eq!(ctx.parent_span_id(), Some(trace.span_id));
            assert_eq!(ctx.sampled(), Some(true));
            let debug = format!("{ctx:?}");
            assert!(debug.contains(&trace.trace_id.to_string()), "{debug}");
        });
    });
}

#[test]
fn capture_is_a_snapshot() {
    capture(sampled(), || {
        let first = sentry::start_transaction(sentry::TransactionContext::new("first", "x"));
        sentry::configure_scope(|scope| scope.set_span(Some(first.clone().into())));
        let ctx = TraceContext::capture();
        let second = sentry::start_transaction(sentry::TransactionContext::new("second", "x"));
        sentry::configure_scope(|scope| scope.set_span(Some(second.clone().into())));
        assert_eq!(
            ctx.parent_span_id(),
            Some(first.get_trace_context().span_id)
        );
        first.finish();
        second.finish();
    });
}

#[test]
fn bind_wraps_a_future() {
    let captured = capture(sampled(), || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        in_request("request", |_| {
            let ctx = TraceContext::capture();
            assert_eq!(rt.block_on(ctx.bind("fut", "task", async { 7 })), 7);
        });
    });
    let request = tx_trace(captured.only("request"));
    let fut = tx_trace(captured.only("fut"));
    assert_eq!(fut.parent_span_id, Some(request.span_id));
    assert_eq!(fut.status, Some(SpanStatus::Ok));
}

#[test]
fn continue_trace_and_continue_as_child_on_any_future() {
    use traced_spawn::ContinueTrace as _;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            runtime.block_on(async {
                let mut pages = tokio::task::JoinSet::new();
                for page in 0..3_u32 {
                    pages.spawn(async move { page * 10 }.continue_trace("crawler::fetch"));
                }
                let merged = async { 5 }.continue_as_child("crawler::merge").await;
                assert_eq!(merged, 5);
                let mut total = 0;
                while let Some(page) = pages.join_next().await {
                    total += page.unwrap();
                }
                assert_eq!(total, 30);
            });
        });
    });
    let request = captured.only("request");
    let request_trace = tx_trace(request);
    let fetches = captured.named("crawler::fetch");
    assert_eq!(fetches.len(), 3);
    for fetch in fetches {
        let trace = tx_trace(fetch);
        assert_eq!(trace.trace_id, request_trace.trace_id);
        assert_eq!(trace.parent_span_id, Some(request_trace.span_id));
        assert_eq!(trace.op.as_deref(), Some("task"));
    }
    // The awaited child is a span of the request's transaction, not a transaction.
    assert!(captured.named("crawler::merge").is_empty());
    let merge = request
        .spans
        .iter()
        .find(|span| span.description.as_deref() == Some("crawler::merge"))
        .expect("the child span is in the request's transaction");
    assert_eq!(merge.parent_span_id, Some(request_trace.span_id));
    assert_eq!(merge.status, Some(SpanStatus::Ok));
}
