//! Keep offloaded threads and tokio tasks in the caller's Sentry trace.
//!
//! A web handler that answers at once and moves the slow work to another thread or task loses
//! that work from its trace: the new thread or task does not see the caller's hub or active span.
//! `traced-spawn` captures the caller's trace context when the work is spawned and runs the work as
//! a **continuation transaction** (same trace id, parent = the caller's active span, same sampling
//! decision) in a hub forked from the caller's.
//!
//! ```
//! use traced_spawn::traced_spawn;
//!
//! #[traced_spawn]
//! fn send_generated_response(channel: String, question: String) -> Result<usize, std::fmt::Error> {
//!     // runs on a new std thread, inside a continuation transaction
//!     Ok(channel.len() + question.len())
//! }
//!
//! let handle: std::thread::JoinHandle<Result<usize, std::fmt::Error>> =
//!     send_generated_response("C1".into(), "why?".into());
//! assert_eq!(handle.join().unwrap(), Ok(6));
//! ```
//!
//! Without the macro: [`Builder`] spawns or runs a continuation, [`TraceContext`] captures a
//! context to continue later (in a pool worker, a channel consumer), [`Continued`] wraps a future.
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
#![warn(missing_docs)]

mod builder;
/// Prints traces as trees in the terminal, for development (feature `console`).
#[cfg(feature = "console")]
pub mod console;
mod context;
mod continuation;
mod future;
mod propagation;
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
pub use future::Continued;
pub use propagation::{
    HeaderError, BAGGAGE_HEADER, SENTRY_TRACE_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER,
};
#[cfg(feature = "rayon")]
pub use rayon_handle::RayonHandle;
pub use spawn::{Spawn, SpawnFuture};
pub use verdict::{AlwaysOk, Classifier, ErrIsCaptured, ErrIsFailure, Verdict};

/// Rewrites a function so that calling it spawns its body as a continuation of the caller's trace
/// and returns the join handle at once.
///
/// Options, any order, each at most once: `name = "..."`, `op = "..."`, `thread_name = "..."`,
/// `blocking`, `local`, `rayon`, `spawner = Type`, `err`, `crate = path` (see the README's table).
///
/// ```
/// use traced_spawn::traced_spawn;
///
/// #[traced_spawn(name = "bot.reply", err)]
/// fn reply(channel: String) -> Result<String, std::fmt::Error> {
///     Ok(format!("posted to {channel}"))
/// }
///
/// #[traced_spawn]
/// async fn typing(channel: String) -> usize {
///     channel.len()
/// }
///
/// assert_eq!(reply("C1".into()).join().unwrap(), Ok("posted to C1".to_owned()));
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// assert_eq!(rt.block_on(async { typing("C1".into()).await.unwrap() }), 2);
/// ```
pub use traced_spawn_macros::traced_spawn;
