//! The handle of a continuation spawned on rayon's global pool.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

/// The output of a job on rayon's pool, or its panic payload: what [`std::thread::JoinHandle`]
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
/// `#[traced_spawn(rayon)]`: wait for the output with [`RayonHandle::join`] (blocking, like
/// `std::thread::JoinHandle::join`) or `.await` it. A panic in the body is returned as `Err` with
/// its payload, like a thread's.
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
    /// Blocks until the job finished; `Err` carries the panic payload of a body that panicked.
    ///
    /// ```
    /// let handle = traced_spawn::Builder::new("boom").spawn_rayon(|| -> u8 { panic!("no") });
    /// assert!(handle.join().is_err());
    /// ```
    pub fn join(self) -> Output<R> {
        let mut slot = self
            .shared
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(output) = slot.output.take() {
                return output;
            }
            slot = self
                .shared
                .ready
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner);
        }
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
