//! `#[traced_spawn]` on async fns: tokio tasks, spawned from a worker of a multi-thread runtime,
//! continue the caller's trace.

use std::time::Duration;

use sentry::protocol::SpanStatus;
use traced_spawn::traced_spawn;
use traced_spawn_tests::{
    assert_all_linked, assert_chain, capture, event_trace, in_request, in_span, on_worker, sampled,
    tx_trace,
};

#[traced_spawn]
async fn generate(question: String) -> Result<usize, String> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    if question.is_empty() {
        return Err("empty question".to_owned());
    }
    Ok(question.len())
}

#[test]
fn continues_the_callers_transaction() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "request",
                "http.server",
            ));
            let handle = in_span(&tx, || generate("why?".into()));
            assert_eq!(handle.await.unwrap(), Ok(4));
            tx.finish();
        });
    });
    let request = tx_trace(captured.only("request"));
    let cont = tx_trace(captured.only("tasks::generate"));
    assert_eq!(cont.trace_id, request.trace_id);
    assert_eq!(cont.parent_span_id, Some(request.span_id));
    assert_eq!(cont.op.as_deref(), Some("task"));
    assert_eq!(cont.status, Some(SpanStatus::Ok));
    assert!(cont.data.contains_key("thread.id"));
    assert!(cont.data["thread.name"]
        .as_str()
        .unwrap()
        .starts_with("tokio-"));
    assert!(cont.data[traced_spawn::data::QUEUE_DELAY_MS]
        .as_f64()
        .is_some());
}

#[test]
fn parent_is_the_active_child_span() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "request",
                "http.server",
            ));
            let child = tx.start_child("llm", "prepare");
            let handle = in_span(&child, || generate("q".into()));
            handle.await.unwrap().unwrap();
            child.finish();
            tx.finish();
        });
    });
    let request = captured.only("request");
    let child = request
        .spans
        .iter()
        .find(|s| s.op.as_deref() == Some("llm"))
        .unwrap();
    let cont = tx_trace(captured.only("tasks::generate"));
    assert_eq!(cont.trace_id, tx_trace(request).trace_id);
    assert_eq!(cont.parent_span_id, Some(child.span_id));
}

#[test]
fn spawned_at_call_time_not_at_first_poll() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let (tx_done, rx_done) = tokio::sync::oneshot::channel();
            let handle = in_request("request", |_| notify(tx_done));
            // The handle is never awaited before the body has run.
            tokio::time::timeout(Duration::from_secs(5), rx_done)
                .await
                .unwrap()
                .unwrap();
            handle.await.unwrap();
        });
    });
    assert_eq!(captured.named("tasks::notify").len(), 1);
}

#[traced_spawn]
async fn notify(done: tokio::sync::oneshot::Sender<()>) {
    let _ = done.send(());
}

#[traced_spawn]
async fn outer(depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    1 + outer(depth - 1).await.unwrap()
}

#[test]
fn nested_spawns_chain_parent_to_child() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let handle = in_request("request", |_| outer(3));
            assert_eq!(handle.await.unwrap(), 3);
        });
    });
    assert_chain(&captured, "request", "tasks::outer", 4);
}

#[traced_spawn]
async fn explode() -> u32 {
    tokio::task::yield_now().await;
    panic!("task crashed")
}

#[test]
fn panic_fails_the_continuation_and_reaches_the_join_handle() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let handle = in_request("request", |_| explode());
            let err = handle.await.unwrap_err();
            assert!(err.is_panic());
            let payload = err.into_panic();
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"task crashed"));
        });
    });
    let cont = tx_trace(captured.only("tasks::explode"));
    assert_eq!(cont.status, Some(SpanStatus::InternalError));
    let events = captured.events();
    assert_eq!(events.len(), 1);
    assert_eq!(event_trace(events[0]).trace_id, cont.trace_id);
    assert_eq!(event_trace(events[0]).span_id, cont.span_id);
}

#[test]
fn err_fails_the_continuation() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let handle = in_request("request", |_| generate(String::new()));
            assert!(handle.await.unwrap().is_err());
        });
    });
    assert_eq!(
        tx_trace(captured.only("tasks::generate")).status,
        Some(SpanStatus::InternalError)
    );
}

#[traced_spawn]
async fn forever() {
    std::future::pending::<()>().await;
}

#[test]
fn abort_cancels_the_continuation() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let handle = in_request("request", |_| forever());
            tokio::time::sleep(Duration::from_millis(20)).await;
            handle.abort();
            assert!(handle.await.unwrap_err().is_cancelled());
        });
    });
    assert_eq!(
        tx_trace(captured.only("tasks::forever")).status,
        Some(SpanStatus::Cancelled)
    );
}

#[test]
fn abort_before_first_poll_is_still_recorded_as_cancelled() {
    let captured = capture(sampled(), || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            // On a current-thread runtime the task cannot start before this task yields.
            let handle = in_request("request", |_| forever());
            handle.abort();
            assert!(handle.await.unwrap_err().is_cancelled());
        });
    });
    let request = tx_trace(captured.only("request"));
    let cont = tx_trace(captured.only("tasks::forever"));
    assert_eq!(cont.status, Some(SpanStatus::Cancelled));
    assert_eq!(cont.parent_span_id, Some(request.span_id));
}

#[traced_spawn]
async fn tag(label: &'static str) {
    sentry::configure_scope(|scope| scope.set_tag("body", label));
    tokio::task::yield_now().await;
}

#[test]
fn scope_is_forked_not_shared() {
    let captured = capture(sampled(), || {
        on_worker(async {
            sentry::configure_scope(|scope| scope.set_tag("caller", "yes"));
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "request",
                "http.server",
            ));
            let (a, b) = in_span(&tx, || (tag("a"), tag("b")));
            a.await.unwrap();
            b.await.unwrap();
            tx.finish();
        });
    });
    let request = captured.only("request");
    assert_eq!(request.tags.get("caller").map(String::as_str), Some("yes"));
    assert!(!request.tags.contains_key("body"));
    let mut labels: Vec<_> = captured
        .named("tasks::tag")
        .iter()
        .map(|tx| {
            assert_eq!(tx.tags.get("caller").map(String::as_str), Some("yes"));
            tx.tags["body"].clone()
        })
        .collect();
    labels.sort();
    assert_eq!(labels, ["a", "b"]);
}

#[traced_spawn]
async fn report_error() {
    sentry::capture_message("inside the body", sentry::Level::Error);
}

#[test]
fn unsampled_parent_sends_no_continuation_but_errors_link() {
    let mut expected = None;
    let captured = capture(sampled(), || {
        expected = Some(on_worker(async {
            let mut ctx = sentry::TransactionContext::new("request", "http.server");
            ctx.set_sampled(false);
            let tx = sentry::start_transaction(ctx);
            in_span(&tx, report_error).await.unwrap();
            let trace = tx.get_trace_context();
            tx.finish();
            (trace.trace_id, trace.span_id)
        }));
    });
    let (trace_id, span_id) = expected.unwrap();
    assert!(captured.transactions().is_empty());
    let event = event_trace(captured.events()[0]);
    assert_eq!(event.trace_id, trace_id);
    assert_eq!(event.span_id, span_id);
}

#[test]
fn no_client_runs_the_plain_body() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(async {
        tokio::spawn(async { generate("four".into()).await.unwrap() })
            .await
            .unwrap()
    });
    assert_eq!(out, Ok(4));
}

#[traced_spawn]
async fn count(n: usize) -> usize {
    tokio::task::yield_now().await;
    n
}

#[test]
fn a_thousand_tasks_from_one_parent_all_link() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let handles = in_request("request", |_| (0..1000).map(count).collect::<Vec<_>>());
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.unwrap();
            }
            assert_eq!(sum, (0..1000).sum::<usize>());
        });
    });
    assert_all_linked(&captured, "request", "tasks::count", 1000);
}
