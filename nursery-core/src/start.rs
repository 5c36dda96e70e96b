//! `start!`: trio's `nursery.start`. [`TaskStatus`] and the future that
//! waits for it.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::sync::lock;

/// What a `start!` child gets: it calls [`TaskStatus::started`] once it is
/// ready (a server bound its port), which hands the value to the parent
/// waiting in `start!`; the child keeps running in the nursery after that.
///
/// `started` takes `self`, so it cannot be called twice.
///
/// # Examples
///
/// ```
/// use nursery::{nursery, start, TaskStatus};
///
/// async fn server(status: TaskStatus<u16>) {
///     let port = 8080; // bind a listener here
///     status.started(port);
///     // … serve until the nursery is done
/// }
///
/// #[nursery]
/// async fn run() -> u16 {
///     let port = start!(|status| server(status));
///     port
/// }
///
/// assert_eq!(futures::executor::block_on(run()), 8080);
/// ```
pub struct TaskStatus<T> {
    slot: Option<Arc<Mutex<Slot<T>>>>,
    /// Set once `started` was called, for the task tree.
    #[cfg(feature = "task-tree")]
    flag: Arc<std::sync::atomic::AtomicBool>,
}

struct Slot<T> {
    value: Option<T>,
    /// How the child ended, once it did (set by [`watch`]'s wrapper).
    end: Option<End>,
    waker: Option<Waker>,
}

/// How a `start!` child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// It returned a value that is not a failure: if it never called
    /// `started`, that is its bug.
    Returned,
    /// It failed, panicked or was cancelled: its nursery is cancelling, and
    /// its failure (if any) is reported there.
    Stopped,
}

impl<T> TaskStatus<T> {
    /// Reports the child as started, with `value` for the parent.
    pub fn started(mut self, value: T) {
        #[cfg(feature = "task-tree")]
        self.flag.store(true, std::sync::atomic::Ordering::Release);
        if let Some(slot) = self.slot.take() {
            update(&slot, |slot| slot.value = Some(value));
        }
    }
}

/// Changes the slot under its lock, then wakes the waiting `start!` with
/// no lock held.
fn update<T>(slot: &Mutex<Slot<T>>, change: impl FnOnce(&mut Slot<T>)) {
    let waker = {
        let mut slot = lock(slot);
        change(&mut slot);
        slot.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Records how a `start!` child ended: from the wrapper [`watch`] puts
/// around it, when it returns, or when it is dropped before that.
struct EndGuard<T> {
    slot: Arc<Mutex<Slot<T>>>,
    end: End,
}

impl<T> Drop for EndGuard<T> {
    fn drop(&mut self) {
        let end = self.end;
        update(&self.slot, |slot| {
            slot.end.get_or_insert(end);
        });
    }
}

/// Wraps a `start!` child so that its waiting parent learns how it ended:
/// a child that returns without calling `started` is a bug, one that fails
/// or is cancelled is not (its failure goes to the nursery).
pub(crate) fn watch<T, E, F>(started: &Started<T>, fut: F) -> Watch<F, T>
where
    F: Future,
    F::Output: crate::Outcome<E>,
{
    Watch {
        fut: Box::pin(fut), // one allocation per `start!`, for the pin
        guard: Some(EndGuard {
            slot: Arc::clone(&started.slot),
            end: End::Stopped, // unless it returns
        }),
        is_failure: <F::Output as crate::Outcome<E>>::is_failure,
    }
}

/// A `start!` child, watched (see [`watch`]).
pub(crate) struct Watch<F: Future, T> {
    fut: Pin<Box<F>>,
    /// Records the end when the child returns, or when it is dropped first.
    guard: Option<EndGuard<T>>,
    /// Whether an output is a failure, for the nursery's error type.
    is_failure: fn(&F::Output) -> bool,
}

impl<F: Future, T> Future for Watch<F, T> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let out = std::task::ready!(self.fut.as_mut().poll(cx));
        if let Some(mut guard) = self.guard.take() {
            if !(self.is_failure)(&out) {
                guard.end = End::Returned;
            }
        }
        Poll::Ready(out)
    }
}

impl<T> TaskStatus<T> {
    /// The flag the task tree reads to show "waiting for start".
    #[cfg(feature = "task-tree")]
    pub(crate) fn tree_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        Arc::clone(&self.flag)
    }
}

impl<T> fmt::Debug for TaskStatus<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskStatus").finish_non_exhaustive()
    }
}

/// A `TaskStatus` and the future that waits for it.
pub(crate) fn status<T>(name: Option<Cow<'static, str>>) -> (TaskStatus<T>, Started<T>) {
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        end: None,
        waker: None,
    }));
    (
        TaskStatus {
            slot: Some(slot.clone()),
            #[cfg(feature = "task-tree")]
            flag: Arc::default(),
        },
        Started { slot, name },
    )
}

/// The future of `start!` and [`Builder::start`](crate::Builder::start): the
/// value the child passed to [`TaskStatus::started`].
///
/// # Panics
///
/// If the child returned without calling `started`: that is a bug in the
/// child, reported with its name, never a hang. A child that fails, panics
/// or is cancelled before it started fails or cancels the nursery instead,
/// and the code awaiting this is interrupted like at any other `.await`
/// (inside a shielded section, it is unwound as cancelled: the child's
/// failure is what the nursery reports). A child that drops its
/// `TaskStatus` and goes on running is waited for, as trio does.
#[must_use = "futures do nothing unless polled"]
pub struct Started<T> {
    slot: Arc<Mutex<Slot<T>>>,
    name: Option<Cow<'static, str>>,
}

impl<T> Future for Started<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = lock(&self.slot);
        if let Some(value) = slot.value.take() {
            return Poll::Ready(value);
        }
        if slot.end == Some(End::Stopped) {
            drop(slot);
            // Its nursery is cancelling: code it will drop just waits here
            // (the `.await` is interrupted); shielded code is unwound as
            // cancelled, so that the child's own failure is what the
            // nursery reports.
            if crate::shield::interruptible() {
                return Poll::Pending;
            }
            std::panic::resume_unwind(Box::new(crate::shield::Interrupted));
        }
        if slot.end == Some(End::Returned) {
            drop(slot);
            match &self.name {
                Some(name) => {
                    panic!("the `start!` child `{name}` ended without calling `status.started(…)`")
                }
                None => panic!(
                    "a `start!` child ended without calling `status.started(…)` \
                     (name it with `start!(…, name = \"…\")` to see which)"
                ),
            }
        }
        match &slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for Started<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Started").field("name", &self.name).finish()
    }
}
