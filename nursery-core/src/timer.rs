//! Where deadlines get their time from: a small [`Timer`] trait, a tokio
//! implementation behind the `tokio` feature, and [`set_timer`] for any
//! other runtime.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Instant;

/// A source of time for deadlines: "now", and a future that completes at an
/// instant.
///
/// With the `tokio` feature the default is tokio's timer (which honours
/// `tokio::time::pause`); on another runtime, give yours to [`set_timer`].
///
/// # Examples
///
/// ```standalone_crate
/// use std::time::{Duration, Instant};
///
/// /// A timer that says every deadline has already passed.
/// struct Expired;
///
/// impl nursery::Timer for Expired {
///     fn now(&self) -> Instant {
///         Instant::now()
///     }
///     fn sleep_until(&self, _: Instant) -> nursery::Sleep {
///         Box::pin(std::future::ready(()))
///     }
/// }
///
/// nursery::set_timer(Expired).unwrap(); // once per process
/// let out = futures::executor::block_on(nursery::move_on_after(
///     Duration::from_secs(3600),
///     std::future::pending::<()>(),
/// ));
/// assert_eq!(out, None);
/// ```
pub trait Timer: Send + Sync + 'static {
    /// The current instant, on this timer's clock.
    fn now(&self) -> Instant;
    /// A future that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> Sleep;
}

/// The future of [`Timer::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

static TIMER: OnceLock<Box<dyn Timer>> = OnceLock::new();

/// Sets the process-wide timer for deadlines. Done once, before the first
/// deadline; with the `tokio` feature there is no need (tokio's is the
/// default).
///
/// # Errors
///
/// [`TimerAlreadySet`] if a timer was set (or the default was taken) before.
pub fn set_timer(timer: impl Timer) -> Result<(), TimerAlreadySet> {
    TIMER.set(Box::new(timer)).map_err(|_| TimerAlreadySet)
}

/// The error of [`set_timer`] when a timer is in use already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerAlreadySet;

impl fmt::Display for TimerAlreadySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a timer for deadlines was already set (or the default one was taken)")
    }
}

impl std::error::Error for TimerAlreadySet {}

/// The timer deadlines use.
///
/// # Panics
///
/// Without the `tokio` feature, if no timer was given to [`set_timer`]:
/// a deadline without a clock is a configuration error, reported at the
/// first deadline with what to do.
pub(crate) fn timer() -> &'static dyn Timer {
    TIMER
        .get_or_init(|| {
            #[cfg(feature = "tokio")]
            {
                Box::new(TokioTimer)
            }
            #[cfg(not(feature = "tokio"))]
            {
                panic!(
                    "a `nursery` deadline needs a timer: enable the `tokio` feature of `nursery`, \
                     or call `nursery::set_timer` with your runtime's timer first"
                )
            }
        })
        .as_ref()
}

/// The instant `duration` after `now`, or `None` where no `Instant` can
/// hold it: every duration is accepted, and one that large means never.
pub(crate) fn after(now: Instant, duration: std::time::Duration) -> Option<Instant> {
    now.checked_add(duration)
}

/// "Now" on the deadlines' clock, without fixing which timer that is (the
/// task tree's ages): the timer given to `set_timer`, else tokio's (feature
/// `tokio`, so that paused time shows), else the system clock.
#[cfg(feature = "task-tree")]
pub(crate) fn now() -> Instant {
    if let Some(timer) = TIMER.get() {
        return timer.now();
    }
    #[cfg(feature = "tokio")]
    {
        TokioTimer.now()
    }
    #[cfg(not(feature = "tokio"))]
    {
        Instant::now()
    }
}

/// Tokio's timer: honours `tokio::time::pause` and `advance`.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioTimer;

#[cfg(feature = "tokio")]
impl Timer for TokioTimer {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
            deadline,
        )))
    }
}
