//! What [`Builder`]'s tokio spawn methods check at the call, before anything is captured: that
//! there is a runtime (or a `LocalSet`) to spawn on, with a panic message that fits the call.
//!
//! [`Builder`]: crate::Builder

use std::future::Future;

/// Who spawns, as a panic message names it.
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
pub(crate) enum Runtime {
    /// The runtime of the task that is running: inside a task (where work is almost always
    /// spawned from), a thread-local read says so, and `tokio::spawn` finds the runtime as
    /// cheaply.
    OfTask,
    /// A runtime entered outside any task (`block_on`, `Runtime::enter`): its handle, looked up
    /// once.
    Entered(tokio::runtime::Handle),
}

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
