//! Runtime adapters. The core needs none to run; with the `tokio` feature
//! it also respects tokio's cooperative budget.

/// Whether the current task may go on polling children. On tokio (feature
/// `tokio`), false once the task's coop budget is spent: a child polled then
/// can only return `Pending` with its wake deferred, so the driver yields
/// instead. Elsewhere, always true (the driver's batch bound applies).
#[inline]
pub(crate) fn budget_left() -> bool {
    #[cfg(feature = "tokio")]
    {
        tokio::task::coop::has_budget_remaining()
    }
    #[cfg(not(feature = "tokio"))]
    {
        true
    }
}
