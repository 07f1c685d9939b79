//! A task aborted mid-body: the spans its body had open are closed under the continuation, before
//! the continuation finishes as `cancelled`, so they are sent inside it.

use std::sync::Once;
use std::time::Duration;

use sentry::protocol::SpanStatus;
use traced_spawn::traced_spawn;
use traced_spawn_tests::{capture, in_span, on_worker, sampled, tx_trace};

/// sentry-tracing turns `tracing` spans into Sentry spans; one subscriber for this test binary.
fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber =
            tracing_subscriber::registry().with(sentry::integrations::tracing::SpanLayer::new());
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
    });
}

#[tracing::instrument]
async fn call_model() {
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[traced_spawn]
async fn generate() {
    call_model().await;
}

#[test]
fn aborted_task_sends_its_open_child_spans_in_the_cancelled_continuation() {
    init_tracing();
    let captured = capture(sampled(), || {
        on_worker(async {
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "request",
                "http.server",
            ));
            let handle = in_span(&tx, generate);
            tokio::time::sleep(Duration::from_millis(100)).await;
            handle.abort();
            assert!(handle.await.unwrap_err().is_cancelled());
            tx.finish();
        });
    });
    let cont = captured.only("cancellation::generate");
    assert_eq!(tx_trace(cont).status, Some(SpanStatus::Cancelled));
    let step = cont
        .spans
        .iter()
        .find(|span| span.description.as_deref() == Some("call_model"))
        .unwrap_or_else(|| {
            panic!(
                "the open step is sent in the continuation: {:?}",
                cont.spans
            )
        });
    assert_eq!(step.parent_span_id, Some(tx_trace(cont).span_id));
    assert_eq!(step.trace_id, tx_trace(cont).trace_id);
}
