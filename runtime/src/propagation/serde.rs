//! The serde form of a [`TraceContext`]: the same headers, as an object keyed by header name.
//!
//! `{"sentry-trace": "…", "baggage": "…", "traceparent": "…", "tracestate": "…"}`, each field
//! optional. Payloads written before `baggage` and `traceparent` were carried
//! (`{"sentry-trace": "…"}`) load as they did. No trace header at all gives an empty context; an
//! invalid one is an error. Formats that are not human-readable (bincode, postcard,
//! MessagePack) get all four fields, the absent ones as `None`, so positional formats round-trip.

use super::HeaderError;
use crate::context::TraceContext;
use crate::header;

/// What is read: every field optional, so JSON payloads that leave some out load.
#[derive(serde::Deserialize)]
struct Wire {
    #[serde(rename = "sentry-trace", default)]
    sentry_trace: Option<String>,
    #[serde(default)]
    baggage: Option<String>,
    #[serde(default)]
    traceparent: Option<String>,
    #[serde(default)]
    tracestate: Option<String>,
}

/// The fields, in the order they are written and read.
const FIELDS: [&str; 4] = [
    header::SENTRY_TRACE,
    header::BAGGAGE,
    header::TRACEPARENT,
    header::TRACESTATE,
];

impl serde::Serialize for TraceContext {
    /// A human-readable format (JSON) gets the headers present only, as it always did; a
    /// compact one (bincode, postcard, MessagePack) gets all four fields, absent ones as `None`:
    /// formats that write fields by position cannot skip one.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;

        let mut values: [Option<String>; 4] = Default::default();
        for (name, value) in self.to_headers() {
            if let Some(index) = FIELDS.iter().position(|field| *field == name) {
                values[index] = Some(value);
            }
        }
        let skip_absent = serializer.is_human_readable();
        let len = if skip_absent {
            values.iter().flatten().count()
        } else {
            FIELDS.len()
        };
        let mut wire = serializer.serialize_struct("TraceContext", len)?;
        for (field, value) in FIELDS.into_iter().zip(&values) {
            if skip_absent && value.is_none() {
                wire.skip_field(field)?;
            } else {
                wire.serialize_field(field, value)?;
            }
        }
        wire.end()
    }
}

impl<'de> serde::Deserialize<'de> for TraceContext {
    /// No trace header gives an empty context; a malformed one is an error.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let headers = [
            (header::SENTRY_TRACE, &wire.sentry_trace),
            (header::BAGGAGE, &wire.baggage),
            (header::TRACEPARENT, &wire.traceparent),
            (header::TRACESTATE, &wire.tracestate),
        ];
        let present = headers
            .iter()
            .filter_map(|(name, value)| Some((*name, value.as_deref()?)));
        match TraceContext::from_headers(present) {
            Ok(ctx) => Ok(ctx),
            Err(HeaderError::Missing) => Ok(TraceContext::default()),
            Err(err) => Err(serde::de::Error::custom(err)),
        }
    }
}
