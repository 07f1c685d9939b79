//! A point in a trace by its ids ([`Parent`]: what a continuation hangs from), and the
//! `sentry-trace` header that carries them: `TRACE_ID-SPAN_ID[-SAMPLED]`.

use std::fmt::Write as _;

use sentry::protocol::{SpanId, TraceId};

/// Longest `sentry-trace` value read: 32 + 1 + 16 + 2 characters, with room for whitespace.
pub(crate) const MAX_LEN: usize = 64;

/// A point in a trace by its ids: the trace, the span to hang from, the sampling decision (what
/// a trace header carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parent {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) sampled: Option<bool>,
}

/// Why a `sentry-trace` value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Error {
    TooLong,
    Malformed,
}

/// Parses `TRACE_ID-SPAN_ID[-SAMPLED]` (hex digits in either case, surrounding whitespace
/// allowed, a flag of `1` or `0`). Nothing longer than [`MAX_LEN`] is read.
pub(crate) fn parse(value: &str) -> Result<Parent, Error> {
    if value.len() > MAX_LEN {
        return Err(Error::TooLong);
    }
    let mut parts = value.trim().split('-');
    let trace = parts.next().ok_or(Error::Malformed)?;
    let span = parts.next().ok_or(Error::Malformed)?;
    let sampled = match parts.next() {
        None => None,
        Some("1") => Some(true),
        Some("0") => Some(false),
        Some(_) => return Err(Error::Malformed),
    };
    if parts.next().is_some() || trace.len() != 32 || span.len() != 16 {
        return Err(Error::Malformed);
    }
    let trace_id: TraceId = trace.parse().map_err(|_| Error::Malformed)?;
    let span_id: SpanId = span.parse().map_err(|_| Error::Malformed)?;
    Ok(Parent {
        trace_id,
        span_id,
        sampled,
    })
}

/// Formats `ids` as a `sentry-trace` value; the flag is left out when the decision is deferred.
pub(crate) fn format(ids: Parent) -> String {
    let mut out = String::with_capacity(51);
    let _ = write!(out, "{}-{}", ids.trace_id, ids.span_id);
    match ids.sampled {
        Some(true) => out.push_str("-1"),
        Some(false) => out.push_str("-0"),
        None => {}
    }
    out
}
