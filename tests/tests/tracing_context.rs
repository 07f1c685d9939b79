//! Feature `tracing`: a traced body runs inside the caller's `tracing` span context, so the lines
//! it logs carry the request's fields, while Sentry's parenting stays the continuation's: the
//! continuation hangs from the request's span, and the `#[tracing::instrument]` steps of the body
//! are spans of the continuation, never of the request's transaction (finished by then).
//!
//! One subscriber for this test binary, as a tracing-first service installs it: sentry-tracing's
//! span layer (no filter: it turns spans of every level into Sentry spans) and a fmt layer whose
//! lines are kept in memory and read back.

use std::sync::{mpsc, OnceLock};

use sentry::protocol::{Span, SpanId, Transaction};
use traced_spawn::traced_spawn;
use traced_spawn_tests::{
    capture, in_request, on_worker, rate, sampled, tx_trace, Captured, Lines,
};

/// Installs the subscriber once; the lines written so far.
fn lines() -> Lines {
    static LINES: OnceLock<Lines> = OnceLock::new();
    LINES
        .get_or_init(|| {
            use tracing_subscriber::prelude::*;
            let lines = Lines::default();
            let writer = lines.clone();
            let fmt = tracing_subscriber::fmt::layer()
                .without_time()
                .with_ansi(false)
                .with_writer(move || writer.clone());
            tracing_subscriber::registry()
                .with(sentry::integrations::tracing::SpanLayer::new())
                .with(fmt)
                .init();
            lines
        })
        .clone()
}

/// The line logged with `message`; panics, listing the lines, when there is not exactly one.
fn line(message: &str) -> String {
    let text = lines().text();
    let found: Vec<&str> = text
        .lines()
        .filter(|line| line.ends_with(&format!(": {message}")))
        .collect();
    assert_eq!(found.len(), 1, "one line {message:?} in:\n{text}");
    found[0].to_owned()
}

/// The Sentry span active where this is called: the one sentry-tracing made for the entered
/// `tracing` span.
fn active_span_id() -> SpanId {
    sentry::configure_scope(|scope| scope.get_span())
        .map(|span| match span {
            sentry::TransactionOrSpan::Transaction(tx) => tx.get_trace_context().span_id,
            sentry::TransactionOrSpan::Span(span) => span.get_span_id(),
        })
        .expect("sentry-tracing made the handler's span active")
}

/// Every span of every transaction sent, with the transaction's name.
fn all_spans(captured: &Captured) -> Vec<(&str, &Span)> {
    captured
        .transactions()
        .into_iter()
        .flat_map(|tx| {
            let name = tx.name.as_deref().unwrap_or_default();
            tx.spans.iter().map(move |span| (name, span))
        })
        .collect()
}

/// The span of `tx` described `description`.
fn span<'a>(tx: &'a Transaction<'static>, description: &str) -> &'a Span {
    tx.spans
        .iter()
        .find(|span| span.description.as_deref() == Some(description))
        .unwrap_or_else(|| panic!("no span {description:?} in {:?}: {:?}", tx.name, tx.spans))
}

/// What the thread and task tests check once the request and its offloaded work have finished:
/// the continuation hangs from the handler's span (the Sentry span sentry-tracing made for the
/// handler's `tracing` span, active where the work was spawned) and holds the body's step,
/// directly under it; nothing of the body is in the request's transaction, nor anywhere else; no
/// other transaction was sent (`traced_spawn` records nothing in Sentry).
fn assert_parenting(
    captured: &Captured,
    request: &str,
    handler_span: SpanId,
    continuation: &str,
    step: &str,
) {
    let request_tx = captured.only(request);
    let cont = captured.only(continuation);
    assert_eq!(
        captured.transactions().len(),
        2,
        "the request and its continuation, nothing else: {:?}",
        captured
            .transactions()
            .iter()
            .map(|tx| &tx.name)
            .collect::<Vec<_>>()
    );
    assert_eq!(tx_trace(cont).trace_id, tx_trace(request_tx).trace_id);
    assert_eq!(tx_trace(cont).parent_span_id, Some(handler_span));
    let step_span = span(cont, step);
    assert_eq!(step_span.parent_span_id, Some(tx_trace(cont).span_id));
    assert_eq!(
        all_spans(captured)
            .iter()
            .filter(|(_, span)| span.description.as_deref() == Some(step))
            .map(|(tx, _)| *tx)
            .collect::<Vec<_>>(),
        [continuation],
        "the step is sent once, in the continuation"
    );
    assert!(
        all_spans(captured)
            .iter()
            .all(|(_, span)| span.description.as_deref() != Some("traced_spawn")),
        "the body's `tracing` span records nothing in Sentry"
    );
    assert!(
        request_tx
            .spans
            .iter()
            .all(|span| span.span_id != handler_span && span.parent_span_id != Some(handler_span)),
        "nothing of the body in the request's transaction: {:?}",
        request_tx.spans
    );
}

// ---- a std thread ----------------------------------------------------------------------------

#[tracing::instrument(skip_all, fields(request_id = 42))]
fn handle_thread(gate: mpsc::Receiver<()>) -> (SpanId, std::thread::JoinHandle<()>) {
    tracing::info!("thread: request accepted");
    (active_span_id(), offload_thread(gate))
}

#[traced_spawn]
fn offload_thread(gate: mpsc::Receiver<()>) {
    // Runs once the request's transaction has finished.
    gate.recv().unwrap();
    tracing::info!("thread: body working");
    thread_step();
}

#[tracing::instrument]
fn thread_step() {
    tracing::info!("thread: step working");
}

#[test]
fn a_thread_body_logs_with_the_requests_fields_and_its_spans_stay_in_the_continuation() {
    lines();
    let mut handler_span = None;
    let captured = capture(sampled(), || {
        let (open, gate) = mpsc::channel();
        let (span, body) = in_request("GET /thread", |_| handle_thread(gate));
        handler_span = Some(span);
        open.send(()).unwrap();
        body.join().unwrap();
    });
    assert_parenting(
        &captured,
        "GET /thread",
        handler_span.unwrap(),
        "tracing_context::offload_thread",
        "thread_step",
    );
    assert!(line("thread: request accepted").contains("handle_thread{request_id=42}"));
    let body = line("thread: body working");
    assert!(body.contains("handle_thread{request_id=42}"), "{body}");
    let step = line("thread: step working");
    assert!(step.contains("handle_thread{request_id=42}"), "{step}");
    assert!(step.contains(":thread_step:"), "{step}");
}

// ---- a tokio task ----------------------------------------------------------------------------

#[tracing::instrument(skip_all, fields(request_id = 42))]
async fn handle_task(
    gate: tokio::sync::oneshot::Receiver<()>,
) -> (SpanId, tokio::task::JoinHandle<()>) {
    tracing::info!("task: request accepted");
    let body = offload_task(gate);
    tokio::task::yield_now().await;
    (active_span_id(), body)
}

#[traced_spawn]
async fn offload_task(gate: tokio::sync::oneshot::Receiver<()>) {
    gate.await.unwrap();
    tracing::info!("task: body working");
    task_step().await;
    tracing::info!("task: body done");
}

#[tracing::instrument]
async fn task_step() {
    tokio::task::yield_now().await;
    tracing::info!("task: step working");
}

#[test]
fn a_task_body_logs_with_the_requests_fields_and_its_spans_stay_in_the_continuation() {
    lines();
    let (handler_tx, handler_rx) = mpsc::channel();
    let captured = capture(sampled(), || {
        on_worker(async move {
            let request = sentry::start_transaction(sentry::TransactionContext::new(
                "GET /task",
                "http.server",
            ));
            sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
            let (open, gate) = tokio::sync::oneshot::channel();
            let (handler_span, body) = handle_task(gate).await;
            handler_tx.send(handler_span).unwrap();
            sentry::configure_scope(|scope| scope.set_span(None));
            request.finish();
            open.send(()).unwrap();
            body.await.unwrap();
        });
    });
    assert_parenting(
        &captured,
        "GET /task",
        handler_rx.recv().unwrap(),
        "tracing_context::offload_task",
        "task_step",
    );
    for message in [
        "task: body working",
        "task: step working",
        "task: body done",
    ] {
        let line = line(message);
        assert!(line.contains("handle_task{request_id=42}"), "{line}");
    }
    assert!(line("task: step working").contains(":task_step:"));
}

// ---- an unsampled request --------------------------------------------------------------------

#[traced_spawn]
fn offload_unsampled() {
    tracing::info!("unsampled: body working");
}

#[tracing::instrument(fields(request_id = 7))]
fn handle_unsampled() {
    offload_unsampled().join().unwrap();
}

#[test]
fn an_unsampled_body_logs_with_the_requests_fields_too() {
    lines();
    let captured = capture(rate(0.0), || {
        in_request("GET /unsampled", |_| handle_unsampled());
    });
    assert!(captured.transactions().is_empty());
    let body = line("unsampled: body working");
    assert!(body.contains("handle_unsampled{request_id=7}"), "{body}");
}

// ---- no Sentry client ------------------------------------------------------------------------

#[traced_spawn]
fn offload_without_client() {
    tracing::info!("no client: body working");
}

#[traced_spawn]
async fn offload_task_without_client() {
    tokio::task::yield_now().await;
    tracing::info!("no client: task working");
}

#[test]
fn with_no_client_bound_the_body_still_logs_with_the_requests_fields() {
    lines();
    assert!(sentry::Hub::current().client().is_none());
    let span = tracing::info_span!("offline", request_id = 11);
    span.in_scope(offload_without_client).join().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async { span.in_scope(offload_task_without_client).await })
        .unwrap();
    for message in ["no client: body working", "no client: task working"] {
        let line = line(message);
        assert!(
            line.contains("offline{request_id=11}:traced_spawn:"),
            "{line}"
        );
    }
}

// ---- no enclosing span -----------------------------------------------------------------------

#[traced_spawn]
fn offload_outside_any_span() {
    tracing::info!("outside: body working");
}

#[test]
fn outside_any_span_the_body_logs_as_before() {
    lines();
    capture(sampled(), || {
        in_request("GET /outside", |_| offload_outside_any_span())
            .join()
            .unwrap();
    });
    let body = line("outside: body working");
    assert!(
        body.starts_with(" INFO tracing_context:") || body.starts_with("INFO tracing_context:"),
        "no span scope: {body}"
    );
}

// ---- the caller's span lasts until the body ends ----------------------------------------------

// `tracing` closes a span when its last child is gone, and sentry-tracing finishes the Sentry
// span of a `tracing` span when it closes: the caller's Sentry span ends when the body ends.

#[tracing::instrument(skip_all, fields(request_id = 5))]
fn handle_late(gate: mpsc::Receiver<()>) -> (SpanId, std::thread::JoinHandle<()>) {
    (active_span_id(), offload_late(gate))
}

#[traced_spawn]
fn offload_late(gate: mpsc::Receiver<()>) {
    gate.recv().unwrap();
    tracing::info!("late: body working");
}

#[test]
fn the_handlers_sentry_span_ends_with_the_body_after_the_request() {
    lines();
    let mut handler_span = None;
    let captured = capture(sampled(), || {
        let (open, gate) = mpsc::channel();
        let (span, body) = in_request("GET /late", |_| handle_late(gate));
        handler_span = Some(span);
        open.send(()).unwrap();
        body.join().unwrap();
    });
    let request = captured.only("GET /late");
    let cont = captured.only("tracing_context::offload_late");
    // The continuation still hangs from the handler's span...
    assert_eq!(tx_trace(cont).parent_span_id, handler_span);
    // ...which ended after the request's transaction was sent: sentry drops a span finished after
    // its transaction.
    assert!(request.spans.is_empty(), "{:?}", request.spans);
    assert!(line("late: body working").contains("handle_late{request_id=5}"));
}

#[traced_spawn]
fn offload_under_root(gate: mpsc::Receiver<()>) {
    gate.recv().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    tracing::info!("root: body working");
}

#[test]
fn a_request_transaction_made_by_sentry_tracing_ends_with_the_body() {
    lines();
    let captured = capture(sampled(), || {
        let (open, gate) = mpsc::channel();
        // No transaction bound: sentry-tracing makes the request's span a transaction.
        let body =
            tracing::info_span!("GET /root", request_id = 9).in_scope(|| offload_under_root(gate));
        open.send(()).unwrap();
        body.join().unwrap();
    });
    let request = captured.only("GET /root");
    let cont = captured.only("tracing_context::offload_under_root");
    assert_eq!(
        tx_trace(cont).parent_span_id,
        Some(tx_trace(request).span_id)
    );
    assert!(
        request.timestamp >= cont.timestamp,
        "the request's transaction ends with the body: {:?} < {:?}",
        request.timestamp,
        cont.timestamp
    );
    assert!(line("root: body working").contains("GET /root{request_id=9}"));
}

// ---- why not `.in_current_span()` ------------------------------------------------------------

#[tracing::instrument(skip_all, fields(request_id = 3))]
fn handle_by_hand(
    gate: tokio::sync::oneshot::Receiver<()>,
) -> (SpanId, tokio::task::JoinHandle<()>) {
    use tracing::Instrument as _;
    let body = async move {
        gate.await.unwrap();
        by_hand_step().await;
    };
    let handle = traced_spawn::Builder::new("by_hand").spawn_task(body.in_current_span());
    (active_span_id(), handle)
}

#[tracing::instrument]
async fn by_hand_step() {
    tokio::task::yield_now().await;
}

/// The by-hand fix this feature replaces: re-entering the request's span in the task makes
/// sentry-tracing switch to the request's Sentry span again (sentry-rust issues 863 and 946), so
/// the step is opened under it, in the request's transaction, finished by then: the step is lost.
#[test]
fn re_entering_the_requests_span_by_hand_loses_the_bodys_spans() {
    lines();
    let captured = capture(sampled(), || {
        on_worker(async {
            let request = sentry::start_transaction(sentry::TransactionContext::new(
                "GET /by-hand",
                "http.server",
            ));
            sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
            let (open, gate) = tokio::sync::oneshot::channel();
            let (_, body) = handle_by_hand(gate);
            sentry::configure_scope(|scope| scope.set_span(None));
            request.finish();
            open.send(()).unwrap();
            body.await.unwrap();
        });
    });
    let cont = captured.only("by_hand");
    assert!(cont.spans.is_empty(), "{:?}", cont.spans);
    assert!(all_spans(&captured)
        .iter()
        .all(|(_, span)| span.description.as_deref() != Some("by_hand_step")));
}
