//! Unit, snapshot and property tests of the expansion, on `proc_macro2` token streams.

mod expand;
mod expansions;
mod fuzz;
