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
use crate::continuation::Shape;
use crate::monitor::Monitor;
pub use crate::pending::Name;
pub use crate::spawn::{Spawn, SpawnFuture};
#[cfg(feature = "rayon")]
pub use crate::RayonHandle;
pub use crate::{Builder, Continued};

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
    /// The [`Builder`] of one call: the fn's options, and for what they leave out the runtime's
    /// defaults (the executor's op; a thread named after the fn). Nothing is captured yet: the
    /// spawn method captures, at the call. Not generic: compiled once, in this crate.
    #[inline]
    pub fn builder(&self) -> Builder {
        Builder::of_fn(
            self.name.clone(),
            self.fn_name,
            self.op,
            self.thread_name.unwrap_or(self.fn_name),
            if self.child {
                Shape::ChildSpan
            } else {
                Shape::Transaction
            },
            self.monitor.map(MonitorSpec::monitor),
        )
    }
}

/// The rule on a job's output, typed by the job: the output type is known (an `impl Trait`
/// output too) before the rule's closure is checked.
pub fn job_rule<F: FnOnce() -> R, R>(_: &F, rule: Rule<R>) -> Rule<R> {
    rule
}

/// The rule on a future's output, typed by the future (see [`job_rule`]).
pub fn future_rule<F: Future>(_: &F, rule: Rule<F::Output>) -> Rule<F::Output> {
    rule
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
pub fn job<F, R>(body: F) -> Job<R>
where
    F: FnOnce() -> R + Send + 'static,
{
    Box::new(body)
}

/// A job's body as it is handed on: as it is in release builds.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn job<F>(body: F) -> F {
    body
}

/// A task's future as it is handed on: boxed in debug builds.
#[cfg(debug_assertions)]
pub fn task_future<Fut>(fut: Fut) -> Task<Fut::Output>
where
    Fut: Future + Send + 'static,
{
    Box::pin(fut)
}

/// A `LocalSet` task's future as it is handed on: boxed in debug builds.
#[cfg(all(feature = "tokio", debug_assertions))]
pub fn local_future<Fut>(fut: Fut) -> Pin<Box<dyn Future<Output = Fut::Output>>>
where
    Fut: Future + 'static,
{
    Box::pin(fut)
}

/// A task's future as it is handed on: as it is in release builds.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn task_future<Fut>(fut: Fut) -> Fut {
    fut
}

#[cfg(all(feature = "tokio", not(debug_assertions)))]
pub use task_future as local_future;

#[cfg(not(feature = "rayon"))]
pub use crate::builder::missing::Unavailable as RayonHandle;

/// Without the `tokio` feature, the signatures still resolve and the call reports the feature.
#[cfg(not(feature = "tokio"))]
pub mod tokio {
    /// Stand-in for `tokio::task`.
    pub mod task {
        pub use crate::builder::missing::Unavailable as JoinHandle;
    }
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
