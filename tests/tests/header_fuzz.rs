//! Hostile input to the propagation API: `TraceContext::from_headers` and serde deserialization
//! get arbitrary, mutated, oversized and numerous values. Nothing panics, the work per value is
//! bounded, exactly the valid values are accepted, and valid contexts round-trip.
//!
//! The property tests run on a fixed seed (reproducible in CI); `PROPTEST_RNG_SEED=<n>` picks
//! another and `PROPTEST_CASES=<n>` changes the number of cases of each property. Run with
//! `--nocapture` to see how many inputs were tried and the measured timings.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use traced_spawn::{HeaderError, TraceContext, SENTRY_TRACE_HEADER};

/// Cases of each property when `PROPTEST_CASES` is not set.
const CASES: u32 = 4_000;

/// The longest `sentry-trace` value the runtime reads (its documented bound): 32 + 1 + 16 + 2
/// characters with room for whitespace.
const MAX_SENTRY_TRACE_LEN: usize = 64;

const MIB: usize = 1 << 20;

const VALID: &str = "0123456789abcdef0123456789abcdef-0123456789abcdef-1";

fn runner() -> TestRunner {
    let base = Config::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        base.cases
    } else {
        CASES
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
    let tried = AtomicUsize::new(0);
    let result = runner().run(&strategy, |value| {
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

/// What `from_headers` must return for `headers`: the first valid `sentry-trace` (name compared
/// case-insensitively); with none, the error of the last `sentry-trace` value, or `Missing`.
fn expected_headers(headers: &[(String, String)]) -> Result<Expected, HeaderError> {
    let mut result = Err(HeaderError::Missing);
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case(SENTRY_TRACE_HEADER) {
            continue;
        }
        match expected(value) {
            valid @ Expected::Valid { .. } => return Ok(valid),
            Expected::TooLong => result = Err(HeaderError::TooLong),
            Expected::Malformed => result = Err(HeaderError::Malformed),
        }
    }
    result
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
/// serde does too.
fn assert_round_trips(ctx: &TraceContext) -> Result<(), TestCaseError> {
    let headers = ctx.to_headers();
    prop_assert_eq!(headers.len(), 2);
    prop_assert_eq!(headers[0].0, SENTRY_TRACE_HEADER);
    let trace = ctx.trace_id().unwrap().to_string();
    prop_assert!(
        headers[1].1.contains(&format!("sentry-trace_id={trace}")),
        "baggage {:?} does not carry the trace id",
        headers[1].1
    );
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
    let edit = (0..4u8, any::<prop::sample::Index>(), any::<char>());
    let chars = prop::sample::select(vec!['-', '0', '1', 'f', 'F', 'g', ' ', '\u{a0}', 'é', '\0']);
    (valid_value(), prop::collection::vec((edit, chars), 1..6)).prop_map(|(value, edits)| {
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
        Just(SENTRY_TRACE_HEADER.to_owned()),
        Just("Sentry-Trace".to_owned()),
        Just("SENTRY-TRACE".to_owned()),
        Just("baggage".to_owned()),
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
        let got = TraceContext::from_headers([(SENTRY_TRACE_HEADER, value.as_str())]);
        match (expected(&value), got) {
            (Expected::TooLong, Err(err)) => prop_assert_eq!(err, HeaderError::TooLong),
            (Expected::Malformed, Err(err)) => prop_assert_eq!(err, HeaderError::Malformed),
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
        prop::collection::vec((any_name(), any_value()), 0..12),
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
            let ctx = TraceContext::from_headers([(SENTRY_TRACE_HEADER, value.as_str())])
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
        // A JSON object is read by its `sentry-trace` field alone.
        if let serde_json::Value::Object(fields) = &value {
            match fields.get(SENTRY_TRACE_HEADER) {
                None | Some(serde_json::Value::Null) => {
                    prop_assert!(got.is_ok_and(|ctx| ctx.is_empty()), "{}", text);
                }
                Some(serde_json::Value::String(trace)) => match (expected(trace), got) {
                    (valid @ Expected::Valid { .. }, Ok(ctx)) => {
                        prop_assert_eq!(parsed(&ctx), valid)
                    }
                    (Expected::Valid { .. }, Err(err)) => {
                        return Err(TestCaseError::fail(format!("{text}: rejected: {err}")))
                    }
                    (_, got) => prop_assert!(got.is_err(), "{} accepted", text),
                },
                Some(_) => prop_assert!(got.is_err(), "{} accepted", text),
            }
        }
        Ok(())
    });
    tried += check(
        "JSON objects with an arbitrary sentry-trace",
        any_value(),
        |trace| {
            let text = serde_json::json!({ SENTRY_TRACE_HEADER: trace }).to_string();
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
    let ctx = TraceContext::from_headers([(SENTRY_TRACE_HEADER, at_bound.as_str())]).unwrap();
    assert_eq!(ctx.to_headers()[0].1, VALID);
    let over = format!("{at_bound} ");
    assert_eq!(
        TraceContext::from_headers([(SENTRY_TRACE_HEADER, over.as_str())]).unwrap_err(),
        HeaderError::TooLong
    );
    let padded = format!("{}{VALID}", " ".repeat(MIB));
    assert_eq!(
        TraceContext::from_headers([(SENTRY_TRACE_HEADER, padded.as_str())]).unwrap_err(),
        HeaderError::TooLong
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
            let got = TraceContext::from_headers([(SENTRY_TRACE_HEADER, value.as_str())]);
            assert_eq!(std::hint::black_box(got).unwrap_err(), HeaderError::TooLong);
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
            0 => headers.push((SENTRY_TRACE_HEADER.to_owned(), junk_value.as_str())),
            1 => headers.push(("Sentry-Trace".to_owned(), "not-a-trace")),
            _ => headers.push((format!("x-header-{i}"), junk_value.as_str())),
        }
    }
    let second = "fedcba9876543210fedcba9876543210-fedcba9876543210-0";
    headers.push((SENTRY_TRACE_HEADER.to_owned(), VALID));
    headers.push((SENTRY_TRACE_HEADER.to_owned(), second));
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
    assert_eq!(err, HeaderError::Malformed);
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}
