//! Checks that the function can be rewritten: its signature (nothing borrowed from the caller,
//! no `const`, ABI or `...`, an output a handle can carry) and the attributes around it (applied
//! twice, `#[instrument]` below it, an `#[async_trait]` method).
//!
//! Every message says what to write instead. Checks collect into [`Errors`] and report how much
//! of the rewrite is still possible, so the call sites keep type-checking.

use proc_macro2::TokenStream;
use quote::ToTokens as _;
use syn::ext::IdentExt as _;
use syn::visit::{self, Visit};
use syn::{Attribute, FnArg, Pat, PatIdent, ReturnType, Signature, Type};

use crate::borrows::{self, Borrow};
use crate::errors::Errors;

/// How much of the rewrite the signature allows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Rewrite {
    /// Rewrite and spawn.
    Full,
    /// Rewrite the signature, but the body is only type-checked, never spawned: the signature
    /// has an error that spawning would only repeat in worse words.
    Stub,
    /// Keep the item as written: not even the rewritten signature would be valid.
    Keep,
}

/// Checks what the signature may contain; reports each problem at its token.
pub(crate) fn signature(sig: &Signature, errors: &mut Errors) -> Rewrite {
    let mut found = Errors::default();
    check_header(sig, &mut found);
    check_inputs(sig, &mut found);
    let mut rewrite = if found.is_empty() {
        Rewrite::Full
    } else {
        Rewrite::Stub
    };
    if let ReturnType::Type(_, ty) = &sig.output {
        if let Type::Never(never) = strip_parens(ty) {
            found.push(syn::Error::new_spanned(
                never,
                "`!` cannot be the output of a JoinHandle: write `-> ()` (the body may still \
                 loop forever) or `-> std::convert::Infallible`",
            ));
            rewrite = Rewrite::Keep;
        } else if let Type::TraitObject(object) = strip_parens(ty) {
            found.push(syn::Error::new_spanned(
                object,
                "a trait object has no size known at compile time and cannot be returned by \
                 value: return `Box<dyn ...>` (or `impl Trait`)",
            ));
            rewrite = Rewrite::Keep;
        } else {
            check_output(ty, &mut found);
            if !found.is_empty() {
                rewrite = Rewrite::Stub;
            }
            // A stubbed body cannot define a hidden `impl Trait` type.
            if rewrite == Rewrite::Stub && contains_impl_trait(ty) {
                rewrite = Rewrite::Keep;
            }
        }
    }
    errors.extend(found);
    rewrite
}

/// What the caller is told about where the body runs.
fn runs(sig: &Signature) -> &'static str {
    if sig.asyncness.is_some() {
        "the body runs in another task"
    } else {
        "the body runs on another thread"
    }
}

/// `const`, the ABI and `...`: things a spawning fn cannot be.
fn check_header(sig: &Signature, errors: &mut Errors) {
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            "a `const fn` cannot spawn a thread or task: remove `const`",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "#[traced_spawn] cannot rewrite an `extern` fn: the rewritten fn returns a \
             JoinHandle, which has no foreign ABI; remove the `extern` ABI and call this fn \
             from a separate `extern` wrapper",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "a variadic fn cannot be spawned: its `...` arguments cannot be moved to another \
             thread; take the values as an owned parameter such as a `Vec`",
        ));
    }
}

/// Every argument moves to the body, which outlives the call: nothing may borrow.
fn check_inputs(sig: &Signature, errors: &mut Errors) {
    let runs = runs(sig);
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                let borrowed = match &receiver.reference {
                    Some((_, lifetime)) => lifetime
                        .as_ref()
                        .is_none_or(|lifetime| lifetime.ident != "static"),
                    None => !borrows::find(&receiver.ty).is_empty(),
                };
                if borrowed {
                    let written = match (&receiver.reference, &receiver.mutability) {
                        (Some(_), Some(_)) => "`&mut self` borrows",
                        (Some(_), None) => "`&self` borrows",
                        (None, _) => "this receiver borrows",
                    };
                    errors.push(syn::Error::new_spanned(
                        receiver,
                        format!(
                            "{written} the receiver only until the call returns, but {runs} \
                             after the call returns: take `self` by value, or \
                             `self: Arc<Self>` to share it"
                        ),
                    ));
                }
            }
            FnArg::Typed(typed) => {
                let who = if let Pat::Ident(pat) = &*typed.pat {
                    format!("parameter `{}`", pat.ident.unraw())
                } else {
                    "this parameter".to_owned()
                };
                for borrow in borrows::find(&typed.ty) {
                    errors.push(borrow_error(&borrow, &who, runs));
                }
                for by_ref in ref_bindings(&typed.pat) {
                    errors.push(syn::Error::new_spanned(
                        by_ref,
                        format!(
                            "`ref` binds a reference to the argument, which is gone when the \
                             call returns, but {runs} after the call returns: bind by value \
                             (remove `ref`)"
                        ),
                    ));
                }
            }
        }
    }
}

/// The output reaches the caller through the handle, after the call: it may not borrow.
fn check_output(ty: &Type, errors: &mut Errors) {
    for borrow in borrows::find(ty) {
        errors.push(match borrow {
            Borrow::Reference(reference) => syn::Error::new_spanned(
                reference,
                "the return value reaches the caller through the JoinHandle after the call has \
                 returned, so it cannot be a borrowed reference: return an owned value or a \
                 `&'static` reference",
            ),
            Borrow::Lifetime(lifetime) => syn::Error::new_spanned(
                lifetime,
                format!(
                    "the return value reaches the caller through the JoinHandle after the call \
                     has returned, so it cannot borrow for `{lifetime}`: return an owned value \
                     or one that borrows for `'static`"
                ),
            ),
        });
    }
}

fn borrow_error(borrow: &Borrow<'_>, who: &str, runs: &str) -> syn::Error {
    match borrow {
        Borrow::Reference(reference) => syn::Error::new_spanned(
            reference,
            format!(
                "{who} borrows from the caller, but {runs} after the call returns: take an owned \
                 value (e.g. `String` instead of `&str`, `Vec<T>` instead of `&[T]`, `Arc<T>` \
                 instead of `&T`) or a `&'static` reference"
            ),
        ),
        Borrow::Lifetime(lifetime) => {
            let lifetime_name = if lifetime.ident == "_" {
                "the elided lifetime `'_`".to_owned()
            } else {
                format!("`{lifetime}`")
            };
            syn::Error::new_spanned(
                lifetime,
                format!(
                    "{who} borrows for {lifetime_name}, but {runs} after the call returns: take \
                     an owned value (e.g. `Cow<'static, str>`, `String`) or one that borrows \
                     for `'static`"
                ),
            )
        }
    }
}

/// The `ref` keywords of a parameter pattern.
fn ref_bindings(pat: &Pat) -> Vec<&syn::token::Ref> {
    struct Refs<'a>(Vec<&'a syn::token::Ref>);
    impl<'a> Visit<'a> for Refs<'a> {
        fn visit_pat_ident(&mut self, ident: &'a PatIdent) {
            if let Some(by_ref) = &ident.by_ref {
                self.0.push(by_ref);
            }
            visit::visit_pat_ident(self, ident);
        }
    }
    let mut refs = Refs(Vec::new());
    refs.visit_pat(pat);
    refs.0
}

pub(crate) fn strip_parens(ty: &Type) -> &Type {
    match ty {
        Type::Paren(paren) => strip_parens(&paren.elem),
        Type::Group(group) => strip_parens(&group.elem),
        other => other,
    }
}

/// Whether the written output has `impl Trait` in it.
pub(crate) fn contains_impl_trait_output(output: &ReturnType) -> bool {
    matches!(output, ReturnType::Type(_, ty) if contains_impl_trait(ty))
}

/// Whether `impl Trait` appears anywhere in the type (it cannot be written inside the body).
pub(crate) fn contains_impl_trait(ty: &Type) -> bool {
    // A token scan is enough: `impl` is a keyword and only means `impl Trait` in a type.
    fn scan(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tree| match tree {
            proc_macro2::TokenTree::Ident(ident) => ident == "impl",
            proc_macro2::TokenTree::Group(group) => scan(group.stream()),
            _ => false,
        })
    }
    scan(ty.to_token_stream())
}

/// Checks the attributes left below `#[traced_spawn]`: a second `#[traced_spawn]` is reported and
/// removed (the fn is rewritten once), `#[instrument]` is reported where it stands.
pub(crate) fn attributes(attrs: &mut Vec<Attribute>, errors: &mut Errors) {
    attrs.retain(|attr| {
        let Some(name) = attr.path().segments.last().map(|segment| &segment.ident) else {
            return true;
        };
        if name == "traced_spawn" {
            errors.push(syn::Error::new_spanned(
                attr,
                "#[traced_spawn] is applied twice: the call would spawn a thread or task that \
                 only spawns another one; remove this one",
            ));
            return false;
        }
        if name == "instrument" {
            errors.push(syn::Error::new_spanned(
                attr,
                "`#[instrument]` below #[traced_spawn] instruments the call that spawns, not the \
                 work: it would time only the spawning. Move it above `#[traced_spawn]`, so its \
                 span is entered inside the continuation, around the body",
            ));
        }
        true
    });
}

/// `dyn Error` (and the other std traits without a `Send` supertrait) in the output of a fn
/// whose output comes back from another thread or task, written without `+ Send`: it can never
/// be `Send`, and rustc would say so inside the glue. Reported at the trait object, with the fix.
pub(crate) fn non_send_output(output: &ReturnType, errors: &mut Errors) -> bool {
    struct Objects<'a>(Vec<&'a syn::TypeTraitObject>);
    impl<'a> Visit<'a> for Objects<'a> {
        fn visit_type_trait_object(&mut self, object: &'a syn::TypeTraitObject) {
            self.0.push(object);
            visit::visit_type_trait_object(self, object);
        }
    }
    /// std traits that are not `Send` themselves, by their last path segment.
    const NOT_SEND: &[&str] = &[
        "Error", "Any", "Debug", "Display", "Fn", "FnMut", "FnOnce", "Future", "Iterator",
    ];
    let ReturnType::Type(_, ty) = output else {
        return false;
    };
    let mut objects = Objects(Vec::new());
    objects.visit_type(ty);
    let mut found = false;
    for object in objects.0 {
        let traits: Vec<&syn::Path> = object
            .bounds
            .iter()
            .filter_map(|bound| match bound {
                syn::TypeParamBound::Trait(bound) => Some(&bound.path),
                _ => None,
            })
            .collect();
        let is = |name: &str| {
            traits
                .iter()
                .any(|path| path.segments.last().is_some_and(|last| last.ident == name))
        };
        let Some(first) = traits.first().and_then(|path| path.segments.last()) else {
            continue;
        };
        if is("Send") || !NOT_SEND.iter().any(|name| first.ident == name) {
            continue;
        }
        let fix = if is("Sync") {
            "+ Send"
        } else {
            "+ Send + Sync"
        };
        errors.push(syn::Error::new_spanned(
            object,
            format!(
                "`{}` is not `Send`, but the output of this fn comes back from another thread \
                 or task: add `{fix}` (`Box<dyn std::error::Error {fix}>` takes every error \
                 `?` converts, as `anyhow::Error` does)",
                object
                    .to_token_stream()
                    .to_string()
                    .replace(" :: ", "::")
                    .replace(":: ", "::")
            ),
        ));
        found = true;
    }
    found
}

/// A test or the program's entry point: `#[test]`, `#[tokio::test]` (in either order: below
/// `#[test]` the fn carries rustc's test marker, below `#[tokio::test]` its `#[test]`),
/// `#[tokio::main]` above the fn, or `fn main` (what `#[tokio::main]` leaves when it is above).
/// Their harness calls the fn as written, so it cannot return a handle.
pub(crate) fn entry_point(attrs: &[Attribute], sig: &Signature) -> Option<syn::Error> {
    const TRACE_INSIDE: &str = "put the work in a `#[traced_spawn]` fn of its own and call it \
                                from here, joining or awaiting its handle";
    for attr in attrs {
        let path = attr.path();
        let Some(last) = path.segments.last().map(|segment| &segment.ident) else {
            continue;
        };
        if last == "test" || last == "rustc_test_marker" {
            return Some(syn::Error::new_spanned(
                attr,
                format!(
                    "#[traced_spawn] cannot go on a test: the test harness calls the fn as \
                     written and expects it to run the test, but the rewritten fn only spawns \
                     its body and returns a handle; {TRACE_INSIDE}"
                ),
            ));
        }
        if last == "main" && path.segments.len() > 1 {
            return Some(syn::Error::new_spanned(
                attr,
                format!(
                    "#[traced_spawn] cannot go on the program's entry point: `main` must run \
                     the program, not return a handle to it; {TRACE_INSIDE}"
                ),
            ));
        }
    }
    let entry = sig.ident == "main" && sig.inputs.is_empty() && sig.generics.params.is_empty();
    entry.then(|| {
        syn::Error::new_spanned(
            &sig.ident,
            format!(
                "#[traced_spawn] cannot go on `main`, the program's entry point: it must run the \
                 program, not return a handle to it; {TRACE_INSIDE}"
            ),
        )
    })
}

/// A method already rewritten by `#[async_trait]` (its signature carries `'async_trait`): it
/// returns a boxed future, which the attribute cannot turn into a spawn.
pub(crate) fn async_trait_method(sig: &Signature) -> Option<syn::Error> {
    let mentions = |tokens: TokenStream| tokens.to_string().contains("'async_trait");
    let rewritten = sig
        .generics
        .lifetimes()
        .any(|param| param.lifetime.ident == "async_trait")
        || mentions(sig.output.to_token_stream());
    rewritten.then(|| {
        syn::Error::new_spanned(
            &sig.ident,
            "#[traced_spawn] cannot rewrite a method of an `#[async_trait]` impl: async-trait has \
             already turned it into a fn that returns a boxed future. Either call a free \
             `#[traced_spawn]` fn from the method, or declare the trait method as returning the \
             handle (`fn method(self) -> tokio::task::JoinHandle<R>`, no `#[async_trait]`) and put \
             #[traced_spawn] on an `async fn` in the impl",
        )
    })
}
