//! Behaviour 6: a panicking child cancels the rest; its original payload
//! resumes in the caller once every child is gone.

mod common;

use common::*;
use futures::FutureExt;
use nursery::{Errors, nursery, spawn};
use std::panic::AssertUnwindSafe;

#[nursery]
async fn child_panics(guards: &Tracker, shielded_done: &Counter) -> Result<(), Errors<String>> {
    for _ in 0..3 {
        let guard = guards.guard();
        spawn!(async move {
            let _guard = guard;
            futures::future::pending::<()>().await;
        });
    }
    spawn!(
        async move {
            yield_times(3).await;
            shielded_done.add();
        },
        shield
    );
    spawn!(async {
        yield_now().await;
        std::panic::panic_any(42u64);
    });
    futures::future::pending::<()>().await;
    Ok(())
}

#[nursery]
async fn panic_and_error() -> Result<(), Errors<String>> {
    spawn!(async { Err::<(), _>("first".to_string()) }, shield);
    spawn!(
        async {
            yield_now().await;
            panic!("the panic wins");
        },
        shield
    );
    Ok(())
}

#[nursery]
async fn body_panics(guards: &Tracker) {
    let guard = guards.guard();
    spawn!(async move {
        let _guard = guard;
        futures::future::pending::<()>().await;
    });
    yield_now().await;
    panic!("body");
}

on_every_runtime! {
    async fn a_child_panic_cancels_siblings_and_resumes_its_payload() {
        let (guards, shielded_done) = (Tracker::new(), Counter::new());
        let payload = AssertUnwindSafe(child_panics(&guards, &shielded_done))
            .catch_unwind()
            .await
            .unwrap_err();
        assert_eq!(payload.downcast_ref::<u64>(), Some(&42));
        assert!(guards.all_dropped(), "siblings are dropped before the panic resumes");
        assert_eq!(shielded_done.get(), 1, "a shielded sibling runs to completion first");
    }

    async fn a_panic_wins_over_errors() {
        let payload = AssertUnwindSafe(panic_and_error()).catch_unwind().await.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"the panic wins"));
    }

    async fn a_body_panic_drops_the_children_and_resumes() {
        let guards = Tracker::new();
        let payload = AssertUnwindSafe(body_panics(&guards)).catch_unwind().await.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"body"));
        assert!(guards.all_dropped());
    }
}

#[nursery]
async fn panics_while_a_shielded_child_runs(gate: futures::channel::oneshot::Receiver<()>) {
    spawn!(
        async move {
            let _ = gate.await;
        },
        shield
    );
    spawn!(async {
        yield_now().await;
        panic!("recorded, not yet resumed");
    });
}

#[test]
fn dropping_a_nursery_with_a_recorded_panic_does_not_panic_in_drop() {
    // its caller gave up (a timeout, `select!`): the panic hook has already
    // reported the panic; `drop` must not panic
    let (_gate, rx) = futures::channel::oneshot::channel();
    let mut fut = Box::pin(panics_while_a_shielded_child_runs(rx));
    for _ in 0..3 {
        assert!(
            poll_once(fut.as_mut()).is_pending(),
            "the shielded child keeps it running"
        );
    }
    drop(fut);
}
