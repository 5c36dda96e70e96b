//! Whether a nursery's children must be `Send`.
//!
//! A nursery stores its local children type-erased, and a type-erased
//! future either is `Send` or is not; Rust cannot make that depend on the
//! children spawned later. So the choice is a type parameter of
//! [`Nursery`](crate::Nursery): [`Sendable`] (the default, what
//! `#[nursery]` uses) requires every child to be `Send`, which makes the
//! whole nursery future `Send` so it can run inside `tokio::spawn`;
//! [`Local`] (`#[nursery(local)]`) accepts `!Send` children (an `Rc`, a
//! `RefCell` borrow held across `.await`) and its future stays on one
//! thread (a current-thread runtime, a `LocalSet`, `block_on`).

use std::future::Future;
use std::pin::Pin;

use crate::outcome::Outcome;
use crate::task::Completer;

mod sealed {
    pub trait Sealed {}
}

/// The kind of a nursery: [`Sendable`] or [`Local`].
pub trait Kind: sealed::Sealed + Send + Sync + 'static {
    /// How a type-erased child of this kind is stored.
    #[doc(hidden)]
    type Child<'a, E>: Future<Output = Result<(), E>> + Unpin;
}

/// Children must be `Send`; the nursery's future is `Send`. The default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Sendable;

/// Children may be `!Send`; the nursery's future is `!Send`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Local;

impl sealed::Sealed for Sendable {}
impl sealed::Sealed for Local {}

impl Kind for Sendable {
    type Child<'a, E> = Pin<Box<dyn Future<Output = Result<(), E>> + Send + 'a>>;
}

impl Kind for Local {
    type Child<'a, E> = Pin<Box<dyn Future<Output = Result<(), E>> + 'a>>;
}

/// A nursery of kind `Self` accepts the child future `F`.
#[diagnostic::on_unimplemented(
    message = "this child cannot be spawned into a `Send` nursery: it is not `Send`",
    label = "this child (or its output, or the nursery's error type) is not `Send`",
    note = "use `#[nursery(local)]` (or `scope!(local, |n| …)`) for children that are not `Send`; that nursery's future then stays on one thread"
)]
pub trait Accepts<'a, F, E>: Kind
where
    F: Future + 'a,
    F::Output: Outcome<E>,
{
    #[doc(hidden)]
    fn erase(fut: F, done: Completer<<F::Output as Outcome<E>>::Ok>) -> Self::Child<'a, E>;
}

impl<'a, F, E> Accepts<'a, F, E> for Sendable
where
    F: Future + Send + 'a,
    F::Output: Outcome<E>,
    <F::Output as Outcome<E>>::Ok: Send + 'a,
    E: Send + 'a,
{
    fn erase(fut: F, done: Completer<<F::Output as Outcome<E>>::Ok>) -> Self::Child<'a, E> {
        Box::pin(child(fut, done))
    }
}

impl<'a, F, E> Accepts<'a, F, E> for Local
where
    F: Future + 'a,
    F::Output: Outcome<E>,
    <F::Output as Outcome<E>>::Ok: 'a,
    E: 'a,
{
    fn erase(fut: F, done: Completer<<F::Output as Outcome<E>>::Ok>) -> Self::Child<'a, E> {
        Box::pin(child(fut, done))
    }
}

/// The body of every child: run the user's future, hand a success value to
/// its task handle, and give a failure back to the registry.
async fn child<F, E>(fut: F, done: Completer<<F::Output as Outcome<E>>::Ok>) -> Result<(), E>
where
    F: Future,
    F::Output: Outcome<E>,
{
    let value = fut.await.into_result()?;
    done.complete(value);
    Ok(())
}
