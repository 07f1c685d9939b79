//! The serde form of a [`TraceContext`]: the same headers, as an object keyed by header name.
//!
//! `{"sentry-trace": "…", "baggage": "…", "traceparent": "…", "tracestate": "…"}`, each field
//! optional. Payloads written before `baggage` and `traceparent` were carried
//! (`{"sentry-trace": "…"}`) load as they did. No trace header at all gives an empty context; an
//! invalid one is an error.

use super::{
    HeaderError, BAGGAGE_HEADER, SENTRY_TRACE_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER,
};
use crate::context::TraceContext;

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Wire {
    #[serde(
        rename = "sentry-trace",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    sentry_trace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    baggage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tracestate: Option<String>,
}

impl serde::Serialize for TraceContext {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut wire = Wire::default();
        for (name, value) in self.to_headers() {
            let field = match name {
                SENTRY_TRACE_HEADER => &mut wire.sentry_trace,
                BAGGAGE_HEADER => &mut wire.baggage,
                TRACEPARENT_HEADER => &mut wire.traceparent,
                TRACESTATE_HEADER => &mut wire.tracestate,
                _ => continue,
            };
            *field = Some(value);
        }
        wire.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for TraceContext {
    /// No trace header gives an empty context; a malformed one is an error.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let headers = [
            (SENTRY_TRACE_HEADER, &wire.sentry_trace),
            (BAGGAGE_HEADER, &wire.baggage),
            (TRACEPARENT_HEADER, &wire.traceparent),
            (TRACESTATE_HEADER, &wire.tracestate),
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
