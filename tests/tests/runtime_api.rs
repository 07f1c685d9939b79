//! The API without the macro: `TraceContext`, `Builder`, `Continued`.

use std::sync::mpsc;

use sentry::protocol::SpanStatus;
use traced_spawn::classify::Verdict;
use traced_spawn::{Builder, TraceContext};
use traced_spawn_tests::{capture, event_trace, in_request, rate, sampled, tx_trace};

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
fn job_queue_consumer_continues_the_producers_trace() {
    let captured = capture(sampled(), || {
        let (send, recv) = mpsc::channel::<(TraceContext, u32)>();
        // A plain consumer thread: no hub of its own, no client.
        let consumer = std::thread::spawn(move || {
            let mut done = 0;
            for (ctx, job) in recv {
                ctx.run("jobs::process", "queue.process", || {
                    sentry::configure_scope(|scope| scope.set_tag("job", job));
                });
                done += 1;
            }
            done
        });
        in_request("request", |_| {
            for job in 0..3 {
                send.send((TraceContext::capture(), job)).unwrap();
            }
        });
        drop(send);
        assert_eq!(consumer.join().unwrap(), 3);
    });
    let request = tx_trace(captured.only("request"));
    let jobs = captured.named("jobs::process");
    assert_eq!(jobs.len(), 3);
    for job in jobs {
        let t = tx_trace(job);
        assert_eq!(t.trace_id, request.trace_id);
        assert_eq!(t.parent_span_id, Some(request.span_id));
        assert_eq!(t.op.as_deref(), Some("queue.process"));
        assert!(job.tags.contains_key("job"));
    }
}

#[test]
fn a_cloned_context_continues_twice_in_separate_hubs() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            let ctx = TraceContext::capture();
            let other = ctx.clone();
            let a = std::thread::spawn(move || {
                ctx.run("a", "thread", || {
                    sentry::configure_scope(|s| s.set_tag("who", "a"))
                })
            });
            let b = std::thread::spawn(move || {
                other.run("b", "thread", || {
                    sentry::configure_scope(|s| s.set_tag("who", "b"))
                })
            });
            a.join().unwrap();
            b.join().unwrap();
        });
    });
    let request = tx_trace(captured.only("request"));
    for name in ["a", "b"] {
        let tx = captured.only(name);
        assert_eq!(tx_trace(tx).parent_span_id, Some(request.span_id));
        assert_eq!(tx.tags["who"], name);
    }
}

#[test]
fn fallible_builder_fails_on_err() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            let out = Builder::new("parse")
                .fallible()
                .spawn_thread(|| "x".parse::<u8>())
                .join()
                .unwrap();
            assert!(out.is_err());
        });
    });
    assert_eq!(
        tx_trace(captured.only("parse")).status,
        Some(SpanStatus::InternalError)
    );
    assert!(captured.events().is_empty());
}

#[test]
fn capture_errors_sends_a_linked_error_event() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            let out = Builder::new("parse")
                .capture_errors()
                .spawn_thread(|| "x".parse::<u8>())
                .join()
                .unwrap();
            assert!(out.is_err());
        });
    });
    let cont = tx_trace(captured.only("parse"));
    assert_eq!(cont.status, Some(SpanStatus::InternalError));
    let events = captured.events();
    assert_eq!(events.len(), 1);
    assert_eq!(event_trace(events[0]).trace_id, cont.trace_id);
    assert_eq!(event_trace(events[0]).span_id, cont.span_id);
    let exception = &events[0].exception.values[0];
    assert_eq!(exception.ty, "ParseIntError");
    assert_eq!(
        exception.value.as_deref(),
        Some("invalid digit found in string")
    );
}

#[test]
fn a_status_set_by_the_body_is_kept() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            Builder::new("slow")
                .classify(|_: &()| Verdict::Failed)
                .spawn_thread(|| {
                    sentry::configure_scope(|scope| {
                        if let Some(span) = scope.get_span() {
                            span.set_status(SpanStatus::DeadlineExceeded);
                        }
                    });
                })
                .join()
                .unwrap();
        });
    });
    assert_eq!(
        tx_trace(captured.only("slow")).status,
        Some(SpanStatus::DeadlineExceeded)
    );
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
fn a_future_dropped_unpolled_is_recorded_as_cancelled() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            drop(TraceContext::capture().bind("never", "task", async { 7 }));
        });
    });
    assert_eq!(
        tx_trace(captured.only("never")).status,
        Some(SpanStatus::Cancelled)
    );
}

#[test]
fn tracing_disabled_forks_the_hub_without_a_transaction() {
    let mut options = rate(0.0);
    options.traces_sampling_strategy = sentry::TracesSamplingStrategy::Disabled;
    let captured = capture(options, || {
        Builder::new("work")
            .spawn_thread(|| sentry::capture_message("from the body", sentry::Level::Error))
            .join()
            .unwrap();
        sentry::capture_message("from the caller", sentry::Level::Error);
    });
    assert!(captured.transactions().is_empty());
    let events = captured.events();
    assert_eq!(events.len(), 2, "the body reports to the caller's client");
    assert_eq!(
        event_trace(events[0]).trace_id,
        event_trace(events[1]).trace_id
    );
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
