//! Not public API: what `#[nursery]` and `spawn!` expand to.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use crate::errors::Errors;
use crate::kind::Kind;
pub use crate::kind::{Local, Sendable};
pub use crate::nursery::Nursery;
use crate::run::drive;

fn cancelled_value<T>(on_cancel: impl FnOnce() -> Option<T>) -> T {
    on_cancel().unwrap_or_else(|| {
        panic!(
            "a nursery was cancelled before its body returned, and its body's value is \
             neither `()` nor an `Option`, so there is no value to return; to finish with a \
             value, call `cancel()` from the body and return the value before its next `.await`"
        )
    })
}

/// A `-> Result<T, Errors<E>>` body: its failures flatten into the nursery's.
pub async fn run_errors<T, E, K, B>(
    nursery: Pin<&Nursery<'_, E, K>>,
    body: B,
    on_cancel: impl FnOnce() -> Option<T>,
) -> Result<T, Errors<E>>
where
    K: Kind,
    B: Future<Output = Result<T, Errors<E>>>,
{
    match drive(nursery, body, |out| out).await {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Ok(cancelled_value(on_cancel)),
        Err(errors) => Err(errors),
    }
}

/// A `-> Result<T, R>` body: children fail with `R`; the fn returns
/// `R::from(errors)`.
pub async fn run_result<T, R, K, B>(
    nursery: Pin<&Nursery<'_, R, K>>,
    body: B,
    on_cancel: impl FnOnce() -> Option<T>,
) -> Result<T, Errors<R>>
where
    K: Kind,
    B: Future<Output = Result<T, R>>,
{
    match drive(nursery, body, |out| out.map_err(Errors::from)).await {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Ok(cancelled_value(on_cancel)),
        Err(errors) => Err(errors),
    }
}

/// A body with no `Result`: no child can fail.
pub async fn run_value<T, K, B>(
    nursery: Pin<&Nursery<'_, Infallible, K>>,
    body: B,
    on_cancel: impl FnOnce() -> Option<T>,
) -> T
where
    K: Kind,
    B: Future<Output = T>,
{
    match drive(nursery, body, Ok).await {
        Ok(Some(value)) => value,
        Ok(None) => cancelled_value(on_cancel),
        Err(errors) => match errors.into_first() {},
    }
}

/// The parts of a `Result` return type, for bodies declared through an alias
/// (`anyhow::Result<T>`).
pub trait ResultParts {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
}

impl<T, R> ResultParts for Result<T, R> {
    type Ok = T;
    type Err = R;
}

/// The error type inside an `Errors<E>`.
pub trait ErrorsParts {
    /// `E`.
    type Error;
}

impl<E> ErrorsParts for Errors<E> {
    type Error = E;
}

/// The nursery's error type `E` as a value to carry into a child (`Copy`,
/// `Send` and `'static` whatever `E` is): [`Classify`] sorts a child's
/// output against it.
pub struct ErrorOf<E>(std::marker::PhantomData<fn() -> E>);

impl<E> Clone for ErrorOf<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for ErrorOf<E> {}

impl<E> std::fmt::Debug for ErrorOf<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ErrorOf")
    }
}

/// The error type of `nursery`'s children.
#[inline]
pub fn error_of<E, K: Kind>(_nursery: &Nursery<'_, E, K>) -> ErrorOf<E> {
    ErrorOf(std::marker::PhantomData)
}

/// Sorts a child's output against the nursery's error type `E`, by method
/// resolution at the spawn site (autoref specialisation, first match wins):
///
/// 1. inherent, by value: `Result<T, E>` (also when the child's error type
///    is still to be inferred: it becomes `E`, so `?` converts into it) and
///    `Option<Result<T, E>>` (a cancel scope's section) stay as they are;
/// 2. [`ClassifyNested`], by value: `Result<T, Errors<E>>` (a nested
///    nursery) flattens into the nursery's errors;
/// 3. [`ClassifyResult`], by `&`: any other `Result` stays a `Result` (and
///    is reported as not fitting `E`: never taken for a value);
/// 4. [`ClassifyValue`], by `&mut`: any other value is a success.
pub struct Classify<V, E>(std::cell::Cell<Option<V>>, ErrorOf<E>);

impl<V, E> std::fmt::Debug for Classify<V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Classify")
    }
}

impl<V, E> Classify<V, E> {
    /// A child's output, to sort.
    #[inline]
    pub fn new(output: V, _error: ErrorOf<E>) -> Self {
        Classify(std::cell::Cell::new(Some(output)), _error)
    }

    fn take(&self) -> V {
        self.0.take().expect("a child's output is sorted once")
    }
}

impl<T, E> Classify<Result<T, E>, E> {
    /// A `Result` of the nursery's error type: only `Err` is a failure.
    #[inline]
    pub fn __nursery_classify(self) -> Result<T, E> {
        self.take()
    }
}

impl<T, E> Classify<Option<Result<T, E>>, E> {
    /// A section that may have been cancelled (`CancelScope::run`,
    /// `move_on_after`): `Some(Err)` is a failure, like a `Result`'s.
    #[inline]
    pub fn __nursery_classify(self) -> Option<Result<T, E>> {
        self.take()
    }
}

/// The second choice of [`Classify`]: a nested nursery's `Errors<E>`.
pub trait ClassifyNested {
    /// The output the child is spawned with.
    type Output;
    /// Every one of the nested nursery's errors joins the outer ones.
    fn __nursery_classify(self) -> Self::Output;
}

impl<T, E> ClassifyNested for Classify<Result<T, Errors<E>>, E> {
    type Output = crate::outcome::Nested<T, E>;
    #[inline]
    fn __nursery_classify(self) -> Self::Output {
        crate::outcome::Nested(self.take())
    }
}

/// The third choice of [`Classify`]: a `Result` of another error type,
/// kept a `Result` so that the mismatch is reported.
pub trait ClassifyResult {
    /// The output.
    type Output;
    /// The `Result` as it is.
    fn __nursery_classify(self) -> Self::Output;
}

impl<T, R, E> ClassifyResult for &Classify<Result<T, R>, E> {
    type Output = Result<T, R>;
    #[inline]
    fn __nursery_classify(self) -> Result<T, R> {
        self.take()
    }
}

/// The fallback of [`Classify`]: a plain value is a success.
pub trait ClassifyValue {
    /// The value.
    type Value;
    /// The value, as a child output that never fails.
    fn __nursery_classify(self) -> crate::outcome::Value<Self::Value>;
}

impl<V, E> ClassifyValue for &mut Classify<V, E> {
    type Value = V;
    #[inline]
    fn __nursery_classify(self) -> crate::outcome::Value<V> {
        crate::outcome::Value(self.take())
    }
}

pub use crate::outcome::{End, Value};

/// What a cancelled body returns (autoref specialisation on the body's
/// value type): `()` and `None` for an `Option`; nothing for other types.
#[derive(Debug)]
pub struct CancelValue<T>(std::marker::PhantomData<T>);

impl<T> CancelValue<T> {
    /// For the body's value type `T`.
    #[inline]
    pub fn new() -> Self {
        CancelValue(std::marker::PhantomData)
    }
}

/// The [`CancelValue`] of a body's success type, taken from the body
/// future, so that its type is known where the value is chosen.
#[inline]
pub fn cancel_value_for<B, T, E>(_body: &B) -> CancelValue<T>
where
    B: Future<Output = Result<T, E>>,
{
    CancelValue::new()
}

impl<T> Default for CancelValue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelValue<()> {
    /// `()`.
    #[inline]
    pub fn __nursery_cancel_value(&self) -> Option<()> {
        Some(())
    }
}

impl<T> CancelValue<Option<T>> {
    /// `None`.
    #[inline]
    pub fn __nursery_cancel_value(&self) -> Option<Option<T>> {
        Some(None)
    }
}

/// The fallback of [`CancelValue`]: no value.
pub trait NoCancelValue {
    /// The body's value type.
    type Value;
    /// `None`.
    fn __nursery_cancel_value(&self) -> Option<Self::Value>;
}

impl<T> NoCancelValue for CancelValue<T> {
    type Value = T;
    #[inline]
    fn __nursery_cancel_value(&self) -> Option<T> {
        None
    }
}

/// The nursery handle of a `#[nursery]` body: borrowing the nursery for its
/// own `'scope` is what keeps task and nursery handles from escaping it.
#[inline]
pub fn handle<'scope, E, K: Kind>(
    nursery: Pin<&'scope Nursery<'scope, E, K>>,
) -> &'scope Nursery<'scope, E, K> {
    nursery.get_ref()
}

/// Fixes the output type of a `#[nursery]` body to the fn's declared
/// return type, so that `?` and `return` inside it infer as they would in
/// the fn itself.
#[inline]
pub fn body<T, F: Future<Output = T>>(body: F) -> F {
    body
}

/// A `return` in a `#[nursery]` body, checked against the fn's declared
/// return type where it is written (a mismatch is then one error at the
/// user's expression, as in a plain fn).
#[inline(always)]
pub fn returns<T>(value: T) -> T {
    value
}

/// Fixes the output of a child that is a `loop` left only through `?` to
/// `Result<(), E>`.
#[inline]
pub fn unit_result<F, E>(fut: F) -> F
where
    F: Future<Output = Result<(), E>>,
{
    fut
}

/// `spawn!(fut, parallel)`: the child must be `Send + 'static`; checked here,
/// at the user's expression, so that a borrow is reported there.
#[inline]
pub fn parallel_child<F>(fut: F) -> F
where
    F: Future + Send + 'static,
{
    fut
}

pub use crate::deadline::{FnDeadline, TimeoutChild, before_deadline, fn_deadline};

/// `#[nursery(grace = …)]`: cancelled children get `grace` to clean up.
pub fn set_grace<E, K: Kind>(nursery: &Nursery<'_, E, K>, grace: std::time::Duration) {
    nursery.state().grace = Some(grace);
}
