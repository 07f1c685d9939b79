//! The shorthands of the runtime API: [`ContinueTrace`] on any future, and
//! [`TraceContext::run`] / [`TraceContext::bind`] on a context at hand.

use std::borrow::Cow;
use std::future::Future;

use crate::classify::Verdict;
use crate::continuation::{Continuation, Shape};
use crate::future::Continued;
use crate::pending;
use crate::{Builder, TraceContext};

/// Continues the caller's trace in any future, in the shape of tracing's `Instrument`: the
/// context is captured when the method is called, and the future runs as its continuation when
/// polled, wherever it is polled (a `JoinSet`, a `TaskTracker`, `FuturesUnordered`, `select!`,
/// another executor).
///
/// Every output finishes the continuation as `ok` (a panic as `internal_error`, a drop before
/// completion as `cancelled`); for a `Result` whose `Err` should fail it, use
/// [`Builder::fallible`](crate::Builder::fallible) then [`Builder::bind`](crate::Builder::bind).
///
/// ```
/// use traced_spawn::ContinueTrace as _;
///
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let mut tasks = tokio::task::JoinSet::new();
/// for page in 0..3 {
///     // A continuation transaction each, in the caller's trace.
///     tasks.spawn(async move { page * 10 }.continue_trace("crawler::fetch"));
/// }
/// // Awaited before the caller finishes: child spans of the caller's span instead.
/// let total: u32 = async { 5 }.continue_as_child("crawler::merge").await;
/// # assert_eq!(total, 5);
/// # while tasks.join_next().await.is_some() {}
/// # });
/// ```
pub trait ContinueTrace: Future + Sized {
    /// A continuation transaction of the trace current here: same trace id, parent = the
    /// active span here, same sampling decision; op `task`.
    fn continue_trace(self, name: impl Into<Cow<'static, str>>) -> Continued<Self> {
        Builder::new(name).bind(self)
    }

    /// A child span of the span active here, for work awaited before that span finishes (one
    /// transaction for a fan-out); a transaction when no span is active here.
    fn continue_as_child(self, name: impl Into<Cow<'static, str>>) -> Continued<Self> {
        Builder::new(name).child().bind(self)
    }
}

impl<F: Future> ContinueTrace for F {}

impl TraceContext {
    /// Runs `body` on the current thread as a continuation of this context, named `name` with
    /// op `op`. Shorthand for `Builder::new(name).op(op).context(ctx).run(body)`.
    ///
    /// ```
    /// let ctx = traced_spawn::TraceContext::capture();
    /// assert_eq!(ctx.run("consumer::job", "queue.process", || 2), 2);
    /// ```
    pub fn run<R>(&self, name: &str, op: &str, body: impl FnOnce() -> R) -> R {
        // At once, on this thread: the names are borrowed, not copied into a `Builder`.
        let ctx = self.clone().anchored();
        #[cfg(feature = "opentelemetry")]
        let (ctx, otel) = ctx.split_otel();
        #[cfg(feature = "opentelemetry")]
        let _otel = otel.attached();
        #[cfg(feature = "tracing")]
        let (ctx, span) = ctx.split_tracing();
        if ctx.is_empty() {
            #[cfg(feature = "tracing")]
            let _span = span.entered();
            return body();
        }
        let continuation = Continuation::start(ctx, name, op, Shape::Transaction);
        #[cfg(feature = "tracing")]
        let _span = span.entered();
        pending::run_on_hub(continuation, |_| Verdict::Ok, body)
    }

    /// Wraps `future` in a continuation of this context, named `name` with op `op`.
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let ctx = traced_spawn::TraceContext::capture();
    /// assert_eq!(rt.block_on(ctx.bind("x", "task", async { 2 })), 2);
    /// ```
    pub fn bind<F: Future>(
        self,
        name: impl Into<Cow<'static, str>>,
        op: impl Into<Cow<'static, str>>,
        future: F,
    ) -> Continued<F> {
        Builder::new(name).op(op).context(self).bind(future)
    }
}
