//! With the `tokio` feature, a nursery respects tokio's coop budget: it
//! does not poll children that could only return `Pending` because the
//! budget is spent (the trap that makes `FuturesUnordered` quadratic).
#![cfg(feature = "tokio")]

mod common;

use common::*;
use nursery::{nursery, spawn};

const CONSUME: usize = 4;

#[nursery]
async fn budget_hungry(n: usize, polls: &Counter) {
    for _ in 0..n {
        spawn!(count_polls(
            async {
                for _ in 0..CONSUME {
                    tokio::task::consume_budget().await;
                }
            },
            polls
        ));
    }
}

#[test]
fn children_are_not_polled_once_the_budget_is_spent() {
    let polls = Counter::new();
    let n = 10_000;
    on_current_thread(budget_hungry(n, &polls));
    // Tokio's budget is 128 units, 4 per child: about one child in 32 is
    // cut off by the budget and polled again. Polling on after the budget is
    // spent would poll half of every batch of 64 for nothing.
    let wasted = polls.get() - n;
    assert!(
        wasted <= n / 16,
        "{wasted} polls of {n} children returned Pending for lack of budget"
    );
}
