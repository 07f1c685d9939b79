//! A future that runs as a continuation of a captured trace.

use std::future::Future;
use std::mem::{self, ManuallyDrop};
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use sentry::HubSwitchGuard;

use crate::pending::{Pending, Running};
use crate::verdict::{AlwaysOk, Classifier};

pin_project! {
    /// A future that runs as a continuation of a [`TraceContext`](crate::TraceContext).
    ///
    /// Created by [`TraceContext::bind`](crate::TraceContext::bind) or
    /// [`Builder::bind`](crate::Builder::bind). The continuation starts at the first poll (the
    /// queue delay is measured up to it); every poll runs under the continuation's hub; the
    /// transaction finishes when the future completes (`ok`, or `internal_error` for a failure or
    /// a panic, which is resumed) or, when the future is dropped before completion (an aborted
    /// task, a runtime shut down), as `cancelled`. The inner future is dropped under the
    /// continuation's hub *before* it finishes, so spans the body still had open (a
    /// `#[tracing::instrument]` step) are sent inside it.
    ///
    /// ```
    /// use traced_spawn::TraceContext;
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let ctx = TraceContext::capture();
    /// let answer = tokio::spawn(ctx.bind("worker::answer", "task", async { 42 }))
    ///     .await
    ///     .unwrap();
    /// assert_eq!(answer, 42);
    /// # });
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Continued<F, C = AlwaysOk> {
        #[pin]
        future: ManuallyDrop<F>,
        state: State<C>,
    }

    impl<F, C> PinnedDrop for Continued<F, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let state = mem::replace(this.state, State::Done);
            let _hub = match &state {
                State::Running(running) => Some(HubSwitchGuard::new(running.hub().clone())),
                _ => None,
            };
            // SAFETY: the future is pinned and dropped in place, exactly once (here), and never
            // touched again: this is the drop `Pin` promises it.
            unsafe { ManuallyDrop::drop(this.future.get_unchecked_mut()) };
            // Then the continuation: a running one finishes as `cancelled`, a pending one is
            // recorded as cancelled.
            drop(state);
        }
    }
}

enum State<C> {
    /// Nothing to continue: polled as it is.
    Plain,
    Pending(Pending<C>),
    Running(Running<C>),
    Done,
}

impl<F, C> Continued<F, C> {
    /// `future` as the continuation `pending`, or as it is when there is none.
    pub(crate) fn new(pending: Option<Pending<C>>, future: F) -> Self {
        Continued {
            future: ManuallyDrop::new(future),
            state: pending.map_or(State::Plain, State::Pending),
        }
    }
}

impl<F: Future, C: Classifier<F::Output>> Future for Continued<F, C> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // SAFETY: a pinned projection through `ManuallyDrop`, which is `repr(transparent)` and
        // never moves its content.
        let future = unsafe { this.future.map_unchecked_mut(|future| &mut **future) };
        if let State::Pending(_) = this.state {
            if let State::Pending(pending) = mem::replace(this.state, State::Done) {
                *this.state = State::Running(pending.start());
            }
        }
        let hub = match this.state {
            State::Plain => return future.poll(cx),
            State::Running(running) => running.hub().clone(),
            State::Pending(_) | State::Done => panic!("`Continued` polled after completion"),
        };
        let _hub = HubSwitchGuard::new(hub);
        let output = match panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => Ok(output),
            Err(payload) => Err(payload),
        };
        let State::Running(running) = mem::replace(this.state, State::Done) else {
            unreachable!("the state is Running until this poll ends it")
        };
        match output {
            Ok(output) => {
                running.finish(&output);
                Poll::Ready(output)
            }
            Err(payload) => {
                running.panicked();
                panic::resume_unwind(payload)
            }
        }
    }
}
