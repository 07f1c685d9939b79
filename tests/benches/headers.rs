//! Cost and size of the propagation headers: what a context sends (bytes per header) and what
//! reading incoming headers costs, from a typical Sentry request to the largest hostile input the
//! runtime reads.
//!
//! ```text
//! cargo bench -p traced-spawn-tests --bench headers              # full run, a few seconds
//! cargo bench -p traced-spawn-tests --bench headers -- --smoke   # every variant once, checked
//! ```
//!
//! The variants run interleaved: each round times a batch of every variant in turn, so a slow
//! phase of the machine hits them all alike. The table gives, per variant, the median over rounds
//! of the time per call. Every variant's result is checked (before timing, and in smoke mode), so
//! the figures are those of calls that did what they should.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use traced_spawn::{header, TraceContext};

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const SPAN: &str = "b7ad6b7169203331";

struct Variant {
    name: &'static str,
    run: Box<dyn Fn()>,
}

/// A variant reading `headers`; `check` is asserted on the result once, before any timing.
fn incoming(headers: Vec<(&'static str, String)>, check: fn(&TraceContext)) -> Box<dyn Fn()> {
    let parse = move || {
        TraceContext::from_headers(headers.iter().map(|(k, v)| (*k, v.as_str())))
            .expect("a trace header")
    };
    check(&parse());
    Box::new(move || {
        black_box(parse());
    })
}

fn baggage_of(ctx: &TraceContext) -> Option<String> {
    ctx.to_headers()
        .into_iter()
        .find(|(name, _)| *name == header::BAGGAGE)
        .map(|(_, value)| value)
}

fn main() {
    let smoke =
        std::env::args().any(|arg| arg == "--smoke") || std::env::var_os("BENCH_SMOKE").is_some();

    // A context captured under a typical client: DSN with an org, release, environment, a fixed
    // sample rate, inside a request transaction.
    let mut options = sentry::ClientOptions::new()
        .traces_sample_rate(0.25)
        .release("checkout-api@2024.11.3+7f3a2c1")
        .environment("production");
    options.dsn = Some(
        "https://b5a1c2d3e4f5a6b7c8d9e0f1a2b3c4d5@o123456.ingest.sentry.io/4507"
            .parse()
            .unwrap(),
    );
    options.transport = Some(Arc::new(sentry::test::TestTransport::new()));
    let hub = Arc::new(sentry::Hub::new(
        Some(Arc::new(options.into())),
        Default::default(),
    ));
    let (captured, tx) = sentry::Hub::run(hub, || {
        let mut tx_ctx = sentry::TransactionContext::new("POST /orders", "http.server");
        tx_ctx.set_sampled(true);
        let tx = sentry::start_transaction(tx_ctx);
        sentry::configure_scope(|scope| scope.set_span(Some(tx.clone().into())));
        (TraceContext::capture(), tx)
    });
    let sent = captured.to_headers();
    println!("headers a typical context sends (bytes of the value):");
    let mut total = 0;
    for (name, value) in &sent {
        println!("  {name:<13} {:>4}  {value}", value.len());
        total += name.len() + value.len();
    }
    println!("  all of them, names included: {total} bytes\n");
    assert_eq!(sent.len(), 3);

    let typical = sent.clone();
    let max_baggage: String = (0..64)
        .map(|i| format!("k{i:02} = {};p;q=r", "v".repeat(115)))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(max_baggage.len(), 8191);
    let mut hostile_baggage = max_baggage.clone();
    hostile_baggage.pop();
    hostile_baggage.push('"');
    let max_tracestate: String = (0..32)
        .map(|i| format!("k{i:02}={}", "v".repeat(250)))
        .collect::<Vec<_>>()
        .join(",");
    let mut hostile_tracestate = max_tracestate.clone();
    hostile_tracestate.push('=');
    let sentry_trace = (header::SENTRY_TRACE, format!("{TRACE}-{SPAN}-1"));
    let traceparent = (header::TRACEPARENT, format!("00-{TRACE}-{SPAN}-01"));
    let mib = "a".repeat(1 << 20);

    let variants = vec![
        Variant {
            name: "to_headers, typical captured context",
            run: Box::new(move || {
                black_box(captured.to_headers());
            }),
        },
        Variant {
            name: "from_headers, typical (sentry-trace, baggage, traceparent)",
            run: incoming(typical, |ctx| assert!(baggage_of(ctx).is_some())),
        },
        Variant {
            name: "from_headers, largest valid baggage (8191 B, 64 members)",
            run: incoming(
                vec![sentry_trace.clone(), (header::BAGGAGE, max_baggage.clone())],
                |ctx| assert_eq!(baggage_of(ctx).map(|b| b.len()), Some(8191)),
            ),
        },
        Variant {
            name: "from_headers, hostile baggage (8191 B, invalid last byte)",
            run: incoming(
                vec![sentry_trace.clone(), (header::BAGGAGE, hostile_baggage)],
                |ctx| assert_eq!(baggage_of(ctx), None),
            ),
        },
        Variant {
            name: "from_headers, hostile tracestate (32 members, invalid last byte)",
            run: incoming(
                vec![
                    traceparent.clone(),
                    (header::TRACESTATE, hostile_tracestate),
                ],
                |ctx| assert_eq!(ctx.to_headers().len(), 2),
            ),
        },
        Variant {
            name: "from_headers, 1 MiB baggage (rejected by its length)",
            run: incoming(
                vec![sentry_trace.clone(), (header::BAGGAGE, mib.clone())],
                |ctx| assert_eq!(baggage_of(ctx), None),
            ),
        },
        Variant {
            name: "from_headers, 1 MiB sentry-trace + valid traceparent",
            run: incoming(vec![(header::SENTRY_TRACE, mib), traceparent], |ctx| {
                assert_eq!(ctx.sampled(), Some(true))
            }),
        },
    ];
    tx.finish();
    if smoke {
        for variant in &variants {
            (variant.run)();
            println!("smoke: {} ok", variant.name);
        }
        return;
    }

    const ROUNDS: usize = 31;
    const BATCH: usize = 200;
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); variants.len()];
    for _ in 0..ROUNDS {
        for (variant, samples) in variants.iter().zip(&mut samples) {
            let start = Instant::now();
            for _ in 0..BATCH {
                (variant.run)();
            }
            samples.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
        }
    }
    println!("median time per call over {ROUNDS} interleaved rounds of {BATCH} calls:");
    for (variant, mut samples) in variants.iter().zip(samples) {
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        println!("  {:>9.2} µs  {}", median / 1000.0, variant.name);
    }
}
