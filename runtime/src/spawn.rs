//! Custom executors: the traits `#[traced_spawn(spawner = S)]` and [`Builder::spawn_with`] use.
//!
//! [`Builder::spawn_with`]: crate::Builder::spawn_with

use std::future::Future;

/// An executor of blocking jobs (a worker pool, a dedicated thread, a queue consumer) that traced
/// work can be spawned on.
///
/// Implement it on a type (usually a unit struct naming a global pool); `spawn` receives the whole
/// continuation as one job, so whatever thread runs it, the job starts, binds and finishes its own
/// transaction. A job that is dropped without running is recorded as `cancelled`.
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
///     fn spawn<R: Send + 'static>(job: impl FnOnce() -> R + Send + 'static) -> mpsc::Receiver<R> {
///         let (send, recv) = mpsc::channel();
///         std::thread::spawn(move || {
///             let _ = send.send(job());
///         });
///         recv
///     }
/// }
///
/// let out = Builder::new("work").spawn_with::<Detached, _, _>(|| 6 * 7);
/// assert_eq!(out.recv().unwrap(), 42);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an executor of blocking jobs: it does not implement `traced_spawn::Spawn`",
    label = "`spawner = ...` names a type implementing `traced_spawn::Spawn` (or `SpawnFuture` for an async fn)",
    note = "implement `traced_spawn::Spawn` for `{Self}`: its `spawn` receives the whole continuation as one job"
)]
pub trait Spawn {
    /// What spawning a job whose output is `R` returns.
    type Handle<R: Send + 'static>;

    /// Runs `job` on the executor.
    fn spawn<R: Send + 'static>(job: impl FnOnce() -> R + Send + 'static) -> Self::Handle<R>;
}

/// An executor of futures that traced async work can be spawned on.
///
/// ```
/// use traced_spawn::{Builder, SpawnFuture};
///
/// /// Spawns on the current tokio runtime.
/// struct Tokio;
///
/// impl SpawnFuture for Tokio {
///     type Handle<T: Send + 'static> = tokio::task::JoinHandle<T>;
///
///     fn spawn_future<F>(future: F) -> tokio::task::JoinHandle<F::Output>
///     where
///         F: std::future::Future + Send + 'static,
///         F::Output: Send + 'static,
///     {
///         tokio::spawn(future)
///     }
/// }
///
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let handle = Builder::new("work").spawn_future_with::<Tokio, _>(async { 42 });
/// assert_eq!(handle.await.unwrap(), 42);
/// # });
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an executor of futures: it does not implement `traced_spawn::SpawnFuture`",
    label = "`spawner = ...` on an async fn names a type implementing `traced_spawn::SpawnFuture`",
    note = "implement `traced_spawn::SpawnFuture` for `{Self}`: its `spawn_future` receives the whole continuation as one future"
)]
pub trait SpawnFuture {
    /// What spawning a future whose output is `T` returns.
    type Handle<T: Send + 'static>;

    /// Spawns `future` on the executor.
    fn spawn_future<F>(future: F) -> Self::Handle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
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
