//! Fairness: while a nursery (or a peer) works through 100 000 ready
//! children, a sibling task on the same current-thread runtime ticks; the
//! worst gap between its ticks, counted from the moment every child has
//! been woken (not while the body's own loop spawns them), is how long the
//! runtime thread was held.
//!
//! `cargo bench --bench fairness`

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nursery::{nursery, spawn};
use tokio::sync::oneshot;

const N: usize = 100_000;

/// Set once every child has been woken: the ticker counts from then on.
static WOKEN: AtomicBool = AtomicBool::new(false);

#[nursery]
async fn nursery_ready(n: usize) {
    let mut txs = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = oneshot::channel::<()>();
        txs.push(tx);
        spawn!(async move {
            rx.await.unwrap();
        });
    }
    tokio::task::yield_now().await;
    for tx in txs {
        tx.send(()).unwrap();
    }
    WOKEN.store(true, Ordering::Relaxed);
}

async fn fu_ready(n: usize) {
    use futures::StreamExt;
    let mut txs = Vec::with_capacity(n);
    let mut set = futures::stream::FuturesUnordered::new();
    for _ in 0..n {
        let (tx, rx) = oneshot::channel::<()>();
        txs.push(tx);
        set.push(async move { rx.await.unwrap() });
    }
    let _ = futures::poll!(set.next());
    for tx in txs {
        tx.send(()).unwrap();
    }
    WOKEN.store(true, Ordering::Relaxed);
    while set.next().await.is_some() {}
}

fn worst_gap<F: std::future::Future<Output = ()> + 'static>(
    make: impl FnOnce() -> F,
) -> (Duration, Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        static DONE: AtomicBool = AtomicBool::new(false);
        DONE.store(false, Ordering::Relaxed);
        WOKEN.store(false, Ordering::Relaxed);
        let ticker = tokio::task::spawn_local(async move {
            let mut worst = Duration::ZERO;
            let mut last = Instant::now();
            let mut counting = false; // only gaps that begin once all are woken
            while !DONE.load(Ordering::Relaxed) {
                tokio::task::yield_now().await;
                let now = Instant::now();
                if counting {
                    worst = worst.max(now - last);
                }
                counting = WOKEN.load(Ordering::Relaxed);
                last = now;
            }
            worst
        });
        tokio::task::yield_now().await;
        let start = Instant::now();
        make().await;
        let total = start.elapsed();
        DONE.store(true, Ordering::Relaxed);
        (ticker.await.unwrap(), total)
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("worst delay of a ticking sibling task while {N} children are ready at once\n");
    println!("| system | worst tick gap once woken | total time |");
    println!("| --- | --- | --- |");
    for _ in 0..1 {
        let (gap, total) = worst_gap(|| nursery_ready(N));
        println!("| nursery | {gap:.2?} | {total:.2?} |");
        let (gap, total) = worst_gap(|| fu_ready(N));
        println!("| FuturesUnordered | {gap:.2?} | {total:.2?} |");
    }
}
