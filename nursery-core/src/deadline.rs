//! Deadline helpers: [`move_on_after`], [`move_on_at`], [`fail_after`],
//! [`fail_at`], and [`TimedOut`].

use std::fmt;
use std::future::Future;
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
