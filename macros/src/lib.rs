//! The `#[traced_spawn]` attribute macro of [traced-spawn].
//!
//! Use it through the runtime crate, which re-exports it and documents it (options, semantics,
//! limits, costs): `use traced_spawn::traced_spawn;`. This crate only parses, validates and
//! rewrites the function; every runtime behaviour lives in `traced_spawn::__private`, which the
//! expansion calls by absolute path. The two crates pin each other's exact version.
//!
//! ```
//! use traced_spawn::traced_spawn;
//!
//! #[traced_spawn]
//! fn render(page: u32) -> u32 {
//!     page * 2 // on a new std thread, in a continuation of the caller's trace
//! }
//!
//! #[traced_spawn]
//! async fn fetch(page: u32) -> u32 {
//!     page + 1 // a tokio task, spawned at the call
//! }
//!
//! assert_eq!(render(21).join().unwrap(), 42);
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! assert_eq!(rt.block_on(async { fetch(1).await.unwrap() }), 2);
//! ```
//!
//! [traced-spawn]: https://docs.rs/traced-spawn

mod args;
mod borrows;
mod checks;
mod errors;
mod expand;
mod item;
mod krate;
mod params;
mod plan;

#[cfg(test)]
mod tests;

#[doc = include_str!("options.md")]
#[proc_macro_attribute]
pub fn traced_spawn(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand::expand(attr.into(), item.into()).into()
}
