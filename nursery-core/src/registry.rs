//! The child registry: a slab of type-erased children and a queue of the
//! ones that were woken.
//!
//! Each child gets a waker that pushes the child's index onto the shared
//! ready queue (once, until it is polled again) and wakes the nursery's
//! task. The driver polls only the children in that queue, and at most
//! [`BATCH`] of them per poll of the nursery before it yields back to the
//! executor: the cost of one wake does not depend on how many children
//! there are, and a burst of ready children cannot keep the nursery's task
//! from yielding (the trap that makes `FuturesUnordered` quadratic on tokio,
//! whose coop budget defers the wakes of children polled after the budget
//! ran out).
//!
//! Children are stored as `ManuallyDrop` so that a nursery may be borrowed
//! by its own children (`&'scope Nursery<'scope, …>`) without the drop
//! checker objecting; the driver takes every child out and drops it before
//! the nursery itself goes away (see `run.rs`). Nothing here is `unsafe`: if
//! the driver were leaked, the children would be leaked too, never polled.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::task::{ArcWake, AtomicWaker};

use crate::sync::lock;

/// How many woken children the driver polls at most before it yields; it
/// also polls only those that were woken before its poll began, so a child
/// that wakes itself (`yield_now`) is polled once per poll of the nursery.
pub(crate) const BATCH: usize = 64;

/// The part of a nursery that wakers reach: `'static`, `Send` and `Sync`.
#[derive(Default)]
pub(crate) struct Shared {
    ready: Mutex<VecDeque<usize>>,
    pub(crate) parent: AtomicWaker,
}

impl Shared {
    pub(crate) fn pop_ready(&self) -> Option<usize> {
        lock(&self.ready).pop_front()
    }

    pub(crate) fn ready_len(&self) -> usize {
        lock(&self.ready).len()
    }

    fn push_ready(&self, index: usize) {
        lock(&self.ready).push_back(index);
    }
}

/// The waker of one child.
pub(crate) struct ChildWaker {
    shared: Arc<Shared>,
    index: usize,
    queued: AtomicBool,
}

impl ChildWaker {
    /// Marks the child as no longer queued; a wake from now on queues it again.
    pub(crate) fn unqueue(&self) {
        self.queued.store(false, Ordering::Release);
    }

    /// Queues the child to be polled (if it is not queued already).
    pub(crate) fn schedule(&self) -> bool {
        if self.queued.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.shared.push_ready(self.index);
        true
    }
}

impl ArcWake for ChildWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        if arc_self.schedule() {
            arc_self.shared.parent.wake();
        }
    }
}

/// What a child was spawned with.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) shield: bool,
    pub(crate) background: bool,
}

pub(crate) struct Entry<C> {
    /// `None` while the driver is polling it.
    pub(crate) fut: Option<ManuallyDrop<C>>,
    pub(crate) waker: Arc<ChildWaker>,
    pub(crate) options: Options,
}

enum Slot<C> {
    Vacant { next_free: usize },
    Occupied(Entry<C>),
}

const NONE: usize = usize::MAX;

/// A slab of children with counts of what is still alive.
pub(crate) struct Registry<C> {
    slots: Vec<Slot<C>>,
    free: usize,
    shared: Option<Arc<Shared>>,
    /// Children alive.
    pub(crate) live: usize,
    /// Children alive that are not `background`.
    pub(crate) foreground: usize,
}

impl<C> Registry<C> {
    pub(crate) const fn new() -> Self {
        Registry {
            slots: Vec::new(),
            free: NONE,
            shared: None,
            live: 0,
            foreground: 0,
        }
    }

    /// The shared wake queue, if any child was ever spawned.
    pub(crate) fn shared(&self) -> Option<&Arc<Shared>> {
        self.shared.as_ref()
    }

    /// Adds a child, already queued to be polled.
    pub(crate) fn insert(&mut self, fut: C, options: Options) {
        let shared = self.shared.get_or_insert_with(Default::default).clone();
        let index = if self.free == NONE {
            self.slots.len()
        } else {
            self.free
        };
        let waker = Arc::new(ChildWaker {
            shared,
            index,
            queued: AtomicBool::new(false),
        });
        waker.schedule();
        self.live += 1;
        if !options.background {
            self.foreground += 1;
        }
        let entry = Slot::Occupied(Entry {
            fut: Some(ManuallyDrop::new(fut)),
            waker,
            options,
        });
        if index == self.slots.len() {
            self.slots.push(entry);
        } else {
            match std::mem::replace(&mut self.slots[index], entry) {
                Slot::Vacant { next_free } => self.free = next_free,
                Slot::Occupied(_) => unreachable!("free list points at an occupied slot"),
            }
        }
    }

    /// Takes the future of the child at `index` out to poll it, with its waker.
    pub(crate) fn take_for_poll(&mut self, index: usize) -> Option<(C, Arc<ChildWaker>)> {
        match self.slots.get_mut(index) {
            Some(Slot::Occupied(entry)) => {
                let fut = entry.fut.take()?;
                entry.waker.unqueue();
                Some((ManuallyDrop::into_inner(fut), entry.waker.clone()))
            }
            _ => None,
        }
    }

    /// Puts a polled, still pending child back.
    pub(crate) fn put_back(&mut self, index: usize, fut: C) {
        match self.slots.get_mut(index) {
            Some(Slot::Occupied(entry)) => entry.fut = Some(ManuallyDrop::new(fut)),
            _ => unreachable!("a child's slot was freed while it was being polled"),
        }
    }

    /// Frees the slot of a child that finished (its future was taken out).
    pub(crate) fn remove(&mut self, index: usize) -> Options {
        let slot = std::mem::replace(
            &mut self.slots[index],
            Slot::Vacant {
                next_free: self.free,
            },
        );
        self.free = index;
        match slot {
            Slot::Occupied(entry) => {
                self.live -= 1;
                if !entry.options.background {
                    self.foreground -= 1;
                }
                entry.options
            }
            Slot::Vacant { .. } => unreachable!("removed a vacant slot"),
        }
    }

    /// Takes out every child for which `which` holds, to be dropped by the
    /// caller once it has released the lock (their `Drop` may spawn).
    pub(crate) fn drain(&mut self, mut which: impl FnMut(&Options) -> bool, out: &mut Vec<C>) {
        for index in 0..self.slots.len() {
            let Slot::Occupied(entry) = &mut self.slots[index] else {
                continue;
            };
            if !which(&entry.options) || entry.fut.is_none() {
                continue;
            }
            if let Some(fut) = entry.fut.take() {
                out.push(ManuallyDrop::into_inner(fut));
            }
            self.remove(index);
        }
    }

    /// Queues every child to be polled again (after a cancellation, so that
    /// shielded children waiting on `cancelled()` see it).
    pub(crate) fn wake_all(&self) {
        for slot in &self.slots {
            if let Slot::Occupied(entry) = slot {
                entry.waker.schedule();
            }
        }
    }
}
