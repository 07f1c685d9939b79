//! Configuring and spawning one traced piece of work.

use std::borrow::Cow;
use std::future::Future;

use sentry::protocol::MonitorSchedule;

use crate::classify::{AlwaysOk, Classifier, ErrIsCaptured, ErrIsFailure, Rule};
use crate::context::TraceContext;
use crate::continuation::Shape;
use crate::future::Continued;
use crate::monitor::Monitor;
use crate::op;
use crate::pending::{HandOver, Label, Name, Pending};
use crate::spawn::{Spawn, SpawnFuture};
#[cfg(feature = "tokio")]
use crate::tokio_runtime::{require_local_set, require_runtime, Caller};

/// Configures a continuation, then runs or spawns it: the API behind `#[traced_spawn]`, for code
/// that cannot be annotated.
///
/// The trace context is captured by the spawn call itself (on the calling thread), unless one is
/// given with [`Builder::context`]. The classifier decides the status from the body's output:
/// [`AlwaysOk`] by default, [`Builder::fallible`] for `Err` = failure, [`Builder::capture_errors`]
/// to also capture the `Err` as an error event.
///
/// ```
/// use traced_spawn::Builder;
///
/// let handle = Builder::new("reports::render")
///     .thread_name("render")
///     .fallible()
///     .spawn_thread(|| -> Result<usize, std::fmt::Error> { Ok(3) });
/// assert_eq!(handle.join().unwrap(), Ok(3));
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Builder does nothing until it runs or spawns"]
pub struct Builder<C = AlwaysOk> {
    name: Name,
    op: Option<Label>,
    thread_name: Option<Label>,
    /// Boxed: a builder is moved through every call of a chain, and a context is rarely given.
    context: Option<Box<TraceContext>>,
    shape: Shape,
    monitor: Option<Box<Monitor>>,
    /// The `#[traced_spawn]` fn this builder spawns for, by its name as written: how a panic at
    /// the call names it. `None` for a builder of the user's.
    function: Option<&'static str>,
    classifier: C,
}

impl Builder {
    /// A continuation named `name` (the transaction name), with the executor's default op.
    ///
    /// ```
    /// let builder = traced_spawn::Builder::new("jobs::send_reply");
    /// # drop(builder);
    /// ```
    pub fn new(name: impl Into<Cow<'static, str>>) -> Builder {
        Builder::named(Name::Given(name.into()))
    }

    /// A continuation named `name`, resolved when something is recorded.
    pub(crate) fn named(name: Name) -> Builder {
        Builder {
            name,
            op: None,
            thread_name: None,
            context: None,
            shape: Shape::Transaction,
            monitor: None,
            function: None,
            classifier: AlwaysOk,
        }
    }

    /// The builder of a `#[traced_spawn]` fn's call (see `__private::Spec::builder`).
    #[inline]
    pub(crate) fn of_fn(
        name: Name,
        function: &'static str,
        op: Option<&'static str>,
        thread_name: &'static str,
        shape: Shape,
        monitor: Option<Box<Monitor>>,
    ) -> Builder {
        Builder {
            name,
            op: op.map(Cow::Borrowed),
            thread_name: Some(Cow::Borrowed(thread_name)),
            context: None,
            shape,
            monitor,
            function: Some(function),
            classifier: AlwaysOk,
        }
    }

    /// Wraps `stream` in one continuation that starts at its first `poll_next` and finishes when
    /// the stream ends (`ok`) or is dropped before its end (`cancelled`); see
    /// [`ContinuedStream`](crate::ContinuedStream). Default op: `task`. Feature `stream`.
    ///
    /// ```
    /// use futures_util::StreamExt as _;
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let rows = traced_spawn::Builder::new("export::rows").bind_stream(futures_util::stream::iter(0..4));
    /// assert_eq!(rows.count().await, 4);
    /// # });
    /// ```
    #[cfg(feature = "stream")]
    pub fn bind_stream<S: futures_core::Stream>(self, stream: S) -> crate::ContinuedStream<S> {
        crate::ContinuedStream::new(self.pending(op::TASK).0, stream)
    }
}

impl<C> Builder<C> {
    /// Sets the transaction op (default: the executor's, from [`op`](crate::op): `thread` for
    /// [`Builder::spawn_thread`], `task` for a tokio task).
    ///
    /// ```
    /// let builder = traced_spawn::Builder::new("jobs::send_reply").op("queue.process");
    /// # drop(builder);
    /// ```
    pub fn op(mut self, op: impl Into<Cow<'static, str>>) -> Self {
        self.op = Some(op.into());
        self
    }

    /// Names the OS thread of [`Builder::spawn_thread`] (default: the Builder's name, as
    /// `#[traced_spawn]` names the thread after the fn).
    ///
    /// ```
    /// let handle = traced_spawn::Builder::new("x")
    ///     .thread_name("worker-1")
    ///     .spawn_thread(|| std::thread::current().name().map(str::to_owned));
    /// assert_eq!(handle.join().unwrap().as_deref(), Some("worker-1"));
    /// ```
    pub fn thread_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.thread_name = Some(name.into());
        self
    }

    /// Continues `ctx` instead of capturing the current context at spawn time.
    ///
    /// ```
    /// use traced_spawn::{Builder, TraceContext};
    ///
    /// let ctx = TraceContext::capture();
    /// let out = Builder::new("consumer::job").context(ctx).run(|| 1 + 1);
    /// assert_eq!(out, 2);
    /// ```
    pub fn context(mut self, ctx: TraceContext) -> Self {
        self.context = Some(Box::new(ctx));
        self
    }

    /// Records the work as a **child span** of the caller's active span instead of a transaction
    /// of its own: for work the caller awaits before its own span finishes (fan-out and join), so
    /// a request that fans out to 50 tasks sends one transaction with 50 spans, not 51
    /// transactions. The span has the continuation's name as its description and its op, the same
    /// status rules and the same forked hub (errors and panics link to it).
    ///
    /// Only for awaited work: sentry drops a span that finishes after its transaction was sent,
    /// so a child that outlives the caller is lost. With no active span where the context was
    /// captured (or a context rebuilt from headers), the work is a transaction as usual.
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let parts = (0..3).map(|i| traced_spawn::Builder::new("fetch_part").child().spawn_task(async move { i }));
    /// let mut total = 0;
    /// for part in parts.collect::<Vec<_>>() {
    ///     total += part.await.unwrap();
    /// }
    /// assert_eq!(total, 3);
    /// # });
    /// ```
    pub fn child(mut self) -> Self {
        self.shape = Shape::ChildSpan;
        self
    }

    /// Checks the work in to the Sentry Crons monitor `slug`, as `#[traced_spawn(monitor =
    /// "slug")]` does: a `check_in` with status `in_progress` when the body starts, and one with
    /// the same `check_in_id`, the `duration` in seconds and status `ok`, or `error` when the
    /// continuation fails (a panic; an `Err` with [`Builder::fallible`] or
    /// [`Builder::capture_errors`]) or is cancelled (a task aborted or dropped, work dropped
    /// unrun). Sent through the client of the continuation's hub whatever the trace's sampling,
    /// with the client's `environment` and `release` and the continuation's trace id
    /// (`contexts.trace.trace_id`), so the check-in links to the work's errors and transaction.
    /// Nothing is sent when no client was bound where the context was captured.
    ///
    /// Sentry's slugs are lowercase letters, digits, `-` and `_`, at most 50 characters, not all
    /// digits: the macro checks its slug at compile time; this one is sent as it is given.
    ///
    /// ```
    /// use traced_spawn::Builder;
    ///
    /// let envelopes = sentry::test::with_captured_envelopes(|| {
    ///     let handle = Builder::new("reports::nightly")
    ///         .monitor("nightly-report")
    ///         .fallible()
    ///         .spawn_thread(|| "7".parse::<u32>());
    ///     assert_eq!(handle.join().unwrap(), Ok(7));
    /// });
    /// // Each check-in is an envelope of its own: `in_progress` as the body starts, then `ok`.
    /// let check_ins: Vec<String> = envelopes
    ///     .iter()
    ///     .map(|envelope| {
    ///         let mut bytes = Vec::new();
    ///         envelope.to_writer(&mut bytes).unwrap();
    ///         String::from_utf8(bytes).unwrap()
    ///     })
    ///     .filter(|envelope| envelope.contains(r#"{"type":"check_in""#))
    ///     .collect();
    /// assert_eq!(check_ins.len(), 2);
    /// assert!(check_ins[0].contains(r#""status":"in_progress""#));
    /// assert!(check_ins[1].contains(r#""status":"ok""#));
    /// ```
    pub fn monitor(mut self, slug: impl Into<Cow<'static, str>>) -> Self {
        self.monitor.get_or_insert_with(Box::default).slug = slug.into();
        self
    }

    /// The schedule of the [monitor](Builder::monitor), sent with each check-in as the monitor
    /// config, so that Sentry creates the monitor on first use (and updates it when the schedule
    /// changes). Build it with sentry's `MonitorSchedule::from_crontab("0 3 * * *")`, which
    /// validates the crontab, or as an interval. Without a monitor, nothing is sent.
    ///
    /// ```
    /// use traced_spawn::sentry::protocol::MonitorSchedule;
    ///
    /// let nightly = traced_spawn::Builder::new("reports::nightly")
    ///     .monitor("nightly-report")
    ///     .schedule(MonitorSchedule::from_crontab("0 3 * * *").expect("a crontab"))
    ///     .max_runtime(30)
    ///     .checkin_margin(5);
    /// # drop(nightly);
    /// ```
    pub fn schedule(mut self, schedule: MonitorSchedule) -> Self {
        self.monitor.get_or_insert_with(Box::default).schedule = Some(schedule);
        self
    }

    /// Minutes a check-in may stay `in_progress` before Sentry marks it failed (the monitor
    /// config's `max_runtime`, sent with a [schedule](Builder::schedule)).
    ///
    /// ```
    /// let builder = traced_spawn::Builder::new("reports::nightly").monitor("nightly-report").max_runtime(30);
    /// # drop(builder);
    /// ```
    pub fn max_runtime(mut self, minutes: u64) -> Self {
        self.monitor.get_or_insert_with(Box::default).max_runtime = Some(minutes);
        self
    }

    /// Minutes after the expected time before Sentry marks a check-in missed (the monitor
    /// config's `checkin_margin`, sent with a [schedule](Builder::schedule)).
    ///
    /// ```
    /// let builder = traced_spawn::Builder::new("reports::nightly").monitor("nightly-report").checkin_margin(5);
    /// # drop(builder);
    /// ```
    pub fn checkin_margin(mut self, minutes: u64) -> Self {
        self.monitor.get_or_insert_with(Box::default).checkin_margin = Some(minutes);
        self
    }

    /// Classifies the body's output with `rule`, a function (a closure that captures nothing is
    /// one) from the output to its [`Verdict`](crate::classify::Verdict).
    ///
    /// ```
    /// use traced_spawn::classify::Verdict;
    /// use traced_spawn::Builder;
    ///
    /// let out = Builder::new("x")
    ///     .classify(|n: &i32| if *n >= 0 { Verdict::Ok } else { Verdict::Failed })
    ///     .run(|| -1);
    /// assert_eq!(out, -1);
    /// ```
    #[inline]
    pub fn classify<R>(self, rule: Rule<R>) -> Builder<Rule<R>> {
        self.classify_with(rule)
    }

    fn classify_with<K>(self, classifier: K) -> Builder<K> {
        Builder {
            name: self.name,
            op: self.op,
            thread_name: self.thread_name,
            context: self.context,
            shape: self.shape,
            monitor: self.monitor,
            function: self.function,
            classifier,
        }
    }

    /// An `Err` returned by the body finishes the continuation as `internal_error`.
    ///
    /// ```
    /// let out = traced_spawn::Builder::new("x").fallible().run(|| "7".parse::<u8>());
    /// assert_eq!(out, Ok(7));
    /// ```
    pub fn fallible(self) -> Builder<ErrIsFailure> {
        self.classify_with(ErrIsFailure)
    }

    /// Like [`Builder::fallible`], and the `Err` is also captured as an error event linked to the
    /// continuation.
    ///
    /// ```
    /// let out = traced_spawn::Builder::new("x").capture_errors().run(|| "x".parse::<u8>());
    /// assert!(out.is_err());
    /// ```
    pub fn capture_errors(self) -> Builder<ErrIsCaptured> {
        self.classify_with(ErrIsCaptured)
    }

    /// Who spawns with `method`, as a panic at the call names it: the `#[traced_spawn]` fn (a
    /// `blocking` one for `spawn_blocking`), else the method.
    #[cfg(feature = "tokio")]
    fn caller(&self, method: &'static str) -> Caller {
        match (self.function, method) {
            (Some(function), "spawn_blocking") => Caller::BlockingFunction(function),
            (Some(function), _) => Caller::Function(function),
            (None, _) => Caller::Builder(method),
        }
    }

    /// The continuation this builder describes, with the executor's default op; `None` when there
    /// is nothing to continue (no client bound where the context was captured).
    fn pending(self, default_op: &'static str) -> (Option<Pending>, C) {
        let ctx = match self.context {
            Some(ctx) => (*ctx).anchored(),
            None => TraceContext::capture(),
        };
        let op = self.op.unwrap_or(Cow::Borrowed(default_op));
        (
            Pending::new(ctx, self.name, op, self.shape, self.monitor),
            self.classifier,
        )
    }

    /// Runs `body` on the current thread as a continuation (in a pool worker or a channel
    /// consumer, say) and returns its output. A panic finishes the continuation as
    /// `internal_error` and is resumed. Default op: `thread`.
    ///
    /// ```
    /// assert_eq!(traced_spawn::Builder::new("x").run(|| 5), 5);
    /// ```
    pub fn run<R>(self, body: impl FnOnce() -> R) -> R
    where
        C: Classifier<R>,
    {
        let (pending, classifier) = self.pending(op::THREAD);
        Pending::run_or_plain(pending, classifier.rule(), body)
    }

    /// Wraps `future` in a continuation that starts at its first poll. Default op: `task`.
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let out = rt.block_on(traced_spawn::Builder::new("x").bind(async { 5 }));
    /// assert_eq!(out, 5);
    /// ```
    pub fn bind<F: Future>(self, future: F) -> Continued<F>
    where
        C: Classifier<F::Output>,
    {
        let (pending, classifier) = self.pending(op::TASK);
        Continued::new(pending, classifier.rule(), future)
    }

    /// Spawns `body` on a new std thread as a continuation of the caller's trace. Default op:
    /// `thread`.
    ///
    /// # Panics
    ///
    /// Like `std::thread::spawn`, if the OS fails to create a thread.
    ///
    /// ```
    /// let handle = traced_spawn::Builder::new("x").spawn_thread(|| 5);
    /// assert_eq!(handle.join().unwrap(), 5);
    /// ```
    pub fn spawn_thread<F, R>(self, body: F) -> std::thread::JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
        C: Classifier<R>,
    {
        let thread = thread_for(self.thread_name.as_ref(), &self.name);
        let (pending, classifier) = self.pending(op::THREAD);
        let rule = classifier.rule();
        thread
            .spawn(move || Pending::run_or_plain(pending, rule, body))
            .expect("failed to spawn thread")
    }

    /// Spawns `future` with `tokio::spawn` as a continuation of the caller's trace. Default op:
    /// `task`. The task is spawned now; the continuation starts at its first poll.
    ///
    /// # Panics
    ///
    /// Like `tokio::spawn`, when called outside a tokio runtime.
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let handle = traced_spawn::Builder::new("x").spawn_task(async { 5 });
    /// assert_eq!(handle.await.unwrap(), 5);
    /// # });
    /// ```
    #[cfg(feature = "tokio")]
    #[track_caller]
    pub fn spawn_task<F>(self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        C: Classifier<F::Output>,
    {
        let runtime = require_runtime(self.caller("spawn_task"));
        let (pending, classifier) = self.pending(op::TASK);
        // One task type whether or not there is anything to continue: tokio's task machinery is
        // the largest part of what a spawn instantiates per future type (see BENCHMARKS.md,
        // "Build cost"); with nothing to continue the wrapper polls the future as it is.
        runtime.spawn(Continued::new(pending, classifier.rule(), future))
    }

    /// Spawns `body` on tokio's blocking pool (`tokio::task::spawn_blocking`) as a continuation.
    /// Default op: `task.blocking`. A body the runtime drops without running (shut down first) is
    /// recorded as `cancelled`.
    ///
    /// # Panics
    ///
    /// Like `tokio::task::spawn_blocking`, when called outside a tokio runtime.
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let handle = traced_spawn::Builder::new("db::query").spawn_blocking(|| 5);
    /// assert_eq!(handle.await.unwrap(), 5);
    /// # });
    /// ```
    #[cfg(feature = "tokio")]
    #[track_caller]
    pub fn spawn_blocking<F, R>(self, body: F) -> tokio::task::JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
        C: Classifier<R>,
    {
        let runtime = require_runtime(self.caller("spawn_blocking"));
        let (pending, classifier) = self.pending(op::BLOCKING);
        let rule = classifier.rule();
        runtime.spawn_blocking(move || Pending::run_or_plain(pending, rule, body))
    }

    /// Spawns `future` on the current `LocalSet` (`tokio::task::spawn_local`) as a continuation:
    /// for futures that are not `Send`. Default op: `task.local`.
    ///
    /// # Panics
    ///
    /// Like `tokio::task::spawn_local`, when called outside a `LocalSet`.
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let local = tokio::task::LocalSet::new();
    /// let out = local.block_on(&rt, async {
    ///     let shared = std::rc::Rc::new(5);
    ///     traced_spawn::Builder::new("ui::render")
    ///         .spawn_local(async move { *shared })
    ///         .await
    ///         .unwrap()
    /// });
    /// assert_eq!(out, 5);
    /// ```
    #[cfg(feature = "tokio")]
    #[track_caller]
    pub fn spawn_local<F>(self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
        C: Classifier<F::Output>,
    {
        require_local_set(self.caller("spawn_local"));
        let (pending, classifier) = self.pending(op::LOCAL);
        let continued = Continued::new(pending, classifier.rule(), future);
        let _hand_over = HandOver::begin();
        tokio::task::spawn_local(continued)
    }

    /// Spawns `body` on rayon's global pool (`rayon::spawn`) as a continuation. Default op:
    /// `task.rayon`. The returned [`RayonHandle`](crate::RayonHandle) is joined or awaited for
    /// the output; a panic reaches it as `Err`, as with a thread.
    ///
    /// ```
    /// let handle = traced_spawn::Builder::new("index::build").spawn_rayon(|| 5);
    /// assert_eq!(handle.join().unwrap(), 5);
    /// ```
    #[cfg(feature = "rayon")]
    pub fn spawn_rayon<F, R>(self, body: F) -> crate::RayonHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
        C: Classifier<R>,
    {
        let (pending, classifier) = self.pending(op::RAYON);
        let rule = classifier.rule();
        let (completion, handle) = crate::rayon_handle::pair();
        rayon::spawn(move || {
            let run = || Pending::run_or_plain(pending, rule, body);
            // rayon aborts the process on a panic that escapes a job: hand it to the handle.
            let output = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
            completion.complete(output);
        });
        handle
    }

    /// Spawns `body` on `spawner`, any [`Spawn`] executor (a `rayon::ThreadPool`, a pool of your
    /// own), as a continuation. Default op: `task`. A job the executor drops without running is
    /// recorded as `cancelled`.
    ///
    /// ```
    /// use traced_spawn::{Builder, Spawn};
    ///
    /// /// Runs the job on the calling thread.
    /// struct Inline;
    /// impl Spawn for Inline {
    ///     type Handle<R: Send + 'static> = R;
    ///     fn spawn<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static) -> R {
    ///         job()
    ///     }
    /// }
    ///
    /// assert_eq!(Builder::new("x").spawn_on(&Inline, || 5), 5);
    /// ```
    pub fn spawn_on<S, F, R>(self, spawner: &S, body: F) -> S::Handle<R>
    where
        S: Spawn + ?Sized,
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
        C: Classifier<R>,
    {
        let (pending, classifier) = self.pending(op::TASK);
        let rule = classifier.rule();
        let _hand_over = HandOver::begin();
        spawner.spawn(move || Pending::run_or_plain(pending, rule, body))
    }

    /// Spawns `future` on `spawner`, any [`SpawnFuture`] executor (a `tokio::runtime::Handle`, an
    /// executor of your own), as a continuation. Default op: `task`.
    ///
    /// ```
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let handle = traced_spawn::Builder::new("x").spawn_future_on(rt.handle(), async { 5 });
    /// assert_eq!(rt.block_on(handle).unwrap(), 5);
    /// ```
    pub fn spawn_future_on<S, F>(self, spawner: &S, future: F) -> S::Handle<F::Output>
    where
        S: SpawnFuture + ?Sized,
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        C: Classifier<F::Output>,
    {
        let (pending, classifier) = self.pending(op::TASK);
        let continued = Continued::new(pending, classifier.rule(), future);
        let _hand_over = HandOver::begin();
        spawner.spawn_future(continued)
    }
}

/// The std thread a builder spawns, named as `#[traced_spawn]` names it: `thread_name`, else the
/// work's given name, else unnamed. Not generic: compiled once, not once per body.
fn thread_for(thread_name: Option<&Label>, name: &Name) -> std::thread::Builder {
    let thread = std::thread::Builder::new();
    match (thread_name, name) {
        (Some(name), _) | (None, Name::Given(name)) if !name.is_empty() => {
            thread.name(name.clone().into_owned())
        }
        _ => thread,
    }
}

/// Without the `rayon` or `tokio` feature, their spawn methods still resolve (for
/// `#[traced_spawn]` and for a `Builder` of the user's), and the call reports the feature to
/// enable instead of a missing method.
#[cfg(not(all(feature = "tokio", feature = "rayon")))]
impl<C> Builder<C> {
    #[cfg(not(feature = "rayon"))]
    #[doc(hidden)]
    pub fn spawn_rayon<F, R>(self, _: F) -> missing::Unavailable<R>
    where
        R: missing::RayonFeature,
    {
        missing::Unavailable(std::marker::PhantomData)
    }

    #[cfg(not(feature = "tokio"))]
    #[doc(hidden)]
    pub fn spawn_task<F: Future>(self, _: F) -> missing::Unavailable<F::Output>
    where
        F::Output: missing::TokioFeature,
    {
        missing::Unavailable(std::marker::PhantomData)
    }

    #[cfg(not(feature = "tokio"))]
    #[doc(hidden)]
    pub fn spawn_blocking<F, R>(self, _: F) -> missing::Unavailable<R>
    where
        R: missing::TokioFeature,
    {
        missing::Unavailable(std::marker::PhantomData)
    }

    #[cfg(not(feature = "tokio"))]
    #[doc(hidden)]
    pub fn spawn_local<F: Future>(self, _: F) -> missing::Unavailable<F::Output>
    where
        F::Output: missing::TokioFeature,
    {
        missing::Unavailable(std::marker::PhantomData)
    }
}

/// Stands in for an executor whose cargo feature is off, so the error names the feature (see
/// the stand-in spawn methods of [`Builder`] below).
#[cfg(not(all(feature = "tokio", feature = "rayon")))]
pub mod missing {

    /// Never implemented: a bound on it reports the missing `rayon` feature.
    #[cfg(not(feature = "rayon"))]
    #[diagnostic::on_unimplemented(
        message = "`#[traced_spawn(rayon)]` needs the `rayon` feature of `traced-spawn`",
        label = "rayon support is not compiled in",
        note = "enable it in Cargo.toml: traced-spawn = {{ version = \"*\", features = [\"rayon\"] }}"
    )]
    pub trait RayonFeature {}

    /// Never implemented: a bound on it reports the missing `tokio` feature.
    #[cfg(not(feature = "tokio"))]
    #[diagnostic::on_unimplemented(
        message = "`#[traced_spawn]` on tokio needs the `tokio` feature of `traced-spawn`",
        label = "tokio support is not compiled in",
        note = "enable it in Cargo.toml (it is a default feature): traced-spawn = {{ version = \"*\", features = [\"tokio\"] }}"
    )]
    pub trait TokioFeature {}

    /// The handle type named in a signature when the executor is not compiled in.
    pub struct Unavailable<T>(pub(crate) std::marker::PhantomData<T>);
}
