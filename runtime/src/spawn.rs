//! Executors as values: the traits `#[traced_spawn(spawner = EXPR)]`, [`Builder::spawn_on`] and
//! [`Builder::spawn_future_on`] use.
//!
//! [`Builder::spawn_on`]: crate::Builder::spawn_on
//! [`Builder::spawn_future_on`]: crate::Builder::spawn_future_on

use std::future::Future;

/// An executor of blocking jobs (a worker pool, a dedicated thread, a queue consumer) that traced
/// work can be spawned on, as a value: `#[traced_spawn(spawner = EXPR)]` on a sync fn, or
/// [`Builder::spawn_on`](crate::Builder::spawn_on).
///
/// `spawn` receives the whole continuation as one job, so whatever thread runs it, the job
/// starts, binds and finishes its own transaction. A job that is dropped without running is
/// recorded as `cancelled`. With the `rayon` feature, `rayon::ThreadPool` implements it (the
/// handle is a `RayonHandle`); references and `Arc`s of an executor are executors too.
///
/// ```
/// use std::sync::mpsc;
/// use traced_spawn::{Builder, Spawn};
///
/// /// Runs each job on a fresh thread and hands back a channel for the output.
/// struct Detached;
///
/// impl Spawn for Detached {
///     type Handle<R: Send + 'static> = mpsc::Receiver<R>;
///
///     fn spawn<R: Send + 'static>(
///         &self,
///         job: impl FnOnce() -> R + Send + 'static,
///     ) -> mpsc::Receiver<R> {
///         let (send, recv) = mpsc::channel();
///         std::thread::spawn(move || {
///             let _ = send.send(job());
///         });
///         recv
///     }
/// }
///
/// let out = Builder::new("work").spawn_on(&Detached, || 6 * 7);
/// assert_eq!(out.recv().unwrap(), 42);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an executor of blocking jobs: it does not implement `traced_spawn::Spawn`",
    label = "`spawner = ...` names a value implementing `traced_spawn::Spawn` (or `SpawnFuture` for an async fn)",
    note = "implement `traced_spawn::Spawn` for `{Self}`: its `spawn` receives the whole continuation as one job"
)]
pub trait Spawn {
    /// What spawning a job whose output is `R` returns.
    type Handle<R: Send + 'static>;

    /// Runs `job` on the executor.
    fn spawn<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static)
        -> Self::Handle<R>;
}

/// An executor of futures that traced async work can be spawned on, as a value:
/// `#[traced_spawn(spawner = EXPR)]` on an async fn, or
/// [`Builder::spawn_future_on`](crate::Builder::spawn_future_on).
///
/// With the `tokio` feature, `tokio::runtime::Handle` implements it: a task on that runtime,
/// from any thread. References and `Arc`s of an executor are executors too.
///
/// ```
/// use traced_spawn::Builder;
///
/// let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
/// // From a plain thread, onto the runtime through its handle.
/// let handle = Builder::new("work").spawn_future_on(rt.handle(), async { 42 });
/// assert_eq!(rt.block_on(handle).unwrap(), 42);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an executor of futures: it does not implement `traced_spawn::SpawnFuture`",
    label = "`spawner = ...` on an async fn names a value implementing `traced_spawn::SpawnFuture`",
    note = "implement `traced_spawn::SpawnFuture` for `{Self}`: its `spawn_future` receives the whole continuation as one future"
)]
pub trait SpawnFuture {
    /// What spawning a future whose output is `T` returns.
    type Handle<T: Send + 'static>;

    /// Spawns `future` on the executor.
    fn spawn_future<F>(&self, future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
}

impl<S: Spawn + ?Sized> Spawn for &S {
    type Handle<R: Send + 'static> = S::Handle<R>;

    fn spawn<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static) -> S::Handle<R> {
        (**self).spawn(job)
    }
}

impl<S: Spawn + ?Sized> Spawn for std::sync::Arc<S> {
    type Handle<R: Send + 'static> = S::Handle<R>;

    fn spawn<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static) -> S::Handle<R> {
        (**self).spawn(job)
    }
}

impl<S: SpawnFuture + ?Sized> SpawnFuture for &S {
    type Handle<T: Send + 'static> = S::Handle<T>;

    fn spawn_future<F>(&self, future: F) -> S::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        (**self).spawn_future(future)
    }
}

impl<S: SpawnFuture + ?Sized> SpawnFuture for std::sync::Arc<S> {
    type Handle<T: Send + 'static> = S::Handle<T>;

    fn spawn_future<F>(&self, future: F) -> S::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        (**self).spawn_future(future)
    }
}

/// A task on this runtime: what `handle.spawn(future)` does, as a continuation.
#[cfg(feature = "tokio")]
impl SpawnFuture for tokio::runtime::Handle {
    type Handle<T: Send + 'static> = tokio::task::JoinHandle<T>;

    #[track_caller]
    fn spawn_future<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn(future)
    }
}

/// A job on this pool: what `pool.spawn(job)` does, with a handle to join or await its output.
#[cfg(feature = "rayon")]
impl Spawn for rayon::ThreadPool {
    type Handle<R: Send + 'static> = crate::RayonHandle<R>;

    fn spawn<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> crate::RayonHandle<R> {
        let (completion, handle) = crate::rayon_handle::pair();
        self.spawn(move || {
            // rayon aborts the process on a panic that escapes a job: hand it to the handle.
            let output = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            completion.complete(output);
        });
        handle
    }
}

/// Wraps `f` so that each call runs in a fork of the hub current *here*, on whatever thread calls
/// it: the way to keep work that a library fans out to its own threads (rayon's `par_iter`, a
/// thread pool's callbacks) inside the current continuation. Spans and errors of each call link
/// to the span active here; what a call sets on its scope stays in that call.
///
/// rayon's workers have hubs of their own that do not see the continuation, so without this,
/// spans started inside `par_iter` closures are not part of the trace.
///
#[cfg_attr(feature = "rayon", doc = "```")]
#[cfg_attr(not(feature = "rayon"), doc = "```ignore")]
/// use rayon::prelude::*;
///
/// let lengths: Vec<usize> = ["a", "bb", "ccc"]
///     .par_iter()
///     .map(traced_spawn::in_current_trace(|word: &&str| {
///         // on a rayon worker, under the continuation's hub: a child span would link here
///         word.len()
///     }))
///     .collect();
/// assert_eq!(lengths, [1, 2, 3]);
/// ```
pub fn in_current_trace<A, R, F>(f: F) -> impl Fn(A) -> R + Send + Sync
where
    F: Fn(A) -> R + Send + Sync,
{
    let hub = sentry::Hub::current();
    move |argument| {
        let fork = std::sync::Arc::new(sentry::Hub::new_from_top(&hub));
        sentry::Hub::run(fork, || f(argument))
    }
}
