//! Parsing of the `sentry-trace` propagation header.

use sentry::protocol::{SpanId, TraceId};

use crate::context::Parent;

/// Longest `sentry-trace` value accepted: 32 + 1 + 16 + 2 characters, with room for whitespace.
const MAX_SENTRY_TRACE_LEN: usize = 64;

/// Why a `sentry-trace` value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SentryTraceError {
    TooLong,
    Malformed,
}

/// Parses `TRACE_ID-SPAN_ID[-SAMPLED]`. Bounded: nothing longer than a valid header is read.
pub(crate) fn parse_sentry_trace(value: &str) -> Result<Parent, SentryTraceError> {
    if value.len() > MAX_SENTRY_TRACE_LEN {
        return Err(SentryTraceError::TooLong);
    }
    let mut parts = value.trim().split('-');
    let trace = parts.next().ok_or(SentryTraceError::Malformed)?;
    let span = parts.next().ok_or(SentryTraceError::Malformed)?;
    let sampled = match parts.next() {
        None => None,
        Some("1") => Some(true),
        Some("0") => Some(false),
        Some(_) => return Err(SentryTraceError::Malformed),
    };
    if parts.next().is_some() || trace.len() != 32 || span.len() != 16 {
        return Err(SentryTraceError::Malformed);
    }
    let trace_id: TraceId = trace.parse().map_err(|_| SentryTraceError::Malformed)?;
    let span_id: SpanId = span.parse().map_err(|_| SentryTraceError::Malformed)?;
    Ok(Parent {
        trace_id,
        span_id,
        sampled,
    })
}
