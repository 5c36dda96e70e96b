//! Behaviour 9: a nursery's future is `Send` when its parts are, so it runs
//! inside `tokio::spawn`; `#[nursery(local)]` takes `!Send` children.

use nursery::{Errors, nursery, spawn};
use std::rc::Rc;

#[nursery]
async fn sendable(x: u32) -> Result<u32, Errors<std::io::Error>> {
    let t = spawn!(async move {
        tokio::task::yield_now().await;
        Ok(x + 1)
    });
    Ok(t.await)
}

#[nursery]
async fn borrowed_error_type() -> Result<(), Errors<&'static str>> {
    spawn!(async { Err::<(), _>("x") });
    Ok(())
}

#[nursery(local)]
async fn local_children(x: Rc<u32>) -> u32 {
    let a = x.clone();
    let t = spawn!(async move {
        tokio::task::yield_now().await;
        *a + 1
    });
    t.await + *x
}

#[nursery(n, local)]
async fn local_with_handle() -> u32 {
    let rc = Rc::new(5);
    n.spawn(async move { Ok::<_, std::convert::Infallible>(*rc) })
        .await
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn a_nursery_runs_inside_tokio_spawn() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let out = rt.block_on(async { tokio::spawn(sendable(1)).await.unwrap() });
    assert_eq!(out.unwrap(), 2);
}

#[test]
fn an_error_type_with_a_lifetime_stays_send() {
    let fut = borrowed_error_type();
    assert_send(&fut);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let errors = rt
        .block_on(async { tokio::spawn(fut).await.unwrap() })
        .unwrap_err();
    assert_eq!(errors.into_vec(), ["x"]);
}

#[test]
fn not_send_children_run_on_a_current_thread_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(local_children(Rc::new(1))), 3);
    assert_eq!(rt.block_on(local_with_handle()), 5);
}

#[test]
fn not_send_children_run_in_a_local_set() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let out = local.block_on(&rt, async {
        tokio::task::spawn_local(local_children(Rc::new(2)))
            .await
            .unwrap()
    });
    assert_eq!(out, 5);
}

#[test]
fn not_send_children_run_on_futures_executor() {
    assert_eq!(futures::executor::block_on(local_children(Rc::new(0))), 1);
}
