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
use std::marker::PhantomData;

use crate::outcome::Outcome;

mod sealed {
    pub trait Sealed {}
}

/// The kind of a nursery: [`Sendable`] or [`Local`].
pub trait Kind: sealed::Sealed + Send + Sync + 'static {
    /// `()` for [`Sendable`]; a `!Send`, `!Sync` type for [`Local`]. The
    /// registry holds it, so that a `Local` nursery is neither.
    #[doc(hidden)]
    type Marker: Default;
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
    type Marker = ();
}

impl Kind for Local {
    type Marker = PhantomData<*const ()>;
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
}

impl<'a, F, E> Accepts<'a, F, E> for Sendable
where
    F: Future + Send + 'a,
    F::Output: Outcome<E>,
    <F::Output as Outcome<E>>::Ok: Send + 'a,
    E: Send + 'a,
{
}

impl<'a, F, E> Accepts<'a, F, E> for Local
where
    F: Future + 'a,
    F::Output: Outcome<E>,
    <F::Output as Outcome<E>>::Ok: 'a,
    E: 'a,
{
}
