//! A nursery's per-child bookkeeping (the slab of slots, the queues of
//! indices), in blocks of fixed size rather than in buffers that grow, and
//! a small per-thread pool of emptied blocks.
//!
//! Why. With glibc's allocator, a request of 1 KiB or more, made while
//! freed small chunks wait in its fast bins, consolidates them, and the
//! heap's free top then goes back to the operating system at the next free
//! next to it: the next nursery of the same size faults every page of its
//! children in again. A `Vec` or `VecDeque` growing to N entries makes such
//! requests all along, and a nursery's children, completed, are exactly
//! such freed chunks. Measured (`NURSERY_FAULTS=1 cargo bench --bench
//! compare`): `wake_all` at N = 100 000 took 4 611 page faults per run (FU:
//! 154) and `spawn_join` 2 364 (FU: 0), 45% of the time spent spawning.
//! Here the first block of each kind grows only while it is small (under
//! 1 KiB), then a nursery takes full blocks from the thread's pool (made
//! once) and gives them back when it ends: a thread that runs nurseries of
//! up to [`POOL`] blocks' worth of children (131 072) asks the allocator
//! for nothing larger than a node after its first one.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::mem;
use std::ops::{Index, IndexMut};
use std::thread::LocalKey;

use crate::node::Slot;

/// Entries per block: 32 KiB of slots, 16 KiB of queued indices.
pub(crate) const BLOCK: usize = 4096;

/// Entries a first block holds before it moves into a full block: under
/// 1 KiB for both kinds, so a small nursery allocates only small chunks.
const SMALL: usize = 64;

/// Emptied blocks a thread keeps, of each kind (at most 1 MiB of slots and
/// 512 KiB of indices).
pub(crate) const POOL: usize = 32;

thread_local! {
    static SLOT_BLOCKS: RefCell<Vec<Vec<Slot>>> = const { RefCell::new(Vec::new()) };
    static INDEX_BLOCKS: RefCell<Vec<VecDeque<u32>>> = const { RefCell::new(Vec::new()) };
}

/// A block from `pool`, or a new one.
fn take<B>(pool: &'static LocalKey<RefCell<Vec<B>>>, new: impl FnOnce() -> B) -> B {
    pool.try_with(|pool| pool.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(new)
}

/// Keeps an emptied block for the thread's next nursery, if there is room.
fn give<B>(pool: &'static LocalKey<RefCell<Vec<B>>>, block: B) {
    let _ = pool.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL {
            pool.push(block);
        }
    });
}

fn slot_block() -> Vec<Slot> {
    take(&SLOT_BLOCKS, || Vec::with_capacity(BLOCK))
}

fn index_block() -> VecDeque<u32> {
    take(&INDEX_BLOCKS, || VecDeque::with_capacity(BLOCK))
}

/// Only full-size blocks are kept, emptied.
fn give_slot_block(mut block: Vec<Slot>) {
    if block.capacity() == BLOCK {
        block.clear(); // vacant slots by now; a child left in one is dropped
        give(&SLOT_BLOCKS, block);
    }
}

fn give_index_block(mut block: VecDeque<u32>) {
    if block.capacity() == BLOCK {
        block.clear();
        give(&INDEX_BLOCKS, block);
    }
}

/// The registry's slab in blocks of [`BLOCK`] slots: pushing never moves a
/// slot.
#[derive(Default)]
pub(crate) struct BlockVec {
    /// Slots `0..BLOCK`: a `Vec` that grows to [`SMALL`], then a block.
    first: Vec<Slot>,
    /// Slots from `BLOCK` on, `BLOCK` per block; all full but the last.
    rest: Vec<Vec<Slot>>,
}

impl BlockVec {
    pub(crate) fn len(&self) -> usize {
        match self.rest.last() {
            None => self.first.len(),
            Some(last) => self.rest.len() * BLOCK + last.len(),
        }
    }

    pub(crate) fn push(&mut self, slot: Slot) {
        if self.first.len() < BLOCK {
            if self.first.len() == SMALL && self.first.capacity() == SMALL {
                let mut block = slot_block();
                block.append(&mut self.first);
                self.first = block;
            }
            self.first.push(slot);
            return;
        }
        match self.rest.last_mut() {
            Some(last) if last.len() < BLOCK => last.push(slot),
            _ => {
                let mut block = slot_block();
                block.push(slot);
                self.rest.push(block);
            }
        }
    }

    pub(crate) fn get(&self, index: usize) -> Option<&Slot> {
        if index < BLOCK {
            self.first.get(index)
        } else {
            self.rest.get(index / BLOCK - 1)?.get(index % BLOCK)
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.first.iter().chain(self.rest.iter().flatten())
    }
}

impl Index<usize> for BlockVec {
    type Output = Slot;

    fn index(&self, index: usize) -> &Slot {
        if index < BLOCK {
            &self.first[index]
        } else {
            &self.rest[index / BLOCK - 1][index % BLOCK]
        }
    }
}

impl IndexMut<usize> for BlockVec {
    fn index_mut(&mut self, index: usize) -> &mut Slot {
        if index < BLOCK {
            &mut self.first[index]
        } else {
            &mut self.rest[index / BLOCK - 1][index % BLOCK]
        }
    }
}

impl Drop for BlockVec {
    fn drop(&mut self) {
        give_slot_block(mem::take(&mut self.first));
        for block in self.rest.drain(..) {
            give_slot_block(block);
        }
    }
}

/// A double-ended queue of child indices in blocks of at most [`BLOCK`].
#[derive(Default)]
pub(crate) struct IndexQueue {
    /// The first entries; empty only if the whole queue is. A `VecDeque`
    /// that grows to [`SMALL`], then a block.
    front: VecDeque<u32>,
    /// The entries after `front`, in blocks that are never empty and all
    /// full but the last (a block goes to the front only when `front` is
    /// full, and the back fills before another is made).
    rest: VecDeque<VecDeque<u32>>,
}

impl IndexQueue {
    pub(crate) fn len(&self) -> usize {
        self.front.len()
            + self
                .rest
                .back()
                .map_or(0, |last| (self.rest.len() - 1) * BLOCK + last.len())
    }

    pub(crate) fn push_back(&mut self, index: u32) {
        let last = self.rest.back_mut().unwrap_or(&mut self.front);
        if last.len() < last.capacity() {
            last.push_back(index); // room: no block to grow or make
        } else if last.len() < BLOCK {
            grow_small(last);
            last.push_back(index);
        } else {
            let mut block = index_block();
            block.push_back(index);
            self.rest.push_back(block);
        }
    }

    pub(crate) fn push_front(&mut self, index: u32) {
        if self.front.len() == self.front.capacity() {
            if self.front.len() == BLOCK {
                let block = index_block();
                self.rest.push_front(mem::replace(&mut self.front, block));
            } else {
                grow_small(&mut self.front);
            }
        }
        self.front.push_front(index);
    }

    pub(crate) fn pop_front(&mut self) -> Option<u32> {
        let index = self.front.pop_front()?;
        if self.front.is_empty() {
            if let Some(next) = self.rest.pop_front() {
                give_index_block(mem::replace(&mut self.front, next));
            }
        }
        Some(index)
    }
}

/// A small first block that is full moves into a full-size block (one
/// that is not yet [`SMALL`] grows as a `VecDeque` does).
fn grow_small(block: &mut VecDeque<u32>) {
    if block.len() == SMALL {
        let mut full = index_block();
        full.append(block);
        *block = full;
    }
}

impl Drop for IndexQueue {
    fn drop(&mut self) {
        give_index_block(mem::take(&mut self.front));
        for block in self.rest.drain(..) {
            give_index_block(block);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: &BlockVec, index: usize) -> Option<u32> {
        v.get(index).and_then(Slot::next_free)
    }

    #[test]
    fn block_vec_indexes_across_blocks() {
        let mut v = BlockVec::default();
        for i in 0..3 * BLOCK as u32 + 5 {
            v.push(Slot::vacant(i));
        }
        assert_eq!(v.len(), 3 * BLOCK + 5);
        assert_eq!(v[BLOCK].next_free(), Some(BLOCK as u32));
        v[2 * BLOCK + 1] = Slot::vacant(7);
        assert_eq!(at(&v, 2 * BLOCK + 1), Some(7));
        assert_eq!(at(&v, SMALL + 1), Some(SMALL as u32 + 1));
        assert_eq!(at(&v, 3 * BLOCK + 5), None);
        assert_eq!(v.iter().count(), 3 * BLOCK + 5);
        assert_eq!(
            v.iter().nth(BLOCK + 3).and_then(Slot::next_free),
            Some(BLOCK as u32 + 3)
        );
    }

    /// A large slab and queue give their blocks to the thread's pool when
    /// they go, and the next ones take them from it; a small one never
    /// touches it.
    #[test]
    fn blocks_go_back_to_the_thread_and_come_out_again() {
        let pooled = || {
            (
                SLOT_BLOCKS.with(|p| p.borrow().len()),
                INDEX_BLOCKS.with(|p| p.borrow().len()),
            )
        };
        let fill = |n: usize| {
            let mut v = BlockVec::default();
            let mut q = IndexQueue::default();
            for i in 0..n as u32 {
                v.push(Slot::vacant(i));
                q.push_back(i);
            }
            (v, q)
        };
        let start = pooled();
        drop(fill(SMALL));
        assert_eq!(pooled(), start);
        drop(fill(3 * BLOCK));
        assert_eq!(pooled(), (start.0 + 3, start.1 + 3));
        let large = fill(2 * BLOCK + 1);
        assert_eq!(pooled(), (start.0, start.1));
        drop(large);
        assert_eq!(pooled(), (start.0 + 3, start.1 + 3));
        drop(fill(POOL * BLOCK * 2));
        assert_eq!(pooled(), (POOL, POOL));
    }

    /// The queue against `VecDeque` over a mix of operations that cross
    /// block boundaries both ways, and empty and refill it.
    #[test]
    fn index_queue_behaves_like_a_vec_deque() {
        let mut q = IndexQueue::default();
        let mut model = VecDeque::new();
        let mut seed = 0x2545_f491_u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for round in 0..120_000u32 {
            match next() % 7 {
                0..=2 => {
                    q.push_back(round);
                    model.push_back(round);
                }
                3 => {
                    q.push_front(round);
                    model.push_front(round);
                }
                _ => assert_eq!(q.pop_front(), model.pop_front()),
            }
            if round % 50_000 == 0 {
                while let Some(x) = model.pop_front() {
                    assert_eq!(q.pop_front(), Some(x));
                }
                assert_eq!(q.pop_front(), None);
            }
            assert_eq!(q.len(), model.len());
        }
        while let Some(x) = model.pop_front() {
            assert_eq!(q.pop_front(), Some(x));
        }
        assert_eq!(q.len(), 0);
    }
}
