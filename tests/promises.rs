//! The two promises (no error lost, no child left behind, no hang) under
//! what an adversarial user does: `Drop`s that panic at every point, leaked
//! sections, extreme durations, waits in a nursery that is cancelling, and
//! output types that could hide a failure. Every test here failed before
//! its fix (issue 16); `must_finish` turns a hang into a failure without a
//! clock.

mod common;

use common::*;
use nursery::{CancelScope, Errors, nursery, scope, spawn, start};
use std::future::Future;
use std::future::pending;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `fut` to its end; the payload it panicked with, if it did.
fn panic_of<F: std::future::Future>(fut: F) -> Option<String> {
    catch_unwind(AssertUnwindSafe(|| must_finish(fut)))
        .err()
        .map(|p| payload_str(&*p).to_owned())
}

// ---- 1. a `Drop` that panics ----

#[test]
fn a_child_whose_drop_panics_on_cancel_wakes_a_shielded_sibling_awaiting_it() {
    let shielded_done = Counter::new();
    let done = &shielded_done;
    let payload = panic_of(scope!(|n| async move {
        let victim = n.spawn(panic_on_drop("victim drop", pending::<()>()));
        n.builder().shield().spawn(async move {
            assert!(victim.try_join().await.is_none(), "cancelled: no value");
            done.add();
        });
        n.spawn(async {
            yield_now().await;
            Err::<(), _>("boom")
        });
        Ok::<_, Errors<&str>>(())
    }));
    assert_eq!(payload.as_deref(), Some("victim drop"));
    assert_eq!(shielded_done.get(), 1, "the shielded sibling completed");
}

#[test]
fn a_child_whose_drop_panics_after_it_completed_wakes_its_handle() {
    let payload = panic_of(scope!(|n| async move {
        let child = n.spawn(panic_on_drop("completed drop", async { Ok(5u32) }));
        let _ = child.try_join().await;
        Ok::<_, Errors<&str>>(())
    }));
    assert_eq!(payload.as_deref(), Some("completed drop"));
}

#[test]
fn a_completed_child_whose_drop_panics_with_no_handle_resumes_its_own_payload() {
    let payload = panic_of(scope!(|n| async move {
        drop(n.spawn(panic_on_drop("unawaited drop", async {
            Ok(String::from("value"))
        })));
        Ok::<_, Errors<&str>>(())
    }));
    assert_eq!(payload.as_deref(), Some("unawaited drop"));
}

#[test]
fn a_failed_child_whose_drop_panics_resumes_its_payload() {
    let payload = panic_of(scope!(|n| async move {
        n.spawn(panic_on_drop("failed drop", async {
            Err::<(), _>("failed")
        }));
        Ok::<_, Errors<&str>>(())
    }));
    assert_eq!(payload.as_deref(), Some("failed drop"));
}

#[test]
fn the_first_panic_wins_over_a_panic_in_the_same_childs_drop() {
    let shielded_done = Counter::new();
    let done = &shielded_done;
    let payload = panic_of(scope!(|n| async move {
        n.builder().shield().spawn(async move {
            yield_times(3).await;
            done.add();
        });
        n.spawn(panic_on_drop("second", async {
            yield_now().await;
            panic!("first");
        }));
        Ok::<_, Errors<&str>>(())
    }));
    assert_eq!(payload.as_deref(), Some("first"));
    assert_eq!(shielded_done.get(), 1, "the shielded sibling completed");
}

#[test]
fn a_body_whose_drop_panics_when_cancelled_waits_for_a_shielded_child() {
    let shielded_done = Counter::new();
    let done = &shielded_done;
    let payload = panic_of(scope!(|n| async move {
        let _bomb = panic_on_drop("body drop", async {});
        n.builder().shield().spawn(async move {
            yield_times(3).await;
            done.add();
        });
        n.spawn(async {
            yield_now().await;
            Err::<(), _>("child error")
        });
        pending::<()>().await;
        Ok::<_, Errors<&str>>(())
    }));
    assert_eq!(payload.as_deref(), Some("body drop"));
    assert_eq!(shielded_done.get(), 1, "the shielded sibling completed");
}

#[test]
fn a_panic_in_a_cancelled_body_drop_does_not_replace_an_earlier_panic() {
    let payload = panic_of(scope!(|n| async move {
        let _bomb = panic_on_drop("body drop", async {});
        n.spawn(async {
            yield_now().await;
            panic!("child panic");
        });
        pending::<()>().await;
        Ok::<_, Errors<&str>>(())
    }));
    assert_eq!(payload.as_deref(), Some("child panic"));
}

// ---- 3. a leaked shielded section ----

#[test]
fn a_leaked_shielded_section_does_not_shield_the_next_child_in_its_slot() {
    let out = must_finish(scope!(|n| async move {
        n.spawn(async {
            let mut section = Box::pin(CancelScope::shielded().run(pending::<()>()));
            assert!(poll_once(section.as_mut()).is_pending());
            std::mem::forget(section);
        });
        yield_times(2).await; // the child ended; its slot is free
        n.spawn(pending::<()>()); // takes the same slot
        yield_now().await;
        n.cancel();
        Ok::<_, Errors<&str>>(())
    }));
    assert!(out.is_ok());
}

// ---- 6. extreme durations ----

#[test]
fn duration_max_means_never_for_move_on_after() {
    paused_runtime().block_on(async {
        let out = nursery::move_on_after(std::time::Duration::MAX, async { 3 }).await;
        assert_eq!(out, Some(3));
    });
}

#[test]
fn duration_max_means_never_for_fail_after_and_a_scope_timeout() {
    paused_runtime().block_on(async {
        let out = nursery::fail_after(std::time::Duration::MAX, async { 3 }).await;
        assert_eq!(out.ok(), Some(3));
        let scope = CancelScope::new().with_timeout(std::time::Duration::MAX);
        assert_eq!(scope.run(async { 4 }).await, Some(4));
    });
}

#[derive(Debug)]
struct Failure;

impl From<nursery::TimedOut> for Failure {
    fn from(_: nursery::TimedOut) -> Self {
        Failure
    }
}

#[nursery(timeout = std::time::Duration::MAX)]
async fn never_times_out() -> Result<u32, Errors<Failure>> {
    Ok(1)
}

#[nursery(n, grace = std::time::Duration::MAX)]
async fn grace_until_children_end(cleaned: &Counter) -> Result<(), Errors<Failure>> {
    spawn!(async move {
        n.cancelled().await;
        yield_times(3).await;
        cleaned.add();
    });
    yield_now().await;
    n.cancel();
    Ok(())
}

#[test]
fn duration_max_means_never_for_a_nursery_timeout_and_grace() {
    paused_runtime().block_on(async {
        assert_eq!(never_times_out().await.unwrap(), 1);
        let cleaned = Counter::new();
        grace_until_children_end(&cleaned).await.unwrap();
        assert_eq!(cleaned.get(), 1, "the child finished its cleanup");
    });
}

#[test]
fn a_far_deadline_instant_is_accepted() {
    paused_runtime().block_on(async {
        let far = std::time::Instant::now() + std::time::Duration::from_secs(u64::MAX / 4);
        assert_eq!(nursery::move_on_at(far, async { 5 }).await, Some(5));
    });
}

// ---- 7. `start!` and handles in a cancelled nursery ----

#[nursery(n)]
async fn start_after_cancel(reached: &Counter) -> Result<(), Errors<Failure>> {
    n.cancel();
    let port = start!(|status| async move { status.started(1u32) });
    reached.add(); // never: the body is interrupted at the `start!`
    assert_eq!(port, 1);
    Ok(())
}

#[test]
fn start_in_a_cancelled_nursery_interrupts_the_body() {
    let reached = Counter::new();
    must_finish(start_after_cancel(&reached)).unwrap();
    assert_eq!(reached.get(), 0);
}

#[nursery(n)]
async fn await_after_cancel(reached: &Counter) -> Result<(), Errors<Failure>> {
    n.cancel();
    let child = spawn!(async { 7u32 });
    let seven = child.await;
    reached.add(); // never: the body is interrupted at the await
    assert_eq!(seven, 7);
    Ok(())
}

#[test]
fn awaiting_a_handle_in_a_cancelled_nursery_interrupts_the_body() {
    let reached = Counter::new();
    must_finish(await_after_cancel(&reached)).unwrap();
    assert_eq!(reached.get(), 0);
}

#[nursery]
async fn start_child_fails_under_shield() -> Result<(), Errors<&'static str>> {
    CancelScope::shielded()
        .run(async {
            let () = start!(|_status: nursery::TaskStatus<()>| async {
                yield_now().await;
                Err::<(), _>("start failed")
            });
        })
        .await;
    Ok(())
}

#[test]
fn a_start_childs_failure_reaches_errors_through_a_shield() {
    let errors = must_finish(start_child_fails_under_shield()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(*errors.first(), "start failed");
}

#[nursery]
async fn start_child_fails() -> Result<(), Errors<&'static str>> {
    let () = start!(|_status: nursery::TaskStatus<()>| async { Err::<(), _>("start failed") });
    Ok(())
}

#[test]
fn a_start_childs_failure_wins_over_ended_without_started() {
    let errors = must_finish(start_child_fails()).unwrap_err();
    assert_eq!(*errors.first(), "start failed");
}

// ---- 8. output types that could hide a failure ----

#[test]
fn a_child_returning_option_of_result_fails_with_its_err() {
    let scope_ = CancelScope::new();
    let s = &scope_;
    let errors = must_finish(scope!(|n| async move {
        spawn!(s.run(async { Err::<(), _>("inside run") }));
        Ok::<_, Errors<&str>>(())
    }))
    .unwrap_err();
    assert_eq!(*errors.first(), "inside run");
}

#[test]
fn a_cancelled_option_of_result_child_is_not_a_failure() {
    let scope_ = CancelScope::new();
    scope_.cancel();
    let s = &scope_;
    let out = must_finish(scope!(|n| async move {
        let none = spawn!(s.run(async { Err::<u32, &str>("never runs") }));
        assert_eq!(none.await, None);
        Ok::<_, Errors<&str>>(())
    }));
    assert!(out.is_ok());
}

// ---- 9. nested nurseries as children ----

#[nursery]
async fn inner(fail: &'static str) -> Result<u32, Errors<&'static str>> {
    spawn!(async move { Err::<(), _>(fail) });
    spawn!(async move { Err::<(), _>("second") });
    Ok(1)
}

#[nursery]
async fn outer() -> Result<(), Errors<&'static str>> {
    spawn!(inner("first"));
    Ok(())
}

#[test]
fn a_nested_nursery_child_flattens_its_errors_into_the_outer_ones() {
    let errors = must_finish(outer()).unwrap_err();
    let all: Vec<_> = errors.iter().copied().collect();
    assert_eq!(all, ["first", "second"]);
}

#[nursery]
async fn outer_value() -> Result<u32, Errors<&'static str>> {
    let one = spawn!(async { Ok::<u32, Errors<&'static str>>(1) });
    Ok(one.await + 1)
}

#[test]
fn a_nested_nursery_childs_value_is_its_handles_value() {
    assert_eq!(must_finish(outer_value()).unwrap(), 2);
}

// ---- a dropped nursery counts as cancelled for whoever watches it ----

#[test]
fn the_token_of_a_nursery_whose_future_is_dropped_reports_cancelled() {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut fut = Box::pin(scope!(|n| async move {
        tx.send(n.cancel_token()).unwrap();
        n.spawn(pending::<Result<(), &'static str>>());
        pending::<()>().await;
        Ok::<_, Errors<&'static str>>(())
    }));
    assert!(poll_once(fut.as_mut()).is_pending());
    let token = rx.recv().unwrap();
    let waker = std::sync::Arc::new(WokenFlag::default());
    let as_waker = std::task::Waker::from(waker.clone());
    let mut watch = Box::pin(token.cancelled());
    let mut cx = std::task::Context::from_waker(&as_waker);
    assert!(watch.as_mut().poll(&mut cx).is_pending());
    assert!(!token.is_cancelled());
    drop(fut); // dropped from outside: its children go with it
    assert!(token.is_cancelled());
    assert!(
        waker.0.load(std::sync::atomic::Ordering::SeqCst),
        "its waiter was woken"
    );
    assert!(watch.as_mut().poll(&mut cx).is_ready());
}

#[derive(Default)]
struct WokenFlag(std::sync::atomic::AtomicBool);

impl std::task::Wake for WokenFlag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
