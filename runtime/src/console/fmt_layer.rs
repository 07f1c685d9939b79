//! Plain log lines that carry the Sentry trace: a `tracing_subscriber` fmt layer whose lines
//! start with `trace_id=… span_id=…` (feature `console-tracing`).

use std::fmt;

use tracing_core::{Event, Subscriber};
use tracing_subscriber::fmt::format::{DefaultFields, Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// A `tracing_subscriber` event format that starts each line with the Sentry `trace_id` and
/// `span_id` current where the line is logged (the active span of the current hub: inside a
/// `#[traced_spawn]` body, the continuation or a span under it; else the scope's propagation
/// context), then formats the rest as the wrapped format does.
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// let layer = tracing_subscriber::fmt::layer()
///     .event_format(traced_spawn::console::TraceIds::new(tracing_subscriber::fmt::format()));
/// let _subscriber = tracing_subscriber::registry().with(layer);
/// ```
#[derive(Debug, Clone, Default)]
pub struct TraceIds<F = Format<Full>> {
    inner: F,
}

impl<F> TraceIds<F> {
    /// Wraps `inner`, which formats each line after the ids.
    ///
    /// ```
    /// let format = traced_spawn::console::TraceIds::new(tracing_subscriber::fmt::format().compact());
    /// # let _ = format;
    /// ```
    pub fn new(inner: F) -> TraceIds<F> {
        TraceIds { inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for TraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // `sentry-trace` is `<trace id>-<span id>[-<sampled>]`.
        let sentry_trace = sentry::configure_scope(|scope| {
            scope
                .iter_trace_propagation_headers()
                .find(|(name, _)| *name == "sentry-trace")
                .map(|(_, value)| value)
        });
        if let Some(value) = sentry_trace {
            let mut ids = value.split('-');
            if let (Some(trace_id), Some(span_id)) = (ids.next(), ids.next()) {
                write!(writer, "trace_id={trace_id} span_id={span_id} ")?;
            }
        }
        self.inner.format_event(ctx, writer, event)
    }
}

/// A `tracing_subscriber` fmt layer (writing to stdout, like `fmt::layer()`) whose lines start
/// with `trace_id` and `span_id`: `fmt::layer().event_format(TraceIds::new(fmt::format()))`.
///
/// Add it next to sentry-tracing's layers; a log line written inside a `#[traced_spawn]` body then
/// carries the trace id of the request that spawned it, with no code of yours:
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// let _subscriber = tracing_subscriber::registry().with(traced_spawn::console::fmt_layer());
/// // trace_id=0f8e… span_id=9c1d… 2026-01-01T00:00:00.000000Z  INFO my_app: summarizing
/// ```
pub fn fmt_layer<S>() -> tracing_subscriber::fmt::Layer<S, DefaultFields, TraceIds>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer().event_format(TraceIds::new(tracing_subscriber::fmt::format()))
}
