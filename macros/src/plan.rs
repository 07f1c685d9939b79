//! Settles the options against the function: which executor runs the body, and which options
//! fit it. A misplaced option is reported at its tokens and ignored, so the rewrite goes on.
//! Defaults that do not depend on the syntax (the op of each executor, the thread name) are the
//! runtime's: an option left unset is passed on as `None`.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens as _};
use syn::{LitStr, ReturnType, Signature, Type};

use crate::args::{Args, ExecutorOption, Minutes, Spelled};
use crate::checks::strip_parens;
use crate::errors::Errors;

/// `spawner = EXPR`: the value the glue spawns on, and its type, which names the handle in the
/// rewritten signature.
pub(crate) struct Spawner {
    /// What the glue borrows: `&(value)`.
    pub(crate) value: TokenStream,
    /// The executor's type: `<ty as Spawn>::Handle<R>` is the fn's return type.
    pub(crate) ty: TokenStream,
    /// A parameter named as the spawner: moved into the spawn call before the others move into
    /// the body, so it is not moved into the body.
    pub(crate) moved_param: Option<syn::Ident>,
}

/// The spawner's value and type: `EXPR as Type`; a parameter (its declared type, through one
/// reference); a unit struct (a path whose last segment is written in `CamelCase`). Anything
/// else cannot be typed from the signature, and the error says how to name its type.
fn spawner(expr: syn::Expr, sig: &Signature) -> Result<Spawner, syn::Error> {
    if let syn::Expr::Cast(cast) = &expr {
        let (value, ty) = (&cast.expr, &cast.ty);
        return Ok(Spawner {
            value: quote!(#value),
            ty: quote!(#ty),
            moved_param: None,
        });
    }
    if let syn::Expr::Path(path) = &expr {
        if let (None, Some(ident)) = (&path.qself, path.path.get_ident()) {
            let param = sig.inputs.iter().find_map(|input| match input {
                syn::FnArg::Typed(typed) => match &*typed.pat {
                    syn::Pat::Ident(pat) if pat.ident == *ident => Some(&typed.ty),
                    _ => None,
                },
                syn::FnArg::Receiver(_) => None,
            });
            if let Some(ty) = param {
                let ty = match strip_parens(ty) {
                    Type::Reference(reference) => &reference.elem,
                    ty => ty,
                };
                return Ok(Spawner {
                    value: quote!(#ident),
                    ty: quote!(#ty),
                    moved_param: Some(ident.clone()),
                });
            }
        }
        let last = path
            .path
            .segments
            .last()
            .map(|segment| segment.ident.to_string());
        let camel_case = last.as_deref().is_some_and(|name| {
            name.starts_with(|c: char| c.is_ascii_uppercase())
                && name.chars().any(|c| c.is_ascii_lowercase())
        });
        if path.qself.is_none() && camel_case {
            let path = &path.path;
            return Ok(Spawner {
                value: quote!(#path),
                ty: quote!(#path),
                moved_param: None,
            });
        }
    }
    Err(syn::Error::new_spanned(
        &expr,
        format!(
            "the handle this fn returns is the spawner's, so its type must be known from the \
             signature: name it with `as`, e.g. `spawner = {} as tokio::runtime::Handle` (or \
             `as rayon::ThreadPool`, or your own executor's type), or pass the spawner as a \
             parameter and write `spawner = that_parameter`",
            written(&expr)
        ),
    ))
}

/// An expression as it would be written: rustc's token spacing without the spaces around `.`,
/// `::` and parentheses.
fn written(expr: &syn::Expr) -> String {
    let mut text = expr.to_token_stream().to_string();
    for (spaced, tight) in [
        (" . ", "."),
        (" :: ", "::"),
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
    ] {
        text = text.replace(spaced, tight);
    }
    text
}

/// Where the body runs.
pub(crate) enum Executor {
    /// Sync fn, default: a new std thread.
    Thread,
    /// Async fn, default: `tokio::spawn`.
    Task,
    Blocking,
    Local,
    Rayon,
    Spawner(Spawner),
    /// Async fn with `future`: not spawned, the traced future is returned.
    Future,
}

impl Executor {
    /// Whether the output is sent back from another thread (`local` and `future` keep it on
    /// the caller's).
    pub(crate) fn sends_output(&self) -> bool {
        !matches!(self, Executor::Local | Executor::Future)
    }

    /// Whether the executor is tokio's, which needs a runtime at the call.
    pub(crate) fn is_tokio(&self) -> bool {
        matches!(self, Executor::Task | Executor::Blocking | Executor::Local)
    }
}

/// The settled options: what the expansion generates.
pub(crate) struct Plan {
    pub(crate) executor: Executor,
    /// `None`: computed at run time from the function's path.
    pub(crate) name: Option<LitStr>,
    /// `None`: the executor's default op, decided by the runtime.
    pub(crate) op: Option<LitStr>,
    /// Only for [`Executor::Thread`]; `None`: the fn's name, decided by the runtime.
    pub(crate) thread_name: Option<LitStr>,
    pub(crate) capture_err: bool,
    /// The `child` option: a child span of the caller's span, not a transaction.
    pub(crate) child: bool,
    /// The `monitor` option: Sentry Crons check-ins.
    pub(crate) monitor: Option<MonitorPlan>,
}

/// A Sentry Crons monitor and the config its schedule sends.
pub(crate) struct MonitorPlan {
    pub(crate) slug: LitStr,
    pub(crate) schedule: Option<LitStr>,
    /// Minutes, only with a schedule.
    pub(crate) max_runtime: Option<Minutes>,
    /// Minutes, only with a schedule.
    pub(crate) checkin_margin: Option<Minutes>,
}

/// Settles the options against the function; a misplaced option is reported and ignored.
pub(crate) fn plan(mut args: Args, sig: &Signature, errors: &mut Errors) -> Plan {
    let is_async = sig.asyncness.is_some();
    let monitor = monitor(&mut args, errors);
    let executor = match args.executor {
        None if is_async => Executor::Task,
        None => Executor::Thread,
        Some(option) => match (option.value, is_async) {
            (ExecutorOption::Local, true) => Executor::Local,
            (ExecutorOption::Blocking, false) => Executor::Blocking,
            (ExecutorOption::Rayon, false) => Executor::Rayon,
            (ExecutorOption::Future, true) => Executor::Future,
            (ExecutorOption::Spawner(expr), _) => match spawner(*expr, sig) {
                Ok(spawner) => Executor::Spawner(spawner),
                Err(error) => {
                    errors.push(error);
                    if is_async {
                        Executor::Task
                    } else {
                        Executor::Thread
                    }
                }
            },
            (misfit, _) => {
                let (message, fallback) = match misfit {
                    ExecutorOption::Blocking => (
                        "`blocking` runs a sync fn on tokio's blocking pool, but this fn is async: \
                         remove `blocking` (an async fn runs with `tokio::spawn`) or make the fn sync",
                        Executor::Task,
                    ),
                    ExecutorOption::Rayon => (
                        "`rayon` runs a sync fn on rayon's thread pool, but this fn is async: \
                         remove `rayon` (an async fn runs with `tokio::spawn`) or make the fn sync",
                        Executor::Task,
                    ),
                    ExecutorOption::Future => (
                        "`future` returns the traced future of an async fn unspawned, but this fn \
                         is sync: make it an `async fn`, or remove `future` to run it on a new \
                         thread",
                        Executor::Thread,
                    ),
                    ExecutorOption::Local | ExecutorOption::Spawner(_) => (
                        "`local` spawns an async fn with `tokio::task::spawn_local`, but this fn is sync: \
                         make it an `async fn`, or remove `local` to run it on a new thread",
                        Executor::Thread,
                    ),
                };
                errors.push(syn::Error::new_spanned(option.tokens, message));
                fallback
            }
        },
    };

    let thread_name = match (&executor, args.thread_name) {
        (Executor::Thread, Some(thread_name)) => Some(thread_name.value),
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

    let child = match (args.child, &executor) {
        (Some(child), Executor::Future) => {
            errors.push(syn::Error::new_spanned(
                child,
                "`child` records the body as a span of the caller's span, which must finish \
                 before the caller's does, but with `future` the caller's code decides when the \
                 future runs: remove `child` (the future is then a transaction of its own) or \
                 `future` (the call then spawns it)",
            ));
            false
        }
        (child, _) => child.is_some(),
    };
    let capture_err = match args.err {
        Some(err) => match not_a_result(&sig.output) {
            Some(found) => {
                errors.push(syn::Error::new_spanned(
                    err,
                    format!(
                        "`err` captures the `Err` of a `Result`, but `{}` returns {found}: remove \
                         `err`, or return a `Result` (or an alias whose name ends in `Result`)",
                        sig.ident
                    ),
                ));
                false
            }
            None => true,
        },
        None => false,
    };
    Plan {
        executor,
        name: args.name,
        op: args.op,
        thread_name,
        capture_err,
        child,
        monitor,
    }
}

/// Settles the monitor options: `schedule` needs `monitor`, and the minutes options are part of
/// the config a schedule sends. An option whose value was wrong (reported already) still counts
/// as written.
fn monitor(args: &mut Args, errors: &mut Errors) -> Option<MonitorPlan> {
    let (slug, schedule) = (args.monitor.take(), args.schedule.take());
    if let (false, Some(schedule)) = (args.monitor_written, &schedule) {
        errors.push(syn::Error::new_spanned(
            &schedule.tokens,
            "`schedule` is the schedule of a Sentry Crons monitor, and this fn has none: add \
             `monitor = \"slug\"` (the monitor to check in to), or remove `schedule`",
        ));
    }
    let mut minutes = |option: Option<Spelled<Minutes>>, key: &str| {
        let option = option?;
        if !args.schedule_written {
            errors.push(syn::Error::new_spanned(
                option.tokens,
                format!(
                    "`{key}` is part of the monitor config that `schedule` sends, and this fn has \
                     no `schedule`: add `schedule = \"0 3 * * *\"` (your crontab), or remove \
                     `{key}`"
                ),
            ));
            return None;
        }
        Some(option.value)
    };
    let max_runtime = minutes(args.max_runtime.take(), "max_runtime");
    let checkin_margin = minutes(args.checkin_margin.take(), "checkin_margin");
    Some(MonitorPlan {
        slug: slug?,
        schedule: schedule.map(|schedule| schedule.value),
        max_runtime,
        checkin_margin,
    })
}

fn executor_keyword(executor: &Executor) -> &'static str {
    match executor {
        Executor::Thread | Executor::Task => "the default executor",
        Executor::Blocking => "blocking",
        Executor::Local => "local",
        Executor::Rayon => "rayon",
        Executor::Spawner(_) => "spawner",
        Executor::Future => "future",
    }
}

/// What the fn returns instead of a `Result`, or `None` when it returns one: a path whose last
/// segment ends in `Result` (`Result`, `io::Result`, `anyhow::Result`, an alias `BotResult`).
fn not_a_result(output: &ReturnType) -> Option<String> {
    let ReturnType::Type(_, ty) = output else {
        return Some("`()`".to_owned());
    };
    if let Type::Path(path) = strip_parens(ty) {
        if let Some(last) = path.path.segments.last() {
            if last.ident.to_string().ends_with("Result") {
                return None;
            }
        }
    }
    Some(format!("`{}`", ty.to_token_stream()))
}
