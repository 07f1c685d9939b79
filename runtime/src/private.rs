//! Glue called by the code `#[traced_spawn]` generates. Not public API: no stability promise.

pub use ::sentry;
pub use ::std;
#[cfg(feature = "tokio")]
pub use ::tokio;

use std::borrow::Cow;
use std::future::Future;
#[cfg(debug_assertions)]
use std::pin::Pin;

pub use crate::classify::probe::{
    DebugVerdict, DerefErrorVerdict, ErrorVerdict, OtherVerdict, Probe, ResultVerdict,
};
use crate::classify::Rule;
pub use crate::classify::Verdict;
use crate::context::TraceContext;
use crate::continuation::Shape;
use crate::executors;
#[cfg(feature = "tokio")]
use crate::executors::{require_local_set, require_runtime, Caller};
use crate::monitor::Monitor;
use crate::op;
pub use crate::pending::Name;
use crate::pending::Pending;
pub use crate::spawn::{Spawn, SpawnFuture};
pub use crate::Continued;
#[cfg(feature = "rayon")]
pub use crate::RayonHandle;

/// What the macro knows about one annotated function: a `static` of the generated fn, handed to
/// the glue by reference. Defaults (op, thread name) are decided by the runtime, from what is left
/// `None`.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Transaction name: the `name` option, or a marker for the fn's path.
    pub name: Name,
    /// The `op` option.
    pub op: Option<&'static str>,
    /// The `thread_name` option.
    pub thread_name: Option<&'static str>,
    /// The fn's name as written: the default thread name, and how panics name the call.
    pub fn_name: &'static str,
    /// The `child` option.
    pub child: bool,
    /// The `monitor` option and its schedule.
    pub monitor: Option<MonitorSpec>,
}

/// The `monitor` option: a Sentry Crons monitor's slug, and the config its `schedule` sends.
/// Validated by the macro.
#[derive(Debug, Clone, Copy)]
pub struct MonitorSpec {
    /// The `monitor` option.
    pub slug: &'static str,
    /// The `schedule` option: a crontab.
    pub schedule: Option<&'static str>,
    /// The `max_runtime` option, in minutes.
    pub max_runtime: Option<u64>,
    /// The `checkin_margin` option, in minutes.
    pub checkin_margin: Option<u64>,
}

impl MonitorSpec {
    /// The monitor as the runtime keeps it.
    fn monitor(self) -> Box<Monitor> {
        Box::new(Monitor {
            slug: Cow::Borrowed(self.slug),
            schedule: self
                .schedule
                .map(|crontab| sentry::protocol::MonitorSchedule::Crontab {
                    value: crontab.to_owned(),
                }),
            max_runtime: self.max_runtime,
            checkin_margin: self.checkin_margin,
        })
    }
}

impl Spec {
    /// The continuation of the caller's trace this call hands on, with the executor's default
    /// op: captured here, on the calling thread. Not generic: compiled once, in this crate.
    fn pending(&self, default_op: &'static str) -> Option<Pending> {
        let shape = if self.child {
            Shape::ChildSpan
        } else {
            Shape::Transaction
        };
        let op = Cow::Borrowed(self.op.unwrap_or(default_op));
        let monitor = self.monitor.map(MonitorSpec::monitor);
        Pending::new(
            TraceContext::capture(),
            self.name.clone(),
            op,
            shape,
            monitor,
        )
    }
}

// Build cost. In builds with debug assertions (cargo's `dev` profile) the glue below boxes the
// body before handing it on: the executor's spawn path, the continuation and the wrapper are
// then instantiated once per return type, not once per annotated fn, which is what a debug build
// of a crate with many annotated fns spends its time on. Boxing a `Send` body changes nothing it
// does. Release builds hand the body on as it is: no allocation, no indirect call. The verdict is
// a plain `fn` pointer in both (the macro's closure captures nothing), so it adds no type.

/// A job's body, boxed in debug builds.
#[cfg(debug_assertions)]
type Job<R> = Box<dyn FnOnce() -> R + Send>;
/// A task's future, boxed in debug builds.
#[cfg(debug_assertions)]
type Task<R> = Pin<Box<dyn Future<Output = R> + Send>>;

/// A parameter moved into a spawned body must be `Send + 'static`; the call is spanned at the
/// parameter so the error points there.
pub fn assert_arg<T: Send + 'static>(_: &T) {}

/// A parameter moved into a `spawn_local` body must be `'static`.
pub fn assert_local_arg<T: 'static>(_: &T) {}

/// A job's body as it is handed on: boxed in debug builds.
#[cfg(debug_assertions)]
fn job<F, R>(body: F) -> Job<R>
where
    F: FnOnce() -> R + Send + 'static,
{
    Box::new(body)
}

/// A job's body as it is handed on: as it is in release builds.
#[cfg(not(debug_assertions))]
#[inline(always)]
fn job<F>(body: F) -> F {
    body
}

/// A task's future as it is handed on: boxed in debug builds.
#[cfg(debug_assertions)]
fn task_future<Fut>(fut: Fut) -> Task<Fut::Output>
where
    Fut: Future + Send + 'static,
{
    Box::pin(fut)
}

/// A `LocalSet` task's future as it is handed on: boxed in debug builds.
#[cfg(all(feature = "tokio", debug_assertions))]
fn local_future<Fut>(fut: Fut) -> Pin<Box<dyn Future<Output = Fut::Output>>>
where
    Fut: Future + 'static,
{
    Box::pin(fut)
}

/// A task's future as it is handed on: as it is in release builds.
#[cfg(not(debug_assertions))]
#[inline(always)]
fn task_future<Fut>(fut: Fut) -> Fut {
    fut
}

#[cfg(all(feature = "tokio", not(debug_assertions)))]
use task_future as local_future;

/// `#[traced_spawn]` on a sync fn: a std thread.
pub fn thread<F, R>(spec: &Spec, body: F, verdict: Rule<R>) -> std::thread::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let thread_name = spec.thread_name.unwrap_or(spec.fn_name);
    let thread = std::thread::Builder::new().name(thread_name.to_owned());
    executors::thread(thread, spec.pending(op::THREAD), verdict, job(body))
}

/// `#[traced_spawn]` on an async fn: a tokio task, spawned now.
#[cfg(feature = "tokio")]
#[track_caller]
pub fn task<Fut>(
    spec: &Spec,
    fut: Fut,
    verdict: Rule<Fut::Output>,
) -> tokio::task::JoinHandle<Fut::Output>
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let runtime = require_runtime(Caller::Function(spec.fn_name));
    executors::task(&runtime, spec.pending(op::TASK), verdict, task_future(fut))
}

/// `#[traced_spawn(future)]`: the traced future, unspawned.
pub fn future<Fut: Future>(
    spec: &Spec,
    fut: Fut,
    verdict: Rule<Fut::Output>,
) -> crate::Continued<Fut> {
    crate::Continued::new(spec.pending(op::TASK), verdict, fut)
}

/// `#[traced_spawn(blocking)]`: tokio's blocking pool.
#[cfg(feature = "tokio")]
#[track_caller]
pub fn blocking<F, R>(spec: &Spec, body: F, verdict: Rule<R>) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let runtime = require_runtime(Caller::BlockingFunction(spec.fn_name));
    executors::blocking(&runtime, spec.pending(op::BLOCKING), verdict, job(body))
}

/// `#[traced_spawn(local)]`: the current `LocalSet`.
#[cfg(feature = "tokio")]
#[track_caller]
pub fn local<Fut>(
    spec: &Spec,
    fut: Fut,
    verdict: Rule<Fut::Output>,
) -> tokio::task::JoinHandle<Fut::Output>
where
    Fut: Future + 'static,
    Fut::Output: 'static,
{
    require_local_set(Caller::Function(spec.fn_name));
    executors::local(spec.pending(op::LOCAL), verdict, local_future(fut))
}

/// `#[traced_spawn(rayon)]`: the calling worker's rayon pool, or the global pool.
#[cfg(feature = "rayon")]
pub fn rayon<F, R>(spec: &Spec, body: F, verdict: Rule<R>) -> RayonHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    executors::rayon(spec.pending(op::RAYON), verdict, job(body))
}

/// `#[traced_spawn(spawner = EXPR)]` on a sync fn: `spawner` is `&(EXPR)`, evaluated at the call.
pub fn spawner<S, F, R>(spawner: &S, spec: &Spec, body: F, verdict: Rule<R>) -> S::Handle<R>
where
    S: Spawn + ?Sized,
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    executors::with(spawner, spec.pending(op::TASK), verdict, job(body))
}

/// `#[traced_spawn(spawner = EXPR)]` on an async fn: `spawner` is `&(EXPR)`, evaluated at the
/// call.
pub fn spawner_task<S, Fut>(
    spawner: &S,
    spec: &Spec,
    fut: Fut,
    verdict: Rule<Fut::Output>,
) -> S::Handle<Fut::Output>
where
    S: SpawnFuture + ?Sized,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    executors::future_with(spawner, spec.pending(op::TASK), verdict, task_future(fut))
}

/// Stands in for an executor whose cargo feature is off, so the error names the feature.
#[cfg(not(all(feature = "tokio", feature = "rayon")))]
mod missing {

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

#[cfg(not(feature = "rayon"))]
pub use missing::Unavailable as RayonHandle;

/// `#[traced_spawn(rayon)]` without the `rayon` feature: an error that says so.
#[cfg(not(feature = "rayon"))]
pub fn rayon<F, R>(_: &Spec, _: F, _: Rule<R>) -> RayonHandle<R>
where
    R: missing::RayonFeature,
{
    RayonHandle(std::marker::PhantomData)
}

/// Without the `tokio` feature, the signatures still resolve and the call reports the feature.
#[cfg(not(feature = "tokio"))]
pub mod tokio {
    /// Stand-in for `tokio::task`.
    pub mod task {
        pub use super::super::missing::Unavailable as JoinHandle;
    }
}

/// `#[traced_spawn]` on an async fn without the `tokio` feature: an error that says so.
#[cfg(not(feature = "tokio"))]
pub fn task<Fut: Future>(
    _: &Spec,
    _: Fut,
    _: Rule<Fut::Output>,
) -> tokio::task::JoinHandle<Fut::Output>
where
    Fut::Output: missing::TokioFeature,
{
    missing::Unavailable(std::marker::PhantomData)
}

/// `#[traced_spawn(blocking)]` without the `tokio` feature: an error that says so.
#[cfg(not(feature = "tokio"))]
pub fn blocking<F, R>(_: &Spec, _: F, _: Rule<R>) -> tokio::task::JoinHandle<R>
where
    R: missing::TokioFeature,
{
    missing::Unavailable(std::marker::PhantomData)
}

/// `#[traced_spawn(local)]` without the `tokio` feature: an error that says so.
#[cfg(not(feature = "tokio"))]
pub fn local<Fut: Future>(
    _: &Spec,
    _: Fut,
    _: Rule<Fut::Output>,
) -> tokio::task::JoinHandle<Fut::Output>
where
    Fut::Output: missing::TokioFeature,
{
    missing::Unavailable(std::marker::PhantomData)
}

/// What the rustdoc examples use to show what a continuation sends: one helper for all of them.
pub mod doc {
    use std::sync::{Arc, Mutex, PoisonError};

    use sentry::protocol::{Context, EnvelopeItem, TraceContext};
    use sentry::{ClientOptions, Envelope, Hub, Transport};

    /// Keeps every envelope sent.
    #[derive(Default)]
    struct Kept(Mutex<Vec<Envelope>>);

    impl Transport for Kept {
        fn send_envelope(&self, envelope: Envelope) {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(envelope);
        }
    }

    /// Runs `f` under a hub whose client samples every trace, and returns the trace context of
    /// the first transaction it sent.
    ///
    /// # Panics
    ///
    /// When `f` sent no transaction.
    pub fn sent(f: impl FnOnce()) -> TraceContext {
        let kept = Arc::new(Kept::default());
        let transport = kept.clone();
        let options = ClientOptions::new()
            .dsn("https://public@sentry.invalid/1")
            .traces_sample_rate(1.0)
            .transport(move |_: &ClientOptions| transport.clone() as Arc<dyn Transport>);
        let client = Arc::new(sentry::Client::from(options));
        Hub::run(Arc::new(Hub::new(Some(client.clone()), Arc::default())), f);
        client.flush(None);
        let envelopes = kept.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut items = envelopes.iter().flat_map(Envelope::items);
        items
            .find_map(|item| match item {
                EnvelopeItem::Transaction(tx) => match tx.contexts.get("trace") {
                    Some(Context::Trace(trace)) => Some((**trace).clone()),
                    _ => None,
                },
                _ => None,
            })
            .expect("one transaction")
    }
}
