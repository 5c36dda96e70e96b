//! Recipes: one short, runnable answer per question a new user asks.
//!
//! (More recipes — every outcome without fail-fast, shutdown on a signal,
//! moving from `JoinSet`, moro, trio, anyio and asyncio — come with the
//! supervise policy.)
//!
//! # Cancel one child
//!
//! [`Task::cancel`](crate::Task::cancel): that child alone; not a failure;
//! [`try_join`](crate::Task::try_join) gives `None`.
//!
//! ```
//! use nursery::{nursery, spawn};
//!
//! #[nursery]
//! async fn run() -> Option<u32> {
//!     let slow = spawn!(std::future::pending::<u32>());
//!     slow.cancel();
//!     slow.try_join().await
//! }
//!
//! assert_eq!(futures::executor::block_on(run()), None);
//! ```
//!
//! # Put a timeout on one child
//!
//! `timeout = DUR` cancels it (not a failure); `fail_after = DUR` makes it
//! fail with `E::from(TimedOut)`. (Deadlines need a timer: tokio's, with
//! the `tokio` feature, or one given to `nursery::set_timer`.)
//!
#![cfg_attr(feature = "tokio", doc = "```")]
#![cfg_attr(not(feature = "tokio"), doc = "```ignore")]
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! use nursery::{nursery, spawn};
//! use std::time::Duration;
//!
//! #[nursery]
//! async fn lookup() -> Option<&'static str> {
//!     let slow = async {
//!         tokio::time::sleep(Duration::from_secs(5)).await;
//!         "found"
//!     };
//!     spawn!(slow, timeout = Duration::from_secs(1)).try_join().await
//! }
//!
//! assert_eq!(lookup().await, None);
//! # }
//! ```
//!
//! # Limit how many children run at once
//!
//! `#[nursery(limit = N)]`; `n.admit().await` before a spawn applies
//! backpressure to a producer loop.
//!
//! ```
//! use nursery::{nursery, spawn};
//!
//! #[nursery(n, limit = 2)]
//! async fn process(jobs: Vec<u32>) -> u32 {
//!     let mut handles = Vec::new();
//!     for job in jobs {
//!         n.admit().await; // at most 2 in flight
//!         handles.push(spawn!(async move { job * 10 }));
//!     }
//!     let mut sum = 0;
//!     for handle in handles {
//!         sum += handle.await;
//!     }
//!     sum
//! }
//!
//! assert_eq!(futures::executor::block_on(process(vec![1, 2, 3])), 60);
//! ```
//!
//! # Race children: the first success wins
//!
//! [`Race`](crate::Race): the first attempt to succeed cancels the rest;
//! when all fail, every failure comes back.
//!
//! ```
//! use nursery::{nursery, spawn, Race};
//!
//! #[nursery(n)]
//! async fn fetch(race: &Race<&'static str, &'static str>) {
//!     spawn!(race.attempt(n, "primary", async { Err("primary is down") }));
//!     spawn!(race.attempt(n, "mirror", async { Ok("page") }));
//! }
//!
//! let race = Race::new();
//! futures::executor::block_on(fetch(&race));
//! assert_eq!(race.finish().unwrap(), "page");
//! ```
//!
//! # Take results in completion order
//!
//! Task handles are futures: put them in a `FuturesUnordered`.
//!
//! ```
//! use futures::stream::{FuturesUnordered, StreamExt};
//! use nursery::{nursery, spawn};
//!
//! /// One step of work: yields once to the executor.
//! async fn step() {
//!     let mut done = false;
//!     std::future::poll_fn(|cx| {
//!         if done {
//!             return std::task::Poll::Ready(());
//!         }
//!         done = true;
//!         cx.waker().wake_by_ref();
//!         std::task::Poll::Pending
//!     })
//!     .await
//! }
//!
//! #[nursery]
//! async fn fastest_first() -> Vec<u32> {
//!     let handles: FuturesUnordered<_> = [3u32, 1, 2]
//!         .into_iter()
//!         .map(|n| spawn!(async move {
//!             for _ in 0..n {
//!                 step().await; // work that takes n steps
//!             }
//!             n
//!         }))
//!         .collect();
//!     handles.collect().await
//! }
//!
//! assert_eq!(futures::executor::block_on(fastest_first()), [1, 2, 3]);
//! ```
//!
//! # An object that owns a background task
//!
//! Hand it the nursery: its heartbeat lives as long as the nursery, and is
//! cancelled once everything else is done (`background`).
//!
//! ```
//! use nursery::{Nursery, nursery, spawn};
//! use std::sync::atomic::{AtomicU32, Ordering};
//!
//! struct Conn<'a> {
//!     beats: &'a AtomicU32,
//! }
//!
//! impl<'a> Conn<'a> {
//!     fn open<'scope>(n: &Nursery<'scope, std::convert::Infallible>, beats: &'scope AtomicU32) -> Conn<'scope> {
//!         n.builder().background().spawn(async move {
//!             beats.fetch_add(1, Ordering::SeqCst);
//!             std::future::pending::<()>().await
//!         });
//!         Conn { beats }
//!     }
//! }
//!
//! #[nursery(n)]
//! async fn session(beats: &AtomicU32) {
//!     let _conn = Conn::open(n, beats);
//!     spawn!(async { /* the session's work */ });
//! }
//!
//! let beats = AtomicU32::new(0);
//! futures::executor::block_on(session(&beats));
//! assert_eq!(beats.load(Ordering::SeqCst), 1);
//! ```
