//! The handle of a continuation spawned on a rayon pool.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// The first sleep of a rayon worker that waits in [`RayonHandle::join`] with nothing of its pool
/// to run; each idle round doubles it, up to [`IDLE_WAIT_MAX`]. The job's completion wakes it at
/// once: the bound is how late it notices new work of its pool.
const IDLE_WAIT_MIN: Duration = Duration::from_micros(20);

/// The longest sleep of a waiting worker between two looks for work of its pool.
const IDLE_WAIT_MAX: Duration = Duration::from_millis(1);

/// The output of a job on a rayon pool, or its panic payload: what [`std::thread::JoinHandle`]
/// gives.
type Output<R> = std::thread::Result<R>;

struct Slot<R> {
    output: Option<Output<R>>,
    waker: Option<Waker>,
}

struct Shared<R> {
    slot: Mutex<Slot<R>>,
    ready: Condvar,
}

/// The handle returned by [`Builder::spawn_rayon`](crate::Builder::spawn_rayon) and by
/// `#[traced_spawn(rayon)]`: wait for the output with [`RayonHandle::join`] (like
/// `std::thread::JoinHandle::join`; on a rayon worker, it runs the pool's pending work while it
/// waits, so joining inside `par_iter` never deadlocks) or `.await` it. A panic in the body is
/// returned as `Err` with its payload, like a thread's.
///
/// ```
/// let handle = traced_spawn::Builder::new("sum").spawn_rayon(|| (1..=10).sum::<u32>());
/// assert_eq!(handle.join().unwrap(), 55);
/// ```
#[must_use = "dropping the handle detaches the job"]
pub struct RayonHandle<R> {
    shared: Arc<Shared<R>>,
}

/// The sending half, moved into the job.
pub(crate) struct Completion<R> {
    shared: Arc<Shared<R>>,
}

pub(crate) fn pair<R>() -> (Completion<R>, RayonHandle<R>) {
    let shared = Arc::new(Shared {
        slot: Mutex::new(Slot {
            output: None,
            waker: None,
        }),
        ready: Condvar::new(),
    });
    (
        Completion {
            shared: shared.clone(),
        },
        RayonHandle { shared },
    )
}

impl<R> Completion<R> {
    pub(crate) fn complete(self, output: Output<R>) {
        let waker = {
            let mut slot = self
                .shared
                .slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            slot.output = Some(output);
            slot.waker.take()
        };
        self.shared.ready.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<R> RayonHandle<R> {
    /// Waits until the job finished and returns its output; `Err` carries the panic payload of a
    /// body that panicked, as [`std::thread::JoinHandle::join`] does.
    ///
    /// On a thread that is not a rayon worker, the thread blocks. On a rayon worker (inside
    /// `par_iter`, `rayon::join`, `rayon::scope`, `ThreadPool::install`, or another job), the
    /// worker keeps running its pool's pending work while it waits, as rayon's own `join` and
    /// `scope` do: the job may be queued behind the very worker that waits for it (`rayon::spawn`
    /// puts it on the calling worker's own queue), so joining inside `par_iter` never deadlocks,
    /// whatever the number of items and threads, and a job on another pool does not stall this
    /// one. With nothing of its pool to run, the worker sleeps until the job finishes, and looks
    /// for new work of its pool at least every millisecond.
    ///
    /// As in rayon's own waits, work run meanwhile runs on the waiting worker's stack, nested in
    /// the wait: `join` returns once that work has returned too, and that work sees the thread's
    /// state at the wait, its current Sentry hub included (a traced job's body runs under its own
    /// hub either way; wrap `par_iter` closures in [`in_current_trace`](crate::in_current_trace)
    /// to give each item its own).
    ///
    /// ```
    /// let handle = traced_spawn::Builder::new("boom").spawn_rayon(|| -> u8 { panic!("no") });
    /// assert!(handle.join().is_err());
    /// ```
    ///
    /// Inside `par_iter`, on a pool of two threads, every item joins a job of its own:
    ///
    /// ```
    /// use rayon::prelude::*;
    ///
    /// let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    /// let doubled: u32 = pool.install(|| {
    ///     (0..100u32)
    ///         .into_par_iter()
    ///         .map(|n| traced_spawn::Builder::new("double").spawn_rayon(move || n * 2))
    ///         .map(|handle| handle.join().unwrap())
    ///         .sum()
    /// });
    /// assert_eq!(doubled, 9900);
    /// ```
    pub fn join(self) -> Output<R> {
        let mut idle_wait = IDLE_WAIT_MIN;
        loop {
            if let Some(output) = self.take_output() {
                return output;
            }
            // The slot is not locked here: the work run may be the job itself, which fills it.
            match rayon::yield_now() {
                Some(rayon::Yield::Executed) => idle_wait = IDLE_WAIT_MIN,
                Some(rayon::Yield::Idle) => {
                    if let Some(output) = self.wait(Some(idle_wait)) {
                        return output;
                    }
                    idle_wait = (idle_wait * 2).min(IDLE_WAIT_MAX);
                }
                None => {
                    if let Some(output) = self.wait(None) {
                        return output;
                    }
                }
            }
        }
    }

    /// The output, if the job has finished.
    fn take_output(&self) -> Option<Output<R>> {
        self.shared
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .output
            .take()
    }

    /// Waits until the job has finished, or `timeout` has passed; the output, if it has finished.
    fn wait(&self, timeout: Option<Duration>) -> Option<Output<R>> {
        let mut slot = self
            .shared
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match timeout {
            None => {
                while slot.output.is_none() {
                    slot = self
                        .shared
                        .ready
                        .wait(slot)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
            Some(timeout) if slot.output.is_none() => {
                slot = self
                    .shared
                    .ready
                    .wait_timeout(slot, timeout)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            Some(_) => {}
        }
        slot.output.take()
    }

    /// Whether the job has finished.
    ///
    /// ```
    /// let handle = traced_spawn::Builder::new("x").spawn_rayon(|| 1);
    /// while !handle.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(handle.join().unwrap(), 1);
    /// ```
    pub fn is_finished(&self) -> bool {
        self.shared
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .output
            .is_some()
    }
}

impl<R> Future for RayonHandle<R> {
    type Output = Output<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Output<R>> {
        let mut slot = self
            .shared
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match slot.output.take() {
            Some(output) => Poll::Ready(output),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<R> std::fmt::Debug for RayonHandle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RayonHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
