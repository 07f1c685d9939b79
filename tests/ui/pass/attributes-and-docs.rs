// The expansion must add no warning of its own.
#![deny(warnings)]

use traced_spawn::traced_spawn;

/// Doc comments and attributes stay on the rewritten fn.
#[traced_spawn]
#[inline]
#[must_use = "join the handle to get the answer"]
pub fn documented(value: u32) -> u32 {
    #![allow(clippy::let_and_return)]
    let doubled = value * 2;
    doubled
}

pub mod inner {
    use traced_spawn::traced_spawn;

    #[traced_spawn]
    pub(crate) fn visible(value: u32) -> u32 {
        value
    }
}

#[traced_spawn]
#[cfg(not(test))]
fn kept_by_cfg() -> bool {
    true
}

// Parameter attributes: `cfg` removes the parameter everywhere, lint attributes apply where
// the argument is bound inside the body.
#[traced_spawn]
fn parameter_attributes(
    #[cfg(test)] removed: u32,
    #[expect(unused_variables)] unused: u32,
    #[allow(unused_mut)] mut kept: u32,
) -> u32 {
    kept
}

#[traced_spawn]
#[allow(clippy::needless_pass_by_value)]
unsafe fn unsafe_fn(value: u32) -> u32 {
    value
}

fn main() {
    assert_eq!(documented(2).join().unwrap(), 4);
    assert_eq!(inner::visible(3).join().unwrap(), 3);
    assert!(kept_by_cfg().join().unwrap());
    assert_eq!(parameter_attributes(1, 2).join().unwrap(), 2);
    // SAFETY: `unsafe_fn` has no safety requirement.
    assert_eq!(unsafe { unsafe_fn(5) }.join().unwrap(), 5);
}
