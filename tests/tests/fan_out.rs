//! Where users spawn: traced futures handed back unspawned (`future`) for a `JoinSet`, child spans
//! for awaited fan-out (`child`), a stream as one continuation, and rayon's `par_iter` inside a
//! continuation.

use std::time::Duration;

use futures_util::StreamExt as _;
use sentry::protocol::SpanStatus;
use traced_spawn::traced_spawn;
use traced_spawn_tests::{capture, in_request, in_span, on_worker, sampled, tx_trace};

#[traced_spawn(future)]
async fn fetch_page(n: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    n
}

#[test]
fn a_join_set_of_traced_futures_sends_one_continuation_each_under_the_caller() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "request",
                "http.server",
            ));
            let mut set = tokio::task::JoinSet::new();
            in_span(&tx, || {
                for n in 0..20 {
                    // The context is captured here, at the call; the set spawns it.
                    set.spawn(fetch_page(n));
                }
            });
            let mut sum = 0;
            while let Some(page) = set.join_next().await {
                sum += page.unwrap();
            }
            assert_eq!(sum, (0..20).sum::<u32>());
            tx.finish();
        });
    });
    let request = tx_trace(captured.only("request"));
    let pages = captured.named("fan_out::fetch_page");
    assert_eq!(pages.len(), 20);
    for page in pages {
        let page = tx_trace(page);
        assert_eq!(page.trace_id, request.trace_id);
        assert_eq!(page.parent_span_id, Some(request.span_id));
        assert_eq!(page.op.as_deref(), Some("task"));
        assert_eq!(page.status, Some(SpanStatus::Ok));
    }
}

#[traced_spawn(child)]
async fn summarize(n: u32) -> Result<u32, String> {
    sentry::configure_scope(|scope| scope.set_tag("part", n));
    if n % 10 == 9 {
        return Err(format!("part {n} failed"));
    }
    Ok(n)
}

#[test]
fn child_fan_out_of_fifty_sends_one_transaction_with_fifty_spans() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "request",
                "http.server",
            ));
            let handles: Vec<_> = in_span(&tx, || (0..50).map(summarize).collect());
            let mut failed = 0;
            for handle in handles {
                failed += usize::from(handle.await.unwrap().is_err());
            }
            assert_eq!(failed, 5);
            tx.finish();
        });
    });
    assert_eq!(captured.transactions().len(), 1, "one transaction, not 51");
    let request = captured.only("request");
    let trace = tx_trace(request);
    let parts: Vec<_> = request
        .spans
        .iter()
        .filter(|span| span.description.as_deref() == Some("fan_out::summarize"))
        .collect();
    assert_eq!(parts.len(), 50);
    for span in &parts {
        assert_eq!(span.trace_id, trace.trace_id);
        assert_eq!(span.parent_span_id, Some(trace.span_id));
        assert_eq!(span.op.as_deref(), Some("task"));
        assert!(span.data.contains_key(traced_spawn::data::THREAD_ID));
    }
    let failed = parts
        .iter()
        .filter(|span| span.status == Some(SpanStatus::InternalError))
        .count();
    let ok = parts
        .iter()
        .filter(|span| span.status == Some(SpanStatus::Ok))
        .count();
    assert_eq!((ok, failed), (45, 5));
    // Each child ran in its own fork: the caller's scope did not get their tags.
    assert!(!request.tags.contains_key("part"));
}

#[traced_spawn(child)]
fn late_part() -> u32 {
    std::thread::sleep(Duration::from_millis(50));
    1
}

/// The documented limit of `child`, measured: a child that finishes after its transaction was
/// sent is dropped by sentry.
#[test]
fn a_child_that_outlives_its_transaction_is_lost() {
    let mut handle = None;
    let captured = capture(sampled(), || {
        in_request("request", |_| handle = Some(late_part()));
        assert_eq!(handle.take().unwrap().join().unwrap(), 1);
    });
    let request = captured.only("request");
    assert!(
        request.spans.is_empty(),
        "the late child is not in the transaction: {:?}",
        request.spans
    );
    assert_eq!(captured.transactions().len(), 1);
}

#[test]
fn a_stream_is_one_continuation_cancelled_when_dropped_half_way() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "request",
                "http.server",
            ));
            let (full, half) = in_span(&tx, || {
                let full = traced_spawn::Builder::new("export::all")
                    .bind_stream(futures_util::stream::iter(0..10));
                let half = traced_spawn::Builder::new("export::half")
                    .bind_stream(futures_util::stream::iter(0..10));
                (full, half)
            });
            assert_eq!(full.collect::<Vec<_>>().await.len(), 10);
            let taken: Vec<_> = half.take(5).collect().await;
            assert_eq!(taken, [0, 1, 2, 3, 4]);
            tx.finish();
        });
    });
    let request = tx_trace(captured.only("request"));
    let all = tx_trace(captured.only("export::all"));
    let half = tx_trace(captured.only("export::half"));
    for cont in [all, half] {
        assert_eq!(cont.trace_id, request.trace_id);
        assert_eq!(cont.parent_span_id, Some(request.span_id));
    }
    assert_eq!(all.status, Some(SpanStatus::Ok));
    assert_eq!(half.status, Some(SpanStatus::Cancelled));
}

/// Starts a span under the current hub's active span, as instrumented library code does.
fn traced_item(n: &u32) -> u32 {
    if let Some(parent) = sentry::configure_scope(|scope| scope.get_span()) {
        parent
            .start_child("index.item", &format!("item {n}"))
            .finish();
    }
    n * 2
}

#[traced_spawn]
fn index_plain(items: Vec<u32>) -> u32 {
    use rayon::prelude::*;
    items.par_iter().map(traced_item).sum()
}

#[traced_spawn]
fn index_in_trace(items: Vec<u32>) -> u32 {
    use rayon::prelude::*;
    items
        .par_iter()
        .map(traced_spawn::in_current_trace(traced_item))
        .sum()
}

#[test]
fn rayon_par_iter_spans_are_lost_without_in_current_trace_and_kept_with_it() {
    let items: Vec<u32> = (0..64).collect();
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            assert_eq!(index_plain(items.clone()).join().unwrap(), 4032);
            assert_eq!(index_in_trace(items.clone()).join().unwrap(), 4032);
        });
    });
    let plain = captured.only("fan_out::index_plain");
    let kept = captured.only("fan_out::index_in_trace");
    // On rayon's workers (the calling thread may run a few items itself, under the
    // continuation): most items' spans are lost.
    let plain_items = plain
        .spans
        .iter()
        .filter(|s| s.op.as_deref() == Some("index.item"))
        .count();
    assert!(
        plain_items < items.len(),
        "{plain_items} of {} kept",
        items.len()
    );
    let kept_items: Vec<_> = kept
        .spans
        .iter()
        .filter(|s| s.op.as_deref() == Some("index.item"))
        .collect();
    assert_eq!(kept_items.len(), items.len());
    for span in kept_items {
        assert_eq!(span.parent_span_id, Some(tx_trace(kept).span_id));
    }
}
