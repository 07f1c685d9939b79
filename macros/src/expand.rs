//! Code generation.
//!
//! The rewritten fn keeps the user's tokens (attributes, visibility, `fn`, name, generics,
//! parentheses, body braces), so lints and errors still point at what the user wrote. Every path
//! is absolute and every generated binding is `__traced_spawn_*` with mixed-site hygiene.
//!
//! Input:
//!
//! ```ignore
//! #[traced_spawn(err)]
//! async fn reply(channel: String) -> Result<(), BotError> {
//!     post(&channel).await
//! }
//! ```
//!
//! Output (paths shortened; `__private` is `::traced_spawn::__private`):
//!
//! ```ignore
//! #[track_caller] // tokio executors: a missing runtime panics at the caller's line
//! fn reply(channel: String) -> __private::tokio::task::JoinHandle<Result<(), BotError>> {
//!     __private::assert_arg(&channel); // `Send + 'static`, reported at the parameter
//!     let work = __private::task_future(async move { // boxed in debug builds
//!         if let Some(ret) = None::<Result<(), BotError>> { return ret; } // the output type
//!         let channel = channel; // every argument moves into the body
//!         // The user's statements: tail temporaries drop before the arguments.
//!         let out = { post(&channel).await };
//!         out
//!     });
//!     // The rule on the output, typed by the work (an `impl Trait` output is known there).
//!     let rule = __private::future_rule(&work, |output: &Result<(), BotError>| {
//!         (&&&&&__private::Probe(output)).__traced_spawn_verdict(true)
//!     });
//!     __private::Spec::builder({
//!         fn here() -> &'static str { type_name_of_val(&here) } // the fn's path, when needed
//!         static SPEC: __private::Spec = __private::Spec {
//!             name: __private::Name::Marker(here),
//!             op: None,          // the runtime's default for the executor
//!             thread_name: None, // the runtime's default: the fn's name
//!             fn_name: "reply",
//!             child: false,
//!             monitor: None,     // `monitor = "slug"`: Some(MonitorSpec { slug, schedule, .. })
//!         };
//!         &SPEC // one pointer per call
//!     })
//!     .classify(rule)
//!     .spawn_task(work) // `Builder`'s method: the one launch path, with `Builder`'s bounds
//! }
//! ```

use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens as _};
use syn::ext::IdentExt as _;
use syn::spanned::Spanned as _;
use syn::{ReturnType, Signature, Token};

use crate::args;
use crate::checks::{self, Rewrite};
use crate::errors::Errors;
use crate::item::{self, TracedFn};
use crate::krate;
use crate::params::{self, Params};
use crate::plan::{self, Executor, Plan};

/// Expands `#[traced_spawn(attr)] item`. Never panics: on an error it still emits a function
/// with the signature the call sites expect (or the item as written), followed by the errors.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let mut args = args::parse(attr, &mut errors);
    let mut function = match item::parse(item.clone()) {
        Ok(function) => function,
        Err(error) => {
            errors.push(error);
            return quote!(#item #errors);
        }
    };
    // Items the attribute cannot be on: the item stays as written (its other attributes still
    // expand as they would) and the one error says what to do.
    if let Some(error) = checks::async_trait_method(&function.sig)
        .or_else(|| checks::entry_point(&function.attrs, &function.sig))
    {
        errors.push(error);
        return quote!(#item #errors);
    }
    let krate = match krate::path(args.krate.take()) {
        Ok(krate) => krate,
        Err(error) => {
            errors.push(error);
            return quote!(#item #errors);
        }
    };
    checks::attributes(&mut function.attrs, &mut errors);
    let plan = plan::plan(args, &function.sig, &mut errors);
    let mut rewrite = checks::signature(&function.sig, &mut errors);
    if plan.executor.sends_output() && checks::non_send_output(&function.sig.output, &mut errors) {
        rewrite = match rewrite {
            Rewrite::Full if !checks::contains_impl_trait_output(&function.sig.output) => {
                Rewrite::Stub
            }
            Rewrite::Full | Rewrite::Keep => Rewrite::Keep,
            Rewrite::Stub => Rewrite::Stub,
        };
    }
    let function = match rewrite {
        Rewrite::Full => Generator::new(&function, &plan, &krate).spawning_fn(),
        Rewrite::Stub => Generator::new(&function, &plan, &krate).stub_fn(),
        Rewrite::Keep => item,
    };
    quote!(#function #errors)
}

struct Generator<'a> {
    function: &'a TracedFn,
    plan: &'a Plan,
    /// `#krate::__private`
    private: TokenStream,
    params: Params,
    /// The written return type, `()` when none is written.
    ret: TokenStream,
    /// `-> impl Trait`: the hidden type cannot be named inside the body, so it is inferred.
    ret_is_opaque: bool,
    /// Where the return type is written (the call site when it is not): the handle type and the
    /// executor's bounds on the output are reported there.
    ret_span: Span,
}

impl<'a> Generator<'a> {
    fn new(function: &'a TracedFn, plan: &'a Plan, krate: &TokenStream) -> Self {
        let private = quote!(#krate::__private);
        // A local task, or a future the caller spawns where it wants, need not be `Send`.
        let check = if let Executor::Local | Executor::Future = plan.executor {
            quote!(#private::assert_local_arg)
        } else {
            quote!(#private::assert_arg)
        };
        let moved = match &plan.executor {
            Executor::Spawner(spawner) => spawner.moved_param.as_ref(),
            _ => None,
        };
        let params = params::lower(&function.sig, &check, moved);
        let (ret, ret_is_opaque, ret_span) = match &function.sig.output {
            ReturnType::Type(_, ty) => (
                ty.to_token_stream(),
                checks::contains_impl_trait(ty),
                ty.span(),
            ),
            ReturnType::Default => (quote!(()), false, Span::call_site()),
        };
        Generator {
            function,
            plan,
            private,
            params,
            ret,
            ret_is_opaque,
            ret_span,
        }
    }

    /// The function that captures the trace context and spawns the body: the fn's
    /// `__private::Spec` makes the `Builder` of the call, whose spawn method for the executor
    /// (the one launch path, with `Builder`'s own bounds and defaults) captures and spawns.
    fn spawning_fn(&self) -> TokenStream {
        let private = &self.private;
        let spec = self.spec();
        let body = self.body();
        let verdict = self.verdict();
        let mixed = Span::mixed_site();
        let work = Ident::new("__traced_spawn_work", mixed);
        let rule = Ident::new("__traced_spawn_rule", mixed);
        let is_async = self.is_async();
        // Debug builds box the body (`__private::job` / `task_future` / `local_future`): the
        // spawn path is then instantiated once per output type, not once per annotated fn.
        let (method, boxed) = match &self.plan.executor {
            Executor::Thread => ("spawn_thread", Some("job")),
            Executor::Task => ("spawn_task", Some("task_future")),
            Executor::Blocking => ("spawn_blocking", Some("job")),
            Executor::Local => ("spawn_local", Some("local_future")),
            Executor::Rayon => ("spawn_rayon", Some("job")),
            Executor::Future => ("bind", None),
            Executor::Spawner(_) if is_async => ("spawn_future_on", Some("task_future")),
            Executor::Spawner(_) => ("spawn_on", Some("job")),
        };
        let work_value = match boxed {
            Some(boxing) => {
                let boxing = Ident::new(boxing, Span::call_site());
                quote!(#private::#boxing(#body))
            }
            None => body,
        };
        // The rule's closure is checked once the output type is known from the work (an
        // `impl Trait` output is only known there).
        let typed_by = if is_async {
            quote!(#private::future_rule)
        } else {
            quote!(#private::job_rule)
        };
        // The executor's bounds on the output (`R: Send + 'static`) are reported at the call:
        // locate the method and its parentheses at the return type. The arguments have their
        // own check at each parameter.
        let at_output = Span::call_site().located_at(self.ret_span);
        let method = Ident::new(method, at_output);
        let (spawner, arguments) = if let Executor::Spawner(spawner) = &self.plan.executor {
            // `EXPR` is evaluated first, before the arguments move into the body; a parameter
            // named as the spawner is moved out of the way for that.
            let ty = &spawner.ty;
            let value = &spawner.value;
            let local = Ident::new("__traced_spawn_spawner", mixed);
            let bind = match &spawner.moved_param {
                Some(param) => quote!(let #local = #param; let #local = &#local;),
                None => quote!(let #local = &(#value);),
            };
            let generics = if is_async {
                quote!(::<#ty, _>)
            } else {
                quote!(::<#ty, _, _>)
            };
            let generics = respan(generics, at_output);
            (bind, (generics, quote!(#local, #work)))
        } else {
            (TokenStream::new(), (TokenStream::new(), quote!(#work)))
        };
        let (generics, arguments) = arguments;
        let mut arguments = Group::new(Delimiter::Parenthesis, arguments);
        arguments.set_span(at_output);
        let checks = &self.params.checks;
        self.wrap(&quote! {
            #(#checks)*
            #spawner
            let #work = #work_value;
            let #rule = #typed_by(&#work, #verdict);
            #private::Spec::builder(#spec).classify(#rule).#method #generics #arguments
        })
    }

    /// The rewritten signature around a body that is type-checked but never spawned, for a
    /// signature with an error: the call sites keep type-checking, and the error is not repeated
    /// by borrow-checker noise.
    fn stub_fn(&self) -> TokenStream {
        let body = self.body();
        self.wrap(&quote! {
            let _ = #body;
            ::core::unreachable!("#[traced_spawn] reported an error for this function")
        })
    }

    fn is_async(&self) -> bool {
        self.function.sig.asyncness.is_some()
    }

    /// `#attrs #vis fn ident<..>(inputs) -> Handle<R> where .. { #inner_attrs #statements }`
    fn wrap(&self, statements: &TokenStream) -> TokenStream {
        let TracedFn {
            attrs, vis, sig, ..
        } = self.function;
        let signature = self.signature(sig);
        // The user's brace spans: with the user's `fn` they make the item's span the user's
        // code, so item lints such as `dead_code` still fire.
        // Inner attributes (`#![allow(..)]`) stay first in the fn's own body.
        let inner_attrs = &self.function.body.inner_attrs;
        let mut body = TokenStream::new();
        self.function.body.brace.surround(&mut body, |tokens| {
            tokens.extend(quote!(#(#inner_attrs)* #statements));
        });
        // A missing tokio runtime panics in the spawn call: `#[track_caller]` puts the panic at
        // the user's call, the line to fix.
        let track_caller = (self.plan.executor.is_tokio()
            && !attrs
                .iter()
                .any(|attr| attr.path().is_ident("track_caller")))
        .then(|| quote!(#[track_caller]));
        // The one lint allowed on the user's fn: `must_use_candidate` would ask for `#[must_use]`
        // on every traced fn, but dropping the handle is how work is left running in the
        // background (the Slack-handler case), so its advice is wrong here.
        quote! {
            #(#attrs)*
            #track_caller
            #[allow(clippy::must_use_candidate)]
            #vis #signature #body
        }
    }

    /// The user's signature without `async` (and without the rejected `const`, ABI and `...`),
    /// returning the executor's handle.
    fn signature(&self, sig: &Signature) -> TokenStream {
        let Signature {
            unsafety,
            fn_token,
            ident,
            generics,
            paren_token,
            output,
            ..
        } = sig;
        let arrow = match output {
            ReturnType::Type(arrow, _) => *arrow,
            ReturnType::Default => Token![->](Span::call_site()),
        };
        let handle = self.handle();
        let where_clause = &generics.where_clause;
        let inputs = &self.params.inputs;
        let mut tokens = quote!(#unsafety #fn_token #ident #generics);
        paren_token.surround(&mut tokens, |tokens| tokens.extend(quote!(#(#inputs),*)));
        tokens.extend(quote!(#arrow #handle #where_clause));
        tokens
    }

    /// The handle type, located at the written return type: a mismatch with a trait's
    /// declaration is reported there, not at the attribute.
    fn handle(&self) -> TokenStream {
        let private = &self.private;
        let ret = &self.ret;
        let at_output = Span::call_site().located_at(self.ret_span);
        let lt = Token![<](at_output);
        let gt = Token![>](at_output);
        let (path, trait_path) = match &self.plan.executor {
            Executor::Thread => (quote!(#private::std::thread::JoinHandle), None),
            Executor::Task | Executor::Blocking | Executor::Local => {
                (quote!(#private::tokio::task::JoinHandle), None)
            }
            Executor::Rayon => (quote!(#private::RayonHandle), None),
            Executor::Future => {
                let path = respan(quote!(#private::Continued), at_output);
                let future = respan(quote!(impl ::core::future::Future<Output =), at_output);
                return quote!(#path #lt #future #ret #gt #gt);
            }
            Executor::Spawner(spawner) if self.is_async() => {
                (spawner.ty.clone(), Some(quote!(#private::SpawnFuture)))
            }
            Executor::Spawner(spawner) => (spawner.ty.clone(), Some(quote!(#private::Spawn))),
        };
        match trait_path {
            None => {
                let path = respan(path, at_output);
                quote!(#path #lt #ret #gt)
            }
            Some(trait_path) => {
                let trait_path = respan(trait_path, at_output);
                let handle = Ident::new("Handle", at_output);
                quote!(#lt #path as #trait_path #gt :: #handle #lt #ret #gt)
            }
        }
    }

    /// A reference to the fn's [`Spec`], a `static` (a call hands the glue one pointer), or, for a
    /// method named after its path, a spec built at the call.
    fn spec(&self) -> TokenStream {
        let private = &self.private;
        let here = Ident::new("__traced_spawn_here", Span::mixed_site());
        let has_receiver = self.function.sig.receiver().is_some();
        let (marker, name) = if let Some(name) = &self.plan.name {
            (
                TokenStream::new(),
                quote!(#private::Name::Given(#private::std::borrow::Cow::Borrowed(#name))),
            )
        } else if has_receiver {
            // A method: `Self` names the implementing type of a trait's default method. A
            // `static` cannot use `Self`, so this spec is built at the call.
            (
                quote!(fn #here() -> &'static str { ::core::any::type_name_of_val(&#here) }),
                quote!(#private::Name::Method(#here, ::core::any::type_name::<Self>)),
            )
        } else {
            // Declared where `Self` and the module path are known, so its type name is
            // `crate::module::Type::fn::__traced_spawn_here`; the runtime works the fn's path out
            // of it when it records something.
            (
                quote!(fn #here() -> &'static str { ::core::any::type_name_of_val(&#here) }),
                quote!(#private::Name::Marker(#here)),
            )
        };
        let option = |value: Option<&syn::LitStr>| match value {
            Some(value) => quote!(::core::option::Option::Some(#value)),
            None => quote!(::core::option::Option::None),
        };
        let op = option(self.plan.op.as_ref());
        let thread_name = option(self.plan.thread_name.as_ref());
        let fn_name = self.function.sig.ident.unraw().to_string();
        let child = self.plan.child;
        let monitor = self.monitor_spec();
        let fields = quote! {
            name: #name,
            op: #op,
            thread_name: #thread_name,
            fn_name: #fn_name,
            child: #child,
            monitor: #monitor,
        };
        if has_receiver && self.plan.name.is_none() {
            return quote! {{
                #marker
                &#private::Spec { #fields }
            }};
        }
        let spec = Ident::new("__TRACED_SPAWN_SPEC", Span::mixed_site());
        quote! {{
            #marker
            static #spec: #private::Spec = #private::Spec { #fields };
            &#spec
        }}
    }

    /// The `monitor` option and its schedule, as the `Spec`'s `Option<MonitorSpec>`.
    fn monitor_spec(&self) -> TokenStream {
        let Some(monitor) = &self.plan.monitor else {
            return quote!(::core::option::Option::None);
        };
        let private = &self.private;
        let some = |value: Option<TokenStream>| match value {
            Some(value) => quote!(::core::option::Option::Some(#value)),
            None => quote!(::core::option::Option::None),
        };
        let minutes = |minutes: Option<&args::Minutes>| {
            some(minutes.map(|minutes| {
                let mut lit = proc_macro2::Literal::u64_unsuffixed(minutes.value);
                lit.set_span(minutes.lit.span());
                lit.into_token_stream()
            }))
        };
        let slug = &monitor.slug;
        let schedule = some(monitor.schedule.as_ref().map(|crontab| quote!(#crontab)));
        let max_runtime = minutes(monitor.max_runtime.as_ref());
        let checkin_margin = minutes(monitor.checkin_margin.as_ref());
        quote! {
            ::core::option::Option::Some(#private::MonitorSpec {
                slug: #slug,
                schedule: #schedule,
                max_runtime: #max_runtime,
                checkin_margin: #checkin_margin,
            })
        }
    }

    /// `move || -> R { bindings; let out = { user statements }; out }` or `async move { fake
    /// return; bindings; let out = { user statements }; out }`, inside the user's own braces.
    fn body(&self) -> TokenStream {
        let bindings = &self.params.bindings;
        let body = &self.function.body;
        let ret = &self.ret;
        let statements = &body.statements;
        let glue = Span::mixed_site();
        let mut user = Group::new(Delimiter::Brace, quote!(#statements));
        user.set_span(glue.located_at(body.brace.span.join()));
        // The user's statements are a block whose value is bound before the body's block (which
        // holds the arguments) ends: its tail temporaries drop at the end of that `let`, before
        // the arguments, as without the attribute. `return` and `?` return from the body. A
        // block, not a closure or `async` block of its own: one closure or state machine per
        // fn, as spawning the body by hand has. A body that never returns leaves the read of
        // its value unreachable, which is allowed.
        let out = Ident::new("__traced_spawn_out", glue);
        // A body whose tail diverges (`panic!(..)`) is the initializer here, which clippy's
        // `diverging_sub_expression` would flag in the user's code: allowed on this `let`.
        let user = quote_spanned! {glue=>
            #[allow(clippy::diverging_sub_expression)]
            let #out = #user;
            #[allow(unreachable_code)]
            #out
        };
        let mut braced = TokenStream::new();
        if self.is_async() {
            // An async block cannot declare its output type; this never-taken return fixes it
            // to `R` before the body is checked, so `?` and type errors refer to `R`.
            let fake_return = if self.ret_is_opaque {
                TokenStream::new()
            } else {
                let glue = Span::mixed_site().located_at(self.ret_span);
                let value = format_ident!("__traced_spawn_ret", span = glue);
                quote_spanned! {glue=>
                    if let ::core::option::Option::Some(#value) =
                        ::core::option::Option::None::<#ret>
                    {
                        return #value;
                    }
                }
            };
            body.brace.surround(&mut braced, |tokens| {
                tokens.extend(quote!(#fake_return #(#bindings)* #user));
            });
            quote!(async move #braced)
        } else {
            let output = if self.ret_is_opaque {
                TokenStream::new()
            } else {
                quote!(-> #ret)
            };
            body.brace.surround(&mut braced, |tokens| {
                tokens.extend(quote!(#(#bindings)* #user));
            });
            quote!(move || #output #braced)
        }
    }

    /// Tells the runtime whether the output is a failure (`Err`) and, with `err`, the event:
    /// the runtime's probe picks the most specific rule for the concrete output type.
    fn verdict(&self) -> TokenStream {
        let private = &self.private;
        let capture_err = self.plan.capture_err;
        let output = Ident::new("__traced_spawn_output", Span::mixed_site());
        let param = if self.ret_is_opaque {
            quote!(#output)
        } else {
            let ret = &self.ret;
            quote!(#output: &#ret)
        };
        quote! {
            |#param| {
                use #private::{
                    DebugVerdict as _, DerefErrorVerdict as _, ErrorVerdict as _,
                    OtherVerdict as _, ResultVerdict as _,
                };
                (&&&&&#private::Probe(#output)).__traced_spawn_verdict(#capture_err)
            }
        }
    }
}

/// The same tokens, all at `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                tree = TokenTree::Group(respanned);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}
