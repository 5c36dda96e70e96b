//! Allocation counts are deterministic, so these are tests, not benchmarks:
//! an empty nursery allocates nothing, a child costs one allocation
//! (amortised), and on glibc children that end make one transient request
//! per 256 (the core's nudge to the allocator, `nursery-core/src/heap.rs`).
#![allow(unsafe_code)] // a counting global allocator

mod common;

use common::*;
use nursery::{nursery, spawn};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::pin::pin;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Allocations of the layout of the core's nudge to glibc (`heap.rs`).
    static NUDGES: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts, per thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        if layout == Layout::from_size_align(2048, 1).unwrap() {
            let _ = NUDGES.try_with(|c| c.set(c.get() + 1));
        }
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATIONS.with(Cell::get);
    let r = f();
    (ALLOCATIONS.with(Cell::get) - before, r)
}

#[nursery]
async fn empty() -> u32 {
    7
}

#[nursery(n)]
async fn empty_with_handle() -> Result<bool, nursery::Errors<std::io::Error>> {
    Ok(n.is_cancelled())
}

#[test]
fn an_empty_nursery_makes_no_heap_allocation() {
    // once per thread: the first nursery sets up the thread's stack of
    // cancellation guardians (for shielded sections); not per nursery
    let _ = poll_once(pin!(empty()));
    let (count, out) = allocations_during(|| poll_once(pin!(empty())));
    assert_eq!(out, std::task::Poll::Ready(7));
    assert_eq!(count, 0);
    let (count, _) = allocations_during(|| poll_once(pin!(empty_with_handle())));
    assert_eq!(count, 0);
}

#[nursery]
async fn pending_children(n: usize) {
    for _ in 0..n {
        spawn!(std::future::pending::<()>(), background);
    }
    yield_now().await;
}

#[test]
fn a_child_costs_one_allocation_amortised() {
    for n in [1_000usize, 100_000, 1_000_000] {
        let (count, _) = allocations_during(|| futures::executor::block_on(pending_children(n)));
        // One node per child; the slab and the queue of fresh children take
        // one block per 4 096 children (each first block, and the drain
        // buffer, grow by doubling): 1 000 545 allocations for 1 000 000.
        let log2 = (usize::BITS - n.leading_zeros()) as usize;
        assert!(
            count <= n + 2 * n.div_ceil(4096) + 8 * log2,
            "{count} allocations for {n} children"
        );
        assert!(count >= n);
    }
}

#[nursery]
async fn ending_children(n: usize) {
    for i in 0..n {
        spawn!(async move {
            yield_now().await;
            i
        });
    }
}

#[test]
fn children_that_end_nudge_glibc_once_per_256() {
    // A thread of its own: the count of children ended is per thread.
    std::thread::spawn(|| {
        let nudges_during = |f: &dyn Fn()| {
            let before = NUDGES.with(Cell::get);
            f();
            NUDGES.with(Cell::get) - before
        };
        let glibc = cfg!(all(target_os = "linux", target_env = "gnu"));
        // 1 000 children end: nudges at 256, 512 and 768; 232 carried over.
        let ended = nudges_during(&|| futures::executor::block_on(ending_children(1_000)));
        assert_eq!(ended, if glibc { 3 } else { 0 });
        // The count goes on across nurseries: 24 more make 256.
        let carried = nudges_during(&|| futures::executor::block_on(ending_children(24)));
        assert_eq!(carried, if glibc { 1 } else { 0 });
        // Children that never end (dropped pending) nudge nothing.
        let pending = nudges_during(&|| futures::executor::block_on(pending_children(1_000)));
        assert_eq!(pending, 0);
    })
    .join()
    .unwrap();
}

/// A waker of its own (each waiter is a different task), made up front.
fn distinct_waker() -> std::task::Waker {
    struct Task;
    impl futures::task::ArcWake for Task {
        fn wake_by_ref(_: &std::sync::Arc<Self>) {}
    }
    futures::task::waker(std::sync::Arc::new(Task))
}

#[test]
fn short_lived_cancel_waiters_do_not_grow_a_long_lived_nursery() {
    // A server's nursery lives long; each connection awaits its shutdown and
    // ends. Waiters reuse their slots: after the first, none allocates.
    #[nursery(n)]
    async fn churn() -> [usize; 3] {
        let token = n.cancel_token();
        let scope = nursery::CancelScope::new();
        let mut counts = [0; 3];
        for (i, count) in counts.iter_mut().enumerate() {
            for round in 0..1000 {
                let waker = distinct_waker();
                let mut cx = std::task::Context::from_waker(&waker);
                let (allocated, ()) = allocations_during(|| match i {
                    0 => assert!(pin!(n.cancelled()).poll(&mut cx).is_pending()),
                    1 => assert!(pin!(token.cancelled()).poll(&mut cx).is_pending()),
                    _ => assert!(pin!(scope.cancelled()).poll(&mut cx).is_pending()),
                });
                if round > 0 {
                    *count += allocated;
                }
            }
        }
        counts
    }
    use std::future::Future;
    assert_eq!(futures::executor::block_on(churn()), [0, 0, 0]);
}
