//! Property tests of `expand::expand` on hostile token streams: valid functions with random edits
//! (tokens deleted, inserted, swapped, duplicated, regrouped, spliced from other functions, at
//! any depth), random option lists, and arbitrary token trees.
//!
//! For every input the expansion must not panic, must be deterministic, and must be either valid
//! items or carry a `compile_error!`; a valid item must stay valid items (errors included), and
//! anything that is not a function must produce an error. `expand.rs` pins the exact messages and
//! spans on hand-written inputs, and `expansions.rs` whole expansions; this complements them with
//! volume.
//!
//! Reproducible: a fixed seed unless `PROPTEST_RNG_SEED` is set; `PROPTEST_CASES` sets the number
//! of cases of each property. `--nocapture` prints how many inputs were tried.

use std::fmt;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

use crate::expand::expand;
use crate::item::TracedFn;

/// Cases of each property when `PROPTEST_CASES` is not set.
const CASES: u32 = 3_000;

/// Valid functions of every shape the macro handles (and some it rejects), to be mutated.
const ITEMS: &[&str] = &[
    "fn work(x: u32) -> u32 { x }",
    "pub async fn fetch(id: u64, name: String) -> Result<u64, Error> { let n = id + 1; Ok(n) }",
    "pub(crate) fn send<T: Send + 'static>(value: T) -> T where T: Clone { value.clone() }",
    "async fn run(self: Arc<Self>, extra: u32) -> u32 { self.id + extra }",
    "fn consume(self) {}",
    "#[inline] #[doc = \"docs\"] unsafe fn raw(ptr: usize, (a, b): (u8, u8)) -> usize { ptr + a as usize }",
    "fn opaque(x: u32) -> impl Display + Send + 'static { x }",
    "async fn boxed(cb: impl Fn(u32) -> u32 + Send + 'static) -> Box<dyn Any + Send> { Box::new(cb(1)) }",
    "fn generic<const N: usize, T>(x: [T; N]) -> [T; N] where T: Copy { x }",
    "fn with_inner() { #![allow(unused)] let _ = 1; }",
    "fn borrowed(x: &str, y: &'static str) -> &'static str { y }",
    "fn method(&self) -> u32 { self.id }",
    "async fn mutate(&mut self) { self.id += 1; }",
    "const fn answer() -> u32 { 42 }",
    "extern \"C\" fn callback(value: u32) -> u32 { value }",
    "fn never() -> ! { loop {} }",
    "fn patterns(Point { x, y }: Point, [a, _]: [u8; 2], ref r: String, mut m: u8) {}",
    "fn attrs(#[cfg(test)] a: u32, #[allow(unused)] b: u32) {}",
    "fn r#type(r#async: u32) -> u32 { r#async }",
    "async fn nested() -> u32 { async fn inner() -> u32 { 1 } inner().await }",
];

/// Option lists, valid and not, to be mutated.
const ATTRS: &[&str] = &[
    "",
    "err",
    "blocking",
    "local",
    "rayon",
    "name = \"jobs.send\", op = \"queue.process\"",
    "thread_name = \"worker\", err",
    "spawner = my::pool::Spawner",
    "crate = ::renamed::ts",
    "name = \"n\", op = \"o\", thread_name = \"t\", err, crate = traced_spawn,",
    "blocking, rayon",
    "name = 5, op",
];

/// Fragments an edit inserts: pieces of Rust that are plausible at many places.
const FRAGMENTS: &[&str] = &[
    "fn",
    "async",
    "unsafe",
    "const",
    "extern \"C\"",
    "pub",
    "pub(crate)",
    "self",
    "Self",
    "&self",
    "&mut self",
    "mut",
    "ref",
    "impl Trait",
    "dyn Trait",
    "where",
    "T: Send",
    "'a",
    "'static",
    "&'a",
    "&",
    "*",
    "-",
    "->",
    "=>",
    "=",
    "==",
    ":",
    "::",
    ",",
    ";",
    ".",
    "..",
    "...",
    "?",
    "!",
    "#",
    "#[inline]",
    "#![inner]",
    "#[traced_spawn]",
    "<",
    ">",
    "<T>",
    "<'a>",
    "()",
    "[]",
    "{}",
    "(x: u32)",
    "-> u32",
    "-> impl Send",
    "{ x }",
    "\"s\"",
    "1",
    "'c'",
    "b\"x\"",
    "1.5",
    "r#raw",
    "_",
    "x",
    "u32",
    "String",
    "Result<(), E>",
    "async move {}",
    "|| {}",
    "return",
    "await",
    "loop {}",
    "name",
    "op",
    "thread_name",
    "blocking",
    "local",
    "rayon",
    "spawner",
    "err",
    "crate",
    "name = \"x\"",
    "crate = a::b",
    "spawner = S",
];

/// Values given to options in random option lists.
const VALUES: &[&str] = &[
    "\"x\"",
    "\"\"",
    "\"with\\0nul\"",
    "\"a b::c\"",
    "5",
    "true",
    "a::b::C",
    "::abs::Path",
    "crate",
    "self",
    "Self",
    "<T as Tr>::X",
    "(x)",
    "[1]",
    "{}",
    "b\"x\"",
    "r\"raw\"",
    "'l'",
    "-1",
    "",
];

const OPTIONS: &[&str] = &[
    "name",
    "op",
    "thread_name",
    "blocking",
    "local",
    "rayon",
    "spawner",
    "err",
    "crate",
    "nmae",
    "r#name",
    "Name",
    "_",
];

fn tokens(source: &str) -> TokenStream {
    TokenStream::from_str(source).unwrap_or_else(|err| panic!("{source:?}: {err}"))
}

/// One input to the macro; shows as source text.
#[derive(Clone)]
struct Case {
    attr: TokenStream,
    item: TokenStream,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#[traced_spawn({})] {}", self.attr, self.item)
    }
}

// ---------------------------------------------------------------- mutation

/// A token tree that can be edited in place.
#[derive(Debug, Clone)]
enum Node {
    Leaf(TokenTree),
    Group(Delimiter, Vec<Node>),
}

fn nodes(stream: TokenStream) -> Vec<Node> {
    stream
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(group) => Node::Group(group.delimiter(), nodes(group.stream())),
            leaf => Node::Leaf(leaf),
        })
        .collect()
}

fn stream(nodes: &[Node]) -> TokenStream {
    nodes
        .iter()
        .map(|node| match node {
            Node::Leaf(leaf) => leaf.clone(),
            Node::Group(delimiter, inner) => {
                TokenTree::Group(Group::new(*delimiter, stream(inner)))
            }
        })
        .collect()
}

fn count(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|node| match node {
            Node::Leaf(_) => 1,
            Node::Group(_, inner) => 1 + count(inner),
        })
        .sum()
}

#[derive(Debug, Clone)]
enum Edit {
    Delete,
    Insert(usize),
    SwapWithNext,
    Duplicate,
    /// Changes a group's delimiter, or wraps a token in a new group.
    Regroup(u8),
    /// Replaces a group by its content.
    Ungroup,
    /// Inserts a token taken from another seed item.
    Splice(usize, Index),
}

const DELIMITERS: [Delimiter; 4] = [
    Delimiter::Parenthesis,
    Delimiter::Brace,
    Delimiter::Bracket,
    Delimiter::None,
];

fn edit_strategy() -> impl Strategy<Value = (Edit, Index)> {
    let edit = prop_oneof![
        3 => Just(Edit::Delete),
        3 => (0..FRAGMENTS.len()).prop_map(Edit::Insert),
        2 => Just(Edit::SwapWithNext),
        1 => Just(Edit::Duplicate),
        1 => any::<u8>().prop_map(Edit::Regroup),
        1 => Just(Edit::Ungroup),
        2 => (0..ITEMS.len(), any::<Index>()).prop_map(|(item, at)| Edit::Splice(item, at)),
    ];
    (edit, any::<Index>())
}

/// Applies `edit` at the `at`-th node in pre-order (the position right after the last node when
/// `at` is the count, for insertions at the end). Returns `true` once applied.
fn apply_at(nodes: &mut Vec<Node>, at: &mut usize, edit: &Edit) -> bool {
    for i in 0..=nodes.len() {
        if *at == 0 {
            apply(nodes, i, edit);
            return true;
        }
        if i == nodes.len() {
            break;
        }
        *at -= 1;
        if let Node::Group(_, inner) = &mut nodes[i] {
            if apply_at(inner, at, edit) {
                return true;
            }
        }
    }
    false
}

fn apply(nodes: &mut Vec<Node>, i: usize, edit: &Edit) {
    let len = nodes.len();
    match edit {
        Edit::Insert(fragment) => {
            let new = self::nodes(tokens(FRAGMENTS[*fragment]));
            nodes.splice(i..i, new);
        }
        Edit::Splice(item, from) => {
            let donor = self::nodes(tokens(ITEMS[*item]));
            let picked = donor[from.index(donor.len())].clone();
            nodes.insert(i, picked);
        }
        _ if i >= len => {}
        Edit::Delete => {
            nodes.remove(i);
        }
        Edit::SwapWithNext if i + 1 < len => nodes.swap(i, i + 1),
        Edit::SwapWithNext => {}
        Edit::Duplicate => {
            let copy = nodes[i].clone();
            nodes.insert(i, copy);
        }
        Edit::Regroup(which) => {
            let delimiter = DELIMITERS[usize::from(*which) % DELIMITERS.len()];
            nodes[i] = match nodes[i].clone() {
                Node::Group(_, inner) => Node::Group(delimiter, inner),
                leaf => Node::Group(delimiter, vec![leaf]),
            };
        }
        Edit::Ungroup => {
            if let Node::Group(_, inner) = nodes[i].clone() {
                nodes.splice(i..=i, inner);
            }
        }
    }
}

fn mutate(source: &str, edits: &[(Edit, Index)]) -> TokenStream {
    let mut tree = nodes(tokens(source));
    for (edit, at) in edits {
        let mut at = at.index(count(&tree) + 1);
        apply_at(&mut tree, &mut at, edit);
    }
    stream(&tree)
}

/// A seed function and a seed option list, each with random edits.
fn mutated_case() -> impl Strategy<Value = Case> {
    (
        0..ITEMS.len(),
        prop::collection::vec(edit_strategy(), 1..6),
        0..ATTRS.len(),
        prop::collection::vec(edit_strategy(), 0..3),
    )
        .prop_map(|(item, item_edits, attr, attr_edits)| Case {
            attr: mutate(ATTRS[attr], &attr_edits),
            item: mutate(ITEMS[item], &item_edits),
        })
}

/// A seed function with a random option list: options with random values and separators.
fn random_options_case() -> impl Strategy<Value = Case> {
    let option = (
        0..OPTIONS.len(),
        prop::option::of(0..VALUES.len()),
        prop::sample::select(vec![",", ",", ",", "", ";", ", ,"]),
    );
    (
        0..ITEMS.len(),
        prop::collection::vec(option, 0..7),
        any::<bool>(),
    )
        .prop_map(|(item, options, trailing)| {
            let mut attr = String::new();
            for (i, (option, value, separator)) in options.iter().enumerate() {
                attr.push_str(OPTIONS[*option]);
                if let Some(value) = value {
                    attr.push_str(" = ");
                    attr.push_str(VALUES[*value]);
                }
                if i + 1 < options.len() || trailing {
                    attr.push_str(separator);
                    attr.push(' ');
                }
            }
            Case {
                attr: tokens(&attr),
                item: tokens(ITEMS[item]),
            }
        })
}

/// Token trees with no grammar at all.
fn arbitrary_stream() -> impl Strategy<Value = TokenStream> {
    let leaf = (0..FRAGMENTS.len()).prop_map(|fragment| nodes(tokens(FRAGMENTS[fragment])));
    let tree = leaf.prop_recursive(3, 48, 6, |inner| {
        (0..DELIMITERS.len(), prop::collection::vec(inner, 0..6))
            .prop_map(|(delimiter, parts)| vec![Node::Group(DELIMITERS[delimiter], parts.concat())])
    });
    prop::collection::vec(tree, 0..10).prop_map(|parts| stream(&parts.concat()))
}

fn arbitrary_case() -> impl Strategy<Value = Case> {
    (
        arbitrary_stream(),
        prop_oneof![
            arbitrary_stream(),
            (arbitrary_stream(), 0..ITEMS.len())
                .prop_map(|(head, item)| { head.into_iter().chain(tokens(ITEMS[item])).collect() }),
        ],
    )
        .prop_map(|(attr, item)| Case { attr, item })
}

// ---------------------------------------------------------------- the property

fn has_compile_error(stream: TokenStream) -> bool {
    let trees: Vec<TokenTree> = stream.into_iter().collect();
    trees.iter().enumerate().any(|(i, tree)| match tree {
        TokenTree::Ident(ident) if ident == "compile_error" => {
            matches!(trees.get(i + 1), Some(TokenTree::Punct(bang)) if bang.as_char() == '!')
        }
        TokenTree::Group(group) => has_compile_error(group.stream()),
        _ => false,
    })
}

fn check_case(case: &Case) -> Result<(), TestCaseError> {
    let output = expand(case.attr.clone(), case.item.clone());
    let text = output.to_string();
    prop_assert!(!output.is_empty(), "expanded to nothing");
    prop_assert_eq!(
        &expand(case.attr.clone(), case.item.clone()).to_string(),
        &text,
        "not deterministic"
    );
    let errors = has_compile_error(output.clone());
    let parsed = syn::parse2::<syn::File>(output);
    // A fn whose body does not parse is rewritten around the body's tokens: rustc reports the
    // syntax error, and nothing else.
    let is_fn = syn::parse2::<TracedFn>(case.item.clone()).is_ok();
    let body_is_broken = is_fn && syn::parse2::<syn::ItemFn>(case.item.clone()).is_err();
    if let Err(error) = &parsed {
        prop_assert!(
            errors || body_is_broken,
            "no compile_error! and not items ({error}):\n{text}"
        );
    }
    if syn::parse2::<syn::Item>(case.item.clone()).is_ok() {
        prop_assert!(
            parsed.is_ok(),
            "a valid item expanded to invalid items:\n{}",
            text
        );
    }
    if !errors {
        prop_assert!(is_fn, "accepted without an error but not a fn:\n{}", text);
    }
    Ok(())
}

fn runner() -> TestRunner {
    let base = Config::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        base.cases
    } else {
        CASES
    };
    let rng_seed = match base.rng_seed {
        RngSeed::Random => RngSeed::Fixed(0x7ace_d5ba_3b00_0005),
        seed => seed,
    };
    TestRunner::new(Config {
        cases,
        rng_seed,
        failure_persistence: None,
        ..base
    })
}

static TRIED: AtomicUsize = AtomicUsize::new(0);

fn fuzz(name: &str, strategy: impl Strategy<Value = Case>) {
    let tried = AtomicUsize::new(0);
    let with_errors = AtomicUsize::new(0);
    let result = runner().run(&strategy, |case| {
        tried.fetch_add(1, Ordering::Relaxed);
        if has_compile_error(expand(case.attr.clone(), case.item.clone())) {
            with_errors.fetch_add(1, Ordering::Relaxed);
        }
        check_case(&case)
    });
    let tried = tried.into_inner();
    let total = TRIED.fetch_add(tried, Ordering::Relaxed) + tried;
    eprintln!(
        "[macro fuzz] {name}: {tried} inputs tried, {} expanded with a compile_error! \
         ({total} so far in this run)",
        with_errors.into_inner()
    );
    if let Err(error) = result {
        panic!("{name}: {error}");
    }
}

#[test]
fn mutated_functions_never_panic_and_expand_to_items_or_errors() {
    fuzz("mutated functions and option lists", mutated_case());
}

#[test]
fn random_option_lists_never_panic_and_expand_to_items_or_errors() {
    fuzz(
        "random option lists on valid functions",
        random_options_case(),
    );
}

#[test]
fn arbitrary_token_trees_never_panic_and_expand_to_items_or_errors() {
    fuzz("arbitrary token trees", arbitrary_case());
}

// ---------------------------------------------------------------- found by the fuzzer
//
// Minimal inputs the properties above found. Each fails until the macro handles it; they are
// kept as plain tests so the defect shows by name.

/// Checks every case, then fails listing those that broke the property.
fn assert_cases(cases: &[(&str, &str)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(attr, item)| {
            let case = Case {
                attr: tokens(attr),
                item: tokens(item),
            };
            check_case(&case)
                .err()
                .map(|error| format!("{case:?}\n  {error}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `crate = Self` is accepted without an error and expands to `Self::__private::..` paths and
/// `use Self::__private::{..}`, which is not Rust: the user gets parse errors at the expansion
/// instead of a message about the option.
#[test]
fn found_crate_self_is_rejected_with_an_error() {
    assert_cases(&[
        ("crate = Self", "fn work(x: u32) -> u32 { x }"),
        ("crate = Self::ts", "async fn work() {}"),
    ]);
}

/// A trait object with several bounds as the return type (unsized, so the fn is wrong anyway)
/// expands to `&Display + Send + 'static` and `move || -> Display + Send + 'static`, which do not
/// parse: the user gets a parse error at the expansion instead of rustc's error on the type.
#[test]
fn found_trait_object_return_type_with_bounds_stays_parseable() {
    assert_cases(&[
        ("", "fn opaque(x: u32) -> Display + Send + 'static { x }"),
        ("", "fn opaque(x: u32) -> dyn Display + Send { x }"),
        ("", "async fn opaque(x: u32) -> dyn Display + Send { x }"),
        ("", "fn opaque(x: u32) -> dyn Display { x }"),
    ]);
}

#[test]
fn unmutated_seeds_expand_as_expected() {
    // The seeds themselves: the functions the macro accepts expand without error.
    for item in ITEMS {
        let case = Case {
            attr: TokenStream::new(),
            item: tokens(item),
        };
        check_case(&case).unwrap();
    }
    let accepted = ITEMS
        .iter()
        .filter(|item| !has_compile_error(expand(TokenStream::new(), tokens(item))))
        .count();
    // `&str`, `&self`, `&mut self`, `const`, `extern`, `!`, `ref` are rejected on purpose.
    assert_eq!(accepted, ITEMS.len() - 7);
}
