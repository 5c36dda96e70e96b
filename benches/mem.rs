//! Peak memory and heap allocations per pending trivial child at
//! N = 1 000 000, against the peers, with a counting global allocator;
//! and the peak heap of a `supervise = handler` nursery whose children fail
//! one after another, at 100 000 and 1 000 000 failures (a server that runs
//! forever must stay in constant memory).
//!
//! `cargo bench --bench mem`
#![allow(unsafe_code)] // a counting global allocator

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use nursery::{nursery, spawn};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        grew(layout.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        grew(new_size);
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 1_000_000;

#[nursery]
async fn nursery_pending(n: usize) {
    for _ in 0..n {
        spawn!(std::future::pending::<()>(), background);
    }
    tokio::task::yield_now().await; // every child has been polled once
}

async fn fu_pending(n: usize) {
    let mut set = futures::stream::FuturesUnordered::new();
    for _ in 0..n {
        set.push(std::future::pending::<()>());
    }
    let _ = futures::poll!(futures::StreamExt::next(&mut set));
}

async fn joinset_pending(n: usize) {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        set.spawn(std::future::pending::<()>());
    }
    tokio::task::yield_now().await;
}

async fn moro_pending(n: usize) {
    moro::async_scope!(|scope| {
        for _ in 0..n {
            scope.spawn(std::future::pending::<()>());
        }
        scope.terminate::<()>(()).await
    })
    .await;
}

/// `failures` children, spawned and failing one after another in one
/// supervising nursery; the handler counts them (each must be seen once).
async fn supervised_failures(failures: usize, seen: &AtomicUsize) {
    let out: Result<(), nursery::Errors<usize>> = nursery::scope!(|n| async move {
        n.supervise_with(|failure| {
            assert!(failure.error().is_some());
            seen.fetch_add(1, Relaxed);
        });
        for i in 0..failures {
            spawn!(async move { Err::<(), _>(i) });
            tokio::task::yield_now().await; // it runs and fails before the next
        }
        Ok(())
    })
    .await;
    out.unwrap();
}

/// Peak live heap bytes (above what was live before) while `fut` runs.
fn peak_of(rt: &tokio::runtime::Runtime, fut: impl std::future::Future) -> usize {
    let live0 = LIVE.load(Relaxed);
    PEAK.store(live0, Relaxed);
    rt.block_on(fut);
    PEAK.load(Relaxed) - live0
}

fn measure(name: &str, rt: &tokio::runtime::Runtime, fut: impl std::future::Future) -> f64 {
    let (a0, live0) = (ALLOCATIONS.load(Relaxed), LIVE.load(Relaxed));
    PEAK.store(live0, Relaxed);
    rt.block_on(fut);
    let allocations = (ALLOCATIONS.load(Relaxed) - a0) as f64 / N as f64;
    let bytes = (PEAK.load(Relaxed) - live0) as f64 / N as f64;
    println!("| {name} | {allocations:.3} | {bytes:.1} |");
    bytes
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("pending trivial children, N = {N}\n");
    println!("| system | allocations per child | peak bytes per child |");
    println!("| --- | --- | --- |");
    let nursery = measure("nursery", &rt, nursery_pending(N));
    let fu = measure("FuturesUnordered", &rt, fu_pending(N));
    measure("JoinSet", &rt, joinset_pending(N));
    measure("moro", &rt, moro_pending(N));
    println!("\nnursery / FuturesUnordered bytes: {:.2}", nursery / fu);

    println!("\n`supervise = handler`, children failing one after another\n");
    println!("| failures | seen by the handler | peak heap bytes |");
    println!("| --- | --- | --- |");
    let mut peaks = Vec::new();
    for failures in [100_000, 1_000_000] {
        let seen = AtomicUsize::new(0);
        let peak = peak_of(&rt, supervised_failures(failures, &seen));
        let seen = seen.load(Relaxed);
        println!("| {failures} | {seen} | {peak} |");
        assert_eq!(seen, failures, "the handler sees each failure exactly once");
        peaks.push(peak as f64);
    }
    println!(
        "\npeak at 1 000 000 / peak at 100 000: {:.3} (constant memory: at most 1.10)",
        peaks[1] / peaks[0]
    );
}
