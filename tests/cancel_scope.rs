//! `CancelScope` without deadlines, on every runtime.

mod common;

use common::*;
use nursery::{CancelScope, nursery, spawn};

#[nursery]
async fn child_cancels_a_scope_around_a_sibling(
    scope: &CancelScope,
    guards: &Tracker,
) -> Option<u8> {
    let g = guards.guard();
    let section = spawn!(scope.run(async move {
        let _g = g;
        std::future::pending::<u8>().await
    }));
    spawn!(async move {
        yield_times(3).await;
        scope.cancel();
    });
    section.await
}

on_every_runtime! {
    async fn a_scope_cancelled_by_a_sibling_ends_its_section_only() {
        let (scope, guards) = (CancelScope::new(), Tracker::new());
        assert_eq!(child_cancels_a_scope_around_a_sibling(&scope, &guards).await, None);
        assert!(guards.all_dropped());
        assert!(scope.is_cancelled());
    }

    async fn a_scope_that_is_not_cancelled_gives_the_value() {
        let scope = CancelScope::new();
        assert_eq!(scope.run(async { yield_now().await; 5 }).await, Some(5));
        scope.cancel(); // after it finished: nothing to do, not an error
        assert_eq!(scope.run(async { 6 }).await, None, "a cancelled scope runs nothing");
    }

    async fn nested_scopes() {
        let outer = CancelScope::new();
        let inner = CancelScope::new();
        let o = outer.clone();
        let out = outer.run(async {
            inner.run(async {
                o.cancel();
                yield_now().await;
                1
            }).await
        }).await;
        assert_eq!(out, None);
        assert!(!inner.is_cancelled(), "the inner scope was dropped, not cancelled");
    }
}
