//! `task.result()` (issue 18): the child's value or its failure, claimed
//! by the caller; results in completion order; a claim that ends unread
//! gives the failure back to the policy.

mod common;

use common::*;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use nursery::{Errors, Failure, nursery, scope, spawn};
use std::sync::Mutex;

#[nursery]
async fn claimed_in_fail_fast(sibling: &Counter) -> Result<Vec<String>, Errors<String>> {
    spawn!(async {
        yield_times(6).await;
        sibling.add(); // not cancelled by the claimed failures
    });
    let error = spawn!(async { Err::<u8, _>("refused".to_string()) }, name = "e").result();
    let panic = spawn!(
        async {
            yield_now().await;
            panic!("bad frame")
        },
        name = "p"
    )
    .result();
    let value = spawn!(async { Ok::<_, String>(3u8) }).result();
    fn show<T: std::fmt::Debug>(result: Result<T, Failure<String>>) -> String {
        match result {
            Ok(v) => format!("value {v:?}"),
            Err(f) => f.to_string(),
        }
    }
    Ok(vec![
        show(error.await),
        show(panic.await),
        show(value.await),
    ])
}

#[nursery]
async fn completion_order() -> Result<Vec<u32>, Errors<u32>> {
    let mut pending: FuturesUnordered<_> = [5u32, 1, 3, 2, 4]
        .into_iter()
        .map(|n| {
            spawn!(async move {
                yield_times(n as usize * 2).await;
                if n % 2 == 0 { Err(n) } else { Ok(n) }
            })
            .result()
        })
        .collect();
    let mut order = Vec::new();
    while let Some(result) = pending.next().await {
        order.push(result.unwrap_or_else(|f| 100 + f.into_error().unwrap()));
    }
    Ok(order)
}

/// A claim dropped after the failure was written, unread: the failure goes
/// back to the policy (here fail-fast: it cancels the body).
#[nursery]
async fn claim_dropped_unread(reached: &Counter) -> Result<(), Errors<&'static str>> {
    let claim = spawn!(async { Err::<(), _>("unread") }, name = "u").result();
    yield_times(3).await; // the child failed; its failure waits in the claim
    drop(claim);
    yield_times(3).await; // interrupted: the nursery is cancelled
    reached.add();
    Ok(())
}

/// A claim dropped before the child fails: the claim simply ends.
#[nursery]
async fn claim_dropped_early() -> Result<(), Errors<&'static str>> {
    let claim = spawn!(async {
        yield_times(3).await;
        Err::<(), _>("after the claim ended")
    })
    .result();
    drop(claim);
    Ok(())
}

#[nursery(supervise)]
async fn failed_before_the_claim() -> Result<bool, Errors<&'static str>> {
    let task = spawn!(async { Err::<(), _>("early") });
    yield_times(3).await;
    let failure = task.result().await.unwrap_err();
    Ok(failure.is_cancelled())
}

#[nursery]
async fn cancelled_child() -> Result<String, Errors<&'static str>> {
    let task = spawn!(std::future::pending::<()>(), name = "stuck");
    task.cancel();
    Ok(task.result().await.unwrap_err().to_string())
}

#[nursery]
async fn inner() -> Result<(), Errors<&'static str>> {
    spawn!(async { Err::<(), _>("one") });
    spawn!(async { Err::<(), _>("two") });
    Ok(())
}

#[nursery]
async fn nested_claimed() -> Result<Vec<&'static str>, Errors<&'static str>> {
    let failure = spawn!(inner(), name = "inner").result().await.unwrap_err();
    assert_eq!(failure.name(), Some("inner"));
    Ok(failure.into_errors().into_vec())
}

async fn handler_does_not_see_claims(
    seen: &Mutex<Vec<String>>,
) -> Result<(), Errors<&'static str>> {
    scope!(|n| async move {
        n.supervise_with(|f: Failure<&'static str>| seen.lock().unwrap().push(f.to_string()));
        let claimed = spawn!(async { Err::<(), _>("mine") }).result();
        spawn!(async { Err::<(), _>("theirs") }, name = "other");
        assert_eq!(claimed.await.unwrap_err().error(), Some(&"mine"));
        Ok(())
    })
    .await
}

on_every_runtime! {
    async fn a_claimed_failure_is_the_callers_and_cancels_nobody() {
        let sibling = Counter::new();
        let out = claimed_in_fail_fast(&sibling).await.unwrap();
        assert_eq!(out, [
            "child `e` of nursery `claimed_in_fail_fast` failed: refused",
            "child `p` of nursery `claimed_in_fail_fast` panicked: bad frame",
            "value 3",
        ]);
        assert_eq!(sibling.get(), 1);
    }

    async fn results_arrive_in_completion_order() {
        assert_eq!(completion_order().await.unwrap(), [1, 102, 3, 104, 5]);
    }

    async fn a_claim_dropped_unread_gives_the_failure_back_to_the_policy() {
        let reached = Counter::new();
        let errors = claim_dropped_unread(&reached).await.unwrap_err();
        assert_eq!(errors.to_string(), "child `u` of nursery `claim_dropped_unread` failed: unread");
        assert_eq!(reached.get(), 0, "the failure cancelled the body");
    }

    async fn a_claim_dropped_before_the_failure_ends_the_claim() {
        let errors = claim_dropped_early().await.unwrap_err();
        assert_eq!(errors.into_vec(), ["after the claim ended"]);
    }

    async fn a_failure_before_the_claim_was_the_policys() {
        let errors = failed_before_the_claim().await.unwrap_err();
        assert_eq!(errors.into_vec(), ["early"]);
    }

    async fn a_cancelled_child_gives_a_cancelled_failure() {
        assert_eq!(cancelled_child().await.unwrap(), "a child was cancelled");
    }

    async fn a_nested_nursery_gives_all_its_failures() {
        assert_eq!(nested_claimed().await.unwrap(), ["one", "two"]);
    }

    async fn a_handler_never_sees_a_claimed_failure() {
        let seen = Mutex::new(Vec::new());
        handler_does_not_see_claims(&seen).await.unwrap();
        assert_eq!(seen.into_inner().unwrap(), ["child `other` failed: theirs"]);
    }
}

/// `fail_after` on a claimed child: its `TimedOut` is the caller's.
#[cfg(feature = "tokio")]
#[test]
fn a_claimed_deadline_failure() {
    #[derive(Debug, PartialEq)]
    enum E {
        TimedOut,
    }
    impl From<nursery::TimedOut> for E {
        fn from(_: nursery::TimedOut) -> Self {
            E::TimedOut
        }
    }
    #[nursery]
    async fn run() -> Result<bool, Errors<E>> {
        let slow = spawn!(
            std::future::pending::<()>(),
            fail_after = std::time::Duration::from_secs(5)
        );
        Ok(slow.result().await.unwrap_err().error() == Some(&E::TimedOut))
    }
    assert!(paused_runtime().block_on(run()).unwrap());
}

/// A parallel child's failure and panic, claimed.
#[cfg(feature = "tokio")]
#[test]
fn a_claimed_parallel_child() {
    #[nursery]
    async fn run() -> Result<(bool, bool), Errors<String>> {
        let error = spawn!(async { Err::<(), _>("far".to_string()) }, parallel).result();
        let panic = spawn!(async { panic!("farther") }, parallel).result();
        let error = error.await.unwrap_err().error() == Some(&"far".to_string());
        Ok((error, panic.await.unwrap_err().is_panic()))
    }
    let rt = multi_thread_runtime();
    assert_eq!(rt.block_on(run()).unwrap(), (true, true));
    assert_no_task_left(&rt);
}
