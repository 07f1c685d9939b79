//! Carrying a [`TraceContext`] across a process or queue boundary: propagation headers and serde.

use std::fmt;

use crate::context::TraceContext;
use crate::headers::{parse_sentry_trace, SentryTraceError};

/// Name of the header that carries trace id, parent span id and sampling decision.
///
/// ```
/// assert_eq!(traced_spawn::SENTRY_TRACE_HEADER, "sentry-trace");
/// ```
pub const SENTRY_TRACE_HEADER: &str = "sentry-trace";
/// Name of the W3C baggage header; `traced-spawn` writes `sentry-trace_id` and `sentry-sampled`.
///
/// ```
/// assert_eq!(traced_spawn::BAGGAGE_HEADER, "baggage");
/// ```
pub const BAGGAGE_HEADER: &str = "baggage";

/// Why incoming propagation headers could not be continued.
///
/// Headers are untrusted input: a rejected value is never partially used. Fall back to the context
/// current where the work runs with `unwrap_or_else(|_| TraceContext::capture())`, which continues
/// the local trace (or none).
///
/// ```
/// use traced_spawn::{HeaderError, TraceContext};
///
/// let err = TraceContext::from_headers([("sentry-trace", "not a trace")]).unwrap_err();
/// assert_eq!(err, HeaderError::Malformed);
/// assert_eq!(err.to_string(), "malformed sentry-trace header");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// No `sentry-trace` header was given.
    Missing,
    /// The `sentry-trace` value is longer than any valid one.
    TooLong,
    /// The `sentry-trace` value is not `TRACE_ID-SPAN_ID[-SAMPLED]` in hex.
    Malformed,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderError::Missing => "missing sentry-trace header",
            HeaderError::TooLong => "oversized sentry-trace header",
            HeaderError::Malformed => "malformed sentry-trace header",
        })
    }
}

impl std::error::Error for HeaderError {}

impl From<SentryTraceError> for HeaderError {
    fn from(err: SentryTraceError) -> Self {
        match err {
            SentryTraceError::TooLong => HeaderError::TooLong,
            SentryTraceError::Malformed => HeaderError::Malformed,
        }
    }
}

impl TraceContext {
    /// The propagation headers that let another process continue this context: `sentry-trace`
    /// and `baggage`. Empty for an empty context.
    ///
    /// ```
    /// use traced_spawn::TraceContext;
    ///
    /// let incoming = [("sentry-trace", "0123456789abcdef0123456789abcdef-0123456789abcdef-1")];
    /// let ctx = TraceContext::from_headers(incoming).unwrap();
    /// let headers = ctx.to_headers();
    /// assert_eq!(headers[0], ("sentry-trace", incoming[0].1.to_owned()));
    /// assert_eq!(headers[1].0, "baggage");
    /// ```
    pub fn to_headers(&self) -> Vec<(&'static str, String)> {
        let Some(parent) = self.parent() else {
            return Vec::new();
        };
        let sampled = parent
            .sampled
            .map(|sampled| if sampled { "1" } else { "0" });
        let mut sentry_trace = format!("{}-{}", parent.trace_id, parent.span_id);
        let mut baggage = format!("sentry-trace_id={}", parent.trace_id);
        if let (Some(flag), Some(sampled)) = (sampled, parent.sampled) {
            sentry_trace.push('-');
            sentry_trace.push_str(flag);
            baggage.push_str(if sampled {
                ",sentry-sampled=true"
            } else {
                ",sentry-sampled=false"
            });
        }
        vec![
            (SENTRY_TRACE_HEADER, sentry_trace),
            (BAGGAGE_HEADER, baggage),
        ]
    }

    /// Rebuilds a context from incoming propagation headers (names compared case-insensitively;
    /// the first valid `sentry-trace` wins). Such a context has no hub of its own: it continues
    /// under a fork of the hub current where it is run ([`TraceContext::run`]) or, when it is
    /// spawned ([`Builder::context`](crate::Builder::context) then a `spawn_*` method, or
    /// [`TraceContext::bind`]), of the hub current where it is spawned, so the work reports to
    /// that thread's client.
    ///
    /// Every value is checked for length before it is parsed, so hostile input costs a bounded
    /// amount of work and never panics.
    ///
    /// ```
    /// use traced_spawn::TraceContext;
    ///
    /// let ctx = TraceContext::from_headers([
    ///     ("Sentry-Trace", "0123456789abcdef0123456789abcdef-0123456789abcdef-0"),
    /// ])
    /// .unwrap();
    /// assert_eq!(ctx.trace_id().unwrap().to_string(), "0123456789abcdef0123456789abcdef");
    /// assert_eq!(ctx.parent_span_id().unwrap().to_string(), "0123456789abcdef");
    /// assert_eq!(ctx.sampled(), Some(false));
    /// ```
    pub fn from_headers<'a, I>(headers: I) -> Result<TraceContext, HeaderError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut result = Err(HeaderError::Missing);
        for (name, value) in headers {
            if !name.eq_ignore_ascii_case(SENTRY_TRACE_HEADER) {
                continue;
            }
            match parse_sentry_trace(value) {
                Ok(parent) => return Ok(TraceContext::from_remote(parent)),
                Err(err) => result = Err(err.into()),
            }
        }
        result
    }
}

#[cfg(feature = "serde")]
mod serde_impl {
    use super::*;

    /// The wire form: the `sentry-trace` value, which is all a continuation needs.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Wire {
        #[serde(
            rename = "sentry-trace",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        sentry_trace: Option<String>,
    }

    impl serde::Serialize for TraceContext {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let sentry_trace = self
                .to_headers()
                .into_iter()
                .find(|(name, _)| *name == SENTRY_TRACE_HEADER)
                .map(|(_, value)| value);
            Wire { sentry_trace }.serialize(serializer)
        }
    }

    impl<'de> serde::Deserialize<'de> for TraceContext {
        /// An absent value gives an empty context; a malformed one is an error.
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let wire = Wire::deserialize(deserializer)?;
            match wire.sentry_trace {
                None => Ok(TraceContext::default()),
                Some(value) => parse_sentry_trace(&value)
                    .map(TraceContext::from_remote)
                    .map_err(|err| serde::de::Error::custom(HeaderError::from(err))),
            }
        }
    }
}
