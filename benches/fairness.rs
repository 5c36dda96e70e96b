//! Fairness: while a nursery (or a peer) works through 100 000 ready
//! children, a sibling task on the same current-thread runtime ticks; the
//! worst gap between its ticks is how long the runtime thread was held.
//!
//! `cargo bench --bench fairness`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nursery::{nursery, spawn};
use tokio::sync::oneshot;

const N: usize = 100_000;

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
        let done = Arc::new(AtomicBool::new(false));
        let ticker = {
            let done = done.clone();
            tokio::task::spawn_local(async move {
                let mut worst = Duration::ZERO;
                let mut last = Instant::now();
                while !done.load(Ordering::Relaxed) {
                    tokio::task::yield_now().await;
                    let now = Instant::now();
                    worst = worst.max(now - last);
                    last = now;
                }
                worst
            })
        };
        tokio::task::yield_now().await;
        let start = Instant::now();
        make().await;
        let total = start.elapsed();
        done.store(true, Ordering::Relaxed);
        (ticker.await.unwrap(), total)
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("worst delay of a ticking sibling task while {N} children are ready at once\n");
    println!("| system | worst tick gap | total time |");
    println!("| --- | --- | --- |");
    for _ in 0..1 {
        let (gap, total) = worst_gap(|| nursery_ready(N));
        println!("| nursery | {gap:.2?} | {total:.2?} |");
        let (gap, total) = worst_gap(|| fu_ready(N));
        println!("| FuturesUnordered | {gap:.2?} | {total:.2?} |");
    }
}
