//! How the value returned by a body becomes the continuation's status (`ok` or `internal_error`)
//! and, when asked, an error event: the [`Verdict`] on the output, given by a [`Classifier`].
//!
//! `#[traced_spawn]` sees the written return type and fails a continuation whose `Result` is an
//! `Err` (with `err`, also capturing it as an event); [`Builder`] cannot tell a `Result` from
//! another output in generic code, so it treats every output as a success unless told:
//! [`Builder::fallible`] ([`ErrIsFailure`]), [`Builder::capture_errors`] ([`ErrIsCaptured`]) or
//! [`Builder::classify`] with a [`Rule`] of your own. Every rule about `Result` lives here: the
//! classifiers and the probe the macro applies to the written return type call the same
//! functions below.
//!
//! [`Builder::fallible`]: crate::Builder::fallible
//! [`Builder::capture_errors`]: crate::Builder::capture_errors
//! [`Builder::classify`]: crate::Builder::classify
//!
//! [`Builder`]: crate::Builder

use std::error::Error;
use std::fmt::Debug;
use std::ops::Deref;

use sentry::protocol::{Event, Exception, Level, SpanStatus};

/// What the output of a body means for its continuation transaction.
///
/// A [`Classifier`] turns the body's return value into a `Verdict`; the continuation is then
/// finished with status `ok` ([`Verdict::Ok`]) or `internal_error` (the other variants). A status the
/// body set itself on the transaction is kept, unless the body panicked.
///
/// ```
/// use traced_spawn::classify::Verdict;
/// use traced_spawn::Builder;
///
/// // A body whose `None` means "not found", which is a failure of this job.
/// let found = Builder::new("lookup")
///     .classify(|out: &Option<u32>| if out.is_some() { Verdict::Ok } else { Verdict::Failed })
///     .run(|| None);
/// assert_eq!(found, None);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Verdict {
    /// The body succeeded: status `ok`.
    Ok,
    /// The body failed: status `internal_error`.
    Failed,
    /// The body failed and this error event is captured, linked to the continuation, before it
    /// finishes with status `internal_error`.
    FailedWithEvent(Box<Event<'static>>),
}

impl Verdict {
    /// Whether the body failed.
    ///
    /// ```
    /// use traced_spawn::classify::{Classifier, ErrIsFailure};
    ///
    /// assert!(ErrIsFailure.classify(&"x".parse::<u8>()).is_failure());
    /// assert!(!ErrIsFailure.classify(&"7".parse::<u8>()).is_failure());
    /// ```
    pub fn is_failure(&self) -> bool {
        !matches!(self, Verdict::Ok)
    }

    pub(crate) fn status(&self) -> SpanStatus {
        if self.is_failure() {
            SpanStatus::InternalError
        } else {
            SpanStatus::Ok
        }
    }

    /// The verdict on an `Err`: failed, with the event `event` builds when `capture` is set.
    fn of_err(capture: bool, event: impl FnOnce() -> Event<'static>) -> Verdict {
        if capture {
            Verdict::FailedWithEvent(Box::new(event()))
        } else {
            Verdict::Failed
        }
    }
}

/// The rule a continuation applies to its body's output: a plain function, so nothing of it is
/// generic in the continuation's type.
pub type Rule<R> = fn(&R) -> Verdict;

/// Classifies the output of a body into a [`Verdict`].
///
/// Implemented by [`AlwaysOk`] (the default), [`ErrIsFailure`], [`ErrIsCaptured`] and by any
/// [`Rule`], a `fn(&R) -> Verdict` (a closure that captures nothing is one):
///
/// ```
/// use traced_spawn::classify::Verdict;
/// use traced_spawn::Builder;
///
/// // A body whose `None` means failure.
/// let found = Builder::new("lookup")
///     .classify(|out: &Option<u32>| if out.is_some() { Verdict::Ok } else { Verdict::Failed })
///     .run(|| Some(7));
/// assert_eq!(found, Some(7));
/// ```
pub trait Classifier<R> {
    /// The rule as a plain function, which the continuation keeps until the body returns.
    fn rule(self) -> Rule<R>;

    /// Turns the body's output into a verdict.
    fn classify(self, output: &R) -> Verdict
    where
        Self: Sized,
    {
        (self.rule())(output)
    }
}

impl<R> Classifier<R> for Rule<R> {
    fn rule(self) -> Rule<R> {
        self
    }
}

/// Every return value is a success; only a panic fails the continuation.
///
/// ```
/// use traced_spawn::classify::{AlwaysOk, Classifier};
///
/// assert!(!AlwaysOk.classify(&Err::<(), _>("ignored")).is_failure());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysOk;

impl<R> Classifier<R> for AlwaysOk {
    fn rule(self) -> Rule<R> {
        |_| Verdict::Ok
    }
}

/// An `Err` of any type fails the continuation (status `internal_error`).
///
/// ```
/// use traced_spawn::classify::{Classifier, ErrIsFailure};
///
/// assert!(ErrIsFailure.classify(&Err::<(), _>("boom")).is_failure());
/// assert!(!ErrIsFailure.classify(&Ok::<_, ()>(1)).is_failure());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrIsFailure;

impl<T, E> Classifier<Result<T, E>> for ErrIsFailure {
    fn rule(self) -> Rule<Result<T, E>> {
        |output| match output {
            Ok(_) => Verdict::Ok,
            Err(_) => Verdict::Failed,
        }
    }
}

/// An `Err` fails the continuation and is captured as a Sentry error event, an exception chain in
/// `source()` order, linked to it.
///
/// For `anyhow::Error` or `Box<dyn Error + Send + Sync>`, which do not implement `Error`
/// themselves, use the macro's `err` option (it recognizes any error that derefs to
/// `dyn Error`) or classify with a [`Rule`] of your own.
///
/// ```
/// use traced_spawn::classify::{Classifier, ErrIsCaptured, Verdict};
///
/// let err: Result<(), std::io::Error> = Err(std::io::Error::other("disk full"));
/// let Verdict::FailedWithEvent(event) = ErrIsCaptured.classify(&err) else { unreachable!() };
/// assert_eq!(event.exception.values[0].value.as_deref(), Some("disk full"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrIsCaptured;

impl<T, E: Error> Classifier<Result<T, E>> for ErrIsCaptured {
    fn rule(self) -> Rule<Result<T, E>> {
        |output| match output {
            Ok(_) => Verdict::Ok,
            Err(err) => Verdict::of_err(true, || error_event(err)),
        }
    }
}

/// An error and its `source()` chain as one event, as sentry's own integrations build it.
fn error_event<E: Error + ?Sized>(err: &E) -> Event<'static> {
    sentry::event_from_error(err)
}

/// An error that is not a `std::error::Error`: one exception named after its type, with its
/// `Debug` text when it has one.
fn typed_event<E>(debug: Option<&dyn Debug>) -> Event<'static> {
    let value = match debug {
        Some(debug) => format!("{debug:?}"),
        None => format!("`Err` of type `{}`", std::any::type_name::<E>()),
    };
    Event {
        level: Level::Error,
        exception: vec![Exception {
            ty: std::any::type_name::<E>().to_owned(),
            value: Some(value),
            ..Default::default()
        }]
        .into(),
        ..Default::default()
    }
}

/// The macro's view of the written return type, by autoref specialization: the generated code
/// calls `(&&&&&Probe(&output)).__traced_spawn_verdict(capture)` and the most specific impl for
/// the concrete type wins, one `&` per level:
///
/// 1. `Result<_, E: Error>`: the error and its chain;
/// 2. `Result<_, E: Deref<Target: Error>>` (`anyhow::Error`, `Box<dyn Error + Send + Sync>`): the
///    same, through the deref;
/// 3. `Result<_, E: Debug>`: an exception named after `E` with its `Debug` text;
/// 4. any other `Result`: an exception named after `E`;
/// 5. anything else: a success.
///
/// Every `Err` fails; `capture` (the `err` option) adds the event.
pub mod probe {
    use super::*;

    /// The probed output.
    pub struct Probe<'a, T>(pub &'a T);

    macro_rules! level {
        ($(#[$doc:meta])* $trait:ident) => {
            $(#[$doc])*
            pub trait $trait {
                /// The verdict on the probed output.
                fn __traced_spawn_verdict(&self, capture: bool) -> Verdict;
            }
        };
    }

    level!(
        /// Level 1: `Result<_, E: Error>`.
        ErrorVerdict
    );
    level!(
        /// Level 2: `Result<_, E>` where `E` derefs to an error.
        DerefErrorVerdict
    );
    level!(
        /// Level 3: `Result<_, E: Debug>`.
        DebugVerdict
    );
    level!(
        /// Level 4: any `Result`.
        ResultVerdict
    );
    level!(
        /// Level 5: any output.
        OtherVerdict
    );

    impl<T, E: Error> ErrorVerdict for &&&&Probe<'_, Result<T, E>> {
        fn __traced_spawn_verdict(&self, capture: bool) -> Verdict {
            match self.0 {
                Ok(_) => Verdict::Ok,
                Err(err) => Verdict::of_err(capture, || error_event(err)),
            }
        }
    }

    impl<T, E> DerefErrorVerdict for &&&Probe<'_, Result<T, E>>
    where
        E: Deref,
        E::Target: Error,
    {
        fn __traced_spawn_verdict(&self, capture: bool) -> Verdict {
            match self.0 {
                Ok(_) => Verdict::Ok,
                Err(err) => Verdict::of_err(capture, || error_event(&**err)),
            }
        }
    }

    impl<T, E: Debug> DebugVerdict for &&Probe<'_, Result<T, E>> {
        fn __traced_spawn_verdict(&self, capture: bool) -> Verdict {
            match self.0 {
                Ok(_) => Verdict::Ok,
                Err(err) => Verdict::of_err(capture, || typed_event::<E>(Some(err))),
            }
        }
    }

    impl<T, E> ResultVerdict for &Probe<'_, Result<T, E>> {
        fn __traced_spawn_verdict(&self, capture: bool) -> Verdict {
            match self.0 {
                Ok(_) => Verdict::Ok,
                Err(_) => Verdict::of_err(capture, || typed_event::<E>(None)),
            }
        }
    }

    impl<T> OtherVerdict for Probe<'_, T> {
        fn __traced_spawn_verdict(&self, _: bool) -> Verdict {
            Verdict::Ok
        }
    }
}
