//! Compile-time behaviour of `#[traced_spawn]`: every supported shape compiles and runs, every
//! misuse is an error with a precise span (the expected output sits beside each case).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("ui/pass/*.rs");
    cases.compile_fail("ui/fail/*.rs");
}
