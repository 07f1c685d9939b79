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
