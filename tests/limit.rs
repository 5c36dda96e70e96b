//! `limit = N`: never more than N children polled at once, later ones wait
//! unpolled and start in order as running ones end; `admit()` waits for
//! room (issue 19, the limit).

mod common;

use common::*;
use nursery::{Errors, nursery, spawn};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    most: AtomicUsize,
    order: Mutex<Vec<usize>>,
}

impl Gauge {
    async fn work(&self, id: usize, yields: usize) {
        self.order.lock().unwrap().push(id);
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        yield_times(yields).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

#[nursery(limit = 3)]
async fn limited(gauge: &Gauge) {
    for id in 0..20 {
        spawn!(gauge.work(id, 1 + id % 4));
    }
}

#[nursery(n, limit = 2)]
async fn producer(gauge: &Gauge, admitted_when_full: &AtomicUsize) -> usize {
    let mut spawned = 0;
    for id in 0..12 {
        n.admit().await;
        if gauge.now.load(Ordering::SeqCst) >= 2 {
            admitted_when_full.fetch_add(1, Ordering::SeqCst);
        }
        spawn!(gauge.work(id, 2));
        spawned += 1;
        yield_now().await; // let it start
    }
    spawned
}

#[nursery(limit = 1)]
async fn failing(polled: &Counter, dropped: &Counter) -> Result<(), Errors<&'static str>> {
    spawn!(async {
        yield_now().await;
        Err::<(), _>("first fails")
    });
    for _ in 0..5 {
        let guard = dropped.on_drop();
        spawn!(async move {
            let _guard = guard;
            polled.add();
            Ok(())
        });
    }
    Ok(())
}

#[nursery(limit = 1)]
async fn shielded_waiting(done: &Counter) -> Result<(), Errors<&'static str>> {
    spawn!(async {
        yield_now().await;
        Err::<(), _>("first fails")
    });
    spawn!(
        async {
            yield_now().await;
            done.add();
            Ok(())
        },
        shield
    );
    spawn!(
        async {
            done.add();
            Ok(())
        },
        shield
    );
    Ok(())
}

#[nursery(limit = 1)]
async fn background_not_counted(ran: &Counter) {
    spawn!(std::future::pending::<()>(), background);
    spawn!(async { ran.add() });
    spawn!(async { ran.add() });
}

#[nursery(limit = 1)]
async fn cancel_a_waiting_child(polled: &Counter) -> (Option<()>, Option<()>) {
    let first = spawn!(async { yield_now().await });
    let waiting = spawn!(async { polled.add() });
    waiting.cancel(); // dropped unpolled, before its turn
    (first.try_join().await, waiting.try_join().await)
}

#[nursery(n)]
async fn raise_the_limit(gauge: &Gauge) {
    n.set_limit(1);
    for id in 0..6 {
        spawn!(gauge.work(id, 3));
    }
    yield_now().await;
    n.set_limit(3); // waiting children start at once
}

on_every_runtime! {
    async fn never_more_than_the_limit_run_and_all_run_in_order() {
        let gauge = Gauge::default();
        limited(&gauge).await;
        assert_eq!(gauge.most.load(Ordering::SeqCst), 3);
        assert_eq!(*gauge.order.lock().unwrap(), (0..20).collect::<Vec<_>>());
    }

    async fn admit_waits_for_room() {
        let gauge = Gauge::default();
        let admitted_when_full = AtomicUsize::new(0);
        assert_eq!(producer(&gauge, &admitted_when_full).await, 12);
        assert_eq!(admitted_when_full.load(Ordering::SeqCst), 0, "admit returned only with room");
        assert_eq!(gauge.most.load(Ordering::SeqCst), 2);
    }

    async fn children_waiting_their_turn_are_dropped_unpolled_on_cancel() {
        let (polled, dropped) = (Counter::new(), Counter::new());
        let errors = failing(&polled, &dropped).await.unwrap_err();
        assert_eq!(errors.into_vec(), ["first fails"]);
        assert_eq!(polled.get(), 0);
        assert_eq!(dropped.get(), 5);
    }

    async fn shielded_children_waiting_their_turn_still_run_after_a_failure() {
        let done = Counter::new();
        let errors = must_finish(shielded_waiting(&done)).unwrap_err();
        assert_eq!(errors.into_vec(), ["first fails"]);
        assert_eq!(done.get(), 2);
    }

    async fn background_children_do_not_count() {
        let ran = Counter::new();
        background_not_counted(&ran).await;
        assert_eq!(ran.get(), 2);
    }

    async fn a_waiting_child_cancelled_by_its_handle_never_runs() {
        let polled = Counter::new();
        assert_eq!(cancel_a_waiting_child(&polled).await, (Some(()), None));
        assert_eq!(polled.get(), 0);
    }

    async fn raising_the_limit_starts_waiting_children() {
        let gauge = Gauge::default();
        raise_the_limit(&gauge).await;
        assert_eq!(gauge.most.load(Ordering::SeqCst), 3);
        assert_eq!(*gauge.order.lock().unwrap(), (0..6).collect::<Vec<_>>());
    }
}

#[cfg(feature = "tokio")]
mod parallel {
    use super::*;
    use std::sync::Arc;

    #[nursery(limit = 2)]
    async fn limited_parallel(
        gauge: Arc<Gauge>,
        started: Arc<AtomicUsize>,
    ) -> Result<(), Errors<nursery::SpawnError>> {
        for id in 0..8 {
            let (gauge, started) = (gauge.clone(), started.clone());
            spawn!(
                async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    gauge.work(id, 5).await;
                },
                parallel
            );
        }
        // spawned, but at most 2 runtime tasks started so far
        assert!(started.load(Ordering::SeqCst) <= 2);
        Ok(())
    }

    #[test]
    fn the_limit_holds_for_parallel_children_too() {
        let rt = multi_thread_runtime();
        let gauge = Arc::new(Gauge::default());
        let started = Arc::new(AtomicUsize::new(0));
        rt.block_on(limited_parallel(gauge.clone(), started.clone()))
            .unwrap();
        assert_eq!(started.load(Ordering::SeqCst), 8);
        assert!(
            gauge.most.load(Ordering::SeqCst) <= 2,
            "at most 2 ran at once"
        );
        assert_no_task_left(&rt);
    }
}
