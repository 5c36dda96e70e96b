//! Structured concurrency for async Rust, in the spirit of Python's trio
//! nurseries: every task has a parent scope, no task outlives its scope,
//! failures are never lost, and cancellation is reliable.
//!
//! ```
//! use nursery::{nursery, spawn, Errors};
//! use std::io;
//! # struct Conn;
//! # impl Conn {
//! #     async fn connect(_: &str) -> io::Result<Conn> { Ok(Conn) }
//! #     async fn heartbeat(&self) { std::future::pending::<()>().await }
//! #     async fn request(&self, _: &str) -> io::Result<()> { Ok(()) }
//! # }
//!
//! #[nursery]
//! async fn session(addr: &str) -> Result<(), Errors<io::Error>> {
//!     let conn = Conn::connect(addr).await?;      // before the nursery opens
//!     spawn!(conn.heartbeat(), background);       // borrows `conn`; lives exactly as long as the session
//!     conn.request("GET /a").await?;
//!     Ok(())
//! } // returns only once every child has finished; the first failure cancels the rest
//!
//! futures::executor::block_on(session("127.0.0.1:7878")).unwrap();
//! ```
//!
//! Many children, their values, every failure:
//!
//! ```
//! use nursery::{nursery, spawn, Errors};
//! use std::io;
//!
//! async fn fetch(url: &str) -> io::Result<usize> {
//!     Ok(url.len()) // a real client would go to the network
//! }
//!
//! #[nursery]
//! async fn fetch_all(urls: &[&str]) -> Result<Vec<usize>, Errors<io::Error>> {
//!     // children borrow `urls`; they start when the body next yields
//!     let handles: Vec<_> = urls.iter().map(|u| spawn!(fetch(u))).collect();
//!     let mut pages = Vec::new();
//!     for h in handles {
//!         pages.push(h.await); // a child's success value
//!     }
//!     Ok(pages)
//! }
//!
//! let pages = futures::executor::block_on(fetch_all(&["a", "bb"])).unwrap();
//! assert_eq!(pages, [1, 2]);
//! ```
//!
//! # The rules
//!
//! * **Join.** A nursery returns only when its body and every child have
//!   finished or been dropped. Dropping the nursery's future drops every
//!   child with it; no child is polled after its nursery returned. Leaking
//!   the future (`mem::forget`) leaks its children: a local child is never
//!   polled again; a `parallel` child, which owns all it uses, may run on
//!   to its end (leaking skips the drop that would have stopped it).
//! * **Borrowing.** Children may borrow the fn's arguments and every local
//!   the body declares before its nursery opens — its first `spawn!`,
//!   `start!` or use of `n`; those statements run before the nursery
//!   exists, and `?` and `return` there work as in any fn — as threads
//!   borrow what was declared before [`std::thread::scope`]. A local
//!   declared after that is a borrow error at its use: declare it earlier,
//!   or share it (`Arc`, `async move`). Children may spawn siblings, and a [`Nursery`] handle
//!   (`#[nursery(n)]`) can be given to an object that spawns its own
//!   children into it. Task and nursery handles cannot leave the nursery: a
//!   compile error.
//! * **Fail fast.** The first child (or body) that returns `Err` or panics
//!   cancels the body and every child that is not shielded; the nursery then
//!   returns [`Errors`] with that failure and every one that happened before
//!   all children were gone, in order. A panic resumes in the caller, with
//!   its payload, once every child is gone.
//! * **Supervise.** `#[nursery(supervise)]` turns fail-fast off: a child's
//!   failure cancels nobody, and every failure (panics included) is
//!   returned at the end; `supervise = handler` hands each to a handler as
//!   it happens; [`Task::result`] claims one child's failure for its caller.
//! * **Cancel.** [`Nursery::cancel`] stops everything; the nursery returns
//!   normally. `spawn!(fut, shield)` survives cancellation,
//!   `spawn!(fut, background)` is cancelled once everything else is done.
//!
//! # Errors
//!
//! The fn's declared return type decides how failures reach the caller:
//!
//! | declared | children fail with | the fn returns |
//! | --- | --- | --- |
//! | `Result<T, Errors<E>>` | `E` | every failure; the body's `?` on an `E` or on a nested nursery's `Errors<E>` adds to them |
//! | `Result<T, R>`, e.g. `anyhow::Result<T>`, `Result<T, Box<dyn Error + Send + Sync>>` | `R` | `R::from(Errors<R>)` |
//! | anything else, `()` included | nothing: a fallible child is a compile error | the body's value |
//!
//! [`scope!`] is a nursery as an expression, for code that is not a whole
//! fn: `scope!(|n| async { … })` is a future of `Result<T, Errors<E>>`.
//!
//! # Runtimes
//!
//! The core is runtime-agnostic: a nursery polls its children inside its own
//! task, so it runs on tokio (current-thread and multi-thread),
//! `futures::executor`, smol or any other executor. Its future is `Send`
//! whenever its body and children are; `#[nursery(local)]` accepts children
//! that are not `Send`.
//!
//! `spawn!(fut, parallel)` runs a `Send + 'static` child as a task of the
//! runtime instead, on any worker thread, keeping every promise (see
//! [`ParallelBuilder`]). It runs on a [`Spawner`]: with the `tokio` feature,
//! the current tokio runtime; any `futures::task::Spawn` given to
//! [`Nursery::set_spawner`] or [`set_spawner`]; with none,
//! [`SpawnError::NoSpawner`].
//!
//! # Coming from trio, asyncio, anyio or tokio
//!
//! | what | trio | asyncio / aionursery | anyio | tokio | nursery |
//! | --- | --- | --- | --- | --- | --- |
//! | a scope for children | `async with trio.open_nursery() as n:` | `async with asyncio.TaskGroup() as tg:` / `async with Nursery() as n:` | `async with create_task_group() as tg:` | `JoinSet::new()` (no scope) | [`#[nursery(n)]`](macro@nursery) on the fn, or [`scope!`]`(\|n\| async { … })` |
//! | start a child | `n.start_soon(f, x)` | `tg.create_task(f(x))` / `n.start_soon(f(x))` | `tg.start_soon(f, x)` | `set.spawn(f(x))` (`'static`) | [`spawn!`]`(f(&x))` (borrows), [`Nursery::spawn`] |
//! | a child on another core | `trio.to_thread.run_sync` | `loop.run_in_executor` | `to_thread.run_sync` | `set.spawn(f(x))` on a multi-thread runtime | `spawn!(f(x), parallel)` (`Send + 'static`) |
//! | its result | — (use a channel) | `await task` | — | `set.join_next().await` | `spawn!(…).await` ([`Task`]) |
//! | start and wait until ready | `await n.start(f)` + `task_status.started(v)` | — | `await tg.start(f)` | — | [`start!`]`(\|status\| f(status))` + [`TaskStatus::started`] |
//! | first failure cancels the rest | yes | yes | yes | no: abort by hand | yes |
//! | all the failures | `ExceptionGroup` | `ExceptionGroup` / `MultiError` | `ExceptionGroup` | one `JoinError` at a time | [`Errors<E>`](Errors), in order, with names |
//! | cancel everything | `n.cancel_scope.cancel()` | `tg` raises / `n.cancel()`-like | `tg.cancel_scope.cancel()` | `set.abort_all()` | [`Nursery::cancel`] |
//! | a cancellable section | `with trio.CancelScope() as s:` | `asyncio.timeout()` (deadlines only) | `with CancelScope() as s:` | `CancellationToken` + `select!` | [`CancelScope::run`] |
//! | shield a section | `CancelScope(shield=True)` | `asyncio.shield(…)` | `CancelScope(shield=True)` | — | [`CancelScope::shielded`], `spawn!(…, shield)` |
//! | deadlines | `move_on_after`, `fail_after` | `asyncio.timeout` | `move_on_after`, `fail_after` | `tokio::time::timeout` | [`move_on_after`], [`fail_after`], `#[nursery(timeout = …)]` |
//! | react to cancellation, clean up | `except Cancelled:` + shielded cleanup | `except CancelledError:` | `except get_cancelled_exc_class():` | `token.cancelled().await` | [`Nursery::cancelled`], [`CancelToken::cancelled`] (parallel children), `#[nursery(grace = …)]` |
//! | a task that lives as long as its owner | pass the nursery in | pass the task group in | pass the task group in | `TaskTracker` + a token | `spawn!(heartbeat(), background)`, or hand `&Nursery` to the object |
//! | wait for everything | leaving the `async with` | leaving the `async with` | leaving the `async with` | `while set.join_next().await…` / `tracker.wait()` | the fn returns (always) |
//!
//! Differences to keep in mind: a Rust future is cancelled by being dropped,
//! so cancellation takes effect at the child's next `.await` (trio's next
//! checkpoint), and code that is not awaiting cannot be interrupted; children
//! run inside the nursery's own task, so they can borrow the fn's arguments,
//! and use one thread between them; `parallel` children use every worker but
//! cannot borrow (the scoped-task trilemma: of concurrency, parallelism and
//! borrowing, a sound async API gets two).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod guide;

#[doc(inline)]
pub use nursery_core::{
    Admit, Builder, CancelOn, CancelScope, CancelToken, Cancelled, Closed, Errors, Failure,
    HasOutput, Iter, Kind, Local, Never, Nursery, Outcome, ParallelBuilder, ParallelTask, Race,
    Run, Sendable, Sleep, SpawnError, Spawner, SpawnerAlreadySet, Started, Task, TaskResult,
    TaskStatus, TimedOut, Timer, TimerAlreadySet, TokenCancelled, TryJoin, fail_after, fail_at,
    kind, move_on_after, move_on_at, set_spawner, set_timer,
};

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
#[doc(inline)]
pub use nursery_core::TokioTimer;

#[cfg(feature = "task-tree")]
#[cfg_attr(docsrs, doc(cfg(feature = "task-tree")))]
#[doc(inline)]
pub use nursery_core::{ChildSnapshot, NurserySnapshot, TaskTree, task_tree};

/// Turns the body of an `async fn` into a nursery.
///
/// `#[nursery]` works on free fns, methods (`self`, `&self`, `&mut self`),
/// generic fns, fns with `impl Trait` arguments and explicit lifetimes, and
/// trait impl methods; written above `#[tokio::main]` or `#[tokio::test]` it
/// composes with them. Arguments:
///
/// * `#[nursery(n)]` binds `n: &Nursery<'_, E>` (a shared reference, `Copy`)
///   to cancel the nursery or hand it to an object that spawns into it;
/// * `#[nursery(local)]` accepts children that are not `Send` (the fn's
///   future is then not `Send` either);
/// * `#[nursery(timeout = DUR)]`: a deadline over the whole nursery,
///   counted from the fn's first poll. When it passes, the nursery is
///   cancelled and the fn returns `Err` with `E::from(TimedOut)` among its
///   failures (named `timeout`), so `E: From<`[`TimedOut`]`>` and the fn
///   must return a `Result`. `Duration::MAX` means never;
/// * `#[nursery(grace = DUR)]`: cancelled children get `DUR` to clean up
///   (they see [`Nursery::cancelled`] and their cancel token fire, and the
///   errors they return are kept) before they are dropped; the body is
///   interrupted at once. Without it, cancelled children are dropped at
///   once. `Duration::MAX` waits until every child ends by itself.
/// * `#[nursery(limit = N)]`: at most `N` children run at once; later ones
///   wait, unpolled, in order (see [`Nursery::set_limit`] and
///   [`Nursery::admit`]);
/// * `#[nursery(supervise)]`: a child's failure (an `Err` or a panic)
///   cancels nobody; every failure is returned in [`Errors`] at the end
///   (see [`Nursery::supervise`]);
/// * `#[nursery(supervise = handler)]`: the same, but each child failure is
///   handed to `handler: FnMut(`[`Failure`]`<E>)` as it happens and not
///   kept (see [`Nursery::supervise_with`]);
/// * `#[nursery(cancel_on = FUT)]`: the nursery is cancelled (with its
///   grace period) when `FUT` completes — a shutdown signal (see
///   [`Nursery::cancel_on`]).
///
/// Arguments combine in any order:
/// `#[nursery(n, local, supervise, limit = …, timeout = …, grace = …, cancel_on = …)]`.
/// [`scope!`] takes the same ones (but the handle name) before its closure.
///
/// Inside the body, [`spawn!`] starts children — in statements,
/// expressions, closures, loops, nested async blocks, children's own async
/// blocks, and the arguments of other macros (`vec!`, `tokio::select!`),
/// but not in nested `fn` items, which have no nursery.
///
/// # Examples
///
/// ```
/// use nursery::{nursery, spawn, Errors};
///
/// #[derive(Debug, PartialEq)]
/// struct SmsFailed;
///
/// #[nursery]
/// async fn checkout(paid: &std::sync::atomic::AtomicBool) -> Result<(), Errors<SmsFailed>> {
///     spawn!(async move {
///         paid.store(true, std::sync::atomic::Ordering::SeqCst);
///         Ok(())
///     }, shield, name = "payment");
///     spawn!(async { Err::<(), _>(SmsFailed) }, name = "sms");
///     Ok(())
/// }
///
/// let paid = std::sync::atomic::AtomicBool::new(false);
/// let errors = futures::executor::block_on(checkout(&paid)).unwrap_err();
/// assert_eq!(errors.into_vec(), [SmsFailed]);
/// assert!(paid.load(std::sync::atomic::Ordering::SeqCst)); // shielded: it completed
/// ```
///
/// # Panics
///
/// Resumes the first panic of the body or a child, with its payload, once
/// every child is gone. Panics if the nursery is cancelled (by
/// [`Nursery::cancel`]) while a body whose value is not `()` or `Option<_>`
/// is still running; such a body finishes with a value by calling `cancel()`
/// and returning before its next `.await`.
pub use nursery_macros::nursery;

/// Starts a child inside a [`#[nursery]`](macro@nursery) body and returns
/// its [`Task`] handle.
///
/// `spawn!(fut)`, or with options: `spawn!(fut, name = "…")`,
/// `spawn!(fut, shield)`, `spawn!(fut, background)`. The child may return
/// `()`, any value, or `Result<T, E>` (only `Err` is a failure); awaiting
/// its handle yields the success value. The child starts when the spawner
/// next yields. Outside a `#[nursery]` body `spawn!` is a compile error that
/// says so; there, call [`Nursery::spawn`].
///
/// * `name = "…"`: shown with the child's errors.
/// * `shield`: not cancelled when a sibling fails or the nursery is
///   cancelled; the nursery waits for it.
/// * `background`: cancelled once the body and every other child have
///   finished (a heartbeat).
/// * `parallel`: runs as a task of the runtime, on another worker thread
///   (the child must be `Send + 'static`; see [`ParallelBuilder`]). It gives
///   a [`Task`] like any spawn; with no spawner known it panics with a
///   message that says how to give one (`n.builder().parallel().try_spawn`
///   gives a [`SpawnError`] instead). `parallel = BOOL` chooses at run time
///   (either way the child must be `Send + 'static`; see
///   [`Builder::parallel_if`]).
/// * `timeout = DUR` / `deadline = INSTANT`: the child is cancelled when
///   `DUR` has passed since its first poll, or at `INSTANT` — not a
///   failure: it ends without a value (`try_join` gives `None`), like
///   [`Task::cancel`] (see [`Builder::timeout`]).
/// * `fail_after = DUR`: the child fails with `E::from(TimedOut)` when
///   `DUR` has passed since its first poll. One deadline per child.
///
/// # Examples
///
/// ```
/// use nursery::{nursery, spawn};
///
/// #[nursery]
/// async fn heartbeat_while_working(beats: &std::sync::atomic::AtomicU32) -> u32 {
///     spawn!(async move {
///         loop {
///             beats.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
///             futures::pending!();
///         }
///     }, background);
///     let work = spawn!(async { 6 * 7 });
///     work.await
/// } // the heartbeat is cancelled here
///
/// let beats = std::sync::atomic::AtomicU32::new(0);
/// assert_eq!(futures::executor::block_on(heartbeat_while_working(&beats)), 42);
/// ```
pub use nursery_macros::spawn;

/// trio's `nursery.start`: starts `f(status)` as a child and waits until it
/// calls [`TaskStatus::started`]; evaluates to that value.
///
/// `start!(|status| fut)`, with the options of [`spawn!`] after it
/// (`name = "…"`, `shield`, `background`). It awaits (like `futures::join!`),
/// so it is used in async code inside a [`#[nursery]`](macro@nursery) body or
/// a [`scope!`]; elsewhere, [`Nursery::start`]. The child keeps running in the
/// nursery after it started. A child that fails before it started fails the
/// nursery (which cancels the code waiting in `start!`); one that returns
/// without calling `started` is a bug, reported by a panic naming it, never
/// a hang; `started` takes `self`, so it cannot be called twice.
///
/// # Examples
///
/// ```
/// use nursery::{nursery, start, TaskStatus};
///
/// async fn listener(status: TaskStatus<u16>, served: &std::sync::atomic::AtomicBool) {
///     status.started(4000); // the port it bound
///     served.store(true, std::sync::atomic::Ordering::SeqCst); // goes on serving
/// }
///
/// #[nursery]
/// async fn run(served: &std::sync::atomic::AtomicBool) -> u16 {
///     start!(|status| listener(status, served), name = "listener")
/// }
///
/// let served = std::sync::atomic::AtomicBool::new(false);
/// assert_eq!(futures::executor::block_on(run(&served)), 4000);
/// assert!(served.load(std::sync::atomic::Ordering::SeqCst));
/// ```
pub use nursery_macros::start;

/// A nursery as an expression: `scope!(|n| async { … })` is a future of
/// `Result<T, Errors<E>>`, where the async block is the nursery's body.
///
/// It is [`#[nursery]`](macro@nursery) for a `-> Result<T, Errors<E>>` body,
/// without a fn: children may borrow the enclosing fn's locals (not the
/// block's own), [`spawn!`] works inside it, and `n` is a
/// `&Nursery<'_, E>`. `scope!(local, |n| async { … })` accepts children
/// that are not `Send`; every other argument of `#[nursery]` goes before
/// the closure too (`scope!(supervise, limit = 8, |n| async { … })`). The future is `Send` whenever its parts are, with no
/// box: stable Rust cannot yet bound the future of a higher-ranked async
/// closure by `Send` (rust-lang/rust#126350), which is why this is a macro
/// and not a function taking an async closure.
///
/// # Examples
///
/// ```
/// use nursery::{scope, spawn, Errors};
///
/// let words = vec!["structured".to_string(), "concurrency".to_string()];
/// let total = futures::executor::block_on(scope!(|n| async {
///     let lens: Vec<_> = words.iter().map(|w| spawn!(async move { w.len() })).collect();
///     let mut total = 0;
///     for len in lens {
///         total += len.await;
///     }
///     n.cancel(); // nothing left to cancel; the value is returned as usual
///     Ok::<_, Errors<std::io::Error>>(total)
/// }));
/// assert_eq!(total.unwrap(), 21);
/// ```
pub use nursery_macros::scope;

#[doc(hidden)]
pub use nursery_core::__private;
