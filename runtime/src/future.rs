//! A future that runs as a continuation of a captured trace.

use std::future::Future;
use std::mem::{self, ManuallyDrop};

use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::classify::{Rule, Verdict};
use crate::continuation::{Continuation, Entered};
use crate::pending::{Pending, Waiting};

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
    pub struct Continued<F>
    where
        F: Future,
    {
        #[pin]
        future: ManuallyDrop<F>,
        state: State,
        // The caller's `tracing` span, the body's span inside it (feature `tracing`).
        body_span: BodySpan,
        // The caller's OpenTelemetry `Context` (feature `opentelemetry`).
        otel: BodyContext,
        // The rule on the output: a plain function, so the type names only the future.
        rule: Option<Rule<F::Output>>,
    }

    impl<F> PinnedDrop for Continued<F>
    where
        F: Future,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            #[cfg(feature = "opentelemetry")]
            let _otel = this.otel.attach();
            #[cfg(feature = "tracing")]
            let _span = this.body_span.resume();
            drop_inner_first(this.state, this.future);
        }
    }
}

/// Where a wrapper's continuation is. Not generic: compiled once, not once per wrapped future.
enum State {
    /// Nothing to continue: polled as it is.
    Plain,
    Pending(Box<Waiting>),
    Running(Continuation),
    Done,
}

/// The body's `tracing` span, entered around each poll, before the continuation's hub
/// (feature `tracing`); nothing without the feature.
#[cfg(feature = "tracing")]
type BodySpan = crate::tracing::CallerSpan;
#[cfg(not(feature = "tracing"))]
type BodySpan = ();

/// Takes the body's span out of the work, before the work becomes a [`State`].
#[cfg(feature = "tracing")]
fn body_span(pending: &mut Option<Pending>) -> BodySpan {
    pending.as_mut().map(Pending::take_span).unwrap_or_default()
}
#[cfg(not(feature = "tracing"))]
fn body_span(_: &mut Option<Pending>) -> BodySpan {}

/// The caller's OpenTelemetry `Context`, attached around each poll and the drop (feature
/// `opentelemetry`); nothing without the feature.
#[cfg(feature = "opentelemetry")]
type BodyContext = crate::opentelemetry::CallerContext;
#[cfg(not(feature = "opentelemetry"))]
type BodyContext = ();

/// Takes the caller's OpenTelemetry `Context` out of the work, before the work becomes a
/// [`State`].
#[cfg(feature = "opentelemetry")]
fn body_context(pending: &mut Option<Pending>) -> BodyContext {
    pending.as_mut().map(Pending::take_otel).unwrap_or_default()
}
#[cfg(not(feature = "opentelemetry"))]
fn body_context(_: &mut Option<Pending>) -> BodyContext {}

impl<F: Future> Continued<F> {
    /// `future` as the continuation `pending`, or as it is when there is none.
    pub(crate) fn new(mut pending: Option<Pending>, rule: Rule<F::Output>, future: F) -> Self {
        Continued {
            future: ManuallyDrop::new(future),
            body_span: body_span(&mut pending),
            otel: body_context(&mut pending),
            state: State::new(pending),
            rule: Some(rule),
        }
    }
}

/// The drop of a wrapper: the inner future or stream first, under the continuation's hub, so
/// what it closes on drop is recorded inside; then the continuation (a running one finishes as
/// `cancelled`, a pending one is recorded as cancelled), still under that hub.
fn drop_inner_first<T>(state: &mut State, inner: Pin<&mut ManuallyDrop<T>>) {
    let (state, hub) = state.begin_drop();
    // SAFETY: the wrapper is being dropped: the pinned inner value is dropped in place, exactly
    // once (here), and never touched again, which is the drop `Pin` promises it.
    unsafe { ManuallyDrop::drop(inner.get_unchecked_mut()) };
    drop(state);
    drop(hub);
}

impl State {
    fn new(pending: Option<Pending>) -> Self {
        match pending {
            None => State::Plain,
            Some(Pending::Ready(continuation, ..)) => State::Running(continuation),
            Some(Pending::Waiting(waiting)) => State::Pending(waiting),
            #[cfg(any(feature = "tracing", feature = "opentelemetry"))]
            Some(Pending::Plain(..)) => State::Plain,
        }
    }

    /// The state, taken out for a wrapper's drop, and the running continuation's hub switched to.
    fn begin_drop(&mut self) -> (State, Option<Entered>) {
        let state = mem::replace(self, State::Done);
        let entered = match &state {
            State::Running(continuation) => Some(continuation.enter()),
            _ => None,
        };
        (state, entered)
    }

    /// Starts a pending continuation at the first poll.
    fn start(&mut self, what: &str) {
        match self {
            State::Pending(_) => {
                if let State::Pending(mut pending) = mem::replace(self, State::Done) {
                    *self = State::Running(pending.start());
                }
            }
            State::Plain | State::Running(_) => {}
            State::Done => panic!("`{what}` polled after completion"),
        }
    }

    /// The running continuation, if any.
    fn running(&self) -> Option<&Continuation> {
        match self {
            State::Running(continuation) => Some(continuation),
            _ => None,
        }
    }

    /// The running continuation, which ends now.
    fn take_running(&mut self) -> Continuation {
        let State::Running(continuation) = mem::replace(self, State::Done) else {
            unreachable!("only a running continuation ends")
        };
        continuation
    }

    /// Ends the running continuation with `verdict`.
    fn end(&mut self, verdict: Verdict) {
        self.take_running().finish(verdict);
    }
}

/// Ends the running continuation as `internal_error` if dropped armed: a poll that unwound. A
/// drop guard rather than `catch_unwind`: not generic over the future, so compiled once.
struct EndOnUnwind<'a>(Option<&'a mut State>);

impl<'a> EndOnUnwind<'a> {
    /// The poll returned: the state of a running continuation, to end or keep running.
    fn disarm(mut self) -> Option<&'a mut State> {
        self.0.take()
    }
}

impl Drop for EndOnUnwind<'_> {
    fn drop(&mut self) {
        if let Some(state) = self.0.take() {
            if let State::Running(_) = state {
                state.take_running().panicked();
            }
        }
    }
}

impl<F: Future> Future for Continued<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // SAFETY: a pinned projection through `ManuallyDrop`, which is `repr(transparent)` and
        // never moves its content.
        let future = unsafe { this.future.map_unchecked_mut(|future| &mut **future) };
        #[cfg(feature = "opentelemetry")]
        let _otel = this.otel.attach();
        this.state.start("Continued");
        #[cfg(feature = "tracing")]
        let _span = this.body_span.enter();
        let entered = this.state.running().map(Continuation::enter);
        // One call of the inner poll, traced or not: it is compiled (or inlined) once.
        let unwinding = EndOnUnwind(entered.is_some().then_some(&mut *this.state));
        let polled = future.poll(cx);
        if let (Some(state), Poll::Ready(output)) = (unwinding.disarm(), &polled) {
            let verdict = this.rule.take().map_or(Verdict::Ok, |rule| rule(output));
            state.end(verdict);
        }
        polled
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
        state: State,
        body_span: BodySpan,
        otel: BodyContext,
    }

    impl<S> PinnedDrop for ContinuedStream<S> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            #[cfg(feature = "opentelemetry")]
            let _otel = this.otel.attach();
            #[cfg(feature = "tracing")]
            let _span = this.body_span.resume();
            drop_inner_first(this.state, this.stream);
        }
    }
}

#[cfg(feature = "stream")]
impl<S> ContinuedStream<S> {
    pub(crate) fn new(mut pending: Option<Pending>, stream: S) -> Self {
        ContinuedStream {
            stream: ManuallyDrop::new(stream),
            body_span: body_span(&mut pending),
            otel: body_context(&mut pending),
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
        #[cfg(feature = "opentelemetry")]
        let _otel = this.otel.attach();
        this.state.start("ContinuedStream");
        #[cfg(feature = "tracing")]
        let _span = this.body_span.enter();
        let entered = this.state.running().map(Continuation::enter);
        let unwinding = EndOnUnwind(entered.is_some().then_some(&mut *this.state));
        let polled = stream.poll_next(cx);
        if let (Some(state), Poll::Ready(None)) = (unwinding.disarm(), &polled) {
            state.end(Verdict::Ok);
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.stream.size_hint()
    }
}
