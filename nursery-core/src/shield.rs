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

use atomic_waker::AtomicWaker;

use crate::sync::lock;

/// The slot that stands for a nursery's body.
pub(crate) const BODY: u32 = u32::MAX;

/// A nursery's count of shielded sections running inside each child (by
/// slot; [`BODY`] for the body), and the waker of its driver.
///
/// A count belongs to the child that was in the slot when its sections
/// registered, not to the slot: the registry retires a slot's count when
/// its child leaves, and every count carries a generation, so a section
/// that was leaked (`mem::forget`) never shields the next child in the
/// same slot, and a late drop of an old section never uncounts a new one.
#[derive(Default)]
pub(crate) struct Shields {
    counts: Mutex<Counts>,
    pub(crate) parent: AtomicWaker,
}

#[derive(Default)]
struct Counts {
    /// Per slot: the generation of its current count, and the count.
    by_slot: HashMap<u32, (u64, u32)>,
    next_generation: u64,
}

impl Shields {
    pub(crate) fn active(&self, slot: u32) -> bool {
        lock(&self.counts).by_slot.contains_key(&slot)
    }

    /// One more section in `slot`'s child; the generation to remove it by.
    fn add(&self, slot: u32) -> u64 {
        let mut counts = lock(&self.counts);
        let Counts {
            by_slot,
            next_generation,
        } = &mut *counts;
        let (generation, count) = by_slot.entry(slot).or_insert_with(|| {
            *next_generation += 1;
            (*next_generation, 0)
        });
        *count += 1;
        *generation
    }

    fn remove(&self, slot: u32, generation: u64) {
        let mut counts = lock(&self.counts);
        if let Some((current, n)) = counts.by_slot.get_mut(&slot) {
            if *current == generation {
                *n -= 1;
                if *n == 0 {
                    counts.by_slot.remove(&slot);
                }
            }
        }
        drop(counts);
        self.parent.wake();
    }

    /// Keeps the counts of the slots `keep` accepts (children still there).
    pub(crate) fn retain(&self, mut keep: impl FnMut(u32) -> bool) {
        lock(&self.counts).by_slot.retain(|&slot, _| keep(slot));
    }

    /// The child in `slot` left the nursery: whatever sections it leaked
    /// shield nothing from now on.
    pub(crate) fn retire(&self, slot: u32) {
        lock(&self.counts).by_slot.remove(&slot);
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
        /// The child being polled, or `BODY` (see [`set_slot`] for the
        /// word): while this is the innermost nursery guardian, the
        /// thread-local `SLOT` holds it (the driver sets it once per child,
        /// so that is one cheap write); this field keeps it while an inner
        /// nursery's guardian is above.
        slot: Cell<u64>,
        /// How many shielded sections were being polled on this thread when
        /// the guardian was pushed: more than that now means the code
        /// running is inside a shielded section of this nursery's child.
        sections: Cell<u32>,
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
            Guardian::Nursery { tree, .. } => Some(tree.map(|key| (key, SLOT.get() as u32))),
            Guardian::Scope(_) => None,
        })
    })?
}

thread_local! {
    static GUARDIANS: RefCell<Vec<Guardian>> = const { RefCell::new(Vec::new()) };
    /// The slot of the innermost nursery guardian (see `Guardian::Nursery`).
    static SLOT: Cell<u64> = const { Cell::new(BODY as u64) };
    /// How many shielded sections are being polled on this thread.
    static SECTIONS: Cell<u32> = const { Cell::new(0) };
}

/// The payload that unwinds shielded code out of a wait that can never
/// end (a `start!` whose child failed): the driver that catches it treats
/// the code as cancelled, not as a panic.
#[derive(Debug)]
pub(crate) struct Interrupted;

/// The bit of the `SLOT` word that says the child was spawned `shield`.
const SHIELDED_CHILD: u64 = 1 << 32;

/// A guardian for a nursery's driver, whose body is polled first.
pub(crate) fn nursery_guardian(
    shields: Option<Arc<Shields>>,
    #[cfg(feature = "task-tree")] tree: Option<usize>,
) -> Guardian {
    Guardian::Nursery {
        shields: shields.map(OnceCell::from).unwrap_or_default(),
        slot: Cell::new(u64::from(BODY)),
        sections: Cell::new(SECTIONS.get()),
        #[cfg(feature = "task-tree")]
        tree,
    }
}

/// Polls the inside of a shielded section: code that runs in it counts as
/// shielded (see [`current_code_shielded`]).
pub(crate) fn in_section<R>(poll: impl FnOnce() -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            SECTIONS.set(SECTIONS.get() - 1);
        }
    }
    SECTIONS.set(SECTIONS.get() + 1);
    let _leave = Leave;
    poll()
}

/// Whether the code running now is a nursery's child or body that its
/// nursery will drop if it is cancelling: a wait that can never end (a
/// handle of a child that ended without a value) may stay pending there,
/// as any `.await` of cancelled code does.
pub(crate) fn interruptible() -> bool {
    GUARDIANS.with(|g| innermost_nursery(&g.borrow()).is_some()) && !current_code_shielded()
}

/// Whether a shielded section runs in the child in `slot` of the nursery
/// whose driver runs now (the innermost nursery guardian): a child
/// cancelled by its handle waits for it to end, as a cancelled nursery's
/// children do.
pub(crate) fn section_active(slot: u32) -> bool {
    GUARDIANS.with(|g| match innermost_nursery(&g.borrow()) {
        Some(Guardian::Nursery { shields, .. }) => shields.get().is_some_and(|s| s.active(slot)),
        _ => false,
    })
}

/// Whether the code running now is shielded from its innermost nursery's
/// cancellation: a child spawned with `shield`, or code inside a shielded
/// section. Code that is not will be dropped by its nursery once it is
/// cancelling, so a wait that can never end may simply stay pending there.
pub(crate) fn current_code_shielded() -> bool {
    GUARDIANS.with(|g| match innermost_nursery(&g.borrow()) {
        Some(Guardian::Nursery { sections, .. }) => {
            SLOT.get() & SHIELDED_CHILD != 0 || SECTIONS.get() > sections.get()
        }
        _ => SECTIONS.get() > 0,
    })
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
    struct Pop(bool, u64);
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
/// poll, and whether it was spawned `shield`: one thread-local write of one
/// word (the slot, and [`SHIELDED_CHILD`]).
#[inline]
pub(crate) fn set_slot(slot: u32, shielded: bool) {
    SLOT.set(u64::from(slot) | if shielded { SHIELDED_CHILD } else { 0 });
}

enum Held {
    Scope(Arc<dyn Guard>),
    /// The nursery's counts, the slot, and the count's generation.
    Nursery(Arc<Shields>, u32, u64),
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
                    } as u32;
                    let shields = shields.get_or_init(Default::default).clone();
                    let generation = shields.add(slot);
                    Held::Nursery(shields, slot, generation)
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
                Held::Nursery(shields, slot, generation) => shields.remove(slot, generation),
            }
        }
    }
}
