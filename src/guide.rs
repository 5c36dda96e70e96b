//! Recipes: one short, runnable answer per question a new user asks, then
//! how code written with the peers (`JoinSet`, `TaskTracker` +
//! `CancellationToken`, moro, trio, anyio, asyncio) reads here.
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
//! [`Task::result`](crate::Task::result) gives each child's value or its
//! failure (claimed: it cancels nobody); a `FuturesUnordered` of them gives
//! them as they finish — tokio's `JoinSet::join_next`.
//!
//! ```
//! use futures::stream::{FuturesUnordered, StreamExt};
//! use nursery::{Errors, nursery, spawn};
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
//! async fn fastest_first() -> Result<Vec<String>, Errors<String>> {
//!     let mut results: FuturesUnordered<_> = [3u32, 1, 2]
//!         .into_iter()
//!         .map(|n| spawn!(async move {
//!             for _ in 0..n {
//!                 step().await; // work that takes n steps
//!             }
//!             if n == 2 { Err(format!("job {n} failed")) } else { Ok(n) }
//!         }).result())
//!         .collect();
//!     let mut seen = Vec::new();
//!     while let Some(result) = results.next().await {
//!         seen.push(match result {
//!             Ok(n) => format!("job {n}"),
//!             Err(failure) => failure.to_string(),
//!         });
//!     }
//!     Ok(seen)
//! }
//!
//! let seen = futures::executor::block_on(fastest_first()).unwrap();
//! assert_eq!(seen, ["job 1", "job 2 failed", "job 3"]);
//! ```
//!
//! # Run every child and collect every outcome (no fail-fast)
//!
//! `#[nursery(supervise)]`: a failing child cancels nobody; every failure
//! — panics included, as [`Failure`](crate::Failure)s carrying their
//! payload — comes back in [`Errors`](crate::Errors) at the end.
//!
//! ```
//! use nursery::{Errors, nursery, spawn};
//!
//! #[nursery(supervise)]
//! async fn check(hosts: &[&'static str]) -> Result<(), Errors<String>> {
//!     for &host in hosts {
//!         spawn!(async move {
//!             if host.starts_with("down") { Err(format!("{host} is down")) } else { Ok(()) }
//!         }, name = host);
//!     }
//!     Ok(())
//! }
//!
//! let errors = futures::executor::block_on(check(&["a", "down-1", "b", "down-2"])).unwrap_err();
//! let failed: Vec<_> = errors.failures().map(|f| f.name().unwrap().to_owned()).collect();
//! assert_eq!(failed, ["down-1", "down-2"]);
//! ```
//!
//! # Handle each failure as it happens (a server)
//!
//! `#[nursery(supervise = handler)]`: each child's failure, a panic
//! included, goes to `handler` and is not kept, so a server runs forever
//! in constant memory; one bad connection never takes it down. The
//! `kv_server` example is a whole server built this way.
//!
//! ```
//! use nursery::{Errors, Failure, nursery, spawn};
//! use std::sync::Mutex;
//!
//! #[nursery(supervise = |failure: Failure<std::io::Error>| log.lock().unwrap().push(failure.to_string()))]
//! async fn serve(log: &Mutex<Vec<String>>) -> Result<(), Errors<std::io::Error>> {
//!     spawn!(async { Err::<(), _>(std::io::Error::other("reset by peer")) }, name = "conn 1");
//!     spawn!(async { panic!("bad frame") }, name = "conn 2");
//!     spawn!(async { Ok(()) }, name = "conn 3");
//!     Ok(())
//! }
//!
//! let log = Mutex::new(Vec::new());
//! futures::executor::block_on(serve(&log)).unwrap();
//! assert_eq!(log.into_inner().unwrap(), [
//!     "child `conn 1` of nursery `serve` failed: reset by peer",
//!     "child `conn 2` of nursery `serve` panicked: bad frame",
//! ]);
//! ```
//!
//! # Shut a server down on a signal, with a grace period
//!
//! `cancel_on = FUT` cancels the nursery when `FUT` completes (Ctrl-C:
//! `tokio::signal::ctrl_c()`); `grace = DUR` gives the children that long to
//! finish — they see [`cancelled`](crate::Nursery::cancelled) (or their
//! [`CancelToken`](crate::CancelToken)) — before the rest is dropped.
//!
#![cfg_attr(feature = "tokio", doc = "```")]
#![cfg_attr(not(feature = "tokio"), doc = "```ignore")]
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! use nursery::{nursery, spawn};
//! use std::time::Duration;
//! use tokio::sync::oneshot;
//!
//! #[nursery(n, cancel_on = shutdown, grace = Duration::from_secs(5))]
//! async fn serve(shutdown: oneshot::Receiver<()>, said_bye: &std::sync::atomic::AtomicBool) {
//!     spawn!(async {
//!         n.cancelled().await; // the signal came: finish up within the grace period
//!         said_bye.store(true, std::sync::atomic::Ordering::SeqCst);
//!     }, name = "connection");
//!     std::future::pending::<()>().await // the accept loop, until the signal
//! }
//!
//! let (stop, shutdown) = oneshot::channel();
//! let said_bye = std::sync::atomic::AtomicBool::new(false);
//! tokio::join!(serve(shutdown, &said_bye), async { stop.send(()).unwrap() });
//! assert!(said_bye.into_inner());
//! # }
//! ```
//!
//! # An object that owns a background task
//!
//! Two forms (the `heartbeat` example runs both over TCP). The object is
//! handed the nursery: its heartbeat lives as long as the nursery, and is
//! cancelled once everything else is done (`background`). A `Send`
//! background task goes into a nursery of any kind with
//! [`Builder::spawn_send`](crate::Builder::spawn_send).
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
//!
//! Or a fn opens it for its caller, runs the caller's work with it, and
//! closes it — heartbeat included — when that work is done:
//!
//! ```
//! use nursery::{Errors, nursery, spawn};
//! use std::sync::atomic::{AtomicU32, Ordering};
//!
//! struct Conn {
//!     requests: AtomicU32,
//! }
//!
//! impl Conn {
//!     async fn open() -> std::io::Result<Conn> {
//!         Ok(Conn { requests: AtomicU32::new(0) }) // connect, handshake…
//!     }
//!     async fn heartbeat(&self) {
//!         std::future::pending::<()>().await // a ping every few seconds
//!     }
//! }
//!
//! /// Opens a connection, runs `work` with it, closes it.
//! #[nursery]
//! async fn with_conn<R>(work: impl AsyncFnOnce(&Conn) -> R) -> Result<R, Errors<std::io::Error>> {
//!     let conn = Conn::open().await?; // before the nursery opens: children may borrow it
//!     spawn!(conn.heartbeat(), background); // as long as `work` runs
//!     Ok(work(&conn).await)
//! }
//!
//! let n = futures::executor::block_on(with_conn(async |c: &Conn| {
//!     c.requests.fetch_add(1, Ordering::SeqCst) + 1
//! }));
//! assert_eq!(n.unwrap(), 1);
//! ```
//!
//! # Coming from another library
//!
//! The same program — start two jobs, the first failure cancels the other,
//! wait for both — in each peer, and here:
//!
//! | peer | theirs | here |
//! | --- | --- | --- |
//! | tokio `JoinSet` | `set.spawn(a); set.spawn(b); while let Some(r) = set.join_next().await { r??; }` (an `Err` does not cancel the rest: `set.abort_all()` by hand; a panic is a `JoinError`) | `spawn!(a); spawn!(b);` in a `#[nursery]` fn: the first failure cancels, every error is returned, a panic resumes; `join_next` is [`Task::result`](crate::Task::result) in a `FuturesUnordered` |
//! | tokio-util `TaskTracker` + `CancellationToken` | `tracker.spawn(token.run_until_cancelled(a)); …; token.cancel(); tracker.close(); tracker.wait().await` | the nursery is the tracker and the token: `n.cancel()`, `#[nursery(cancel_on = …, grace = …)]`; it always waits for its children |
//! | moro | `moro::async_scope!(\|s\| { s.spawn(a); s.spawn(b).await })` | `#[nursery]` or `scope!(\|n\| async { spawn!(a); spawn!(b).await })`; `scope.terminate(v)` is `n.cancel()` with the body's cancel value |
//! | trio | `async with trio.open_nursery() as n: n.start_soon(a); n.start_soon(b)` | `#[nursery] async fn f() { spawn!(a()); spawn!(b()); }`; `await n.start(f)` is `start!(\|status\| f(status))`; `trio.move_on_after` is [`move_on_after`](crate::move_on_after) |
//! | anyio | `async with anyio.create_task_group() as tg: tg.start_soon(a)`; `CapacityLimiter(8)` | the same as trio; the limiter is `#[nursery(limit = 8)]` |
//! | asyncio `TaskGroup` | `async with asyncio.TaskGroup() as tg: ta = tg.create_task(a())` then `ta.result()` | `let ta = spawn!(a()); ta.await` (only inside the nursery: a handle cannot outlive it) |
//!
//! The same program, here:
//!
//! ```
//! use nursery::{Errors, nursery, spawn};
//!
//! async fn a() -> Result<u32, String> { Ok(1) }
//! async fn b() -> Result<u32, String> { Err("b failed".to_owned()) }
//!
//! #[nursery]
//! async fn both() -> Result<u32, Errors<String>> {
//!     let ta = spawn!(a());
//!     let tb = spawn!(b()); // fails: `ta` (if still running) and the body are cancelled
//!     Ok(ta.await + tb.await)
//! }
//!
//! let errors = futures::executor::block_on(both()).unwrap_err();
//! assert_eq!(errors.to_string(), "b failed");
//! ```
//!
//! ## From `JoinSet`
//!
//! `set.spawn(f)` + `set.join_next()` is `spawn!(f).result()` in a
//! `FuturesUnordered`; dropping the `JoinSet` aborts the tasks, leaving the
//! nursery drops its children — but a nursery also waits for them, and a
//! failure nobody reads is never lost.
//!
//! ```
//! use futures::stream::{FuturesUnordered, StreamExt};
//! use nursery::{Errors, nursery, spawn};
//!
//! #[nursery]
//! async fn sum() -> Result<u32, Errors<String>> {
//!     let mut set: FuturesUnordered<_> = (1..=3u32).map(|i| spawn!(async move { Ok(i) }).result()).collect();
//!     let mut total = 0;
//!     while let Some(joined) = set.next().await {
//!         total += joined.map_err(|failure| failure.to_string())?; // `?` adds to `Errors`
//!     }
//!     Ok(total)
//! }
//!
//! assert_eq!(futures::executor::block_on(sum()).unwrap(), 6);
//! ```
//!
//! ## From `TaskTracker` + `CancellationToken`
//!
//! The nursery is both: [`Nursery::cancel_token`](crate::Nursery::cancel_token)
//! is an owned token for code that cannot borrow the nursery (another
//! thread, a `parallel` child), and the nursery always waits
//! (`tracker.close(); tracker.wait().await` is the end of the fn).
//!
//! ```
//! use nursery::{nursery, spawn};
//!
//! #[nursery(n)]
//! async fn run() {
//!     let token = n.cancel_token();
//!     spawn!(async move { token.cancelled().await }); // `token.run_until_cancelled(…)`
//!     spawn!(async { n.cancel() }); // `token.cancel()`
//! }
//!
//! futures::executor::block_on(run()); // returns once both are done
//! ```
//!
//! ## From moro
//!
//! `moro::async_scope!(|scope| …)` is `scope!(|n| async { … })`;
//! `scope.terminate(value)` is `n.cancel()` with the body's cancel value
//! (see [`Nursery::cancel`](crate::Nursery::cancel)).
//!
//! ```
//! use nursery::{Errors, scope, spawn};
//!
//! let data = vec![1, 2, 3];
//! let sum: Result<i32, Errors<std::io::Error>> = futures::executor::block_on(scope!(|n| async {
//!     let halves = spawn!(async { data[..2].iter().sum::<i32>() });
//!     let rest = spawn!(async { data[2..].iter().sum::<i32>() });
//!     let _ = n;
//!     Ok(halves.await + rest.await)
//! }));
//! assert_eq!(sum.unwrap(), 6);
//! ```
//!
//! ## From trio
//!
//! `async with trio.open_nursery() as nursery:` is a `#[nursery]` fn;
//! `nursery.start_soon(f)` is `spawn!(f())`; `await nursery.start(f)` is
//! `start!(|status| f(status))`; `nursery.cancel_scope.cancel()` is
//! `n.cancel()`; exception groups are [`Errors`](crate::Errors).
//!
//! ```
//! use nursery::{nursery, start, TaskStatus};
//!
//! async fn listen(status: TaskStatus<u16>) {
//!     status.started(8080); // `task_status.started(port)`
//!     std::future::pending::<()>().await
//! }
//!
//! #[nursery(n)]
//! async fn run() -> u16 {
//!     let port = start!(|status| listen(status));
//!     n.cancel();
//!     port
//! }
//!
//! assert_eq!(futures::executor::block_on(run()), 8080);
//! ```
//!
//! ## From anyio
//!
//! A task group is a nursery, as in trio; a `CapacityLimiter(2)` shared by
//! its tasks is `#[nursery(limit = 2)]` (see "Limit how many children run
//! at once" above); `anyio.fail_after` is [`fail_after`](crate::fail_after).
//!
//! ```
//! use nursery::{nursery, spawn};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! #[nursery(limit = 2)]
//! async fn crawl(running: &AtomicUsize, most: &AtomicUsize) {
//!     for _ in 0..6 {
//!         spawn!(async {
//!             most.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
//!             running.fetch_sub(1, Ordering::SeqCst);
//!         });
//!     }
//! }
//!
//! let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
//! futures::executor::block_on(crawl(&running, &most));
//! assert!(most.into_inner() <= 2);
//! ```
//!
//! ## From asyncio's `TaskGroup`
//!
//! `async with asyncio.TaskGroup() as tg:` is a `#[nursery]` fn;
//! `task = tg.create_task(coro())` is `let task = spawn!(coro())`, and
//! `task.result()` after the block is the value returned from the body (a
//! handle cannot outlive its nursery). Where asyncio raises an
//! `ExceptionGroup`, the fn returns [`Errors`](crate::Errors); where it
//! silently drops the exception of a task cancelled by a sibling's failure,
//! `Errors` keeps every failure that happened.
//!
//! ```
//! use nursery::{Errors, nursery, spawn};
//!
//! #[nursery]
//! async fn fetch() -> Result<(u8, u8), Errors<String>> {
//!     let one = spawn!(async { Ok(1u8) });
//!     let two = spawn!(async { Ok(2u8) });
//!     Ok((one.await, two.await))
//! }
//!
//! assert_eq!(futures::executor::block_on(fetch()).unwrap(), (1, 2));
//! ```
