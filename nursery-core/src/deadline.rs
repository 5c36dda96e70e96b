//! Deadline helpers: [`move_on_after`], [`move_on_at`], [`fail_after`],
//! [`fail_at`], and [`TimedOut`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::cancel_scope::CancelScope;

/// Runs `fut` with a deadline `timeout` after its first poll: `Some(value)`,
/// or `None` if the deadline came first (`fut` is dropped then).
///
/// # Examples
///
#[cfg_attr(feature = "tokio", doc = "```")]
#[cfg_attr(not(feature = "tokio"), doc = "```ignore")]
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
///
/// let slow = tokio::time::sleep(Duration::from_secs(10));
/// assert_eq!(nursery::move_on_after(Duration::from_secs(1), slow).await, None);
/// let fast = async { 7 };
/// assert_eq!(nursery::move_on_after(Duration::from_secs(1), fast).await, Some(7));
/// # }
/// ```
pub async fn move_on_after<F: Future>(timeout: Duration, fut: F) -> Option<F::Output> {
    CancelScope::new().with_timeout(timeout).run(fut).await
}

/// Runs `fut` with a deadline at `deadline`: `Some(value)`, or `None` if the
/// deadline came first.
pub async fn move_on_at<F: Future>(deadline: Instant, fut: F) -> Option<F::Output> {
    CancelScope::new().with_deadline(deadline).run(fut).await
}

/// Runs `fut` with a deadline `timeout` after its first poll: its value, or
/// [`TimedOut`] if the deadline came first.
///
/// # Examples
///
#[cfg_attr(feature = "tokio", doc = "```")]
#[cfg_attr(not(feature = "tokio"), doc = "```ignore")]
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
///
/// let slow = tokio::time::sleep(Duration::from_secs(10));
/// assert_eq!(nursery::fail_after(Duration::from_secs(1), slow).await, Err(nursery::TimedOut));
/// # }
/// ```
pub async fn fail_after<F: Future>(timeout: Duration, fut: F) -> Result<F::Output, TimedOut> {
    move_on_after(timeout, fut).await.ok_or(TimedOut)
}

/// Runs `fut` with a deadline at `deadline`: its value, or [`TimedOut`].
pub async fn fail_at<F: Future>(deadline: Instant, fut: F) -> Result<F::Output, TimedOut> {
    move_on_at(deadline, fut).await.ok_or(TimedOut)
}

/// The error of a deadline that passed: [`fail_after`], [`fail_at`], and a
/// `#[nursery(timeout = …)]` fn (whose error type converts from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TimedOut;

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the deadline passed")
    }
}

impl std::error::Error for TimedOut {}

/// When a child's own deadline passes: `timeout`/`fail_after` count from
/// its first poll, `deadline` is an instant.
#[derive(Debug, Clone, Copy)]
pub(crate) enum When {
    After(Duration),
    At(Instant),
}

/// A child under a deadline of its own (`spawn!(fut, timeout = …)`,
/// `deadline = …`, `fail_after = …`): polls `fut` until it ends or the
/// deadline passes, then is cut short — cancelled (no value, not a
/// failure), or failed with `fail()` (`fail_after`). One timer entry, made
/// at its first poll; none for a deadline past what an `Instant` holds.
pub(crate) struct ChildDeadline<F, E> {
    fut: Pin<Box<F>>,
    when: When,
    sleep: Option<Option<crate::Sleep>>,
    fail: Option<fn() -> E>,
}

impl<F, E> ChildDeadline<F, E> {
    pub(crate) fn new(fut: F, when: When, fail: Option<fn() -> E>) -> Self {
        ChildDeadline {
            fut: Box::pin(fut),
            when,
            sleep: None,
            fail,
        }
    }
}

impl<F: Future, E> Future for ChildDeadline<F, E> {
    type Output = crate::outcome::Cut<F::Output, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        use crate::outcome::Cut;
        if let Poll::Ready(out) = self.fut.as_mut().poll(cx) {
            return Poll::Ready(Cut::Done(out));
        }
        let when = self.when;
        let sleep = self.sleep.get_or_insert_with(|| {
            let timer = crate::timer::timer();
            let at = match when {
                When::After(duration) => crate::timer::after(timer.now(), duration),
                When::At(instant) => Some(instant),
            };
            at.map(|at| timer.sleep_until(at))
        });
        let passed = sleep
            .as_mut()
            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
        if !passed {
            return Poll::Pending;
        }
        Poll::Ready(match self.fail {
            Some(fail) => Cut::Failed(fail()),
            None => Cut::Cancelled,
        })
    }
}

/// The error type of a `#[nursery(timeout = …)]` fn: one that takes a
/// [`TimedOut`](crate::TimedOut). Named so that a type without it is
/// reported in words.
#[diagnostic::on_unimplemented(
    message = "`#[nursery(timeout = …)]` reports its deadline as a `{Self}`, which cannot be made from a `nursery::TimedOut`",
    label = "the deadline needs `{Self}: From<nursery::TimedOut>`",
    note = "add `impl From<nursery::TimedOut> for {Self}` (say, a variant for it), or use `anyhow::Error` / `Box<dyn Error + Send + Sync>`"
)]
pub trait TakesTimedOut: From<TimedOut> {}

#[diagnostic::do_not_recommend]
impl<E: From<TimedOut>> TakesTimedOut for E {}

impl<'scope, E, K: crate::kind::Kind> crate::Nursery<'scope, E, K> {
    /// `#[nursery(timeout = …)]`: see `spawn_timeout` (generated code
    /// calls it; a method, so that a bound it reports names the nursery).
    #[doc(hidden)]
    pub fn arm_timeout(&self, timeout: std::time::Duration)
    where
        E: TakesTimedOut + 'scope,
        K: crate::kind::Accepts<'scope, TimeoutChild<E>, E>,
    {
        spawn_timeout(self, timeout);
    }

    /// `#[nursery(timeout = …)]` when the deadline began before the
    /// nursery: see `spawn_timeout_at`.
    #[doc(hidden)]
    pub fn arm_timeout_at(&self, deadline: &FnDeadline)
    where
        E: TakesTimedOut + 'scope,
        K: crate::kind::Accepts<'scope, TimeoutChild<E>, E>,
    {
        spawn_timeout_at(self, deadline);
    }
}

/// `#[nursery(timeout = …)]`: a background child named `timeout` that fails
/// with `E::from(TimedOut)` once `timeout` has passed since its first poll.
pub(crate) fn spawn_timeout<'scope, E, K>(
    nursery: &crate::Nursery<'scope, E, K>,
    timeout: std::time::Duration,
) where
    E: TakesTimedOut + 'scope,
    K: crate::kind::Kind + crate::kind::Accepts<'scope, TimeoutChild<E>, E>,
{
    arm(nursery, timeout, None);
}

/// Spawns the nursery's `timeout` child: `timeout` from its first poll, or
/// at `end` (`Some(None)`: never).
fn arm<'scope, E, K>(
    nursery: &crate::Nursery<'scope, E, K>,
    timeout: std::time::Duration,
    end: Option<Option<std::time::Instant>>,
) where
    E: TakesTimedOut + 'scope,
    K: crate::kind::Kind + crate::kind::Accepts<'scope, TimeoutChild<E>, E>,
{
    nursery.state().timeout_armed = true;
    nursery
        .builder()
        .name("timeout")
        .background()
        .spawn(TimeoutChild {
            timeout,
            end,
            sleep: None,
            _e: std::marker::PhantomData,
        });
}

/// `#[nursery(timeout = …)]` on a fn whose first statements run before its
/// nursery opens: the deadline, fixed when the fn is first polled, covers
/// those statements ([`before_deadline`]) and then the nursery
/// ([`Nursery::arm_timeout_at`](crate::Nursery::arm_timeout_at)).
#[derive(Debug)]
pub struct FnDeadline {
    /// `None`: never (`Duration::MAX`).
    end: Option<std::time::Instant>,
    /// The nursery opened: its `timeout` child keeps the deadline now.
    handed_over: std::sync::atomic::AtomicBool,
}

/// The deadline `timeout` from now.
pub fn fn_deadline(timeout: std::time::Duration) -> FnDeadline {
    FnDeadline {
        end: crate::timer::after(crate::timer::timer().now(), timeout),
        handed_over: std::sync::atomic::AtomicBool::new(false),
    }
}

/// Runs the fn's statements (`fut`, which opens the nursery on the way):
/// if the deadline passes before the nursery opened, `fut` is dropped and
/// the fn fails as its nursery would have (`E::from(TimedOut)`, named
/// `timeout`); once it opened, its `timeout` child keeps the deadline.
pub async fn before_deadline<E, T>(
    deadline: &FnDeadline,
    nursery: &'static str,
    fut: impl Future<Output = T>,
) -> Result<T, crate::Errors<E>>
where
    E: From<crate::TimedOut>,
{
    let mut fut = std::pin::pin!(fut);
    let mut sleep: Option<crate::Sleep> = None;
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(cx) {
            return std::task::Poll::Ready(Ok(out));
        }
        if deadline
            .handed_over
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            sleep = None;
            return std::task::Poll::Pending;
        }
        let Some(end) = deadline.end else {
            return std::task::Poll::Pending; // never
        };
        let sleep = sleep.get_or_insert_with(|| crate::timer::timer().sleep_until(end));
        sleep.as_mut().poll(cx).map(|()| {
            let mut errors = None;
            crate::Errors::push(
                &mut errors,
                E::from(crate::TimedOut),
                Some("timeout".into()),
                Some(nursery),
            );
            Err(errors.expect("one failure was pushed"))
        })
    })
    .await
}

/// [`spawn_timeout`] for a fn whose deadline began before its nursery.
pub(crate) fn spawn_timeout_at<'scope, E, K>(
    nursery: &crate::Nursery<'scope, E, K>,
    deadline: &FnDeadline,
) where
    E: TakesTimedOut + 'scope,
    K: crate::kind::Kind + crate::kind::Accepts<'scope, TimeoutChild<E>, E>,
{
    deadline
        .handed_over
        .store(true, std::sync::atomic::Ordering::Relaxed);
    arm(nursery, std::time::Duration::MAX, Some(deadline.end));
}

/// The child of [`Nursery::arm_timeout`](crate::Nursery::arm_timeout): the nursery's `timeout`.
pub struct TimeoutChild<E> {
    timeout: std::time::Duration,
    /// An absolute deadline (`Some(None)`: never), instead of `timeout`
    /// from the first poll.
    end: Option<Option<std::time::Instant>>,
    sleep: Option<crate::Sleep>,
    _e: std::marker::PhantomData<fn() -> E>,
}

impl<E> std::fmt::Debug for TimeoutChild<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeoutChild")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<E: From<crate::TimedOut>> Future for TimeoutChild<E> {
    type Output = Result<(), E>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), E>> {
        let (timeout, end) = (self.timeout, self.end);
        let sleep = self.sleep.get_or_insert_with(|| {
            let timer = crate::timer::timer();
            match end.unwrap_or_else(|| crate::timer::after(timer.now(), timeout)) {
                Some(deadline) => timer.sleep_until(deadline),
                None => Box::pin(std::future::pending()), // never
            }
        });
        sleep
            .as_mut()
            .poll(cx)
            .map(|()| Err(E::from(crate::TimedOut)))
    }
}
