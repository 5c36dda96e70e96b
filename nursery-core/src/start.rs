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
    /// The sending side is gone (started, or dropped without starting).
    closed: bool,
    waker: Option<Waker>,
}

impl<T> TaskStatus<T> {
    /// Reports the child as started, with `value` for the parent.
    pub fn started(mut self, value: T) {
        #[cfg(feature = "task-tree")]
        self.flag.store(true, std::sync::atomic::Ordering::Release);
        if let Some(slot) = self.slot.take() {
            finish(&slot, Some(value));
        }
    }
}

fn finish<T>(slot: &Mutex<Slot<T>>, value: Option<T>) {
    let waker = {
        let mut slot = lock(slot);
        slot.value = value;
        slot.closed = true;
        slot.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

impl<T> TaskStatus<T> {
    /// The flag the task tree reads to show "waiting for start".
    #[cfg(feature = "task-tree")]
    pub(crate) fn tree_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        Arc::clone(&self.flag)
    }
}

impl<T> Drop for TaskStatus<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            finish(&slot, None);
        }
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
        closed: false,
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
/// If the child ended (returned, or was cancelled while this future was
/// still awaited) without calling `started`: that is a bug in the child,
/// reported with its name, never a hang. (A child that *fails* before it
/// started fails the nursery, which cancels the code awaiting this.)
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
        if slot.closed {
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
