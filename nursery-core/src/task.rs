//! Task handles: [`Task`] and the child side that fills it.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::sync::lock;

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
/// Awaiting the handle of a child that ended without a value (it was
/// cancelled, failed or panicked) panics with a message naming that, because
/// it can only happen in code that is itself not being cancelled — a shielded
/// sibling — and there is no value to give it. Use [`Task::try_join`] where
/// that can happen.
///
/// # Cancel safety
///
/// Awaiting a handle is cancel-safe: dropping the await leaves the value in
/// the handle.
pub struct Task<'scope, T> {
    slot: Arc<Slot<T>>,
    _scope: PhantomData<fn(&'scope ()) -> &'scope ()>,
}

pub(crate) struct Slot<T> {
    state: Mutex<State<T>>,
}

enum State<T> {
    Running(Option<Waker>),
    Done(T),
    Ended,
    Taken,
}

/// The child's side of a task handle: completes it with a value, or ends it
/// without one when dropped first.
#[doc(hidden)]
pub struct Completer<T> {
    slot: Option<Arc<Slot<T>>>,
}

impl<T> fmt::Debug for Completer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completer").finish_non_exhaustive()
    }
}

pub(crate) fn pair<'scope, T>() -> (Task<'scope, T>, Completer<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Running(None)),
    });
    (
        Task {
            slot: slot.clone(),
            _scope: PhantomData,
        },
        Completer { slot: Some(slot) },
    )
}

impl<T> Completer<T> {
    pub(crate) fn complete(mut self, value: T) {
        if let Some(slot) = self.slot.take() {
            slot.finish(State::Done(value));
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.finish(State::Ended);
        }
    }
}

impl<T> Slot<T> {
    fn finish(&self, new: State<T>) {
        let waker = match std::mem::replace(&mut *lock(&self.state), new) {
            State::Running(waker) => waker,
            _ => None,
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = lock(&self.state);
        match &mut *state {
            State::Running(waker) => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            State::Done(_) => match std::mem::replace(&mut *state, State::Taken) {
                State::Done(value) => Poll::Ready(Some(value)),
                _ => unreachable!(),
            },
            State::Ended => Poll::Ready(None),
            State::Taken => panic!("a `nursery::Task` was polled after it completed"),
        }
    }
}

impl<'scope, T> Task<'scope, T> {
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
    pub fn try_join(self) -> TryJoin<'scope, T> {
        TryJoin { task: self }
    }

    /// Whether the child has ended (with or without a value).
    pub fn is_finished(&self) -> bool {
        !matches!(*lock(&self.slot.state), State::Running(_))
    }
}

impl<T> Future for Task<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.slot.poll_take(cx).map(|value| {
            value.unwrap_or_else(|| {
                panic!(
                    "awaited the task handle of a nursery child that ended without a value \
                     (it was cancelled, failed or panicked); use `Task::try_join` where that can happen"
                )
            })
        })
    }
}

impl<T> fmt::Debug for Task<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// The future of [`Task::try_join`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct TryJoin<'scope, T> {
    task: Task<'scope, T>,
}

impl<T> Future for TryJoin<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.task.slot.poll_take(cx)
    }
}
