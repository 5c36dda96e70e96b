//! Behaviour 3–5: fail fast, every error collected in order, child outputs.

mod common;

use common::*;
use futures::channel::oneshot;
use nursery::{Errors, nursery, spawn};

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Fail(u32);

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fail {}", self.0)
    }
}

#[nursery]
async fn one_fails(guards: &Tracker, body_after: &Counter) -> Result<(), Errors<Fail>> {
    for _ in 0..5 {
        let guard = guards.guard();
        spawn!(async move {
            let _guard = guard;
            futures::future::pending::<()>().await;
        });
    }
    spawn!(async {
        yield_times(2).await;
        Err::<(), _>(Fail(1))
    });
    yield_times(10).await;
    body_after.add();
    Ok(())
}

#[nursery]
async fn several_fail_in_order() -> Result<(), Errors<Fail>> {
    for i in [3u32, 1, 2] {
        spawn!(async move {
            yield_times(i as usize).await;
            Err::<(), _>(Fail(i))
        });
    }
    Ok(())
}

#[nursery]
async fn fail_at_once() -> Result<(), Errors<Fail>> {
    for i in 0..4 {
        spawn!(async move { Err::<(), _>(Fail(i)) });
    }
    Ok(())
}

#[nursery]
async fn shielded_errors_after_cancel_are_kept() -> Result<(), Errors<Fail>> {
    spawn!(
        async {
            yield_times(5).await;
            Err::<(), _>(Fail(2))
        },
        shield,
        name = "late"
    );
    spawn!(async { Err::<(), _>(Fail(1)) }, name = "early");
    Ok(())
}

#[nursery]
async fn inner(i: u32) -> Result<(), Errors<Fail>> {
    spawn!(async move { Err::<(), _>(Fail(i)) });
    spawn!(
        async move {
            yield_now().await;
            Err::<(), _>(Fail(i + 1))
        },
        shield
    );
    Ok(())
}

#[nursery]
async fn outer_flattens_nested() -> Result<(), Errors<Fail>> {
    inner(10).await?;
    Ok(())
}

#[nursery]
async fn body_fails(guards: &Tracker) -> Result<u8, Errors<Fail>> {
    let guard = guards.guard();
    spawn!(async move {
        let _guard = guard;
        futures::future::pending::<()>().await;
    });
    yield_now().await;
    Err(Fail(9))?;
    Ok(1)
}

#[nursery]
async fn fail_fast_with_pending_sibling(gate: oneshot::Receiver<()>) -> Result<(), Errors<Fail>> {
    // `try_join_all` over more than 30 futures would wait for the first one.
    spawn!(async move {
        let _ = gate.await;
        Ok(())
    });
    for i in 0..40 {
        spawn!(async move {
            if i == 39 {
                Err(Fail(39))
            } else {
                futures::future::pending::<Result<(), Fail>>().await
            }
        });
    }
    Ok(())
}

#[nursery]
async fn outputs() -> Result<(u32, &'static str, ()), Errors<Fail>> {
    let value = spawn!(async { 5u32 });
    let ok = spawn!(async { Ok("ok") });
    let unit = spawn!(async {});
    Ok((value.await, ok.await, unit.await))
}

#[nursery]
async fn question_mark_in_child(x: Result<u32, Fail>) -> Result<u32, Errors<Fail>> {
    let t = spawn!(async move {
        let v = x?;
        Ok(v + 1)
    });
    Ok(t.await)
}

on_every_runtime! {
    async fn child_error_cancels_the_body_and_its_siblings() {
        let (guards, body_after) = (Tracker::new(), Counter::new());
        let errors = one_fails(&guards, &body_after).await.unwrap_err();
        assert_eq!(errors.into_vec(), vec![Fail(1)]);
        assert!(guards.all_dropped());
        assert_eq!(guards.created.get(), 5);
        assert_eq!(body_after.get(), 0, "the body was cancelled");
    }

    async fn the_first_failure_cancels_siblings_before_they_fail() {
        // Child 1 fails first and cancels the others, which are then dropped:
        // only its error happened.
        let errors = several_fail_in_order().await.unwrap_err();
        assert_eq!(errors.into_vec(), vec![Fail(1)]);
    }

    async fn errors_that_happen_in_the_same_step_are_all_kept_in_order() {
        let errors = fail_at_once().await.unwrap_err();
        assert_eq!(errors.into_vec(), vec![Fail(0), Fail(1), Fail(2), Fail(3)]);
    }

    async fn errors_after_the_first_are_kept_too() {
        let errors = shielded_errors_after_cancel_are_kept().await.unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors.iter().copied().collect::<Vec<_>>(), vec![Fail(1), Fail(2)]);
        assert_eq!(
            errors.iter_named().map(|(n, _)| n).collect::<Vec<_>>(),
            vec![Some("early"), Some("late")]
        );
        assert_eq!(
            errors.to_string(),
            "2 errors:\n  1. child `early` of nursery `shielded_errors_after_cancel_are_kept` failed: fail 1\n  2. child `late` of nursery `shielded_errors_after_cancel_are_kept` failed: fail 2"
        );
    }

    async fn errors_of_a_nested_nursery_flatten_into_the_outer_one() {
        let errors = outer_flattens_nested().await.unwrap_err();
        assert_eq!(errors.into_vec(), vec![Fail(10), Fail(11)]);
    }

    async fn body_error_cancels_children() {
        let guards = Tracker::new();
        let errors = body_fails(&guards).await.unwrap_err();
        assert_eq!(errors.into_first(), Fail(9));
        assert!(guards.all_dropped());
    }

    async fn an_error_fails_fast_even_behind_a_pending_sibling() {
        let (_gate, rx) = oneshot::channel();
        let errors = fail_fast_with_pending_sibling(rx).await.unwrap_err();
        assert_eq!(errors.into_vec(), vec![Fail(39)]);
    }

    async fn children_may_return_unit_a_value_or_a_result() {
        assert_eq!(outputs().await.unwrap(), (5, "ok", ()));
    }

    async fn question_mark_in_a_child_infers_the_nursery_error_type() {
        assert_eq!(question_mark_in_child(Ok(1)).await.unwrap(), 2);
        assert_eq!(question_mark_in_child(Err(Fail(3))).await.unwrap_err().into_vec(), vec![Fail(3)]);
    }
}

#[test]
fn errors_api() {
    let e: Errors<Fail> = Fail(1).into();
    assert_eq!(e.len(), 1);
    assert_eq!(*e.first(), Fail(1));
    assert_eq!(format!("{e:?}"), "Errors([Fail(1)])");
    assert_eq!(e.to_string(), "fail 1");
    assert_eq!((&e).into_iter().count(), 1);
    assert_eq!(e.into_iter().collect::<Vec<_>>(), vec![Fail(1)]);
    let boxed: Box<dyn std::error::Error + Send + Sync> = Errors::from(Fail(2)).into();
    assert_eq!(boxed.to_string(), "fail 2");
}
