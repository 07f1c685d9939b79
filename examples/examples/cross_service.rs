//! Across a process boundary: one service calls another over HTTP with the propagation headers.
//!
//! ```text
//! cargo run -p traced-spawn-examples --example cross_service
//! ```
//!
//! The `frontend` answers its request at once and offloads the call to the `answers` service to a
//! tokio task. The task sends the headers made by `TraceContext::to_headers`: `sentry-trace`,
//! `baggage` (the trace's dynamic sampling context: public key, release, environment, sample
//! rate, sampling decision) and W3C `traceparent`, which the `answers` service prints; it rebuilds
//! the context with `TraceContext::from_headers` and handles the request as a continuation of it.
//! One trace, two services. (Both run in this process for the example, on 127.0.0.1; in real life
//! they are two processes reporting to the same Sentry organization, or an OpenTelemetry-traced
//! service reading `traceparent`.)

use std::process::ExitCode;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use traced_spawn::{header, traced_spawn, Builder, TraceContext};

// ---- the `answers` service ----------------------------------------------------------------

/// `POST /answer`: continues the caller's trace from the request headers.
async fn answer(headers: HeaderMap, question: String) -> Result<String, String> {
    for name in [
        header::SENTRY_TRACE,
        header::BAGGAGE,
        header::TRACEPARENT,
        header::TRACESTATE,
    ] {
        if let Some(value) = headers.get(name).and_then(|value| value.to_str().ok()) {
            println!("answers: received {name}: {value}");
        }
    }
    let pairs = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
    // Headers are untrusted input: a missing or malformed `sentry-trace` is an error, never partly
    // used. Fall back to the local context (a new trace, or none).
    let ctx = TraceContext::from_headers(pairs).unwrap_or_else(|_| TraceContext::capture());
    Builder::new("POST /answer")
        .op("http.server")
        .context(ctx)
        .fallible()
        .bind(async move {
            tokio::time::sleep(Duration::from_millis(20)).await; // thinking
            Ok(format!(
                "{} words, all fine",
                question.split_whitespace().count()
            ))
        })
        .await
}

/// Serves the `answers` service on 127.0.0.1, on any free port; returns its base URL.
async fn start_answers_service() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let app = Router::new().route("/answer", post(answer));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

// ---- the `frontend` service -----------------------------------------------------------------

/// The offloaded call: a continuation of the frontend's request, on a tokio task.
#[traced_spawn(name = "frontend::ask_answers_service", err)]
async fn ask_answers_service(
    client: reqwest::Client,
    url: String,
    question: String,
) -> Result<String, reqwest::Error> {
    // Captured here, inside the continuation: the `answers` request hangs under this task.
    let mut request = client.post(format!("{url}/answer")).body(question);
    for (name, value) in TraceContext::capture().to_headers() {
        request = request.header(name, value);
    }
    request.send().await?.error_for_status()?.text().await
}

#[tokio::main]
async fn main() -> ExitCode {
    // Prints each trace as a tree; with SENTRY_DSN set, also sends it there.
    // A release and an environment, which the outgoing baggage carries.
    let reporter = traced_spawn::console::init_with(
        sentry::ClientOptions::new()
            .traces_sample_rate(1.0)
            .release("frontend@1.4.0")
            .environment("example"),
    );
    let answers_url = start_answers_service().await;
    let client = reqwest::Client::new();

    let call = traced_spawn_examples::in_request("POST /ask", || {
        ask_answers_service(client, answers_url, "why is the build red?".to_owned())
    });
    let answer = call.await.expect("frontend task panicked");
    println!("answer: {answer:?}\n");

    // The frontend's continuation, and under it the `answers` service's request.
    let traces = reporter.print_trees();
    traced_spawn_examples::check_linked(&traces, 1, 2)
}
