//! Behaviour 1 (join): a nursery returns only when its body and every child
//! are done; dropping it drops every child; no child is polled afterwards.

mod common;

use common::*;
use futures::channel::oneshot;
use nursery::{nursery, spawn};
use std::pin::pin;
use std::task::Poll;

#[nursery]
async fn children_that_yield(done: &Counter, n: usize) {
    for i in 0..n {
        spawn!(async move {
            yield_times(i % 5).await;
            done.add();
        });
    }
}

#[nursery]
async fn body_returns_before_children(
    done: &Counter,
    order: &std::sync::Mutex<Vec<&'static str>>,
) -> u32 {
    spawn!(async move {
        yield_times(3).await;
        order.lock().unwrap().push("child");
        done.add();
    });
    order.lock().unwrap().push("body");
    7
}

#[nursery]
async fn spawns_then_checks(started: &Counter) -> usize {
    spawn!(async move { started.add() });
    let before = started.get();
    yield_now().await;
    before
}

#[nursery]
async fn child_spawns_sibling(done: &Counter) {
    spawn!(async move {
        spawn!(async move {
            yield_now().await;
            done.add();
        });
        done.add();
    });
}

#[nursery]
async fn nothing() -> u8 {
    3
}

on_every_runtime! {
    async fn nursery_waits_for_every_child() {
        let done = Counter::new();
        children_that_yield(&done, 100).await;
        assert_eq!(done.get(), 100);
    }

    async fn body_value_is_returned_after_children_finish() {
        let done = Counter::new();
        let order = std::sync::Mutex::new(Vec::new());
        assert_eq!(body_returns_before_children(&done, &order).await, 7);
        assert_eq!(done.get(), 1);
        assert_eq!(*order.lock().unwrap(), ["body", "child"]);
    }

    async fn children_start_when_the_spawner_yields() {
        let started = Counter::new();
        assert_eq!(spawns_then_checks(&started).await, 0, "the child ran inside `spawn!`");
        assert_eq!(started.get(), 1);
    }

    async fn a_child_may_spawn_siblings() {
        let done = Counter::new();
        child_spawns_sibling(&done).await;
        assert_eq!(done.get(), 2);
    }
}

#[test]
fn empty_nursery_completes_on_its_first_poll() {
    let mut fut = pin!(nothing());
    assert_eq!(poll_once(fut.as_mut()), Poll::Ready(3));
}

#[nursery]
async fn waits_on_receivers(
    rxs: Vec<oneshot::Receiver<()>>,
    drops: &Counter,
    polls: &Counter,
    done: &Counter,
) {
    for rx in rxs {
        let guard = drops.on_drop();
        spawn!(count_polls(
            async move {
                let _guard = guard;
                let _ = rx.await;
                done.add();
            },
            polls
        ));
    }
}

#[test]
fn dropping_the_nursery_future_drops_every_child() {
    let (drops, polls, done) = (Counter::new(), Counter::new(), Counter::new());
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..10).map(|_| oneshot::channel::<()>()).unzip();
    let mut fut = Box::pin(waits_on_receivers(rxs, &drops, &polls, &done));
    assert!(poll_once(fut.as_mut()).is_pending());
    assert_eq!(polls.get(), 10);
    assert_eq!(drops.get(), 0);
    drop(fut);
    assert_eq!(drops.get(), 10, "every child is dropped with the nursery");
    for tx in txs {
        let _ = tx.send(());
    }
    assert_eq!(
        polls.get(),
        10,
        "no child is polled after its nursery was dropped"
    );
    assert_eq!(done.get(), 0);
}

#[test]
fn mem_forget_of_a_running_nursery_never_polls_a_child_again() {
    let (drops, polls, done) = (Counter::new(), Counter::new(), Counter::new());
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..10).map(|_| oneshot::channel::<()>()).unzip();
    let mut fut = Box::pin(waits_on_receivers(rxs, &drops, &polls, &done));
    assert!(poll_once(fut.as_mut()).is_pending());
    std::mem::forget(fut);
    // Wake every child: their wakers reach only the registry's shared queue,
    // never the forgotten future.
    for tx in txs {
        let _ = tx.send(());
    }
    assert_eq!(
        polls.get(),
        10,
        "no child is polled after its nursery was forgotten"
    );
    assert_eq!(done.get(), 0);
    assert_eq!(
        drops.get(),
        0,
        "forgetting leaks the children; it does not drop them"
    );
}

#[nursery]
async fn tree(guards: &Tracker) -> Result<u32, nursery::Errors<u32>> {
    for i in 0..6u32 {
        let guard = guards.guard();
        spawn!(async move {
            let _guard = guard;
            yield_times(i as usize).await;
            if i == 4 {
                return Err(i);
            }
            let guard = guards.guard();
            spawn!(
                async move {
                    let _guard = guard;
                    yield_times(2).await;
                },
                shield
            );
            Ok(())
        });
    }
    yield_times(3).await;
    Ok(1)
}

#[test]
fn drop_at_every_poll_point_drops_every_child() {
    let mut k = 0;
    loop {
        let guards = Tracker::new();
        let mut fut = Box::pin(tree(&guards));
        let mut finished = None;
        for _ in 0..k {
            if let Poll::Ready(out) = poll_once(fut.as_mut()) {
                finished = Some(out);
                break;
            }
        }
        drop(fut);
        assert!(
            guards.all_dropped(),
            "k = {k}: {} guards created, {} dropped",
            guards.created.get(),
            guards.dropped.get()
        );
        if let Some(out) = finished {
            assert_eq!(out.unwrap_err().into_vec(), vec![4]);
            break;
        }
        k += 1;
        assert!(k < 100, "the nursery never finished");
    }
    assert!(k > 3, "the tree should take several polls, took {k}");
}

#[nursery]
async fn pending_children(n: usize, polls: &Counter, wake: oneshot::Receiver<()>) {
    for _ in 0..n {
        spawn!(
            count_polls(futures::future::pending::<()>(), polls),
            background
        );
    }
    spawn!(count_polls(
        async move {
            let _ = wake.await;
        },
        polls
    ));
}

#[test]
fn a_wake_polls_only_the_woken_child() {
    for n in [10, 1_000, 100_000] {
        let polls = Counter::new();
        let (tx, rx) = oneshot::channel();
        let mut fut = Box::pin(pending_children(n, &polls, rx));
        while polls.get() < n + 1 {
            assert!(poll_once(fut.as_mut()).is_pending());
        }
        assert_eq!(polls.get(), n + 1, "each child is polled once to start");
        tx.send(()).unwrap();
        assert!(poll_once(fut.as_mut()).is_ready());
        assert_eq!(
            polls.get(),
            n + 2,
            "n = {n}: one wake must cost one child poll"
        );
    }
}

/// Pending forever, waking itself at every poll (it yields).
fn wakes_itself_forever() -> impl std::future::Future<Output = ()> {
    std::future::poll_fn(|cx| {
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

#[nursery]
async fn background_behind_the_last_foreground_child(polls: &Counter) {
    spawn!(yield_now()); // the only foreground child: done on its second poll
    for _ in 0..3 {
        // each poll wakes itself: queued right behind it, every time
        spawn!(count_polls(wakes_itself_forever(), polls), background);
    }
}

#[test]
fn background_children_queued_behind_the_last_foreground_child_are_not_polled_again() {
    // The second batch holds the foreground child (which completes) and then
    // the three background children: they go before any of them is polled
    // again, even in the batch where the last foreground child ended.
    let polls = Counter::new();
    futures::executor::block_on(background_behind_the_last_foreground_child(&polls));
    assert_eq!(polls.get(), 3, "each background child was polled once only");
}

#[nursery]
async fn many_ready(n: usize, polls: &Counter) {
    for _ in 0..n {
        spawn!(count_polls(async {}, polls));
    }
}

/// The most children one poll of a nursery polls (two batches of 64).
const STEP_POLLS: usize = 128;

#[test]
fn one_poll_of_the_nursery_polls_a_bounded_number_of_children() {
    let polls = Counter::new();
    let mut fut = Box::pin(many_ready(10_000, &polls));
    let mut nursery_polls = 0;
    let mut last = 0;
    while poll_once(fut.as_mut()).is_pending() {
        nursery_polls += 1;
        let now = polls.get();
        assert!(
            now - last <= STEP_POLLS,
            "one poll of the nursery polled {} children",
            now - last
        );
        last = now;
    }
    assert_eq!(polls.get(), 10_000, "every child was polled exactly once");
    assert!(nursery_polls >= 10_000 / STEP_POLLS);
}

#[nursery]
async fn chain(n: usize, polls: &Counter, first: oneshot::Receiver<()>) {
    let mut prev = first;
    for _ in 0..n {
        let (tx, rx) = oneshot::channel();
        let wait = std::mem::replace(&mut prev, rx);
        spawn!(count_polls(
            async move {
                let _ = wait.await;
                let _ = tx.send(());
            },
            polls
        ));
    }
}

#[test]
fn a_chain_of_wakes_runs_within_one_poll_of_the_nursery() {
    // Each child wakes the next as it ends: the nursery polls the woken one
    // in the same step (not one child per poll of its task), up to its
    // bound.
    let n = 100;
    let polls = Counter::new();
    let (first, rx) = oneshot::channel();
    let mut fut = Box::pin(chain(n, &polls, rx));
    while polls.get() < n {
        assert!(poll_once(fut.as_mut()).is_pending());
    }
    first.send(()).unwrap();
    assert!(
        poll_once(fut.as_mut()).is_ready(),
        "the whole chain ran in one poll"
    );
    assert_eq!(polls.get(), 2 * n, "each child polled twice");
}

#[nursery]
async fn yields_forever(polls: &Counter) {
    spawn!(count_polls(wakes_itself_forever(), polls), background);
    std::future::pending::<()>().await;
}

#[test]
fn a_child_that_yields_is_polled_once_per_poll_of_the_nursery() {
    // A child that wakes itself yields: the nursery yields too, rather than
    // poll it again in the same step (the executor runs others first).
    let polls = Counter::new();
    let mut fut = Box::pin(yields_forever(&polls));
    for round in 1..=10 {
        assert!(poll_once(fut.as_mut()).is_pending());
        assert_eq!(polls.get(), round);
    }
}
