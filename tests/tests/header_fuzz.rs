//! Hostile input to the propagation API: `TraceContext::from_headers` and serde deserialization
//! get arbitrary, mutated, oversized and numerous values of every header they read
//! (`sentry-trace`, `traceparent`, `baggage`, `tracestate`). Nothing panics, the work per value is
//! bounded, exactly the valid values are accepted (checked against models of the formats written
//! here, independently of the runtime), invalid `baggage` and `tracestate` are dropped whole, and
//! valid contexts round-trip.
//!
//! The property tests run on a fixed seed (reproducible in CI); `PROPTEST_RNG_SEED=<n>` picks
//! another and `PROPTEST_CASES=<n>` changes the number of cases of each property. Run with
//! `--nocapture` to see how many inputs were tried and the measured timings.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use traced_spawn::{header, HeaderError, TraceContext};

/// Cases of each property when `PROPTEST_CASES` is not set.
const CASES: u32 = 4_000;

/// The longest `sentry-trace` value the runtime reads (its documented bound): 32 + 1 + 16 + 2
/// characters with room for whitespace.
const MAX_SENTRY_TRACE_LEN: usize = 64;

const MIB: usize = 1 << 20;

const VALID: &str = "0123456789abcdef0123456789abcdef-0123456789abcdef-1";

/// Cases of the properties whose inputs are whole header lists (costlier to generate).
const LIST_CASES: u32 = 1_500;

fn runner(default_cases: u32) -> TestRunner {
    let base = Config::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        base.cases
    } else {
        default_cases
    };
    let rng_seed = match base.rng_seed {
        RngSeed::Random => RngSeed::Fixed(0x7ace_d5ba_3b00_0006),
        seed => seed,
    };
    TestRunner::new(Config {
        cases,
        rng_seed,
        // No `proptest-regressions` files written into the source tree: a failure prints the
        // minimal input, and the fixed seed reproduces it.
        failure_persistence: None,
        ..base
    })
}

/// Runs `property` on `strategy`, panicking with the minimal failing input; returns the number
/// of inputs tried (including the shrinking steps of a failure, if any).
fn check<S: Strategy>(
    name: &str,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> usize {
    check_cases(name, CASES, strategy, property)
}

/// [`check`] with another default number of cases.
fn check_cases<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> usize {
    let tried = AtomicUsize::new(0);
    let result = runner(cases).run(&strategy, |value| {
        tried.fetch_add(1, Ordering::Relaxed);
        property(value)
    });
    let tried = tried.into_inner();
    eprintln!("[header_fuzz] {name}: {tried} inputs tried");
    if let Err(error) = result {
        panic!("{name}: {error}");
    }
    tried
}

/// What a `sentry-trace` value must parse to, written independently of the runtime: at most
/// [`MAX_SENTRY_TRACE_LEN`] bytes; after trimming whitespace, `TRACE-SPAN` or `TRACE-SPAN-FLAG`
/// with 32 and 16 hex digits (either case) and a flag of `1` or `0`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    Valid {
        trace: String,
        span: String,
        sampled: Option<bool>,
    },
    TooLong,
    Malformed,
}

fn expected(value: &str) -> Expected {
    if value.len() > MAX_SENTRY_TRACE_LEN {
        return Expected::TooLong;
    }
    let parts: Vec<&str> = value.trim().split('-').collect();
    let is_hex = |part: &str, len: usize| {
        part.len() == len && part.bytes().all(|byte| byte.is_ascii_hexdigit())
    };
    let sampled = match parts.as_slice() {
        [_, _] => None,
        [_, _, "1"] => Some(true),
        [_, _, "0"] => Some(false),
        _ => return Expected::Malformed,
    };
    if !is_hex(parts[0], 32) || !is_hex(parts[1], 16) {
        return Expected::Malformed;
    }
    Expected::Valid {
        trace: parts[0].to_ascii_lowercase(),
        span: parts[1].to_ascii_lowercase(),
        sampled,
    }
}

/// The longest `traceparent` value the runtime reads (its documented bound).
const MAX_TRACEPARENT_LEN: usize = 512;

/// What a `traceparent` value must parse to (W3C Trace Context): at most
/// [`MAX_TRACEPARENT_LEN`] bytes; after trimming spaces and tabs, `VV-TRACE-SPAN-FLAGS` in
/// lower-case hex, version not `ff`, ids not all zero; version `00` exactly 55 characters, a later
/// version 55 characters or more with a `-` after the 55th. Sampled is bit 0 of the flags.
fn expected_traceparent(value: &str) -> Expected {
    if value.len() > MAX_TRACEPARENT_LEN {
        return Expected::TooLong;
    }
    let value = value.trim_matches([' ', '\t']);
    let lower_hex = |part: &str, len: usize| {
        part.len() == len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if value.len() < 55 || !value.is_char_boundary(55) {
        return Expected::Malformed;
    }
    let (head, rest) = value.split_at(55);
    let parts: Vec<&str> = head.split('-').collect();
    let [version, trace, span, flags] = parts.as_slice() else {
        return Expected::Malformed;
    };
    let shape = lower_hex(version, 2)
        && lower_hex(trace, 32)
        && lower_hex(span, 16)
        && lower_hex(flags, 2)
        && *version != "ff"
        && trace.bytes().any(|b| b != b'0')
        && span.bytes().any(|b| b != b'0')
        && if *version == "00" {
            rest.is_empty()
        } else {
            rest.is_empty() || rest.starts_with('-')
        };
    if !shape {
        return Expected::Malformed;
    }
    Expected::Valid {
        trace: (*trace).to_owned(),
        span: (*span).to_owned(),
        sampled: Some(u8::from_str_radix(flags, 16).unwrap() & 1 == 1),
    }
}

/// What `from_headers` must return for `headers` (names compared case-insensitively): the first
/// valid `sentry-trace`; with none, the one `traceparent` if it is valid; otherwise the error of
/// the last `sentry-trace` value, or else of the `traceparent` (`TraceparentDuplicated` for more
/// than one), or `Missing`.
fn expected_headers(headers: &[(String, String)]) -> Result<Expected, HeaderError> {
    let mut sentry = None;
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case(header::SENTRY_TRACE) {
            continue;
        }
        match expected(value) {
            valid @ Expected::Valid { .. } => return Ok(valid),
            Expected::TooLong => sentry = Some(HeaderError::SentryTraceTooLong),
            Expected::Malformed => sentry = Some(HeaderError::SentryTraceMalformed),
        }
    }
    let traceparents: Vec<&String> = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(header::TRACEPARENT))
        .map(|(_, value)| value)
        .collect();
    let w3c = match traceparents.as_slice() {
        [] => Err(HeaderError::Missing),
        [value] => match expected_traceparent(value) {
            valid @ Expected::Valid { .. } => Ok(valid),
            Expected::TooLong => Err(HeaderError::TraceparentTooLong),
            Expected::Malformed => Err(HeaderError::TraceparentMalformed),
        },
        _ => Err(HeaderError::TraceparentDuplicated),
    };
    match (sentry, w3c) {
        (_, Ok(valid)) => Ok(valid),
        (Some(err), _) | (None, Err(err)) => Err(err),
    }
}

fn parsed(ctx: &TraceContext) -> Expected {
    Expected::Valid {
        trace: ctx.trace_id().expect("trace id").to_string(),
        span: ctx.parent_span_id().expect("span id").to_string(),
        sampled: ctx.sampled(),
    }
}

fn from_pairs(headers: &[(String, String)]) -> Result<TraceContext, HeaderError> {
    TraceContext::from_headers(
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    )
}

/// `to_headers` then `from_headers` gives the same trace id, span id and sampling decision, and
/// serde does too; the `traceparent` written names the same ids.
fn assert_round_trips(ctx: &TraceContext) -> Result<(), TestCaseError> {
    let headers = ctx.to_headers();
    prop_assert_eq!(headers[0].0, header::SENTRY_TRACE);
    let trace = ctx.trace_id().unwrap().to_string();
    let span = ctx.parent_span_id().unwrap().to_string();
    let flags = if ctx.sampled() == Some(true) {
        "01"
    } else {
        "00"
    };
    let traceparent = headers
        .iter()
        .find(|(name, _)| *name == header::TRACEPARENT);
    let want = format!("00-{trace}-{span}-{flags}");
    prop_assert_eq!(
        traceparent.map(|(_, value)| value.as_str()),
        Some(want.as_str())
    );
    // The `traceparent` alone continues the same ids (W3C has no "undecided": `00` is `false`).
    let w3c = TraceContext::from_headers([(header::TRACEPARENT, traceparent.unwrap().1.as_str())])
        .map_err(|err| TestCaseError::fail(format!("own traceparent rejected: {err}")))?;
    prop_assert_eq!(w3c.trace_id(), ctx.trace_id());
    prop_assert_eq!(w3c.parent_span_id(), ctx.parent_span_id());
    prop_assert_eq!(w3c.sampled(), Some(ctx.sampled() == Some(true)));
    let again = TraceContext::from_headers(headers.iter().map(|(name, value)| (*name, &**value)))
        .map_err(|err| TestCaseError::fail(format!("own headers rejected: {err}")))?;
    prop_assert_eq!(parsed(&again), parsed(ctx));
    let json = serde_json::to_string(ctx).unwrap();
    let back: TraceContext = serde_json::from_str(&json)
        .map_err(|err| TestCaseError::fail(format!("own json {json} rejected: {err}")))?;
    prop_assert_eq!(parsed(&back), parsed(ctx));
    Ok(())
}

// ---------------------------------------------------------------- strategies

fn hex(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|byte| {
            if upper {
                format!("{byte:02X}")
            } else {
                format!("{byte:02x}")
            }
        })
        .collect()
}

/// A valid `sentry-trace` value, in any case, with or without flag and surrounding whitespace.
fn valid_value() -> impl Strategy<Value = String> {
    (
        any::<[u8; 16]>(),
        any::<[u8; 8]>(),
        any::<Option<bool>>(),
        any::<bool>(),
        prop::sample::select(vec!["", " ", "\t", "  \t "]),
    )
        .prop_map(|(trace, span, sampled, upper, pad)| {
            let flag = match sampled {
                None => String::new(),
                Some(true) => "-1".to_owned(),
                Some(false) => "-0".to_owned(),
            };
            format!(
                "{pad}{}-{}{flag}{pad}",
                hex(&trace, upper),
                hex(&span, upper)
            )
        })
}

/// A valid value with a few random edits: characters deleted, inserted, replaced, duplicated.
fn mutated_value() -> impl Strategy<Value = String> {
    mutated(
        valid_value(),
        vec!['-', '0', '1', 'f', 'F', 'g', ' ', '\u{a0}', 'é', '\0'],
    )
}

/// Values of `base` with a few random edits: characters deleted, inserted (one of `common` or any
/// character), replaced, duplicated.
fn mutated(
    base: impl Strategy<Value = String>,
    common: Vec<char>,
) -> impl Strategy<Value = String> {
    let edit = (0..4u8, any::<prop::sample::Index>(), any::<char>());
    let chars = prop::sample::select(common);
    (base, prop::collection::vec((edit, chars), 1..6)).prop_map(|(value, edits)| {
        let mut chars: Vec<char> = value.chars().collect();
        for ((kind, at, random), common) in edits {
            let len = chars.len().max(1);
            let at = at.index(len);
            let inserted = if kind % 2 == 0 { random } else { common };
            match kind {
                0 if !chars.is_empty() => {
                    chars.remove(at);
                }
                1 => chars.insert(at.min(chars.len()), inserted),
                2 if !chars.is_empty() => chars[at] = inserted,
                _ if !chars.is_empty() => {
                    let repeated = chars[at];
                    chars.insert(at, repeated);
                }
                _ => chars.push(inserted),
            }
        }
        chars.into_iter().collect()
    })
}

/// Any value: arbitrary text, arbitrary bytes made text, near-valid text, valid text.
fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..80)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        "[0-9a-fA-F -]{0,70}",
        mutated_value(),
        valid_value(),
        // Around the length bound: a valid value padded to 60..70 bytes.
        (valid_value(), 0..20usize).prop_map(|(value, pad)| format!("{value}{}", " ".repeat(pad))),
    ]
}

fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(header::SENTRY_TRACE.to_owned()),
        Just("Sentry-Trace".to_owned()),
        Just("SENTRY-TRACE".to_owned()),
        Just("baggage".to_owned()),
        Just(header::TRACEPARENT.to_owned()),
        Just("TraceParent".to_owned()),
        Just(header::TRACESTATE.to_owned()),
        Just("sentry-trace ".to_owned()),
        Just("sentry_trace".to_owned()),
        "[a-zA-Z-]{0,16}",
        any::<String>(),
    ]
}

// ---------------------------------------------------------------- properties

#[test]
fn arbitrary_headers_never_panic_and_accept_exactly_the_valid_values() {
    // How many inputs were accepted: the strategies must reach both outcomes.
    let accepted = AtomicUsize::new(0);
    let mut tried = 0;
    tried += check("one arbitrary sentry-trace value", any_value(), |value| {
        let got = TraceContext::from_headers([(header::SENTRY_TRACE, value.as_str())]);
        match (expected(&value), got) {
            (Expected::TooLong, Err(err)) => prop_assert_eq!(err, HeaderError::SentryTraceTooLong),
            (Expected::Malformed, Err(err)) => {
                prop_assert_eq!(err, HeaderError::SentryTraceMalformed)
            }
            (valid @ Expected::Valid { .. }, Ok(ctx)) => {
                accepted.fetch_add(1, Ordering::Relaxed);
                prop_assert_eq!(parsed(&ctx), valid);
                assert_round_trips(&ctx)?;
            }
            (want, got) => {
                return Err(TestCaseError::fail(format!(
                    "{value:?}: expected {want:?}, got {got:?}"
                )))
            }
        }
        Ok(())
    });
    tried += check(
        "lists of arbitrary headers",
        prop::collection::vec(
            (any_name(), prop_oneof![any_value(), any_traceparent()]),
            0..12,
        ),
        |headers| {
            let got = from_pairs(&headers);
            match (expected_headers(&headers), got) {
                (Ok(valid), Ok(ctx)) => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    prop_assert_eq!(parsed(&ctx), valid);
                    prop_assert!(!ctx.is_empty());
                }
                (Err(want), Err(err)) => prop_assert_eq!(err, want),
                (want, got) => {
                    return Err(TestCaseError::fail(format!(
                        "{headers:?}: expected {want:?}, got {got:?}"
                    )))
                }
            }
            Ok(())
        },
    );
    let accepted = accepted.into_inner();
    eprintln!("[header_fuzz] from_headers: {tried} arbitrary inputs in total, {accepted} accepted");
    assert!(
        accepted > tried / 10 && accepted < tried / 2,
        "{accepted} of {tried} accepted"
    );
}

#[test]
fn valid_contexts_round_trip_through_headers_and_serde() {
    check(
        "round trip of arbitrary ids",
        (any::<[u8; 16]>(), any::<[u8; 8]>(), any::<Option<bool>>()),
        |(trace, span, sampled)| {
            let flag = match sampled {
                None => "",
                Some(true) => "-1",
                Some(false) => "-0",
            };
            let value = format!("{}-{}{flag}", hex(&trace, false), hex(&span, false));
            let ctx = TraceContext::from_headers([(header::SENTRY_TRACE, value.as_str())])
                .map_err(|err| TestCaseError::fail(format!("{value}: {err}")))?;
            prop_assert_eq!(ctx.trace_id().unwrap().to_string(), hex(&trace, false));
            prop_assert_eq!(ctx.parent_span_id().unwrap().to_string(), hex(&span, false));
            prop_assert_eq!(ctx.sampled(), sampled);
            // The canonical form is written back unchanged.
            prop_assert_eq!(&ctx.to_headers()[0].1, &value);
            assert_round_trips(&ctx)
        },
    );
}

/// Arbitrary JSON values, nested up to a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        any_value().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any_name(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

#[test]
fn arbitrary_json_never_panics() {
    let mut tried = 0;
    tried += check("arbitrary JSON text", any::<String>(), |text| {
        let _ = serde_json::from_str::<TraceContext>(&text);
        Ok(())
    });
    tried += check("arbitrary JSON values", json_value(), |value| {
        let text = value.to_string();
        let got = serde_json::from_str::<TraceContext>(&text);
        // A JSON object is read by its header fields alone: each a string or null; no trace
        // header gives an empty context.
        if let serde_json::Value::Object(fields) = &value {
            let mut headers = Vec::new();
            let mut wrong_type = false;
            for name in [
                header::SENTRY_TRACE,
                header::BAGGAGE,
                header::TRACEPARENT,
                header::TRACESTATE,
            ] {
                match fields.get(name) {
                    None | Some(serde_json::Value::Null) => {}
                    Some(serde_json::Value::String(v)) => {
                        headers.push((name.to_owned(), v.clone()))
                    }
                    Some(_) => wrong_type = true,
                }
            }
            if wrong_type {
                prop_assert!(got.is_err(), "{} accepted", text);
                return Ok(());
            }
            match (expected_headers(&headers), got) {
                (Ok(valid), Ok(ctx)) => prop_assert_eq!(parsed(&ctx), valid),
                (Err(HeaderError::Missing), Ok(ctx)) => prop_assert!(ctx.is_empty(), "{}", text),
                (Err(_), got) => prop_assert!(got.is_err(), "{} accepted", text),
                (Ok(_), Err(err)) => {
                    return Err(TestCaseError::fail(format!("{text}: rejected: {err}")))
                }
            }
        }
        Ok(())
    });
    tried += check(
        "JSON objects with an arbitrary sentry-trace",
        any_value(),
        |trace| {
            let text = serde_json::json!({ header::SENTRY_TRACE: trace }).to_string();
            let got = serde_json::from_str::<TraceContext>(&text);
            match expected(&trace) {
                valid @ Expected::Valid { .. } => {
                    let ctx = got.map_err(|err| TestCaseError::fail(format!("{text}: {err}")))?;
                    prop_assert_eq!(parsed(&ctx), valid);
                }
                _ => prop_assert!(got.is_err(), "{} accepted", text),
            }
            Ok(())
        },
    );
    // Deep nesting stops at serde_json's recursion limit instead of overflowing the stack.
    for open in ["[", "{\"sentry-trace\":"] {
        let text = open.repeat(100_000);
        assert!(serde_json::from_str::<TraceContext>(&text).is_err());
        tried += 1;
    }
    eprintln!("[header_fuzz] serde: {tried} arbitrary inputs in total");
}

// ---------------------------------------------------------------- traceparent

/// A `traceparent` near validity: any version (often `00`, sometimes `ff`), random ids (sometimes
/// all zeros), random flags, sometimes upper-case, sometimes with a suffix, sometimes padded.
fn near_traceparent() -> impl Strategy<Value = String> {
    (
        prop_oneof![6 => Just(0u8), 1 => Just(0xff), 2 => any::<u8>()],
        prop_oneof![9 => any::<[u8; 16]>(), 1 => Just([0u8; 16])],
        prop_oneof![9 => any::<[u8; 8]>(), 1 => Just([0u8; 8])],
        any::<u8>(),
        prop_oneof![9 => Just(false), 1 => Just(true)],
        prop_oneof![6 => Just(""), 1 => Just("-"), 1 => Just("-future-fields"), 1 => Just(".x")],
        prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("\t "), 1 => Just("\u{a0}")],
    )
        .prop_map(|(version, trace, span, flags, upper, suffix, pad)| {
            format!(
                "{pad}{}-{}-{}-{}{suffix}{pad}",
                hex(&[version], upper),
                hex(&trace, upper),
                hex(&span, upper),
                hex(&[flags], upper)
            )
        })
}

fn any_traceparent() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => near_traceparent(),
        2 => mutated(
            near_traceparent(),
            vec!['-', '0', 'f', 'F', 'g', ' ', '\t', 'é', '\0']
        ),
        1 => "[0-9a-fA-F -]{50,60}",
        1 => any::<String>(),
        // Around the length bound: a later version with a long suffix.
        1 => (near_traceparent(), 440..470usize)
            .prop_map(|(value, pad)| format!("{value}-{}", "x".repeat(pad))),
    ]
}

#[test]
fn arbitrary_traceparent_values_are_read_exactly_as_w3c_says() {
    let accepted = AtomicUsize::new(0);
    let tried = check(
        "one arbitrary traceparent value",
        any_traceparent(),
        |value| {
            let got = TraceContext::from_headers([(header::TRACEPARENT, value.as_str())]);
            match (expected_traceparent(&value), got) {
                (Expected::TooLong, Err(err)) => {
                    prop_assert_eq!(err, HeaderError::TraceparentTooLong)
                }
                (Expected::Malformed, Err(err)) => {
                    prop_assert_eq!(err, HeaderError::TraceparentMalformed)
                }
                (valid @ Expected::Valid { .. }, Ok(ctx)) => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    prop_assert_eq!(parsed(&ctx), valid);
                    assert_round_trips(&ctx)?;
                }
                (want, got) => {
                    return Err(TestCaseError::fail(format!(
                        "{value:?}: expected {want:?}, got {got:?}"
                    )))
                }
            }
            Ok(())
        },
    );
    let accepted = accepted.into_inner();
    eprintln!("[header_fuzz] traceparent: {accepted} of {tried} accepted");
    assert!(
        accepted > tried / 10 && accepted < tried / 2,
        "{accepted} of {tried} accepted"
    );
}

// ---------------------------------------------------------------- baggage and tracestate

const SENTRY_TRACE: &str = "0123456789abcdef0123456789abcdef-0123456789abcdef-1";
const TRACEPARENT: &str = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01";

/// The W3C baggage limits the runtime documents, applied to what it reads.
const MAX_BAGGAGE_MEMBERS: usize = 64;
const MAX_BAGGAGE_BYTES: usize = 8192;

/// What the context must forward from `values` (the `baggage` headers of one request), written
/// independently of the runtime: every non-empty, trimmed list-member when all of them follow
/// the W3C grammar and the limits hold (the `sentry-*` ones first, then the others, each in
/// order); otherwise nothing.
fn expected_baggage(values: &[String]) -> Option<String> {
    let total: usize = values.iter().map(String::len).sum();
    if total > MAX_BAGGAGE_BYTES {
        return None;
    }
    let ows = |c: char| c == ' ' || c == '\t';
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let octet = |c: char| c.is_ascii_graphic() && !"\",;\\".contains(c);
    let key_ok = |k: &str| !k.is_empty() && k.chars().all(tchar);
    let value_ok = |v: &str| v.chars().all(octet);
    let mut members = Vec::new();
    for member in values.iter().flat_map(|value| value.split(',')) {
        let member = member.trim_matches(ows);
        if member.is_empty() {
            continue;
        }
        let mut parts = member.split(';');
        let pair = parts.next().unwrap();
        let (key, value) = pair.split_once('=')?;
        let properties_ok = parts.all(|property| match property.split_once('=') {
            Some((k, v)) => key_ok(k.trim_matches(ows)) && value_ok(v.trim_matches(ows)),
            None => property.trim_matches(ows).is_empty() || key_ok(property.trim_matches(ows)),
        });
        if !key_ok(key.trim_matches(ows)) || !value_ok(value.trim_matches(ows)) || !properties_ok {
            return None;
        }
        members.push(member);
    }
    if members.is_empty() || members.len() > MAX_BAGGAGE_MEMBERS {
        return None;
    }
    let (sentry, other): (Vec<&str>, Vec<&str>) = members
        .into_iter()
        .partition(|member| member.trim_start_matches(ows).starts_with("sentry-"));
    Some([sentry, other].concat().join(","))
}

/// A W3C baggage list-member, sometimes a Sentry one, with optional whitespace and properties.
fn baggage_member() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["", "", "sentry-"]),
        "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,10}",
        "[!#-+--:<-\\[\\]-~]{0,12}",
        prop::sample::select(vec!["", "", " ", "\t"]),
        prop::sample::select(vec!["", "", ";p", "; k = v", ";"]),
    )
        .prop_map(|(prefix, key, value, pad, properties)| {
            format!("{pad}{prefix}{key}{pad}={pad}{value}{properties}{pad}")
        })
}

/// `baggage` header values: valid lists (split over one to three headers), near the limits,
/// edited with characters the grammar forbids, or arbitrary text.
fn baggage_values() -> impl Strategy<Value = Vec<String>> {
    let valid = (prop::collection::vec(baggage_member(), 0..80), 1..4usize)
        .prop_map(|(members, headers)| {
            let per = members.len().div_ceil(headers).max(1);
            members
                .chunks(per)
                .map(|chunk| chunk.join(","))
                .collect::<Vec<_>>()
        })
        .boxed();
    let edited = (
        valid.clone(),
        any::<prop::sample::Index>(),
        prop::sample::select(vec![' ', '"', ',', ';', '\\', '=', 'é', '\0', '%']),
    )
        .prop_map(|(mut values, at, c)| {
            if let Some(value) = values.first_mut() {
                let mut chars: Vec<char> = value.chars().collect();
                chars.insert(at.index(chars.len() + 1), c);
                *value = chars.into_iter().collect();
            }
            values
        });
    let big = (1..3usize, 4000..4200usize).prop_map(|(headers, len)| {
        (0..headers)
            .map(|i| format!("k{i}={}", "v".repeat(len)))
            .collect::<Vec<_>>()
    });
    prop_oneof![
        4 => valid,
        3 => edited,
        1 => big,
        1 => prop::collection::vec(any::<String>(), 0..3),
    ]
}

#[test]
fn baggage_is_forwarded_whole_or_not_at_all() {
    let forwarded = AtomicUsize::new(0);
    let tried = check_cases(
        "arbitrary baggage headers",
        LIST_CASES,
        baggage_values(),
        |values| {
            let mut headers = vec![(header::SENTRY_TRACE, SENTRY_TRACE)];
            headers.extend(values.iter().map(|value| (header::BAGGAGE, value.as_str())));
            // An invalid baggage never makes the trace unusable.
            let ctx = TraceContext::from_headers(headers.iter().copied())
                .map_err(|err| TestCaseError::fail(format!("{values:?}: {err}")))?;
            let out = ctx.to_headers();
            let baggage = out
                .iter()
                .find(|(name, _)| *name == header::BAGGAGE)
                .map(|(_, value)| value.clone());
            let want = expected_baggage(&values);
            if want.is_some() {
                forwarded.fetch_add(1, Ordering::Relaxed);
            }
            prop_assert_eq!(&baggage, &want, "from {:?}", values);
            // Forwarded baggage is read back to the same value.
            if let Some(baggage) = baggage {
                let again = TraceContext::from_headers([
                    (header::SENTRY_TRACE, SENTRY_TRACE),
                    (header::BAGGAGE, baggage.as_str()),
                ])
                .unwrap();
                prop_assert_eq!(again.to_headers(), out);
            }
            Ok(())
        },
    );
    let forwarded = forwarded.into_inner();
    eprintln!("[header_fuzz] baggage: {forwarded} of {tried} forwarded");
    assert!(
        forwarded > tried / 10 && forwarded < tried * 9 / 10,
        "{forwarded} of {tried} forwarded"
    );
}

#[test]
fn baggage_limits_are_exact() {
    let member = |i: usize, len: usize| format!("k{i:02}={}", "v".repeat(len - 4));
    // 64 members of 127 bytes + 63 commas = 8191 bytes: forwarded unchanged.
    let at_limit: Vec<String> = (0..MAX_BAGGAGE_MEMBERS).map(|i| member(i, 127)).collect();
    let at_limit = at_limit.join(",");
    let with = |baggage: &str| {
        TraceContext::from_headers([
            (header::SENTRY_TRACE, SENTRY_TRACE),
            (header::BAGGAGE, baggage),
        ])
        .unwrap()
        .to_headers()
        .into_iter()
        .find(|(name, _)| *name == header::BAGGAGE)
        .map(|(_, value)| value)
    };
    assert_eq!(at_limit.len(), 8191);
    assert_eq!(with(&at_limit).as_deref(), Some(at_limit.as_str()));
    // One byte more is still within 8192; two more is not.
    let plus_one = format!("{at_limit}v");
    assert_eq!(with(&plus_one).as_deref(), Some(plus_one.as_str()));
    assert_eq!(with(&format!("{at_limit}vv")), None);
    // A 65th member is one too many, however short.
    let short: Vec<String> = (0..=MAX_BAGGAGE_MEMBERS)
        .map(|i| format!("k{i}=v"))
        .collect();
    assert_eq!(with(&short.join(",")), None);
    assert!(with(&short[..MAX_BAGGAGE_MEMBERS].join(",")).is_some());
}

/// The `tracestate` limits the runtime documents, applied to what it reads.
const MAX_TRACESTATE_MEMBERS: usize = 32;
const MAX_TRACESTATE_BYTES: usize = 8192;

/// What must be passed through from `values` (the `tracestate` header lines of one request that
/// came with a valid `traceparent`), written from W3C Trace Context independently of the
/// runtime: the lines are one list, in order; every non-empty member, without the spaces and
/// tabs around it, when there are at most 32, the lines total at most 8192 bytes, and each is
/// `key=value` with a key of 1 to 256 characters from `a-z 0-9 _ - * / @` starting with a letter
/// or a digit, and a value of 1 to 256 printable ASCII characters but `,` and `=`, not ending with
/// a space. A key that repeats is kept. Otherwise nothing.
fn expected_tracestate(values: &[String]) -> Option<String> {
    if values.iter().map(String::len).sum::<usize>() > MAX_TRACESTATE_BYTES {
        return None;
    }
    let key_ok = |key: &str| {
        (1..=256).contains(&key.len())
            && key.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-*/@".contains(c))
    };
    let value_ok = |value: &str| {
        (1..=256).contains(&value.len())
            && value
                .chars()
                .all(|c| (' '..='~').contains(&c) && c != ',' && c != '=')
            && !value.ends_with(' ')
    };
    let mut members: Vec<&str> = Vec::new();
    for member in values.iter().flat_map(|value| value.split(',')) {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        if !key_ok(key) || !value_ok(value) {
            return None;
        }
        members.push(member);
    }
    (!members.is_empty() && members.len() <= MAX_TRACESTATE_MEMBERS).then(|| members.join(","))
}

/// A `tracestate` key: mostly valid ones (`@` anywhere after the first character, a digit first,
/// a few from a small set so that keys repeat, some near the 256-character limit), sometimes one
/// that starts with `@` or is one character too long.
fn tracestate_key() -> impl Strategy<Value = String> {
    // 250 to 256 characters, `@` every other one.
    let long = ("[a-z0-9]", 250..=256usize)
        .prop_map(|(first, len)| format!("{first}{}", "k@".repeat(128))[..len].to_owned());
    let known = prop::sample::select(vec!["rojo", "congo", "foo", "t@v", "foo@"]);
    prop_oneof![
        40 => "[a-z][a-z0-9_*/-]{0,8}",
        30 => "[a-z0-9][a-z0-9_*/@-]{0,12}",
        20 => known.prop_map(str::to_owned),
        5 => long,
        1 => "@[a-z0-9@]{0,4}",
        1 => Just("z".repeat(257)),
    ]
}

/// `tracestate` header lines: valid lists (over one to four lines, with empty lines and
/// members), edited with characters the grammar forbids, or arbitrary text.
fn tracestate_values() -> impl Strategy<Value = Vec<String>> {
    let member = (
        tracestate_key(),
        "[ -+--<>-~]{0,10}[!-+--<>-~]",
        prop::sample::select(vec!["", "", " ", "\t", " \t"]),
    )
        .prop_map(|(key, value, pad)| format!("{pad}{key}={value}{pad}"));
    let member = prop_oneof![12 => member, 1 => Just(String::new()), 1 => Just(" ".to_owned())];
    let valid = (prop::collection::vec(member, 0..36), 1..5usize)
        .prop_map(|(members, headers)| {
            let per = members.len().div_ceil(headers).max(1);
            let mut lines: Vec<String> = members.chunks(per).map(|chunk| chunk.join(",")).collect();
            if headers > lines.len() {
                // An empty line among the others.
                lines.insert(headers % (lines.len() + 1), String::new());
            }
            lines
        })
        .boxed();
    prop_oneof![
        3 => valid.clone(),
        2 => (valid, any::<prop::sample::Index>(), prop::sample::select(vec!['=', 'A', ',', '@', '\u{7f}', 'é', ' ', '.']))
            .prop_map(|(mut values, at, c)| {
                if let Some(value) = values.first_mut() {
                    let mut chars: Vec<char> = value.chars().collect();
                    chars.insert(at.index(chars.len() + 1), c);
                    *value = chars.into_iter().collect();
                }
                values
            }),
        1 => prop::collection::vec(any::<String>(), 0..3),
    ]
}

#[test]
fn tracestate_is_passed_through_whole_or_not_at_all() {
    let kept = AtomicUsize::new(0);
    // Kept lists that hold what the W3C key grammar and its validation suite allow: a key that
    // repeats, a key with `@`, several lines.
    let (repeated, at_sign, lines) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let tried = check_cases(
        "arbitrary tracestate headers",
        LIST_CASES,
        tracestate_values(),
        |values| {
            let mut headers = vec![(header::TRACEPARENT, TRACEPARENT)];
            headers.extend(
                values
                    .iter()
                    .map(|value| (header::TRACESTATE, value.as_str())),
            );
            let ctx = TraceContext::from_headers(headers.iter().copied()).unwrap();
            let tracestate = ctx
                .to_headers()
                .into_iter()
                .find(|(name, _)| *name == header::TRACESTATE)
                .map(|(_, value)| value);
            let want = expected_tracestate(&values);
            if let Some(want) = &want {
                kept.fetch_add(1, Ordering::Relaxed);
                let keys: Vec<&str> = want
                    .split(',')
                    .map(|m| m.split('=').next().unwrap())
                    .collect();
                let distinct: std::collections::HashSet<&&str> = keys.iter().collect();
                for (count, seen) in [
                    (&repeated, distinct.len() < keys.len()),
                    (&at_sign, keys.iter().any(|key| key.contains('@'))),
                    (
                        &lines,
                        values
                            .iter()
                            .filter(|value| !value.trim().is_empty())
                            .count()
                            > 1,
                    ),
                ] {
                    count.fetch_add(usize::from(seen), Ordering::Relaxed);
                }
            }
            prop_assert_eq!(&tracestate, &want, "from {:?}", values);
            // Without a `traceparent` of the same trace, `tracestate` is not kept.
            let other = "00-fedcba9876543210fedcba9876543210-0123456789abcdef-01";
            headers[0] = (header::TRACEPARENT, other);
            headers.push((header::SENTRY_TRACE, SENTRY_TRACE));
            let ctx = TraceContext::from_headers(headers.iter().copied()).unwrap();
            prop_assert!(ctx
                .to_headers()
                .iter()
                .all(|(name, _)| *name != header::TRACESTATE));
            Ok(())
        },
    );
    let kept = kept.into_inner();
    let (repeated, at_sign, lines) = (
        repeated.into_inner(),
        at_sign.into_inner(),
        lines.into_inner(),
    );
    eprintln!(
        "[header_fuzz] tracestate: {kept} of {tried} kept ({repeated} with a repeated key, \
         {at_sign} with an `@` key, {lines} over several lines)"
    );
    assert!(
        kept > tried / 10 && kept < tried * 9 / 10,
        "{kept} of {tried} kept"
    );
    for (what, count) in [
        ("a repeated key", repeated),
        ("an `@` key", at_sign),
        ("several lines", lines),
    ] {
        assert!(
            count > kept / 20,
            "{count} of {kept} kept lists with {what}"
        );
    }
}

#[test]
fn tracestate_limits_are_exact() {
    let with = |lines: &[&str]| {
        let mut headers = vec![(header::TRACEPARENT, TRACEPARENT)];
        headers.extend(lines.iter().map(|line| (header::TRACESTATE, *line)));
        TraceContext::from_headers(headers)
            .unwrap()
            .to_headers()
            .into_iter()
            .find(|(name, _)| *name == header::TRACESTATE)
            .map(|(_, value)| value)
    };
    // Keys: 256 characters, `@`s anywhere after the first, are read; 257 are not.
    for key in [
        "k".repeat(256),
        format!("{}@{}", "t".repeat(241), "v".repeat(14)),
        format!("{}@v", "t".repeat(254)),
        format!("0{}", "@".repeat(255)),
    ] {
        let member = format!("{key}=1");
        assert_eq!(with(&["foo=1", &member]), Some(format!("foo=1,{member}")));
        let over = format!("{key}k=1");
        assert_eq!(
            with(&["foo=1", &over]),
            None,
            "{} characters",
            key.len() + 1
        );
    }
    // Values: 256 characters are read, 257 are not.
    let value = "v".repeat(256);
    assert_eq!(with(&[&format!("a={value}")]), Some(format!("a={value}")));
    assert_eq!(with(&[&format!("a={value}v")]), None);
    // Members: 32 over several lines are read, a 33rd is not; empty ones do not count.
    let members: Vec<String> = (0..=MAX_TRACESTATE_MEMBERS)
        .map(|i| format!("k{i}=v"))
        .collect();
    let (first, rest) = members[..MAX_TRACESTATE_MEMBERS].split_at(7);
    let (first, rest) = (format!("{},,", first.join(",")), rest.join(" , "));
    assert_eq!(
        with(&[&first, "", &rest]),
        Some(members[..MAX_TRACESTATE_MEMBERS].join(","))
    );
    assert_eq!(
        with(&[&first, &rest, &members[MAX_TRACESTATE_MEMBERS]]),
        None
    );
    // Bytes: 8192 over every line, white space included, are read; one more is not. 16 lines of
    // two 255-byte members each, and 16 spaces.
    let member = |i: usize| format!("k{i:02}={}", "v".repeat(251));
    let lines: Vec<String> = (0..16)
        .map(|i| format!("{},{}", member(2 * i), member(2 * i + 1)))
        .collect();
    let mut lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let total: usize = lines.iter().map(|line| line.len()).sum();
    assert_eq!(total, MAX_TRACESTATE_BYTES - 16);
    let padding = " ".repeat(16);
    lines.push(&padding);
    assert!(with(&lines).is_some());
    lines.push(" ");
    assert_eq!(with(&lines), None);
}

// ---------------------------------------------------------------- bounded work

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Median time of `f` over `runs` calls.
fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

#[test]
fn values_longer_than_the_bound_are_never_parsed() {
    // At the bound a padded valid value is read; one byte more and it is rejected unread.
    let at_bound = format!("{VALID:<MAX_SENTRY_TRACE_LEN$}");
    assert_eq!(at_bound.len(), MAX_SENTRY_TRACE_LEN);
    let ctx = TraceContext::from_headers([(header::SENTRY_TRACE, at_bound.as_str())]).unwrap();
    assert_eq!(ctx.to_headers()[0].1, VALID);
    let over = format!("{at_bound} ");
    assert_eq!(
        TraceContext::from_headers([(header::SENTRY_TRACE, over.as_str())]).unwrap_err(),
        HeaderError::SentryTraceTooLong
    );
    let padded = format!("{}{VALID}", " ".repeat(MIB));
    assert_eq!(
        TraceContext::from_headers([(header::SENTRY_TRACE, padded.as_str())]).unwrap_err(),
        HeaderError::SentryTraceTooLong
    );
}

#[test]
fn a_mebibyte_value_or_name_costs_constant_time() {
    let hostile = [
        ("1 MiB of 'a'", "a".repeat(MIB)),
        ("1 MiB of '-'", "-".repeat(MIB)),
        ("1 MiB of hex", "0123456789abcdef".repeat(MIB / 16)),
        (
            "valid value + 1 MiB of spaces",
            format!("{VALID}{}", " ".repeat(MIB)),
        ),
        ("1 MiB of multibyte chars", "é".repeat(MIB / 2)),
    ];
    // What reading a 1 MiB value once costs here, for comparison: a bounded parser must stay far
    // below it.
    let scan = time(21, || {
        let value = std::hint::black_box(&hostile[0].1);
        std::hint::black_box(value.trim().bytes().filter(|b| *b == b'-').count());
    });
    eprintln!("[header_fuzz] reading 1 MiB once (trim + scan): median {scan:?}");
    let mut worst = Duration::ZERO;
    for (what, value) in &hostile {
        let median = time(201, || {
            let got = TraceContext::from_headers([(header::SENTRY_TRACE, value.as_str())]);
            assert_eq!(
                std::hint::black_box(got).unwrap_err(),
                HeaderError::SentryTraceTooLong
            );
        });
        eprintln!("[header_fuzz] from_headers, {what}: median {median:?} per call");
        worst = worst.max(median);
        // A 1 MiB header name is compared by length first.
        let name_median = time(201, || {
            let got = TraceContext::from_headers([(value.as_str(), VALID)]);
            assert_eq!(std::hint::black_box(got).unwrap_err(), HeaderError::Missing);
        });
        eprintln!(
            "[header_fuzz] from_headers, {what} as the name: median {name_median:?} per call"
        );
        worst = worst.max(name_median);
        // The other headers are bounded the same way: a 1 MiB `traceparent` is rejected unread;
        // a 1 MiB `baggage` or `tracestate` is ignored unread and the trace still continues.
        let median = time(201, || {
            let got = TraceContext::from_headers([(header::TRACEPARENT, value.as_str())]);
            assert_eq!(
                std::hint::black_box(got).unwrap_err(),
                HeaderError::TraceparentTooLong
            );
        });
        eprintln!("[header_fuzz] from_headers, {what} as traceparent: median {median:?} per call");
        worst = worst.max(median);
        for name in [header::BAGGAGE, header::TRACESTATE] {
            let median = time(201, || {
                let got = TraceContext::from_headers([
                    (header::TRACEPARENT, TRACEPARENT),
                    (name, value.as_str()),
                ])
                .unwrap();
                assert_eq!(std::hint::black_box(got).to_headers().len(), 2);
            });
            eprintln!("[header_fuzz] from_headers, {what} as {name}: median {median:?} per call");
            worst = worst.max(median);
        }
    }
    // Far below a millisecond, and far below one pass over the value.
    assert!(worst < Duration::from_micros(100), "worst median {worst:?}");
    assert!(
        worst * 10 < scan,
        "worst median {worst:?} vs one scan {scan:?}"
    );
}

#[test]
fn many_headers_cost_linear_time_and_the_first_valid_wins() {
    const COUNT: usize = 100_000;
    let junk_value = "x".repeat(MIB);
    let mut headers: Vec<(String, &str)> = Vec::with_capacity(COUNT + 2);
    for i in 0..COUNT {
        match i % 10 {
            // Oversized and malformed sentry-trace values before the valid one.
            0 => headers.push((header::SENTRY_TRACE.to_owned(), junk_value.as_str())),
            1 => headers.push(("Sentry-Trace".to_owned(), "not-a-trace")),
            _ => headers.push((format!("x-header-{i}"), junk_value.as_str())),
        }
    }
    let second = "fedcba9876543210fedcba9876543210-fedcba9876543210-0";
    headers.push((header::SENTRY_TRACE.to_owned(), VALID));
    headers.push((header::SENTRY_TRACE.to_owned(), second));
    let start = Instant::now();
    let ctx =
        TraceContext::from_headers(headers.iter().map(|(name, value)| (name.as_str(), *value)))
            .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(ctx.to_headers()[0].1, VALID);
    eprintln!(
        "[header_fuzz] from_headers over {} headers (1 MiB values, {} invalid sentry-trace): {elapsed:?}",
        headers.len(),
        COUNT / 5
    );
    // Only invalid values: the error of the last one.
    let invalid = &headers[..COUNT];
    let err =
        TraceContext::from_headers(invalid.iter().map(|(name, value)| (name.as_str(), *value)))
            .unwrap_err();
    assert_eq!(err, HeaderError::SentryTraceMalformed);
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

#[test]
fn the_largest_baggage_read_costs_bounded_time() {
    // The most work a baggage can ask for: 8192 bytes in 64 members, each with properties, all
    // read before the last byte makes it invalid.
    let member = |i: usize| format!("k{i:02} = {};p;q=r", "v".repeat(115));
    let members: Vec<String> = (0..MAX_BAGGAGE_MEMBERS).map(member).collect();
    let valid = members.join(",");
    assert!(valid.len() <= MAX_BAGGAGE_BYTES, "{}", valid.len());
    let mut hostile = valid.clone();
    hostile.pop();
    hostile.push('"');
    let run = |baggage: &str| {
        TraceContext::from_headers([
            (header::SENTRY_TRACE, SENTRY_TRACE),
            (header::BAGGAGE, baggage),
        ])
        .unwrap()
    };
    assert_eq!(run(&valid).to_headers()[1].1, valid);
    assert_eq!(run(&hostile).to_headers()[1].0, header::TRACEPARENT);
    let median = time(201, || {
        std::hint::black_box(run(std::hint::black_box(&hostile)));
    });
    eprintln!(
        "[header_fuzz] from_headers, {} bytes of hostile baggage in {} members: median {median:?}",
        hostile.len(),
        MAX_BAGGAGE_MEMBERS
    );
    assert!(median < Duration::from_millis(2), "median {median:?}");
}
