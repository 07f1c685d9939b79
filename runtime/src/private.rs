//! Glue called by the code `#[traced_spawn]` generates. Not public API: no stability promise.

pub use ::sentry;
pub use ::std;
#[cfg(feature = "tokio")]
pub use ::tokio;

use std::future::Future;
use std::marker::PhantomData;

pub use crate::spawn::{Spawn, SpawnFuture};
pub use crate::verdict::Verdict;
use crate::Builder;
#[cfg(feature = "rayon")]
pub use crate::RayonHandle;

/// What the macro knows about one annotated function.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Transaction name.
    pub name: &'static str,
    /// Transaction op.
    pub op: &'static str,
    /// OS thread name, for thread executors.
    pub thread_name: Option<&'static str>,
    /// Whether an `Err` is captured as an event (the verdict closure already acts on it).
    pub capture_err: bool,
}

impl Spec {
    fn builder(self) -> Builder {
        let builder = Builder::new(self.name).op(self.op);
        match self.thread_name {
            Some(thread_name) => builder.thread_name(thread_name),
            None => builder,
        }
    }
}

/// The path of the function a marker fn is nested in: `type_name` without its last segment.
pub fn fn_path(type_name: &'static str) -> &'static str {
    type_name
        .rsplit_once("::")
        .map_or(type_name, |(path, _)| path)
}

/// Autoref probe: `(&&&Probe(&output)).__traced_spawn_verdict(capture_err)` picks the most specific
/// of [`ErrorVerdict`], [`ResultVerdict`], [`OtherVerdict`] for the output's concrete type.
pub struct Probe<'a, T>(pub &'a T);

/// `Result<T, E: Error>`: an `Err` fails, and is captured as an event when asked.
pub trait ErrorVerdict {
    /// The verdict on the probed output.
    fn __traced_spawn_verdict(&self, capture_err: bool) -> Verdict;
}

impl<T, E: std::error::Error + 'static> ErrorVerdict for &&Probe<'_, Result<T, E>> {
    fn __traced_spawn_verdict(&self, capture_err: bool) -> Verdict {
        match self.0 {
            Ok(_) => Verdict::Ok,
            Err(err) if capture_err => {
                Verdict::FailedWithEvent(Box::new(sentry::event_from_error(err)))
            }
            Err(_) => Verdict::Failed,
        }
    }
}

/// Any other `Result`: an `Err` fails, and is captured from its `Debug` text when asked.
pub trait ResultVerdict {
    /// The verdict on the probed output.
    fn __traced_spawn_verdict(&self, capture_err: bool) -> Verdict;
}

impl<T, E: std::fmt::Debug> ResultVerdict for &Probe<'_, Result<T, E>> {
    fn __traced_spawn_verdict(&self, capture_err: bool) -> Verdict {
        match self.0 {
            Ok(_) => Verdict::Ok,
            Err(err) if capture_err => {
                Verdict::FailedWithEvent(Box::new(sentry::protocol::Event {
                    level: sentry::Level::Error,
                    message: Some(format!("{err:?}")),
                    ..Default::default()
                }))
            }
            Err(_) => Verdict::Failed,
        }
    }
}

/// Every other output succeeds.
pub trait OtherVerdict {
    /// The verdict on the probed output.
    fn __traced_spawn_verdict(&self, capture_err: bool) -> Verdict;
}

impl<T> OtherVerdict for Probe<'_, T> {
    fn __traced_spawn_verdict(&self, _: bool) -> Verdict {
        Verdict::Ok
    }
}

/// A parameter moved into a spawned body must be `Send + 'static`; the call is spanned at the
/// parameter so the error points there.
pub fn assert_arg<T: Send + 'static>(_: &T) {}

/// A parameter moved into a `spawn_local` body must be `'static`.
pub fn assert_local_arg<T: 'static>(_: &T) {}

/// `#[traced_spawn]` on a sync fn: a std thread.
pub fn thread<F, R, C>(spec: Spec, body: F, verdict: C) -> std::thread::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
    C: FnOnce(&R) -> Verdict + Send + 'static,
{
    spec.builder().classify(verdict).spawn_thread(body)
}

/// `#[traced_spawn]` on an async fn: a tokio task, spawned now.
#[cfg(feature = "tokio")]
#[track_caller]
pub fn task<Fut, C>(spec: Spec, fut: Fut, verdict: C) -> tokio::task::JoinHandle<Fut::Output>
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
    C: FnOnce(&Fut::Output) -> Verdict + Send + 'static,
{
    spec.builder().classify(verdict).spawn_task(fut)
}

/// `#[traced_spawn(blocking)]`: tokio's blocking pool.
#[cfg(feature = "tokio")]
#[track_caller]
pub fn blocking<F, R, C>(spec: Spec, body: F, verdict: C) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
    C: FnOnce(&R) -> Verdict + Send + 'static,
{
    spec.builder().classify(verdict).spawn_blocking(body)
}

/// `#[traced_spawn(local)]`: the current `LocalSet`.
#[cfg(feature = "tokio")]
#[track_caller]
pub fn local<Fut, C>(spec: Spec, fut: Fut, verdict: C) -> tokio::task::JoinHandle<Fut::Output>
where
    Fut: Future + 'static,
    Fut::Output: 'static,
    C: FnOnce(&Fut::Output) -> Verdict + 'static,
{
    spec.builder().classify(verdict).spawn_local(fut)
}

/// `#[traced_spawn(rayon)]`: rayon's global pool.
#[cfg(feature = "rayon")]
pub fn rayon<F, R, C>(spec: Spec, body: F, verdict: C) -> RayonHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
    C: FnOnce(&R) -> Verdict + Send + 'static,
{
    spec.builder().classify(verdict).spawn_rayon(body)
}

/// `#[traced_spawn(spawner = S)]` on a sync fn.
pub fn spawner<S, F, R, C>(_: PhantomData<S>, spec: Spec, body: F, verdict: C) -> S::Handle<R>
where
    S: Spawn,
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
    C: FnOnce(&R) -> Verdict + Send + 'static,
{
    spec.builder().classify(verdict).spawn_with::<S, F, R>(body)
}

/// `#[traced_spawn(spawner = S)]` on an async fn.
pub fn spawner_task<S, Fut, C>(
    _: PhantomData<S>,
    spec: Spec,
    fut: Fut,
    verdict: C,
) -> S::Handle<Fut::Output>
where
    S: SpawnFuture,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
    C: FnOnce(&Fut::Output) -> Verdict + Send + 'static,
{
    spec.builder()
        .classify(verdict)
        .spawn_future_with::<S, Fut>(fut)
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
pub fn rayon<F, R, C>(_: Spec, _: F, _: C) -> RayonHandle<R>
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
pub fn task<Fut: Future, C>(_: Spec, _: Fut, _: C) -> tokio::task::JoinHandle<Fut::Output>
where
    Fut::Output: missing::TokioFeature,
{
    missing::Unavailable(PhantomData)
}

/// `#[traced_spawn(blocking)]` without the `tokio` feature: an error that says so.
#[cfg(not(feature = "tokio"))]
pub fn blocking<F, R, C>(_: Spec, _: F, _: C) -> tokio::task::JoinHandle<R>
where
    R: missing::TokioFeature,
{
    missing::Unavailable(PhantomData)
}

/// `#[traced_spawn(local)]` without the `tokio` feature: an error that says so.
#[cfg(not(feature = "tokio"))]
pub fn local<Fut: Future, C>(_: Spec, _: Fut, _: C) -> tokio::task::JoinHandle<Fut::Output>
where
    Fut::Output: missing::TokioFeature,
{
    missing::Unavailable(PhantomData)
}
