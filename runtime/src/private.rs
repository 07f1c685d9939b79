//! Glue called by the code `#[traced_spawn]` generates. Not public API: no stability promise.

pub use ::sentry;
pub use ::std;
#[cfg(feature = "tokio")]
pub use ::tokio;

use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
#[cfg(debug_assertions)]
use std::pin::Pin;

#[cfg(feature = "rayon")]
use crate::builder::OP_RAYON;
#[cfg(feature = "tokio")]
use crate::builder::{OP_BLOCKING, OP_LOCAL};
use crate::builder::{OP_TASK, OP_THREAD};
use crate::context::TraceContext;
use crate::continuation::Shape;
use crate::executors;
#[cfg(feature = "tokio")]
use crate::executors::{require_local_set, require_runtime, Caller};
pub use crate::pending::Name;
use crate::pending::Pending;
pub use crate::spawn::{Spawn, SpawnFuture};
pub use crate::verdict::probe::{
    DebugVerdict, DerefErrorVerdict, ErrorVerdict, OtherVerdict, Probe, ResultVerdict,
};
pub use crate::verdict::{Classifier, Verdict};
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
        Pending::new(TraceContext::capture(), self.name.clone(), op, shape)
    }
}

// Build cost. In builds with debug assertions (cargo's `dev` profile) the glue below boxes the
// body and its verdict before handing them on: the executor's spawn path, the continuation and
// the wrapper are then instantiated once per return type, not once per annotated fn, which is what
// a debug build of a crate with many annotated fns spends its time on. Boxing a `Send` body
// changes nothing it does. Release builds hand the body on as it is: no allocation, no indirect
// call.

/// A job's body and verdict, boxed in debug builds.
#[cfg(debug_assertions)]
type Job<R> = Box<dyn FnOnce() -> R + Send>;
/// A verdict, boxed in debug builds (a verdict closure captures nothing: no allocation).
#[cfg(debug_assertions)]
type BoxedVerdict<R> = Box<dyn FnOnce(&R) -> Verdict + Send>;
/// A task's future, boxed in debug builds.
#[cfg(debug_assertions)]
type Task<R> = Pin<Box<dyn Future<Output = R> + Send>>;

/// A parameter moved into a spawned body must be `Send + 'static`; the call is spanned at the
/// parameter so the error points there.
pub fn assert_arg<T: Send + 'static>(_: &T) {}

/// A parameter moved into a `spawn_local` body must be `'static`.
pub fn assert_local_arg<T: 'static>(_: &T) {}

/// A job's body and verdict as they are handed on: boxed in debug builds.
#[cfg(debug_assertions)]
fn job<F, R, C>(body: F, verdict: C) -> (Job<R>, BoxedVerdict<R>)
where
    F: FnOnce() -> R + Send + 'static,
    C: FnOnce(&R) -> Verdict + Send + 'static,
{
    (Box::new(body), Box::new(verdict))
}

/// A job's body and verdict as they are handed on: as they are in release builds.
#[cfg(not(debug_assertions))]
#[inline(always)]
fn job<F, C>(body: F, verdict: C) -> (F, C) {
    (body, verdict)
}

/// A task's future and verdict as they are handed on: boxed in debug builds.
#[cfg(debug_assertions)]
fn task_parts<Fut, C>(fut: Fut, verdict: C) -> (Task<Fut::Output>, BoxedVerdict<Fut::Output>)
where
    Fut: Future + Send + 'static,
    C: FnOnce(&Fut::Output) -> Verdict + Send + 'static,
{
    (Box::pin(fut), Box::new(verdict))
}

/// A `LocalSet` task's future and verdict as they are handed on: boxed in debug builds.
#[cfg(all(feature = "tokio", debug_assertions))]
#[allow(clippy::type_complexity)]
fn local_parts<Fut, C>(
    fut: Fut,
    verdict: C,
) -> (
    Pin<Box<dyn Future<Output = Fut::Output>>>,
    Box<dyn FnOnce(&Fut::Output) -> Verdict>,
)
where
    Fut: Future + 'static,
    C: FnOnce(&Fut::Output) -> Verdict + 'static,
{
    (Box::pin(fut), Box::new(verdict))
}

/// A task's future and verdict as they are handed on: as they are in release builds.
#[cfg(not(debug_assertions))]
#[inline(always)]
fn task_parts<Fut, C>(fut: Fut, verdict: C) -> (Fut, C) {
    (fut, verdict)
}

#[cfg(all(feature = "tokio", not(debug_assertions)))]
use task_parts as local_parts;

/// `#[traced_spawn]` on a sync fn: a std thread.
pub fn thread<F, R, C>(spec: &Spec, body: F, verdict: C) -> std::thread::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
    C: FnOnce(&R) -> Verdict + Send + 'static,
{
    let (body, verdict) = job(body, verdict);
    let thread_name = spec.thread_name.unwrap_or(spec.fn_name);
    let thread = std::thread::Builder::new().name(thread_name.to_owned());
    executors::thread(thread, spec.pending(OP_THREAD), verdict, body)
}

/// `#[traced_spawn]` on an async fn: a tokio task, spawned now.
#[cfg(feature = "tokio")]
#[track_caller]
pub fn task<Fut, C>(spec: &Spec, fut: Fut, verdict: C) -> tokio::task::JoinHandle<Fut::Output>
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
    C: FnOnce(&Fut::Output) -> Verdict + Send + 'static,
{
    let runtime = require_runtime(Caller::Function(spec.fn_name));
    let (fut, verdict) = task_parts(fut, verdict);
    executors::task(&runtime, spec.pending(OP_TASK), verdict, fut)
}

/// `#[traced_spawn(future)]`: the traced future, unspawned.
pub fn future<Fut, C>(spec: &Spec, fut: Fut, verdict: C) -> crate::Continued<Fut, C>
where
    Fut: Future,
    C: FnOnce(&Fut::Output) -> Verdict,
{
    crate::Continued::new(spec.pending(OP_TASK), verdict, fut)
}

/// `#[traced_spawn(blocking)]`: tokio's blocking pool.
#[cfg(feature = "tokio")]
#[track_caller]
pub fn blocking<F, R, C>(spec: &Spec, body: F, verdict: C) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
    C: FnOnce(&R) -> Verdict + Send + 'static,
{
    let runtime = require_runtime(Caller::BlockingFunction(spec.fn_name));
    let (body, verdict) = job(body, verdict);
    executors::blocking(&runtime, spec.pending(OP_BLOCKING), verdict, body)
}

/// `#[traced_spawn(local)]`: the current `LocalSet`.
#[cfg(feature = "tokio")]
#[track_caller]
pub fn local<Fut, C>(spec: &Spec, fut: Fut, verdict: C) -> tokio::task::JoinHandle<Fut::Output>
where
    Fut: Future + 'static,
    Fut::Output: 'static,
    C: FnOnce(&Fut::Output) -> Verdict + 'static,
{
    require_local_set(Caller::Function(spec.fn_name));
    let (fut, verdict) = local_parts(fut, verdict);
    executors::local(spec.pending(OP_LOCAL), verdict, fut)
}

/// `#[traced_spawn(rayon)]`: rayon's global pool.
#[cfg(feature = "rayon")]
pub fn rayon<F, R, C>(spec: &Spec, body: F, verdict: C) -> RayonHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
    C: FnOnce(&R) -> Verdict + Send + 'static,
{
    let (body, verdict) = job(body, verdict);
    executors::rayon(spec.pending(OP_RAYON), verdict, body)
}

/// `#[traced_spawn(spawner = S)]` on a sync fn.
pub fn spawner<S, F, R, C>(_: PhantomData<S>, spec: &Spec, body: F, verdict: C) -> S::Handle<R>
where
    S: Spawn,
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
    C: FnOnce(&R) -> Verdict + Send + 'static,
{
    let (body, verdict) = job(body, verdict);
    executors::with::<S, _, _, _>(spec.pending(OP_TASK), verdict, body)
}

/// `#[traced_spawn(spawner = S)]` on an async fn.
pub fn spawner_task<S, Fut, C>(
    _: PhantomData<S>,
    spec: &Spec,
    fut: Fut,
    verdict: C,
) -> S::Handle<Fut::Output>
where
    S: SpawnFuture,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
    C: FnOnce(&Fut::Output) -> Verdict + Send + 'static,
{
    let (fut, verdict) = task_parts(fut, verdict);
    executors::future_with::<S, _, _>(spec.pending(OP_TASK), verdict, fut)
}

/// Stands in for an executor whose cargo feature is off, so the error names the feature.
#[cfg(not(all(feature = "tokio", feature = "rayon")))]
mod missing {
    use std::marker::PhantomData;

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
    pub struct Unavailable<T>(pub(crate) PhantomData<T>);
}

#[cfg(not(feature = "rayon"))]
pub use missing::Unavailable as RayonHandle;

/// `#[traced_spawn(rayon)]` without the `rayon` feature: an error that says so.
#[cfg(not(feature = "rayon"))]
pub fn rayon<F, R, C>(_: &Spec, _: F, _: C) -> RayonHandle<R>
where
    R: missing::RayonFeature,
{
    RayonHandle(PhantomData)
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
pub fn task<Fut: Future, C>(_: &Spec, _: Fut, _: C) -> tokio::task::JoinHandle<Fut::Output>
where
    Fut::Output: missing::TokioFeature,
{
    missing::Unavailable(PhantomData)
}

/// `#[traced_spawn(blocking)]` without the `tokio` feature: an error that says so.
#[cfg(not(feature = "tokio"))]
pub fn blocking<F, R, C>(_: &Spec, _: F, _: C) -> tokio::task::JoinHandle<R>
where
    R: missing::TokioFeature,
{
    missing::Unavailable(PhantomData)
}

/// `#[traced_spawn(local)]` without the `tokio` feature: an error that says so.
#[cfg(not(feature = "tokio"))]
pub fn local<Fut: Future, C>(_: &Spec, _: Fut, _: C) -> tokio::task::JoinHandle<Fut::Output>
where
    Fut::Output: missing::TokioFeature,
{
    missing::Unavailable(PhantomData)
}
