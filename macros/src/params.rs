//! Moves the arguments into the spawned body.
//!
//! A closure (2021 edition) captures only what the body uses, so an argument the body never
//! names, such as `_permit: OwnedSemaphorePermit`, would be dropped when the call returns instead
//! of when the body ends. The body therefore starts by rebinding every argument, like rustc
//! does for `async fn`: `let x = x;` for a plain binding (the user's tokens, so `unused_variables`
//! and `unused_mut` still point at the parameter), `let __traced_spawn_argN = __traced_spawn_argN;
//! let PATTERN = __traced_spawn_argN;` for a pattern, `let _ = &self;` for the receiver.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens as _};
use syn::spanned::Spanned as _;
use syn::{Attribute, FnArg, Pat, Signature};

pub(crate) struct Params {
    /// The outer fn's parameters; a pattern is replaced by a hidden binding.
    pub(crate) inputs: Vec<TokenStream>,
    /// One `assert_arg` call per parameter, spanned at it, so a non-`Send` or non-`'static`
    /// argument is reported there.
    pub(crate) checks: Vec<TokenStream>,
    /// The first statements of the spawned body.
    pub(crate) bindings: Vec<TokenStream>,
}

/// `check` is the runtime's per-argument check: `assert_arg` (`Send + 'static`), or
/// `assert_local_arg` (`'static`) for `local`, whose task stays on the calling thread.
///
/// `spawner`: a parameter named by `spawner = ...`, which the spawn call takes instead of the body.
pub(crate) fn lower(sig: &Signature, check: &TokenStream, spawner: Option<&Ident>) -> Params {
    let mut params = Params {
        inputs: Vec::new(),
        checks: Vec::new(),
        bindings: Vec::new(),
    };
    for (index, input) in sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(receiver) => {
                let self_token = &receiver.self_token;
                params.inputs.push(receiver.to_token_stream());
                params.checks.push(quote_spanned! {self_token.span=>
                    #check(&#self_token);
                });
                let glue = Span::mixed_site().located_at(self_token.span);
                params.bindings.push(quote_spanned! {glue=>
                    let _ = &#self_token;
                });
            }
            FnArg::Typed(typed) => {
                let ty = &typed.ty;
                let colon = &typed.colon_token;
                let outer_attrs = typed.attrs.iter().filter(|attr| !is_lint(attr));
                let check_attrs: Vec<_> = typed.attrs.iter().filter(|attr| is_cfg(attr)).collect();
                let let_attrs: Vec<_> = typed
                    .attrs
                    .iter()
                    .filter(|attr| is_cfg(attr) || is_lint(attr))
                    .collect();
                match &*typed.pat {
                    Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                        let ident = &pat.ident;
                        let mutability = &pat.mutability;
                        // Uses of the argument by the glue: resolved like the user's code,
                        // located at the parameter, but marked as generated so that lints on
                        // uses (`clippy::used_underscore_binding` for `_permit`) stay quiet.
                        let glue = Span::call_site().located_at(ident.span());
                        let mut argument = ident.clone();
                        argument.set_span(glue);
                        params
                            .inputs
                            .push(quote!(#(#outer_attrs)* #ident #colon #ty));
                        if spawner == Some(ident) {
                            continue;
                        }
                        params.checks.push(quote_spanned! {glue=>
                            #(#check_attrs)*
                            #check(&#argument);
                        });
                        params.bindings.push(quote! {
                            #(#let_attrs)*
                            let #mutability #ident = #argument;
                        });
                    }
                    pat => {
                        let glue = Span::mixed_site().located_at(pat.span());
                        let hidden = format_ident!("__traced_spawn_arg{}", index, span = glue);
                        params
                            .inputs
                            .push(quote!(#(#outer_attrs)* #hidden #colon #ty));
                        params.checks.push(quote_spanned! {glue=>
                            #(#check_attrs)*
                            #check(&#hidden);
                        });
                        params.bindings.push(quote_spanned! {glue=>
                            #(#let_attrs)*
                            let #hidden = #hidden;
                            #(#let_attrs)*
                            let #pat = #hidden;
                        });
                    }
                }
            }
        }
    }
    params
}

fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg")
}

/// Lint attributes move to the body's rebinding, where the lints now fire.
fn is_lint(attr: &Attribute) -> bool {
    ["allow", "warn", "deny", "forbid", "expect"]
        .iter()
        .any(|lint| attr.path().is_ident(lint))
}
