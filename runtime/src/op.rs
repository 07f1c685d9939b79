//! The op of each executor: the default `op` of a continuation, which Sentry shows beside its
//! name. `#[traced_spawn]` and [`Builder`](crate::Builder) use the same ones; the `op` option
//! and [`Builder::op`](crate::Builder::op) replace it.

/// Default op of a continuation on a std thread.
///
/// ```
/// # use traced_spawn::__private::doc::sent;
/// let trace = sent(|| traced_spawn::Builder::new("job").spawn_thread(|| ()).join().unwrap());
/// assert_eq!(trace.op.as_deref(), Some(traced_spawn::op::THREAD));
/// ```
pub const THREAD: &str = "thread";
/// Default op of a continuation on a tokio task (and on a custom [`Spawn`](crate::Spawn)/[`SpawnFuture`](crate::SpawnFuture)
/// executor).
///
/// ```
/// # use traced_spawn::__private::doc::sent;
/// # let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
/// let trace = sent(|| rt.block_on(async {
///     traced_spawn::Builder::new("job").spawn_task(async {}).await.unwrap()
/// }));
/// assert_eq!(trace.op.as_deref(), Some(traced_spawn::op::TASK));
/// ```
pub const TASK: &str = "task";
/// Default op of a continuation on tokio's blocking pool.
///
/// ```
/// # use traced_spawn::__private::doc::sent;
/// # let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
/// let trace = sent(|| rt.block_on(async {
///     traced_spawn::Builder::new("job").spawn_blocking(|| ()).await.unwrap()
/// }));
/// assert_eq!(trace.op.as_deref(), Some(traced_spawn::op::BLOCKING));
/// ```
pub const BLOCKING: &str = "task.blocking";
/// Default op of a continuation on a tokio `LocalSet`.
///
/// ```
/// # use traced_spawn::__private::doc::sent;
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let local = tokio::task::LocalSet::new();
/// let trace = sent(|| local.block_on(&rt, async {
///     traced_spawn::Builder::new("job").spawn_local(async {}).await.unwrap()
/// }));
/// assert_eq!(trace.op.as_deref(), Some(traced_spawn::op::LOCAL));
/// ```
pub const LOCAL: &str = "task.local";
/// Default op of a continuation on a rayon pool.
///
#[cfg_attr(feature = "rayon", doc = "```")]
#[cfg_attr(not(feature = "rayon"), doc = "```ignore")]
/// # use traced_spawn::__private::doc::sent;
/// let trace = sent(|| traced_spawn::Builder::new("job").spawn_rayon(|| ()).join().unwrap());
/// assert_eq!(trace.op.as_deref(), Some(traced_spawn::op::RAYON));
/// ```
pub const RAYON: &str = "task.rayon";
