//! The `#[traced_spawn]` attribute macro of [traced-spawn].
//!
//! Use it through the runtime crate, which re-exports it: `use traced_spawn::traced_spawn;`.
//! This crate only parses, validates and rewrites the function; every runtime behaviour lives in
//! `traced_spawn::__private`, which the expansion calls by absolute path.
//!
//! [traced-spawn]: https://docs.rs/traced-spawn

mod args;
mod borrows;
mod checks;
mod errors;
mod expand;
mod item;
mod params;
mod plan;

#[cfg(test)]
mod tests;

/// Runs the body of a function on another thread or task inside a continuation of the caller's
/// Sentry trace.
///
/// A sync fn returns `std::thread::JoinHandle<R>` and runs on a new std thread; an async fn loses
/// `async`, is spawned with `tokio::spawn` when it is called and returns
/// `tokio::task::JoinHandle<R>`. `R` is the written return type.
///
/// ```ignore
/// use traced_spawn::traced_spawn;
///
/// #[traced_spawn(name = "slack.reply", err)]
/// fn send_reply(channel: String, text: String) -> Result<(), std::io::Error> {
///     // runs on a new thread, in the caller's trace
///     Ok(())
/// }
///
/// let handle = send_reply("C1".to_owned(), "hi".to_owned());
/// handle.join().unwrap().unwrap();
/// ```
///
/// Options (any order, each at most once): `name = "..."`, `op = "..."`,
/// `thread_name = "..."`, `blocking`, `local`, `rayon`, `spawner = Type`, `err`,
/// `crate = path`. See the `traced_spawn` crate documentation for their meaning.
#[proc_macro_attribute]
pub fn traced_spawn(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand::expand(attr.into(), item.into()).into()
}
