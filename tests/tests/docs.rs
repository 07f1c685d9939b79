//! The documentation of `#[traced_spawn]` has one text: the macro crate's `src/options.md`, shown
//! on the attribute, and its copy in the runtime crate's root, where docs.rs users start. Each
//! crate is published on its own, so each carries the file; this keeps them the same.

#[test]
fn attribute_docs_are_the_same_in_both_crates() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let macro_docs = std::fs::read_to_string(format!("{root}/macros/src/options.md")).unwrap();
    let crate_docs =
        std::fs::read_to_string(format!("{root}/runtime/src/docs/traced_spawn.md")).unwrap();
    assert!(
        macro_docs == crate_docs,
        "runtime/src/docs/traced_spawn.md differs from macros/src/options.md: copy the macro's \
         file over it"
    );
}
