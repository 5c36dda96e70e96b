//! [`Errors`], every failure of a nursery, and [`Closed`].

use std::any::Any;
use std::borrow::Cow;
use std::fmt;

/// Every failure of a nursery, in the order they happened; never empty.
///
/// A nursery stops at its first failure (a child or the body returning
/// `Err`), cancels everything that is not shielded, and keeps collecting the
/// failures that happen until every child is gone. `Errors` holds them all,
/// each with the name of the child that produced it where it had one
/// (`spawn!(fut, name = "…")`). Errors of nested nurseries flatten into it
/// (`?` on an `Errors<E>` inside a `-> Result<_, Errors<E>>` body extends it).
///
/// # Examples
///
/// ```
/// use nursery::Errors;
///
/// let errors = Errors::from("disk full");
/// assert_eq!(errors.len(), 1);
/// assert_eq!(*errors.first(), "disk full");
/// assert_eq!(errors.to_string(), "disk full");
/// ```
#[must_use = "an `Errors` holds failures that should be handled or reported"]
pub struct Errors<E> {
    failures: Vec<Failure<E>>,
}

/// One failure of a nursery's child (or of its body): an error, or — in a
/// [`supervise`](crate::Nursery::supervise) nursery, where a child's panic
/// does not take the nursery down — a panic's payload; with the name of the
/// child it came from, where it had one.
///
/// [`Errors`] holds them in order ([`Errors::failures`]); a
/// `supervise = handler` nursery hands each to its handler as it happens;
/// [`Task::result`](crate::Task::result) gives the one of its child.
/// `Display` says which child failed and how.
///
/// # Examples
///
/// ```
/// use nursery::{nursery, spawn, Errors};
///
/// #[nursery(supervise)]
/// async fn run() -> Result<(), Errors<&'static str>> {
///     spawn!(async { Err::<(), _>("refused") }, name = "client 1");
///     spawn!(async { panic!("bad frame") }, name = "client 2");
///     Ok(())
/// }
///
/// let errors = futures::executor::block_on(run()).unwrap_err();
/// let failures: Vec<_> = errors.failures().collect();
/// assert_eq!(failures[0].name(), Some("client 1"));
/// assert_eq!(failures[0].error(), Some(&"refused"));
/// assert!(failures[1].is_panic());
/// assert_eq!(failures[1].to_string(), "child `client 2` of nursery `run` panicked: bad frame");
/// ```
pub struct Failure<E> {
    what: What<E>,
    task: Option<Cow<'static, str>>,
    /// The nursery the child belonged to, if it has a name (`#[nursery]`
    /// names it after its fn).
    nursery: Option<&'static str>,
}

/// What a [`Failure`] is.
enum What<E> {
    Error(E),
    /// The payload behind a mutex, so that `Errors` stays `Sync` (and
    /// converts into `anyhow::Error`): it is only ever taken out whole.
    Panic {
        payload: std::sync::Mutex<Payload>,
        message: Option<String>,
    },
    /// Only from [`Task::result`](crate::Task::result): the child ended
    /// with neither a value nor a failure of its own to give.
    Cancelled,
    /// Only from [`Task::result`](crate::Task::result) of a child that is
    /// itself a nursery: every failure of that nursery.
    Nested(Errors<E>),
}

/// A panic's payload.
pub(crate) type Payload = Box<dyn Any + Send>;

impl<E> Failure<E> {
    pub(crate) fn error_of(
        error: E,
        task: Option<Cow<'static, str>>,
        nursery: Option<&'static str>,
    ) -> Self {
        Failure {
            what: What::Error(error),
            task,
            nursery,
        }
    }

    pub(crate) fn panic_of(
        payload: Payload,
        task: Option<Cow<'static, str>>,
        nursery: Option<&'static str>,
    ) -> Self {
        let message = payload
            .downcast_ref::<&'static str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        Failure {
            what: What::Panic {
                payload: std::sync::Mutex::new(payload),
                message,
            },
            task,
            nursery,
        }
    }

    /// What `Task::result` gives for a child with nothing to give (it does
    /// not know the child's name).
    pub(crate) fn cancelled() -> Self {
        Failure {
            what: What::Cancelled,
            task: None,
            nursery: None,
        }
    }

    pub(crate) fn nested(errors: Errors<E>, task: Option<Cow<'static, str>>) -> Self {
        Failure {
            what: What::Nested(errors),
            task,
            nursery: None,
        }
    }

    /// Every failure this one stands for, as [`Errors`]: itself, or — for
    /// a child that is itself a nursery, as [`Task::result`](crate::Task::result)
    /// gives it — every failure of that nursery.
    pub fn into_errors(self) -> Errors<E> {
        match self.what {
            What::Nested(errors) => errors,
            _ => Errors {
                failures: vec![self],
            },
        }
    }

    /// The failures of a nested nursery, split back out for the policy.
    pub(crate) fn into_parts(self) -> Vec<Failure<E>> {
        match self.what {
            What::Nested(errors) => errors.failures,
            _ => vec![self],
        }
    }

    /// The name of the child that failed (`spawn!(fut, name = "…")`), or
    /// `None` for the body and for children spawned without a name.
    pub fn name(&self) -> Option<&str> {
        self.task.as_deref()
    }

    /// The name of the nursery the child belonged to (a `#[nursery]`
    /// nursery is named after its fn).
    pub fn nursery(&self) -> Option<&'static str> {
        self.nursery
    }

    /// The error, if the child failed with one (not a panic).
    pub fn error(&self) -> Option<&E> {
        match &self.what {
            What::Error(error) => Some(error),
            _ => None,
        }
    }

    /// The error, or the failure itself if it is not one (a panic, or a
    /// child that was cancelled).
    ///
    /// # Errors
    ///
    /// `Err(self)` when the failure is not an error.
    pub fn into_error(self) -> Result<E, Self> {
        match self.what {
            What::Error(error) => Ok(error),
            _ => Err(self),
        }
    }

    /// Whether the child panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.what, What::Panic { .. })
    }

    /// Whether the child was cancelled (only [`Task::result`](crate::Task::result)
    /// gives such a failure: a cancelled child never fails its nursery).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.what, What::Cancelled)
    }

    /// The panic's payload, as [`std::panic::catch_unwind`] gives it
    /// (resume it with [`std::panic::resume_unwind`]), or the failure
    /// itself if it is not a panic.
    ///
    /// # Errors
    ///
    /// `Err(self)` when the failure is not a panic.
    pub fn into_panic(self) -> Result<Box<dyn Any + Send>, Self> {
        match self.what {
            What::Panic { payload, .. } => {
                Ok(payload.into_inner().unwrap_or_else(|e| e.into_inner()))
            }
            _ => Err(self),
        }
    }

    /// The panic's message, when the payload is a string (what `panic!`
    /// makes).
    pub fn panic_message(&self) -> Option<&str> {
        match &self.what {
            What::Panic { message, .. } => message.as_deref(),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = |f: &mut fmt::Formatter<'_>| match &self.what {
            What::Error(error) => write!(f, "failed: {error}"),
            What::Panic { .. } => match self.panic_message() {
                Some(message) => write!(f, "panicked: {message}"),
                None => f.write_str("panicked"),
            },
            What::Cancelled => f.write_str("was cancelled"),
            What::Nested(errors) => write!(f, "failed: {errors}"),
        };
        match (&self.task, self.nursery, &self.what) {
            (None, _, What::Error(error)) => write!(f, "{error}"),
            (None, _, _) => {
                f.write_str("a child ")?;
                how(f)
            }
            (Some(name), Some(nursery), _) => {
                write!(f, "child `{name}` of nursery `{nursery}` ")?;
                how(f)
            }
            (Some(name), None, _) => {
                write!(f, "child `{name}` ")?;
                how(f)
            }
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Failure");
        d.field("name", &self.task);
        match &self.what {
            What::Error(error) => d.field("error", error),
            What::Panic { .. } => d.field("panic", &self.panic_message().unwrap_or("Box<dyn Any>")),
            What::Cancelled => d.field("cancelled", &true),
            What::Nested(errors) => d.field("errors", errors),
        };
        d.finish()
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for Failure<E> {}

impl<E> Errors<E> {
    /// Records one failure of the child named `task` (if it has a name) of
    /// the nursery named `nursery`.
    pub(crate) fn push(
        slot: &mut Option<Self>,
        error: E,
        task: Option<Cow<'static, str>>,
        nursery: Option<&'static str>,
    ) {
        Self::push_failure(slot, Failure::error_of(error, task, nursery));
    }

    /// Records one failure.
    pub(crate) fn push_failure(slot: &mut Option<Self>, failure: Failure<E>) {
        match slot {
            Some(errors) => errors.failures.push(failure),
            None => {
                *slot = Some(Errors {
                    failures: vec![failure],
                })
            }
        }
    }

    /// Appends every failure of `other` (a nested nursery's, or the body's).
    pub(crate) fn extend(slot: &mut Option<Self>, other: Self) {
        match slot {
            Some(errors) => errors.failures.extend(other.failures),
            None => *slot = Some(other),
        }
    }

    /// How many failures there are (at least one), panics included.
    #[allow(clippy::len_without_is_empty)] // never empty by construction
    pub fn len(&self) -> usize {
        self.failures.len()
    }

    /// Every failure, in the order they happened, each with its child's
    /// name: the errors, and the child panics a `supervise` nursery keeps.
    pub fn failures(&self) -> impl ExactSizeIterator<Item = &Failure<E>> + '_ {
        self.failures.iter()
    }

    /// Consumes the errors and returns every failure, in order.
    pub fn into_failures(self) -> Vec<Failure<E>> {
        self.failures
    }

    /// The errors, in the order they happened. Only a `supervise` nursery
    /// keeps a child's panic in `Errors` (a fail-fast one resumes it): those
    /// are not errors and are not in this iterator; [`Errors::failures`]
    /// has them all.
    pub fn iter(&self) -> Iter<'_, E> {
        Iter(self.failures.iter())
    }

    /// The errors with the name of the child that produced each (`None`
    /// for the body and for children spawned without a name).
    pub fn iter_named(&self) -> impl Iterator<Item = (Option<&str>, &E)> + '_ {
        self.failures
            .iter()
            .filter_map(|f| Some((f.task.as_deref(), f.error()?)))
    }

    /// The first error: the one that cancelled a fail-fast nursery.
    ///
    /// # Panics
    ///
    /// When every failure is a panic, which only a `supervise` nursery
    /// keeps: read [`Errors::failures`] there.
    pub fn first(&self) -> &E {
        self.iter().next().unwrap_or_else(|| only_panics())
    }

    /// Consumes the errors and returns the first error.
    ///
    /// # Panics
    ///
    /// As [`Errors::first`].
    pub fn into_first(self) -> E {
        self.into_vec()
            .into_iter()
            .next()
            .unwrap_or_else(|| only_panics())
    }

    /// Consumes the errors and returns every error, in order (a
    /// `supervise` nursery's child panics are only in
    /// [`Errors::into_failures`]).
    pub fn into_vec(self) -> Vec<E> {
        self.failures
            .into_iter()
            .filter_map(|f| f.into_error().ok())
            .collect()
    }
}

impl<E> Errors<E> {
    /// What a `#[nursery]` fn declared `-> Result<T, R>` returns for its
    /// failures: `R::from(self)` (generated code calls it).
    #[doc(hidden)]
    #[inline]
    pub fn into_return_error<R: TakesErrors<E>>(self) -> R {
        R::from(self)
    }
}

/// An error type a `#[nursery]` fn may declare (`-> Result<T, Self>`): one
/// that takes the nursery's failures, `From<Errors<E>>`. Implemented for
/// every such type; named so that a type without it is reported in words.
#[diagnostic::on_unimplemented(
    message = "this fn returns `Result<_, {Self}>`, and `{Self}` cannot take the nursery's failures (`nursery::Errors<{E}>`)",
    label = "declared here",
    note = "add `impl From<nursery::Errors<{E}>> for {Self}` (say, a variant holding them), or declare `-> Result<_, nursery::Errors<{E}>>`; `anyhow::Error` and `Box<dyn Error + Send + Sync>` take them as they are"
)]
pub trait TakesErrors<E>: From<Errors<E>> {}

#[diagnostic::do_not_recommend]
impl<E, R: From<Errors<E>>> TakesErrors<E> for R {}

#[cold]
fn only_panics() -> ! {
    panic!(
        "every failure in this `Errors` is a child's panic (kept by a `supervise` nursery): \
         read them with `Errors::failures()`"
    )
}

impl<E> From<E> for Errors<E> {
    fn from(error: E) -> Self {
        Errors {
            failures: vec![Failure::error_of(error, None, None)],
        }
    }
}

/// `spawn!(…, parallel)` in a body whose errors are `std::io::Error`.
impl From<crate::SpawnError> for Errors<std::io::Error> {
    fn from(error: crate::SpawnError) -> Self {
        Errors::from(std::io::Error::from(error))
    }
}

/// `spawn!(…, parallel)` in a body whose errors are boxed.
impl From<crate::SpawnError> for Errors<Box<dyn std::error::Error + Send + Sync>> {
    fn from(error: crate::SpawnError) -> Self {
        Errors::from(Box::<dyn std::error::Error + Send + Sync>::from(error))
    }
}

impl<E> IntoIterator for Errors<E> {
    type Item = E;
    type IntoIter = std::vec::IntoIter<E>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'a, E> IntoIterator for &'a Errors<E> {
    type Item = &'a E;
    type IntoIter = Iter<'a, E>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The iterator of [`Errors::iter`].
#[derive(Debug)]
pub struct Iter<'a, E>(std::slice::Iter<'a, Failure<E>>);

impl<'a, E> Iterator for Iter<'a, E> {
    type Item = &'a E;

    fn next(&mut self) -> Option<&'a E> {
        self.0.find_map(Failure::error)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.0.size_hint().1)
    }
}

impl<E> DoubleEndedIterator for Iter<'_, E> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.by_ref().rev().find_map(Failure::error)
    }
}

impl<E: fmt::Display> fmt::Display for Errors<E> {
    /// One failure prints as itself (prefixed by its child's name); several
    /// print as a numbered list.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn one<E: fmt::Display>(f: &mut fmt::Formatter<'_>, failure: &Failure<E>) -> fmt::Result {
            write!(f, "{failure}")
        }
        if let [only] = self.failures.as_slice() {
            return one(f, only);
        }
        write!(f, "{} errors:", self.failures.len())?;
        for (i, failure) in self.failures.iter().enumerate() {
            write!(f, "\n  {}. ", i + 1)?;
            one(f, failure)?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug> fmt::Debug for Errors<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Named<'a, E>(&'a Failure<E>);
        impl<E: fmt::Debug> fmt::Debug for Named<'_, E> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let failure = self.0;
                if let Some(name) = &failure.task {
                    write!(f, "{name}: ")?;
                }
                match &failure.what {
                    What::Error(error) => write!(f, "{error:?}"),
                    What::Panic { .. } => match failure.panic_message() {
                        Some(message) => write!(f, "panicked: {message:?}"),
                        None => f.write_str("panicked"),
                    },
                    What::Cancelled => f.write_str("cancelled"),
                    What::Nested(errors) => write!(f, "{errors:?}"),
                }
            }
        }
        f.debug_tuple("Errors")
            .field(&DebugList(&self.failures, |x| Named(x)))
            .finish()
    }
}

struct DebugList<'a, T, F>(&'a [T], F);
impl<'a, T, D: fmt::Debug, F: Fn(&'a T) -> D> fmt::Debug for DebugList<'a, T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(&self.1)).finish()
    }
}

/// `Errors<E>` is a [`std::error::Error`] whenever `E` can be shown, so it
/// converts into `anyhow::Error` and `Box<dyn Error + Send + Sync>` with `?`.
impl<E: fmt::Debug + fmt::Display> std::error::Error for Errors<E> {}

/// The error for using a nursery after it finished.
///
/// Lifetimes rule out most late uses at compile time (a task or nursery
/// handle cannot leave its nursery); what is left is code that runs while the
/// nursery tears down, such as the `Drop` of a cancelled child trying to spawn
/// a replacement. [`Nursery::try_spawn`](crate::Nursery::try_spawn) reports
/// that as `Closed`.
///
/// # Examples
///
/// ```
/// let e = nursery::Closed;
/// assert_eq!(e.to_string(), "the nursery has already finished: no child can be spawned into it");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the nursery has already finished: no child can be spawned into it")
    }
}

impl std::error::Error for Closed {}
