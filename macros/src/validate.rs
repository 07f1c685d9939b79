//! Checks that the annotated item can be spawned, and settles the options against it.
//!
//! Every message says what to write instead. Checks collect into [`Errors`] and report how much
//! of the rewrite is still possible, so the call sites keep type-checking.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::ext::IdentExt as _;
use syn::{FnArg, Item, ItemFn, LitStr, Pat, ReturnType, Signature, Type};

use crate::args::{Args, ExecutorOption};
use crate::borrows::{self, Borrow};
use crate::errors::Errors;

/// Where the body runs.
pub(crate) enum Executor {
    /// Sync fn, default: a new std thread.
    Thread,
    /// Async fn, default: `tokio::spawn`.
    Task,
    Blocking,
    Local,
    Rayon,
    Spawner(syn::Path),
}

impl Executor {
    fn default_op(&self) -> &'static str {
        match self {
            Executor::Thread => "thread",
            Executor::Task | Executor::Spawner(_) => "task",
            Executor::Blocking => "task.blocking",
            Executor::Local => "task.local",
            Executor::Rayon => "task.rayon",
        }
    }
}

/// The settled options: what the expansion generates.
pub(crate) struct Plan {
    pub(crate) executor: Executor,
    /// `None`: computed at run time from the function's path.
    pub(crate) name: Option<LitStr>,
    pub(crate) op: LitStr,
    /// Only for [`Executor::Thread`].
    pub(crate) thread_name: Option<LitStr>,
    pub(crate) krate: TokenStream,
    pub(crate) capture_err: bool,
}

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

/// Parses the item as a function, or says why it is not one.
pub(crate) fn function(item: TokenStream) -> Result<ItemFn, syn::Error> {
    if let Ok(function) = syn::parse2::<ItemFn>(item.clone()) {
        return Ok(function);
    }
    if let Ok(declaration) = syn::parse2::<syn::TraitItemFn>(item.clone()) {
        if declaration.default.is_none() {
            let sig = &declaration.sig;
            return Err(syn::Error::new_spanned(
                quote!(#sig),
                "#[traced_spawn] needs a function body: put it on the method of the impl, \
                 not on the trait's declaration",
            ));
        }
    }
    let head = match syn::parse2::<Item>(item.clone()) {
        Ok(item) => item_head(&item),
        Err(_) => item,
    };
    let message = "#[traced_spawn] can only be applied to functions";
    Err(if head.is_empty() {
        syn::Error::new(Span::call_site(), message)
    } else {
        syn::Error::new_spanned(head, message)
    })
}

/// The tokens that name an item (`struct Foo`, `impl Trait for Type`), for a short error span.
fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Const(item) => {
            let (keyword, ident) = (&item.const_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Enum(item) => {
            let (keyword, ident) = (&item.enum_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Impl(item) => {
            let (keyword, self_ty) = (&item.impl_token, &item.self_ty);
            quote!(#keyword #self_ty)
        }
        Item::Mod(item) => {
            let (keyword, ident) = (&item.mod_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Static(item) => {
            let (keyword, ident) = (&item.static_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Struct(item) => {
            let (keyword, ident) = (&item.struct_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Trait(item) => {
            let (keyword, ident) = (&item.trait_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Type(item) => {
            let (keyword, ident) = (&item.type_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Union(item) => {
            let (keyword, ident) = (&item.union_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Use(item) => item.use_token.to_token_stream(),
        Item::Macro(item) => item.mac.path.to_token_stream(),
        other => other.to_token_stream(),
    }
}

/// Settles the options against the function; a misplaced option is reported and ignored.
pub(crate) fn plan(args: Args, sig: &Signature, errors: &mut Errors) -> Plan {
    let is_async = sig.asyncness.is_some();
    let executor = match args.executor {
        None if is_async => Executor::Task,
        None => Executor::Thread,
        Some(option) => match (option.value, is_async) {
            (ExecutorOption::Local, true) => Executor::Local,
            (ExecutorOption::Blocking, false) => Executor::Blocking,
            (ExecutorOption::Rayon, false) => Executor::Rayon,
            (ExecutorOption::Spawner(path), _) => Executor::Spawner(path),
            (ExecutorOption::Blocking, true) => {
                errors.push(syn::Error::new_spanned(
                    option.tokens,
                    "`blocking` runs a sync fn on tokio's blocking pool, but this fn is async: \
                     remove `blocking` (an async fn runs with `tokio::spawn`) or make the fn sync",
                ));
                Executor::Task
            }
            (ExecutorOption::Rayon, true) => {
                errors.push(syn::Error::new_spanned(
                    option.tokens,
                    "`rayon` runs a sync fn on rayon's thread pool, but this fn is async: \
                     remove `rayon` (an async fn runs with `tokio::spawn`) or make the fn sync",
                ));
                Executor::Task
            }
            (ExecutorOption::Local, false) => {
                errors.push(syn::Error::new_spanned(
                    option.tokens,
                    "`local` spawns an async fn with `tokio::task::spawn_local`, but this fn is sync: \
                     make it an `async fn`, or remove `local` to run it on a new thread",
                ));
                Executor::Thread
            }
        },
    };

    let thread_name = match (&executor, args.thread_name) {
        (Executor::Thread, Some(thread_name)) => Some(thread_name.value),
        (Executor::Thread, None) => {
            let ident = &sig.ident;
            Some(LitStr::new(&ident.unraw().to_string(), ident.span()))
        }
        (_, None) => None,
        (executor, Some(thread_name)) => {
            let message = if is_async {
                "`thread_name` names the new std thread of a sync fn, but this async fn runs as a \
                 task on the runtime's threads: remove `thread_name`"
                    .to_owned()
            } else {
                format!(
                    "`thread_name` names the new std thread of the default executor, but with \
                     `{}` the executor chooses the thread: remove `thread_name`",
                    executor_keyword(executor)
                )
            };
            errors.push(syn::Error::new_spanned(thread_name.tokens, message));
            None
        }
    };

    let op = args
        .op
        .unwrap_or_else(|| LitStr::new(executor.default_op(), Span::call_site()));
    let krate = args
        .krate
        .map_or_else(|| quote!(::traced_spawn), |path| path.to_token_stream());
    Plan {
        executor,
        name: args.name,
        op,
        thread_name,
        krate,
        capture_err: args.err,
    }
}

fn executor_keyword(executor: &Executor) -> &'static str {
    match executor {
        Executor::Thread | Executor::Task => "the default executor",
        Executor::Blocking => "blocking",
        Executor::Local => "local",
        Executor::Rayon => "rayon",
        Executor::Spawner(_) => "spawner",
    }
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
    let mut found = Vec::new();
    let mut stack = vec![pat];
    while let Some(pat) = stack.pop() {
        match pat {
            Pat::Ident(ident) => {
                if let Some(by_ref) = &ident.by_ref {
                    found.push(by_ref);
                }
                if let Some((_, subpat)) = &ident.subpat {
                    stack.push(subpat);
                }
            }
            Pat::Tuple(tuple) => stack.extend(&tuple.elems),
            Pat::TupleStruct(tuple) => stack.extend(&tuple.elems),
            Pat::Slice(slice) => stack.extend(&slice.elems),
            Pat::Struct(structure) => stack.extend(structure.fields.iter().map(|f| &*f.pat)),
            Pat::Paren(paren) => stack.push(&paren.pat),
            Pat::Reference(reference) => stack.push(&reference.pat),
            Pat::Type(typed) => stack.push(&typed.pat),
            Pat::Or(or) => stack.extend(&or.cases),
            _ => {}
        }
    }
    found.reverse();
    found
}

pub(crate) fn strip_parens(ty: &Type) -> &Type {
    match ty {
        Type::Paren(paren) => strip_parens(&paren.elem),
        Type::Group(group) => strip_parens(&group.elem),
        other => other,
    }
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
