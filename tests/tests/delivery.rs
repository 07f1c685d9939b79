//! Delivery through sentry's real HTTP transport (ureq, plain http) to a Sentry-protocol receiver
//! on loopback, answering at once or after 20 ms per request: what arrives of a batch of
//! independent continuations, and what delivers every one of them exactly once.
//!
//! sentry's HTTP transport queues envelopes in a channel of `transport_channel_capacity` (30 by
//! default) and sends them one at a time on its own thread; an envelope finished while the
//! channel is full is dropped (a `queue_overflow` client report, sent with a later envelope).
//! Dropping sentry's guard closes the client: it waits `shutdown_timeout` (2 s by default) for
//! the channel to drain, then discards what is still queued, without a report.
//!
//! The tests of this file run one at a time (they measure). Run with `--nocapture` to see the
//! figures:
//!
//! ```text
//! cargo test -p traced-spawn-tests --all-features --test delivery -- --nocapture
//! ```

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sentry::transports::UreqHttpTransportOptions;
use sentry::{ClientOptions, Transport, TransportFactory, TransportOptions};
use traced_spawn::traced_spawn;
use traced_spawn_tests::{in_request, tx_trace, Received, Receiver};

/// Independent continuations per batch (and the request that spawns them: one transaction more).
const N: usize = 200;
/// The added round trip of the slow receiver.
const SLOW: Duration = Duration::from_millis(20);
/// A capacity that holds the whole batch.
const ROOMY: usize = N + 10;
/// Long enough for `N + 1` sends at [`SLOW`], with a wide margin.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// One batch at a time: the continuations in flight are counted process-wide, and each test
/// measures.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// sentry's ureq transport, built from the client's options (capacity included), whichever other
/// HTTP transport the workspace's features enable.
struct Ureq;

impl TransportFactory for Ureq {
    fn create_transport_with_options(&self, options: TransportOptions) -> Arc<dyn Transport> {
        Arc::new(UreqHttpTransportOptions::from(options).build())
    }
}

/// An app's options: every transaction sampled, sent to `receiver`, with `capacity` when given.
fn options(receiver: &Receiver, capacity: Option<usize>) -> ClientOptions {
    let options = ClientOptions::new()
        .dsn(receiver.dsn().as_str())
        .traces_sample_rate(1.0)
        .transport(Ureq);
    match capacity {
        Some(capacity) => options.transport_channel_capacity(capacity),
        None => options,
    }
}

#[traced_spawn(rayon)]
fn job(i: usize) -> usize {
    i
}

#[traced_spawn]
async fn task_job(i: usize) -> usize {
    tokio::task::yield_now().await;
    i
}

#[traced_spawn(rayon, child)]
fn part(i: usize) -> usize {
    i
}

/// What one app run delivered.
struct Run {
    label: String,
    /// What `flush` returned, and what had arrived when it returned.
    flush: Option<(bool, Duration, Received)>,
    /// How long dropping the guard took.
    close: Duration,
    /// What had arrived once the guard was dropped.
    arrived: Received,
}

impl Run {
    fn print(&self, expected: usize) {
        let arrived = &self.arrived;
        eprintln!(
            "[delivery] {:<58} arrived {:>3}/{expected} ({} distinct), request {}, \
             queue_overflow reported {:>3}; {}guard drop {:?}",
            self.label,
            arrived.transaction_count(),
            arrived.distinct_transactions(),
            if arrived.named("request").is_empty() {
                "lost"
            } else {
                "arrived"
            },
            arrived.transactions_lost("queue_overflow"),
            match &self.flush {
                Some((flushed, took, at_flush)) => format!(
                    "flush {flushed} in {took:?} with {} arrived; ",
                    at_flush.transaction_count()
                ),
                None => String::new(),
            },
            self.close,
        );
    }
}

/// Spawns `N` traced rayon jobs inside a request, joins them or not, finishes the request, then,
/// with `flush`, calls `flush_blocking` before sentry's guard drops (the end of `main`).
fn rayon_batch(latency: Duration, capacity: Option<usize>, join: bool, flush: bool) -> Run {
    let receiver = Receiver::start(latency);
    let mut flushed = None;
    let close;
    {
        let guard = sentry::init(options(&receiver, capacity));
        in_request("request", |_| {
            let handles: Vec<_> = (0..N).map(job).collect();
            if join {
                for (i, handle) in handles.into_iter().enumerate() {
                    assert_eq!(handle.join().unwrap(), i);
                }
            }
        });
        if flush {
            let started = Instant::now();
            let ok = traced_spawn::flush_blocking(FLUSH_TIMEOUT);
            flushed = Some((ok, started.elapsed(), receiver.received()));
        }
        let started = Instant::now();
        drop(guard);
        close = started.elapsed();
    }
    Run {
        label: format!(
            "{N} rayon jobs{}, {latency:?}, capacity {}, {}",
            if join { " joined" } else { " never joined" },
            capacity.map_or("30 (default)".to_owned(), |c| c.to_string()),
            if flush { "flush_blocking" } else { "no flush" },
        ),
        flush: flushed,
        close,
        arrived: receiver.received(),
    }
}

/// Every transaction arrived once: `expected` items, `expected` distinct event ids, all in the
/// request's trace; and when `flush` was called, it returned `true` with all of them arrived.
fn assert_all_once(run: &Run, expected: usize) {
    let arrived = &run.arrived;
    assert_eq!(arrived.malformed, 0, "{}: malformed envelopes", run.label);
    assert_eq!(
        arrived.transaction_count(),
        expected,
        "{}: transactions arrived",
        run.label
    );
    assert_eq!(
        arrived.distinct_transactions(),
        expected,
        "{}: a transaction arrived twice",
        run.label
    );
    let request = tx_trace(arrived.named("request")[0]);
    for tx in &arrived.transactions {
        assert_eq!(tx_trace(tx).trace_id, request.trace_id, "{}", run.label);
    }
    if let Some((flushed, _, at_flush)) = &run.flush {
        assert!(flushed, "{}: flush returned false", run.label);
        // `true` means the transport has sent everything: nothing may arrive after it.
        assert_eq!(
            at_flush.transaction_count(),
            expected,
            "{}: flush returned true with envelopes still queued",
            run.label
        );
    }
}

// ---------------------------------------------------------------- what is lost

#[test]
fn a_batch_without_flush_loses_what_overflows_the_transport_queue() {
    let _serial = serial();
    let fast = rayon_batch(Duration::ZERO, None, true, false);
    fast.print(N + 1);
    let slow = rayon_batch(SLOW, None, true, false);
    slow.print(N + 1);
    // At 20 ms a send, the 200 jobs finish long before the 31st send: the queue overflows.
    assert!(slow.arrived.transaction_count() < N + 1);
    assert_eq!(
        slow.arrived.transaction_count(),
        slow.arrived.distinct_transactions()
    );
}

#[test]
fn raising_the_capacity_alone_loses_to_the_shutdown_timeout() {
    let _serial = serial();
    let fast = rayon_batch(Duration::ZERO, Some(ROOMY), true, false);
    fast.print(N + 1);
    let slow = rayon_batch(SLOW, Some(ROOMY), true, false);
    slow.print(N + 1);
    // The guard waits `shutdown_timeout` (2 s), then drops the queue: about 2 s / 20 ms sends,
    // and no client report says so.
    assert!(slow.arrived.transaction_count() < N + 1);
    assert_eq!(slow.arrived.transactions_lost("queue_overflow"), 0);
}

#[test]
fn flush_alone_loses_to_the_queue_capacity() {
    let _serial = serial();
    let slow = rayon_batch(SLOW, None, true, true);
    slow.print(N + 1);
    // What overflowed was dropped when it was finished; flush sends the rest.
    assert!(slow.arrived.transaction_count() < N + 1);
    let (flushed, _, at_flush) = slow.flush.as_ref().unwrap();
    assert!(flushed);
    assert_eq!(
        at_flush.transaction_count(),
        slow.arrived.transaction_count(),
        "flush returned true with envelopes still queued"
    );
}

// ---------------------------------------------------------------- what delivers everything

#[test]
fn capacity_and_flush_deliver_every_transaction_exactly_once() {
    let _serial = serial();
    for (latency, join) in [
        (Duration::ZERO, true),
        (Duration::ZERO, false),
        (SLOW, false),
    ] {
        let run = rayon_batch(latency, Some(ROOMY), join, true);
        run.print(N + 1);
        assert_all_once(&run, N + 1);
    }
}

/// A `#[tokio::main]` app: tasks never awaited, `flush().await` as the last line of `main`.
#[test]
fn capacity_and_flush_deliver_every_task_never_awaited() {
    let _serial = serial();
    const TASKS: usize = 100;
    let receiver = Receiver::start(SLOW);
    let mut flushed = None;
    let mut close = Duration::ZERO;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let guard = sentry::init(options(&receiver, Some(TASKS + 10)));
            in_request("request", |_| {
                for i in 0..TASKS {
                    drop(task_job(i));
                }
            });
            let started = Instant::now();
            let ok = traced_spawn::flush(FLUSH_TIMEOUT).await;
            flushed = Some((ok, started.elapsed(), receiver.received()));
            let started = Instant::now();
            drop(guard);
            close = started.elapsed();
        });
    let run = Run {
        label: format!(
            "{TASKS} tokio tasks never awaited, {SLOW:?}, capacity {}, flush",
            TASKS + 10
        ),
        flush: flushed,
        close,
        arrived: receiver.received(),
    };
    run.print(TASKS + 1);
    assert_all_once(&run, TASKS + 1);
}

// ---------------------------------------------------------------- fan-out: one transaction

/// The request with `N` child spans described `description`, all parented to it.
fn assert_one_transaction_with_children(arrived: &Received, description: &str) {
    assert_eq!(arrived.malformed, 0);
    assert_eq!(
        arrived.transaction_count(),
        1,
        "one transaction, not {}",
        N + 1
    );
    let request = &arrived.named("request")[0];
    let trace = tx_trace(request);
    let children: Vec<_> = request
        .spans
        .iter()
        .filter(|span| span.description.as_deref() == Some(description))
        .collect();
    assert_eq!(children.len(), N, "{description}: every child span arrived");
    let span_ids: std::collections::HashSet<_> = children.iter().map(|s| s.span_id).collect();
    assert_eq!(span_ids.len(), N);
    for span in children {
        assert_eq!(span.trace_id, trace.trace_id);
        assert_eq!(span.parent_span_id, Some(trace.span_id));
    }
}

/// Runs `fan_out` inside the request, once against a fast and once against a slow receiver
/// (default capacity, no flush), and asserts each time that the request arrived as one
/// transaction with `N` child spans described `description`; `what` names the fan-out in the log.
fn assert_fan_out_arrives_as_one_transaction(what: &str, description: &str, fan_out: impl Fn()) {
    let _serial = serial();
    for latency in [Duration::ZERO, SLOW] {
        let receiver = Receiver::start(latency);
        let started = Instant::now();
        {
            let _guard = sentry::init(options(&receiver, None));
            in_request("request", |_| fan_out());
        }
        let arrived = receiver.received();
        eprintln!(
            "[delivery] {what}, {latency:?}, capacity 30 (default), no flush: {} transaction \
             with {} spans arrived, {:?}",
            arrived.transaction_count(),
            arrived.transactions.first().map_or(0, |tx| tx.spans.len()),
            started.elapsed()
        );
        assert_one_transaction_with_children(&arrived, description);
    }
}

#[test]
fn child_fan_out_arrives_as_one_transaction_without_flush_or_capacity() {
    let what = format!("{N} rayon jobs as `child` spans");
    assert_fan_out_arrives_as_one_transaction(&what, "delivery::part", || {
        let handles: Vec<_> = (0..N).map(part).collect();
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.join().unwrap(), i);
        }
    });
}

#[test]
fn par_iter_in_current_trace_arrives_as_one_transaction_without_flush_or_capacity() {
    use rayon::prelude::*;
    let what = format!("{N} par_iter items in `in_current_trace`");
    assert_fan_out_arrives_as_one_transaction(&what, "item", || {
        let sum: usize = (0..N)
            .into_par_iter()
            .map(traced_spawn::in_current_trace(|i: usize| {
                let parent = sentry::configure_scope(|scope| scope.get_span());
                let span = parent
                    .expect("the request's span")
                    .start_child("item", "item");
                span.finish();
                i
            }))
            .sum();
        assert_eq!(sum, N * (N - 1) / 2);
    });
}

// ---------------------------------------------------------------- the bound of `flush`

/// `flush_blocking(timeout)` returns by its timeout even when sentry's transport queue is full
/// and the send in progress never ends (an endpoint that accepts the connection and never
/// answers): sentry's own `Transport::flush` first hands a flush command to the full queue and
/// blocks there until a slot frees, before its own timeout starts.
#[test]
fn flush_returns_by_its_timeout_when_the_queue_is_full_and_a_send_hangs() {
    let _serial = serial();
    const TIMEOUT: Duration = Duration::from_millis(500);
    // Accepts connections into its backlog and never answers.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dsn = format!("http://public@{}/1", black_hole.local_addr().unwrap());
    let (done, returned) = std::sync::mpsc::channel();
    let app = std::thread::spawn(move || {
        let _guard = sentry::init(
            ClientOptions::new()
                .dsn(dsn.as_str())
                .traces_sample_rate(1.0)
                .transport(Ureq),
        );
        // The transport thread takes a first envelope; its send never ends.
        sentry::start_transaction(sentry::TransactionContext::new("first", "test")).finish();
        std::thread::sleep(Duration::from_millis(100));
        // 30 envelopes fill the queue; the rest are dropped.
        in_request("request", |_| {
            for i in 0..40 {
                drop(job(i));
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        let flushed = traced_spawn::flush_blocking(TIMEOUT);
        let _ = done.send((flushed, started.elapsed()));
    });
    let outcome = returned.recv_timeout(TIMEOUT + Duration::from_secs(2));
    // Closing the listener resets the hung connection: the transport drains, the app ends.
    drop(black_hole);
    app.join().unwrap();
    eprintln!(
        "[delivery] flush_blocking({TIMEOUT:?}) with the queue full and a send that never \
         ends: {}",
        match outcome {
            Ok((flushed, took)) => format!("{flushed} after {took:?}"),
            Err(_) => format!(
                "had not returned {:?} after its timeout",
                Duration::from_secs(2)
            ),
        }
    );
    let (flushed, took) = outcome.expect("flush_blocking returned by its timeout");
    assert!(!flushed);
    assert!(took < TIMEOUT + Duration::from_millis(500), "took {took:?}");
}
