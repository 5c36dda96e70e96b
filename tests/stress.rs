//! Stress: deep chains of nested nurseries, and very many children failing
//! at once. (A million children in one nursery: `tests/join.rs`.)

mod common;

use common::*;
use futures::FutureExt;
use futures::channel::oneshot;
use nursery::{Errors, nursery, spawn};
use std::future::Future;
use std::pin::Pin;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A chain of `depth` nested nurseries, each the child of the one above;
/// the innermost waits on `gate` (or fails, or is cancelled).
fn chain<'a>(
    depth: usize,
    guards: &'a Tracker,
    fail: bool,
) -> Boxed<'a, Result<usize, Errors<u32>>> {
    Box::pin(nested(depth, guards, fail))
}

#[nursery]
async fn nested(depth: usize, guards: &Tracker, fail: bool) -> Result<usize, Errors<u32>> {
    let guard = guards.guard();
    if depth == 0 {
        let _guard = guard;
        yield_now().await;
        if fail {
            return Err(Errors::from(7));
        }
        return Ok(0);
    }
    let inner = spawn!(async move {
        let _guard = guard;
        chain(depth - 1, guards, fail)
            .await
            .map_err(|e| e.into_first())
    });
    Ok(inner.await + 1)
}

/// Runs `f` on a thread with a generous but fixed stack, as a deep chain
/// of futures needs (each level's poll is a stack frame).
fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

const DEPTH: usize = 10_000;

#[test]
fn a_chain_of_ten_thousand_nested_nurseries_runs_and_unwinds() {
    on_big_stack(|| {
        let guards = Tracker::new();
        let out = futures::executor::block_on(chain(DEPTH, &guards, false));
        assert_eq!(out.unwrap(), DEPTH);
        assert!(guards.all_dropped());
    });
}

#[test]
fn a_failure_at_the_bottom_of_a_deep_chain_reaches_the_top() {
    on_big_stack(|| {
        let guards = Tracker::new();
        let errors = futures::executor::block_on(chain(DEPTH, &guards, true)).unwrap_err();
        assert_eq!(errors.into_vec(), [7]);
        assert!(guards.all_dropped());
    });
}

#[test]
fn dropping_a_deep_chain_drops_every_level() {
    on_big_stack(|| {
        let guards = Tracker::new();
        let mut fut = chain(DEPTH, &guards, false);
        // one poll: every level spawned and pending, the bottom one yielded
        assert!(poll_once(fut.as_mut()).is_pending());
        assert_eq!(guards.created.get(), DEPTH + 1);
        drop(fut);
        assert!(
            guards.all_dropped(),
            "{} of {} levels dropped",
            guards.dropped.get(),
            guards.created.get()
        );
    });
}

#[nursery]
async fn many_fail_at_once(
    n: u32,
    gate: futures::future::Shared<oneshot::Receiver<()>>,
) -> Result<(), Errors<u32>> {
    for i in 0..n {
        let gate = gate.clone();
        spawn!(async move {
            let _ = gate.await; // all wait on one gate ...
            Err::<(), _>(i) // ... and fail in the same round when it opens
        });
    }
    Ok(())
}

#[nursery]
async fn many_fail_at_first_poll(n: u32) -> Result<(), Errors<u32>> {
    for i in 0..n {
        spawn!(async move { Err::<(), _>(i) });
    }
    Ok(())
}

#[test]
fn a_hundred_thousand_children_failing_at_once_are_all_aggregated() {
    let (open, gate) = oneshot::channel::<()>();
    let mut fut = Box::pin(many_fail_at_once(100_000, gate.shared()));
    // 100 000 / 64 steps poll every child once: then all wait on the gate
    for _ in 0..2_000 {
        assert!(poll_once(fut.as_mut()).is_pending());
    }
    open.send(()).unwrap();
    let errors = futures::executor::block_on(fut).unwrap_err();
    // every child failed in the round the gate opened: every error is kept,
    // in the order they happened
    let all = errors.into_vec();
    assert_eq!(all.len(), 100_000);
    assert!(all.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_hundred_thousand_children_failing_at_their_first_poll_are_all_aggregated() {
    let errors = futures::executor::block_on(many_fail_at_first_poll(100_000)).unwrap_err();
    assert_eq!(errors.len(), 100_000);
}
