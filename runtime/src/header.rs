//! The names of the propagation headers [`TraceContext::to_headers`] writes and
//! [`TraceContext::from_headers`] reads (compared case-insensitively).
//!
//! [`TraceContext::to_headers`]: crate::TraceContext::to_headers
//! [`TraceContext::from_headers`]: crate::TraceContext::from_headers

/// Name of Sentry's trace header: `TRACE_ID-SPAN_ID[-SAMPLED]`, the trace id, the span to hang
/// from and the sampling decision (`1`, `0`, or left out while undecided).
///
/// ```
/// use traced_spawn::{header, TraceContext};
///
/// let value = "0123456789abcdef0123456789abcdef-0123456789abcdef-1";
/// let ctx = TraceContext::from_headers([(header::SENTRY_TRACE, value)]).unwrap();
/// assert_eq!(ctx.sampled(), Some(true));
/// ```
pub const SENTRY_TRACE: &str = "sentry-trace";

/// Name of the W3C baggage header. It carries the trace's dynamic sampling context (`sentry-*`
/// entries) and any third-party entries, which are forwarded.
///
/// ```
/// use traced_spawn::{header, TraceContext};
///
/// let ctx = TraceContext::from_headers([
///     (header::SENTRY_TRACE, "0123456789abcdef0123456789abcdef-0123456789abcdef-1"),
///     (header::BAGGAGE, "sentry-trace_id=0123456789abcdef0123456789abcdef,tenant=acme"),
/// ])
/// .unwrap();
/// let baggage = ctx.to_headers().into_iter().find(|(name, _)| *name == header::BAGGAGE);
/// assert_eq!(
///     baggage.unwrap().1,
///     "sentry-trace_id=0123456789abcdef0123456789abcdef,tenant=acme"
/// );
/// ```
pub const BAGGAGE: &str = "baggage";

/// Name of the W3C Trace Context header `00-TRACE_ID-PARENT_ID-FLAGS`, which OpenTelemetry and
/// other W3C tracers read and write. Always written; read when no valid `sentry-trace` is given.
///
/// ```
/// use traced_spawn::{header, TraceContext};
///
/// let value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
/// let ctx = TraceContext::from_headers([(header::TRACEPARENT, value)]).unwrap();
/// assert_eq!(ctx.parent_span_id().unwrap().to_string(), "b7ad6b7169203331");
/// assert_eq!(ctx.sampled(), Some(true));
/// ```
pub const TRACEPARENT: &str = "traceparent";

/// Name of the W3C Trace Context header that carries vendor state along with `traceparent`; it
/// is passed through unchanged.
///
/// ```
/// use traced_spawn::{header, TraceContext};
///
/// let ctx = TraceContext::from_headers([
///     (header::TRACEPARENT, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
///     (header::TRACESTATE, "congo=t61rcWkgMzE"),
/// ])
/// .unwrap();
/// assert!(ctx.to_headers().contains(&(header::TRACESTATE, "congo=t61rcWkgMzE".to_owned())));
/// ```
pub const TRACESTATE: &str = "tracestate";
