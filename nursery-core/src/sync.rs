//! Lock helpers. No code of ours panics while holding a lock, so poisoning
//! only means a user's `Drop` panicked somewhere above; the data is intact.

use std::sync::{Mutex, MutexGuard, PoisonError};

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
    pub(crate) fn remove(&mut self, key: &mut Option<usize>) {
        if let Some(index) = key.take() {
            self.slots[index] = None;
            self.free.push(index);
        }
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
        let waker = futures_util::task::noop_waker();
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
