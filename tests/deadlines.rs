//! Cancel scopes and deadlines (`CancelScope`, `move_on_*`, `fail_*`), with
//! time controlled by `tokio::time::pause`.
#![cfg(feature = "tokio")]

mod common;

use common::*;
use nursery::{
    CancelScope, TimedOut, fail_after, fail_at, move_on_after, move_on_at, nursery, spawn,
};
use std::time::Duration;
use tokio::time::{Instant, advance, sleep};

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn move_on_after_gives_none_when_the_deadline_comes_first() {
    paused().block_on(async {
        let start = Instant::now();
        assert_eq!(
            move_on_after(Duration::from_secs(5), sleep(Duration::from_secs(10))).await,
            None
        );
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert_eq!(
            move_on_after(Duration::from_secs(5), async { 1 }).await,
            Some(1)
        );
    });
}

#[test]
fn a_relative_deadline_counts_from_the_first_poll() {
    paused().block_on(async {
        // the inner sleep is made at the first poll too
        let fut = move_on_after(Duration::from_secs(5), async {
            sleep(Duration::from_secs(7)).await
        });
        advance(Duration::from_secs(100)).await; // before the first poll: does not count
        let start = Instant::now();
        assert_eq!(fut.await, None);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    });
}

#[test]
fn fail_after_and_fail_at() {
    paused().block_on(async {
        assert_eq!(
            fail_after(Duration::from_secs(1), sleep(Duration::from_secs(2))).await,
            Err(TimedOut)
        );
        assert_eq!(fail_after(Duration::from_secs(2), async { 3 }).await, Ok(3));
        let at = Instant::now() + Duration::from_secs(4);
        assert_eq!(
            fail_at(at.into_std(), sleep(Duration::from_secs(9))).await,
            Err(TimedOut)
        );
        assert_eq!(Instant::now(), at);
        let at = Instant::now() + Duration::from_secs(4);
        assert_eq!(move_on_at(at.into_std(), async { 5 }).await, Some(5));
    });
}

#[test]
fn a_deadline_moves_later_and_earlier_while_the_scope_runs() {
    paused().block_on(async {
        let start = Instant::now();
        let scope = CancelScope::new().with_deadline((start + Duration::from_secs(5)).into_std());
        let mover = scope.clone();
        let out = scope
            .run(async {
                sleep(Duration::from_secs(4)).await;
                mover.set_deadline(Some((start + Duration::from_secs(10)).into_std())); // later
                sleep(Duration::from_secs(4)).await; // t = 8: past the old deadline, still running
                mover.set_deadline(Some((start + Duration::from_secs(9)).into_std())); // earlier
                sleep(Duration::from_secs(100)).await;
                "not reached"
            })
            .await;
        assert_eq!(out, None);
        assert_eq!(start.elapsed(), Duration::from_secs(9));
        assert!(scope.timed_out());
    });
}

#[test]
fn cancel_from_another_task_and_cancelled_future() {
    paused().block_on(async {
        let scope = CancelScope::new();
        let remote = scope.clone();
        let waiter = scope.cancelled();
        tokio::spawn(async move {
            sleep(Duration::from_secs(1)).await;
            remote.cancel();
        });
        let out = scope.run(sleep(Duration::from_secs(60))).await;
        assert_eq!(out, None);
        waiter.await;
        assert!(scope.is_cancelled());
        assert!(!scope.timed_out());
        scope.cancel(); // cancelling a finished scope does nothing
    });
}

#[test]
fn cancelling_an_outer_scope_cancels_the_inner_not_the_reverse() {
    paused().block_on(async {
        let outer = CancelScope::new();
        let inner = CancelScope::new();
        let (o, i) = (outer.clone(), inner.clone());
        // inner cancelled: the outer goes on
        let out = outer
            .run(async {
                let r = inner
                    .run(async {
                        i.cancel();
                        sleep(Duration::from_secs(1)).await;
                    })
                    .await;
                assert_eq!(r, None);
                "outer finished"
            })
            .await;
        assert_eq!(out, Some("outer finished"));
        // outer cancelled: the inner is dropped with it
        let guards = Tracker::new();
        let inner = CancelScope::new();
        let out = outer
            .run(async {
                let g = guards.guard();
                inner
                    .run(async move {
                        let _g = g;
                        o.cancel();
                        sleep(Duration::from_secs(1)).await;
                    })
                    .await
            })
            .await;
        assert_eq!(out, None);
        assert!(guards.all_dropped());
    });
}

#[nursery]
async fn nursery_under_deadline(guards: &Tracker) -> Result<(), nursery::Errors<()>> {
    for _ in 0..3 {
        let g = guards.guard();
        spawn!(async move {
            let _g = g;
            sleep(Duration::from_secs(60)).await;
        });
    }
    Ok(())
}

#[test]
fn a_deadline_over_a_whole_nursery_drops_every_child() {
    paused().block_on(async {
        let guards = Tracker::new();
        let start = Instant::now();
        assert!(
            move_on_after(Duration::from_secs(2), nursery_under_deadline(&guards))
                .await
                .is_none()
        );
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert!(guards.all_dropped());
    });
}

#[test]
fn scopes_work_on_a_multi_thread_runtime() {
    // paused time needs a current-thread runtime: here, explicit
    // synchronisation and a deadline that has already passed
    on_multi_thread(async {
        let scope = CancelScope::new();
        let remote = scope.clone();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let canceller = tokio::spawn(async move {
            started_rx.await.unwrap();
            remote.cancel();
        });
        let out = scope
            .run(async {
                started_tx.send(()).unwrap();
                std::future::pending::<()>().await
            })
            .await;
        assert_eq!(out, None);
        canceller.await.unwrap();
        let past = std::time::Instant::now() - Duration::from_secs(1);
        assert_eq!(move_on_at(past, std::future::pending::<()>()).await, None);
    });
}

#[derive(Debug, PartialEq)]
enum JobError {
    TimedOut,
}

impl From<TimedOut> for JobError {
    fn from(_: TimedOut) -> Self {
        JobError::TimedOut
    }
}

#[nursery(timeout = Duration::from_secs(2))]
async fn jobs_with_deadline(
    guards: &Tracker,
    shielded_done: &Counter,
) -> Result<(), nursery::Errors<JobError>> {
    for _ in 0..3 {
        let g = guards.guard();
        spawn!(async move {
            let _g = g;
            sleep(Duration::from_secs(60)).await;
            Ok::<_, JobError>(())
        });
    }
    spawn!(
        async move {
            sleep(Duration::from_secs(3)).await; // outlives the deadline: shielded
            shielded_done.add();
        },
        shield
    );
    Ok(())
}

#[nursery(timeout = Duration::from_secs(10))]
async fn quick_jobs() -> Result<u8, nursery::Errors<JobError>> {
    spawn!(async { sleep(Duration::from_secs(1)).await });
    Ok(1)
}

#[nursery(timeout = Duration::from_millis(limit_ms))]
async fn anyhow_deadline(limit_ms: u64) -> anyhow::Result<()> {
    spawn!(async { sleep(Duration::from_secs(5)).await });
    Ok(())
}

#[test]
fn a_nursery_timeout_cancels_it_and_reports_timed_out() {
    paused().block_on(async {
        let (guards, shielded_done) = (Tracker::new(), Counter::new());
        let start = Instant::now();
        let errors = jobs_with_deadline(&guards, &shielded_done)
            .await
            .unwrap_err();
        assert_eq!(errors.iter_named().next().unwrap().0, Some("timeout"));
        assert_eq!(errors.into_vec(), [JobError::TimedOut]);
        assert!(guards.all_dropped());
        assert_eq!(
            shielded_done.get(),
            1,
            "a shielded child finishes after the deadline"
        );
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    });
}

#[test]
fn a_nursery_that_finishes_in_time_is_not_held_by_its_timeout() {
    paused().block_on(async {
        let start = Instant::now();
        assert_eq!(quick_jobs().await.unwrap(), 1);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    });
}

#[test]
fn a_timeout_converts_into_anyhow() {
    paused().block_on(async {
        let e = anyhow_deadline(1500).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "child `timeout` of nursery `anyhow_deadline` failed: the deadline passed"
        );
    });
}

#[nursery(n, grace = Duration::from_secs(2))]
async fn graceful(log: &std::sync::Mutex<Vec<String>>) -> Result<(), nursery::Errors<String>> {
    // cleans up in 1 s: within the grace period
    spawn!(async move {
        n.cancelled().await;
        sleep(Duration::from_secs(1)).await;
        log.lock().unwrap().push("quick cleanup done".into());
        Ok::<_, String>(())
    });
    // its cleanup fails: the error is kept
    spawn!(async move {
        n.cancelled().await;
        sleep(Duration::from_millis(500)).await;
        Err::<(), _>("cleanup failed".to_string())
    });
    // would take 5 s: dropped when the grace period ends
    spawn!(async move {
        n.cancelled().await;
        sleep(Duration::from_secs(5)).await;
        log.lock().unwrap().push("slow cleanup done (never)".into());
        Ok::<_, String>(())
    });
    sleep(Duration::from_secs(3)).await;
    n.cancel();
    sleep(Duration::from_secs(100)).await; // the body is interrupted at once
    Ok(())
}

#[test]
fn a_grace_period_lets_children_clean_up_then_drops_them() {
    paused().block_on(async {
        let log = std::sync::Mutex::new(Vec::new());
        let start = Instant::now();
        let errors = graceful(&log).await.unwrap_err();
        assert_eq!(errors.into_vec(), ["cleanup failed"]);
        assert_eq!(*log.lock().unwrap(), ["quick cleanup done"]);
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(5),
            "cancel at 3 s, grace 2 s"
        );
    });
}

#[nursery(n, grace = Duration::from_secs(10))]
async fn grace_ends_early(done: &Counter) {
    spawn!(async move {
        n.cancelled().await;
        sleep(Duration::from_secs(1)).await;
        done.add();
    });
    n.cancel();
}

#[test]
fn a_grace_period_ends_when_every_child_is_done() {
    paused().block_on(async {
        let done = Counter::new();
        let start = Instant::now();
        grace_ends_early(&done).await;
        assert_eq!(done.get(), 1);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    });
}
