//! The W3C Trace Context `traceparent` header: `VERSION-TRACE_ID-PARENT_ID-FLAGS`.
//!
//! Validation follows the W3C Trace Context recommendation: lower-case hex only; all-zero trace
//! or parent ids are invalid; version `ff` is invalid; version `00` is exactly 55 characters; a
//! later version is read as `00` from its first 55 characters, which must be followed by the end
//! of the value or a `-`. Surrounding spaces and tabs (HTTP optional whitespace) are ignored.

use std::fmt::Write as _;

use sentry::protocol::{SpanId, TraceId};

use crate::ids::Parent;

/// Longest `traceparent` value read. Version `00` needs 55 characters; later versions may append
/// fields, up to this bound.
pub(crate) const MAX_LEN: usize = 512;

/// Length of a version `00` value.
const V00_LEN: usize = 55;

/// Why a `traceparent` value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Error {
    TooLong,
    Malformed,
}

/// Parses a `traceparent` value. Nothing longer than [`MAX_LEN`] is read.
pub(crate) fn parse(value: &str) -> Result<Parent, Error> {
    if value.len() > MAX_LEN {
        return Err(Error::TooLong);
    }
    let value = value.trim_matches([' ', '\t']).as_bytes();
    if value.len() < V00_LEN {
        return Err(Error::Malformed);
    }
    let version = lower_hex::<1>(&value[0..2]).ok_or(Error::Malformed)?[0];
    let valid_length = match version {
        0xff => false,
        0x00 => value.len() == V00_LEN,
        _ => value.len() == V00_LEN || value[V00_LEN] == b'-',
    };
    if !valid_length || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return Err(Error::Malformed);
    }
    let trace = lower_hex::<16>(&value[3..35]).ok_or(Error::Malformed)?;
    let span = lower_hex::<8>(&value[36..52]).ok_or(Error::Malformed)?;
    let flags = lower_hex::<1>(&value[53..55]).ok_or(Error::Malformed)?[0];
    if trace == [0; 16] || span == [0; 8] {
        return Err(Error::Malformed);
    }
    Ok(Parent {
        trace_id: TraceId::from(trace),
        span_id: SpanId::from(span),
        sampled: Some(flags & 0x01 == 0x01),
    })
}

/// Formats `ids` as a version `00` value. W3C has no "deferred" decision: only a sampled trace
/// sets the `sampled` flag.
pub(crate) fn format(ids: Parent) -> String {
    let mut out = String::with_capacity(V00_LEN);
    let flags = if ids.sampled == Some(true) {
        "01"
    } else {
        "00"
    };
    let _ = write!(out, "00-{}-{}-{flags}", ids.trace_id, ids.span_id);
    out
}

/// Decodes `2 * N` lower-case hex digits.
fn lower_hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |digit: u8| match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    };
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}
