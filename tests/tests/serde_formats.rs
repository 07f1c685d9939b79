//! `TraceContext`'s serde form in every kind of serde format: self-describing (JSON, MessagePack
//! with field names) and positional (bincode, postcard, MessagePack as arrays), alone and inside
//! a job struct, empty and full. JSON keeps its wire form.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use traced_spawn::TraceContext;

const TRACE_ID: &str = "0123456789abcdef0123456789abcdef";

/// A context with every header: `sentry-trace`, `baggage`, `traceparent`, `tracestate`.
fn full() -> TraceContext {
    TraceContext::from_headers([
        ("sentry-trace", &*format!("{TRACE_ID}-0123456789abcdef-1")),
        (
            "baggage",
            &*format!("sentry-trace_id={TRACE_ID},sentry-sampled=true,team=shop"),
        ),
        (
            "traceparent",
            &*format!("00-{TRACE_ID}-0123456789abcdef-01"),
        ),
        ("tracestate", "vendor=opaque"),
    ])
    .unwrap()
}

/// Only the trace: the optional headers are absent.
fn bare() -> TraceContext {
    TraceContext::from_headers([("sentry-trace", &*format!("{TRACE_ID}-0123456789abcdef"))])
        .unwrap()
}

fn contexts() -> [(&'static str, TraceContext); 3] {
    [
        ("empty", TraceContext::default()),
        ("bare", bare()),
        ("full", full()),
    ]
}

#[derive(Serialize, Deserialize)]
struct Job {
    id: u32,
    trace: TraceContext,
    question: String,
}

type Codec = (
    &'static str,
    fn(&dyn erased::Value) -> Vec<u8>,
    fn(&[u8]) -> Result<TraceContext, String>,
    fn(&[u8]) -> Result<Job, String>,
);

/// Serializes through a `dyn` value, so one table covers every format.
mod erased {
    pub trait Value {
        fn json(&self) -> Vec<u8>;
        fn bincode(&self) -> Vec<u8>;
        fn postcard(&self) -> Vec<u8>;
        fn msgpack(&self) -> Vec<u8>;
        fn msgpack_named(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Value for T {
        fn json(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap()
        }
        fn bincode(&self) -> Vec<u8> {
            bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap()
        }
        fn postcard(&self) -> Vec<u8> {
            postcard::to_allocvec(self).unwrap()
        }
        fn msgpack(&self) -> Vec<u8> {
            rmp_serde::to_vec(self).unwrap()
        }
        fn msgpack_named(&self) -> Vec<u8> {
            rmp_serde::to_vec_named(self).unwrap()
        }
    }
}

fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}
fn bincode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(value, _)| value)
        .map_err(|e| e.to_string())
}
fn postcard<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| e.to_string())
}
fn msgpack<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
}

fn codecs() -> [Codec; 5] {
    [
        ("JSON", |v| v.json(), json, json),
        ("bincode", |v| v.bincode(), bincode, bincode),
        ("postcard", |v| v.postcard(), postcard, postcard),
        ("MessagePack (arrays)", |v| v.msgpack(), msgpack, msgpack),
        (
            "MessagePack (maps)",
            |v| v.msgpack_named(),
            msgpack,
            msgpack,
        ),
    ]
}

#[test]
fn a_context_round_trips_alone_in_every_format() {
    for (format, write, read, _) in codecs() {
        for (shape, ctx) in contexts() {
            let bytes = write(&ctx);
            let back = read(&bytes)
                .unwrap_or_else(|e| panic!("{format}, {shape} context: does not load: {e}"));
            assert_eq!(
                back.to_headers(),
                ctx.to_headers(),
                "{format}, {shape} context: not the same headers"
            );
        }
    }
}

#[test]
fn a_context_round_trips_inside_a_job_in_every_format() {
    for (format, write, _, read) in codecs() {
        for (shape, trace) in contexts() {
            let job = Job {
                id: 7,
                trace,
                question: "why?".into(),
            };
            let bytes = write(&job);
            let back = read(&bytes)
                .unwrap_or_else(|e| panic!("{format}, job with a {shape} context: {e}"));
            assert_eq!(back.id, 7, "{format}, {shape}");
            assert_eq!(
                back.question, "why?",
                "{format}, {shape}: the field after it"
            );
            assert_eq!(
                back.trace.to_headers(),
                job.trace.to_headers(),
                "{format}, job with a {shape} context"
            );
        }
    }
}

#[test]
fn json_keeps_its_wire_form_and_old_payloads_load() {
    assert_eq!(
        serde_json::to_string(&TraceContext::default()).unwrap(),
        "{}"
    );
    assert_eq!(
        serde_json::to_string(&bare()).unwrap(),
        format!(
            r#"{{"sentry-trace":"{TRACE_ID}-0123456789abcdef","traceparent":"00-{TRACE_ID}-0123456789abcdef-00"}}"#
        )
    );
    assert_eq!(
        serde_json::to_string(&full()).unwrap(),
        format!(
            r#"{{"sentry-trace":"{TRACE_ID}-0123456789abcdef-1","baggage":"sentry-trace_id={TRACE_ID},sentry-sampled=true,team=shop","traceparent":"00-{TRACE_ID}-0123456789abcdef-01","tracestate":"vendor=opaque"}}"#
        )
    );
    // A payload written before `baggage` and `traceparent` were carried.
    let old: TraceContext = serde_json::from_str(&format!(
        r#"{{"sentry-trace":"{TRACE_ID}-0123456789abcdef-1"}}"#
    ))
    .unwrap();
    assert_eq!(old.trace_id().unwrap().to_string(), TRACE_ID);
    assert_eq!(old.sampled(), Some(true));
}

#[test]
fn a_malformed_context_is_an_error_in_a_positional_format_too() {
    #[derive(Serialize)]
    struct Forged {
        #[serde(rename = "sentry-trace")]
        sentry_trace: Option<&'static str>,
        baggage: Option<&'static str>,
        traceparent: Option<&'static str>,
        tracestate: Option<&'static str>,
    }
    let forged = Forged {
        sentry_trace: Some("nope"),
        baggage: None,
        traceparent: None,
        tracestate: None,
    };
    let bytes = postcard::to_allocvec(&forged).unwrap();
    let err = postcard::<TraceContext>(&bytes).unwrap_err();
    assert!(!err.is_empty());
    let bytes = bincode::serde::encode_to_vec(&forged, bincode::config::standard()).unwrap();
    let err = bincode::<TraceContext>(&bytes).unwrap_err();
    assert!(err.contains("malformed sentry-trace header"), "{err}");
}
