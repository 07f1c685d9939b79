//! A scheduled job: a tokio interval loop runs a job that Sentry Crons monitors.
//!
//! ```text
//! cargo run -p traced-spawn-examples --example cron_job -- --demo
//! ```
//!
//! `#[traced_spawn(monitor = "nightly-report", schedule = ...)]` sends a check-in when the job
//! starts (`in_progress`) and one when it ends (`ok`, or `error` for an `Err`, a panic or a
//! cancellation, with the duration), both in the job's trace, whatever the sampling; with the
//! schedule, Sentry creates the monitor on first use. Each tick of the loop is a transaction of
//! its own (a scheduled run has no request), and the job is its continuation.
//!
//! Without `--demo` the loop ticks every 5 minutes, as the crontab says, until Ctrl-C. With
//! `--demo` it ticks three times, 200 ms apart (the third run fails), prints each check-in as the
//! client sends it and each trace as a tree, and exits.

use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sentry::protocol::SpanStatus;
use sentry::{Envelope, Transport};
use traced_spawn::console::ConsoleTransport;
use traced_spawn::traced_spawn;

#[derive(Debug)]
struct ReportError(&'static str);

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ReportError {}

/// The monitored job. Its check-ins carry the monitor config (the crontab, how long a run may
/// take, how late it may start), so the monitor needs no setup in Sentry; `err` also captures
/// an `Err` as an error event in the same trace.
#[traced_spawn(
    name = "reports::nightly",
    monitor = "nightly-report",
    schedule = "*/5 * * * *",
    max_runtime = 10,
    checkin_margin = 2,
    err
)]
async fn nightly_report(run: u32) -> Result<usize, ReportError> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    if run == 3 {
        return Err(ReportError("the warehouse did not answer"));
    }
    Ok(120 * run as usize)
}

#[tokio::main]
async fn main() -> ExitCode {
    let demo = std::env::args().any(|arg| arg == "--demo");
    // In an application: `sentry::init` with your DSN, as usual. Here the client's transport
    // prints the check-ins it is given and keeps the rest for the console's trees.
    let console = Arc::new(ConsoleTransport::new());
    let check_ins = Arc::new(PrintCheckIns {
        console: console.clone(),
        statuses: Mutex::default(),
    });
    let transport = check_ins.clone();
    let _guard = sentry::init(
        sentry::ClientOptions::new()
            .dsn("https://public@sentry.invalid/1")
            .environment("demo")
            .release("cron-job@1.0.0")
            .traces_sample_rate(1.0)
            .transport(move |_: &sentry::ClientOptions| transport.clone() as Arc<dyn Transport>),
    );

    let (period, runs) = if demo {
        (Duration::from_millis(200), 3)
    } else {
        (Duration::from_secs(5 * 60), u32::MAX)
    };
    let mut ticks = tokio::time::interval(period);
    let mut completed = 0;
    for run in 1..=runs {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        // The scheduler's run: the transaction the job continues.
        let tick =
            sentry::start_transaction(sentry::TransactionContext::new("scheduler::tick", "cron"));
        sentry::configure_scope(|scope| scope.set_span(Some(tick.clone().into())));
        let job = nightly_report(run);
        sentry::configure_scope(|scope| scope.set_span(None));
        tick.set_status(SpanStatus::Ok);
        tick.finish();
        println!("run {run}: {:?}", job.await.expect("the job's task"));
        completed += 1;
    }

    // Every continuation finished and flushed, before the guard closes the client.
    if !traced_spawn::flush(Duration::from_secs(2)).await {
        eprintln!("warning: not everything was sent within 2 s");
    }
    println!();
    let traces = console.traces();
    for trace in &traces {
        println!("{trace}");
    }
    let statuses = check_ins
        .statuses
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let expected = [
        "in_progress",
        "ok",
        "in_progress",
        "ok",
        "in_progress",
        "error",
    ];
    if demo && statuses != expected {
        eprintln!("error: expected the check-ins {expected:?}, got {statuses:?}");
        return ExitCode::FAILURE;
    }
    // One trace per run, the job linked under its tick.
    traced_spawn_examples::check_linked(&traces, completed, 1)
}

/// Prints every check-in item the client sends, then hands the envelope to the console.
struct PrintCheckIns {
    console: Arc<ConsoleTransport>,
    /// The statuses sent, in order.
    statuses: Mutex<Vec<String>>,
}

impl Transport for PrintCheckIns {
    fn send_envelope(&self, envelope: Envelope) {
        let mut bytes = Vec::new();
        if envelope.to_writer(&mut bytes).is_ok() {
            let text = String::from_utf8_lossy(&bytes);
            let mut lines = text.lines().skip(1);
            while let (Some(header), Some(payload)) = (lines.next(), lines.next()) {
                if !header.contains(r#""type":"check_in""#) {
                    continue;
                }
                println!("check-in sent: {payload}");
                if let Ok(item) = serde_json::from_str::<serde_json::Value>(payload) {
                    let status = item["status"].as_str().unwrap_or_default().to_owned();
                    self.statuses
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(status);
                }
            }
        }
        self.console.send_envelope(envelope);
    }
}
