//! Callbacks into user code may call back into the crate without a
//! deadlock (issue 16, item 2): a `tracing` subscriber that renders the task
//! tree on every event, a child's `Drop` that cancels and spawns, a waker
//! that cancels.
#![cfg(all(feature = "tracing", feature = "task-tree"))]

mod common;

use common::*;
use nursery::{Errors, nursery, spawn};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A subscriber that renders `nursery::task_tree()` inside every event
/// (and every new span): counts them, and keeps every tree that showed a
/// nursery as busy (its lock held while the subscriber ran).
struct TreeOnEvent(Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>);

impl TreeOnEvent {
    fn render(&self) {
        let tree = nursery::task_tree();
        if tree.contains("busy") {
            self.1.lock().unwrap().push(tree);
        }
    }
}

impl tracing::Subscriber for TreeOnEvent {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.render();
        tracing::span::Id::from_u64(1 + self.0.fetch_add(1, Ordering::Relaxed) as u64)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {
        self.render();
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Runs `f` under a [`TreeOnEvent`] subscriber, checking that it never saw
/// a nursery busy. Every test of this file runs under one: a test thread
/// with no subscriber could otherwise race another's registration of a
/// callsite and leave it uninterested (tracing caches interest globally).
fn traced<T>(f: impl FnOnce() -> T) -> T {
    let busy = Arc::new(Mutex::new(Vec::new()));
    let out = tracing::subscriber::with_default(
        TreeOnEvent(Arc::new(AtomicUsize::new(0)), busy.clone()),
        f,
    );
    assert_eq!(busy.lock().unwrap().as_slice(), &[] as &[String]);
    out
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
    let busy = Arc::new(Mutex::new(Vec::new()));
    tracing::subscriber::with_default(TreeOnEvent(calls.clone(), busy.clone()), || {
        let errors = must_finish(fails_and_cancels()).unwrap_err();
        assert_eq!(*errors.first(), "gateway down");
    });
    assert!(
        calls.load(Ordering::Relaxed) > 0,
        "the subscriber saw events"
    );
    // Every event and span is made with no lock of the nursery held: the
    // subscriber reads the nursery itself, never "busy".
    assert_eq!(busy.lock().unwrap().as_slice(), &[] as &[String]);
}

/// A waker that renders the task tree and cancels a token when woken.
struct TreeWaker {
    trees: Mutex<Vec<String>>,
    token: nursery::CancelToken,
}

impl std::task::Wake for TreeWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.trees.lock().unwrap().push(nursery::task_tree());
        self.token.cancel();
    }
}

#[test]
fn a_waker_woken_by_a_cancel_may_render_the_tree_and_cancel() {
    let out = traced(|| {
        must_finish(nursery::scope!(|n| async move {
            let waker = Arc::new(TreeWaker {
                trees: Mutex::new(Vec::new()),
                token: n.cancel_token(),
            });
            let as_waker = std::task::Waker::from(waker.clone());
            let mut cx = std::task::Context::from_waker(&as_waker);
            let token = n.cancel_token();
            let mut nursery_wait = std::pin::pin!(n.cancelled());
            let mut token_wait = std::pin::pin!(token.cancelled());
            assert!(nursery_wait.as_mut().poll(&mut cx).is_pending());
            assert!(token_wait.as_mut().poll(&mut cx).is_pending());
            n.cancel(); // wakes both
            let trees = std::mem::take(&mut *waker.trees.lock().unwrap());
            Ok::<_, Errors<&'static str>>(trees)
        }))
    });
    let trees = out.unwrap(); // the body returned before its next `.await`
    assert_eq!(trees.len(), 2, "both waiters were woken");
    for tree in trees {
        assert!(
            tree.contains("cancelling (explicit cancel)"),
            "woken with no lock held, the waker reads the nursery: {tree}"
        );
    }
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
    let out = traced(|| {
        must_finish(nursery::scope!(|n| async move {
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
        }))
    });
    assert_eq!(*out.unwrap_err().first(), "boom");
    assert_eq!(spawned.get(), 0, "spawned while cancelling: never polled");
}
