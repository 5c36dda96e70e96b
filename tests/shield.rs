//! Shielded sections: `CancelScope::shielded()` inside scopes, children and
//! bodies, against every kind of cancellation.

mod common;

use common::*;
use futures::channel::oneshot;
use nursery::{CancelScope, Errors, nursery, spawn};

#[nursery(n)]
async fn shielded_section_in_a_child(
    log: &std::sync::Mutex<Vec<&'static str>>,
) -> Result<(), Errors<&'static str>> {
    spawn!(async move {
        CancelScope::shielded()
            .run(async {
                n.cancel(); // the nursery is cancelled while the section runs
                yield_times(3).await;
                log.lock().unwrap().push("section finished");
            })
            .await;
        // unshielded again: the child is dropped before it gets here
        yield_now().await;
        log.lock().unwrap().push("after the section (never)");
    });
    Ok(())
}

#[nursery]
async fn sibling_failure_vs_shielded_section(done: &Counter) -> Result<(), Errors<&'static str>> {
    spawn!(async move {
        CancelScope::shielded()
            .run(async {
                yield_times(5).await;
                done.add();
            })
            .await;
    });
    spawn!(async {
        yield_now().await;
        Err::<(), _>("sibling failed")
    });
    Ok(())
}

#[nursery(n)]
async fn shielded_section_in_the_body(done: &Counter) {
    spawn!(futures::future::pending::<()>());
    CancelScope::shielded()
        .run(async {
            n.cancel();
            yield_times(3).await;
            done.add();
        })
        .await;
    yield_now().await; // cancellation takes effect here, the next suspension point
    unreachable!("the body is dropped once its shielded section ends");
}

on_every_runtime! {
    async fn a_shielded_section_in_a_child_survives_the_nursery_cancel() {
        let log = std::sync::Mutex::new(Vec::new());
        shielded_section_in_a_child(&log).await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["section finished"]);
    }

    async fn a_shielded_section_survives_a_sibling_failure() {
        let done = Counter::new();
        let errors = sibling_failure_vs_shielded_section(&done).await.unwrap_err();
        assert_eq!(errors.into_vec(), ["sibling failed"]);
        assert_eq!(done.get(), 1);
    }

    async fn a_shielded_section_in_the_body_survives() {
        let done = Counter::new();
        shielded_section_in_the_body(&done).await;
        assert_eq!(done.get(), 1);
    }

    async fn a_shielded_scope_survives_an_outer_scope_cancel() {
        let outer = CancelScope::new();
        let o = outer.clone();
        let done = Counter::new();
        let out = outer.run(async {
            CancelScope::shielded().run(async {
                o.cancel();
                yield_times(3).await;
                done.add();
            }).await;
            yield_now().await; // unshielded: cancelled here
            "not reached"
        }).await;
        assert_eq!(out, None);
        assert_eq!(done.get(), 1);
    }

    async fn a_shielded_scope_can_still_cancel_itself() {
        let shielded = CancelScope::shielded();
        let s = shielded.clone();
        let out = shielded.run(async {
            s.cancel();
            yield_now().await;
        }).await;
        assert_eq!(out, None);
    }
}

#[cfg(feature = "tokio")]
#[test]
fn a_shielded_section_survives_a_deadline() {
    use std::time::Duration;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let start = tokio::time::Instant::now();
        let out = nursery::move_on_after(Duration::from_secs(1), async {
            CancelScope::shielded()
                .run(tokio::time::sleep(Duration::from_secs(3)))
                .await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        })
        .await;
        assert_eq!(out, None);
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(3),
            "the deadline waited for the shield"
        );
    });
}

#[test]
fn dropping_the_whole_nursery_cannot_be_shielded() {
    // documented: the caller's drop is synchronous; nothing can wait
    let (_tx, rx) = oneshot::channel::<()>();
    let guards = Tracker::new();
    let g = guards.guard();
    let mut fut = Box::pin(CancelScope::shielded().run(async move {
        let _g = g;
        let _ = rx.await;
    }));
    assert!(poll_once(fut.as_mut()).is_pending());
    drop(fut);
    assert!(guards.all_dropped());
}
