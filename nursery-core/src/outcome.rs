//! What a child may return, and which of that is a failure.

/// A child's output: `()` or `Result<T, E>` (only `Err` is a failure).
///
/// `spawn!` also accepts children that return any other value (it wraps the
/// value in `Ok`); the method form [`Nursery::spawn`](crate::Nursery::spawn)
/// takes `()` and `Result` outputs, so that `?` inside a child's async block
/// infers the nursery's error type.
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
    fn into_result(self) -> Result<Self::Ok, E>;

    /// Whether the output is a failure, without taking it apart (for
    /// traces).
    #[doc(hidden)]
    fn is_failure(&self) -> bool {
        false
    }
}

impl<E> Outcome<E> for () {
    type Ok = ();
    fn into_result(self) -> Result<(), E> {
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
    fn into_result(self) -> Result<std::convert::Infallible, E> {
        self
    }
}

impl<T, E> Outcome<E> for Result<T, E> {
    type Ok = T;
    fn into_result(self) -> Result<T, E> {
        self
    }
    fn is_failure(&self) -> bool {
        self.is_err()
    }
}
