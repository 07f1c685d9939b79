//! Parsing of the options inside `#[traced_spawn(...)]`.
//!
//! Parsing recovers at every comma: a wrong option is reported and skipped, the others still
//! apply, so one typo does not hide the rest or change the generated signature.

use proc_macro2::{TokenStream, TokenTree};
use quote::quote;
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream, Parser as _};
use syn::{Ident, LitStr, Path, Token};

use crate::errors::Errors;

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(op);
    syn::custom_keyword!(thread_name);
    syn::custom_keyword!(blocking);
    syn::custom_keyword!(local);
    syn::custom_keyword!(rayon);
    syn::custom_keyword!(spawner);
    syn::custom_keyword!(err);
    syn::custom_keyword!(future);
    syn::custom_keyword!(child);
}

/// The options, each with the tokens that spelled it so later errors can point at it.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    pub(crate) op: Option<LitStr>,
    pub(crate) thread_name: Option<Spelled<LitStr>>,
    pub(crate) krate: Option<Path>,
    pub(crate) executor: Option<Spelled<ExecutorOption>>,
    /// The `err` option, by its tokens.
    pub(crate) err: Option<TokenStream>,
    /// The `child` option, by its tokens.
    pub(crate) child: Option<TokenStream>,
}

/// A value together with the option tokens it came from (`thread_name = "x"`).
pub(crate) struct Spelled<T> {
    pub(crate) value: T,
    pub(crate) tokens: TokenStream,
}

/// An executor chosen by an option; without one, sync fns run on a std thread and async fns on
/// `tokio::spawn`.
pub(crate) enum ExecutorOption {
    Blocking,
    /// The traced future, unspawned.
    Future,
    Local,
    Rayon,
    /// A value implementing the runtime's `Spawn` (or `SpawnFuture`) trait.
    Spawner(Box<syn::Expr>),
}

/// Parses the attribute arguments. Never fails: problems go to `errors` and the affected option
/// keeps its default.
pub(crate) fn parse(attr: TokenStream, errors: &mut Errors) -> Args {
    match syn::parse2::<OptionList>(attr) {
        Ok(list) => list.into_args(errors),
        Err(error) => {
            errors.push(error);
            Args::default()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Name,
    Op,
    ThreadName,
    Blocking,
    Local,
    Rayon,
    Spawner,
    Err,
    Future,
    Child,
    Crate,
}

impl Key {
    fn as_str(self) -> &'static str {
        match self {
            Key::Name => "name",
            Key::Op => "op",
            Key::ThreadName => "thread_name",
            Key::Blocking => "blocking",
            Key::Local => "local",
            Key::Rayon => "rayon",
            Key::Spawner => "spawner",
            Key::Err => "err",
            Key::Future => "future",
            Key::Child => "child",
            Key::Crate => "crate",
        }
    }

    fn is_executor(self) -> bool {
        matches!(
            self,
            Key::Blocking | Key::Local | Key::Rayon | Key::Spawner | Key::Future
        )
    }

    /// What the option sets, for messages about a missing or mistyped value.
    fn purpose(self) -> &'static str {
        match self {
            Key::Name => "the transaction name",
            Key::Op => "the transaction op",
            Key::ThreadName => "the OS thread name",
            Key::Spawner => "a value implementing `traced_spawn::Spawn`",
            Key::Crate => "the path of the traced-spawn crate when it is re-exported",
            Key::Blocking | Key::Local | Key::Rayon | Key::Err | Key::Future | Key::Child => "",
        }
    }

    /// Reads the key at the cursor; an unknown key yields "expected one of: `name`, ...".
    fn parse(input: ParseStream) -> syn::Result<Key> {
        let lookahead = input.lookahead1();
        let key = if lookahead.peek(kw::name) {
            Key::Name
        } else if lookahead.peek(kw::op) {
            Key::Op
        } else if lookahead.peek(kw::thread_name) {
            Key::ThreadName
        } else if lookahead.peek(kw::blocking) {
            Key::Blocking
        } else if lookahead.peek(kw::local) {
            Key::Local
        } else if lookahead.peek(kw::rayon) {
            Key::Rayon
        } else if lookahead.peek(kw::spawner) {
            Key::Spawner
        } else if lookahead.peek(kw::err) {
            Key::Err
        } else if lookahead.peek(kw::future) {
            Key::Future
        } else if lookahead.peek(kw::child) {
            Key::Child
        } else if lookahead.peek(Token![crate]) {
            Key::Crate
        } else {
            let error = lookahead.error();
            return Err(match input.fork().call(Ident::parse_any) {
                Ok(unknown) => syn::Error::new(
                    unknown.span(),
                    format!("unknown option `{unknown}`, {error}"),
                ),
                Err(_) => error,
            });
        };
        Ok(key)
    }
}

enum Value {
    Flag,
    Str(LitStr),
    Path(Path),
    Expr(syn::Expr),
}

struct RawOption {
    key: Key,
    /// Everything from the key to the next comma, for error spans.
    tokens: TokenStream,
    /// `None` when the value was wrong; that error is already recorded.
    value: Option<Value>,
}

/// The comma-separated options, as written, before duplicates and conflicts are checked.
#[derive(Default)]
struct OptionList {
    options: Vec<RawOption>,
    errors: Errors,
}

impl Parse for OptionList {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut list = OptionList::default();
        while !input.is_empty() {
            match Key::parse(input) {
                Ok(key) => {
                    let keyword: TokenTree = input.parse()?;
                    let rest = rest_of_option(input)?;
                    let option = list.raw_option(key, &keyword, rest);
                    list.options.push(option);
                }
                Err(error) => {
                    list.errors.push(error);
                    rest_of_option(input)?;
                }
            }
            if !input.is_empty() {
                // `rest_of_option` stops only at a comma or at the end.
                input.parse::<Token![,]>()?;
            }
        }
        Ok(list)
    }
}

/// Consumes the tokens up to the next top-level comma.
fn rest_of_option(input: ParseStream) -> syn::Result<TokenStream> {
    input.step(|cursor| {
        let mut rest = *cursor;
        let mut tokens = TokenStream::new();
        while let Some((tree, next)) = rest.token_tree() {
            if matches!(&tree, TokenTree::Punct(punct) if punct.as_char() == ',') {
                break;
            }
            tokens.extend([tree]);
            rest = next;
        }
        Ok((tokens, rest))
    })
}

impl OptionList {
    fn raw_option(&mut self, key: Key, keyword: &TokenTree, rest: TokenStream) -> RawOption {
        let tokens = quote!(#keyword #rest);
        let value = match key {
            Key::Blocking | Key::Local | Key::Rayon | Key::Err | Key::Future | Key::Child => {
                match rest.clone().into_iter().next() {
                    None => Some(Value::Flag),
                    // `err = true`, `err(..)`
                    Some(TokenTree::Punct(punct)) if punct.as_char() == '=' => {
                        self.flag_with_value(key, &tokens);
                        None
                    }
                    Some(TokenTree::Group(_)) => {
                        self.flag_with_value(key, &tokens);
                        None
                    }
                    // `err blocking`: a forgotten comma.
                    Some(_) => {
                        self.missing_comma(key, &rest);
                        Some(Value::Flag)
                    }
                }
            }
            Key::Name | Key::Op | Key::ThreadName | Key::Spawner | Key::Crate => {
                if let Some(value) = split_value(rest) {
                    self.value(key, &value)
                } else {
                    self.errors.push(syn::Error::new_spanned(
                        &tokens,
                        format!(
                            "`{}` needs a value ({}): write `{}`",
                            key.as_str(),
                            key.purpose(),
                            example(key)
                        ),
                    ));
                    None
                }
            }
        };
        RawOption { key, tokens, value }
    }

    fn flag_with_value(&mut self, key: Key, tokens: &TokenStream) {
        let key = key.as_str();
        self.errors.push(syn::Error::new_spanned(
            tokens,
            format!("`{key}` is a flag and takes no value: write `{key}` alone, or leave it out"),
        ));
    }

    /// Tokens after a complete option: most likely a forgotten comma.
    fn missing_comma(&mut self, key: Key, extra: &TokenStream) {
        self.errors.push(syn::Error::new_spanned(
            extra,
            format!(
                "expected `,` after `{}`: separate options with commas",
                example(key)
            ),
        ));
    }

    fn value(&mut self, key: Key, value: &TokenStream) -> Option<Value> {
        match key {
            Key::Name | Key::Op | Key::ThreadName => {
                let Ok((lit, extra)) = leading(<LitStr as Parse>::parse, value.clone()) else {
                    let suggestion = match single_ident(value) {
                        Some(ident) => format!("{} = \"{ident}\"", key.as_str()),
                        None => example(key).to_owned(),
                    };
                    self.errors.push(syn::Error::new_spanned(
                        value,
                        format!(
                            "`{}` takes a string literal ({}): write `{suggestion}`",
                            key.as_str(),
                            key.purpose()
                        ),
                    ));
                    return None;
                };
                if !extra.is_empty() {
                    self.missing_comma(key, &extra);
                }
                if key == Key::ThreadName && lit.value().contains('\0') {
                    self.errors.push(syn::Error::new(
                        lit.span(),
                        "a thread name cannot contain a NUL byte: remove the `\\0`",
                    ));
                    return None;
                }
                Some(Value::Str(lit))
            }
            Key::Spawner => {
                let parsed = if syn::parse2::<LitStr>(value.clone()).is_ok() {
                    None
                } else {
                    syn::parse2::<syn::Expr>(value.clone()).ok()
                };
                if let Some(expr) = parsed {
                    return Some(Value::Expr(expr));
                }
                let message = if let Ok(lit) = syn::parse2::<LitStr>(value.clone()) {
                    format!(
                        "`spawner` takes an expression, not a string: write `spawner = {}` \
                         without quotes",
                        lit.value()
                    )
                } else {
                    format!(
                        "`spawner` takes an expression ({}): write `{}`",
                        key.purpose(),
                        example(key)
                    )
                };
                self.errors.push(syn::Error::new_spanned(value, message));
                None
            }
            Key::Crate => {
                let parsed = if syn::parse2::<LitStr>(value.clone()).is_ok() {
                    None
                } else {
                    leading(Path::parse_mod_style, value.clone()).ok()
                };
                if let Some((path, extra)) = parsed {
                    if !extra.is_empty() {
                        self.missing_comma(key, &extra);
                    }
                    // `Self` names a type, never a crate: `Self::__private` cannot resolve.
                    let names_self = path.leading_colon.is_none()
                        && path
                            .segments
                            .first()
                            .is_some_and(|first| first.ident == "Self");
                    if names_self {
                        self.errors.push(syn::Error::new_spanned(
                            &path,
                            "`crate` takes the path of the traced-spawn crate, and `Self` names a \
                             type: write e.g. `crate = my_reexports::traced_spawn`",
                        ));
                        return None;
                    }
                    return Some(Value::Path(path));
                }
                let message = if let Ok(lit) = syn::parse2::<LitStr>(value.clone()) {
                    let unquoted = match lit.parse::<Path>() {
                        Ok(_) => lit.value(),
                        Err(_) => "my_reexports::traced_spawn".to_owned(),
                    };
                    format!(
                        "`{key}` takes a path, not a string: write `{key} = {unquoted}` without quotes",
                        key = key.as_str(),
                    )
                } else {
                    format!(
                        "`{}` takes a path ({}): write `{}`",
                        key.as_str(),
                        key.purpose(),
                        example(key)
                    )
                };
                self.errors.push(syn::Error::new_spanned(value, message));
                None
            }
            Key::Blocking | Key::Local | Key::Rayon | Key::Err | Key::Future | Key::Child => None,
        }
    }

    /// Finds duplicates and conflicting executors in one place; the error points at the second
    /// occurrence and the first one wins.
    fn into_args(self, errors: &mut Errors) -> Args {
        let OptionList {
            options,
            errors: parse_errors,
        } = self;
        errors.extend(parse_errors);

        let mut args = Args::default();
        let mut seen: Vec<Key> = Vec::new();
        let mut executor_seen: Option<Key> = None;
        for RawOption { key, tokens, value } in options {
            if key.is_executor() {
                if let Some(first) = executor_seen {
                    let message = if first == key {
                        duplicate_message(key)
                    } else {
                        format!(
                            "`{}` conflicts with `{}`: a function runs on one executor, keep only one of them",
                            key.as_str(),
                            first.as_str()
                        )
                    };
                    errors.push(syn::Error::new_spanned(&tokens, message));
                    continue;
                }
                executor_seen = Some(key);
            } else {
                if seen.contains(&key) {
                    errors.push(syn::Error::new_spanned(&tokens, duplicate_message(key)));
                    continue;
                }
                seen.push(key);
            }

            match (key, value) {
                (Key::Name, Some(Value::Str(lit))) => args.name = Some(lit),
                (Key::Op, Some(Value::Str(lit))) => args.op = Some(lit),
                (Key::ThreadName, Some(Value::Str(lit))) => {
                    args.thread_name = Some(Spelled { value: lit, tokens });
                }
                (Key::Crate, Some(Value::Path(path))) => args.krate = Some(path),
                (Key::Err, Some(Value::Flag)) => args.err = Some(tokens),
                (Key::Blocking, Some(Value::Flag)) => {
                    args.executor = Some(Spelled {
                        value: ExecutorOption::Blocking,
                        tokens,
                    });
                }
                (Key::Local, Some(Value::Flag)) => {
                    args.executor = Some(Spelled {
                        value: ExecutorOption::Local,
                        tokens,
                    });
                }
                (Key::Child, Some(Value::Flag)) => args.child = Some(tokens),
                (Key::Future, Some(Value::Flag)) => {
                    args.executor = Some(Spelled {
                        value: ExecutorOption::Future,
                        tokens,
                    });
                }
                (Key::Rayon, Some(Value::Flag)) => {
                    args.executor = Some(Spelled {
                        value: ExecutorOption::Rayon,
                        tokens,
                    });
                }
                (Key::Spawner, Some(Value::Expr(expr))) => {
                    args.executor = Some(Spelled {
                        value: ExecutorOption::Spawner(Box::new(expr)),
                        tokens,
                    });
                }
                // A wrong value was reported and is skipped; each key only ever gets its own
                // kind of value from `raw_option`.
                _ => {}
            }
        }
        args
    }
}

fn duplicate_message(key: Key) -> String {
    format!(
        "duplicate option `{}`: each option can be given once",
        key.as_str()
    )
}

/// Splits `= value` into its value; `None` when the `=` or the value is missing.
fn split_value(rest: TokenStream) -> Option<TokenStream> {
    let parsed = (|input: ParseStream| {
        input.parse::<Token![=]>()?;
        input.parse::<TokenStream>()
    })
    .parse2(rest);
    parsed.ok().filter(|value| !value.is_empty())
}

/// Parses a value at the start of `tokens`, and returns it with the tokens after it.
fn leading<T>(
    parse: fn(ParseStream) -> syn::Result<T>,
    tokens: TokenStream,
) -> syn::Result<(T, TokenStream)> {
    (|input: ParseStream| Ok((parse(input)?, input.parse::<TokenStream>()?))).parse2(tokens)
}

fn single_ident(value: &TokenStream) -> Option<Ident> {
    let mut trees = value.clone().into_iter();
    match (trees.next(), trees.next()) {
        (Some(TokenTree::Ident(ident)), None) => Some(ident),
        _ => None,
    }
}

fn example(key: Key) -> &'static str {
    match key {
        Key::Name => "name = \"...\"",
        Key::Op => "op = \"...\"",
        Key::ThreadName => "thread_name = \"...\"",
        Key::Spawner => "spawner = pool",
        Key::Crate => "crate = my_reexports::traced_spawn",
        Key::Blocking => "blocking",
        Key::Local => "local",
        Key::Rayon => "rayon",
        Key::Err => "err",
        Key::Future => "future",
        Key::Child => "child",
    }
}
