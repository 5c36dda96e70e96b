//! Spawners other than tokio's: `futures::executor::ThreadPool`, custom
//! ones, none at all. Runs without the `tokio` feature too.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use nursery::{Errors, ParallelTask, SpawnError, Spawner, nursery, spawn};

fn pool() -> futures::executor::ThreadPool {
    futures::executor::ThreadPool::builder()
        .pool_size(2)
        .create()
        .unwrap()
}

#[nursery(n)]
async fn on_pool(
    pool: futures::executor::ThreadPool,
    tracker: &Tracker,
) -> Result<u64, Errors<&'static str>> {
    n.set_spawner(pool);
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let guard = tracker.guard();
        tasks.push(spawn!(
            async move {
                let _guard = guard;
                yield_now().await;
                Ok(i)
            },
            parallel
        ));
    }
    let mut sum = 0;
    for task in tasks {
        sum += task.await;
    }
    Ok(sum)
}

#[test]
fn a_thread_pool_runs_parallel_children() {
    let tracker = Tracker::new();
    let sum = futures::executor::block_on(on_pool(pool(), &tracker)).unwrap();
    assert_eq!(sum, 1225);
    assert!(tracker.all_dropped());
}

#[test]
fn on_a_thread_pool_failures_cancel_and_are_collected() {
    #[nursery(n)]
    async fn fails(
        pool: futures::executor::ThreadPool,
        tracker: &Tracker,
    ) -> Result<(), Errors<&'static str>> {
        n.set_spawner(pool);
        for _ in 0..10 {
            let guard = tracker.guard();
            spawn!(
                async move {
                    let _guard = guard;
                    std::future::pending::<()>().await
                },
                parallel
            );
        }
        spawn!(async { Err::<(), _>("pool child failed") }, parallel);
        Ok(())
    }
    let tracker = Tracker::new();
    let errors = futures::executor::block_on(fails(pool(), &tracker)).unwrap_err();
    assert_eq!(errors.into_vec(), vec!["pool child failed"]);
    assert!(tracker.all_dropped());
}

#[test]
fn without_a_spawner_parallel_is_a_typed_error_that_says_what_to_do() {
    #[nursery(n)]
    async fn none(tracker: &Tracker) -> Result<(), Errors<SpawnError>> {
        let guard = tracker.guard();
        let err = n
            .builder()
            .parallel()
            .try_spawn(async move {
                let _guard = guard;
                unreachable!("never polled")
            })
            .unwrap_err();
        assert!(tracker.all_dropped(), "the child was dropped, not kept");
        Err(err)?
    }
    // futures' block_on: no tokio runtime, no spawner given.
    let tracker = Tracker::new();
    let errors = futures::executor::block_on(none(&tracker)).unwrap_err();
    let err = errors.into_first();
    assert!(matches!(err, SpawnError::NoSpawner));
    let message = err.to_string();
    for hint in [
        "tokio",
        "Nursery::set_spawner",
        "nursery::set_spawner",
        "ThreadPool",
    ] {
        assert!(message.contains(hint), "{message:?} should mention {hint}");
    }
    // `?` into an io::Error body.
    let io: std::io::Error = SpawnError::NoSpawner.into();
    assert!(io.to_string().contains("set_spawner"));
}

/// A spawner that refuses everything.
struct ShutDown;
impl Spawner for ShutDown {
    fn spawn(&self, task: ParallelTask) -> Result<(), SpawnError> {
        drop(task);
        Err(SpawnError::Rejected("the runtime shut down".into()))
    }
}

#[test]
fn a_refusing_spawner_is_a_typed_error_and_the_child_is_dropped() {
    #[nursery(n)]
    async fn refused(tracker: &Tracker) -> Result<(), Errors<std::io::Error>> {
        n.set_spawner(ShutDown);
        let guard = tracker.guard();
        n.builder().parallel().try_spawn(async move {
            let _guard = guard;
        })?;
        Ok(())
    }
    let tracker = Tracker::new();
    let errors = futures::executor::block_on(refused(&tracker)).unwrap_err();
    assert!(
        errors
            .to_string()
            .contains("the spawner refused the `parallel` child: the runtime shut down")
    );
    assert!(tracker.all_dropped());
}

/// `spawn!(…, parallel)` with no spawner panics with how to give one, as
/// `tokio::spawn` outside a runtime does (the typed error is `try_spawn`'s).
#[test]
fn spawn_parallel_without_a_spawner_panics_with_how_to_give_one() {
    #[nursery]
    async fn none() {
        spawn!(async {}, parallel);
    }
    let payload = std::panic::catch_unwind(|| futures::executor::block_on(none())).unwrap_err();
    let message = payload
        .downcast_ref::<String>()
        .expect("a formatted message");
    for hint in ["no spawner", "set_spawner", "try_spawn"] {
        assert!(message.contains(hint), "{message:?} should mention {hint}");
    }
}

/// A spawner that accepts a task and drops it unpolled, as a runtime that
/// shuts down does.
struct Dropper;
impl Spawner for Dropper {
    fn spawn(&self, task: ParallelTask) -> Result<(), SpawnError> {
        drop(task);
        Ok(())
    }
}

#[test]
#[should_panic(expected = "the runtime dropped parallel child `lost` before it completed")]
fn a_child_its_runtime_dropped_is_reported_never_a_hang() {
    #[nursery(n)]
    async fn dropped() {
        n.set_spawner(Dropper);
        spawn!(async {}, parallel, name = "lost");
    }
    futures::executor::block_on(dropped());
}

/// A spawner that counts the tasks it started and runs them on a pool.
struct Counting(futures::executor::ThreadPool, Arc<AtomicUsize>);
impl Spawner for Counting {
    fn spawn(&self, task: ParallelTask) -> Result<(), SpawnError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.spawn_ok(task);
        Ok(())
    }
}

#[test]
fn a_custom_spawner_is_used_for_every_parallel_child_and_only_for_those() {
    #[nursery(n)]
    async fn mixed(spawner: Counting) {
        n.set_spawner(spawner);
        for _ in 0..5 {
            spawn!(async {}, parallel);
            spawn!(async {});
        }
    }
    let count = Arc::new(AtomicUsize::new(0));
    futures::executor::block_on(mixed(Counting(pool(), count.clone())));
    assert_eq!(count.load(Ordering::SeqCst), 5);
}
