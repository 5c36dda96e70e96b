//! [`CancelToken`]: a nursery's cancellation, as an owned `'static` handle.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use atomic_waker::AtomicWaker;

use crate::sync::{Waiters, lock};

/// A nursery's cancellation as a `Clone + Send + Sync + 'static` handle,
/// from [`Nursery::cancel_token`](crate::Nursery::cancel_token): what a
/// `parallel` child (which cannot borrow the nursery) uses to learn that its
/// nursery is cancelling — to say goodbye during a grace period — or to
/// cancel it.
///
/// It is trio's `nursery.cancel_scope` reduced to what crosses threads:
/// [`cancel`](CancelToken::cancel) cancels the nursery (like
/// [`Nursery::cancel`](crate::Nursery::cancel));
/// [`cancelled`](CancelToken::cancelled) completes once the nursery is
/// cancelled for any reason (`cancel`, a failure, a `timeout`). Cancelling a
/// token whose nursery has finished does nothing.
///
/// # Examples
///
/// ```
/// use nursery::{nursery, spawn};
///
/// #[nursery(n)]
/// async fn serve(
///     pool: futures::executor::ThreadPool,
///     said: std::sync::mpsc::Sender<&'static str>,
/// ) -> Result<(), nursery::Errors<nursery::SpawnError>> {
///     n.set_spawner(pool);
///     let token = n.cancel_token();
///     // shielded (or given a grace period): it sees the cancel and finishes
///     n.builder().parallel().shield().spawn(async move {
///         token.cancelled().await; // the nursery is shutting down
///         said.send("goodbye").unwrap(); // a connection's last line
///     });
///     n.cancel();
///     Ok(())
/// }
///
/// let pool = futures::executor::ThreadPool::new().unwrap();
/// let (said, heard) = std::sync::mpsc::channel();
/// futures::executor::block_on(serve(pool, said)).unwrap();
/// assert_eq!(heard.try_recv(), Ok("goodbye")); // before the nursery returned
/// ```
#[derive(Clone)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
pub(crate) struct Inner {
    cancelled: AtomicBool,
    /// `cancel()` through the token: the driver applies it at its next step.
    requested: AtomicBool,
    waiters: Mutex<Waiters>,
    /// The task driving the nursery.
    pub(crate) driver: AtomicWaker,
}

impl Inner {
    /// The nursery is cancelling: wake every `cancelled()`.
    pub(crate) fn mark_cancelled(&self) {
        self.cancelled.store(true, Ordering::Release);
        let wakers = lock(&self.waiters).take_all();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Whether `cancel()` was called on a token.
    pub(crate) fn requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }
}

impl CancelToken {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        CancelToken { inner }
    }

    /// Cancels the nursery, from any thread: its body and every unshielded
    /// child are cancelled at its next step, as with
    /// [`Nursery::cancel`](crate::Nursery::cancel).
    pub fn cancel(&self) {
        self.inner.requested.store(true, Ordering::Release);
        self.inner.driver.wake();
    }

    /// Whether the nursery is cancelling (or was cancelled).
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Completes once the nursery is cancelled. `'static`: it owns a clone
    /// of the token.
    pub fn cancelled(&self) -> TokenCancelled {
        TokenCancelled {
            inner: Arc::clone(&self.inner),
            key: None,
        }
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The future of [`CancelToken::cancelled`]: `'static`, so a `parallel`
/// child (or any task) can hold it.
///
/// # Examples
///
/// ```
/// #[nursery::nursery(n)]
/// async fn run() {
///     let cancelled = n.cancel_token().cancelled();
///     n.cancel();
///     cancelled.await; // ready: the nursery is cancelling
/// }
///
/// futures::executor::block_on(run());
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct TokenCancelled {
    inner: Arc<Inner>,
    /// Its slot among the waiters, once it waited.
    key: Option<usize>,
}

impl Future for TokenCancelled {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.inner.cancelled.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        let mut waiters = lock(&this.inner.waiters);
        // Checked again under the lock `mark_cancelled` takes the wakers with.
        if this.inner.cancelled.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        waiters.register(&mut this.key, cx.waker());
        Poll::Pending
    }
}

impl Drop for TokenCancelled {
    fn drop(&mut self) {
        if self.key.is_some() {
            let waker = lock(&self.inner.waiters).remove(&mut self.key);
            drop(waker); // with no lock held
        }
    }
}

impl fmt::Debug for TokenCancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCancelled").finish_non_exhaustive()
    }
}
