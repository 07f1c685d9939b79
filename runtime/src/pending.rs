//! Traced work that an executor has not started yet, and the same work once it runs.
//!
//! Jobs (a closure for a thread, a pool, `spawn_blocking`) and futures ([`Continued`]) share this
//! one type: [`Pending::start`] turns it into a [`Running`] continuation on the thread that runs
//! it; a `Pending` dropped unrun (an executor that shut down, a task aborted before its first
//! poll) is still recorded, as `cancelled`.
//!
//! [`Continued`]: crate::Continued

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use sentry::Hub;

use crate::context::TraceContext;
use crate::continuation::{Continuation, Ending, Shape};
use crate::verdict::Classifier;

/// A transaction name or op.
pub(crate) type Label = std::borrow::Cow<'static, str>;

/// A continuation handed to an executor.
pub(crate) enum Pending<C> {
    /// Nothing will be recorded (the caller's trace is not sent): the fork was made at the
    /// spawning call, and there is nothing left to start. This keeps the work's state as small as
    /// a hand-bound future's.
    Ready(Running<C>),
    /// Started on the thread that runs the work.
    Waiting(Waiting<C>),
}

/// A continuation to start on the thread that runs the work. Its parts are boxed, so that work
/// waiting in an executor's queue stays small; dropped unrun, it is recorded as `cancelled`.
pub(crate) struct Waiting<C> {
    /// `None` once started.
    parts: Option<Box<Parts<C>>>,
}

struct Parts<C> {
    ctx: TraceContext,
    name: Label,
    op: Label,
    shape: Shape,
    classifier: C,
}

impl<C> Pending<C> {
    /// Work that continues `ctx`, or `None` when there is nothing to continue (no client was bound
    /// where the context was captured): the work then runs as it is.
    pub(crate) fn new(
        ctx: TraceContext,
        name: Label,
        op: Label,
        shape: Shape,
        classifier: C,
    ) -> Option<Self> {
        if ctx.is_empty() {
            return None;
        }
        if ctx.unrecorded() {
            return Some(Pending::Ready(Running {
                continuation: Continuation::unrecorded(ctx),
                classifier,
            }));
        }
        Some(Pending::Waiting(Waiting {
            parts: Some(Box::new(Parts {
                ctx,
                name,
                op,
                shape,
                classifier,
            })),
        }))
    }

    /// Starts the continuation on the current thread.
    pub(crate) fn start(self) -> Running<C> {
        match self {
            Pending::Ready(running) => running,
            Pending::Waiting(waiting) => waiting.start(),
        }
    }

    /// Starts the continuation and runs `body` in it on the current thread.
    pub(crate) fn run<R>(self, body: impl FnOnce() -> R) -> R
    where
        C: Classifier<R>,
    {
        self.start().run_on_hub(body)
    }
}

impl<C> Waiting<C> {
    /// Starts the continuation on the current thread.
    pub(crate) fn start(mut self) -> Running<C> {
        let Some(parts) = self.parts.take() else {
            unreachable!("a Waiting is started once: `start` takes it by value")
        };
        let Parts {
            ctx,
            name,
            op,
            shape,
            classifier,
        } = *parts;
        Running::start(ctx, &name, &op, shape, classifier)
    }
}

impl<C> Drop for Waiting<C> {
    fn drop(&mut self) {
        let Some(parts) = self.parts.take() else {
            return;
        };
        // The executor refused the work at the spawning call (it panicked there): the caller
        // sees that panic, and nothing was offloaded, so nothing is recorded.
        if HANDING_OVER.get() && std::thread::panicking() {
            return;
        }
        // Dropped before it ran: start and drop, which finishes it as `cancelled`.
        drop(Continuation::start(
            parts.ctx,
            &parts.name,
            &parts.op,
            parts.shape,
        ));
    }
}

/// A started continuation and the classifier of its body's output.
pub(crate) struct Running<C> {
    continuation: Continuation,
    classifier: C,
}

impl<C> Running<C> {
    /// Starts a continuation of the non-empty `ctx` on the current thread. Names are borrowed:
    /// work run at once on this thread ([`TraceContext::run`]) needs no owned copy of them.
    pub(crate) fn start(
        ctx: TraceContext,
        name: &str,
        op: &str,
        shape: Shape,
        classifier: C,
    ) -> Running<C> {
        Running {
            continuation: Continuation::start(ctx, name, op, shape),
            classifier,
        }
    }

    /// Runs `body` under [`Self::hub`] and finishes; a panic finishes the continuation as
    /// `internal_error` and is resumed.
    pub(crate) fn run_on_hub<R>(self, body: impl FnOnce() -> R) -> R
    where
        C: Classifier<R>,
    {
        let hub = self.hub().clone();
        Hub::run(hub, || self.run(body))
    }

    /// The hub the body runs in.
    pub(crate) fn hub(&self) -> &Arc<Hub> {
        self.continuation.hub()
    }

    /// Finishes with the verdict on `output`. Called under [`Self::hub`].
    pub(crate) fn finish<R>(self, output: &R)
    where
        C: Classifier<R>,
    {
        let verdict = self.classifier.classify(output);
        self.continuation.finish(Ending::Returned(verdict));
    }

    /// Finishes as `internal_error` after a panic. Called under [`Self::hub`].
    pub(crate) fn panicked(self) {
        self.continuation.finish(Ending::Panicked);
    }

    /// Runs `body`, already under [`Self::hub`], and finishes; a panic finishes the continuation
    /// as `internal_error` and is resumed.
    fn run<R>(self, body: impl FnOnce() -> R) -> R
    where
        C: Classifier<R>,
    {
        match panic::catch_unwind(AssertUnwindSafe(body)) {
            Ok(output) => {
                self.finish(&output);
                output
            }
            Err(payload) => {
                self.panicked();
                panic::resume_unwind(payload)
            }
        }
    }
}

thread_local! {
    /// Set while work is handed to an executor's spawn function on this thread.
    static HANDING_OVER: Cell<bool> = const { Cell::new(false) };
}

/// Held while work is handed to an executor's spawn function: if the executor panics at that
/// call (tokio's `spawn_local` outside a `LocalSet`), the work it drops while unwinding is not
/// recorded as cancelled. It was never offloaded, and the caller gets the panic.
pub(crate) struct HandOver(bool);

impl HandOver {
    pub(crate) fn begin() -> HandOver {
        HandOver(HANDING_OVER.replace(true))
    }
}

impl Drop for HandOver {
    fn drop(&mut self) {
        HANDING_OVER.set(self.0);
    }
}
