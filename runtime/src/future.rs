//! A future that runs as a continuation of a captured trace.

use std::future::Future;
use std::mem::{self, ManuallyDrop};
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use pin_project_lite::pin_project;
use sentry::{Hub, HubSwitchGuard};

use crate::pending::{Pending, Running, Waiting};
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
            this.state.drop_inner_first(this.future);
        }
    }
}

enum State<C> {
    /// Nothing to continue: polled as it is.
    Plain,
    Pending(Waiting<C>),
    Running(Running<C>),
    Done,
}

impl<F, C> Continued<F, C> {
    /// `future` as the continuation `pending`, or as it is when there is none.
    pub(crate) fn new(pending: Option<Pending<C>>, future: F) -> Self {
        Continued {
            future: ManuallyDrop::new(future),
            state: State::new(pending),
        }
    }
}

impl<C> State<C> {
    fn new(pending: Option<Pending<C>>) -> Self {
        match pending {
            None => State::Plain,
            Some(Pending::Ready(running)) => State::Running(running),
            Some(Pending::Waiting(waiting)) => State::Pending(waiting),
        }
    }

    /// The drop of a wrapper: the inner future or stream first, under the continuation's hub,
    /// so what it closes on drop is recorded inside; then the continuation (a running one
    /// finishes as `cancelled`, a pending one is recorded as cancelled).
    fn drop_inner_first<T>(&mut self, inner: Pin<&mut ManuallyDrop<T>>) {
        let state = mem::replace(self, State::Done);
        let _hub = match &state {
            State::Running(running) => Some(HubSwitchGuard::new(running.hub().clone())),
            _ => None,
        };
        // SAFETY: the wrapper is being dropped: the pinned inner value is dropped in place,
        // exactly once (here), and never touched again, which is the drop `Pin` promises it.
        unsafe { ManuallyDrop::drop(inner.get_unchecked_mut()) };
        drop(state);
    }

    /// Starts a pending continuation at the first poll; the hub to poll under, or `None` for
    /// plain work.
    fn enter(&mut self, what: &str) -> Option<Arc<Hub>> {
        if let State::Pending(_) = self {
            if let State::Pending(pending) = mem::replace(self, State::Done) {
                *self = State::Running(pending.start());
            }
        }
        match self {
            State::Plain => None,
            State::Running(running) => Some(running.hub().clone()),
            State::Pending(_) | State::Done => panic!("`{what}` polled after completion"),
        }
    }

    /// The running continuation, which ends now.
    fn take_running(&mut self) -> Running<C> {
        let State::Running(running) = mem::replace(self, State::Done) else {
            unreachable!("only a running continuation ends")
        };
        running
    }

    /// Ends the running continuation with the output.
    fn end<T>(&mut self, output: T) -> T
    where
        C: Classifier<T>,
    {
        self.take_running().finish(&output);
        output
    }

    /// Ends the running continuation after a panic, and resumes the panic.
    fn panicked(&mut self, payload: Box<dyn std::any::Any + Send>) -> ! {
        self.take_running().panicked();
        panic::resume_unwind(payload)
    }
}

impl<F: Future, C: Classifier<F::Output>> Future for Continued<F, C> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // SAFETY: a pinned projection through `ManuallyDrop`, which is `repr(transparent)` and
        // never moves its content.
        let future = unsafe { this.future.map_unchecked_mut(|future| &mut **future) };
        let Some(hub) = this.state.enter("Continued") else {
            return future.poll(cx);
        };
        let _hub = HubSwitchGuard::new(hub);
        match panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(this.state.end(output)),
            Err(payload) => this.state.panicked(payload),
        }
    }
}

#[cfg(feature = "stream")]
pin_project! {
    /// A stream that runs as one continuation of a [`TraceContext`](crate::TraceContext): created
    /// by [`Builder::bind_stream`](crate::Builder::bind_stream) (feature `stream`).
    ///
    /// The continuation starts at the first `poll_next`; every `poll_next` runs under its hub, so
    /// spans and errors of the items' work link to it; it finishes `ok` when the stream ends,
    /// `internal_error` on a panic (resumed), and `cancelled` when the stream is dropped before its
    /// end (the inner stream is dropped under the continuation's hub first).
    ///
    /// ```
    /// use futures_util::StreamExt as _;
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let pages = traced_spawn::Builder::new("export::pages")
    ///     .bind_stream(futures_util::stream::iter(1..=3));
    /// assert_eq!(pages.collect::<Vec<_>>().await, [1, 2, 3]);
    /// # });
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct ContinuedStream<S> {
        #[pin]
        stream: ManuallyDrop<S>,
        state: State<AlwaysOk>,
    }

    impl<S> PinnedDrop for ContinuedStream<S> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.state.drop_inner_first(this.stream);
        }
    }
}

#[cfg(feature = "stream")]
impl<S> ContinuedStream<S> {
    pub(crate) fn new(pending: Option<Pending<AlwaysOk>>, stream: S) -> Self {
        ContinuedStream {
            stream: ManuallyDrop::new(stream),
            state: State::new(pending),
        }
    }
}

#[cfg(feature = "stream")]
impl<S: futures_core::Stream> futures_core::Stream for ContinuedStream<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        // SAFETY: as in `Continued::poll`.
        let stream = unsafe { this.stream.map_unchecked_mut(|stream| &mut **stream) };
        if let State::Done = this.state {
            return Poll::Ready(None);
        }
        let Some(hub) = this.state.enter("ContinuedStream") else {
            return stream.poll_next(cx);
        };
        let _hub = HubSwitchGuard::new(hub);
        match panic::catch_unwind(AssertUnwindSafe(|| stream.poll_next(cx))) {
            Ok(Poll::Ready(None)) => {
                this.state.end(());
                Poll::Ready(None)
            }
            Ok(polled) => polled,
            Err(payload) => this.state.panicked(payload),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.stream.size_hint()
    }
}
