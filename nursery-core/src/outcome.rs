//! What a child may return, and which of that is a failure.

use crate::errors::Errors;

/// A child's output, split into its success value and its failure.
///
/// Implemented for what a child may return in a nursery whose error type is
/// `E`:
///
/// | output | success value | failure |
/// | --- | --- | --- |
/// | `()` | `()` | never |
/// | `Result<T, E>` | `T` | its `Err` |
/// | `Result<T, Errors<E>>` (a nested nursery, through `spawn!`) | `T` | every one of its errors, flattened into the outer [`Errors`] |
/// | `Option<Result<T, E>>` (what [`CancelScope::run`](crate::CancelScope::run) and [`move_on_after`](crate::move_on_after) give) | `Option<T>` (`None`: it was cancelled) | its `Err` |
/// | `!` (a child that never returns) | — | never |
///
/// No output type hides a failure. `spawn!` also accepts children that
/// return any other value (it wraps the value in `Ok`); the method form
/// [`Nursery::spawn`](crate::Nursery::spawn) takes the outputs above, so that
/// `?` inside a child's async block infers the nursery's error type. The
/// trait is not meant to be implemented outside this crate.
///
/// [`Errors`]: crate::Errors
#[diagnostic::on_unimplemented(
    message = "this child's output `{Self}` does not fit a nursery whose error type is `{E}`",
    label = "this child returns `{Self}`",
    note = "a child may return `()`, a value, or `Result<_, {E}>` (the nursery's error type); convert another error type with `.map_err(...)`",
    note = "a `#[nursery]` fn that returns no `Result` accepts only children that cannot fail: declare it `-> Result<_, nursery::Errors<E>>` to let children fail"
)]
pub trait Outcome<E> {
    /// The success value, given to the child's task handle.
    type Ok;
    /// Splits the output into success and failure.
    fn into_result(self) -> Result<Self::Ok, Failed<E>>;

    /// How the child ended: as [`Outcome::into_result`] says, or cut short
    /// by a deadline of its own (no value, no failure).
    #[doc(hidden)]
    fn into_end(self) -> End<Self::Ok, E>
    where
        Self: Sized,
    {
        match self.into_result() {
            Ok(value) => End::Value(value),
            Err(failed) => End::Failed(failed),
        }
    }

    /// Whether the output is a failure, without taking it apart (for
    /// traces).
    #[doc(hidden)]
    fn is_failure(&self) -> bool {
        false
    }
}

/// How a child ended, as its node keeps it.
#[doc(hidden)]
#[derive(Debug)]
pub enum End<T, E> {
    /// Its success value, for its task handle.
    Value(T),
    /// Its failure.
    Failed(Failed<E>),
    /// Cancelled by a deadline of its own: no value (its handle gives
    /// `None`), and not a failure.
    Cancelled,
}

/// The output of a child under a deadline of its own
/// (`spawn!(fut, timeout = …)`): its own output, or cut short.
#[derive(Debug)]
pub(crate) enum Cut<O, E> {
    /// It ended by itself.
    Done(O),
    /// Its deadline passed (`timeout`, `deadline`): cancelled.
    Cancelled,
    /// Its deadline passed (`fail_after`): this failure.
    Failed(E),
}

impl<O: Outcome<E>, E> Outcome<E> for Cut<O, E> {
    type Ok = O::Ok;
    /// Only [`Outcome::into_end`] can say "cancelled"; the crate never
    /// asks a `Cut` for its result.
    fn into_result(self) -> Result<O::Ok, Failed<E>> {
        match self.into_end() {
            End::Value(value) => Ok(value),
            End::Failed(failed) => Err(failed),
            End::Cancelled => panic!(
                "a child cut short by its deadline has no value: ask `into_end`, not `into_result`"
            ),
        }
    }
    fn into_end(self) -> End<O::Ok, E> {
        match self {
            Cut::Done(out) => out.into_end(),
            Cut::Cancelled => End::Cancelled,
            Cut::Failed(error) => End::Failed(Failed::One(error)),
        }
    }
    fn is_failure(&self) -> bool {
        match self {
            Cut::Done(out) => out.is_failure(),
            Cut::Cancelled => false,
            Cut::Failed(_) => true,
        }
    }
}

/// A child's failure as its output gives it: one error, or every error of
/// a nested nursery.
#[derive(Debug)]
pub enum Failed<E> {
    /// One error, reported under the child's name.
    One(E),
    /// A nested nursery's errors, each under its own child's name.
    Many(Errors<E>),
}

impl<E> Outcome<E> for () {
    type Ok = ();
    fn into_result(self) -> Result<(), Failed<E>> {
        Ok(())
    }
}

/// Names the never type `!` on stable Rust: `<fn() -> ! as HasOutput>::Output`.
pub trait HasOutput {
    /// The return type.
    type Output;
}

impl<R> HasOutput for fn() -> R {
    type Output = R;
}

/// `!`, the type of a child that never returns (`async { loop { … } }`).
pub type Never = <fn() -> ! as HasOutput>::Output;

/// A child that never returns never fails: it ends only when cancelled.
impl<E> Outcome<E> for Never {
    type Ok = std::convert::Infallible;
    fn into_result(self) -> Result<std::convert::Infallible, Failed<E>> {
        self
    }
}

impl<T, E> Outcome<E> for Result<T, E> {
    type Ok = T;
    fn into_result(self) -> Result<T, Failed<E>> {
        self.map_err(Failed::One)
    }
    fn is_failure(&self) -> bool {
        self.is_err()
    }
}

/// A nested nursery as a child (`spawn!` of a fn that returns
/// `Result<T, Errors<E>>`): its errors join the outer nursery's.
#[doc(hidden)]
#[derive(Debug)]
pub struct Nested<T, E>(pub Result<T, Errors<E>>);

impl<T, E> Outcome<E> for Nested<T, E> {
    type Ok = T;
    fn into_result(self) -> Result<T, Failed<E>> {
        self.0.map_err(Failed::Many)
    }
    fn is_failure(&self) -> bool {
        self.0.is_err()
    }
}

/// A section that may have been cancelled (`CancelScope::run`,
/// `move_on_after`): `None` is a success (cancelled), `Some(Err)` a failure.
impl<T, E> Outcome<E> for Option<Result<T, E>> {
    type Ok = Option<T>;
    fn into_result(self) -> Result<Option<T>, Failed<E>> {
        self.transpose().map_err(Failed::One)
    }
    fn is_failure(&self) -> bool {
        matches!(self, Some(Err(_)))
    }
}

/// What `spawn!` makes of a child's plain value (not a `Result`): a success
/// whatever the nursery's error type, with no inference left to do.
#[doc(hidden)]
#[derive(Debug)]
pub struct Value<T>(pub T);

impl<T, E> Outcome<E> for Value<T> {
    type Ok = T;
    fn into_result(self) -> Result<T, Failed<E>> {
        Ok(self.0)
    }
}
