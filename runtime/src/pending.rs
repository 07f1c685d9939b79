//! Traced work that an executor has not started yet, and the same work once it runs.
//!
//! Jobs (a closure for a thread, a pool, `spawn_blocking`) and futures ([`Continued`]) share this
//! one type: [`Pending::start`] turns it into a started [`Continuation`] on the thread that runs
//! it; a `Pending` dropped unrun (an executor that shut down, a task aborted before its first
//! poll) is still recorded, as `cancelled`.
//!
//! Nothing here depends on the body's type or on the rule on its output: this code is compiled
//! once, in this crate, not once per traced fn. What is generic ([`run_on_hub`], [`Pending::run_or_plain`])
//! is the few lines that call the body and classify its output.
//!
//! [`Continued`]: crate::Continued

use std::borrow::Cow;
use std::cell::Cell;

use crate::classify::Rule;
use crate::context::TraceContext;
use crate::continuation::{Continuation, Running, Shape};
use crate::flush::InFlight;
use crate::monitor::Monitor;

/// A transaction name or op.
pub(crate) type Label = Cow<'static, str>;

/// A continuation's name as it is given. A fn's path is worked out only when something is
/// recorded: work spawned with no client, or under a trace that is not sent, never reads it.
#[derive(Debug, Clone)]
pub enum Name {
    /// The name itself.
    Given(Cow<'static, str>),
    /// A marker fn nested in the annotated fn, which returns its own type name: the name is the
    /// annotated fn's path, type arguments left out.
    Marker(fn() -> &'static str),
    /// A method's marker fn and `type_name::<Self>`: a trait's default method is named after the
    /// implementing type, `<app::Worker as app::Job>::run`, not `app::Job::run` for every type.
    Method(fn() -> &'static str, fn() -> &'static str),
}

impl Name {
    /// The name to record.
    pub(crate) fn resolve(self) -> Label {
        match self {
            Name::Given(name) => name,
            Name::Marker(type_name) => fn_path(type_name()),
            Name::Method(type_name, self_type) => method_path(fn_path(type_name()), self_type()),
        }
    }
}

/// A method's path: in a trait's default method (`app::Job::run`, whose parent is not the
/// implementing type), the implementing type is named as in a trait impl's own path.
fn method_path(path: Label, self_type: &'static str) -> Label {
    if path.starts_with('<') {
        return path;
    }
    let self_type = without_type_arguments(self_type);
    match path.rsplit_once("::") {
        Some((parent, method)) if parent != self_type => {
            Cow::Owned(format!("<{self_type} as {parent}>::{method}"))
        }
        _ => path,
    }
}

/// The name of the marker fn the macro nests in an annotated fn.
const MARKER: &str = "::__traced_spawn_here";

/// The path of the function a marker fn is nested in (`type_name` without its last segment), with
/// the type arguments of a generic impl left out: `crate::Worker<_>::process::here` becomes
/// `crate::Worker::process`.
pub(crate) fn fn_path(type_name: &'static str) -> Label {
    let path = type_name.strip_suffix(MARKER).unwrap_or_else(|| {
        type_name
            .rsplit_once("::")
            .map_or(type_name, |(path, _)| path)
    });
    without_type_arguments(path)
}

/// A path without the type arguments of its segments: `app::Worker<_>::run` becomes
/// `app::Worker::run`; a qualified path (`<T as Trait>::f`) keeps its angle brackets.
fn without_type_arguments(path: &'static str) -> Label {
    if !path.contains('<') {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    let mut depth = 0_usize;
    let mut previous = ' ';
    for c in path.chars() {
        match c {
            // `<` right after a name opens its type arguments; elsewhere (a qualified path,
            // `<T as Trait>::f`) it is kept.
            '<' if depth > 0 || previous.is_alphanumeric() || previous == '_' => depth += 1,
            '>' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            _ => out.push(c),
        }
        previous = c;
    }
    Cow::Owned(out)
}

/// A continuation handed to an executor.
pub(crate) enum Pending {
    /// Nothing will be recorded (the caller's trace is not sent): the fork was made at the
    /// spawning call, and there is nothing left to start. This keeps the work's state as small as
    /// a hand-bound future's. With the caller's `tracing` span, if any (feature `tracing`), and
    /// OpenTelemetry `Context` (feature `opentelemetry`).
    Ready(
        Continuation,
        #[cfg(feature = "tracing")] crate::tracing::CallerSpan,
        #[cfg(feature = "opentelemetry")] crate::opentelemetry::CallerContext,
    ),
    /// Started on the thread that runs the work. Boxed, so that work waiting in an executor's
    /// queue stays small.
    Waiting(Box<Waiting>),
    /// Nothing to continue (no client was bound where the context was captured), but the
    /// caller's `tracing` span (feature `tracing`) or OpenTelemetry `Context` (feature
    /// `opentelemetry`) to run the body inside.
    #[cfg(any(feature = "tracing", feature = "opentelemetry"))]
    Plain(
        #[cfg(feature = "tracing")] crate::tracing::CallerSpan,
        #[cfg(feature = "opentelemetry")] crate::opentelemetry::CallerContext,
    ),
}

/// A continuation to start on the thread that runs the work: what it needs to start. Dropped
/// unstarted (an executor that shut down, a task aborted before its first poll), it is started
/// and dropped, which records it as `cancelled`.
pub(crate) struct Waiting {
    ctx: TraceContext,
    name: Name,
    op: Label,
    shape: Shape,
    /// The Sentry Crons monitor the work checks in to.
    monitor: Option<Box<Monitor>>,
    /// Counted from the spawning call: work waiting in a queue is in flight too. `None` once
    /// started.
    in_flight: Option<InFlight>,
}

impl Pending {
    /// Work that continues `ctx`, or `None` when there is nothing to continue (no client was bound
    /// where the context was captured): the work then runs as it is. Monitored work checks in
    /// when it starts, whatever the sampling, so it is always started where it runs.
    pub(crate) fn new(
        ctx: TraceContext,
        name: Name,
        op: Label,
        shape: Shape,
        monitor: Option<Box<Monitor>>,
    ) -> Option<Self> {
        if ctx.is_empty() {
            #[cfg(all(feature = "tracing", not(feature = "opentelemetry")))]
            if !ctx.tracing.is_none() {
                return Some(Pending::Plain(ctx.tracing));
            }
            #[cfg(all(feature = "opentelemetry", not(feature = "tracing")))]
            if !ctx.otel.is_none() {
                return Some(Pending::Plain(ctx.otel));
            }
            #[cfg(all(feature = "tracing", feature = "opentelemetry"))]
            if !ctx.tracing.is_none() || !ctx.otel.is_none() {
                return Some(Pending::Plain(ctx.tracing, ctx.otel));
            }
            return None;
        }
        if ctx.unrecorded() && monitor.is_none() {
            #[cfg(feature = "tracing")]
            let (ctx, span) = ctx.split_tracing();
            #[cfg(feature = "opentelemetry")]
            let (ctx, otel) = ctx.split_otel();
            return Some(Pending::Ready(
                Continuation::unrecorded(ctx),
                #[cfg(feature = "tracing")]
                span,
                #[cfg(feature = "opentelemetry")]
                otel,
            ));
        }
        Some(Pending::Waiting(Box::new(Waiting {
            ctx,
            name,
            op,
            shape,
            monitor,
            in_flight: Some(InFlight::new()),
        })))
    }

    /// Starts the continuation on the current thread.
    pub(crate) fn start(self) -> Continuation {
        match self {
            Pending::Ready(continuation, ..) => continuation,
            Pending::Waiting(mut waiting) => waiting.start(),
            #[cfg(any(feature = "tracing", feature = "opentelemetry"))]
            Pending::Plain(..) => unreachable!("plain work has nothing to start: it runs as it is"),
        }
    }

    /// Takes the caller's `tracing` span out of the work: the body's span, to enter where it runs.
    #[cfg(feature = "tracing")]
    pub(crate) fn take_span(&mut self) -> crate::tracing::CallerSpan {
        match self {
            Pending::Ready(_, span, ..) | Pending::Plain(span, ..) => std::mem::take(span),
            Pending::Waiting(waiting) => std::mem::take(&mut waiting.ctx.tracing),
        }
    }

    /// Takes the caller's OpenTelemetry `Context` out of the work, to attach where it runs.
    #[cfg(feature = "opentelemetry")]
    pub(crate) fn take_otel(&mut self) -> crate::opentelemetry::CallerContext {
        match self {
            Pending::Ready(.., otel) | Pending::Plain(.., otel) => std::mem::take(otel),
            Pending::Waiting(waiting) => std::mem::take(&mut waiting.ctx.otel),
        }
    }

    /// Runs `body` as the continuation `pending`, or as it is when there is none, and classifies
    /// its output with `rule`. Executors are handed this one closure either way, so their
    /// spawn path is compiled once per body; `body` is called from one place, so it is compiled
    /// (or inlined) once too.
    pub(crate) fn run_or_plain<R>(
        pending: Option<Self>,
        rule: Rule<R>,
        body: impl FnOnce() -> R,
    ) -> R {
        #[cfg(any(feature = "tracing", feature = "opentelemetry"))]
        let mut pending = pending;
        // The caller's OpenTelemetry `Context` is attached around everything; the body's span is
        // entered once the continuation is started, around its hub.
        #[cfg(feature = "opentelemetry")]
        let _otel = pending.as_mut().and_then(|p| p.take_otel().attached());
        #[cfg(feature = "tracing")]
        let span = pending.as_mut().map(Pending::take_span);
        let continuation = match pending {
            #[cfg(any(feature = "tracing", feature = "opentelemetry"))]
            Some(Pending::Plain(..)) => None,
            Some(pending) => Some(pending.start()),
            None => None,
        };
        #[cfg(feature = "tracing")]
        let _span = span.and_then(crate::tracing::CallerSpan::entered);
        let running = continuation.map(Running::begin);
        let output = body();
        if let Some(running) = running {
            running.finish(rule(&output));
        }
        output
    }
}

impl Waiting {
    /// Starts the continuation on the current thread, and marks this started: what is left is
    /// dropped as it is.
    pub(crate) fn start(&mut self) -> Continuation {
        let in_flight = self.in_flight.take();
        let ctx = std::mem::take(&mut self.ctx);
        let name = std::mem::replace(&mut self.name, Name::Given(Cow::Borrowed("")));
        let mut continuation = Continuation::start(ctx, &name.resolve(), &self.op, self.shape);
        if let Some(monitor) = self.monitor.take() {
            continuation.check_in(monitor);
        }
        // Counted by the continuation now, so the count never passes zero in between.
        drop(in_flight);
        continuation
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.in_flight.is_none() {
            return;
        }
        // The executor refused the work at the spawning call (it panicked there): the caller
        // sees that panic, and nothing was offloaded, so nothing is recorded.
        if HANDING_OVER.get() && std::thread::panicking() {
            return;
        }
        // Dropped before it ran: start and drop, which finishes it as `cancelled`.
        drop(self.start());
    }
}

/// Runs `body` under the continuation's hub and finishes it with `rule`'s verdict on the
/// output; a panic finishes it as `internal_error` and is resumed.
pub(crate) fn run_on_hub<R>(
    continuation: Continuation,
    rule: Rule<R>,
    body: impl FnOnce() -> R,
) -> R {
    let running = Running::begin(continuation);
    let output = body();
    running.finish(rule(&output));
    output
}

thread_local! {
    /// Set while work is handed to an executor's spawn function on this thread.
    static HANDING_OVER: Cell<bool> = const { Cell::new(false) };
}

/// Held while work is handed to an executor's spawn function: if the executor panics at that
/// call (tokio's `spawn_local` outside a `LocalSet`), the work it drops while unwinding is not
/// recorded as cancelled. It was never offloaded, and the caller gets the panic.
pub(crate) struct HandOver(bool);

impl HandOver {
    pub(crate) fn begin() -> HandOver {
        HandOver(HANDING_OVER.replace(true))
    }
}

impl Drop for HandOver {
    fn drop(&mut self) {
        HANDING_OVER.set(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::{fn_path, Name};

    #[test]
    fn the_markers_path_is_the_fns() {
        assert_eq!(
            fn_path("app::jobs::reply::__traced_spawn_here"),
            "app::jobs::reply"
        );
        assert_eq!(
            Name::Marker(|| "app::reply::__traced_spawn_here").resolve(),
            "app::reply"
        );
    }

    #[test]
    fn type_arguments_of_a_generic_impl_are_left_out() {
        assert_eq!(
            fn_path("app::Worker<_>::process::__traced_spawn_here"),
            "app::Worker::process"
        );
        assert_eq!(
            fn_path("app::Pool<alloc::vec::Vec<u8>, _>::run::__traced_spawn_here"),
            "app::Pool::run"
        );
        // A qualified path keeps its angle brackets.
        assert_eq!(
            fn_path("<app::Worker as app::Job>::run::__traced_spawn_here"),
            "<app::Worker as app::Job>::run"
        );
    }

    #[test]
    fn a_default_method_is_named_after_the_implementing_type() {
        let name = |marker, self_type| Name::Method(marker, self_type).resolve();
        // A trait's default method.
        assert_eq!(
            name(|| "app::Job::run::__traced_spawn_here", || "app::Worker"),
            "<app::Worker as app::Job>::run"
        );
        assert_eq!(
            name(|| "app::Job::run::__traced_spawn_here", || "app::Pool<u8>"),
            "<app::Pool as app::Job>::run"
        );
        // An inherent method, generic or not, and a trait impl's own method keep their path.
        assert_eq!(
            name(|| "app::Worker::run::__traced_spawn_here", || "app::Worker"),
            "app::Worker::run"
        );
        assert_eq!(
            name(
                || "app::Pool<_>::run::__traced_spawn_here",
                || "app::Pool<alloc::vec::Vec<u8>>"
            ),
            "app::Pool::run"
        );
        assert_eq!(
            name(
                || "<app::Worker as app::Job>::own::__traced_spawn_here",
                || "app::Worker"
            ),
            "<app::Worker as app::Job>::own"
        );
    }

    #[test]
    fn another_last_segment_is_dropped_too() {
        assert_eq!(fn_path("app::reply::here"), "app::reply");
        assert_eq!(fn_path("here"), "here");
    }

    #[test]
    fn a_given_name_is_kept() {
        assert_eq!(Name::Given("slack.reply".into()).resolve(), "slack.reply");
    }
}
