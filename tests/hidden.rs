//! The `#[doc(hidden)]` items generated code uses are sound to call in any
//! order from safe code (issue 16, item 4): a nursery is driven once, and a
//! nursery whose driver was forgotten leaves the task tree when it is
//! dropped, so the tree never reads freed memory (run under valgrind by
//! `scripts/valgrind`).

mod common;

use common::*;
use nursery::__private::{Nursery, Sendable, run_errors};
use nursery::Errors;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

type N = Nursery<'static, &'static str, Sendable>;

#[test]
fn a_nursery_is_driven_once() {
    let nursery = pin!(N::new());
    let nursery = nursery.into_ref();
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut first = pin!(run_errors(
        nursery,
        std::future::pending::<Result<(), Errors<_>>>(),
        || None
    ));
    assert!(first.as_mut().poll(&mut cx).is_pending());
    let mut second = pin!(run_errors(nursery, async { Ok(()) }, || None));
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        second.as_mut().poll(&mut cx)
    }))
    .expect_err("a second driver is refused");
    let message = payload_str(&*panic);
    assert!(
        message.contains("already has a driver") && message.contains("open a new nursery"),
        "{message}"
    );
    // The first driver goes on as if nothing happened.
    assert!(first.as_mut().poll(&mut cx).is_pending());
}

#[cfg(feature = "task-tree")]
#[test]
fn a_nursery_whose_driver_was_forgotten_leaves_the_tree_when_dropped() {
    let nursery = Box::pin(Nursery::<'static, &'static str, Sendable>::named(
        "forgotten_driver",
    ));
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut driver = Box::pin(run_errors(
        nursery.as_ref(),
        std::future::pending::<Result<(), Errors<_>>>(),
        || None,
    ));
    assert!(matches!(driver.as_mut().poll(&mut cx), Poll::Pending));
    assert!(nursery::task_tree().contains("forgotten_driver"));
    std::mem::forget(driver); // its `Teardown` never runs
    drop(nursery); // the nursery's own drop takes it out of the tree
    let tree = nursery::task_tree(); // reads no freed memory (valgrind)
    assert!(!tree.contains("forgotten_driver"), "{tree}");
}

#[test]
fn an_undriven_nursery_accepts_spawns_and_drops_cleanly() {
    // Its children never run (no driver): nothing is polled, nothing breaks.
    let polled = Counter::new();
    let nursery = pin!(N::new());
    let p = polled.clone();
    let task = nursery.as_ref().get_ref().spawn(async move {
        p.add();
        Ok(())
    });
    drop(task);
    assert_eq!(polled.get(), 0);
}
