//! Handing a continuation to each executor: the one place [`Builder`]'s methods and the code
//! `#[traced_spawn]` generates both spawn through, once the continuation is known.
//!
//! Each function takes the [`Pending`] continuation (`None`: nothing to continue, the work is
//! handed on as it is), the classifier of the body's output, and the body.
//!
//! [`Builder`]: crate::Builder

use std::future::Future;

use crate::classify::Rule;
use crate::future::Continued;
use crate::pending::{HandOver, Pending};
use crate::spawn::{Spawn, SpawnFuture};

/// A new std thread, configured by `thread`.
pub(crate) fn thread<F, R>(
    thread: std::thread::Builder,
    pending: Option<Pending>,
    rule: Rule<R>,
    body: F,
) -> std::thread::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    thread
        .spawn(move || Pending::run_or_plain(pending, rule, body))
        .expect("failed to spawn thread")
}

/// A tokio task on `runtime`. With nothing to continue, the future is spawned as it is: the
/// smallest task (a wrapper would move a small future into the next size of tokio's task cells),
/// which is what keeps a spawn without a client as cheap as a plain one.
#[cfg(feature = "tokio")]
#[track_caller]
pub(crate) fn task<F>(
    runtime: &Runtime,
    pending: Option<Pending>,
    rule: Rule<F::Output>,
    future: F,
) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match pending {
        None => runtime.spawn(future),
        pending => runtime.spawn(Continued::new(pending, rule, future)),
    }
}

/// tokio's blocking pool of `runtime`.
#[cfg(feature = "tokio")]
#[track_caller]
pub(crate) fn blocking<F, R>(
    runtime: &Runtime,
    pending: Option<Pending>,
    rule: Rule<R>,
    body: F,
) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    runtime.spawn_blocking(move || Pending::run_or_plain(pending, rule, body))
}

/// The current `LocalSet`.
#[cfg(feature = "tokio")]
#[track_caller]
pub(crate) fn local<F>(
    pending: Option<Pending>,
    rule: Rule<F::Output>,
    future: F,
) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let continued = Continued::new(pending, rule, future);
    let _hand_over = HandOver::begin();
    tokio::task::spawn_local(continued)
}

/// The pool of the calling rayon worker, or rayon's global pool from any other thread, as
/// `rayon::spawn` chooses (a `rayon::ThreadPool` value is a [`Spawn`] executor of its own).
#[cfg(feature = "rayon")]
pub(crate) fn rayon<F, R>(pending: Option<Pending>, rule: Rule<R>, body: F) -> crate::RayonHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (completion, handle) = crate::rayon_handle::pair();
    rayon::spawn(move || {
        let run = || Pending::run_or_plain(pending, rule, body);
        // rayon aborts the process on a panic that escapes a job: hand it to the handle.
        let output = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
        completion.complete(output);
    });
    handle
}

/// A custom executor of jobs.
pub(crate) fn with<S, F, R>(
    spawner: &S,
    pending: Option<Pending>,
    rule: Rule<R>,
    body: F,
) -> S::Handle<R>
where
    S: Spawn + ?Sized,
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let _hand_over = HandOver::begin();
    spawner.spawn(move || Pending::run_or_plain(pending, rule, body))
}

/// A custom executor of futures.
pub(crate) fn future_with<S, F>(
    spawner: &S,
    pending: Option<Pending>,
    rule: Rule<F::Output>,
    future: F,
) -> S::Handle<F::Output>
where
    S: SpawnFuture + ?Sized,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let continued = Continued::new(pending, rule, future);
    let _hand_over = HandOver::begin();
    spawner.spawn_future(continued)
}

/// Who spawns, as a panic message names it.
#[cfg(feature = "tokio")]
#[derive(Clone, Copy)]
pub(crate) enum Caller {
    /// A `#[traced_spawn]` async fn, by its name: it spawns a task.
    Function(&'static str),
    /// A `#[traced_spawn(blocking)]` fn, by its name: it spawns on the blocking pool.
    BlockingFunction(&'static str),
    /// A [`Builder`] method, by its name.
    ///
    /// [`Builder`]: crate::Builder
    Builder(&'static str),
}

#[cfg(feature = "tokio")]
impl Caller {
    /// `fetch(..)` or `Builder::spawn_task(..)`: how the call is written.
    fn call(self) -> String {
        match self {
            Caller::Function(name) | Caller::BlockingFunction(name) => format!("{name}(..)"),
            Caller::Builder(method) => format!("Builder::{method}(..)"),
        }
    }

    /// What to write instead of the call outside a runtime. A future is awaited where it is
    /// spawned, so the advice for a task is `block_on` with the call inside it; a sync fn is
    /// called from sync code, where the advice is to enter the runtime, or not to need one.
    fn advice(self) -> String {
        let call = self.call();
        let on_a_thread = match self {
            Caller::BlockingFunction(_) => {
                "drop `blocking` from `#[traced_spawn(blocking)]` to run it on a std thread of its \
                 own"
            }
            Caller::Builder("spawn_blocking") => {
                "use `Builder::spawn_thread(..)` to run it on a std thread of its own"
            }
            Caller::Function(_) | Caller::Builder(_) => {
                return format!(
                    "it spawns a tokio task at the call. Call it from code running on the \
                     runtime: `rt.block_on(async {{ {call}.await }})`, not \
                     `rt.block_on({call})`, whose argument is evaluated before `block_on` enters \
                     the runtime"
                );
            }
        };
        format!(
            "it spawns on the runtime's blocking pool (`spawn_blocking`) at the call. Call it \
             where a runtime is entered: after `let _guard = handle.enter();` with the runtime's \
             `Handle` (`rt.handle()`), or in code run by `rt.block_on(..)` or a task; or \
             {on_a_thread}"
        )
    }
}

/// Panics at the caller's line, before anything is captured, when there is no tokio runtime to
/// spawn on, with advice that fits the call (see [`Caller`]); otherwise the runtime to spawn on.
#[cfg(feature = "tokio")]
#[track_caller]
pub(crate) fn require_runtime(caller: Caller) -> Runtime {
    let Some(runtime) = Runtime::here() else {
        panic!(
            "`{}` was called outside a tokio runtime, but {}",
            caller.call(),
            caller.advice()
        );
    };
    runtime
}

/// The tokio runtime the calling thread is in, found once: the check that gives the panic above
/// is also the lookup the spawn uses.
#[cfg(feature = "tokio")]
pub(crate) enum Runtime {
    /// The runtime of the task that is running: inside a task (where work is almost always
    /// spawned from), a thread-local read says so, and `tokio::spawn` finds the runtime as
    /// cheaply.
    OfTask,
    /// A runtime entered outside any task (`block_on`, `Runtime::enter`): its handle, looked up
    /// once.
    Entered(tokio::runtime::Handle),
}

#[cfg(feature = "tokio")]
impl Runtime {
    /// The runtime the calling thread is in, if any.
    fn here() -> Option<Runtime> {
        if tokio::task::try_id().is_some() {
            return Some(Runtime::OfTask);
        }
        tokio::runtime::Handle::try_current()
            .ok()
            .map(Runtime::Entered)
    }

    /// `tokio::spawn` on this runtime.
    #[track_caller]
    pub(crate) fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Runtime::OfTask => tokio::spawn(future),
            Runtime::Entered(handle) => handle.spawn(future),
        }
    }

    /// `tokio::task::spawn_blocking` on this runtime.
    #[track_caller]
    pub(crate) fn spawn_blocking<F, R>(&self, body: F) -> tokio::task::JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        match self {
            Runtime::OfTask => tokio::task::spawn_blocking(body),
            Runtime::Entered(handle) => handle.spawn_blocking(body),
        }
    }
}

/// Like [`require_runtime`], for a task on a `LocalSet`. Inside a runtime but outside a
/// `LocalSet`, tokio's own panic says so, at the caller's line too.
#[cfg(feature = "tokio")]
#[track_caller]
pub(crate) fn require_local_set(caller: Caller) {
    if Runtime::here().is_none() {
        let call = caller.call();
        panic!(
            "`{call}` was called outside a tokio runtime, but it spawns a task on the current \
             `LocalSet` at the call. Call it from code running on a `LocalSet`: \
             `local.block_on(&rt, async {{ {call}.await }})`"
        );
    }
}
