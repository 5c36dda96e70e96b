//! Shielded sections: what lets code inside a shielded [`CancelScope`]
//! finish although something around it was cancelled.
//!
//! Cancellation here drops futures, so a shield works by asking whoever
//! would drop it to wait: every `CancelScope::run` and every nursery driver
//! is a *guardian* on a thread-local stack while it polls what it guards. A
//! shielded scope's `run`, on its first poll, registers with every guardian
//! around it (for a nursery: with the child being polled, or the body). A
//! guardian that is cancelled keeps polling what it guards while anything
//! inside is registered, and drops it as soon as the shielded section ends
//! (which wakes it). A nursery allocates its counts only when a shielded
//! section first registers with it.
//!
//! [`CancelScope`]: crate::CancelScope

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::task::AtomicWaker;

use crate::sync::lock;

/// The slot that stands for a nursery's body.
pub(crate) const BODY: u32 = u32::MAX;

/// A nursery's count of shielded sections running inside each child (by
/// slot; [`BODY`] for the body), and the waker of its driver.
#[derive(Default)]
pub(crate) struct Shields {
    counts: Mutex<HashMap<u32, u32>>,
    pub(crate) parent: AtomicWaker,
}

impl Shields {
    pub(crate) fn active(&self, slot: u32) -> bool {
        lock(&self.counts).get(&slot).is_some_and(|&n| n > 0)
    }

    fn add(&self, slot: u32) {
        *lock(&self.counts).entry(slot).or_default() += 1;
    }

    fn remove(&self, slot: u32) {
        let mut counts = lock(&self.counts);
        if let Some(n) = counts.get_mut(&slot) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&slot);
            }
        }
        drop(counts);
        self.parent.wake();
    }
}

/// A `CancelScope::run`'s side: count shielded sections, and wake when one
/// ends.
pub(crate) trait Guard: Send + Sync {
    fn shield_started(&self);
    fn shield_ended(&self);
}

/// An entry of the guardian stack.
pub(crate) enum Guardian {
    Scope(Arc<dyn Guard>),
    Nursery {
        /// Made by the first shielded section that registers.
        shields: OnceCell<Arc<Shields>>,
        /// The child being polled, or `BODY`: while this is the innermost
        /// nursery guardian, the thread-local `SLOT` holds it (the driver
        /// sets it once per child, so that is one cheap write); this field
        /// keeps it while an inner nursery's guardian is above.
        slot: Cell<u32>,
        /// The nursery's key in the task tree.
        #[cfg(feature = "task-tree")]
        tree: Option<usize>,
    },
}

/// The nursery (its task-tree key) and slot whose code runs now on this
/// thread, if any: the parent of a nursery that registers.
#[cfg(feature = "task-tree")]
pub(crate) fn current_tree_slot() -> Option<(usize, u32)> {
    GUARDIANS.with(|g| {
        g.borrow().iter().rev().find_map(|guardian| match guardian {
            Guardian::Nursery { tree, .. } => Some(tree.map(|key| (key, SLOT.get()))),
            Guardian::Scope(_) => None,
        })
    })?
}

thread_local! {
    static GUARDIANS: RefCell<Vec<Guardian>> = const { RefCell::new(Vec::new()) };
    /// The slot of the innermost nursery guardian (see `Guardian::Nursery`).
    static SLOT: Cell<u32> = const { Cell::new(BODY) };
}

/// Runs `poll` with `guardian` on the stack; gives the guardian back.
pub(crate) fn guarded<R>(guardian: Guardian, poll: impl FnOnce() -> R) -> (R, Guardian) {
    let nursery = matches!(guardian, Guardian::Nursery { .. });
    // The slot of the nursery guardian this one covers, kept in it while
    // this one is innermost, and restored when this one goes.
    let outer = SLOT.get();
    GUARDIANS.with(|g| {
        let mut g = g.borrow_mut();
        if nursery {
            if let Some(Guardian::Nursery { slot, .. }) = innermost_nursery(&g) {
                slot.set(outer);
            }
            if let Guardian::Nursery { slot, .. } = &guardian {
                SLOT.set(slot.get());
            }
        }
        g.push(guardian);
    });
    /// Pops the guardian (and restores the slot) even if `poll` panics.
    struct Pop(bool, u32);
    impl Drop for Pop {
        fn drop(&mut self) {
            if std::thread::panicking() {
                GUARDIANS.with(|g| g.borrow_mut().pop());
                if self.0 {
                    SLOT.set(self.1);
                }
            }
        }
    }
    let pop = Pop(nursery, outer);
    let r = poll();
    std::mem::forget(pop);
    let guardian = GUARDIANS
        .with(|g| g.borrow_mut().pop())
        .expect("pushed above");
    if nursery {
        SLOT.set(outer);
    }
    (r, guardian)
}

fn innermost_nursery(guardians: &[Guardian]) -> Option<&Guardian> {
    guardians
        .iter()
        .rev()
        .find(|g| matches!(g, Guardian::Nursery { .. }))
}

/// Sets the child the innermost nursery driver (the caller) is about to
/// poll: one thread-local write.
pub(crate) fn set_slot(slot: u32) {
    SLOT.set(slot);
}

enum Held {
    Scope(Arc<dyn Guard>),
    Nursery(Arc<Shields>, u32),
}

/// The registrations of one shielded section, undone when it is dropped.
pub(crate) struct Registration {
    held: Vec<Held>,
}

/// Registers a shielded section with every guardian around it.
pub(crate) fn register() -> Registration {
    let held = GUARDIANS.with(|g| {
        let g = g.borrow();
        let innermost = innermost_nursery(&g);
        g.iter()
            .map(|guardian| match guardian {
                Guardian::Scope(scope) => {
                    scope.shield_started();
                    Held::Scope(scope.clone())
                }
                Guardian::Nursery { shields, slot, .. } => {
                    let slot = if innermost.is_some_and(|n| std::ptr::eq(n, guardian)) {
                        SLOT.get()
                    } else {
                        slot.get()
                    };
                    let shields = shields.get_or_init(Default::default).clone();
                    shields.add(slot);
                    Held::Nursery(shields, slot)
                }
            })
            .collect()
    });
    Registration { held }
}

impl Drop for Registration {
    fn drop(&mut self) {
        for held in self.held.drain(..) {
            match held {
                Held::Scope(scope) => scope.shield_ended(),
                Held::Nursery(shields, slot) => shields.remove(slot),
            }
        }
    }
}
