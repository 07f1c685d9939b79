//! Interop with Sentry's Python SDK (`sentry-sdk`, pinned in scripts/python/requirements.txt): a
//! real Python process continues the headers this crate writes, and this crate continues the
//! headers Python writes. scripts/python/peer.py is the Python side; it keeps its envelopes in
//! memory and prints them as JSON.
//!
//! Needs the peer's virtualenv: `bash scripts/python/setup.sh` (CI runs it). Without it the tests
//! are skipped with a notice, except when `CI` is set: then a missing peer is a failure.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use traced_spawn::{header, TraceContext};
use traced_spawn_tests::{capture, in_request, sampled, tx_trace};

/// Runs `peer.py <mode>` with `stdin`, the given environment, and returns its JSON output.
fn run_peer(python: &PathBuf, mode: &str, stdin: &str, env: &[(&str, &str)]) -> Value {
    let mut child = Command::new(python)
        .arg(traced_spawn_tests::python_peer_dir().join("peer.py"))
        .arg(mode)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the python peer");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().expect("python peer output");
    assert!(
        output.status.success(),
        "python peer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "python peer printed no JSON ({err}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn decode(value: &str) -> String {
    let mut out = Vec::new();
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&value[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The `sentry-*` entries of a baggage value, decoded, keyed without the prefix.
fn sentry_entries(baggage: &str) -> Vec<(String, String)> {
    baggage
        .split(',')
        .filter_map(|member| {
            let (key, value) = member.split_once('=')?;
            Some((
                key.trim().strip_prefix("sentry-")?.to_owned(),
                decode(value.trim()),
            ))
        })
        .collect()
}

/// Headers a Rust request sends, with the ids of the request transaction.
fn rust_request() -> (Vec<(&'static str, String)>, String, String) {
    let mut options = sampled();
    options.dsn = Some("https://rustkey@o42.ingest.sentry.io/9".parse().unwrap());
    options.release = Some("shop@1.2.0".into());
    options.environment = Some("production".into());
    let mut headers = Vec::new();
    let captured = capture(options, || {
        in_request("GET /checkout", |_| {
            headers = TraceContext::capture().to_headers()
        });
    });
    let request = tx_trace(captured.only("GET /checkout"));
    (
        headers,
        request.trace_id.to_string(),
        request.span_id.to_string(),
    )
}

#[test]
fn python_continues_the_headers_rust_sends() {
    let Some(python) = traced_spawn_tests::python_peer() else {
        return;
    };
    let (headers, trace_id, span_id) = rust_request();
    let stdin = serde_json::to_string(&headers).unwrap();
    let out = run_peer(&python, "continue", &stdin, &[]);
    let tx = &out["transactions"][0];
    assert_eq!(tx["name"], "python.continue");
    assert_eq!(tx["trace_id"], trace_id.as_str());
    assert_eq!(tx["parent_span_id"], span_id.as_str());
    // Python froze the context Rust sent: its envelope carries Rust's DSC, not its own.
    let ours = sentry_entries(
        &headers
            .iter()
            .find(|(n, _)| *n == header::BAGGAGE)
            .unwrap()
            .1,
    );
    assert_eq!(
        ours.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        [
            "trace_id",
            "public_key",
            "org_id",
            "release",
            "environment",
            "sample_rate",
            "sampled"
        ]
    );
    for (key, value) in &ours {
        assert_eq!(tx["dsc"][key], value.as_str(), "dsc {key}: {}", tx["dsc"]);
    }
    assert_eq!(tx["dsc"]["public_key"], "rustkey");
    // And it forwards it: its outgoing baggage holds every entry Rust sent, unchanged.
    let forwarded = sentry_entries(out["outgoing"]["baggage"].as_str().unwrap());
    for entry in &ours {
        assert!(forwarded.contains(entry), "{entry:?} not in {forwarded:?}");
    }
}

#[test]
fn python_reads_the_org_id_rust_sends() {
    let Some(python) = traced_spawn_tests::python_peer() else {
        return;
    };
    let (headers, trace_id, _) = rust_request();
    let stdin = serde_json::to_string(&headers).unwrap();
    // A Python service of another organization starts its own trace.
    let foreign = run_peer(
        &python,
        "continue",
        &stdin,
        &[("PEER_DSN", "https://pykey@o7.ingest.sentry.io/5")],
    );
    assert_ne!(foreign["transactions"][0]["trace_id"], trace_id.as_str());
    assert_eq!(foreign["transactions"][0]["parent_span_id"], Value::Null);
}

#[test]
fn rust_continues_the_headers_python_sends() {
    let Some(python) = traced_spawn_tests::python_peer() else {
        return;
    };
    let out = run_peer(&python, "head", "", &[]);
    let sentry_trace = out["outgoing"]["sentry-trace"].as_str().unwrap();
    let baggage = out["outgoing"]["baggage"].as_str().unwrap();
    let incoming = [
        (header::SENTRY_TRACE, sentry_trace),
        (header::BAGGAGE, baggage),
    ];
    // The same organization (o42), strict: continued.
    let mut options = sampled();
    options.dsn = Some("https://rustkey@o42.ingest.sentry.io/9".parse().unwrap());
    options.strict_trace_continuation = true;
    let mut inside = Vec::new();
    let captured = capture(options, || {
        TraceContext::from_headers(incoming)
            .expect("python's headers")
            .run("rust.job", "queue.process", || {
                inside = TraceContext::capture().to_headers()
            });
    });
    let job = tx_trace(captured.only("rust.job"));
    assert_eq!(
        job.trace_id.to_string(),
        out["ids"]["trace_id"].as_str().unwrap()
    );
    assert_eq!(
        job.parent_span_id.unwrap().to_string(),
        out["ids"]["span_id"].as_str().unwrap()
    );
    // Python's sampling context goes onwards unchanged, with Python's transaction name.
    let forwarded = inside.iter().find(|(n, _)| *n == header::BAGGAGE).unwrap();
    assert_eq!(forwarded.1, baggage);
    assert!(sentry_entries(baggage).contains(&("transaction".into(), "python.head".into())));

    // Another organization (o7): a new trace.
    let mut options = sampled();
    options.dsn = Some("https://rustkey@o7.ingest.sentry.io/9".parse().unwrap());
    let captured = capture(options, || {
        TraceContext::from_headers(incoming)
            .unwrap()
            .run("rust.job", "queue.process", || ());
    });
    let job = tx_trace(captured.only("rust.job"));
    assert_ne!(
        job.trace_id.to_string(),
        out["ids"]["trace_id"].as_str().unwrap()
    );
    assert_eq!(job.parent_span_id, None);
}
