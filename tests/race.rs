//! `Race`: the first attempt to succeed wins and cancels the rest; when
//! every attempt fails, every failure comes back, in order, named.

mod common;

use common::*;
use nursery::{Errors, Race, nursery, spawn};

#[nursery(n)]
async fn first_wins(race: &Race<u8, String>, dropped: &Counter, body_after: &Counter) {
    let guard = dropped.on_drop();
    spawn!(race.attempt(n, "slow", async move {
        let _guard = guard;
        std::future::pending::<()>().await;
        Ok(1)
    }));
    spawn!(race.attempt(n, "down", async { Err("down".to_owned()) }));
    spawn!(race.attempt(n, "quick", async {
        yield_now().await;
        Ok(2)
    }));
    std::future::pending::<()>().await; // the body is cancelled with the rest
    body_after.add();
}

#[nursery(n)]
async fn all_fail(race: &Race<u8, String>) {
    spawn!(race.attempt(n, "a", async { Err("a refused".to_owned()) }));
    spawn!(race.attempt(n, "b", async {
        yield_now().await;
        Err("b timed out".to_owned())
    }));
}

#[nursery]
async fn none() {}

on_every_runtime! {
    async fn the_first_success_wins_and_cancels_the_rest() {
        let race = Race::new();
        let (dropped, body_after) = (Counter::new(), Counter::new());
        first_wins(&race, &dropped, &body_after).await;
        assert_eq!(race.finish().unwrap(), 2, "failures before the winner are dropped");
        assert_eq!(dropped.get(), 1, "the slow attempt was cancelled");
        assert_eq!(body_after.get(), 0, "the body was cancelled");
    }

    async fn when_every_attempt_fails_every_failure_comes_back_named() {
        let race = Race::new();
        all_fail(&race).await;
        let errors: Errors<String> = race.finish().unwrap_err();
        assert_eq!(
            errors.to_string(),
            "2 errors:\n  1. child `a` of nursery `all_fail` failed: a refused\n  \
             2. child `b` of nursery `all_fail` failed: b timed out"
        );
    }

    async fn a_race_with_no_attempt_says_so() {
        let race = Race::<u8, String>::new();
        none().await;
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| race.finish()))
            .expect_err("no value, no failure");
        assert!(payload_str(&*panic).contains("no attempt of the race ended"));
    }
}
