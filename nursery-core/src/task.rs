//! Task handles: [`Task`] and the child side that fills it.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::node::Joiner;

/// A handle to a child of a nursery; awaiting it yields the child's success
/// value.
///
/// A handle cannot outlive its nursery (it borrows the nursery's scope):
/// results needed after the nursery are returned from its body. Dropping a
/// handle does not cancel the child — a single child is cancelled by running
/// it under its own cancel scope.
///
/// # Examples
///
/// ```
/// use nursery::{nursery, spawn};
///
/// #[nursery]
/// async fn double(x: u32) -> u32 {
///     let task = spawn!(async move { x * 2 });
///     task.await
/// }
///
/// assert_eq!(futures::executor::block_on(double(21)), 42);
/// ```
///
/// # Panics
///
/// A child ends without a value only when its nursery is cancelling (it was
/// cancelled, failed or panicked). Code that awaits its handle then is
/// interrupted there like at any other `.await`: the nursery drops it and
/// returns as a cancelled nursery does. Only code that its nursery does not
/// drop — a `shield` child, or code in a shielded section — can see such a
/// child end: awaiting the handle there panics with a message that says so,
/// because there is no value to give it and waiting would never end. Use
/// [`Task::try_join`] where that can happen.
///
/// # Cancel safety
///
/// Awaiting a handle is cancel-safe: dropping the await leaves the value in
/// the handle.
pub struct Task<'scope, T, E = std::convert::Infallible> {
    /// `None` for a child dropped before it ever ran.
    joiner: Option<Joiner<T>>,
    _scope: PhantomData<fn(&'scope ()) -> &'scope ()>,
    /// The nursery's error type, which [`Task::result`] may give: a handle
    /// moves to another thread only where that error may.
    _error: PhantomData<E>,
}

/// A handle never pins its value: it is moved out whole.
impl<T, E> Unpin for Task<'_, T, E> {}

impl<T, E> Task<'_, T, E> {
    pub(crate) fn new(joiner: Option<Joiner<T>>) -> Self {
        Task {
            joiner,
            _scope: PhantomData,
            _error: PhantomData,
        }
    }

    fn poll_take(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match &mut self.joiner {
            Some(joiner) => joiner.poll_take(cx),
            None => Poll::Ready(None),
        }
    }
}

impl<'scope, T, E> Task<'scope, T, E> {
    /// Waits for the child and yields `Some(value)`, or `None` if it ended
    /// without a value (cancelled, failed or panicked).
    ///
    /// # Examples
    ///
    /// ```
    /// use nursery::{nursery, spawn};
    ///
    /// #[nursery]
    /// async fn run() -> Option<u8> {
    ///     spawn!(async { 7u8 }).try_join().await
    /// }
    ///
    /// assert_eq!(futures::executor::block_on(run()), Some(7));
    /// ```
    pub fn try_join(self) -> TryJoin<'scope, T, E> {
        TryJoin { task: self }
    }

    /// Cancels this child alone, as a cancelled nursery would: it is
    /// dropped at the nursery's next step, without being polled again, and
    /// ends without a value ([`Task::try_join`] gives `None`). Being
    /// cancelled is not a failure: its siblings and the nursery go on. A
    /// child that already ended is left as it is.
    ///
    /// The child is dropped even when it was spawned `shield` (the cancel is
    /// addressed to it); a shielded section running inside it
    /// ([`CancelScope::shielded`](crate::CancelScope::shielded)) is finished
    /// first, and the child goes as soon as that ends. There is no grace
    /// period: it learns of its cancel by being dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use nursery::{nursery, spawn};
    ///
    /// #[nursery]
    /// async fn run() -> (Option<u8>, u8) {
    ///     let stuck = spawn!(std::future::pending::<u8>());
    ///     let quick = spawn!(async { 7u8 });
    ///     stuck.cancel();
    ///     (stuck.try_join().await, quick.await)
    /// }
    ///
    /// assert_eq!(futures::executor::block_on(run()), (None, 7));
    /// ```
    pub fn cancel(&self) {
        if let Some(joiner) = &self.joiner {
            joiner.cancel();
        }
    }

    /// Whether the child has ended (with or without a value).
    pub fn is_finished(&self) -> bool {
        self.joiner.as_ref().is_none_or(Joiner::is_finished)
    }
}

impl<T, E> Future for Task<'_, T, E> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.poll_take(cx) {
            Poll::Ready(None) if crate::shield::interruptible() => return Poll::Pending,
            polled => polled,
        }
        .map(|value| {
            value.unwrap_or_else(|| {
                panic!(
                    "awaited the task handle of a nursery child that ended without a value \
                     (it was cancelled, failed or panicked); use `Task::try_join` where that can happen"
                )
            })
        })
    }
}

impl<T, E> fmt::Debug for Task<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// The future of [`Task::try_join`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct TryJoin<'scope, T, E = std::convert::Infallible> {
    task: Task<'scope, T, E>,
}

impl<T, E> Future for TryJoin<'_, T, E> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.task.poll_take(cx)
    }
}
