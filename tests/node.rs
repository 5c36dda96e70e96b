//! Tests aimed at the invariants of `nursery-core/src/node.rs`, the one
//! module with `unsafe` code (run them under valgrind: see docs/contributing.md).
//! Each names the invariant of that module's header it checks.

mod common;

use common::*;
use futures::channel::oneshot;
use nursery::{nursery, spawn};
use std::sync::Mutex;
use std::task::{Poll, Waker};

/// A value that counts its drops.
struct Output(Counter);

impl Drop for Output {
    fn drop(&mut self) {
        self.0.add();
    }
}

#[nursery]
async fn output_taken(drops: &Counter) -> usize {
    let t = spawn!(async move { Output(drops.clone()) });
    let out = t.await;
    let before = drops.get();
    drop(out);
    before
}

#[nursery]
async fn handle_dropped_before_completion(drops: &Counter) {
    let t = spawn!(async move {
        yield_times(3).await;
        Output(drops.clone())
    });
    drop(t);
}

#[nursery]
async fn handle_dropped_after_completion(drops: &Counter) -> usize {
    let t = spawn!(async move { Output(drops.clone()) });
    yield_times(3).await; // the child completes; its output waits in the node
    let before = drops.get();
    drop(t);
    before
}

#[nursery]
async fn handle_never_taken(drops: &Counter) {
    spawn!(async move { Output(drops.clone()) });
}

#[test]
fn an_awaited_output_is_moved_out_not_dropped_by_the_node() {
    // invariant 3
    let drops = Counter::new();
    assert_eq!(futures::executor::block_on(output_taken(&drops)), 0);
    assert_eq!(drops.get(), 1);
}

#[test]
fn an_output_is_dropped_exactly_once_whichever_side_goes_first() {
    // invariant 3: handle first, child first, no handle at all
    for f in [
        |d: &Counter| futures::executor::block_on(handle_dropped_before_completion(d)),
        |d: &Counter| {
            assert_eq!(
                futures::executor::block_on(handle_dropped_after_completion(d)),
                0
            );
        },
        |d: &Counter| futures::executor::block_on(handle_never_taken(d)),
    ] {
        let drops = Counter::new();
        f(&drops);
        assert_eq!(drops.get(), 1);
    }
}

#[nursery]
async fn leaks_a_waker(stash: &Mutex<Option<Waker>>, guards: &Tracker) {
    let guard = guards.guard();
    spawn!(async move {
        let _guard = guard;
        std::future::poll_fn(|cx| {
            *stash.lock().unwrap() = Some(cx.waker().clone());
            Poll::Ready(())
        })
        .await;
    });
}

#[test]
fn a_waker_that_outlives_its_nursery_touches_only_the_header() {
    // invariants 1, 2, 5: the future is gone, the memory stays until the
    // last waker goes
    let stash = Mutex::new(None);
    let guards = Tracker::new();
    futures::executor::block_on(leaks_a_waker(&stash, &guards));
    assert!(guards.all_dropped());
    let waker = stash.lock().unwrap().take().unwrap();
    waker.wake_by_ref();
    let clone = waker.clone();
    drop(waker);
    std::thread::spawn(move || clone.wake()).join().unwrap();
}

#[nursery]
async fn panics_with_guard(guards: &Tracker) {
    let guard = guards.guard();
    spawn!(async move {
        let _guard = guard;
        yield_now().await;
        panic!("child panics");
    });
}

#[test]
fn a_panicking_child_is_dropped_exactly_once() {
    // invariant 2
    let guards = Tracker::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        futures::executor::block_on(panics_with_guard(&guards))
    }));
    assert!(r.is_err());
    assert_eq!(guards.created.get(), 1);
    assert_eq!(guards.dropped.get(), 1);
}

#[nursery]
async fn shielded_awaits_cancelled_sibling(
    gate: oneshot::Receiver<()>,
) -> Result<Option<u8>, nursery::Errors<u8>> {
    let victim = spawn!(async move {
        let _ = gate.await;
        Ok(1u8)
    });
    let watcher = spawn!(async move { victim.try_join().await }, shield);
    spawn!(async {
        yield_now().await;
        Err::<(), _>(9u8)
    });
    Ok(watcher.await)
}

#[test]
fn a_join_waker_is_woken_when_its_child_is_cancelled() {
    // invariant 4: the handle registered a waker; the child is dropped
    // without a value; the handle is woken and sees `None`
    let (_gate, rx) = oneshot::channel();
    let errors = futures::executor::block_on(shielded_awaits_cancelled_sibling(rx)).unwrap_err();
    assert_eq!(errors.into_vec(), [9]);
}

#[nursery]
async fn wakes_from_other_threads(n: usize) -> usize {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            spawn!(async move {
                let (tx, rx) = oneshot::channel();
                std::thread::spawn(move || tx.send(i).unwrap());
                rx.await.unwrap()
            })
        })
        .collect();
    let mut sum = 0;
    for h in handles {
        sum += h.await;
    }
    sum
}

#[test]
fn wakes_from_other_threads_race_with_polls() {
    // invariant 5, and `QUEUED`: a wake that lands while its child is being
    // polled is not lost
    assert_eq!(
        on_multi_thread(wakes_from_other_threads(200)),
        (0..200).sum::<usize>()
    );
}

#[nursery]
async fn churn(rounds: usize) -> Result<usize, nursery::Errors<String>> {
    let mut total = 0;
    for round in 0..rounds {
        // waves of children that end in a different order than they began,
        // so that vacant slots are reused out of order; every third is named
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let name = format!("r{round}c{i}");
                let child = async move {
                    yield_times((i * 7 + round) % 5).await;
                    Ok::<_, String>(i)
                };
                if i % 3 == 0 {
                    spawn!(child, name = name)
                } else {
                    spawn!(child)
                }
            })
            .collect();
        for h in handles {
            total += h.await;
        }
    }
    // a failure names the right child after all that reuse
    spawn!(async { Err::<(), _>("late".to_string()) }, name = "last");
    Ok(total)
}

#[test]
fn slots_are_reused_without_mixing_children_up() {
    // the intrusive free list of the registry's slab
    let errors = futures::executor::block_on(churn(40)).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "child `last` of nursery `churn` failed: late"
    );
}
