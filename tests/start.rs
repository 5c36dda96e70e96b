//! `start!`: trio's `nursery.start`.

mod common;

use common::*;
use futures::channel::oneshot;
use nursery::{Errors, TaskStatus, nursery, spawn, start};

async fn server(
    status: TaskStatus<u16>,
    log: &std::sync::Mutex<Vec<String>>,
) -> Result<(), String> {
    yield_times(2).await; // binding takes a while
    status.started(8080);
    for i in 0..3 {
        yield_now().await;
        log.lock().unwrap().push(format!("served {i}"));
    }
    Ok(())
}

#[nursery]
async fn uses_server(log: &std::sync::Mutex<Vec<String>>) -> Result<u16, Errors<String>> {
    let port = start!(|status| server(status, log), name = "server");
    log.lock().unwrap().push(format!("started on {port}"));
    Ok(port)
}

#[nursery]
async fn fails_before_started(after: &Counter) -> Result<(), Errors<String>> {
    start!(|status: TaskStatus<u16>| async move {
        yield_now().await;
        Err::<(), _>("bind failed".to_string())?; // before `started`
        status.started(1);
        Ok(())
    });
    after.add();
    Ok(())
}

#[nursery]
async fn returns_without_started() {
    let _: u16 = start!(|_status| async {}, name = "forgetful");
}

#[nursery(n)]
async fn cancelled_while_waiting(guards: &Tracker, gate: oneshot::Receiver<()>) {
    let g = guards.guard();
    spawn!(async move {
        let _ = gate.await;
        n.cancel();
    });
    let _: u16 = start!(move |status| async move {
        let _g = g;
        std::future::pending::<()>().await;
        status.started(1);
    });
    unreachable!("cancelled while waiting for `started`");
}

on_every_runtime! {
    async fn start_yields_the_started_value_and_the_child_keeps_running() {
        let log = std::sync::Mutex::new(Vec::new());
        assert_eq!(uses_server(&log).await.unwrap(), 8080);
        let log = log.into_inner().unwrap();
        assert_eq!(log[0], "started on 8080");
        assert_eq!(log.len(), 4, "the server went on after it started: {log:?}");
    }

    async fn a_child_that_fails_before_started_fails_the_nursery() {
        let after = Counter::new();
        let errors = fails_before_started(&after).await.unwrap_err();
        assert_eq!(errors.into_vec(), ["bind failed"]);
        assert_eq!(after.get(), 0, "the code waiting in start! was cancelled");
    }

    async fn cancellation_while_waiting_for_started_cancels_the_child() {
        let guards = Tracker::new();
        let (gate, rx) = oneshot::channel();
        gate.send(()).unwrap();
        cancelled_while_waiting(&guards, rx).await;
        assert!(guards.all_dropped());
    }
}

#[test]
fn a_child_that_returns_without_started_is_reported_by_name() {
    let payload =
        std::panic::catch_unwind(|| futures::executor::block_on(returns_without_started()))
            .unwrap_err();
    let message = payload.downcast_ref::<String>().unwrap();
    assert_eq!(
        message,
        "the `start!` child `forgetful` ended without calling `status.started(…)`"
    );
}

#[test]
fn start_method_form_and_scope() {
    let port = futures::executor::block_on(nursery::scope!(|n| async {
        let a = start!(|status: TaskStatus<u8>| async move { status.started(1) });
        let b = n
            .start(|status: TaskStatus<u8>| async move { status.started(2) })
            .await;
        Ok::<_, Errors<()>>(a + b)
    }));
    assert_eq!(port.unwrap(), 3);
}
