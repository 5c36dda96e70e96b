//! `supervise`, `supervise = handler`, `Failure` and `cancel_on` (issue 18):
//! a child's failure cancels nobody, every failure is still seen.

mod common;

use common::*;
use futures::channel::oneshot;
use nursery::{Errors, Failure, nursery, scope, spawn};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Three children fail (an `Err`, a panic, a nested nursery's two errors)
/// while a sibling and the body go on to their end.
#[nursery(supervise)]
async fn supervised(finished: &Counter) -> Result<u32, Errors<String>> {
    spawn!(
        async {
            yield_now().await;
            Err::<(), _>("refused".to_string())
        },
        name = "a"
    );
    spawn!(
        async {
            yield_times(2).await;
            panic!("bad frame");
        },
        name = "b"
    );
    spawn!(nested(), name = "nested");
    spawn!(async {
        yield_times(5).await;
        finished.add();
    });
    yield_times(8).await;
    finished.add();
    Ok(7)
}

#[nursery]
async fn nested() -> Result<(), Errors<String>> {
    spawn!(async { Err::<(), _>("n1".to_string()) }, name = "n1");
    spawn!(async { Err::<(), _>("n2".to_string()) }, name = "n2");
    Ok(())
}

fn describe(failures: &Errors<String>) -> Vec<String> {
    failures.failures().map(ToString::to_string).collect()
}

#[nursery(supervise)]
async fn body_fails(dropped: &Counter) -> Result<(), Errors<&'static str>> {
    let guard = dropped.on_drop();
    spawn!(async move {
        let _guard = guard;
        std::future::pending::<()>().await
    });
    spawn!(async { Err::<(), _>("child") });
    yield_times(3).await;
    Err("body")?
}

#[nursery(supervise)]
async fn body_panics() {
    spawn!(async { yield_times(3).await });
    yield_now().await;
    panic!("the body's own panic");
}

/// The handler sees each failure once, a panic included, as it happens;
/// nothing is kept, and it may call back into the nursery.
async fn handled(seen: &Mutex<Vec<String>>) -> Result<usize, Errors<String>> {
    scope!(|n| async move {
        n.supervise_with(|failure: Failure<String>| {
            seen.lock().unwrap().push(failure.to_string());
            // Re-entrant: the handler spawns into the nursery it serves.
            if failure.name() == Some("c0") {
                n.builder()
                    .name("respawned")
                    .spawn(async { Ok::<_, String>(()) });
            }
        });
        for id in 0..6 {
            spawn!(
                async move {
                    yield_times(id).await;
                    match id % 3 {
                        0 => Err(format!("error {id}")),
                        1 => panic!("panic {id}"),
                        _ => Ok(()),
                    }
                },
                name = format!("c{id}")
            );
        }
        Ok(6)
    })
    .await
}

#[nursery(supervise = |f: Failure<&'static str>| panic!("handler saw: {f}"))]
async fn handler_panics() -> Result<(), Errors<&'static str>> {
    spawn!(async { Err::<(), _>("boom") }, name = "x");
    spawn!(std::future::pending::<()>());
    Ok(())
}

#[nursery(n, limit = 1, supervise)]
async fn limited(started: &Counter) -> Result<(), Errors<u32>> {
    for id in 0..4u32 {
        spawn!(async move {
            started.add();
            yield_now().await;
            if id % 2 == 0 { Err(id) } else { Ok(()) }
        });
    }
    assert!(!n.is_cancelled());
    Ok(())
}

#[nursery(cancel_on = signal)]
async fn until_signal(signal: oneshot::Receiver<()>, dropped: &Counter) {
    let guard = dropped.on_drop();
    spawn!(async move {
        let _guard = guard;
        std::future::pending::<()>().await
    });
}

#[nursery(cancel_on = std::future::pending::<()>())]
async fn signal_never_comes(done: &Counter) -> u8 {
    spawn!(async {
        yield_times(3).await;
        done.add();
    });
    4
}

on_every_runtime! {
    async fn supervise_runs_all_and_reports_all() {
        let finished = Counter::new();
        let errors = supervised(&finished).await.unwrap_err();
        assert_eq!(finished.get(), 2, "the sibling and the body went on");
        assert_eq!(
            describe(&errors),
            [
                "child `a` of nursery `supervised` failed: refused",
                "child `n1` of nursery `nested` failed: n1",
                "child `n2` of nursery `nested` failed: n2",
                "child `b` of nursery `supervised` panicked: bad frame",
            ]
        );
        assert_eq!(errors.len(), 4);
        assert_eq!(errors.iter().count(), 3, "`iter` gives the errors only");
        let panic = errors.into_failures().pop().unwrap();
        assert_eq!(panic.name(), Some("b"));
        let payload = panic.into_panic().unwrap();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"bad frame"));
    }

    async fn supervise_the_bodys_err_still_cancels_the_children() {
        let dropped = Counter::new();
        let errors = body_fails(&dropped).await.unwrap_err();
        assert_eq!(dropped.get(), 1);
        assert_eq!(errors.into_vec(), ["child", "body"]);
    }

    async fn supervise_the_bodys_panic_still_resumes() {
        let caught = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(body_panics())).await;
        let payload = caught.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"the body's own panic"));
    }

    async fn supervise_with_handler_sees_each_failure_once_and_keeps_none() {
        let seen = Mutex::new(Vec::new());
        assert_eq!(handled(&seen).await.unwrap(), 6);
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, [
            "child `c0` failed: error 0",
            "child `c1` panicked: panic 1",
            "child `c3` failed: error 3",
            "child `c4` panicked: panic 4",
        ]);
    }

    async fn a_handler_that_panics_is_the_nurserys_panic() {
        let caught = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(handler_panics())).await;
        let payload = caught.unwrap_err();
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some("handler saw: child `x` of nursery `handler_panics` failed: boom")
        );
    }

    async fn supervise_under_a_limit_starts_the_next_child_after_a_failure() {
        let started = Counter::new();
        let errors = limited(&started).await.unwrap_err();
        assert_eq!(started.get(), 4);
        assert_eq!(errors.into_vec(), [0, 2]);
    }

    async fn cancel_on_cancels_when_the_signal_completes() {
        let dropped = Counter::new();
        let (stop, signal) = oneshot::channel();
        let run = until_signal(signal, &dropped);
        let stop_later = async {
            yield_times(3).await;
            stop.send(()).unwrap();
        };
        futures::join!(run, stop_later);
        assert_eq!(dropped.get(), 1);
    }

    async fn cancel_on_never_keeps_a_nursery_open() {
        let done = Counter::new();
        assert_eq!(signal_never_comes(&done).await, 4);
        assert_eq!(done.get(), 1);
    }

    async fn scope_takes_supervise_and_cancel_on() {
        let (stop, signal) = oneshot::channel::<()>();
        drop(stop); // a signal that fails still cancels
        let out: Result<(), Errors<&str>> = scope!(supervise, cancel_on = signal, |n| async move {
            spawn!(async { Err::<(), _>("one") });
            n.cancelled().await;
            Ok(())
        })
        .await;
        assert_eq!(out.unwrap_err().into_vec(), ["one"]);
    }
}

/// `supervise = handler` keeps nothing: a server's worth of failing
/// children leaves the nursery's memory where it was (the benchmark in
/// `benches/mem.rs` measures it at 1 000 000).
#[test]
fn a_handler_nursery_keeps_no_failure() {
    let count = AtomicUsize::new(0);
    let out: Result<(), Errors<usize>> = futures::executor::block_on(scope!(|n| async {
        n.supervise_with(|f| {
            assert_eq!(f.error(), Some(&count.load(Ordering::Relaxed)));
            count.fetch_add(1, Ordering::Relaxed);
        });
        for i in 0..10_000 {
            spawn!(async move { Err::<(), _>(i) });
            if i % 64 == 0 {
                yield_now().await;
            }
        }
        Ok(())
    }));
    out.unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 10_000);
}

/// A parallel child's failure is a supervised failure like a local one.
#[cfg(feature = "tokio")]
#[test]
fn supervise_covers_parallel_children() {
    let rt = multi_thread_runtime();
    let out = rt.block_on(async {
        scope!(supervise, |n| async move {
            let _ = n;
            let ok = spawn!(async { Ok::<_, String>(5) }, parallel);
            spawn!(
                async { Err::<(), _>("remote".to_string()) },
                parallel,
                name = "far"
            );
            spawn!(async { panic!("remote panic") }, parallel, name = "farther");
            Ok::<_, Errors<String>>(ok.await)
        })
        .await
    });
    let errors = out.unwrap_err();
    let mut seen = describe(&errors);
    seen.sort();
    assert_eq!(
        seen,
        [
            "child `far` failed: remote",
            "child `farther` panicked: remote panic"
        ]
    );
    assert_no_task_left(&rt);
}

/// Awaiting the handle of a failed child of a supervising nursery (which
/// goes on, so nothing interrupts the wait) panics with a message that
/// says what to use, never waits forever.
#[test]
fn awaiting_a_failed_supervised_child_panics_with_what_to_use() {
    #[nursery(supervise)]
    async fn run() -> Result<u8, Errors<&'static str>> {
        let task = spawn!(async { Err::<u8, _>("no") });
        Ok(task.await)
    }
    let caught = std::panic::catch_unwind(|| futures::executor::block_on(run()));
    let payload = caught.unwrap_err();
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_else(|| payload.downcast_ref::<&str>().copied().unwrap());
    assert!(message.contains("Task::try_join"), "{message}");
}
