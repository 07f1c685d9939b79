//! A future that runs as a continuation of a captured trace.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use sentry::HubSwitchGuard;

use crate::context::TraceContext;
use crate::continuation::{Continuation, Ending};
use crate::verdict::{AlwaysOk, Classifier};

pin_project! {
    /// A future that runs as a continuation of a [`TraceContext`].
    ///
    /// Created by [`TraceContext::bind`] or [`Builder::bind`](crate::Builder::bind). The
    /// continuation starts at the first poll (the queue delay is measured up to it); every poll runs
    /// under the continuation's hub; the transaction finishes when the future completes (`ok`, or
    /// `internal_error` for a failure or a panic, which is resumed) or, when the future is dropped
    /// before completion (an aborted task, a runtime shut down), as `cancelled`.
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
        future: F,
        state: State<C>,
    }

    impl<F, C> PinnedDrop for Continued<F, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let State::Pending { ctx, name, op, .. } = std::mem::replace(this.state, State::Done) {
                // Never polled: the work was dropped before it started; it is still recorded.
                drop(Continuation::start(ctx, &name, &op));
            }
            // A running continuation ends as `cancelled` when its `Continuation` drops.
        }
    }
}

pub(crate) type Label = std::borrow::Cow<'static, str>;

enum State<C> {
    Pending {
        ctx: TraceContext,
        name: Label,
        op: Label,
        classifier: C,
    },
    Running {
        continuation: Option<Continuation>,
        classifier: C,
    },
    Done,
}

impl<F, C> Continued<F, C> {
    pub(crate) fn new(ctx: TraceContext, name: Label, op: Label, future: F, classifier: C) -> Self {
        Continued {
            future,
            state: State::Pending {
                ctx,
                name,
                op,
                classifier,
            },
        }
    }
}

impl<F: Future, C: Classifier<F::Output>> Future for Continued<F, C> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if matches!(this.state, State::Pending { .. }) {
            if let State::Pending {
                ctx,
                name,
                op,
                classifier,
            } = std::mem::replace(this.state, State::Done)
            {
                *this.state = State::Running {
                    continuation: Continuation::start(ctx, &name, &op),
                    classifier,
                };
            }
        }
        let State::Running { continuation, .. } = this.state else {
            panic!("`Continued` polled after completion");
        };
        let guard = continuation
            .as_ref()
            .map(|continuation| HubSwitchGuard::new(continuation.hub.clone()));
        let future = this.future;
        let polled = panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx)));
        let output = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => output,
            Err(payload) => {
                if let State::Running {
                    continuation: Some(continuation),
                    ..
                } = std::mem::replace(this.state, State::Done)
                {
                    continuation.finish(Ending::Panicked);
                }
                drop(guard);
                panic::resume_unwind(payload)
            }
        };
        if let State::Running {
            continuation,
            classifier,
        } = std::mem::replace(this.state, State::Done)
        {
            let verdict = classifier.classify(&output);
            if let Some(continuation) = continuation {
                continuation.finish(Ending::Returned(verdict));
            }
        }
        drop(guard);
        Poll::Ready(output)
    }
}
