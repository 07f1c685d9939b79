//! Outgoing HTTP in the caller's trace (feature `reqwest`): [`TraceRequests`], a
//! [reqwest-middleware](https://docs.rs/reqwest-middleware) middleware.
//!
//! A continuation that calls another service with reqwest sends nothing Sentry can follow: no
//! span times the call, and the service called starts a trace of its own. Add `TraceRequests` to
//! the client, once, where it is built; every request sent through it then
//!
//! - is recorded as an `http.client` span, a child of the active span (the continuation, or a
//!   span open inside it), in the shape of Sentry's Requests module: description
//!   `METHOD scheme://host[:port]/path`, the data below, and a status from the response;
//! - carries the propagation headers of that span (`sentry-trace`, `baggage`, `traceparent`, and
//!   `tracestate` when the trace came with one: whatever [`TraceContext::to_headers`] writes), so
//!   the service called continues the trace with the `http.client` span as its parent.
//!
//! The active span is read where the request is sent: when the future `send()` returns is first
//! polled, under the hub of the task that polls it. Await it in the traced code, or spawn it
//! traced (`#[traced_spawn]`, [`ContinueTrace`](crate::ContinueTrace)): a plain `tokio::spawn`
//! runs it under the worker thread's hub, outside the trace.
//!
//! ```text
//! tx   http.server  POST /slack/commands               the request
//! └─ tx   task  bot::send_reply                         #[traced_spawn]
//!    └─ span http.client  POST https://slack.com/api/chat.postMessage   200  ok
//!       └─ tx   http.server  POST /api/chat.postMessage                  the service called
//! ```
//!
//! | data key | value |
//! |---|---|
//! | `http.request.method` | the method, `GET` |
//! | `url` | the URL without its query, fragment, user name or password |
//! | `server.address` | the host: a name, or an IP address without brackets |
//! | `server.port` | the port, when it is not the scheme's default |
//! | `http.response.status_code` | the status code, when a response came |
//! | `http.response_content_length` | the response's `Content-Length`, when it has one |
//! | `http.query` | the query string without `?`, only with the client option `send_default_pii` |
//!
//! The query string can hold credentials (`?api_key=`), so it is left out of the description and
//! of `url`, and recorded as `http.query` only when the client's `send_default_pii` is on, as
//! Sentry's Python SDK does; a user name or password in the URL is never recorded. The fragment
//! is never sent by the client and never recorded.
//!
//! The status comes from the response code as Sentry's SDKs map it: below 400 `ok`; 401
//! `unauthenticated`, 403 `permission_denied`, 404 `not_found`, 409 `already_exists`, 413
//! `failed_precondition`, 429 `resource_exhausted`, other 4xx `invalid_argument`; 501
//! `unimplemented`, 503 `unavailable`, 504 `deadline_exceeded`, other 5xx `internal_error`.
//! Without a response, a timeout is `deadline_exceeded` and any other error (refused connection,
//! DNS, TLS, a failing middleware further down) `internal_error`; a request dropped before it
//! completed (a `select!`, a `tokio::time::timeout`) finishes its span as `cancelled`.
//!
//! ## Without an active span
//!
//! With no active span there is no span to record, but the request still carries the scope's
//! trace ([`TraceContext::capture`]'s headers), as Sentry's own SDKs do, so the service called
//! joins the trace of the caller's errors. With no Sentry client bound nothing is added.
//!
//! ## Headers the request already has
//!
//! A request that already carries `sentry-trace` or `traceparent` was given its trace by the code
//! that built it (forwarding a context from a queue message, say): its propagation headers are
//! left exactly as they are, and the span is still recorded. Otherwise the middleware sets
//! `sentry-trace`, `traceparent` and `tracestate` (when the trace has one), and merges `baggage`:
//! the trace's `sentry-*` entries first, then the entries the request had that are not `sentry-*`,
//! in order, as far as W3C's limits (64 entries, 8192 bytes) allow. A `baggage` value that is not
//! visible ASCII is left alone, and then none is added.
//!
//! ## Where it goes in the chain
//!
//! Each middleware call is one span. After a retry middleware
//! (`.with(retry).with(TraceRequests::new())`) every attempt is a span of its own and each
//! attempt's headers name it, which is how OpenTelemetry's HTTP conventions count resends;
//! before it, one span covers every attempt. Redirects that reqwest follows are inside the one
//! request: the span has the first URL and the final status.
//!
//! ## Versions
//!
//! `TraceRequests` implements the `Middleware` trait of `reqwest-middleware` 0.5, which is built
//! on reqwest 0.13; use those majors in the application (`cargo tree -i reqwest-middleware` shows
//! one version). The feature adds no TLS stack: reqwest's TLS is the one the application chooses.
//!
//! ## Example
//!
//! A service on loopback that returns the `sentry-trace` header it received, called from inside a
//! request transaction:
//!
//! ```
//! use reqwest_middleware::ClientBuilder;
//! use traced_spawn::reqwest::TraceRequests;
//! # use reqwest_middleware::reqwest;
//! # use std::io::{BufRead, BufReader, Write};
//! # let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! # let url = format!("http://{}/api/users?id=7", listener.local_addr().unwrap());
//! # std::thread::spawn(move || {
//! #     let (mut stream, _) = listener.accept().unwrap();
//! #     let mut reader = BufReader::new(stream.try_clone().unwrap());
//! #     let mut sentry_trace = String::new();
//! #     loop {
//! #         let mut line = String::new();
//! #         reader.read_line(&mut line).unwrap();
//! #         if line.trim().is_empty() { break; }
//! #         if let Some(value) = line.strip_prefix("sentry-trace: ") {
//! #             sentry_trace = value.trim().to_owned();
//! #         }
//! #     }
//! #     let head = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length";
//! #     write!(stream, "{head}: {}\r\n\r\n{sentry_trace}", sentry_trace.len()).unwrap();
//! # });
//! # let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
//! # let mut received = String::new();
//! # let envelopes = sentry::test::with_captured_envelopes_options(|| {
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! # rt.block_on(async {
//! // Built once, shared by every request.
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(TraceRequests::new())
//!     .build();
//!
//! let tx_ctx = sentry::TransactionContext::new("GET /users", "http.server");
//! let request = sentry::start_transaction(tx_ctx);
//! sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
//!
//! let response = client.get(&url).send().await.unwrap(); // url: http://127.0.0.1:PORT/api/users?id=7
//! received = response.text().await.unwrap(); // the sentry-trace header the service received
//!
//! request.finish();
//! # });
//! # }, options);
//! # let Some(sentry::protocol::EnvelopeItem::Transaction(tx)) = envelopes[0].items().next() else {
//! #     panic!("no transaction")
//! # };
//! let span = &tx.spans[0]; // in the request's transaction
//! assert_eq!(span.op.as_deref(), Some("http.client"));
//! let description = span.description.as_deref().unwrap();
//! assert!(description.starts_with("GET http://127.0.0.1:"));
//! assert!(description.ends_with("/api/users")); // no query string
//! assert_eq!(span.data["http.response.status_code"], 200);
//! assert_eq!(span.status, Some(sentry::protocol::SpanStatus::Ok));
//! // The service received the headers of the http.client span.
//! assert_eq!(received, format!("{}-{}-1", span.trace_id, span.span_id));
//! ```

use std::fmt;

use reqwest_middleware::reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH};
use reqwest_middleware::reqwest::{Request, Response, StatusCode, Url};
use reqwest_middleware::{Middleware, Next};
use sentry::protocol::{SpanStatus, Value};
use sentry::{Hub, Span, TransactionOrSpan};

use crate::{header, TraceContext};

/// Op of the span around an outgoing request: `http.client`, as Sentry's Requests module reads it.
const OP: &str = "http.client";

/// W3C baggage limits, which the merged `baggage` header keeps to.
const BAGGAGE_MAX_MEMBERS: usize = 64;
const BAGGAGE_MAX_BYTES: usize = 8192;

/// A reqwest-middleware middleware that records each request as an `http.client` span of the
/// active span and sends that span's propagation headers, so the service called continues the
/// trace. The [module documentation](self) lists the data, the statuses and how existing headers
/// are treated.
///
/// It holds no state: one value serves every request of a client, from any task.
///
/// ```
/// use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
/// use traced_spawn::reqwest::TraceRequests;
/// # use reqwest_middleware::reqwest;
///
/// let client: ClientWithMiddleware = ClientBuilder::new(reqwest::Client::new())
///     .with(TraceRequests::new())
///     .build();
/// ```
///
/// In a traced continuation, the request is a child span of the continuation and the service
/// called continues from it:
///
/// ```no_run
/// use reqwest_middleware::ClientWithMiddleware;
/// use traced_spawn::traced_spawn;
///
/// #[traced_spawn]
/// async fn post_reply(client: ClientWithMiddleware, text: String) -> reqwest_middleware::Result<()> {
///     client
///         .post("https://slack.com/api/chat.postMessage")
///         .body(text)
///         .send()
///         .await?
///         .error_for_status()?;
///     Ok(())
/// }
/// ```
#[derive(Clone, Copy, Default)]
pub struct TraceRequests {
    _private: (),
}

impl TraceRequests {
    /// The middleware; add it to a client with `ClientBuilder::with`.
    ///
    /// ```
    /// # use reqwest_middleware::reqwest;
    /// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
    ///     .with(traced_spawn::reqwest::TraceRequests::new())
    ///     .build();
    /// # let _ = client;
    /// ```
    #[must_use]
    pub fn new() -> TraceRequests {
        TraceRequests::default()
    }
}

impl fmt::Debug for TraceRequests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TraceRequests")
    }
}

#[async_trait::async_trait]
impl Middleware for TraceRequests {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let span = ClientSpan::start(&mut request);
        let result = next.run(request, extensions).await;
        span.finish(&result);
        result
    }
}

/// The `http.client` span of one request, if there is an active span to hang it from. Dropped
/// before [`ClientSpan::finish`] (the request's future was dropped), it finishes as `cancelled`.
struct ClientSpan {
    span: Option<Span>,
}

impl ClientSpan {
    /// Opens the span under the active span and puts the propagation headers on `request`.
    fn start(request: &mut Request) -> ClientSpan {
        let parent = sentry::configure_scope(|scope| scope.get_span());
        let span = parent.map(|parent| open(&parent, request));
        // The service called hangs under the http.client span.
        let active = span.clone().map(TransactionOrSpan::from);
        let ctx = TraceContext::capture_under(active.as_ref());
        propagate(request.headers_mut(), ctx.to_headers());
        ClientSpan { span }
    }

    /// Records the response (or the error) and finishes the span.
    fn finish(mut self, result: &reqwest_middleware::Result<Response>) {
        let Some(span) = self.span.take() else {
            return;
        };
        match result {
            Ok(response) => {
                let status = response.status();
                span.set_data("http.response.status_code", Value::from(status.as_u16()));
                let length = response
                    .headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<u64>().ok());
                if let Some(length) = length {
                    span.set_data("http.response_content_length", Value::from(length));
                }
                span.set_status(status_of(status));
            }
            Err(reqwest_middleware::Error::Reqwest(err)) if err.is_timeout() => {
                span.set_status(SpanStatus::DeadlineExceeded);
            }
            Err(_) => span.set_status(SpanStatus::InternalError),
        }
        span.finish();
    }
}

impl Drop for ClientSpan {
    fn drop(&mut self) {
        if let Some(span) = self.span.take() {
            span.set_status(SpanStatus::Cancelled);
            span.finish();
        }
    }
}

/// Opens the `http.client` span of `request` under `parent`, with the request's data.
fn open(parent: &TransactionOrSpan, request: &Request) -> Span {
    let url = request.url();
    let method = request.method().as_str();
    let clean = clean_url(url);
    let span = parent.start_child(OP, &format!("{method} {clean}"));
    span.set_data("http.request.method", Value::from(method));
    span.set_data("url", Value::from(clean));
    if let Some(host) = url.host_str() {
        // An IPv6 literal is written in brackets in a URL, and without them as an address.
        let address = host.trim_start_matches('[').trim_end_matches(']');
        span.set_data("server.address", Value::from(address));
    }
    if let Some(port) = url.port() {
        span.set_data("server.port", Value::from(port));
    }
    if let Some(query) = url.query().filter(|query| !query.is_empty()) {
        if Hub::current()
            .client()
            .is_some_and(|client| client.options().send_default_pii)
        {
            span.set_data("http.query", Value::from(query));
        }
    }
    span
}

/// `url` without user name, password, query or fragment.
fn clean_url(url: &Url) -> String {
    let mut url = url.clone();
    // Both fail only for URLs that cannot have a host, which have no credentials either.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.into()
}

/// The span status of a response, as Sentry's SDKs map HTTP status codes.
fn status_of(status: StatusCode) -> SpanStatus {
    match status.as_u16() {
        0..=399 => SpanStatus::Ok,
        401 => SpanStatus::Unauthenticated,
        403 => SpanStatus::PermissionDenied,
        404 => SpanStatus::NotFound,
        409 => SpanStatus::AlreadyExists,
        413 => SpanStatus::FailedPrecondition,
        429 => SpanStatus::ResourceExhausted,
        400..=499 => SpanStatus::InvalidArgument,
        501 => SpanStatus::Unimplemented,
        503 => SpanStatus::Unavailable,
        504 => SpanStatus::DeadlineExceeded,
        500..=599 => SpanStatus::InternalError,
        _ => SpanStatus::UnknownError,
    }
}

/// Puts the trace's propagation headers on a request, unless it already names a trace.
fn propagate(headers: &mut HeaderMap, trace: Vec<(&'static str, String)>) {
    if headers.contains_key(header::SENTRY_TRACE) || headers.contains_key(header::TRACEPARENT) {
        return;
    }
    for (name, value) in trace {
        let value = if name == header::BAGGAGE {
            match merge_baggage(value, headers) {
                Some(value) => value,
                None => continue,
            }
        } else {
            value
        };
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

/// The trace's baggage followed by the request's own entries that are not Sentry's, within W3C's
/// limits; `None` when the request's baggage cannot be read (it is then left as it is).
fn merge_baggage(ours: String, headers: &HeaderMap) -> Option<String> {
    let mut theirs = Vec::new();
    for value in headers.get_all(header::BAGGAGE) {
        theirs.push(value.to_str().ok()?);
    }
    if theirs.is_empty() {
        return Some(ours);
    }
    let mut merged = ours;
    let mut members = merged.split(',').count();
    let kept = theirs
        .iter()
        .flat_map(|value| value.split(','))
        .map(|member| member.trim_matches([' ', '\t']))
        .filter(|member| !member.is_empty() && !member.starts_with("sentry-"));
    for member in kept {
        if members == BAGGAGE_MAX_MEMBERS {
            break;
        }
        if merged.len() + 1 + member.len() > BAGGAGE_MAX_BYTES {
            continue;
        }
        merged.push(',');
        merged.push_str(member);
        members += 1;
    }
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const OURS: &str = "sentry-trace_id=0123456789abcdef0123456789abcdef,sentry-sampled=true";

    fn trace() -> Vec<(&'static str, String)> {
        vec![
            (
                header::SENTRY_TRACE,
                "0123456789abcdef0123456789abcdef-0123456789abcdef-1".into(),
            ),
            (header::BAGGAGE, OURS.into()),
            (
                header::TRACEPARENT,
                "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01".into(),
            ),
        ]
    }

    #[test]
    fn statuses_follow_sentrys_http_mapping() {
        let cases = [
            (200, SpanStatus::Ok),
            (204, SpanStatus::Ok),
            (304, SpanStatus::Ok),
            (400, SpanStatus::InvalidArgument),
            (401, SpanStatus::Unauthenticated),
            (403, SpanStatus::PermissionDenied),
            (404, SpanStatus::NotFound),
            (409, SpanStatus::AlreadyExists),
            (413, SpanStatus::FailedPrecondition),
            (429, SpanStatus::ResourceExhausted),
            (500, SpanStatus::InternalError),
            (501, SpanStatus::Unimplemented),
            (502, SpanStatus::InternalError),
            (503, SpanStatus::Unavailable),
            (504, SpanStatus::DeadlineExceeded),
            (600, SpanStatus::UnknownError),
        ];
        for (code, status) in cases {
            assert_eq!(
                status_of(StatusCode::from_u16(code).unwrap()),
                status,
                "{code}"
            );
        }
    }

    #[test]
    fn urls_lose_credentials_query_and_fragment() {
        let url =
            Url::parse("https://user:secret@api.example.com:8443/v1/items?key=k#top").unwrap();
        assert_eq!(clean_url(&url), "https://api.example.com:8443/v1/items");
        let url = Url::parse("http://[::1]:80/").unwrap();
        assert_eq!(clean_url(&url), "http://[::1]/");
    }

    #[test]
    fn headers_are_added_to_a_request_without_a_trace() {
        let mut map = headers(&[("accept", "*/*")]);
        propagate(&mut map, trace());
        assert_eq!(map["sentry-trace"], trace()[0].1);
        assert_eq!(map["baggage"], OURS);
        assert_eq!(map["traceparent"], trace()[2].1);
        assert_eq!(map["accept"], "*/*");
    }

    #[test]
    fn a_request_that_names_its_trace_is_left_alone() {
        for name in ["sentry-trace", "traceparent", "Sentry-Trace"] {
            let mut map = headers(&[("baggage", "tenant=acme")]);
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("theirs"),
            );
            let before = map.clone();
            propagate(&mut map, trace());
            assert_eq!(map, before, "{name}");
        }
    }

    #[test]
    fn baggage_keeps_the_requests_own_entries_after_the_traces() {
        let mut map = headers(&[
            ("baggage", "tenant=acme, sentry-trace_id=stale"),
            ("baggage", "region=eu"),
        ]);
        propagate(&mut map, trace());
        let all: Vec<_> = map.get_all("baggage").iter().collect();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0], &format!("{OURS},tenant=acme,region=eu"));
    }

    #[test]
    fn merged_baggage_keeps_to_w3c_limits() {
        let many = (0..100)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let merged = merge_baggage(OURS.into(), &headers(&[("baggage", &many)])).unwrap();
        assert_eq!(merged.split(',').count(), BAGGAGE_MAX_MEMBERS);
        assert!(merged.starts_with(OURS));

        let big = format!("big={}", "x".repeat(BAGGAGE_MAX_BYTES));
        let merged = merge_baggage(
            OURS.into(),
            &headers(&[("baggage", &format!("{big},small=1"))]),
        )
        .unwrap();
        assert_eq!(merged, format!("{OURS},small=1"));
    }

    #[test]
    fn unreadable_baggage_is_left_as_it_is() {
        let mut map = HeaderMap::new();
        map.insert("baggage", HeaderValue::from_bytes(b"tenant=\xff").unwrap());
        let before = map.clone();
        propagate(&mut map, trace());
        assert_eq!(map["baggage"], before["baggage"]);
        assert_eq!(map["sentry-trace"], trace()[0].1);
    }
}
