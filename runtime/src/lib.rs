//! Keep offloaded threads and tokio tasks in the caller's Sentry trace.
//!
//! A web handler that answers at once and moves the slow work to another thread or task loses
//! that work from its trace: the new thread or task does not see the caller's hub or active span.
//! `traced-spawn` captures the caller's trace context when the work is spawned and runs the work as
//! a **continuation transaction** (same trace id, parent = the caller's active span, same sampling
//! decision) in a hub forked from the caller's.
//!
//! Without the macro: [`Builder`] spawns or runs a continuation, [`TraceContext`] captures a
//! context to continue later (in a pool worker, a channel consumer), [`Continued`] wraps a future.
//! Across a queue, [`queue`] writes the `queue.publish` / `queue.process` spans of Sentry's Queues
//! module around any queue.
//!
//! # What a continuation records
//!
//! | what | where |
//! |---|---|
//! | trace id, parent span id, sampling decision | the caller's active span (or, with none, the caller's propagation context) |
//! | status | `ok`; `internal_error` for a panic or a failure (see [`Verdict`]); `cancelled` for a task dropped before completion |
//! | `thread.id`, `thread.name` | the thread that ran the body (see [`THREAD_ID_KEY`], [`THREAD_NAME_KEY`]) |
//! | `spawn.queue_delay_ms` | milliseconds from the spawning call to the start of the body ([`QUEUE_DELAY_KEY`]) |
//! | origin | `auto.function.traced_spawn` ([`ORIGIN`]) |
//!
//! Argument and return values are never recorded.
//!
//! # `#[traced_spawn]`
//!
#![doc = include_str!("docs/traced_spawn.md")]
#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly rustdoc): each feature-gated item is marked with the feature it
// needs, from its `#[cfg]`.
#![cfg_attr(docsrs, feature(doc_cfg))]

// `#[traced_spawn]` inside this crate names it as its users do.
extern crate self as traced_spawn;

mod builder;
/// Local viewing, for development (feature `console`): traces printed as trees with a time
/// waterfall and their logs; sent to Spotlight with `SENTRY_SPOTLIGHT`.
#[cfg(feature = "console")]
pub mod console;
mod context;
mod continuation;
mod executors;
mod flush;
mod future;
mod pending;
mod propagation;
pub mod queue;
#[cfg(feature = "rayon")]
mod rayon_handle;
mod spawn;
mod verdict;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use builder::{Builder, OP_BLOCKING, OP_LOCAL, OP_RAYON, OP_TASK, OP_THREAD};
pub use context::TraceContext;
pub use continuation::{ORIGIN, QUEUE_DELAY_KEY, THREAD_ID_KEY, THREAD_NAME_KEY};
pub use flush::{flush, flush_blocking, Flush};
pub use future::Continued;
#[cfg(feature = "stream")]
pub use future::ContinuedStream;
pub use propagation::{
    HeaderError, BAGGAGE_HEADER, SENTRY_TRACE_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER,
};
#[cfg(feature = "rayon")]
pub use rayon_handle::RayonHandle;
pub use spawn::{in_current_trace, Spawn, SpawnFuture};
pub use verdict::{AlwaysOk, Classifier, ErrIsCaptured, ErrIsFailure, Verdict};

#[doc(inline)]
pub use traced_spawn_macros::traced_spawn;

/// The `sentry` crate this crate is built with (0.49).
///
/// An application must use the same minor version of `sentry` as this crate: two minor versions
/// are two crates with a hub each, so a client bound with one is invisible to the other, and
/// nothing is traced (no error, no warning). Depend on `sentry = "0.49"` (cargo then builds one
/// `sentry`), or use this re-export instead of a `sentry` dependency of your own:
///
/// ```
/// use traced_spawn::sentry;
///
/// let _guard = sentry::init(
///     sentry::ClientOptions::new()
///         .dsn("https://public@o1.ingest.sentry.io/1")
///         .traces_sample_rate(1.0),
/// );
/// assert!(sentry::Hub::current().client().is_some());
/// ```
///
/// `cargo tree -i sentry` lists one version when they match; two lines with different minor
/// versions are the two-hubs case.
pub use sentry;
