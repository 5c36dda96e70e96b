//! Deadlines run on any timer: a manual clock, on `futures::executor`, with
//! no tokio at all. (Its own test binary: the timer is process-wide.)

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures::FutureExt;
use nursery::{CancelScope, Sleep, Timer, move_on_after, set_timer};

/// A clock that moves only when told to.
#[derive(Clone)]
struct ManualTimer(Arc<Mutex<Clock>>);

struct Clock {
    base: Instant,
    offset: Duration,
    sleepers: Vec<Waker>,
}

impl ManualTimer {
    fn advance(&self, by: Duration) {
        let sleepers = {
            let mut clock = self.0.lock().unwrap();
            clock.offset += by;
            std::mem::take(&mut clock.sleepers)
        };
        sleepers.into_iter().for_each(Waker::wake);
    }
}

impl Timer for ManualTimer {
    fn now(&self) -> Instant {
        let clock = self.0.lock().unwrap();
        clock.base + clock.offset
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let clock = self.0.clone();
        Box::pin(std::future::poll_fn(move |cx: &mut Context<'_>| {
            let mut c = clock.lock().unwrap();
            if c.base + c.offset >= deadline {
                Poll::Ready(())
            } else {
                c.sleepers.push(cx.waker().clone());
                Poll::Pending
            }
        }))
    }
}

fn timer() -> &'static ManualTimer {
    static TIMER: OnceLock<ManualTimer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let t = ManualTimer(Arc::new(Mutex::new(Clock {
            base: Instant::now(),
            offset: Duration::ZERO,
            sleepers: Vec::new(),
        })));
        set_timer(t.clone()).expect("the first timer of this process");
        t
    })
}

fn poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    f.poll_unpin(&mut Context::from_waker(futures::task::noop_waker_ref()))
}

#[test]
fn deadlines_follow_a_plugged_in_timer() {
    let timer = timer();
    let mut fut = Box::pin(move_on_after(
        Duration::from_secs(10),
        std::future::pending::<()>(),
    ));
    assert!(poll(&mut fut).is_pending());
    timer.advance(Duration::from_secs(9));
    assert!(poll(&mut fut).is_pending(), "9 s of 10: still running");
    timer.advance(Duration::from_secs(1));
    assert_eq!(poll(&mut fut), Poll::Ready(None));

    let scope = CancelScope::new().with_timeout(Duration::from_secs(5));
    let mut run = Box::pin(scope.run(async { 3 }));
    assert_eq!(poll(&mut run), Poll::Ready(Some(3)));
    assert!(!scope.timed_out());
}
