//! The expansion is warning-free under `#![deny(warnings)]` (clippy runs on
//! this file in CI too) and does not depend on the user's imports or on
//! names they shadow.
#![deny(warnings, clippy::all, clippy::pedantic)]
#![allow(clippy::unused_async)]

// Shadow what generated code must never rely on.
#[allow(dead_code)]
mod core {}
#[allow(dead_code)]
mod std {}
#[allow(dead_code)]
struct Result;
#[allow(dead_code)]
struct Ok;
#[allow(dead_code)]
struct Err;
#[allow(dead_code)]
struct Option;

use nursery::{Errors, nursery, spawn};

#[nursery]
async fn unit_fn() {
    spawn!(async {});
    spawn!(async { 1 }, name = "one");
    spawn!(
        async {
            loop {
                ::futures::pending!();
            }
        },
        background
    );
}

#[nursery(n)]
async fn errors_fn() -> ::core::result::Result<u32, Errors<&'static str>> {
    let t = spawn!(async { ::core::result::Result::Ok(1) }, shield);
    let v = t.await;
    n.cancel();
    ::core::result::Result::Ok(v)
}

#[nursery(n, local)]
async fn local_fn() -> ::core::option::Option<u8> {
    let _ = n;
    ::core::option::Option::Some(spawn!(async { 2u8 }).await)
}

#[test]
fn expansions_are_lint_clean() {
    ::futures::executor::block_on(unit_fn());
    ::core::assert_eq!(::futures::executor::block_on(errors_fn()).unwrap(), 1);
    ::core::assert_eq!(
        ::futures::executor::block_on(local_fn()),
        ::core::option::Option::Some(2)
    );
}
