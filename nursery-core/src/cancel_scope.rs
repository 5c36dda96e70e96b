//! [`CancelScope`]: trio's cancel scope.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::shield::{self, Guard, Guardian, Registration};
use crate::sync::{Waiters, lock};
use crate::timer::{Sleep, timer};

/// A section of code that can be cancelled, from anywhere that holds the
/// scope, or by a deadline.
///
/// [`CancelScope::run`] runs a future in the scope: it gives `Some(value)`,
/// or `None` once the scope is cancelled — the future is dropped then, and
/// with it everything it was doing, inner scopes and nurseries included
/// (cancelling an outer scope cancels every inner one; cancelling an inner
/// one leaves the outer running). A scope is `Clone + Send + Sync`: clones
/// are the same scope. Cancelling a scope that finished does nothing.
///
/// A deadline can be given up front ([`CancelScope::with_deadline`],
/// [`CancelScope::with_timeout`], which counts from the first poll of `run`)
/// and moved, earlier or later, while the scope runs
/// ([`CancelScope::set_deadline`]). Deadlines need a [`Timer`](crate::Timer):
/// tokio's with the `tokio` feature, or one given to
/// [`set_timer`](crate::set_timer).
///
/// # Examples
///
/// ```
/// use nursery::CancelScope;
///
/// let scope = CancelScope::new();
/// let remote = scope.clone(); // e.g. moved into another task
/// let out = futures::executor::block_on(scope.run(async {
///     remote.cancel();
///     std::future::pending::<u32>().await // cancelled here
/// }));
/// assert_eq!(out, None);
/// assert!(scope.is_cancelled());
/// ```
///
/// # Cancel safety
///
/// Dropping the future of `run` drops the inner future; the scope itself is
/// unaffected.
#[derive(Clone, Default)]
pub struct CancelScope {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Shielded: an outer cancellation waits for this scope's `run` to end.
    shield: bool,
    /// Shielded sections running inside this scope's `run`s.
    shielded_inside: usize,
    cancelled: bool,
    timed_out: bool,
    deadline: Option<Deadline>,
    /// Bumped when the deadline moves, so that runners re-arm their timer.
    version: u64,
    /// Runners and `cancelled()` futures to wake on cancel or a new deadline.
    wakers: Waiters,
}

#[derive(Clone, Copy, Debug)]
enum Deadline {
    At(Instant),
    /// Relative: fixed at the first poll of `run`.
    After(Duration),
}

impl CancelScope {
    /// A new scope, not cancelled, without a deadline.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new shielded scope: code running in it is not cancelled by an outer
    /// scope's cancel or deadline, nor by its nursery's cancellation (a
    /// sibling's failure, `cancel()`, a `timeout`), until it finishes; the
    /// outer scope or nursery waits for it, then goes on cancelling. It can
    /// still be cancelled itself, by its own [`CancelScope::cancel`] or
    /// deadline.
    ///
    /// What no shield can stop: the drop of a whole nursery future (or of a
    /// `run` future) by *its own caller* — Rust drops synchronously, so
    /// there is nothing to wait with. A shield protects against
    /// cancellation that happens inside the structure, which is all of it
    /// below the point where the caller gave up.
    ///
    /// # Examples
    ///
    /// ```
    /// use nursery::{nursery, spawn, CancelScope};
    ///
    /// #[nursery(n)]
    /// async fn save(saved: &std::sync::atomic::AtomicBool) {
    ///     spawn!(async move {
    ///         CancelScope::shielded()
    ///             .run(async move {
    ///                 n.cancel(); // the nursery is cancelled while we write
    ///                 futures::pending!(); // a real write would await here
    ///                 saved.store(true, std::sync::atomic::Ordering::SeqCst);
    ///             })
    ///             .await;
    ///     });
    /// }
    ///
    /// let saved = std::sync::atomic::AtomicBool::new(false);
    /// futures::executor::block_on(save(&saved));
    /// assert!(saved.load(std::sync::atomic::Ordering::SeqCst));
    /// ```
    pub fn shielded() -> Self {
        let scope = Self::default();
        lock(&scope.inner).shield = true;
        scope
    }

    /// Whether this scope is shielded ([`CancelScope::shielded`]).
    pub fn is_shielded(&self) -> bool {
        lock(&self.inner).shield
    }

    /// This scope with a deadline at `deadline`.
    #[must_use]
    pub fn with_deadline(self, deadline: Instant) -> Self {
        self.set(|s| s.deadline = Some(Deadline::At(deadline)));
        self
    }

    /// This scope with a deadline `timeout` after the first poll of `run`.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.deadline = Some(Deadline::After(timeout)));
        self
    }

    /// Moves the deadline (earlier or later), or removes it (`None`), also
    /// while the scope runs.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.set(|s| s.deadline = deadline.map(Deadline::At));
    }

    /// The deadline, once it is an instant (a relative one becomes one at
    /// the first poll of `run`).
    pub fn deadline(&self) -> Option<Instant> {
        match lock(&self.inner).deadline {
            Some(Deadline::At(at)) => Some(at),
            _ => None,
        }
    }

    /// Cancels the scope: every `run` of it ends with `None` at its next
    /// poll (at once, as they are woken).
    pub fn cancel(&self) {
        self.set(|s| s.cancelled = true);
    }

    /// Whether the scope was cancelled (by [`CancelScope::cancel`] or its
    /// deadline).
    pub fn is_cancelled(&self) -> bool {
        lock(&self.inner).cancelled
    }

    /// Whether the scope was cancelled by its deadline.
    pub fn timed_out(&self) -> bool {
        lock(&self.inner).timed_out
    }

    /// A future that completes once the scope is cancelled.
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        ScopeCancelled {
            scope: self.clone(),
            key: WaiterKey::default(),
        }
    }

    /// Runs `fut` in this scope: `Some(value)`, or `None` if the scope is
    /// cancelled first (then `fut` is dropped).
    pub fn run<F: Future>(&self, fut: F) -> Run<F> {
        Run {
            shielded: self.is_shielded(),
            scope: self.clone(),
            fut: Some(Box::pin(fut)),
            sleep: None,
            registration: None,
            key: WaiterKey::default(),
        }
    }

    fn set(&self, change: impl FnOnce(&mut State)) {
        let wakers = {
            let mut state = lock(&self.inner);
            change(&mut state);
            state.version += 1;
            state.wakers.take_all()
        };
        for waker in wakers {
            waker.wake();
        }
    }
}

impl Guard for Mutex<State> {
    fn shield_started(&self) {
        lock(self).shielded_inside += 1;
    }

    fn shield_ended(&self) {
        let wakers = {
            let mut state = lock(self);
            state.shielded_inside -= 1;
            state.wakers.take_all()
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// A waiter of a scope: frees its slot among the scope's wakers when
/// dropped.
#[derive(Default)]
struct WaiterKey(Option<usize>);

impl WaiterKey {
    fn register(&mut self, state: &mut State, waker: &Waker) {
        state.wakers.register(&mut self.0, waker);
    }

    fn remove(&mut self, scope: &CancelScope) {
        if self.0.is_some() {
            let waker = lock(&scope.inner).wakers.remove(&mut self.0);
            drop(waker); // with no lock held
        }
    }
}

impl fmt::Debug for CancelScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.inner);
        f.debug_struct("CancelScope")
            .field("cancelled", &state.cancelled)
            .field("deadline", &state.deadline)
            .finish()
    }
}

/// The future of [`CancelScope::cancelled`].
struct ScopeCancelled {
    scope: CancelScope,
    key: WaiterKey,
}

impl Future for ScopeCancelled {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut state = lock(&this.scope.inner);
        if state.cancelled {
            return Poll::Ready(());
        }
        this.key.register(&mut state, cx.waker());
        Poll::Pending
    }
}

impl Drop for ScopeCancelled {
    fn drop(&mut self) {
        self.key.remove(&self.scope);
    }
}

/// The future of [`CancelScope::run`].
#[must_use = "futures do nothing unless polled"]
pub struct Run<F> {
    scope: CancelScope,
    fut: Option<Pin<Box<F>>>,
    /// The timer for the deadline, and the version it was armed for.
    sleep: Option<(u64, Sleep)>,
    /// Whether the scope is shielded (fixed when the scope was made).
    shielded: bool,
    /// A shielded scope's registration with the guardians around it.
    registration: Option<Registration>,
    /// Its slot among the scope's wakers.
    key: WaiterKey,
}

impl<F> Drop for Run<F> {
    fn drop(&mut self) {
        self.key.remove(&self.scope);
    }
}

impl<F: Future> Future for Run<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        let this = &mut *self;
        if this.fut.is_none() {
            return Poll::Ready(None);
        }
        if this.shielded && this.registration.is_none() {
            this.registration = Some(shield::register());
        }
        loop {
            let (cancelled, deadline, version) = {
                let mut state = lock(&this.scope.inner);
                if let Some(Deadline::After(timeout)) = state.deadline {
                    // Past what an `Instant` can hold: never.
                    state.deadline = crate::timer::after(timer().now(), timeout).map(Deadline::At);
                }
                this.key.register(&mut state, cx.waker());
                // Once cancelled, the deadline has nothing left to do.
                let deadline = match state.deadline {
                    Some(Deadline::At(at)) if !state.cancelled => Some(at),
                    _ => None,
                };
                // Cancelled, but a shielded section inside is still running:
                // go on polling; it wakes us when it ends.
                (
                    state.cancelled && state.shielded_inside == 0,
                    deadline,
                    state.version,
                )
            };
            if cancelled {
                this.fut = None;
                this.registration = None;
                return Poll::Ready(None);
            }
            let Some(deadline) = deadline else {
                this.sleep = None;
                break;
            };
            if !matches!(&this.sleep, Some((v, _)) if *v == version) {
                this.sleep = Some((version, timer().sleep_until(deadline)));
            }
            let (_, sleep) = this.sleep.as_mut().expect("armed above");
            if sleep.as_mut().poll(cx).is_ready() {
                this.scope.set(|s| {
                    if !s.cancelled {
                        s.cancelled = true;
                        s.timed_out = true;
                    }
                });
                continue; // and end as cancelled
            }
            break;
        }
        let fut = this.fut.as_mut().expect("checked above");
        let guardian = Guardian::Scope(this.scope.inner.clone());
        let shielded = this.shielded;
        let polled = shield::guarded(guardian, || {
            if shielded {
                shield::in_section(|| fut.as_mut().poll(cx))
            } else {
                fut.as_mut().poll(cx)
            }
        });
        match polled.0 {
            Poll::Ready(value) => {
                this.fut = None;
                this.registration = None;
                Poll::Ready(Some(value))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F> fmt::Debug for Run<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}
