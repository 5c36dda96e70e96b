//! Control of one child (issue 19, part): `task.cancel()` on every runtime,
//! and per-child deadlines (`timeout`, `deadline`, `fail_after`) on the
//! deadlines' timer with tokio's clock paused.

mod common;

use common::*;
use nursery::{Errors, nursery, spawn};

#[nursery]
async fn cancel_one(
    dropped: &Counter,
    siblings: &Counter,
) -> Result<(Option<u8>, u8), Errors<&'static str>> {
    let guard = dropped.on_drop();
    let stuck = spawn!(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
        Ok(1u8)
    });
    let sibling = spawn!(async move {
        yield_now().await;
        siblings.add();
        Ok(2u8)
    });
    yield_now().await; // both started
    stuck.cancel();
    Ok((stuck.try_join().await, sibling.await))
}

#[nursery]
async fn cancel_before_start(polls: &Counter) -> Option<()> {
    let child = spawn!(async move { polls.add() });
    child.cancel(); // before it was ever polled
    child.try_join().await
}

#[nursery]
async fn cancel_a_finished_child() -> (u8, u8) {
    let done = spawn!(async { 5u8 });
    yield_now().await;
    yield_now().await;
    done.cancel(); // it ended already: its value stays
    let again = spawn!(async { 6u8 });
    (done.await, again.await)
}

#[nursery]
async fn cancel_a_shield_child(dropped: &Counter) -> Option<()> {
    let guard = dropped.on_drop();
    let child = spawn!(
        async move {
            let _guard = guard;
            std::future::pending::<()>().await
        },
        shield
    );
    child.cancel();
    child.try_join().await.map(|_| ())
}

#[nursery]
async fn cancel_during_a_shielded_section(saved: &Counter) -> Option<()> {
    let child = spawn!(async move {
        nursery::CancelScope::shielded()
            .run(async {
                yield_times(3).await;
                saved.add();
            })
            .await;
        std::future::pending::<()>().await // dropped at this await
    });
    yield_now().await; // it is inside its section now
    child.cancel();
    child.try_join().await
}

on_every_runtime! {
    async fn a_child_cancelled_inside_a_shielded_section_finishes_the_section_first() {
        let saved = Counter::new();
        assert_eq!(must_finish(cancel_during_a_shielded_section(&saved)), None);
        assert_eq!(saved.get(), 1);
    }

    async fn cancelling_one_child_drops_it_alone_and_is_not_a_failure() {
        let (dropped, siblings) = (Counter::new(), Counter::new());
        let out = cancel_one(&dropped, &siblings).await;
        assert_eq!(out.unwrap(), (None, 2), "the sibling and the body went on");
        assert_eq!(dropped.get(), 1);
        assert_eq!(siblings.get(), 1);
    }

    async fn a_child_cancelled_before_it_started_is_never_polled() {
        let polls = Counter::new();
        assert_eq!(cancel_before_start(&polls).await, None);
        assert_eq!(polls.get(), 0);
    }

    async fn cancelling_a_child_that_ended_keeps_its_value() {
        assert_eq!(cancel_a_finished_child().await, (5, 6));
    }

    async fn cancel_reaches_a_shield_child_too() {
        let dropped = Counter::new();
        assert_eq!(cancel_a_shield_child(&dropped).await, None);
        assert_eq!(dropped.get(), 1);
    }
}

#[cfg(feature = "tokio")]
mod deadlines {
    use super::*;
    use nursery::TimedOut;
    use std::time::Duration;
    use tokio::time::{Instant, sleep};

    #[derive(Debug, PartialEq)]
    enum Error {
        TimedOut,
        Other,
    }

    impl From<TimedOut> for Error {
        fn from(_: TimedOut) -> Self {
            Error::TimedOut
        }
    }

    #[nursery]
    async fn timeouts() -> Result<(Option<u8>, Option<u8>, Duration), Errors<Error>> {
        let start = Instant::now();
        let slow = spawn!(
            async {
                sleep(Duration::from_secs(10)).await;
                Ok(1u8)
            },
            timeout = Duration::from_secs(2)
        );
        let quick = spawn!(
            async {
                sleep(Duration::from_secs(1)).await;
                Ok(2u8)
            },
            timeout = Duration::from_secs(2)
        );
        let (slow, quick) = (slow.try_join().await, quick.try_join().await);
        Ok((slow, quick, start.elapsed()))
    }

    #[test]
    fn a_child_past_its_timeout_is_cancelled_not_failed() {
        let (slow, quick, elapsed) = paused_runtime().block_on(timeouts()).unwrap();
        assert_eq!((slow, quick), (None, Some(2)));
        assert_eq!(elapsed, Duration::from_secs(2));
    }

    #[nursery]
    async fn at_a_deadline() -> Option<u8> {
        let at = Instant::now() + Duration::from_secs(3);
        spawn!(
            async {
                sleep(Duration::from_secs(5)).await;
                9u8
            },
            deadline = at.into_std()
        )
        .try_join()
        .await
    }

    #[test]
    fn a_child_past_its_deadline_is_cancelled() {
        let rt = paused_runtime();
        let start = rt.block_on(async { Instant::now() });
        assert_eq!(rt.block_on(at_a_deadline()), None);
        assert_eq!(
            rt.block_on(async { start.elapsed() }),
            Duration::from_secs(3)
        );
    }

    #[nursery]
    async fn fails_after(dropped: &Counter) -> Result<(), Errors<Error>> {
        let guard = dropped.on_drop();
        spawn!(
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok(())
            },
            name = "sibling"
        );
        spawn!(
            async {
                sleep(Duration::from_secs(10)).await;
                Err::<(), _>(Error::Other)
            },
            fail_after = Duration::from_secs(1),
            name = "lookup"
        );
        Ok(())
    }

    #[test]
    fn fail_after_makes_a_failure_that_cancels_the_siblings() {
        let dropped = Counter::new();
        let errors = paused_runtime()
            .block_on(fails_after(&dropped))
            .unwrap_err();
        assert_eq!(errors.into_vec(), [Error::TimedOut]);
        assert_eq!(dropped.get(), 1);
    }

    #[nursery]
    async fn never(polls: &Counter) -> u8 {
        spawn!(
            async {
                sleep(Duration::from_secs(3600)).await;
                polls.add();
                4u8
            },
            timeout = Duration::MAX
        )
        .await
    }

    #[test]
    fn a_timeout_of_duration_max_never_passes() {
        let polls = Counter::new();
        assert_eq!(paused_runtime().block_on(never(&polls)), 4);
        assert_eq!(polls.get(), 1);
    }

    #[nursery]
    async fn parallel_timeout(dropped: Counter) -> Result<Option<u8>, Errors<nursery::SpawnError>> {
        let guard = dropped.on_drop();
        let task = spawn!(
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                1u8
            },
            timeout = Duration::from_millis(50),
            parallel
        );
        Ok(task.try_join().await)
    }

    #[test]
    fn a_parallel_child_past_its_timeout_is_stopped() {
        let rt = multi_thread_runtime();
        let dropped = Counter::new();
        let out = rt.block_on(parallel_timeout(dropped.clone())).unwrap();
        assert_eq!(out, None);
        assert_eq!(
            dropped.get(),
            1,
            "its future was dropped before the nursery returned"
        );
        assert_no_task_left(&rt);
    }
}
