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
