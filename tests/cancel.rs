//! Behaviour 7 and the spawn options: `cancel()`, `shield`, `background`,
//! spawning into a cancelling or finished nursery.

mod common;

use common::*;
use futures::channel::oneshot;
use nursery::{Closed, Errors, Nursery, nursery, spawn};

#[nursery(n)]
async fn cancel_from_body(guards: &Tracker) -> Result<(), Errors<()>> {
    for _ in 0..3 {
        let guard = guards.guard();
        spawn!(async move {
            let _guard = guard;
            futures::future::pending::<()>().await;
        });
    }
    yield_now().await;
    n.cancel();
    assert!(n.is_cancelled());
    futures::future::pending::<()>().await;
    unreachable!("the body is interrupted at its next `.await`")
}

#[nursery(n)]
async fn cancel_from_child(guards: &Tracker, after_cancel: &Counter) {
    let guard = guards.guard();
    spawn!(async move {
        let _guard = guard;
        futures::future::pending::<()>().await;
    });
    spawn!(async move {
        yield_times(2).await;
        n.cancel();
        yield_now().await;
        after_cancel.add();
    });
    futures::future::pending::<()>().await;
}

#[nursery(n)]
async fn cancel_then_return_a_value() -> Result<Vec<u32>, Errors<()>> {
    spawn!(futures::future::pending::<()>());
    n.cancel();
    Ok(vec![1, 2])
}

#[nursery(n)]
async fn cancelled_option_body() -> Option<u32> {
    spawn!(async move {
        yield_now().await;
        n.cancel();
    });
    futures::future::pending::<()>().await;
    Some(1)
}

#[nursery(n)]
async fn cancelled_value_body() -> u32 {
    spawn!(async move {
        yield_now().await;
        n.cancel();
    });
    futures::future::pending::<()>().await;
    1
}

#[nursery(n)]
async fn spawn_while_cancelling(polled: &Counter) {
    n.cancel();
    let task = spawn!(count_polls(async {}, polled));
    let shielded = spawn!(count_polls(async { 5 }, polled), shield);
    assert_eq!(shielded.await, 5);
    assert_eq!(task.try_join().await, None);
}

#[nursery]
async fn shield_survives_sibling_failure(saved: &Counter) -> Result<(), Errors<&'static str>> {
    spawn!(
        async move {
            yield_times(5).await;
            saved.add();
            Ok(())
        },
        shield,
        name = "payment"
    );
    spawn!(async { Err::<(), _>("sms failed") }, name = "sms");
    Ok(())
}

#[nursery(n)]
async fn shielded_child_sees_cancellation(cleaned: &Counter) {
    spawn!(
        async move {
            n.cancelled().await;
            yield_now().await; // async cleanup
            cleaned.add();
        },
        shield
    );
    spawn!(async move {
        yield_times(2).await;
        n.cancel();
    });
}

#[nursery]
async fn background_ends_after_the_rest(
    beats: &Counter,
    guards: &Tracker,
    work_done: &Counter,
) -> u32 {
    let guard = guards.guard();
    spawn!(
        async move {
            let _guard = guard;
            loop {
                beats.add();
                yield_now().await;
            }
        },
        background
    );
    spawn!(async move {
        yield_times(10).await;
        work_done.add();
    });
    yield_times(3).await;
    99
}

#[nursery]
async fn background_error_still_fails() -> Result<(), Errors<u8>> {
    spawn!(
        async {
            yield_now().await;
            Err::<(), _>(7)
        },
        background
    );
    spawn!(async { yield_times(5).await });
    Ok(())
}

#[nursery]
async fn only_background() {
    spawn!(futures::future::pending::<()>(), background);
}

/// A child whose `Drop` tries to spawn into the nursery.
struct SpawnOnDrop<'a, 'scope> {
    n: &'a Nursery<'scope, std::convert::Infallible>,
    result: &'a std::sync::Mutex<Option<Result<(), Closed>>>,
}

impl Drop for SpawnOnDrop<'_, '_> {
    fn drop(&mut self) {
        let r = self.n.try_spawn(async {}).map(|_| ());
        *self.result.lock().unwrap() = Some(r);
    }
}

#[nursery(n)]
async fn respawn_on_drop(result: &std::sync::Mutex<Option<Result<(), Closed>>>) {
    let guard = SpawnOnDrop { n, result };
    spawn!(async move {
        let _guard = guard;
        futures::future::pending::<()>().await;
    });
    futures::future::pending::<()>().await;
}

on_every_runtime! {
    async fn cancel_from_the_body_returns_normally() {
        let guards = Tracker::new();
        cancel_from_body(&guards).await.unwrap();
        assert!(guards.all_dropped());
    }

    async fn cancel_from_a_child_stops_everything() {
        let (guards, after) = (Tracker::new(), Counter::new());
        cancel_from_child(&guards, &after).await;
        assert!(guards.all_dropped());
        assert_eq!(after.get(), 0, "the cancelling child is itself cancelled");
    }

    async fn a_body_finishes_with_a_value_by_returning_after_cancel() {
        assert_eq!(cancel_then_return_a_value().await.unwrap(), vec![1, 2]);
    }

    async fn a_cancelled_option_body_returns_none() {
        assert_eq!(cancelled_option_body().await, None);
    }

    async fn a_child_spawned_while_cancelling_is_never_polled() {
        let polled = Counter::new();
        spawn_while_cancelling(&polled).await;
        assert_eq!(polled.get(), 1, "only the shielded child ran");
    }

    async fn a_shielded_child_completes_while_a_sibling_fails() {
        let saved = Counter::new();
        let errors = shield_survives_sibling_failure(&saved).await.unwrap_err();
        assert_eq!(saved.get(), 1);
        assert_eq!(errors.to_string(), "child `sms` of nursery `shield_survives_sibling_failure` failed: sms failed");
    }

    async fn a_shielded_child_sees_cancellation_and_cleans_up() {
        let cleaned = Counter::new();
        shielded_child_sees_cancellation(&cleaned).await;
        assert_eq!(cleaned.get(), 1);
    }

    async fn a_background_child_is_cancelled_once_the_rest_is_done() {
        let (beats, guards, work) = (Counter::new(), Tracker::new(), Counter::new());
        assert_eq!(background_ends_after_the_rest(&beats, &guards, &work).await, 99);
        assert_eq!(work.get(), 1);
        assert!(guards.all_dropped());
        assert!(beats.get() >= 10, "the heartbeat ran while the work did: {}", beats.get());
    }

    async fn a_failing_background_child_fails_the_nursery() {
        assert_eq!(background_error_still_fails().await.unwrap_err().into_vec(), vec![7]);
    }

    async fn a_nursery_of_only_background_children_ends_with_its_body() {
        only_background().await;
    }
}

#[test]
#[should_panic(expected = "neither `()` nor an `Option`")]
fn cancelling_a_body_that_must_produce_a_value_panics_with_a_message() {
    futures::executor::block_on(cancelled_value_body());
}

#[test]
fn spawning_from_drop_during_teardown_is_closed() {
    let result = std::sync::Mutex::new(None);
    let mut fut = Box::pin(respawn_on_drop(&result));
    assert!(poll_once(fut.as_mut()).is_pending());
    drop(fut);
    assert_eq!(*result.lock().unwrap(), Some(Err(Closed)));
}

#[nursery(n)]
async fn cancel_from_another_thread(ready: std::sync::mpsc::Sender<()>, go: oneshot::Receiver<()>) {
    spawn!(futures::future::pending::<()>());
    let _ = ready.send(());
    std::thread::scope(|s| {
        s.spawn(|| {
            futures::executor::block_on(go).unwrap();
            n.cancel();
        });
    });
}

#[test]
fn cancel_from_another_thread_wakes_the_nursery() {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = oneshot::channel();
    std::thread::scope(|s| {
        s.spawn(move || {
            ready_rx.recv().unwrap();
            go_tx.send(()).unwrap();
        });
        futures::executor::block_on(cancel_from_another_thread(ready_tx, go_rx));
    });
}
