#![doc = include_str!("docs/crate.md")]
#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly rustdoc): each feature-gated item is marked with the feature it
// needs, from its `#[cfg]`.
#![cfg_attr(docsrs, feature(doc_cfg))]

// `#[traced_spawn]` inside this crate names it as its users do.
extern crate self as traced_spawn;

#[cfg(feature = "apalis")]
pub mod apalis;
mod builder;
mod carried;
pub mod classify;
/// Local viewing, for development (feature `console`): traces printed as trees with a time
/// waterfall and their logs; sent to Spotlight with `SENTRY_SPOTLIGHT`.
#[cfg(feature = "console")]
pub mod console;
mod context;
mod continuation;
mod continue_trace;
pub mod data;
mod flush;
mod future;
pub mod header;
mod ids;
mod monitor;
#[cfg(feature = "nats")]
pub mod nats;
pub mod op;
#[cfg(feature = "opentelemetry")]
pub mod opentelemetry;
mod pending;
mod propagation;
pub mod queue;
#[cfg(feature = "rayon")]
mod rayon_handle;
#[cfg(feature = "reqwest")]
pub mod reqwest;
mod spawn;
#[cfg(feature = "tokio")]
mod tokio_runtime;
#[cfg(feature = "tracing")]
pub mod tracing;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use builder::Builder;
pub use context::TraceContext;
pub use continue_trace::ContinueTrace;
pub use flush::{flush, flush_blocking, Flush};
pub use future::Continued;
#[cfg(feature = "stream")]
pub use future::ContinuedStream;
pub use propagation::HeaderError;
#[cfg(feature = "rayon")]
pub use rayon_handle::RayonHandle;
pub use spawn::{in_current_trace, Spawn, SpawnFuture};

#[doc(inline)]
#[doc = include_str!("docs/traced_spawn.md")]
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
///         .transport(sentry::test::TestTransport::new())
///         .traces_sample_rate(1.0),
/// );
/// assert!(sentry::Hub::current().client().is_some());
/// ```
///
/// `cargo tree -i sentry` lists one version when they match; two lines with different minor
/// versions are the two-hubs case.
pub use sentry;
