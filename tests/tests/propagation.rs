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
            HeaderError::SentryTraceMalformed,
            "{bad:?}"
        );
    }
    let huge = "a".repeat(1 << 20);
    assert_eq!(
        TraceContext::from_headers([("sentry-trace", huge.as_str())]).unwrap_err(),
        HeaderError::SentryTraceTooLong
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

// ---------------------------------------------------------------- baggage, the DSC, the org rule

use traced_spawn::header;

const INCOMING_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const INCOMING_SPAN: &str = "b7ad6b7169203331";

fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.as_str())
}

fn pairs<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The entries of a baggage value, in order, values left encoded.
fn entries(baggage: &str) -> Vec<(String, String)> {
    baggage
        .split(',')
        .map(|member| {
            let (key, value) = member.split_once('=').expect("key=value");
            (key.trim().to_owned(), value.trim().to_owned())
        })
        .collect()
}

fn options_with(dsn: &str) -> sentry::ClientOptions {
    let mut options = sampled();
    options.dsn = Some(dsn.parse().unwrap());
    options
}

#[test]
fn outgoing_baggage_is_the_dynamic_sampling_context_of_the_head() {
    let mut options = options_with("https://abc123@o42.ingest.sentry.io/7");
    options.release = Some("shop@1.2.0+build 7".into());
    options.environment = Some("staging".into());
    let mut headers = Vec::new();
    let mut inner = Vec::new();
    let captured = capture(options, || {
        in_request("GET /ask", |_| {
            headers = TraceContext::capture().to_headers();
            // A continuation started here carries the same context onwards.
            inner = Builder::new("work")
                .spawn_thread(|| TraceContext::capture().to_headers())
                .join()
                .unwrap();
        });
    });
    let request = tx_trace(captured.only("GET /ask"));
    let trace_id = request.trace_id.to_string();
    assert_eq!(
        entries(header(&headers, header::BAGGAGE).unwrap()),
        [
            ("sentry-trace_id", trace_id.as_str()),
            ("sentry-public_key", "abc123"),
            ("sentry-org_id", "42"),
            ("sentry-release", "shop@1.2.0+build%207"),
            ("sentry-environment", "staging"),
            ("sentry-sample_rate", "1"),
            ("sentry-sampled", "true"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert_eq!(
        header(&headers, header::TRACEPARENT).unwrap(),
        format!("00-{trace_id}-{}-01", request.span_id)
    );
    assert_eq!(header(&headers, header::TRACESTATE), None);
    // Inside the continuation: the same DSC (frozen at the head), a parent of its own.
    let work = tx_trace(captured.only("work"));
    assert_eq!(
        header(&inner, header::BAGGAGE),
        header(&headers, header::BAGGAGE)
    );
    assert_eq!(
        header(&inner, header::SENTRY_TRACE).unwrap(),
        format!("{trace_id}-{}-1", work.span_id)
    );
}

#[test]
fn an_unsampled_head_says_so_in_its_baggage() {
    let mut headers = Vec::new();
    capture(traced_spawn_tests::rate(0.0), || {
        in_request("GET /ask", |_| {
            headers = TraceContext::capture().to_headers()
        });
    });
    let baggage = entries(header(&headers, header::BAGGAGE).unwrap());
    assert!(
        baggage.contains(&("sentry-sample_rate".into(), "0".into())),
        "{baggage:?}"
    );
    assert!(
        baggage.contains(&("sentry-sampled".into(), "false".into())),
        "{baggage:?}"
    );
    assert!(header(&headers, header::TRACEPARENT)
        .unwrap()
        .ends_with("-00"));
}

/// Headers a Sentry SDK upstream sends: its frozen DSC (with an entry this crate does not write,
/// and an encoded value), and a third-party entry with properties.
fn upstream(org_id: Option<u64>) -> Vec<(&'static str, String)> {
    let mut baggage = format!(
        "sentry-trace_id={INCOMING_TRACE},sentry-public_key=upstream,sentry-release=web%401.0,\
         sentry-transaction=GET%20%2Fcheckout,sentry-sample_rate=0.25,sentry-sampled=true,\
         sentry-sample_rand=0.012345"
    );
    if let Some(org_id) = org_id {
        baggage.push_str(&format!(",sentry-org_id={org_id}"));
    }
    baggage.push_str(",tenant=acme;ttl=3");
    vec![
        (
            header::SENTRY_TRACE,
            format!("{INCOMING_TRACE}-{INCOMING_SPAN}-1"),
        ),
        (header::BAGGAGE, baggage),
    ]
}

#[test]
fn a_continuation_forwards_the_incoming_sentry_entries_unchanged() {
    let incoming = upstream(Some(42));
    let sent = header(&incoming, header::BAGGAGE).unwrap().to_owned();
    let mut inside = Vec::new();
    let mut nested = Vec::new();
    // This service has its own DSN, release and environment: none of them replaces the upstream's.
    let mut options = options_with("https://mine@o42.ingest.sentry.io/9");
    options.release = Some("worker@2".into());
    options.environment = Some("production".into());
    let captured = capture(options, || {
        let ctx = TraceContext::from_headers(pairs(&incoming)).unwrap();
        // Before it is continued, it gives back what it was built from.
        assert_eq!(
            header(&ctx.to_headers(), header::BAGGAGE),
            Some(sent.as_str())
        );
        ctx.run("job", "queue.process", || {
            inside = TraceContext::capture().to_headers();
            // A traced spawn inside the continuation inherits it, however deep.
            nested = Builder::new("step")
                .spawn_thread(|| {
                    Builder::new("deeper")
                        .spawn_thread(|| TraceContext::capture().to_headers())
                        .join()
                        .unwrap()
                })
                .join()
                .unwrap();
        });
    });
    let job = tx_trace(captured.only("job"));
    assert_eq!(job.trace_id.to_string(), INCOMING_TRACE);
    assert_eq!(job.parent_span_id.unwrap().to_string(), INCOMING_SPAN);
    let deeper = tx_trace(captured.only("deeper"));
    assert_eq!(deeper.trace_id.to_string(), INCOMING_TRACE);
    for headers in [&inside, &nested] {
        assert_eq!(header(headers, header::BAGGAGE), Some(sent.as_str()));
    }
    assert_eq!(
        header(&nested, header::TRACEPARENT).unwrap(),
        format!("00-{INCOMING_TRACE}-{}-01", deeper.span_id)
    );
}

#[test]
fn third_party_baggage_alone_gets_this_service_as_the_sentry_head() {
    // An OpenTelemetry service upstream: traceparent, tracestate and its own baggage, no Sentry DSC.
    let incoming = [
        (
            header::TRACEPARENT,
            format!("00-{INCOMING_TRACE}-{INCOMING_SPAN}-01"),
        ),
        (
            header::TRACESTATE,
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".to_owned(),
        ),
        (
            header::BAGGAGE,
            "userId=alice,serverNode=DF%2028".to_owned(),
        ),
    ];
    let mut inside = Vec::new();
    let captured = capture(options_with("https://mine@o42.ingest.sentry.io/9"), || {
        TraceContext::from_headers(pairs(&incoming)).unwrap().run(
            "POST /orders",
            "http.server",
            || inside = TraceContext::capture().to_headers(),
        );
    });
    let orders = tx_trace(captured.only("POST /orders"));
    assert_eq!(orders.trace_id.to_string(), INCOMING_TRACE);
    assert_eq!(orders.parent_span_id.unwrap().to_string(), INCOMING_SPAN);
    assert_eq!(
        entries(header(&inside, header::BAGGAGE).unwrap()),
        [
            ("sentry-trace_id", INCOMING_TRACE),
            ("sentry-public_key", "mine"),
            ("sentry-org_id", "42"),
            ("sentry-transaction", "POST%20/orders"),
            ("sentry-sample_rate", "1"),
            ("sentry-sampled", "true"),
            ("userId", "alice"),
            ("serverNode", "DF%2028"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert_eq!(
        header(&inside, header::TRACEPARENT).unwrap(),
        format!("00-{INCOMING_TRACE}-{}-01", orders.span_id)
    );
    assert_eq!(
        header(&inside, header::TRACESTATE),
        Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
    );
}

#[test]
fn sentry_trace_wins_over_traceparent() {
    let sentry_trace = format!("{INCOMING_TRACE}-{INCOMING_SPAN}-0");
    let other = "00-fedcba9876543210fedcba9876543210-0123456789abcdef-01";
    for order in [[0, 1], [1, 0]] {
        let headers = [
            (header::SENTRY_TRACE, sentry_trace.as_str()),
            (header::TRACEPARENT, other),
        ];
        let ctx = TraceContext::from_headers(order.map(|i| headers[i])).unwrap();
        assert_eq!(ctx.trace_id().unwrap().to_string(), INCOMING_TRACE);
        assert_eq!(ctx.sampled(), Some(false));
    }
    // An invalid sentry-trace leaves the traceparent to continue.
    let ctx =
        TraceContext::from_headers([(header::SENTRY_TRACE, "junk"), (header::TRACEPARENT, other)])
            .unwrap();
    assert_eq!(
        ctx.parent_span_id().unwrap().to_string(),
        "0123456789abcdef"
    );
    // W3C: two traceparent headers are no traceparent.
    assert_eq!(
        TraceContext::from_headers([(header::TRACEPARENT, other), (header::TRACEPARENT, other)])
            .unwrap_err(),
        HeaderError::TraceparentDuplicated
    );
}

/// The `tracestate` a context rebuilt from a `traceparent` and these `tracestate` header lines
/// sends on.
fn passed_on_tracestate(lines: &[&str]) -> Option<String> {
    let traceparent = format!("00-{INCOMING_TRACE}-{INCOMING_SPAN}-01");
    let mut incoming = vec![(header::TRACEPARENT, traceparent.as_str())];
    incoming.extend(lines.iter().map(|line| (header::TRACESTATE, *line)));
    let ctx = TraceContext::from_headers(incoming).expect("a valid traceparent");
    assert_eq!(ctx.trace_id().unwrap().to_string(), INCOMING_TRACE);
    header(&ctx.to_headers(), header::TRACESTATE).map(str::to_owned)
}

#[test]
fn a_tracestate_key_that_repeats_is_passed_on_as_it_came() {
    // W3C lets a vendor keep or drop the duplicates of keys it did not write; the list stays.
    for (lines, sent) in [
        (&["foo=1,foo=1"][..], "foo=1,foo=1"),
        (&["foo=1,foo=2"], "foo=1,foo=2"),
        (&["foo=1", "foo=1"], "foo=1,foo=1"),
        (&["foo=1", "foo=2"], "foo=1,foo=2"),
        (&["rojo=1,congo=2,rojo=3"], "rojo=1,congo=2,rojo=3"),
    ] {
        assert_eq!(
            passed_on_tracestate(lines).as_deref(),
            Some(sent),
            "{lines:?}"
        );
    }
}

#[test]
fn a_tracestate_key_may_hold_at_signs_anywhere_but_first() {
    for list in [
        "foo@=1,bar=2",
        "foo@@bar=1,bar=2",
        "foo@bar@baz=1,bar=2",
        "tenant@vendor=x,bar=2",
        "1tenant@vendor=x",
        "7=x",
    ] {
        assert_eq!(passed_on_tracestate(&[list]).as_deref(), Some(list));
    }
    // A key that starts with `@` (or is not lower case) makes the whole list invalid.
    for list in ["@foo=1,bar=2", "bar=2,@=1", "bar=2,foo@Vendor=1"] {
        assert_eq!(passed_on_tracestate(&[list]), None, "{list}");
    }
}

#[test]
fn tracestate_header_lines_combine_in_order_within_the_key_limit() {
    let longest = "z".repeat(256);
    let at_signs = [
        format!("{}@{}", "t".repeat(241), "v".repeat(14)),
        format!("{}@v", "t".repeat(242)),
        format!("t@{}", "v".repeat(15)),
    ];
    for key in std::iter::once(&longest).chain(&at_signs) {
        assert!(key.len() <= 256, "{key}");
        let second = format!("{key}=1");
        assert_eq!(
            passed_on_tracestate(&["foo=1", &second]),
            Some(format!("foo=1,{second}")),
            "{key}"
        );
    }
    // A 257-character key is over the limit: the whole combined list is dropped.
    let over = format!("{}=1", "z".repeat(257));
    assert_eq!(passed_on_tracestate(&["foo=1", &over]), None);
    // Lines keep their order; empty lines and members are left out.
    assert_eq!(
        passed_on_tracestate(&["foo=1,bar=2", "", "rojo=1,congo=2", " , ", "baz=3"]).as_deref(),
        Some("foo=1,bar=2,rojo=1,congo=2,baz=3")
    );
}

/// Which org id a client has, and how it got it.
#[derive(Debug, Clone, Copy)]
enum ClientOrg {
    Option(u64),
    DsnHost(u64),
    None,
}

fn client_options(org: ClientOrg, strict: bool) -> sentry::ClientOptions {
    let mut options = match org {
        ClientOrg::DsnHost(id) => options_with(&format!("https://key@o{id}.ingest.sentry.io/1")),
        ClientOrg::Option(id) => {
            let mut options = options_with("https://key@sentry.example.com/1");
            options.org_id = Some(id.into());
            options
        }
        ClientOrg::None => options_with("https://key@sentry.example.com/1"),
    };
    options.strict_trace_continuation = strict;
    options
}

#[test]
fn the_org_rule_decides_as_sentrys_continue_from_headers_does() {
    let clients = [
        ClientOrg::Option(42),
        ClientOrg::DsnHost(42),
        ClientOrg::None,
    ];
    let mut cases = 0;
    for incoming_org in [Some(42), Some(7), None] {
        for client in clients {
            for strict in [false, true] {
                let incoming = upstream(incoming_org);
                // What this crate does with a remote context...
                let mut inside = Vec::new();
                let ours = capture(client_options(client, strict), || {
                    TraceContext::from_headers(pairs(&incoming)).unwrap().run(
                        "ours",
                        "task",
                        || inside = TraceContext::capture().to_headers(),
                    );
                });
                // ...and what sentry's own continue_from_headers does with the same headers.
                let sentrys = capture(client_options(client, strict), || {
                    let ctx = sentry::TransactionContext::continue_from_headers(
                        "sentrys",
                        "task",
                        pairs(&incoming),
                    );
                    sentry::start_transaction(ctx).finish();
                });
                let client_org = match client {
                    ClientOrg::Option(id) | ClientOrg::DsnHost(id) => Some(id),
                    ClientOrg::None => None,
                };
                let expected = match (incoming_org, client_org) {
                    (Some(a), Some(b)) => a == b,
                    (None, None) => true,
                    _ => !strict,
                };
                let case = format!("incoming {incoming_org:?}, client {client:?}, strict {strict}");
                let ours_tx = tx_trace(ours.only("ours"));
                let sentrys_tx = tx_trace(sentrys.only("sentrys"));
                let continued = ours_tx.trace_id.to_string() == INCOMING_TRACE;
                assert_eq!(continued, expected, "{case}");
                assert_eq!(
                    sentrys_tx.trace_id.to_string() == INCOMING_TRACE,
                    expected,
                    "sentry itself, {case}"
                );
                let sent = header(&inside, header::BAGGAGE).unwrap();
                if continued {
                    assert_eq!(ours_tx.parent_span_id.unwrap().to_string(), INCOMING_SPAN);
                    assert_eq!(sent, header(&incoming, header::BAGGAGE).unwrap(), "{case}");
                } else {
                    // A new trace with this service as its head: nothing of the foreign one.
                    assert_eq!(ours_tx.parent_span_id, None, "{case}");
                    assert_eq!(sentrys_tx.parent_span_id, None, "{case}");
                    let baggage = entries(sent);
                    assert_eq!(
                        baggage[0],
                        ("sentry-trace_id".to_owned(), ours_tx.trace_id.to_string())
                    );
                    assert!(baggage.contains(&("sentry-public_key".into(), "key".into())));
                    assert!(baggage.contains(&("sentry-transaction".into(), "ours".into())));
                    assert!(
                        !sent.contains("acme") && !sent.contains("upstream"),
                        "{sent}"
                    );
                }
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 18);
}

#[test]
fn a_rejected_baggage_never_lets_a_foreign_trace_in() {
    // The org id sits in a baggage that breaks the W3C grammar: the baggage is ignored whole, and
    // its org id counts as unreadable, never as absent.
    let headers = [
        (
            header::SENTRY_TRACE,
            format!("{INCOMING_TRACE}-{INCOMING_SPAN}-1"),
        ),
        (header::BAGGAGE, "sentry-org_id=7,bad key=1".to_owned()),
    ];
    let captured = capture(client_options(ClientOrg::Option(42), false), || {
        TraceContext::from_headers(pairs(&headers))
            .unwrap()
            .run("ours", "task", || ());
    });
    assert_ne!(
        tx_trace(captured.only("ours")).trace_id.to_string(),
        INCOMING_TRACE
    );
}

#[test]
fn serde_carries_the_same_headers_and_reads_old_payloads() {
    let incoming = upstream(None);
    let ctx = TraceContext::from_headers(pairs(&incoming)).unwrap();
    let json = serde_json::to_value(&ctx).unwrap();
    assert_eq!(json["sentry-trace"], incoming[0].1);
    assert_eq!(json["baggage"], incoming[1].1);
    assert_eq!(
        json["traceparent"],
        format!("00-{INCOMING_TRACE}-{INCOMING_SPAN}-01")
    );
    let back: TraceContext = serde_json::from_value(json).unwrap();
    assert_eq!(back.to_headers(), ctx.to_headers());

    // A payload written before baggage and traceparent were carried.
    let old = format!(
        r#"{{"question":"why?","trace":{{"sentry-trace":"{INCOMING_TRACE}-{INCOMING_SPAN}-1"}}}}"#
    );
    #[derive(serde::Deserialize)]
    struct Job {
        trace: TraceContext,
    }
    let job: Job = serde_json::from_str(&old).unwrap();
    let captured = capture(sampled(), || job.trace.run("job", "queue.process", || ()));
    let tx = tx_trace(captured.only("job"));
    assert_eq!(tx.trace_id.to_string(), INCOMING_TRACE);
    assert_eq!(tx.parent_span_id.unwrap().to_string(), INCOMING_SPAN);
    // A payload from a W3C-only producer.
    let w3c: TraceContext = serde_json::from_str(&format!(
        r#"{{"traceparent":"00-{INCOMING_TRACE}-{INCOMING_SPAN}-01","tracestate":"k=v"}}"#
    ))
    .unwrap();
    assert_eq!(w3c.trace_id().unwrap().to_string(), INCOMING_TRACE);
    assert_eq!(header(&w3c.to_headers(), header::TRACESTATE), Some("k=v"));
}

#[test]
fn the_frozen_context_reaches_hand_forked_hubs_and_outlives_the_continuation() {
    // A trace of its own: a context sent after its continuation ended finds what the trace
    // carries by its id, which other tests running beside this one must not be continuing.
    let incoming: Vec<_> = upstream(None)
        .into_iter()
        .map(|(name, value)| {
            (
                name,
                value.replace(INCOMING_TRACE, "5eeded0fa11b0a7d5eeded0fa11b0a7d"),
            )
        })
        .collect();
    let sent = header(&incoming, header::BAGGAGE).unwrap().to_owned();
    let mut forked_by_hand = Vec::new();
    let mut kept = None;
    capture(options_with("https://mine@o42.ingest.sentry.io/9"), || {
        TraceContext::from_headers(pairs(&incoming))
            .unwrap()
            .run("job", "queue.process", || {
                // A hub forked by hand (as `bind_hub(Hub::new_from_top(..))` does).
                let hub = Arc::new(sentry::Hub::new_from_top(sentry::Hub::current()));
                forked_by_hand = sentry::Hub::run(hub, || TraceContext::capture().to_headers());
                // A context captured here and sent after the job is over.
                kept = Some(TraceContext::capture());
            });
    });
    assert_eq!(
        header(&forked_by_hand, header::BAGGAGE),
        Some(sent.as_str())
    );
    let later = kept.unwrap().to_headers();
    assert_eq!(header(&later, header::BAGGAGE), Some(sent.as_str()));
}
