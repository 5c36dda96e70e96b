//! Lock helpers. No code of ours panics while holding a lock, so poisoning
//! only means a user's `Drop` panicked somewhere above; the data is intact.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// The synchronisation that loom models (the parallel child's handover,
/// the node's state, the wake queue): std's, or loom's in the crate's own
/// tests under `--cfg loom` (a dev-dependency: the library built for
/// anything else keeps std's); see the `loom` tests in `parallel.rs` and
/// `node.rs`.
pub(crate) mod shim {
    #[cfg(not(all(loom, test)))]
    pub(crate) use atomic_waker::AtomicWaker;
    #[cfg(all(loom, test))]
    pub(crate) use loom::cell::UnsafeCell;
    #[cfg(all(loom, test))]
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    #[cfg(all(loom, test))]
    pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
    #[cfg(not(all(loom, test)))]
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    #[cfg(not(all(loom, test)))]
    pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

    #[cfg(not(all(loom, test)))]
    pub(crate) use super::lock;

    #[cfg(all(loom, test))]
    pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// std's `UnsafeCell` with loom's access API, so that loom can check
    /// every access to the cell's content for races.
    #[cfg(not(all(loom, test)))]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    #[cfg(not(all(loom, test)))]
    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }
        /// Reads through a pointer valid for the closure's call.
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }
        /// Writes through a pointer valid for the closure's call.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    /// `AtomicWaker` over loom's mutex, so that loom sees every handover.
    #[cfg(all(loom, test))]
    pub(crate) struct AtomicWaker(Mutex<Option<std::task::Waker>>);

    #[cfg(all(loom, test))]
    impl AtomicWaker {
        pub(crate) fn new() -> Self {
            AtomicWaker(Mutex::new(None))
        }
        pub(crate) fn register(&self, waker: &std::task::Waker) {
            let mut slot = lock(&self.0);
            if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                *slot = Some(waker.clone());
            }
        }
        pub(crate) fn wake(&self) {
            let waker = lock(&self.0).take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wakers of futures waiting for one event (a cancel), each with its own
/// slot: a future re-registers in place and frees its slot when dropped, so
/// a long-lived scope with short-lived waiters (a server's connections
/// awaiting its shutdown) neither grows nor scans a list per poll.
#[derive(Default)]
pub(crate) struct Waiters {
    slots: Vec<Option<std::task::Waker>>,
    free: Vec<usize>,
}

impl Waiters {
    /// Registers `waker` in the slot `key` (taking one the first time).
    pub(crate) fn register(&mut self, key: &mut Option<usize>, waker: &std::task::Waker) {
        let index = *key.get_or_insert_with(|| match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        });
        match &mut self.slots[index] {
            Some(old) if old.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
    }

    /// Frees the slot `key` (a waiter that is dropped).
    /// Frees the slot `key`; gives back the waker it held, to drop once
    /// the lock is let go.
    pub(crate) fn remove(&mut self, key: &mut Option<usize>) -> Option<std::task::Waker> {
        let index = key.take()?;
        self.free.push(index);
        self.slots[index].take()
    }

    /// Takes every registered waker, to wake them once the lock is released.
    /// Slots stay with their futures.
    pub(crate) fn take_all(&mut self) -> Vec<std::task::Waker> {
        self.slots.iter_mut().filter_map(Option::take).collect()
    }

    /// How many waiters hold a slot.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Waiters;

    #[test]
    fn slots_are_reused_and_wakers_replaced_in_place() {
        let mut waiters = Waiters::default();
        let waker = std::task::Waker::noop().clone();
        let (mut a, mut b) = (None, None);
        waiters.register(&mut a, &waker);
        waiters.register(&mut a, &waker);
        waiters.register(&mut b, &waker);
        assert_eq!(waiters.len(), 2);
        waiters.remove(&mut a);
        assert_eq!(waiters.len(), 1);
        let mut c = None;
        for _ in 0..1000 {
            waiters.register(&mut c, &waker);
            waiters.remove(&mut c);
        }
        assert_eq!(waiters.slots.len(), 2, "no growth with short-lived waiters");
        assert_eq!(waiters.take_all().len(), 1);
        assert_eq!(waiters.take_all().len(), 0);
        waiters.register(&mut b, &waker); // its slot is still its own
        assert_eq!(waiters.take_all().len(), 1);
    }
}
