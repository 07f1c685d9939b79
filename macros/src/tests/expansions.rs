//! Snapshot tests of whole expansions: each test expands one `#[traced_spawn(..)]` input and
//! compares the input and its formatted expansion with a file committed in `snapshots/`
//! (`<test name>.snap`). The expansion's shape is pinned here; the messages and spans of its
//! errors are pinned by the `assert_error` tests in `expand.rs`.
//!
//! A mismatch fails the test with a diff. Outside CI it also writes the new expansion beside the
//! old one as `snapshots/<test name>.snap.new`; with `CI` set (`CI=true`) it writes nothing.
//!
//! After a change to the expansion, update the snapshots and read the diff before committing:
//!
//! ```text
//! INSTA_UPDATE=always cargo test -p traced-spawn-macros --lib
//! git diff macros/src/tests/snapshots/
//! ```
//!
//! or, with `cargo-insta` installed, `cargo insta test -p traced-spawn-macros` and then
//! `cargo insta review` to accept or reject each change. A new test's snapshot is written the
//! same way. Delete the snapshot of a removed test.

use std::str::FromStr as _;

use proc_macro2::TokenStream;

use crate::expand::expand;

fn tokens(source: &str) -> TokenStream {
    match TokenStream::from_str(source) {
        Ok(tokens) => tokens,
        Err(error) => panic!("test input {source:?} does not tokenize: {error}"),
    }
}

/// Formatted as rustfmt would where the tokens are items; as emitted where they are not.
fn pretty(tokens: &TokenStream) -> String {
    let Ok(file) = syn::parse2::<syn::File>(tokens.clone()) else {
        return format!("// not items: the tokens as emitted\n{tokens}\n");
    };
    // Tokens that syn keeps unparsed (a fn without a body), which prettyplease cannot print.
    let unparsed = |item: &syn::Item| matches!(item, syn::Item::Verbatim(_));
    if file.items.iter().any(unparsed) {
        return format!("// not items syn parses: the tokens as emitted\n{tokens}\n");
    }
    prettyplease::unparse(&file)
}

/// The input, then its expansion.
fn render(attr: &str, item: &str) -> String {
    let output = expand(tokens(attr), tokens(item));
    // A valid item must stay valid items, errors included: the call sites keep type-checking
    // and rustc reports only the `compile_error!`s.
    if syn::parse2::<syn::Item>(tokens(item)).is_ok() {
        if let Err(error) = syn::parse2::<syn::File>(output.clone()) {
            panic!(
                "output of #[traced_spawn({attr})] {item} is not valid items: {error}\n{output}"
            );
        }
    }
    let attribute = if attr.is_empty() {
        "#[traced_spawn]".to_owned()
    } else {
        format!("#[traced_spawn({attr})]")
    };
    // The options as written: prettyplease prints an attribute's tokens with its own spacing.
    let item = pretty(&tokens(item));
    let output = pretty(&output);
    format!("{attribute}\n{item}\n// {:-<64} expands to\n\n{output}", "")
}

/// One test per case, named after it, with its snapshot in `snapshots/<name>.snap`.
macro_rules! snapshots {
    ($($(#[$doc:meta])* $name:ident: $attr:literal => $item:literal,)*) => {$(
        $(#[$doc])*
        #[test]
        fn $name() {
            let rendered = render($attr, $item);
            insta::with_settings!(
                {
                    prepend_module_to_snapshot => false,
                    omit_expression => true,
                },
                { insta::assert_snapshot!(stringify!($name), rendered) }
            );
        }
    )*};
}

snapshots! {
    // ------------------------------------------------------------ executors

    /// The default executor of a sync fn: a std thread. `mut` moves from the parameter to the
    /// binding inside the body.
    sync_fn: "" => "pub fn add(a: u32, mut b: u32) -> u32 { b += a; b }",
    /// No return type: the output is `()`.
    sync_fn_without_return_type: "" => "fn work() {}",
    /// The default executor of an async fn: `tokio::spawn`, behind `#[track_caller]`.
    async_fn: "" => "async fn fetch(id: u64) -> Result<u64, E> { Ok(id) }",
    blocking: "blocking" => "fn work(x: u32) -> u32 { x }",
    /// A local task: the arguments need not be `Send`.
    local: "local" => "async fn work(x: Rc<u32>) -> u32 { *x }",
    rayon: "rayon" => "fn work(x: u32) -> u32 { x }",
    /// The traced future, unspawned: no `#[track_caller]`, arguments need not be `Send`.
    future: "future" => "async fn fetch(n: u32) -> u32 { n }",
    spawner: "spawner = my::Spawner" => "fn work(x: u32) -> u32 { x }",
    spawner_async: "spawner = my::Spawner" => "async fn work() {}",
    /// A spawner value of a type named with `as`.
    spawner_cast: "spawner = self.pool.clone() as tokio::runtime::Handle"
        => "fn work(self: Arc<Self>, x: u32) -> u32 { x }",
    /// A parameter as the spawner: its declared type names the handle.
    spawner_parameter: "spawner = pool" => "fn work(pool: Pool, x: u32) -> u32 { x }",
    spawner_parameter_by_reference: "spawner = pool"
        => "async fn fetch(pool: &Pool, id: u64) -> u64 { id }",

    // ------------------------------------------------------------ options

    child: "child" => "async fn part() {}",
    err: "err" => "fn work(x: u32) -> Result<u32, E> { Ok(x) }",
    /// A given name is a `static` spec without the marker fn.
    name_op_thread_name_err:
        "name = \"slack.reply\", op = \"queue.process\", thread_name = \"reply\", err"
        => "fn work(x: u32) -> Result<u32, E> { Ok(x) }",
    /// Every option a task takes at once.
    all_options_of_a_task: "name = \"jobs.send\", op = \"queue.process\", child, err, local"
        => "async fn send(id: u64) -> Result<(), E> { Ok(()) }",
    /// `crate = path` replaces every `::traced_spawn`.
    crate_path: "crate = ts" => "async fn work(x: u32) {}",
    /// A trailing comma is fine.
    trailing_comma: "name = \"a\"," => "fn work() {}",
    /// A Sentry Crons monitor: its slug in the spec, no config.
    monitor: "monitor = \"nightly-report\"" => "fn report() -> Result<(), E> { Ok(()) }",
    /// A monitor with a schedule: the config that creates it on first use.
    monitor_with_schedule:
        "monitor = \"billing-sync\", schedule = \"*/15 * * * *\", max_runtime = 10, checkin_margin = 2"
        => "async fn sync_billing() -> Result<(), E> { Ok(()) }",

    // ------------------------------------------------------------ signatures

    /// A method named after its path: the spec is built at the call, where `Self` is known.
    method_self: "" => "fn consume(self) -> u32 { self.id }",
    method_arc_self: "" => "pub fn run(self: Arc<Self>, extra: u32) -> u32 { self.id + extra }",
    /// A method with a given name has a `static` spec like a free fn.
    async_method_with_name: "name = \"worker.run\""
        => "async fn run(mut self: Box<Self>) { self.step(); }",
    /// Attributes, doc comments, visibility, `unsafe`, generics, the where clause and inner
    /// attributes are kept.
    generic_fn: ""
        => "/// Docs.\n#[inline] pub(crate) unsafe fn get<T: Send + 'static>(value: T) -> T \
        where T: Clone { #![allow(unused)] value }",
    const_generic_fn: ""
        => "fn first<const N: usize, T: Copy + Send + 'static>(x: [T; N]) -> T { x[0] }",
    impl_trait_arg: ""
        => "fn apply(f: impl FnOnce(u32) -> u32 + Send + 'static, x: u32) -> u32 { f(x) }",
    /// `-> impl Trait`: the hidden type cannot be named in the body, so the closure's output and
    /// the verdict's parameter are inferred.
    impl_trait_return: "" => "fn get(x: u32) -> impl Display + Send + 'static { x }",
    /// No fake return in the async block: its type is inferred.
    async_impl_trait_return: "" => "async fn get() -> Result<impl Debug, E> { Ok(1) }",
    /// Pattern parameters get a generated name in the signature and are destructured inside.
    pattern_parameters: "" => "fn sum((a, _): (u32, Guard), _: String, Point { x, y }: Point) {}",
    /// `#[cfg]` stays on the parameter and goes with its check and binding; other attributes go
    /// with the binding only.
    parameter_attributes: ""
        => "fn f(#[cfg(feature = \"x\")] a: u32, #[allow(unused_variables)] b: u32) {}",
    /// The thread is named after the fn without `r#`.
    raw_identifiers: "" => "fn r#type(r#async: u32) -> u32 { r#async }",
    /// `#[track_caller]` written by the user is not repeated.
    track_caller_written: "" => "#[track_caller] async fn work() {}",
    /// `&'static self` borrows nothing that ends with the call.
    static_ref_self: "" => "fn run(&'static self) {}",
    /// A `&'static` return borrows nothing that ends with the call.
    static_ref_return: "" => "fn get() -> &'static str { \"x\" }",
    /// Higher-ranked and `'static` borrows in parameters are fine.
    higher_ranked_parameters: "" => "fn send(f: Box<dyn for<'b> Fn(&'b str) -> &'b str + Send>, \
        text: &'static str, g: fn(&str) -> &str) {}",
    /// A fn named `main` that takes `self` is no entry point.
    method_named_main: "" => "fn main(self) -> u32 { 1 }",
    /// The body's syntax error is left to rustc: the signature is still rewritten around the
    /// body's tokens.
    body_with_a_syntax_error: "" => "fn work(x: u32) -> u32 { let y = x +; y }",

    // ------------------------------------------------------------ option and attribute errors:
    // the fn is still rewritten, without the wrong option

    /// Applied twice: the inner attribute is dropped, the fn expanded once.
    error_applied_twice: "" => "#[traced_spawn(name = \"x\")] fn work(x: u32) -> u32 { x }",
    error_instrument_below: "" => "#[tracing::instrument(skip_all)] fn work() {}",
    error_unknown_option: "nmae = \"typo\"" => "fn work(x: u32) -> u32 { x }",
    error_unknown_option_keeps_the_others: "bogus = 1, blocking" => "fn work(x: u32) -> u32 { x }",
    /// The whole option list fails to parse: every option keeps its default.
    error_option_list: "= 5" => "fn work(x: u32) -> u32 { x }",
    /// The first of two is kept.
    error_duplicate_option: "name = \"first\", op = \"x\", name = \"second\""
        => "fn work(x: u32) -> u32 { x }",
    error_wrong_value: "name = 5, op = \"queue.process\"" => "fn work(x: u32) -> u32 { x }",
    /// Every wrong option is reported; none of them changes the rewrite.
    error_several_options: "name = 5, op = 6, bogus, err = 1" => "fn work(x: u32) -> u32 { x }",
    /// `err = true` is ignored: the verdict does not capture.
    error_flag_with_a_value: "err = true" => "fn work() -> Result<(), String> { Ok(()) }",
    error_missing_comma: "name = \"a\" op = \"b\"" => "fn work(x: u32) -> u32 { x }",
    /// The first executor is kept.
    error_two_executors: "blocking, local" => "fn work(x: u32) -> u32 { x }",
    /// An executor that does not fit falls back to the default one.
    error_blocking_on_async_fn: "blocking" => "async fn work() {}",
    error_rayon_on_async_fn: "rayon" => "async fn work() {}",
    error_local_on_sync_fn: "local" => "fn work() {}",
    error_future_on_sync_fn: "future" => "fn fetch() {}",
    error_thread_name_on_async_fn: "thread_name = \"worker\"" => "async fn work() {}",
    error_thread_name_with_blocking: "blocking, thread_name = \"w\""
        => "fn work(x: u32) -> u32 { x }",
    error_thread_name_with_nul_byte: "thread_name = \"a\\0b\"" => "fn work(x: u32) -> u32 { x }",
    error_err_without_result: "err" => "fn work(x: u32) -> u32 { x }",
    error_child_with_future: "future, child" => "async fn part() {}",
    /// A spawner whose type the signature cannot name.
    error_spawner_without_type: "spawner = POOL" => "fn work(x: u32) -> u32 { x }",
    /// An invalid slug: no monitor, the rest of the options kept.
    error_monitor_slug: "monitor = \"Nightly Report\", name = \"report\""
        => "fn report() {}",
    /// A schedule without a monitor, and minutes without a schedule, are left out.
    error_schedule_without_monitor: "schedule = \"0 3 * * *\", max_runtime = 30"
        => "fn report() {}",

    // ------------------------------------------------------------ signature errors: a stub with
    // the rewritten signature, whose body is type-checked but never spawned

    error_ref_self: "" => "fn run(&self) -> u32 { self.id }",
    error_ref_mut_self_async: "" => "async fn bump(&mut self) { self.id += 1; }",
    error_pinned_self: "" => "fn poll(self: Pin<&mut Self>) {}",
    error_borrowed_parameter: "" => "fn send(channel: &str, id: u32) {}",
    error_borrowed_pattern_async: "" => "async fn send((a, b): (&str, u32)) {}",
    error_parameter_with_a_lifetime: "" => "fn send<'a>(text: Cow<'a, str>) {}",
    error_ref_binding: "" => "fn send(ref text: String) {}",
    /// The stub drops `const`, which would only add errors.
    error_const_fn: "" => "const fn answer() -> u32 { 42 }",
    /// The stub drops the ABI.
    error_extern_fn: "" => "extern \"C\" fn callback(value: u32) -> u32 { value }",
    /// The stub drops the ABI and `...`.
    error_variadic_fn: "" => "unsafe extern \"C\" fn printf(format: u32, ...) {}",
    error_borrowed_return_type: "" => "fn get<'a>() -> Cow<'a, str> { todo!() }",
    error_reference_return_type: "" => "fn get(x: u32) -> &'a str { todo!() }",
    error_non_send_output: "" => "fn load() -> Result<u32, Box<dyn std::error::Error>> { Ok(1) }",
    /// Every error at once, in order.
    error_every_signature_error: "name = 5"
        => "const extern \"C\" fn all(&self, a: &str, ref b: String) -> Cow<'a, str> { todo!() }",

    // ------------------------------------------------------------ item errors: the item as
    // written

    /// `JoinHandle<!>` is not valid on stable.
    error_never_return_type: "" => "fn forever() -> ! { loop {} }",
    /// A body that is never run cannot define the hidden type of `impl Trait`.
    error_stub_with_opaque_return: "" => "fn get(x: &str) -> impl Display { 1 }",
    error_non_send_opaque_output: ""
        => "fn get() -> impl Future<Output = Box<dyn Error>> { async { todo!() } }",
    error_not_a_function: "" => "struct NotAFunction { field: u32 }",
    error_impl_block: "" => "impl Foo { fn f(self) {} }",
    error_trait_method_declaration: "" => "fn run(self) -> u32;",
    error_async_trait_method: ""
        => "fn respond<'async_trait>(self) -> Pin<Box<dyn Future<Output = usize> \
        + Send + 'async_trait>> where Self: 'async_trait { Box::pin(async move { 1 }) }",
    error_test: "" => "#[test] fn t() {}",
    error_tokio_test: "" => "#[tokio::test] async fn t() {}",
    error_tokio_main: "" => "#[tokio::main] async fn main() {}",
    error_main: "" => "fn main() {}",
    /// The option errors are reported with the item's.
    error_not_a_function_with_option_errors: "nmae, blocking = 1" => "enum E { A }",
}
