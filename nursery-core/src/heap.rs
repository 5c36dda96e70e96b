//! A nudge to glibc's allocator as children end, so that it tidies their
//! memory while that memory is still in cache.
//!
//! glibc keeps freed small chunks (up to 128 bytes by default: a child's
//! node, and what the child freed as it ended, a oneshot, a small buffer)
//! in per-arena "fast bins", and merges them one by one at the arena's next
//! request of 1 KiB or more (`malloc_consolidate`). When children end by
//! the hundred thousand, that walk comes long after they ended and runs
//! over megabytes no longer in any cache: 12% of `wake_all`'s time at
//! 100 000 children, and 5% more in `unlink_chunk` under it (`perf
//! record`). A request in that range every 256 children that end on a
//! thread makes glibc merge their chunks while they are still in cache;
//! the later walk finds them merged already (2% and 2%). `wake_all` and
//! `wake_chain` at 100 000 children run 11% and 10% faster; at 10 000, and
//! in the other scenarios, nothing changes beyond the noise
//! (docs/performance.md). The request is freed at once, and the chunks were going
//! to be merged anyway: no work is added, only moved to where it is cheap.
//!
//! Only on glibc targets; elsewhere this compiles to nothing. A program
//! that replaces the global allocator on glibc pays one allocation and
//! free of 2 KiB per 256 children ended (well under a nanosecond per
//! child).

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) use glibc::children_ended;

/// Elsewhere there is nothing to nudge.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
#[inline]
pub(crate) fn children_ended(_count: usize) {}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::cell::Cell;

    /// How many children end on a thread between two nudges.
    const EVERY: u32 = 256;

    // A batch of children ends with one call: one nudge per call at most.
    const _: () = assert!((crate::registry::BATCH as u32) < EVERY);

    /// The nudge's size: above what glibc's per-thread cache serves (1 032
    /// bytes), so that the request reaches the arena, and in its large-bin
    /// range (1 024 bytes and up), where it consolidates the fast bins
    /// first.
    const REQUEST: usize = 2048;

    thread_local! {
        /// Children ended on this thread since its last nudge.
        static ENDED: Cell<u32> = const { Cell::new(0) };
    }

    /// Notes that `count` children (at most a batch) completed on this
    /// thread, their futures dropped and their slots freed; nudges the
    /// allocator every [`EVERY`].
    #[inline]
    pub(crate) fn children_ended(count: usize) {
        let due = ENDED
            .try_with(|ended| {
                let now = ended.get() + count as u32;
                ended.set(now % EVERY);
                now >= EVERY
            })
            .unwrap_or(false);
        if due {
            drop(std::hint::black_box(Vec::<u8>::with_capacity(REQUEST)));
        }
    }
}
