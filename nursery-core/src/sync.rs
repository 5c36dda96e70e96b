//! Lock helpers. No code of ours panics while holding a lock, so poisoning
//! only means a user's `Drop` panicked somewhere above; the data is intact.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
