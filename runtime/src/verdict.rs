//! How the value returned by a body becomes the continuation's status.

use sentry::protocol::{Event, SpanStatus};

/// What the output of a body means for its continuation transaction.
///
/// A [`Classifier`] turns the body's return value into a `Verdict`; the continuation is then
/// finished with status `ok` ([`Verdict::Ok`]) or `internal_error` (the other variants). A status the
/// body set itself on the transaction is kept, unless the body panicked.
///
/// ```
/// use traced_spawn::Verdict;
///
/// let verdict = Verdict::Failed;
/// assert!(verdict.is_failure());
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
    /// assert!(!traced_spawn::Verdict::Ok.is_failure());
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
}

/// Classifies the output of a body into a [`Verdict`].
///
/// Implemented by [`AlwaysOk`] (the default), [`ErrIsFailure`], [`ErrIsCaptured`] and by any
/// `FnOnce(&R) -> Verdict` closure.
///
/// ```
/// use traced_spawn::{Builder, Verdict};
///
/// // A body whose `None` means failure.
/// let found = Builder::new("lookup")
///     .classify(|out: &Option<u32>| if out.is_some() { Verdict::Ok } else { Verdict::Failed })
///     .run(|| Some(7));
/// assert_eq!(found, Some(7));
/// ```
pub trait Classifier<R> {
    /// Turns the body's output into a verdict.
    fn classify(self, output: &R) -> Verdict;
}

/// Every return value is a success; only a panic fails the continuation.
///
/// ```
/// use traced_spawn::{AlwaysOk, Classifier};
///
/// assert!(!AlwaysOk.classify(&Err::<(), _>("ignored")).is_failure());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysOk;

impl<R> Classifier<R> for AlwaysOk {
    fn classify(self, _: &R) -> Verdict {
        Verdict::Ok
    }
}

/// An `Err` fails the continuation (status `internal_error`).
///
/// ```
/// use traced_spawn::{Classifier, ErrIsFailure};
///
/// assert!(ErrIsFailure.classify(&Err::<(), _>("boom")).is_failure());
/// assert!(!ErrIsFailure.classify(&Ok::<_, ()>(1)).is_failure());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrIsFailure;

impl<T, E> Classifier<Result<T, E>> for ErrIsFailure {
    fn classify(self, output: &Result<T, E>) -> Verdict {
        match output {
            Ok(_) => Verdict::Ok,
            Err(_) => Verdict::Failed,
        }
    }
}

/// An `Err` fails the continuation and is captured as a Sentry error event (with its `source()`
/// chain) linked to it.
///
/// ```
/// use traced_spawn::{Classifier, ErrIsCaptured, Verdict};
///
/// let err: Result<(), std::io::Error> = Err(std::io::Error::other("disk full"));
/// assert!(matches!(ErrIsCaptured.classify(&err), Verdict::FailedWithEvent(_)));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrIsCaptured;

impl<T, E: std::error::Error + 'static> Classifier<Result<T, E>> for ErrIsCaptured {
    fn classify(self, output: &Result<T, E>) -> Verdict {
        match output {
            Ok(_) => Verdict::Ok,
            Err(err) => Verdict::FailedWithEvent(Box::new(sentry::event_from_error(err))),
        }
    }
}

impl<R, F: FnOnce(&R) -> Verdict> Classifier<R> for F {
    fn classify(self, output: &R) -> Verdict {
        self(output)
    }
}
