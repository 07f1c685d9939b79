//! Waiting for offloaded work at shutdown: [`flush`] and [`flush_blocking`].
//!
//! Every continuation counts from the call that hands it to an executor until it has finished
//! (and its transaction is queued in sentry's transport) or was dropped as `cancelled`. A count
//! of zero is what the flush functions wait for; then they flush the client. The count is one
//! atomic; a waiter is woken by the continuation that brings it to zero.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Continuations handed to an executor and not finished yet.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// Threads waiting in [`wait_idle`].
static WAITERS: AtomicUsize = AtomicUsize::new(0);
/// Guards the check of the count against the wake-up of the continuation that ends it.
static IDLE_LOCK: Mutex<()> = Mutex::new(());
static IDLE: Condvar = Condvar::new();

/// One continuation in flight, from the spawning call until it is finished or dropped.
#[derive(Debug)]
pub(crate) struct InFlight(());

impl InFlight {
    pub(crate) fn new() -> InFlight {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if IN_FLIGHT.fetch_sub(1, Ordering::SeqCst) == 1 && WAITERS.load(Ordering::SeqCst) > 0 {
            let _locked = IDLE_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
            IDLE.notify_all();
        }
    }
}

/// Waits until no continuation is in flight, or `deadline`; whether none is.
fn wait_idle(deadline: Instant) -> bool {
    WAITERS.fetch_add(1, Ordering::SeqCst);
    let mut locked = IDLE_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let idle = loop {
        if IN_FLIGHT.load(Ordering::SeqCst) == 0 {
            break true;
        }
        let now = Instant::now();
        if now >= deadline {
            break false;
        }
        locked = IDLE
            .wait_timeout(locked, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    };
    drop(locked);
    WAITERS.fetch_sub(1, Ordering::SeqCst);
    idle
}

/// Waits until every continuation this process has started or has pending has finished, then
/// flushes the Sentry client of the calling thread's hub; `true` when all finished and the
/// client's transport sent what was queued, both within `timeout`.
///
/// For the end of `main`, before sentry's guard is dropped: the guard closes the client, and a
/// continuation still running then (a thread never joined, a task never awaited) sends nothing,
/// not even `cancelled`. In a `#[tokio::main]` app, call [`flush`] instead: the runtime's
/// threads must keep running the work while this waits.
///
/// Counted are the continuations of every executor: threads, tokio tasks, `blocking`, `local`,
/// rayon, custom spawners and [`Continued`](crate::Continued) futures created but not yet run
/// or dropped. Work spawned with no client bound is not counted: it has nothing to send.
///
/// ```
/// use std::time::Duration;
///
/// #[traced_spawn::traced_spawn]
/// fn send_report(text: String) {
///     std::thread::sleep(Duration::from_millis(20));
///     drop(text);
/// }
///
/// let _guard = sentry::init(
///     sentry::ClientOptions::new()
///         .dsn("https://public@o1.ingest.sentry.io/1")
///         .transport(sentry::test::TestTransport::new())
///         .traces_sample_rate(1.0),
/// );
/// send_report("done".into()); // never joined
/// // Before the guard drops: the report's transaction is sent.
/// assert!(traced_spawn::flush_blocking(Duration::from_secs(5)));
/// ```
pub fn flush_blocking(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let client = sentry::Hub::current().client();
    let idle = wait_idle(deadline);
    let flushed = client.is_none_or(|client| flush_client(client, deadline));
    idle && flushed
}

/// Flushes `client` until `deadline` at the latest. sentry's flush first hands its transport a
/// flush command with a blocking send, before its own timeout starts: with the transport's queue
/// full and a send that never ends (an endpoint that never answers), it would block past any
/// timeout. So it runs on a thread of its own, and this returns `false` at the deadline.
fn flush_client(client: Arc<sentry::Client>, deadline: Instant) -> bool {
    let (done, flushed) = std::sync::mpsc::sync_channel(1);
    let remaining = deadline.saturating_duration_since(Instant::now());
    let started = std::thread::Builder::new()
        .name("traced-spawn-flush-client".into())
        .spawn(move || {
            let _ = done.send(client.flush(Some(remaining)));
        });
    started.is_ok()
        && flushed
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or(false)
}

/// [`flush_blocking`] for async code: waits, without blocking the executor's threads, until
/// every continuation has finished, then flushes the Sentry client of the calling task's hub;
/// `true` when both happened within `timeout`.
///
/// The end of a `#[tokio::main]` app whose sentry guard lives inside `main` (the usual shape):
/// the guard is dropped when `main` returns, before the runtime drops the tasks still running,
/// so without this wait their continuations are lost.
///
/// ```
/// use std::time::Duration;
///
/// #[traced_spawn::traced_spawn]
/// async fn answer(question: String) -> usize {
///     tokio::task::yield_now().await;
///     question.len()
/// }
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() {
///     let _guard = sentry::init(
///         sentry::ClientOptions::new()
///             .dsn("https://public@o1.ingest.sentry.io/1")
///             .transport(sentry::test::TestTransport::new())
///             .traces_sample_rate(1.0),
///     );
///     drop(answer("why?".into())); // the handler answered; the work goes on
///     // Last line of `main`: the task finishes and its transaction is sent.
///     assert!(traced_spawn::flush(Duration::from_secs(5)).await);
/// }
/// ```
///
/// The wait runs on a thread of its own (sentry's flush blocks), so it works on any executor.
pub fn flush(timeout: Duration) -> Flush {
    let shared = Arc::new(Mutex::new(Outcome {
        done: None,
        waker: None,
    }));
    let hub = sentry::Hub::current();
    let done = shared.clone();
    let waiting = std::thread::Builder::new()
        .name("traced-spawn-flush".into())
        .spawn(move || {
            let flushed = sentry::Hub::run(hub, || flush_blocking(timeout));
            let waker = {
                let mut outcome = done.lock().unwrap_or_else(PoisonError::into_inner);
                outcome.done = Some(flushed);
                outcome.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        });
    if waiting.is_err() {
        // No thread could be started: nothing waited, nothing flushed.
        shared.lock().unwrap_or_else(PoisonError::into_inner).done = Some(false);
    }
    Flush { shared }
}

struct Outcome {
    done: Option<bool>,
    waker: Option<Waker>,
}

/// The future [`flush`] returns: `true` when every continuation finished and the client's
/// transport sent what they queued, within the timeout.
#[must_use = "flushing happens in the background; await it to wait for the continuations"]
pub struct Flush {
    shared: Arc<Mutex<Outcome>>,
}

impl std::fmt::Debug for Flush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flush").finish_non_exhaustive()
    }
}

impl Future for Flush {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let mut outcome = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome.done {
            Some(flushed) => Poll::Ready(flushed),
            None => {
                outcome.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
