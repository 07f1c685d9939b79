//! Outgoing HTTP (feature `reqwest`): `traced_spawn::reqwest::TraceRequests` in a reqwest-middleware
//! client records each request as an `http.client` span of the active span and sends that span's
//! propagation headers. The services called are real, on loopback: an axum server that records
//! the headers it receives, and Sentry's Python SDK behind its own WSGI middleware
//! (scripts/python/peer.py `serve`), which continues the trace on the server side.
//!
//! The Python test needs the peer's virtualenv: `bash scripts/python/setup.sh` (CI runs it).
//! Without it that test is skipped with a notice, except when `CI` is set: then a missing peer is
//! a failure.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use reqwest_middleware::reqwest;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use sentry::protocol::{Span, SpanStatus, Transaction};
use sentry::ClientOptions;
use serde_json::{json, Value};
use traced_spawn::reqwest::TraceRequests;
use traced_spawn::{traced_spawn, TraceContext};
use traced_spawn_tests::{capture, in_request, on_worker, sampled, tx_trace};

/// What the server received: the path and the headers of each request, in order.
type Seen = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

/// An axum server on 127.0.0.1, on a thread and runtime of its own (no Sentry hub of the tests').
/// `/ok` answers 200 with a body, `/slow` after 5 s, `/status/N` with status N, anything else 404.
struct Server {
    base: String,
    seen: Seen,
}

async fn record(State(seen): State<Seen>, uri: Uri, headers: HeaderMap) -> (StatusCode, String) {
    let headers = headers
        .keys()
        .map(|name| {
            let values: Vec<_> = headers
                .get_all(name)
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .collect();
            (name.as_str().to_owned(), values.join(","))
        })
        .collect();
    let path = uri.path().to_owned();
    seen.lock().unwrap().push((path.clone(), headers));
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let status = match path.as_str() {
        "/ok" | "/slow" => StatusCode::OK,
        _ => path
            .strip_prefix("/status/")
            .and_then(|code| code.parse().ok())
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or(StatusCode::NOT_FOUND),
    };
    (status, "hello".to_owned())
}

fn serve() -> Server {
    let seen = Seen::default();
    let state = seen.clone();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let app = Router::new().fallback(record).with_state(state);
            axum::serve(listener, app).await.unwrap();
        });
    });
    Server {
        base: format!("http://{}", addr_rx.recv().unwrap()),
        seen,
    }
}

impl Server {
    /// The headers of the one request the server received at `path`.
    fn headers_at(&self, path: &str) -> BTreeMap<String, String> {
        let seen = self.seen.lock().unwrap();
        let found: Vec<_> = seen.iter().filter(|(p, _)| p == path).collect();
        assert_eq!(found.len(), 1, "one request at {path}: {seen:?}");
        found[0].1.clone()
    }
}

fn client() -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(TraceRequests::new())
        .build()
}

fn options() -> ClientOptions {
    let mut options = sampled();
    options.dsn = Some("https://rustkey@o42.ingest.sentry.io/9".parse().unwrap());
    options.release = Some("shop@1.2.0".into());
    options
}

#[traced_spawn]
async fn call(client: ClientWithMiddleware, url: String) -> Result<u16, reqwest_middleware::Error> {
    let response = client.get(url).send().await?;
    Ok(response.status().as_u16())
}

/// Runs `call(url)` for each url as the continuation of a request transaction `POST /slack`, one
/// after the other, and returns what each returned.
fn calls_in_request(
    client: ClientWithMiddleware,
    urls: Vec<String>,
) -> Vec<Result<u16, reqwest_middleware::Error>> {
    on_worker(async move {
        let mut results = Vec::new();
        for url in urls {
            let handle = in_request("POST /slack", |_| call(client.clone(), url));
            results.push(handle.await.unwrap());
        }
        results
    })
}

/// Awaits `future` with a transaction `name` (op `http.server`) as the active span of the current
/// hub, then finishes it: a request handler awaiting its own outgoing calls.
async fn in_request_async<F: Future>(name: &str, future: F) -> F::Output {
    let tx = sentry::start_transaction(sentry::TransactionContext::new(name, "http.server"));
    let previous = sentry::configure_scope(|scope| {
        let previous = scope.get_span();
        scope.set_span(Some(tx.clone().into()));
        previous
    });
    let out = future.await;
    sentry::configure_scope(|scope| scope.set_span(previous));
    tx.finish();
    out
}

/// The one `http.client` span of a transaction.
fn http_client_span<'a>(tx: &'a Transaction<'static>) -> &'a Span {
    let spans: Vec<_> = tx
        .spans
        .iter()
        .filter(|span| span.op.as_deref() == Some("http.client"))
        .collect();
    assert_eq!(spans.len(), 1, "one http.client span in {:?}", tx.name);
    spans[0]
}

#[test]
fn a_continuation_records_an_http_client_span_the_service_continues_from() {
    let server = serve();
    let port = server
        .base
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    let url = format!("{}/ok?user=7", server.base);
    let captured = capture(options(), || {
        let results = calls_in_request(client(), vec![url]);
        assert_eq!(results[0].as_ref().unwrap(), &200);
    });

    let request = tx_trace(captured.only("POST /slack"));
    let call = captured.only("reqwest_client::call");
    let cont = tx_trace(call);
    assert_eq!(cont.trace_id, request.trace_id);
    assert_eq!(cont.parent_span_id, Some(request.span_id));
    assert_eq!(cont.status, Some(SpanStatus::Ok));

    let span = http_client_span(call);
    assert_eq!(span.trace_id, request.trace_id);
    assert_eq!(span.parent_span_id, Some(cont.span_id));
    assert_eq!(
        span.description.as_deref(),
        Some(format!("GET {}/ok", server.base).as_str())
    );
    assert_eq!(span.status, Some(SpanStatus::Ok));
    assert!(span.timestamp.is_some());
    let data = Value::Object(span.data.clone().into_iter().collect());
    assert_eq!(
        data,
        json!({
            "http.request.method": "GET",
            "url": format!("{}/ok", server.base),
            "server.address": "127.0.0.1",
            "server.port": port,
            "http.response.status_code": 200,
            "http.response_content_length": 5,
        })
    );

    // The service received the propagation headers of the http.client span.
    let headers = server.headers_at("/ok");
    let (trace_id, span_id) = (span.trace_id, span.span_id);
    assert_eq!(headers["sentry-trace"], format!("{trace_id}-{span_id}-1"));
    assert_eq!(
        headers["traceparent"],
        format!("00-{trace_id}-{span_id}-01")
    );
    let baggage = &headers["baggage"];
    for entry in [
        format!("sentry-trace_id={trace_id}"),
        "sentry-public_key=rustkey".into(),
        "sentry-org_id=42".into(),
        "sentry-release=shop@1.2.0".into(),
        "sentry-sampled=true".into(),
    ] {
        assert!(
            baggage.split(',').any(|e| e == entry),
            "{entry} in {baggage}"
        );
    }
    // What the server received continues the trace from the http.client span.
    let remote =
        TraceContext::from_headers(headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
    assert_eq!(remote.trace_id(), Some(trace_id));
    assert_eq!(remote.parent_span_id(), Some(span_id));
}

#[test]
fn the_status_comes_from_the_response() {
    let server = serve();
    let cases = [
        ("/ok", 200, SpanStatus::Ok),
        ("/status/204", 204, SpanStatus::Ok),
        ("/missing", 404, SpanStatus::NotFound),
        ("/status/401", 401, SpanStatus::Unauthenticated),
        ("/status/429", 429, SpanStatus::ResourceExhausted),
        ("/status/500", 500, SpanStatus::InternalError),
        ("/status/503", 503, SpanStatus::Unavailable),
    ];
    let urls = cases
        .iter()
        .map(|(path, ..)| format!("{}{path}", server.base))
        .collect();
    let captured = capture(options(), || {
        let results = calls_in_request(client(), urls);
        let codes: Vec<_> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(codes, cases.iter().map(|c| c.1).collect::<Vec<_>>());
    });
    let calls = captured.named("reqwest_client::call");
    assert_eq!(calls.len(), cases.len());
    for (path, code, status) in cases {
        let url = format!("{}{path}", server.base);
        let span = calls
            .iter()
            .map(|tx| http_client_span(tx))
            .find(|span| span.data["url"] == url.as_str())
            .unwrap_or_else(|| panic!("no span for {url}"));
        assert_eq!(span.data["http.response.status_code"], code, "{path}");
        assert_eq!(span.status, Some(status), "{path}");
        // The server received the headers of this request's span.
        let headers = server.headers_at(path);
        assert_eq!(
            headers["sentry-trace"],
            format!("{}-{}-1", span.trace_id, span.span_id)
        );
    }
    // A status is not an error: every continuation returned `Ok`.
    for tx in calls {
        assert_eq!(tx_trace(tx).status, Some(SpanStatus::Ok));
    }
}

#[test]
fn the_query_is_recorded_only_with_send_default_pii_and_credentials_never() {
    let server = serve();
    let authority = server.base.trim_start_matches("http://");
    let url = format!("http://alice:hunter2@{authority}/ok?token=s3cret#frag");
    for pii in [false, true] {
        let mut options = options();
        options.send_default_pii = pii;
        let captured = capture(options, || {
            calls_in_request(client(), vec![url.clone()])[0]
                .as_ref()
                .unwrap();
        });
        let span = http_client_span(captured.only("reqwest_client::call"));
        let clean = format!("{}/ok", server.base);
        assert_eq!(span.description, Some(format!("GET {clean}")));
        assert_eq!(span.data["url"], clean.as_str());
        let json = serde_json::to_string(span).unwrap();
        assert!(
            !json.contains("alice") && !json.contains("hunter2"),
            "{json}"
        );
        assert!(!json.contains("frag"), "{json}");
        match pii {
            false => assert!(!json.contains("s3cret"), "{json}"),
            true => assert_eq!(span.data["http.query"], "token=s3cret"),
        }
    }
}

#[test]
fn a_failed_request_is_an_error_span_and_a_dropped_one_cancelled() {
    let server = serve();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/refused", listener.local_addr().unwrap())
    };
    let slow = format!("{}/slow", server.base);
    let timeout_client = ClientBuilder::new(
        reqwest::Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap(),
    )
    .with(TraceRequests::new())
    .build();
    let captured = capture(options(), || {
        let client = client();
        on_worker(async move {
            // Refused: the error reaches the caller, the span is internal_error.
            let refused = in_request("refused", |_| call(client.clone(), closed));
            assert!(refused.await.unwrap().unwrap_err().is_connect());
            // The client's timeout: deadline_exceeded.
            let timed_out = in_request("timed out", |_| call(timeout_client, slow.clone()));
            assert!(timed_out.await.unwrap().unwrap_err().is_timeout());
            // Dropped by the caller before the response: cancelled.
            in_request_async("dropped", async {
                let sent = client.get(slow).send();
                let sent = tokio::time::timeout(Duration::from_millis(200), sent);
                assert!(sent.await.is_err());
            })
            .await;
        });
    });
    let calls = captured.named("reqwest_client::call");
    let by_parent = |name: &str| {
        let parent = tx_trace(captured.only(name)).span_id;
        let call = calls
            .iter()
            .find(|tx| tx_trace(tx).parent_span_id == Some(parent))
            .unwrap();
        (tx_trace(call).status, http_client_span(call).clone())
    };
    let (status, span) = by_parent("refused");
    assert_eq!(status, Some(SpanStatus::InternalError));
    assert_eq!(span.status, Some(SpanStatus::InternalError));
    assert!(!span.data.contains_key("http.response.status_code"));
    let (_, span) = by_parent("timed out");
    assert_eq!(span.status, Some(SpanStatus::DeadlineExceeded));
    let span = http_client_span(captured.only("dropped")).clone();
    assert_eq!(span.status, Some(SpanStatus::Cancelled));
    assert!(span.timestamp.is_some());
}

#[test]
fn without_an_active_span_the_scope_trace_is_sent_and_without_a_client_nothing() {
    let server = serve();
    let url = format!("{}/ok", server.base);
    let mut expected = String::new();
    let captured = capture(options(), || {
        expected = TraceContext::capture().to_headers()[0].1.clone();
        let client = client();
        let url = url.clone();
        on_worker(async move { client.get(url).send().await.unwrap() });
    });
    assert!(captured.transactions().is_empty());
    assert_eq!(server.headers_at("/ok")["sentry-trace"], expected);

    let url = format!("{}/status/200", server.base);
    let client = client();
    on_worker(async move { client.get(url).send().await.unwrap() });
    let headers = server.headers_at("/status/200");
    for name in ["sentry-trace", "baggage", "traceparent", "tracestate"] {
        assert!(!headers.contains_key(name), "{name}: {headers:?}");
    }
}

#[test]
fn propagation_headers_set_by_hand_are_kept_and_baggage_is_merged() {
    let server = serve();
    let theirs = "0123456789abcdef0123456789abcdef-0123456789abcdef-1";
    let (forwarded, merged) = (
        format!("{}/status/201", server.base),
        format!("{}/status/202", server.base),
    );
    let captured = capture(options(), || {
        let client = client();
        on_worker(in_request_async("POST /slack", async move {
            client
                .get(forwarded)
                .header("sentry-trace", theirs)
                .header(
                    "baggage",
                    "sentry-trace_id=0123456789abcdef0123456789abcdef",
                )
                .send()
                .await
                .unwrap();
            client
                .get(merged)
                .header("baggage", "tenant=acme,sentry-release=stale")
                .send()
                .await
                .unwrap();
        }));
    });
    let request = captured.only("POST /slack");
    assert_eq!(request.spans.len(), 2, "both requests have a span");
    let forwarded = server.headers_at("/status/201");
    assert_eq!(forwarded["sentry-trace"], theirs);
    assert_eq!(
        forwarded["baggage"],
        "sentry-trace_id=0123456789abcdef0123456789abcdef"
    );
    assert!(!forwarded.contains_key("traceparent"));
    let merged = server.headers_at("/status/202");
    let baggage = &merged["baggage"];
    assert!(baggage.starts_with("sentry-trace_id="), "{baggage}");
    assert!(baggage.ends_with(",tenant=acme"), "{baggage}");
    assert!(!baggage.contains("stale"), "{baggage}");
}

/// Calls the Python peer and returns the JSON it answered.
#[traced_spawn]
async fn reply(
    client: ClientWithMiddleware,
    url: String,
) -> Result<Value, reqwest_middleware::Error> {
    let response = client.get(url).send().await?;
    assert_eq!(response.status(), 200);
    let body = response.text().await?;
    Ok(serde_json::from_str(&body).expect("the peer's answer as JSON"))
}

#[test]
fn pythons_server_continues_the_trace_from_the_http_client_span() {
    let Some(python) = traced_spawn_tests::python_peer() else {
        return;
    };
    let mut peer = Command::new(python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/python/peer.py"))
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the python peer");
    let mut stdout = BufReader::new(peer.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).expect("the peer's url");
    let started: Value = serde_json::from_str(&first).expect("the peer's url as JSON");
    let url = format!("{}/hooks/reply", started["url"].as_str().unwrap());

    let mut answer = Value::Null;
    let captured = capture(options(), || {
        let client = client();
        answer = on_worker(async move {
            let handle = in_request("POST /slack", |_| reply(client, url));
            handle.await.unwrap().unwrap()
        });
    });
    drop(peer.stdin.take());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(peer.wait().unwrap().success(), "the python peer failed");
    let sent: Value = serde_json::from_str(rest.trim()).expect("the peer's transactions");

    let call = captured.only("reqwest_client::reply");
    let span = http_client_span(call);
    assert_eq!(span.status, Some(SpanStatus::Ok));
    let (trace_id, span_id) = (span.trace_id.to_string(), span.span_id.to_string());
    // The Python request handler ran in the trace, under the http.client span ...
    assert_eq!(answer["trace_id"], trace_id.as_str(), "{answer}");
    assert_eq!(answer["parent_span_id"], span_id.as_str(), "{answer}");
    assert_eq!(answer["sampled"], true);
    // ... and the transaction it sent says so, with the dynamic sampling context Rust sent.
    let txs = sent["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 1, "{sent}");
    let tx = &txs[0];
    assert_eq!(tx["name"], "python.serve");
    assert_eq!(tx["trace_id"], trace_id.as_str());
    assert_eq!(tx["parent_span_id"], span_id.as_str());
    assert_eq!(tx["span_id"], answer["span_id"]);
    assert_eq!(tx["dsc"]["public_key"], "rustkey");
    assert_eq!(tx["dsc"]["release"], "shop@1.2.0");
    // One trace: the request, the continuation, the http.client span and Python's transaction.
    assert_eq!(
        tx_trace(captured.only("POST /slack")).trace_id,
        span.trace_id
    );
    assert_eq!(tx_trace(call).trace_id, span.trace_id);
}
