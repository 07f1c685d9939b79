//! Parsing of the options inside `#[traced_spawn(...)]`.
//!
//! Parsing recovers at every comma: a wrong option is reported and skipped, the others still
//! apply, so one typo does not hide the rest or change the generated signature.

use proc_macro2::{TokenStream, TokenTree};
use quote::quote;
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream, Parser as _};
use syn::{Ident, LitInt, LitStr, Path, Token};

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
    syn::custom_keyword!(monitor);
    syn::custom_keyword!(schedule);
    syn::custom_keyword!(max_runtime);
    syn::custom_keyword!(checkin_margin);
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
    /// The `monitor` option: a valid Sentry Crons monitor slug.
    pub(crate) monitor: Option<LitStr>,
    /// The `schedule` option: a crontab of five valid fields.
    pub(crate) schedule: Option<Spelled<LitStr>>,
    /// The `max_runtime` option, in minutes.
    pub(crate) max_runtime: Option<Spelled<Minutes>>,
    /// The `checkin_margin` option, in minutes.
    pub(crate) checkin_margin: Option<Spelled<Minutes>>,
    /// `monitor` and `schedule` were written, with a valid value or not (a wrong one is reported
    /// already): the options that depend on them are not reported again.
    pub(crate) monitor_written: bool,
    pub(crate) schedule_written: bool,
}

/// A number of minutes in the range Sentry accepts for a monitor's `max_runtime` and
/// `checkin_margin`, with the literal that wrote it.
pub(crate) struct Minutes {
    pub(crate) value: u64,
    pub(crate) lit: LitInt,
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
    Monitor,
    Schedule,
    MaxRuntime,
    CheckinMargin,
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
            Key::Monitor => "monitor",
            Key::Schedule => "schedule",
            Key::MaxRuntime => "max_runtime",
            Key::CheckinMargin => "checkin_margin",
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
            Key::Monitor => "the slug of a Sentry Crons monitor",
            Key::Schedule => "the monitor's crontab schedule",
            Key::MaxRuntime => "minutes a check-in may stay in progress",
            Key::CheckinMargin => "minutes a check-in may be late",
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
        } else if lookahead.peek(kw::monitor) {
            Key::Monitor
        } else if lookahead.peek(kw::schedule) {
            Key::Schedule
        } else if lookahead.peek(kw::max_runtime) {
            Key::MaxRuntime
        } else if lookahead.peek(kw::checkin_margin) {
            Key::CheckinMargin
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
    Minutes(Minutes),
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
            Key::Name
            | Key::Op
            | Key::ThreadName
            | Key::Spawner
            | Key::Crate
            | Key::Monitor
            | Key::Schedule
            | Key::MaxRuntime
            | Key::CheckinMargin => {
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
            Key::Name | Key::Op | Key::ThreadName | Key::Monitor | Key::Schedule => {
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
                let invalid = match key {
                    Key::Monitor => invalid_slug(&lit.value()),
                    Key::Schedule => invalid_crontab(&lit.value()),
                    _ => None,
                };
                if let Some(message) = invalid {
                    self.errors.push(syn::Error::new(lit.span(), message));
                    return None;
                }
                Some(Value::Str(lit))
            }
            Key::MaxRuntime | Key::CheckinMargin => {
                let range = format!("from 1 to {MAX_MINUTES} (28 days, Sentry's limit)");
                let Ok((lit, extra)) = leading(<LitInt as Parse>::parse, value.clone()) else {
                    let suggestion = match syn::parse2::<LitStr>(value.clone()) {
                        Ok(lit) if lit.value().trim().parse::<u64>().is_ok() => {
                            format!("{} = {}", key.as_str(), lit.value().trim())
                        }
                        _ => example(key).to_owned(),
                    };
                    self.errors.push(syn::Error::new_spanned(
                        value,
                        format!(
                            "`{}` takes a whole number of minutes {range}: write `{suggestion}`",
                            key.as_str(),
                        ),
                    ));
                    return None;
                };
                if !extra.is_empty() {
                    self.missing_comma(key, &extra);
                }
                match lit.base10_parse::<u64>() {
                    Ok(minutes)
                        if lit.suffix().is_empty() && (1..=MAX_MINUTES).contains(&minutes) =>
                    {
                        Some(Value::Minutes(Minutes {
                            value: minutes,
                            lit,
                        }))
                    }
                    _ => {
                        self.errors.push(syn::Error::new(
                            lit.span(),
                            format!(
                                "`{}` takes a whole number of minutes {range}, without a suffix: \
                                 write e.g. `{}`",
                                key.as_str(),
                                example(key)
                            ),
                        ));
                        None
                    }
                }
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

            args.monitor_written |= key == Key::Monitor;
            args.schedule_written |= key == Key::Schedule;
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
                (Key::Monitor, Some(Value::Str(lit))) => args.monitor = Some(lit),
                (Key::Schedule, Some(Value::Str(lit))) => {
                    args.schedule = Some(Spelled { value: lit, tokens });
                }
                (Key::MaxRuntime, Some(Value::Minutes(minutes))) => {
                    args.max_runtime = Some(Spelled {
                        value: minutes,
                        tokens,
                    });
                }
                (Key::CheckinMargin, Some(Value::Minutes(minutes))) => {
                    args.checkin_margin = Some(Spelled {
                        value: minutes,
                        tokens,
                    });
                }
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
        Key::Monitor => "monitor = \"nightly-report\"",
        Key::Schedule => "schedule = \"0 3 * * *\"",
        Key::MaxRuntime => "max_runtime = 30",
        Key::CheckinMargin => "checkin_margin = 5",
    }
}

/// Longest monitor slug Sentry keeps (it truncates longer ones).
const MAX_SLUG_LEN: usize = 50;

/// Sentry's limit for a monitor's `max_runtime` and `checkin_margin`: 28 days, in minutes.
const MAX_MINUTES: u64 = 40_320;

/// Why `slug` is not a monitor slug Sentry accepts, or `None`: lowercase letters, digits, `-`
/// and `_`, at most 50 characters, not all digits (Sentry's slug rule).
fn invalid_slug(slug: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if slug.is_empty() {
        return Some(
            "a monitor slug cannot be empty: write the slug of the Sentry Crons monitor, e.g. \
             `monitor = \"nightly-report\"`"
                .to_owned(),
        );
    }
    if let Some(bad) = slug.chars().find(|c| !allowed(*c)) {
        let suggestion: String = slug
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if allowed(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        return Some(format!(
            "a monitor slug has lowercase letters, digits, `-` and `_` only (Sentry's slug rule), \
             and `{bad}` is none of them: write `monitor = \"{suggestion}\"`"
        ));
    }
    let length = slug.chars().count();
    if length > MAX_SLUG_LEN {
        return Some(format!(
            "a monitor slug has at most {MAX_SLUG_LEN} characters (Sentry cuts longer ones), and \
             this one has {length}: shorten it"
        ));
    }
    if slug.chars().all(|c| c.is_ascii_digit()) {
        return Some(format!(
            "a monitor slug cannot be all digits (Sentry's slug rule): add a letter, e.g. \
             `monitor = \"job-{slug}\"`"
        ));
    }
    None
}

/// The fields of a crontab, each with its numeric range and the names it may use instead.
const CRONTAB_FIELDS: [(&str, u64, u64, &[&str]); 5] = [
    ("minute", 0, 59, &[]),
    ("hour", 0, 23, &[]),
    ("day of the month", 1, 31, &[]),
    (
        "month",
        1,
        12,
        &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
    ),
    (
        "day of the week",
        0,
        6,
        &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    ),
];

/// Why `crontab` is not a schedule Sentry's SDK accepts, or `None`: five fields (minute, hour,
/// day of the month, month, day of the week), each `*`, a number, a range `a-b`, a step `*/n`
/// or `a-b/n`, or a list of those; months and days of the week also by name (`jan`, `mon`).
fn invalid_crontab(crontab: &str) -> Option<String> {
    let fields: Vec<&str> = crontab.split_whitespace().collect();
    if fields.len() != CRONTAB_FIELDS.len() {
        return Some(format!(
            "`schedule` takes a crontab of 5 fields (minute, hour, day of the month, month, day of \
             the week), and {crontab:?} has {}: write e.g. `schedule = \"0 3 * * *\"` (every day \
             at 03:00)",
            fields.len()
        ));
    }
    for (field, (what, min, max, names)) in fields.iter().zip(CRONTAB_FIELDS) {
        if !field
            .split(',')
            .all(|item| crontab_item(item, min, max, names))
        {
            let names = match names.first().zip(names.last()) {
                Some((first, last)) => format!(" (or a name, `{first}` to `{last}`)"),
                None => String::new(),
            };
            return Some(format!(
                "`{field}` is not a valid {what} in a crontab: write `*`, a number from {min} to \
                 {max}{names}, a range `a-b`, a step `*/n` or `a-b/n`, or a list of those \
                 separated by `,`"
            ));
        }
    }
    None
}

/// One item of a crontab field's list: a number (or a name, for months and days of the week),
/// `*`, or a range, with an optional step.
fn crontab_item(item: &str, min: u64, max: u64, names: &[&str]) -> bool {
    let number = |text: &str| {
        let named = names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(text))
            .and_then(|index| u64::try_from(index).ok())
            .map(|index| index + min);
        named.or_else(|| text.parse::<u64>().ok().filter(|n| (min..=max).contains(n)))
    };
    if number(item).is_some() {
        return true;
    }
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (item, None),
    };
    let step_valid = step.is_none_or(|step| step.parse::<u64>().is_ok_and(|n| n > 0));
    let range_valid = range == "*"
        || range
            .split_once('-')
            .and_then(|(from, to)| Some((number(from)?, number(to)?)))
            .is_some_and(|(from, to)| from <= to);
    step_valid && range_valid
}
