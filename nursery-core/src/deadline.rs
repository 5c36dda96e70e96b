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
        K: crate::kind::Accepts<'scope, crate::__private::TimeoutChild<E>, E>,
    {
        crate::__private::spawn_timeout(self, timeout);
    }

    /// `#[nursery(timeout = …)]` when the deadline began before the
    /// nursery: see `spawn_timeout_at`.
    #[doc(hidden)]
    pub fn arm_timeout_at(&self, deadline: &crate::__private::FnDeadline)
    where
        E: TakesTimedOut + 'scope,
        K: crate::kind::Accepts<'scope, crate::__private::TimeoutChild<E>, E>,
    {
        crate::__private::spawn_timeout_at(self, deadline);
    }
}
