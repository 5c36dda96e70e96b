//! The `tracing` feature: spans for nurseries and children (names, ids,
//! nesting) and events for failures, panics and cancellations with their
//! reason, read back from `tracing-subscriber`'s formatted output.
#![cfg(all(feature = "tracing", feature = "tokio"))]

mod common;

use common::paused_runtime;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nursery::{Errors, nursery, spawn};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with a subscriber that records every event (DEBUG and up) with
/// its spans; returns what it printed.
fn traced(f: impl FnOnce()) -> String {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
}

fn has(out: &str, needle: &str) {
    assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
}

#[nursery]
async fn checkout() -> Result<(), Errors<&'static str>> {
    spawn!(std::future::pending::<()>(), name = "payment");
    spawn!(async { Err::<(), _>("gateway down") }, name = "sms");
    Ok(())
}

#[test]
fn a_failure_is_reported_with_its_child_and_cancels_the_rest_for_that_reason() {
    let out = traced(|| {
        let errors = futures::executor::block_on(checkout()).unwrap_err();
        assert_eq!(errors.len(), 1);
    });
    has(&out, r#"WARN nursery{name="checkout" id="#);
    has(&out, "child{name=sms ");
    has(&out, "child failed");
    has(&out, "nursery cancelled reason=sibling failure");
    has(&out, "child{name=payment ");
    has(&out, "child cancelled reason=sibling failure");
    has(&out, "nursery failed failures=1");
}

#[test]
fn an_unnamed_child_is_named_by_its_expression_and_nesting_shows_in_spans() {
    #[nursery]
    async fn inner() {
        spawn!(std::future::pending::<()>());
        futures::future::pending::<()>().await;
    }
    #[nursery(n)]
    async fn outer() {
        spawn!(inner());
        spawn!(async move { n.cancel() });
    }
    let out = traced(|| futures::executor::block_on(outer()));
    has(&out, "nursery cancelled reason=explicit cancel");
    // the nested nursery runs in the span of the child that holds it
    has(&out, r#"child{name=inner() id="#);
    has(&out, r#"parallel=false}:nursery{name="inner""#);
    has(&out, "child{name=std::future::pending::<()>() ");
    has(
        &out,
        "nursery cancelled reason=the nursery future was dropped",
    );
}

#[test]
fn a_panic_is_reported_with_its_message() {
    #[nursery]
    async fn panics() {
        spawn!(async { panic!("boom") }, name = "bad");
    }
    let out = traced(|| {
        let caught = std::panic::catch_unwind(|| futures::executor::block_on(panics()));
        assert!(caught.is_err());
    });
    has(&out, "child panicked panic=\"boom\"");
    has(&out, "nursery cancelled reason=sibling panic");
}

#[test]
fn a_deadline_a_token_and_background_children_give_their_reasons() {
    #[derive(Debug)]
    struct Late;
    impl From<nursery::TimedOut> for Late {
        fn from(_: nursery::TimedOut) -> Self {
            Late
        }
    }
    #[nursery(timeout = Duration::from_secs(1))]
    async fn slow() -> Result<(), Errors<Late>> {
        spawn!(tokio::time::sleep(Duration::from_secs(10)), name = "work");
        Ok(())
    }
    #[nursery(n)]
    async fn by_token() {
        let token = n.cancel_token();
        spawn!(std::future::pending::<()>(), name = "idle");
        spawn!(async move { token.cancel() });
    }
    #[nursery]
    async fn with_heartbeat() {
        spawn!(std::future::pending::<()>(), name = "heartbeat", background);
        spawn!(async {});
    }
    let out = traced(|| {
        paused_runtime().block_on(async {
            let _ = slow().await.unwrap_err();
            by_token().await;
            with_heartbeat().await;
        })
    });
    has(&out, "nursery cancelled reason=deadline");
    has(&out, "child{name=work ");
    has(&out, "child cancelled reason=deadline");
    has(&out, "nursery cancelled reason=cancel token");
    has(&out, "child cancelled reason=background: the rest finished");
}

#[test]
fn a_parallel_child_runs_in_its_span_on_its_task_too() {
    #[nursery]
    async fn remote() -> Result<(), Errors<nursery::SpawnError>> {
        let task = spawn!(
            async {
                tracing::info!("inside the parallel child");
                7
            },
            parallel,
            name = "far"
        );
        assert_eq!(task.await, 7);
        Ok(())
    }
    // a current-thread runtime: the child's task runs on this thread, where
    // the subscriber is the default
    let out = traced(|| paused_runtime().block_on(remote()).unwrap());
    has(&out, "child{name=far ");
    has(&out, "parallel=true}: inside the parallel child");
}

#[test]
fn failures_a_dropped_nested_nursery_could_not_return_are_reported() {
    #[nursery]
    async fn inner() -> Result<(), Errors<&'static str>> {
        // fails, then waits in a shielded child: the failure is collected
        // but not yet returned when the outer nursery drops this one
        spawn!(async { Err::<(), _>("inner failure") });
        spawn!(std::future::pending::<()>(), shield);
        Ok(())
    }
    #[nursery(n)]
    async fn outer() {
        spawn!(async { inner().await.unwrap_err() });
        spawn!(async move {
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            n.cancel()
        });
    }
    let out = traced(|| paused_runtime().block_on(outer()));
    has(&out, r#"nursery{name="inner""#);
    has(
        &out,
        "nursery dropped with failures it could not return failures=1",
    );
}
