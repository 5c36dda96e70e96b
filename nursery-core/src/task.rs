//! Task handles: [`Task`] and the child side that fills it.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::errors::Failure;
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
/// A child may end without a value: it was cancelled (its nursery was, or
/// [`Task::cancel`], or a deadline of its own), or it failed or panicked.
/// When its nursery is cancelling, code that awaits its handle is
/// interrupted there like at any other `.await`: the nursery drops it and
/// returns as a cancelled nursery does. Elsewhere — a `shield` child, code
/// in a shielded section, a child cancelled alone, a failed child of a
/// `supervise` nursery — awaiting the handle panics with a message that
/// says so, because there is no value to give and waiting would never end.
/// Use [`Task::try_join`] or [`Task::result`] where that can happen.
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

    /// A child that ended without a value, awaited by code its nursery is
    /// about to drop (the nursery is cancelling, and the code is not
    /// shielded): that code stays pending here, as at any `.await`.
    fn interrupted(&self) -> bool {
        self.joiner.as_ref().is_none_or(Joiner::nursery_cancelling)
            && crate::shield::interruptible()
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

    /// The child's value or its failure, handled here: a future of
    /// `Result<T, Failure<E>>`.
    ///
    /// Calling it claims the child's failure: from then on a failure (an
    /// `Err`, a panic, a `fail_after` deadline) goes to this future and not
    /// to the nursery's policy — it cancels nobody, is not returned in
    /// `Errors`, is not given to a `supervise` handler — in a fail-fast
    /// nursery too: `spawn!(f).result()` says "this one is mine to
    /// handle". If the future is dropped before it delivered the failure,
    /// the claim ends and the policy applies again (a claimed failure is
    /// never dropped unseen). A failure that happened before the claim was
    /// already handled by the policy.
    ///
    /// A child that ends with neither a value nor a failure of its own to
    /// give — cancelled (by [`Task::cancel`], its own deadline, a cancelled
    /// nursery), or failed before the claim — gives a [`Failure`] whose
    /// [`is_cancelled`](Failure::is_cancelled) is true; code that is itself
    /// being cancelled is interrupted at this `.await` instead, like at any
    /// other. A child that is itself a nursery gives all its failures in
    /// one ([`Failure::into_errors`]).
    ///
    /// With `futures::stream::FuturesUnordered` over such futures, results
    /// come in completion order (tokio's `JoinSet::join_next`).
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use futures::stream::FuturesUnordered;
    /// use nursery::{nursery, spawn, Errors};
    ///
    /// #[nursery]
    /// async fn fetch_all() -> Result<Vec<String>, Errors<String>> {
    ///     let mut pending: FuturesUnordered<_> = (0..4)
    ///         .map(|i| spawn!(async move {
    ///             if i == 2 { Err(format!("page {i}: 404")) } else { Ok(format!("page {i}")) }
    ///         }).result())
    ///         .collect();
    ///     let mut report = Vec::new();
    ///     while let Some(result) = pending.next().await {
    ///         // The failure is ours: it cancelled nobody.
    ///         report.push(result.unwrap_or_else(|failure| failure.to_string()));
    ///     }
    ///     report.sort();
    ///     Ok(report)
    /// }
    ///
    /// let report = futures::executor::block_on(fetch_all()).unwrap();
    /// assert_eq!(report, ["page 0", "page 1", "page 2: 404", "page 3"]);
    /// ```
    pub fn result(self) -> TaskResult<'scope, T, E> {
        if let Some(joiner) = &self.joiner {
            joiner.claim();
        }
        TaskResult { task: self }
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
            Poll::Ready(None) if self.interrupted() => return Poll::Pending,
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

/// The future of [`Task::result`]: the child's value or its failure.
#[must_use = "futures do nothing unless polled; dropped, the child's failure goes to its nursery's policy"]
pub struct TaskResult<'scope, T, E = std::convert::Infallible> {
    task: Task<'scope, T, E>,
}

impl<T, E> Future for TaskResult<'_, T, E> {
    type Output = Result<T, Failure<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let task = &mut self.task;
        if let Some(joiner) = &mut task.joiner {
            std::task::ready!(joiner.poll_complete(cx));
            // SAFETY: complete, seen by `poll_complete` with acquire while we
            // hold the handle; the handle's `E` is its nursery's (it was made
            // by that nursery's spawn).
            #[allow(unsafe_code)]
            let failure = unsafe { joiner.take_failure::<E>() };
            // Delivered (or nothing to deliver): the claim ends.
            joiner.unclaim();
            if let Some(failure) = failure {
                return Poll::Ready(Err(failure));
            }
            if let Some(value) = joiner.take() {
                return Poll::Ready(Ok(value));
            }
        }
        // Nothing to give: code being cancelled is interrupted here, other
        // code learns the child was cancelled.
        if task.interrupted() {
            return Poll::Pending;
        }
        Poll::Ready(Err(Failure::cancelled()))
    }
}

impl<T, E> fmt::Debug for TaskResult<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskResult")
            .field("finished", &self.task.is_finished())
            .finish()
    }
}
