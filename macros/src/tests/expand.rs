//! Unit tests of `expand::expand` on token streams: every error message and span, which items
//! are kept as written, and robustness against arbitrary tokens. The shape of the expansion is
//! pinned by the snapshots of `expansions.rs`.

use std::str::FromStr as _;

use proc_macro2::{TokenStream, TokenTree};

use crate::expand::expand;

const WORK: &str = "fn work(x: u32) -> u32 { x }";
/// A fn the `err` option fits.
const FALLIBLE: &str = "fn work(x: u32) -> Result<u32, E> { Ok(x) }";

struct Expansion {
    output: TokenStream,
    errors: Vec<Diagnostic>,
}

struct Diagnostic {
    message: String,
    /// The source text the error points at; `None` for the call site.
    at: Option<String>,
}

fn tokens(source: &str) -> TokenStream {
    match TokenStream::from_str(source) {
        Ok(tokens) => tokens,
        Err(error) => panic!("test input {source:?} does not tokenize: {error}"),
    }
}

fn run(attr: &str, item: &str) -> Expansion {
    let output = expand(tokens(attr), tokens(item));
    let mut errors = Vec::new();
    collect_diagnostics(output.clone(), &mut errors);
    // The output always has the item and the errors: a real item must stay a valid one.
    if syn::parse2::<syn::Item>(tokens(item)).is_ok() {
        if let Err(error) = syn::parse2::<syn::File>(output.clone()) {
            panic!(
                "output of #[traced_spawn({attr})] {item} is not valid items: {error}\n{output}"
            );
        }
    }
    assert!(
        !output.is_empty(),
        "#[traced_spawn({attr})] {item} expanded to nothing"
    );
    Expansion { output, errors }
}

/// Finds `compile_error! { "message" }` and the span it reports.
fn collect_diagnostics(tokens: TokenStream, found: &mut Vec<Diagnostic>) {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    for (index, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Ident(ident) if ident == "compile_error" => {
                let Some(TokenTree::Group(group)) = trees.get(index + 2) else {
                    continue;
                };
                let Ok(message) = syn::parse2::<syn::LitStr>(group.stream()) else {
                    continue;
                };
                let at = ident
                    .span()
                    .join(group.span())
                    .and_then(|span| span.source_text());
                found.push(Diagnostic {
                    message: message.value(),
                    at,
                });
            }
            TokenTree::Group(group) => collect_diagnostics(group.stream(), found),
            _ => {}
        }
    }
}

fn compact(source: &str) -> String {
    source.chars().filter(|c| !c.is_whitespace()).collect()
}

impl Expansion {
    #[track_caller]
    fn assert_no_errors(&self) {
        let messages: Vec<_> = self.errors.iter().map(|e| &e.message).collect();
        assert!(messages.is_empty(), "unexpected errors: {messages:#?}");
    }

    /// Exactly one error, whose message contains `message` and which points at `at`.
    #[track_caller]
    fn assert_error(&self, message: &str, at: &str) {
        match self.errors.as_slice() {
            [error] => assert_diagnostic(error, message, at),
            errors => panic!(
                "expected one error, got {:#?}",
                errors.iter().map(|e| &e.message).collect::<Vec<_>>()
            ),
        }
    }

    /// The output is the item as written, followed by one or more errors and nothing else.
    #[track_caller]
    fn assert_kept(&self, item: &str) {
        let item = tokens(item);
        let output: Vec<TokenTree> = self.output.clone().into_iter().collect();
        let (kept, rest) = output.split_at(item.clone().into_iter().count().min(output.len()));
        assert_eq!(
            kept.iter().cloned().collect::<TokenStream>().to_string(),
            item.to_string(),
            "the item is not kept as written in\n{}",
            self.output
        );
        let rest =
            syn::parse2::<syn::File>(rest.iter().cloned().collect()).unwrap_or_else(|error| {
                panic!("not items after the item ({error}) in\n{}", self.output)
            });
        let is_error = |item: &syn::Item| {
            matches!(item, syn::Item::Macro(item)
                if item.mac.path.segments.last().is_some_and(|last| last.ident == "compile_error"))
        };
        assert!(
            !rest.items.is_empty() && rest.items.iter().all(is_error),
            "not only errors after the item in\n{}",
            self.output
        );
    }
}

#[track_caller]
fn assert_diagnostic(error: &Diagnostic, message: &str, at: &str) {
    assert!(
        error.message.contains(message),
        "message {:?} does not contain {message:?}",
        error.message
    );
    assert_eq!(
        error.at.as_deref().map(compact),
        Some(compact(at)),
        "wrong span for {:?}",
        error.message
    );
}

// ---------------------------------------------------------------- options

#[test]
fn unknown_option_lists_the_options() {
    let expansion = run("nmae = \"typo\"", WORK);
    expansion.assert_error(
        "unknown option `nmae`, expected one of: `name`, `op`, `thread_name`, `blocking`, \
         `local`, `rayon`, `spawner`, `err`, `future`, `child`, `crate`",
        "nmae",
    );
}

#[test]
fn unknown_token_instead_of_option() {
    run("\"name\"", WORK).assert_error("expected one of: `name`, `op`", "\"name\"");
    run("= 5", WORK).assert_error("expected one of:", "=");
}

#[test]
fn unknown_option_does_not_hide_the_others() {
    run("bogus = 1, blocking", WORK).assert_error("unknown option `bogus`", "bogus");
}

#[test]
fn duplicate_option_points_at_the_second() {
    run("name = \"first\", op = \"x\", name = \"second\"", WORK).assert_error(
        "duplicate option `name`: each option can be given once",
        "name = \"second\"",
    );
    run("err, err", FALLIBLE).assert_error("duplicate option `err`", "err");
    run("crate = a, crate = b", WORK).assert_error("duplicate option `crate`", "crate = b");
}

#[test]
fn duplicate_of_a_wrong_option_is_still_a_duplicate() {
    let expansion = run("name = 5, name = \"x\"", WORK);
    assert_eq!(expansion.errors.len(), 2);
    assert_diagnostic(&expansion.errors[0], "`name` takes a string literal", "5");
    assert_diagnostic(
        &expansion.errors[1],
        "duplicate option `name`",
        "name = \"x\"",
    );
}

#[test]
fn string_options_reject_other_values() {
    run("name = 5", WORK).assert_error(
        "`name` takes a string literal (the transaction name): write `name = \"...\"`",
        "5",
    );
    run("op = foo", WORK).assert_error(
        "`op` takes a string literal (the transaction op): write `op = \"foo\"`",
        "foo",
    );
    run("thread_name = true", WORK).assert_error(
        "`thread_name` takes a string literal (the OS thread name)",
        "true",
    );
    run("name = b\"bytes\"", WORK).assert_error("`name` takes a string literal", "b\"bytes\"");
    run("name = concat!(\"a\")", WORK)
        .assert_error("`name` takes a string literal", "concat!(\"a\")");
}

#[test]
fn path_options_reject_strings_and_other_values() {
    run("crate = \"my_rt\"", WORK).assert_error(
        "`crate` takes a path, not a string: write `crate = my_rt` without quotes",
        "\"my_rt\"",
    );
    run("crate = \"not a path\"", WORK).assert_error(
        "write `crate = my_reexports::traced_spawn` without quotes",
        "\"not a path\"",
    );
    run("spawner = \"MySpawner\"", WORK).assert_error(
        "`spawner` takes an expression, not a string: write `spawner = MySpawner` without quotes",
        "\"MySpawner\"",
    );
    // A spawner whose type the signature cannot name.
    run("spawner = self.pool.clone()", "fn work(self: Arc<Self>) {}").assert_error(
        "name it with `as`, e.g. `spawner = self.pool.clone() as tokio::runtime::Handle`",
        "self.pool.clone()",
    );
    run("spawner = POOL", WORK).assert_error("name it with `as`", "POOL");
    run("crate = 5", WORK).assert_error("`crate` takes a path", "5");
    run("crate = Vec<u8>", WORK).assert_error("expected `,` after `crate = ", "<u8>");
}

#[test]
fn valued_option_without_value() {
    run("name", WORK).assert_error(
        "`name` needs a value (the transaction name): write `name = \"...\"`",
        "name",
    );
    run("op =", WORK).assert_error("`op` needs a value", "op =");
    run("crate", WORK).assert_error("`crate` needs a value", "crate");
    run("spawner(X)", WORK).assert_error("`spawner` needs a value", "spawner(X)");
}

#[test]
fn flag_with_a_value() {
    run("err = true", "fn work() -> Result<(), String> { Ok(()) }").assert_error(
        "`err` is a flag and takes no value: write `err` alone, or leave it out",
        "err = true",
    );
    run("blocking(1)", WORK).assert_error("`blocking` is a flag", "blocking(1)");
    run("rayon = \"global\"", WORK).assert_error("`rayon` is a flag", "rayon = \"global\"");
}

#[test]
fn missing_comma_keeps_both_sides_where_possible() {
    run("name = \"a\" op = \"b\"", WORK)
        .assert_error("expected `,` after `name = \"...\"`", "op = \"b\"");
    run("err blocking", FALLIBLE).assert_error("expected `,` after `err`", "blocking");
    run("crate = ts name = \"x\"", WORK)
        .assert_error("expected `,` after `crate = ", "name = \"x\"");
}

#[test]
fn thread_name_with_nul_byte() {
    run("thread_name = \"a\\0b\"", WORK)
        .assert_error("a thread name cannot contain a NUL byte", "\"a\\0b\"");
}

#[test]
fn monitor_options_are_accepted() {
    run("monitor = \"nightly-report\"", WORK).assert_no_errors();
    run(
        "monitor = \"billing_sync-2\", schedule = \"*/15 0-6,22 1 jan mon-fri\", max_runtime = 40320, \
         checkin_margin = 1",
        WORK,
    )
    .assert_no_errors();
    run("monitor = \"a\", schedule = \" 0  3 * *  SUN \"", WORK).assert_no_errors();
}

#[test]
fn monitor_slug_follows_sentrys_slug_rule() {
    run("monitor = \"Nightly Report\"", WORK).assert_error(
        "a monitor slug has lowercase letters, digits, `-` and `_` only (Sentry's slug rule), and \
         `N` is none of them: write `monitor = \"nightly-report\"`",
        "\"Nightly Report\"",
    );
    run("monitor = \"\"", WORK).assert_error("a monitor slug cannot be empty", "\"\"");
    run("monitor = \"2024\"", WORK).assert_error(
        "a monitor slug cannot be all digits (Sentry's slug rule): add a letter, e.g. \
         `monitor = \"job-2024\"`",
        "\"2024\"",
    );
    let long = format!("monitor = \"{}\"", "a".repeat(51));
    run(&long, WORK).assert_error(
        "a monitor slug has at most 50 characters (Sentry cuts longer ones), and this one has 51",
        &long["monitor = ".len()..],
    );
    run(&format!("monitor = \"{}\"", "a".repeat(50)), WORK).assert_no_errors();
    run("monitor = nightly", WORK).assert_error(
        "`monitor` takes a string literal (the slug of a Sentry Crons monitor): write \
         `monitor = \"nightly\"`",
        "nightly",
    );
}

#[test]
fn schedule_is_a_crontab_of_five_fields() {
    run("monitor = \"m\", schedule = \"0 3 * *\"", WORK).assert_error(
        "`schedule` takes a crontab of 5 fields (minute, hour, day of the month, month, day of \
         the week), and \"0 3 * *\" has 4: write e.g. `schedule = \"0 3 * * *\"`",
        "\"0 3 * *\"",
    );
    run("monitor = \"m\", schedule = \"@daily\"", WORK)
        .assert_error("and \"@daily\" has 1", "\"@daily\"");
    run("monitor = \"m\", schedule = \"0 24 * * *\"", WORK).assert_error(
        "`24` is not a valid hour in a crontab: write `*`, a number from 0 to 23, a range `a-b`",
        "\"0 24 * * *\"",
    );
    run("monitor = \"m\", schedule = \"0 3 * * sunday\"", WORK).assert_error(
        "`sunday` is not a valid day of the week in a crontab: write `*`, a number from 0 to 6 \
         (or a name, `sun` to `sat`), a range `a-b`",
        "\"0 3 * * sunday\"",
    );
    for invalid in ["*/0", "5/10", "10-5", "1,,2", "x"] {
        let attr = format!("monitor = \"m\", schedule = \"{invalid} * * * *\"");
        run(&attr, WORK).assert_error(
            "is not a valid minute",
            &attr["monitor = \"m\", schedule = ".len()..],
        );
    }
}

#[test]
fn schedule_needs_a_monitor_and_minutes_need_a_schedule() {
    run("schedule = \"0 3 * * *\"", WORK).assert_error(
        "`schedule` is the schedule of a Sentry Crons monitor, and this fn has none: add \
         `monitor = \"slug\"`",
        "schedule = \"0 3 * * *\"",
    );
    run("monitor = \"m\", max_runtime = 30", WORK).assert_error(
        "`max_runtime` is part of the monitor config that `schedule` sends, and this fn has no \
         `schedule`: add `schedule = \"0 3 * * *\"` (your crontab), or remove `max_runtime`",
        "max_runtime = 30",
    );
    run("monitor = \"m\", checkin_margin = 5", WORK).assert_error(
        "`checkin_margin` is part of the monitor config",
        "checkin_margin = 5",
    );
}

#[test]
fn minutes_are_whole_numbers_in_sentrys_range() {
    let with_schedule =
        |option: &str| format!("monitor = \"m\", schedule = \"0 3 * * *\", {option}");
    run(&with_schedule("max_runtime = 0"), WORK).assert_error(
        "`max_runtime` takes a whole number of minutes from 1 to 40320 (28 days, Sentry's limit), \
         without a suffix: write e.g. `max_runtime = 30`",
        "0",
    );
    run(&with_schedule("checkin_margin = 40321"), WORK)
        .assert_error("`checkin_margin` takes a whole number of minutes", "40321");
    run(&with_schedule("max_runtime = 30u8"), WORK).assert_error("without a suffix", "30u8");
    run(&with_schedule("max_runtime = \"30\""), WORK).assert_error(
        "`max_runtime` takes a whole number of minutes from 1 to 40320 (28 days, Sentry's limit): \
         write `max_runtime = 30`",
        "\"30\"",
    );
    run(&with_schedule("checkin_margin = 1.5"), WORK)
        .assert_error("write `checkin_margin = 5`", "1.5");
    run(&with_schedule("max_runtime"), WORK).assert_error(
        "`max_runtime` needs a value (minutes a check-in may stay in progress): write \
         `max_runtime = 30`",
        "max_runtime",
    );
}

#[test]
fn several_option_errors_are_reported_together() {
    let expansion = run("name = 5, op = 6, bogus, err = 1", WORK);
    let messages: Vec<_> = expansion
        .errors
        .iter()
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(messages.len(), 4, "{messages:#?}");
}

#[test]
fn separators_and_trailing_commas() {
    run("name = \"a\",", WORK).assert_no_errors();
    run("", WORK).assert_no_errors();
    run(",", WORK).assert_error("expected one of:", ",");
    run("name = \"a\",, err", FALLIBLE).assert_error("expected one of:", ",");
}

#[test]
fn two_executors_point_at_the_second() {
    run("blocking, local", WORK).assert_error(
        "`local` conflicts with `blocking`: a function runs on one executor, keep only one of them",
        "local",
    );
    run("rayon, spawner = MySpawner", WORK)
        .assert_error("`spawner` conflicts with `rayon`", "spawner = MySpawner");
    run("blocking, err, blocking", FALLIBLE)
        .assert_error("duplicate option `blocking`", "blocking");
}

#[test]
fn executor_must_fit_the_fn() {
    run("blocking", "async fn work() {}").assert_error(
        "`blocking` runs a sync fn on tokio's blocking pool, but this fn is async: remove \
         `blocking` (an async fn runs with `tokio::spawn`) or make the fn sync",
        "blocking",
    );

    run("rayon", "async fn work() {}").assert_error(
        "`rayon` runs a sync fn on rayon's thread pool, but this fn is async",
        "rayon",
    );

    run("local", "fn work() {}").assert_error(
        "`local` spawns an async fn with `tokio::task::spawn_local`, but this fn is sync: make \
         it an `async fn`, or remove `local` to run it on a new thread",
        "local",
    );
}

#[test]
fn thread_name_only_for_std_threads() {
    run("thread_name = \"worker\"", "async fn work() {}").assert_error(
        "`thread_name` names the new std thread of a sync fn, but this async fn runs as a task \
         on the runtime's threads: remove `thread_name`",
        "thread_name = \"worker\"",
    );

    run("blocking, thread_name = \"w\"", WORK).assert_error(
        "`thread_name` names the new std thread of the default executor, but with `blocking` \
         the executor chooses the thread: remove `thread_name`",
        "thread_name = \"w\"",
    );
}

// ---------------------------------------------------------------- items

#[test]
fn not_a_function() {
    let cases = [
        ("struct NotAFunction { field: u32 }", "struct NotAFunction"),
        ("pub struct Unit;", "struct Unit"),
        ("enum E { A }", "enum E"),
        ("impl Foo { fn f(self) {} }", "impl Foo"),
        ("impl<T> Trait for Foo<T> {}", "impl<T> Trait for Foo<T>"),
        ("mod m {}", "mod m"),
        ("trait T {}", "trait T"),
        ("const C: u32 = 1;", "const C"),
        ("static S: u32 = 1;", "static S"),
        ("type Alias = u32;", "type Alias"),
        ("use std::fmt;", "use"),
        ("union U { a: u32 }", "union U"),
        ("macro_rules! m { () => {} }", "macro_rules"),
    ];
    for (item, at) in cases {
        let expansion = run("", item);
        expansion.assert_error("#[traced_spawn] can only be applied to functions", at);
        expansion.assert_kept(item);
    }
}

#[test]
fn trait_method_declaration() {
    run("", "fn run(self) -> u32;").assert_error(
        "#[traced_spawn] needs a function body",
        "fn run(self) -> u32",
    );
}

#[test]
fn ref_self_receivers() {
    run("", "fn run(&self) -> u32 { self.id }").assert_error(
        "`&self` borrows the receiver only until the call returns, but the body runs on another \
         thread after the call returns: take `self` by value, or `self: Arc<Self>` to share it",
        "&self",
    );
    run("", "async fn bump(&mut self) { self.id += 1; }").assert_error(
        "`&mut self` borrows the receiver only until the call returns, but the body runs in \
         another task after the call returns",
        "&mut self",
    );

    run("", "fn run(&'a self) {}").assert_error("`&self` borrows", "&'a self");
    run("", "fn run(self: &Self) {}").assert_error("this receiver borrows", "self: &Self");
    run("", "fn run(self: Pin<&mut Self>) {}")
        .assert_error("this receiver borrows", "self: Pin<&mut Self>");
}

#[test]
fn owned_and_static_receivers_are_fine() {
    for receiver in [
        "self",
        "mut self",
        "self: Arc<Self>",
        "self: Box<Self>",
        "&'static self",
    ] {
        run("", &format!("fn run({receiver}) {{}}")).assert_no_errors();
    }
}

#[test]
fn borrowed_parameters() {
    let reference = "borrows from the caller, but the body runs on another thread after the call \
                     returns: take an owned value (e.g. `String` instead of `&str`, `Vec<T>` \
                     instead of `&[T]`, `Arc<T>` instead of `&T`) or a `&'static` reference";
    let cases = [
        ("channel: &str", "&str"),
        ("channel: &'a str", "&'a str"),
        ("channel: &'_ str", "&'_ str"),
        ("channel: &mut Vec<u8>", "&mut Vec<u8>"),
        ("channel: [&str; 2]", "&str"),
        ("channel: (u32, &str)", "&str"),
        ("channel: Option<&'static &'a str>", "&'a str"),
    ];
    for (param, at) in cases {
        run("", &format!("fn send({param}) {{}}"))
            .assert_error(&format!("parameter `channel` {reference}"), at);
    }
    run("", "async fn send((a, b): (&str, u32)) {}").assert_error(
        "this parameter borrows from the caller, but the body runs in another task",
        "&str",
    );
}

#[test]
fn parameters_with_lifetimes() {
    let cases = [
        ("text: Cow<'a, str>", "'a", "`'a`"),
        ("text: Foo<'_>", "'_", "the elided lifetime `'_`"),
        ("text: Box<dyn Display + 'a>", "'a", "`'a`"),
        ("text: impl Iterator<Item = &'a str>", "&'a str", ""),
        ("text: Box<dyn Fn(&'a str)>", "&'a str", ""),
        ("text: Box<dyn Fn(Cow<'a, str>)>", "'a", "`'a`"),
        ("text: <Cow<'a, str> as ToOwned>::Owned", "'a", "`'a`"),
    ];
    for (param, at, lifetime) in cases {
        let expansion = run("", &format!("fn send<'a>({param}) {{}}"));
        let message = if lifetime.is_empty() {
            "parameter `text` borrows from the caller".to_owned()
        } else {
            format!(
                "parameter `text` borrows for {lifetime}, but the body runs on another thread \
                 after the call returns: take an owned value (e.g. `Cow<'static, str>`, \
                 `String`) or one that borrows for `'static`"
            )
        };
        expansion.assert_error(&message, at);
    }
}

#[test]
fn static_and_higher_ranked_borrows_are_fine() {
    for param in [
        "text: &'static str",
        "text: Cow<'static, str>",
        "f: fn(&str) -> &str",
        "f: Box<dyn Fn(&str) -> usize + Send>",
        "f: Box<dyn for<'b> Fn(&'b str) -> &'b str + Send>",
        "f: impl Fn(&str) + Send + 'static",
        "f: impl for<'b> FnOnce(Cow<'b, str>) + Send + 'static",
        "f: for<'b> fn(&'b u8)",
        "v: Vec<&'static str>",
        "v: Box<dyn Display + Send + 'static>",
        "v: T",
    ] {
        run("", &format!("fn send<T>({param}) {{}}")).assert_no_errors();
    }
}

#[test]
fn ref_bindings() {
    run("", "fn send(ref text: String) {}").assert_error(
        "`ref` binds a reference to the argument, which is gone when the call returns, but the \
         body runs on another thread after the call returns: bind by value (remove `ref`)",
        "ref",
    );
    run("", "fn send((a, ref mut b): (u32, String)) {}").assert_error("`ref` binds", "ref");
}

#[test]
fn const_fn() {
    run("", "const fn answer() -> u32 { 42 }").assert_error(
        "a `const fn` cannot spawn a thread or task: remove `const`",
        "const",
    );
}

#[test]
fn extern_fn() {
    let message = "#[traced_spawn] cannot rewrite an `extern` fn: the rewritten fn returns a \
                   JoinHandle, which has no foreign ABI; remove the `extern` ABI and call this fn \
                   from a separate `extern` wrapper";
    run("", "extern \"C\" fn callback(value: u32) -> u32 { value }")
        .assert_error(message, "extern \"C\"");
    run("", "pub unsafe extern fn callback() {}").assert_error(message, "extern");
}

#[test]
fn variadic_fn() {
    let expansion = run("", "unsafe extern \"C\" fn printf(format: u32, ...) {}");
    assert_eq!(expansion.errors.len(), 2);
    assert_diagnostic(
        &expansion.errors[0],
        "cannot rewrite an `extern` fn",
        "extern \"C\"",
    );
    assert_diagnostic(
        &expansion.errors[1],
        "a variadic fn cannot be spawned",
        "...",
    );
}

#[test]
fn never_return_type() {
    let item = "fn forever() -> ! { loop {} }";
    let expansion = run("", item);
    expansion.assert_error(
        "`!` cannot be the output of a JoinHandle: write `-> ()` (the body may still loop \
         forever) or `-> std::convert::Infallible`",
        "!",
    );
    // `JoinHandle<!>` is not valid on stable.
    expansion.assert_kept(item);
}

#[test]
fn borrowed_return_type() {
    run("", "fn get<'a>() -> Cow<'a, str> { todo!() }").assert_error(
        "the return value reaches the caller through the JoinHandle after the call has \
         returned, so it cannot borrow for `'a`",
        "'a",
    );
    run("", "fn get(x: u32) -> &'a str { todo!() }")
        .assert_error("it cannot be a borrowed reference", "&'a str");
    run("", "fn get() -> &'static str { \"x\" }").assert_no_errors();
}

#[test]
fn stub_with_opaque_return_keeps_the_item() {
    // A body that is never run cannot define the hidden type of `impl Trait`.
    let item = "fn get(x: &str) -> impl Display { 1 }";
    let expansion = run("", item);
    expansion.assert_error("parameter `x` borrows from the caller", "&str");
    expansion.assert_kept(item);
}

#[test]
fn every_signature_error_is_reported() {
    let expansion = run(
        "name = 5",
        "const extern \"C\" fn all(&self, a: &str, ref b: String) -> Cow<'a, str> { todo!() }",
    );
    let messages: Vec<_> = expansion
        .errors
        .iter()
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(messages.len(), 7, "{messages:#?}");
}

// ---------------------------------------------------------------- robustness

#[test]
fn garbage_items_never_panic() {
    let items = [
        "",
        "fn",
        "fn f",
        "fn f()",
        "fn f() ->",
        "fn f() -> {}",
        "fn () {}",
        "async",
        "pub",
        "#[x]",
        "struct X;",
        ";;;",
        "1 + 2",
        "\"string\"",
        "! @ # $ % ^ & * ( ) - = + [ ] { } | ; : , . < > / ?",
        "fn f(self: ) {}",
        "fn f(&) {}",
        "fn f<>() where {}",
        "fn f(x: u32, ...) {}",
        "default fn f() {}",
        "const async unsafe extern \"C\" fn f<'a, T: 'a>(&'a self, x: &'a T, ...) -> ! where T: 'a {}",
        "fn f(self) {}",
        "fn f(_: u32, (): (), [a, b]: [u8; 2], &x: &'static u8, (ref a, b @ _): (u8, u8)) {}",
        "fn f(x: impl Fn(&str) -> &str + 'a) -> impl Fn() + 'b {}",
        "fn f() -> Result<impl Trait, fn(&u8)> {}",
        "async fn f() -> impl Future<Output = impl Send> {}",
        "fn f<const N: usize>(x: [u8; N]) -> [u8; N] { x }",
        "unsafe fn f() { unsafe {} }",
        "fn f() { #![inner] fn nested() {} }",
        "fn f(#[a] #[b] x: u32, #[cfg(x)] #[allow(y)] (a, b): (u8, u8)) {}",
        "extern crate std;",
        "macro_rules! m { () => {} }",
        "m!();",
        "impl X { #[traced_spawn] fn f(&self) {} }",
    ];
    let attrs = [
        "",
        "blocking",
        "local",
        "rayon, err",
        "spawner = S",
        "name = 5",
        "err = true, err",
        "crate = ",
        "thread_name = \"t\"",
    ];
    for item in items {
        for attr in attrs {
            let expansion = run(attr, item);
            let is_fn = syn::parse2::<syn::ItemFn>(tokens(item)).is_ok();
            assert!(
                is_fn || !expansion.errors.is_empty(),
                "#[traced_spawn({attr})] {item}: a non-fn must give an error"
            );
        }
    }
}

#[test]
fn garbage_options_never_panic() {
    let atoms = [
        "name",
        "op",
        "thread_name",
        "blocking",
        "local",
        "rayon",
        "spawner",
        "err",
        "crate",
        "=",
        ",",
        ",",
        "\"s\"",
        "5",
        "::",
        "path",
        "(x)",
        "[1]",
        "{}",
        "<",
        ">",
        "'a",
        "&",
        "true",
        "-",
        "#",
        "!",
        "r#name",
        "b\"x\"",
        "\"\\0\"",
        "self",
        "Self",
        "::std::x",
    ];
    // A fixed linear congruential generator: reproducible, no dependency.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |bound: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(state >> 33).unwrap_or(0) % bound
    };
    for _ in 0..3000 {
        let length = next(9);
        let attr: Vec<&str> = (0..length).map(|_| atoms[next(atoms.len())]).collect();
        let attr = attr.join(" ");
        let item = [
            "fn work(x: u32) -> u32 { x }",
            "async fn work(self) {}",
            "struct S;",
        ][next(3)];
        let expansion = run(&attr, item);
        if item.starts_with("struct") {
            expansion.assert_kept(item);
        } else {
            // Whatever the options, the fn is emitted: call sites keep type-checking.
            let emitted = syn::parse2::<syn::File>(expansion.output).map(|file| file.items);
            assert!(
                matches!(emitted.as_deref(), Ok([syn::Item::Fn(function), ..])
                    if function.sig.ident == "work"),
                "#[traced_spawn({attr})] {item}: the fn is not emitted first"
            );
        }
    }
}

#[test]
fn applied_twice_points_at_the_second_and_expands_once() {
    run(
        "",
        "#[traced_spawn(name = \"x\")] fn work(x: u32) -> u32 { x }",
    )
    .assert_error(
        "#[traced_spawn] is applied twice",
        "#[traced_spawn(name = \"x\")]",
    );
    run("", "#[traced_spawn::traced_spawn] fn work() {}").assert_error(
        "#[traced_spawn] is applied twice",
        "#[traced_spawn::traced_spawn]",
    );
}

#[test]
fn instrument_below_is_an_error_at_it() {
    run("", "#[tracing::instrument(skip_all)] fn work() {}").assert_error(
        "`#[instrument]` below #[traced_spawn] instruments the call that spawns",
        "#[tracing::instrument(skip_all)]",
    );
    run("", "#[instrument] async fn work() {}")
        .assert_error("Move it above `#[traced_spawn]`", "#[instrument]");
}

#[test]
fn err_needs_a_result() {
    run("err", WORK).assert_error(
        "`err` captures the `Err` of a `Result`, but `work` returns `u32`",
        "err",
    );
    run("name = \"x\", err", "fn work() {}").assert_error("but `work` returns `()`", "err");
    for output in [
        "Result<(), E>",
        "io::Result<()>",
        "anyhow::Result<u8>",
        "BotResult",
    ] {
        run("err", &format!("fn work() -> {output} {{ todo!() }}")).assert_no_errors();
    }
}

#[test]
fn async_trait_methods_are_explained() {
    let item = "fn respond<'async_trait>(self) -> Pin<Box<dyn Future<Output = usize> + Send + \
                'async_trait>> where Self: 'async_trait { Box::pin(async move { 1 }) }";
    let expansion = run("", item);
    expansion.assert_error(
        "#[traced_spawn] cannot rewrite a method of an `#[async_trait]` impl",
        "respond",
    );
    expansion.assert_kept(item);
}

#[test]
fn body_with_a_syntax_error_is_passed_through_without_an_error_of_ours() {
    run("", "fn work(x: u32) -> u32 { let y = x +; y }").assert_no_errors();
}

#[test]
fn future_fits_async_fns_only() {
    run("future", "async fn fetch(n: u32) -> u32 { n }").assert_no_errors();
    run("future", "fn fetch() {}").assert_error(
        "`future` returns the traced future of an async fn unspawned, but this fn is sync",
        "future",
    );
    run("future, blocking", "async fn fetch() {}")
        .assert_error("`blocking` conflicts with `future`", "blocking");
}

#[test]
fn child_conflicts_with_future() {
    run("child", "async fn part() {}").assert_no_errors();
    run("future, child", "async fn part() {}").assert_error(
        "`child` records the body as a span of the caller's span",
        "child",
    );
    run("child = 1", WORK).assert_error("`child` is a flag", "child = 1");
}

#[test]
fn a_test_or_the_entry_point_is_kept_as_written_with_one_error() {
    // Below `#[test]` under `cargo test`, the fn carries rustc's test marker.
    for (item, at) in [
        (
            "#[rustc_test_marker = \"t\"] fn t() {}",
            "#[rustc_test_marker = \"t\"]",
        ),
        ("#[test] fn t() {}", "#[test]"),
        (
            "#[::core::prelude::v1::test] fn t() {}",
            "#[::core::prelude::v1::test]",
        ),
        ("#[tokio::test] async fn t() {}", "#[tokio::test]"),
    ] {
        let expansion = run("", item);
        expansion.assert_error("#[traced_spawn] cannot go on a test", at);
        expansion.assert_kept(item);
    }
    for (item, message, at) in [
        (
            "#[tokio::main] async fn main() {}",
            "cannot go on the program's entry point",
            "#[tokio::main]",
        ),
        ("fn main() {}", "cannot go on `main`", "main"),
    ] {
        let expansion = run("", item);
        expansion.assert_error(message, at);
        expansion.assert_kept(item);
    }
    // A method or fn named `main` that takes arguments is no entry point.
    run("", "fn main(self) -> u32 { 1 }").assert_no_errors();
}
