//! The test service for W3C Trace Context's validation suite (the working group's harness,
//! `test/` of w3c/trace-context), built on the crate's public API only.
//!
//! ```text
//! # serves POST /test on 127.0.0.1:5000 until stopped
//! cargo run -p traced-spawn-examples --example w3c_service
//! cargo run -p traced-spawn-examples --example w3c_service -- --listen 127.0.0.1:0
//! ```
//!
//! `scripts/w3c/run.sh` runs the suite against it (see `scripts/w3c/README.md`).
//!
//! The harness sends `POST /test` with some trace headers and a JSON list of
//! `{"url": ..., "arguments": ...}`; the service calls every `url` in order, `POST` with
//! `arguments` as its JSON body, and the harness checks the `traceparent` and `tracestate` of
//! those calls. Here each request is handled as any service using this crate handles one:
//! `TraceContext::from_headers` continues the incoming trace (with every header line given, so
//! several `tracestate` lines combine), or a new trace starts when the headers hold none; each
//! call is an `http.client` span under the request's transaction, and sends the headers
//! `TraceContext::capture().to_headers()` makes inside that span: a new parent id per call, the
//! trace id and sampled flag kept, `tracestate` passed on.
//!
//! Traces go to `SENTRY_DSN` when it is set; otherwise they are recorded and dropped.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use sentry::protocol::SpanStatus;
use serde::Deserialize;
use traced_spawn::{Builder, TraceContext};

/// One call the harness asks for.
#[derive(Deserialize)]
struct Call {
    url: String,
    #[serde(default)]
    arguments: serde_json::Value,
}

/// `POST /test`: continues the incoming trace and makes the calls asked for, in order. Answers
/// the status of each call (`0` when it could not be made).
async fn handle_test(
    axum::extract::State(http): axum::extract::State<reqwest::Client>,
    headers: HeaderMap,
    Json(calls): Json<Vec<Call>>,
) -> Json<Vec<u16>> {
    // Every header line, in order. A value that is not visible ASCII is passed on lossily rather
    // than skipped: an invalid `tracestate` line then makes the whole list invalid, instead of
    // the other lines being used without it.
    let lines: Vec<(&str, Cow<'_, str>)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), String::from_utf8_lossy(value.as_bytes())))
        .collect();
    let incoming = TraceContext::from_headers(lines.iter().map(|(name, value)| (*name, &**value)));
    let work = make_calls(http, calls);
    let statuses = match incoming {
        Ok(ctx) => {
            Builder::new("POST /test")
                .op("http.server")
                .context(ctx)
                .bind(work)
                .await
        }
        // No valid trace header: this request starts a trace of its own.
        Err(_) => in_new_trace(work).await,
    };
    Json(statuses)
}

/// Runs `work` under an `http.server` transaction that starts a new trace, in a hub of its own.
async fn in_new_trace<F: std::future::Future>(work: F) -> F::Output {
    use sentry::SentryFutureExt as _;

    let hub = Arc::new(sentry::Hub::new_from_top(sentry::Hub::current()));
    let tx = hub.start_transaction(sentry::TransactionContext::new("POST /test", "http.server"));
    hub.configure_scope(|scope| scope.set_span(Some(tx.clone().into())));
    let output = work.bind_hub(hub).await;
    tx.set_status(SpanStatus::Ok);
    tx.finish();
    output
}

/// The calls, in order, each in an `http.client` span under the active span.
async fn make_calls(http: reqwest::Client, calls: Vec<Call>) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(calls.len());
    for call in calls {
        let parent = sentry::configure_scope(|scope| scope.get_span());
        let span = parent.map(|parent| {
            let span = parent.start_child("http.client", &format!("POST {}", call.url));
            span.set_data("http.request.method", "POST".into());
            span.set_data("url", call.url.clone().into());
            span
        });
        // The headers of this call: captured with its span active, so the callee's parent is it.
        let headers = match &span {
            Some(span) => {
                let previous = sentry::configure_scope(|scope| {
                    let previous = scope.get_span();
                    scope.set_span(Some(span.clone().into()));
                    previous
                });
                let headers = TraceContext::capture().to_headers();
                sentry::configure_scope(|scope| scope.set_span(previous));
                headers
            }
            None => TraceContext::capture().to_headers(),
        };
        let mut request = http.post(&call.url).json(&call.arguments);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let status = match request.send().await {
            Ok(response) => {
                let status = response.status();
                // Read the whole answer, so the connection can be reused.
                let _ = response.bytes().await;
                status.as_u16()
            }
            Err(_) => 0,
        };
        if let Some(span) = span {
            span.set_data("http.response.status_code", status.into());
            span.set_status(match status {
                200..=299 => SpanStatus::Ok,
                0 => SpanStatus::UnknownError,
                400..=499 => SpanStatus::InvalidArgument,
                _ => SpanStatus::InternalError,
            });
            span.finish();
        }
        statuses.push(status);
    }
    statuses
}

/// Drops every envelope: the service is only watched through the headers it sends.
struct Discard;

impl sentry::Transport for Discard {
    fn send_envelope(&self, _envelope: sentry::Envelope) {}
}

/// The address to listen on: `--listen ADDR`, default `127.0.0.1:5000`.
fn listen_address() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:5000".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            other => return Err(format!("unknown argument {other:?} (use --listen ADDR)")),
        }
    }
    listen
        .parse()
        .map_err(|err| format!("--listen {listen}: {err}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let addr = match listen_address() {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("w3c_service: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut options = sentry::ClientOptions::new().traces_sample_rate(1.0);
    if std::env::var_os("SENTRY_DSN").is_none() {
        // A client that records (so spans get ids and headers are written) and sends nowhere.
        options.dsn = Some("http://w3c@127.0.0.1:9/0".parse().expect("a valid DSN"));
        options.transport = Some(Arc::new(Arc::new(Discard)));
    }
    let _guard = sentry::init(options);

    // Loopback only: no proxy from the environment between the service and the harness.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    let app = Router::new()
        .route("/test", post(handle_test))
        .with_state(http);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("w3c_service: cannot listen on {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().expect("the bound address");
    // The line scripts and tests wait for.
    println!("w3c_service listening on http://{local}/test");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("w3c_service: {err}");
            ExitCode::FAILURE
        }
    }
}
