//! Continuing a trace across a process or queue boundary: headers and serde.

use std::sync::Arc;

use sentry::protocol::SpanStatus;
use traced_spawn::{Builder, HeaderError, TraceContext};
use traced_spawn_tests::{capture, in_request, sampled, tx_trace, Captured};

#[test]
fn headers_continue_the_trace_in_another_client() {
    // Service A: a request whose context leaves the process as headers.
    let mut headers = Vec::new();
    let service_a = capture(sampled(), || {
        in_request("GET /ask", |_| {
            headers = TraceContext::capture().to_headers()
        });
    });
    // Service B: its own client and hub; it continues from the headers alone.
    let service_b = capture(sampled(), || {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let ctx = TraceContext::from_headers(pairs).expect("valid headers");
        Builder::new("answer")
            .context(ctx)
            .spawn_thread(|| 42)
            .join()
            .unwrap();
    });
    let request = tx_trace(service_a.only("GET /ask"));
    let answer = tx_trace(service_b.only("answer"));
    assert_eq!(answer.trace_id, request.trace_id);
    assert_eq!(answer.parent_span_id, Some(request.span_id));
    assert_eq!(answer.status, Some(SpanStatus::Ok));
}

#[test]
fn headers_keep_an_unsampled_decision() {
    let mut headers = Vec::new();
    capture(sampled(), || {
        let mut ctx = sentry::TransactionContext::new("GET /ask", "http.server");
        ctx.set_sampled(false);
        let tx = sentry::start_transaction(ctx);
        traced_spawn_tests::in_span(&tx, || headers = TraceContext::capture().to_headers());
        tx.finish();
    });
    assert!(headers[0].1.ends_with("-0"), "{headers:?}");
    let service_b: Captured = capture(sampled(), || {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        TraceContext::from_headers(pairs)
            .unwrap()
            .run("answer", "task", || ());
    });
    assert!(
        service_b.transactions().is_empty(),
        "the caller's decision is kept"
    );
}

#[test]
fn strict_trace_continuation_does_not_reject_in_process_continuations() {
    let mut options = sampled();
    options.strict_trace_continuation = true;
    options.org_id = Some("1".parse().unwrap());
    let captured = capture(options, || {
        in_request("request", |_| {
            Builder::new("work").spawn_thread(|| ()).join().unwrap()
        });
    });
    let request = tx_trace(captured.only("request"));
    let work = tx_trace(captured.only("work"));
    assert_eq!(work.trace_id, request.trace_id);
    assert_eq!(work.parent_span_id, Some(request.span_id));
}

#[test]
fn malformed_headers_are_rejected_with_a_reason() {
    let valid = "0123456789abcdef0123456789abcdef-0123456789abcdef";
    assert_eq!(
        TraceContext::from_headers([]).unwrap_err(),
        HeaderError::Missing
    );
    assert_eq!(
        TraceContext::from_headers([("baggage", "sentry-trace_id=1")]).unwrap_err(),
        HeaderError::Missing
    );
    for bad in [
        "",
        "-",
        "0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdeX-0123456789abcdef",
        "0123456789abcdef0123456789abcdef-0123456789abcdef-2",
        "0123456789abcdef0123456789abcdef-0123456789abcdef-1-1",
        "é123456789abcdef0123456789abcde-0123456789abcdef",
    ] {
        assert_eq!(
            TraceContext::from_headers([("sentry-trace", bad)]).unwrap_err(),
            HeaderError::Malformed,
            "{bad:?}"
        );
    }
    let huge = "a".repeat(1 << 20);
    assert_eq!(
        TraceContext::from_headers([("sentry-trace", huge.as_str())]).unwrap_err(),
        HeaderError::TooLong
    );
    // A valid header after a broken one still wins.
    let ctx =
        TraceContext::from_headers([("sentry-trace", "junk"), ("SENTRY-TRACE", valid)]).unwrap();
    assert_eq!(
        ctx.parent_span_id().unwrap().to_string(),
        "0123456789abcdef"
    );
    assert_eq!(ctx.sampled(), None);
}

#[test]
fn serde_carries_a_context_inside_a_job_payload() {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Job {
        question: String,
        trace: TraceContext,
    }

    let (send, recv) = std::sync::mpsc::channel::<String>();
    let captured = capture(sampled(), || {
        let hub = sentry::Hub::current();
        let consumer = std::thread::spawn(move || {
            // The consumer thread binds the service's hub, as a worker process would.
            sentry::Hub::run(hub, || {
                for payload in recv {
                    let job: Job = serde_json::from_str(&payload).unwrap();
                    job.trace
                        .run("jobs::answer", "queue.process", || job.question.len());
                }
            })
        });
        in_request("request", |_| {
            let job = Job {
                question: "why?".into(),
                trace: TraceContext::capture(),
            };
            send.send(serde_json::to_string(&job).unwrap()).unwrap();
        });
        drop(send);
        consumer.join().unwrap();
    });
    let request = tx_trace(captured.only("request"));
    let job = tx_trace(captured.only("jobs::answer"));
    assert_eq!(job.trace_id, request.trace_id);
    assert_eq!(job.parent_span_id, Some(request.span_id));
    assert_eq!(job.op.as_deref(), Some("queue.process"));
}

#[test]
fn serde_rejects_a_malformed_context() {
    let err = serde_json::from_str::<TraceContext>(r#"{"sentry-trace":"nope"}"#).unwrap_err();
    assert!(
        err.to_string().contains("malformed sentry-trace header"),
        "{err}"
    );
    let empty: TraceContext = serde_json::from_str("{}").unwrap();
    assert!(empty.is_empty());
    let _ = Arc::new(empty);
}
