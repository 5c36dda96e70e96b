//! `parallel` children on a tokio multi-thread runtime: every promise of a
//! nursery holds for them, and nothing of ours is left on the runtime.
#![cfg(feature = "tokio")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use nursery::{Errors, SpawnError, nursery, spawn, start};

/// Runs `fut` as a task of a fresh 2-worker runtime, then checks that no
/// task is left alive on it: the runtime tasks of parallel children end at
/// their next poll once their nursery is done, so this waits for that (a
/// condition, not a duration: the bound only turns a leak into a failure).
fn run<F>(fut: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let rt = multi_thread_runtime();
    let out = match rt.block_on(rt.spawn(fut)) {
        Ok(out) => out,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    assert_no_task_left(&rt);
    out
}

/// A future that stays pending forever while holding `guard`.
async fn pending_with(guard: OnDrop) {
    let _guard = guard;
    std::future::pending::<()>().await
}

#[nursery]
async fn sum_in_parallel(n: u64, tracker: &Tracker) -> Result<u64, Errors<SpawnError>> {
    let here = tokio::task::id();
    let mut tasks = Vec::new();
    for i in 0..n {
        let guard = tracker.guard();
        tasks.push(spawn!(
            async move {
                let _guard = guard;
                assert_ne!(
                    tokio::task::id(),
                    here,
                    "a parallel child is a task of its own"
                );
                tokio::task::yield_now().await;
                i
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
fn values_come_back_through_handles_and_every_child_ends() {
    let tracker = Tracker::new();
    let t = tracker.clone();
    let sum = run(async move { sum_in_parallel(100, &t).await.unwrap() });
    assert_eq!(sum, 4950);
    assert_eq!(tracker.created.get(), 100);
    assert!(tracker.all_dropped());
}

#[test]
fn children_run_on_both_workers() {
    // CPU-bound children that each spin until both workers have been seen:
    // that can only end if they really run at the same time.
    #[nursery]
    async fn spin() -> Result<(), Errors<SpawnError>> {
        let seen = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        for _ in 0..2 {
            let seen = seen.clone();
            spawn!(
                async move {
                    seen.lock().unwrap().insert(std::thread::current().id());
                    let deadline = Instant::now() + Duration::from_secs(20);
                    while seen.lock().unwrap().len() < 2 {
                        assert!(
                            Instant::now() < deadline,
                            "the two children never ran at once"
                        );
                        std::hint::spin_loop();
                    }
                },
                parallel
            );
        }
        Ok(())
    }
    run(async { spin().await.unwrap() });
}

#[nursery]
async fn parallel_fails(tracker: &Tracker) -> Result<(), Errors<&'static str>> {
    let local = tracker.guard();
    spawn!(pending_with(local));
    let remote = tracker.guard();
    spawn!(pending_with(remote), parallel);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let guard = tracker.guard();
    spawn!(
        async move {
            let _guard = guard;
            rx.await.unwrap();
            Err::<(), _>("boom")
        },
        parallel,
        name = "failing"
    );
    tokio::task::yield_now().await;
    tx.send(()).unwrap();
    std::future::pending::<()>().await;
    Ok(())
}

#[test]
fn a_failing_parallel_child_cancels_local_and_parallel_siblings_and_the_body() {
    let tracker = Tracker::new();
    let t = tracker.clone();
    let errors = run(async move {
        let out = parallel_fails(&t).await;
        assert!(
            t.all_dropped(),
            "every child is gone when the nursery returns"
        );
        out.unwrap_err()
    });
    assert_eq!(errors.len(), 1);
    assert_eq!(*errors.first(), "boom");
    assert_eq!(
        errors.to_string(),
        "child `failing` of nursery `parallel_fails` failed: boom"
    );
    assert_eq!(tracker.created.get(), 3);
}

#[nursery]
async fn local_fails(tracker: &Tracker) -> Result<(), Errors<&'static str>> {
    let mut started = Vec::new();
    for _ in 0..4 {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let guard = tracker.guard();
        spawn!(
            async move {
                let _guard = guard;
                tx.send(()).unwrap();
                std::future::pending::<()>().await
            },
            parallel
        );
        started.push(rx);
    }
    spawn!(async move {
        for rx in started {
            rx.await.unwrap(); // every parallel child is running
        }
        Err::<(), _>("local")
    });
    Ok(())
}

#[test]
fn a_failing_local_child_cancels_running_parallel_children() {
    let tracker = Tracker::new();
    let t = tracker.clone();
    let errors = run(async move {
        let out = local_fails(&t).await;
        assert!(t.all_dropped());
        out.unwrap_err()
    });
    assert_eq!(errors.into_vec(), vec!["local"]);
}

#[test]
fn cancelling_waits_for_a_poll_in_progress_on_a_worker() {
    // The parallel child is inside a poll (blocked on a std channel) when
    // its nursery is cancelled; the cancel must wait for that poll, then
    // drop the child, and only then may the nursery return. The nursery runs
    // on this thread (futures' block_on, inside the runtime's context), the
    // child on a worker.
    struct SetOnDrop(Arc<AtomicBool>, Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            assert!(
                self.0.load(Ordering::SeqCst),
                "dropped before its poll ended"
            );
            self.1.store(true, Ordering::SeqCst);
        }
    }
    #[nursery(n)]
    async fn blocked(poll_ended: Arc<AtomicBool>, dropped: Arc<AtomicBool>) {
        let (inside_tx, inside_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let on_drop = SetOnDrop(poll_ended.clone(), dropped);
        spawn!(
            async move {
                let _on_drop = on_drop;
                inside_tx.send(()).unwrap();
                release_rx.recv().unwrap(); // blocks this worker's poll
                poll_ended.store(true, Ordering::SeqCst);
                std::future::pending::<()>().await
            },
            parallel
        );
        inside_rx.recv().unwrap(); // the child is inside its poll now
        let token = n.cancel_token();
        std::thread::spawn(move || {
            // Releases the poll once the nursery is cancelling (its drop of
            // the child is then under way, or about to be).
            while !token.is_cancelled() {
                std::thread::yield_now();
            }
            release_tx.send(()).unwrap();
        });
        n.cancel();
    }
    for _ in 0..50 {
        let rt = multi_thread_runtime();
        let poll_ended = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicBool::new(false));
        {
            let _context = rt.enter();
            futures::executor::block_on(blocked(poll_ended.clone(), dropped.clone()));
        }
        assert!(
            dropped.load(Ordering::SeqCst),
            "the child was dropped before the nursery returned"
        );
        assert!(poll_ended.load(Ordering::SeqCst));
        assert_no_task_left(&rt);
    }
}

#[nursery]
async fn many_fail_at_once(n: usize, failed: Arc<AtomicUsize>) -> Result<(), Errors<usize>> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    for i in 0..n {
        let barrier = barrier.clone();
        let failed = failed.clone();
        spawn!(
            async move {
                barrier.wait().await;
                failed.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(i)
            },
            parallel
        );
    }
    Ok(())
}

#[test]
fn every_failure_that_happened_is_aggregated_exactly_once() {
    for _ in 0..20 {
        let failed = Arc::new(AtomicUsize::new(0));
        let f = failed.clone();
        let errors = run(async move { many_fail_at_once(50, f).await.unwrap_err() });
        // Children cancelled before they returned never failed; each that
        // did return its error is there, once.
        let mut seen = errors.into_vec();
        assert_eq!(seen.len(), failed.load(Ordering::SeqCst));
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), failed.load(Ordering::SeqCst));
    }
}

#[test]
fn a_panic_in_a_parallel_child_resumes_in_the_caller_with_its_payload() {
    #[nursery]
    async fn panics(tracker: &Tracker) {
        let guard = tracker.guard();
        spawn!(pending_with(guard), parallel);
        spawn!(
            async {
                tokio::task::yield_now().await;
                std::panic::panic_any(String::from("parallel payload"));
            },
            parallel
        );
    }
    let tracker = Tracker::new();
    let t = tracker.clone();
    let rt = multi_thread_runtime();
    let payload = rt
        .block_on(rt.spawn(async move { panics(&t).await }))
        .unwrap_err()
        .into_panic();
    assert_eq!(
        payload.downcast_ref::<String>().unwrap(),
        "parallel payload"
    );
    assert!(tracker.all_dropped());
    assert_no_task_left(&rt);
}

#[test]
fn n_cancel_and_a_token_cancel_parallel_children() {
    #[nursery(n)]
    async fn by_body(tracker: &Tracker) {
        for _ in 0..8 {
            spawn!(pending_with(tracker.guard()), parallel);
        }
        tokio::task::yield_now().await;
        n.cancel();
    }
    #[nursery(n)]
    async fn by_child(tracker: &Tracker) {
        for _ in 0..8 {
            spawn!(pending_with(tracker.guard()), parallel);
        }
        let token = n.cancel_token();
        spawn!(async move { token.cancel() }, parallel);
    }
    let tracker = Tracker::new();
    let t = tracker.clone();
    run(async move {
        by_body(&t).await;
        assert!(t.all_dropped());
        by_child(&t).await;
        assert!(t.all_dropped());
    });
    assert_eq!(tracker.created.get(), 16);
}

#[test]
fn a_shielded_parallel_child_finishes_its_cleanup() {
    #[nursery(n)]
    async fn shielded(
        log: Arc<std::sync::Mutex<Vec<&'static str>>>,
    ) -> Result<(), Errors<&'static str>> {
        let token = n.cancel_token();
        let l = log.clone();
        spawn!(
            async move {
                token.cancelled().await;
                tokio::task::yield_now().await;
                l.lock().unwrap().push("saved");
            },
            parallel,
            shield
        );
        spawn!(async { Err::<(), _>("sibling failed") });
        Ok(())
    }
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = log.clone();
    let errors = run(async move { shielded(l).await.unwrap_err() });
    assert_eq!(errors.into_vec(), vec!["sibling failed"]);
    assert_eq!(*log.lock().unwrap(), vec!["saved"]);
}

#[test]
fn a_background_parallel_child_is_cancelled_after_the_rest() {
    #[nursery]
    async fn heartbeat(beats: Arc<AtomicUsize>, tracker: &Tracker) -> usize {
        let guard = tracker.guard();
        let b = beats.clone();
        spawn!(
            async move {
                let _guard = guard;
                loop {
                    b.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            },
            parallel,
            background
        );
        // The foreground waits until the heartbeat has beaten a few times.
        let work = spawn!(async move {
            while beats.load(Ordering::SeqCst) < 3 {
                tokio::task::yield_now().await;
            }
            7
        });
        work.await
    }
    let tracker = Tracker::new();
    let t = tracker.clone();
    let out = run(async move {
        let out = heartbeat(Arc::new(AtomicUsize::new(0)), &t).await;
        assert!(t.all_dropped());
        out
    });
    assert_eq!(out, 7);
}

#[test]
fn dropping_the_nursery_future_aborts_every_parallel_child() {
    #[nursery]
    async fn server(tracker: &Tracker, started: tokio::sync::mpsc::Sender<()>) {
        for _ in 0..16 {
            let guard = tracker.guard();
            let started = started.clone();
            spawn!(
                async move {
                    let _guard = guard;
                    started.send(()).await.unwrap();
                    loop {
                        tokio::task::yield_now().await; // busy, never done
                    }
                },
                parallel
            );
        }
        std::future::pending::<()>().await
    }
    let tracker = Tracker::new();
    let t = tracker.clone();
    let rt = multi_thread_runtime();
    rt.block_on(rt.spawn(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let all_started = async {
            for _ in 0..16 {
                rx.recv().await.unwrap();
            }
        };
        tokio::select! {
            () = server(&t, tx) => unreachable!("the server never returns"),
            () = all_started => {}
        } // the nursery future is dropped here
        assert_eq!(t.created.get(), 16);
        assert!(
            t.all_dropped(),
            "every parallel child was dropped with the nursery"
        );
    }))
    .unwrap();
    assert_no_task_left(&rt);
}

#[test]
fn start_with_parallel_waits_for_started() {
    #[nursery]
    async fn serve() -> Result<u16, Errors<SpawnError>> {
        let port = start!(
            |status| async move {
                tokio::task::yield_now().await;
                status.started(8080u16);
                std::future::pending::<()>().await
            },
            parallel,
            background
        );
        Ok(port)
    }
    assert_eq!(run(async { serve().await.unwrap() }), 8080);
}

#[test]
fn a_local_nursery_takes_parallel_children_too() {
    #[nursery(local)]
    async fn local() -> Result<u32, Errors<SpawnError>> {
        let rc = std::rc::Rc::new(20);
        let local = spawn!(async move { *rc });
        let remote = spawn!(async { 22 }, parallel);
        Ok(local.await + remote.await)
    }
    let rt = multi_thread_runtime();
    assert_eq!(rt.block_on(local()).unwrap(), 42);
    assert_no_task_left(&rt);
}

#[test]
fn a_grace_period_lets_parallel_children_say_goodbye() {
    #[nursery(n, grace = Duration::from_secs(2))]
    async fn serve(said: Arc<std::sync::Mutex<Vec<&'static str>>>, tracker: &Tracker) {
        let token = n.cancel_token();
        let s = said.clone();
        spawn!(
            async move {
                token.cancelled().await;
                s.lock().unwrap().push("goodbye");
            },
            parallel
        );
        // Ignores the cancel: dropped when the grace period ends.
        spawn!(pending_with(tracker.guard()), parallel);
        tokio::task::yield_now().await;
        n.cancel();
    }
    // Paused time needs a current-thread runtime; parallel children are
    // still tasks of their own there.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let said = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tracker = Tracker::new();
    let started = rt.block_on(async { tokio::time::Instant::now() });
    rt.block_on(serve(said.clone(), &tracker));
    let took = rt.block_on(async { tokio::time::Instant::now() }) - started;
    assert_eq!(*said.lock().unwrap(), vec!["goodbye"]);
    assert!(tracker.all_dropped());
    assert_eq!(
        took,
        Duration::from_secs(2),
        "the stubborn child got the whole grace period"
    );
}

/// A small deterministic generator (xorshift), so a failing seed reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[nursery]
async fn stress(
    seed: u64,
    n: usize,
    tracker: &Tracker,
    failed: Arc<AtomicUsize>,
) -> Result<usize, Errors<usize>> {
    let mut rng = Rng(seed);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let guard = tracker.guard();
        let yields = rng.next() % 4;
        let fails = rng.next() % 1000 == 0;
        let failed = failed.clone();
        tasks.push(spawn!(
            async move {
                let _guard = guard;
                for _ in 0..yields {
                    tokio::task::yield_now().await;
                }
                if fails {
                    failed.fetch_add(1, Ordering::SeqCst);
                    return Err(i);
                }
                Ok(1usize)
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
fn stress_ten_thousand_parallel_children_with_random_failures() {
    for seed in [1, 2, 3, 0x9e37_79b9_7f4a_7c15] {
        let tracker = Tracker::new();
        let failed = Arc::new(AtomicUsize::new(0));
        let (t, f) = (tracker.clone(), failed.clone());
        let out = run(async move {
            let out = stress(seed, 10_000, &t, f).await;
            assert!(t.all_dropped(), "seed {seed}: a child outlived its nursery");
            out
        });
        assert_eq!(tracker.created.get(), 10_000);
        match out {
            Ok(sum) => {
                assert_eq!(failed.load(Ordering::SeqCst), 0, "seed {seed}");
                assert_eq!(sum, 10_000);
            }
            Err(errors) => {
                let mut errors = errors.into_vec();
                let len = errors.len();
                errors.sort_unstable();
                errors.dedup();
                assert_eq!(errors.len(), len, "seed {seed}: an error twice");
                assert_eq!(
                    len,
                    failed.load(Ordering::SeqCst),
                    "seed {seed}: an error lost"
                );
            }
        }
    }
}

#[nursery]
async fn left_running(
    go: futures::channel::oneshot::Receiver<()>,
    wake_local: futures::channel::oneshot::Receiver<()>,
    local_polls: Counter,
    parallel_done: Counter,
) -> Result<(), Errors<SpawnError>> {
    spawn!(async move {
        local_polls.add();
        let _ = wake_local.await;
        local_polls.add(); // never: its nursery was forgotten
    });
    spawn!(
        async move {
            let _ = go.await;
            parallel_done.add();
        },
        parallel
    );
    std::future::pending::<()>().await;
    Ok(())
}

#[test]
fn a_forgotten_nursery_never_polls_a_local_child_again_but_its_parallel_child_may_end() {
    // The contract: leaking a nursery's future never lets a local child be
    // polled again; a parallel child, which owns all it uses, may run on to
    // its end, and then its runtime task ends: nothing stays on the runtime.
    let rt = multi_thread_runtime();
    let (go, go_rx) = futures::channel::oneshot::channel();
    let (wake_local, wake_local_rx) = futures::channel::oneshot::channel();
    let (local_polls, parallel_done) = (Counter::new(), Counter::new());
    let mut fut = Box::pin(left_running(
        go_rx,
        wake_local_rx,
        local_polls.clone(),
        parallel_done.clone(),
    ));
    rt.block_on(async { assert!(poll_once(fut.as_mut()).is_pending()) });
    assert_eq!(local_polls.get(), 1);
    std::mem::forget(fut);
    wake_local.send(()).unwrap();
    go.send(()).unwrap();
    // A condition, not a duration: the bound only turns a hang into a failure.
    let since = Instant::now();
    while parallel_done.get() == 0 {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "the parallel child ran to its end"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_no_task_left(&rt);
    assert_eq!(
        local_polls.get(),
        1,
        "the local child was never polled again"
    );
}

/// `parallel = BOOL` chooses at run time: `false` runs the child in the
/// nursery's own task (no spawner needed), `true` on a worker.
#[test]
fn parallel_bool_chooses_at_run_time() {
    #[nursery]
    async fn run(on_workers: bool) -> Result<bool, Errors<SpawnError>> {
        let here = std::thread::current().id();
        let ran_on = spawn!(async { std::thread::current().id() }, parallel = on_workers);
        Ok(ran_on.await != here)
    }
    // No runtime, no spawner: `false` still runs.
    assert!(!futures::executor::block_on(run(false)).unwrap());
    let rt = multi_thread_runtime();
    assert!(!rt.block_on(run(false)).unwrap());
    // On a worker: `block_on` runs the nursery on this thread.
    assert!(rt.block_on(run(true)).unwrap());
    assert_no_task_left(&rt);
}
