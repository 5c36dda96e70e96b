//! [`Errors`], every failure of a nursery, and [`Closed`].

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

#[derive(Debug)]
struct Failure<E> {
    error: E,
    task: Option<Cow<'static, str>>,
    /// The nursery the child belonged to, if it has a name (`#[nursery]`
    /// names it after its fn).
    nursery: Option<&'static str>,
}

impl<E> Errors<E> {
    /// Records one failure of the child named `task` (if it has a name) of
    /// the nursery named `nursery`.
    pub(crate) fn push(
        slot: &mut Option<Self>,
        error: E,
        task: Option<Cow<'static, str>>,
        nursery: Option<&'static str>,
    ) {
        let failure = Failure {
            error,
            task,
            nursery,
        };
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

    /// How many failures there are (at least one).
    #[allow(clippy::len_without_is_empty)] // never empty by construction
    pub fn len(&self) -> usize {
        self.failures.len()
    }

    /// The failures, in the order they happened.
    pub fn iter(&self) -> Iter<'_, E> {
        Iter(self.failures.iter())
    }

    /// The failures with the name of the child that produced each (`None`
    /// for the body and for children spawned without a name).
    pub fn iter_named(&self) -> impl ExactSizeIterator<Item = (Option<&str>, &E)> + '_ {
        self.failures.iter().map(|f| (f.task.as_deref(), &f.error))
    }

    /// The first failure: the one that cancelled the nursery.
    pub fn first(&self) -> &E {
        &self.failures[0].error
    }

    /// Consumes the errors and returns the first failure.
    pub fn into_first(self) -> E {
        self.failures
            .into_iter()
            .next()
            .expect("`Errors` is never empty")
            .error
    }

    /// Consumes the errors and returns every failure, in order.
    pub fn into_vec(self) -> Vec<E> {
        self.failures.into_iter().map(|f| f.error).collect()
    }
}

impl<E> From<E> for Errors<E> {
    fn from(error: E) -> Self {
        Errors {
            failures: vec![Failure {
                error,
                task: None,
                nursery: None,
            }],
        }
    }
}

/// `spawn!(…, parallel)?` in a body whose errors are `std::io::Error`.
impl From<crate::SpawnError> for Errors<std::io::Error> {
    fn from(error: crate::SpawnError) -> Self {
        Errors::from(std::io::Error::from(error))
    }
}

/// `spawn!(…, parallel)?` in a body whose errors are boxed.
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
        self.0.next().map(|f| &f.error)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<E> ExactSizeIterator for Iter<'_, E> {}

impl<E> DoubleEndedIterator for Iter<'_, E> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|f| &f.error)
    }
}

impl<E: fmt::Display> fmt::Display for Errors<E> {
    /// One failure prints as itself (prefixed by its child's name); several
    /// print as a numbered list.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn one<E: fmt::Display>(f: &mut fmt::Formatter<'_>, failure: &Failure<E>) -> fmt::Result {
            match (&failure.task, failure.nursery) {
                (Some(name), Some(nursery)) => write!(
                    f,
                    "child `{name}` of nursery `{nursery}` failed: {}",
                    failure.error
                ),
                (Some(name), None) => write!(f, "child `{name}` failed: {}", failure.error),
                (None, _) => write!(f, "{}", failure.error),
            }
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
                match &self.0.task {
                    Some(name) => write!(f, "{name}: {:?}", self.0.error),
                    None => write!(f, "{:?}", self.0.error),
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
