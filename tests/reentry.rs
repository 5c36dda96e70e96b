//! Callbacks into user code may call back into the crate without a
//! deadlock (issue 16, item 2): a `tracing` subscriber that renders the task
//! tree on every event, a child's `Drop` that cancels and spawns, a waker
//! that cancels.
#![cfg(all(feature = "tracing", feature = "task-tree"))]

mod common;

use common::*;
use nursery::{Errors, nursery, spawn};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A subscriber that renders `nursery::task_tree()` inside every event
/// (and every new span), under whatever lock the crate held to emit it.
struct TreeOnEvent(Arc<AtomicUsize>);

impl tracing::Subscriber for TreeOnEvent {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let _ = nursery::task_tree();
        tracing::span::Id::from_u64(1 + self.0.fetch_add(1, Ordering::Relaxed) as u64)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {
        let _ = nursery::task_tree();
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[nursery(n)]
async fn fails_and_cancels() -> Result<(), Errors<&'static str>> {
    spawn!(std::future::pending::<()>(), name = "waiting");
    spawn!(async { Err::<(), _>("gateway down") }, name = "sms");
    yield_now().await;
    n.cancel();
    Ok(())
}

#[test]
fn a_subscriber_that_renders_the_task_tree_on_every_event_does_not_deadlock() {
    let calls = Arc::new(AtomicUsize::new(0));
    tracing::subscriber::with_default(TreeOnEvent(calls.clone()), || {
        let errors = must_finish(fails_and_cancels()).unwrap_err();
        assert_eq!(*errors.first(), "gateway down");
    });
    assert!(
        calls.load(Ordering::Relaxed) > 0,
        "the subscriber saw events"
    );
}

/// A child whose `Drop` calls back into its nursery.
struct CallsBack<'a, 'scope> {
    nursery: &'a nursery::Nursery<'scope, &'static str>,
    spawned: &'scope Counter,
}

impl Drop for CallsBack<'_, '_> {
    fn drop(&mut self) {
        let _ = nursery::task_tree();
        self.nursery.cancel();
        let spawned = self.spawned;
        // into a cancelling nursery: dropped unpolled, never a deadlock
        drop(self.nursery.spawn(async move {
            spawned.add();
            Ok(())
        }));
    }
}

#[test]
fn a_drop_that_renders_the_tree_cancels_and_spawns_does_not_deadlock() {
    let spawned = Counter::new();
    let s = &spawned;
    let out = must_finish(nursery::scope!(|n| async move {
        let guard = CallsBack {
            nursery: n,
            spawned: s,
        };
        n.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(())
        });
        n.spawn(async { Err::<(), _>("boom") });
        Ok::<_, Errors<&'static str>>(())
    }));
    assert_eq!(*out.unwrap_err().first(), "boom");
    assert_eq!(spawned.get(), 0, "spawned while cancelling: never polled");
}
