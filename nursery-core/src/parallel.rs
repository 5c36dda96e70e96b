//! `parallel` children: a child that runs as a runtime task on another worker
//! thread, tracked in its nursery through a local stand-in (its *proxy*).
//!
//! The child's future lives in an allocation shared by the two sides:
//!
//! * the runtime task ([`Remote`]'s task side) polls it under a mutex, with
//!   panics caught, and stores the output for the proxy;
//! * the proxy is an ordinary local child of the nursery: it completes with
//!   the child's output (so errors, panics, names, handles, `shield` and
//!   `background` work as for any child), and when the nursery drops it —
//!   cancellation, the drop of the whole nursery future — it takes the
//!   child's future out of the mutex and drops it *before the drop returns*.
//!   If a worker is polling the child at that moment, the drop waits for
//!   that poll to end. So no parallel child outlives its nursery, not even by
//!   one poll; the runtime task, which then holds nothing of the child's, is
//!   woken and ends at its next poll.
//!
//! One `unsafe` line: the child's future sits inline in the shared
//! allocation, behind the mutex, and is polled pinned there (the `SAFETY`
//! comment in `RemoteTask::poll` says why it never moves).

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use crate::outcome::Outcome;
use crate::sync::lock;

use crate::sync::shim as shared;
use shared::{AtomicBool, AtomicWaker, Ordering};

/// Where `parallel` children run: something that starts a `Send + 'static`
/// task on a runtime's worker threads.
///
/// Provided: every [`futures::task::Spawn`](futures_task::Spawn) (such
/// as `futures::executor::ThreadPool`), and — with the `tokio` feature —
/// the tokio runtime the nursery runs on, found without any set-up. Give a
/// nursery another one with [`Nursery::set_spawner`](crate::Nursery::set_spawner),
/// or the whole process with [`set_spawner`].
///
/// # Examples
///
/// ```
/// use nursery::{nursery, spawn};
///
/// #[nursery(n)]
/// async fn sum(pool: futures::executor::ThreadPool) -> Result<u64, nursery::Errors<nursery::SpawnError>> {
///     n.set_spawner(pool);
///     let a = spawn!(async { (1..=1000u64).sum::<u64>() }, parallel);
///     let b = spawn!(async { (1001..=2000u64).sum::<u64>() }, parallel);
///     Ok(a.await + b.await)
/// }
///
/// let pool = futures::executor::ThreadPool::new().unwrap();
/// assert_eq!(futures::executor::block_on(sum(pool)).unwrap(), 2001000);
/// ```
pub trait Spawner: Send + Sync + 'static {
    /// Starts `task` on the runtime. The task is the child, wrapped: the
    /// runtime polls it until it completes and then drops it.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Rejected`] if the runtime will not run it (it shut
    /// down).
    fn spawn(&self, task: ParallelTask) -> Result<(), SpawnError>;
}

impl<S> Spawner for S
where
    S: futures_task::Spawn + Send + Sync + 'static,
{
    fn spawn(&self, task: ParallelTask) -> Result<(), SpawnError> {
        self.spawn_obj(futures_task::FutureObj::new(task.0))
            .map_err(|e| SpawnError::Rejected(e.to_string().into()))
    }
}

/// A `parallel` child, wrapped for a [`Spawner`]: a `Send + 'static` future
/// of `()`.
///
/// # Examples
///
/// ```
/// use nursery::{ParallelTask, SpawnError, Spawner};
///
/// /// Runs every parallel child on a thread of its own.
/// struct ThreadPerTask;
///
/// impl Spawner for ThreadPerTask {
///     fn spawn(&self, task: ParallelTask) -> Result<(), SpawnError> {
///         std::thread::spawn(move || futures::executor::block_on(task));
///         Ok(())
///     }
/// }
///
/// #[nursery::nursery(n)]
/// async fn run() -> Result<u32, nursery::Errors<SpawnError>> {
///     n.set_spawner(ThreadPerTask);
///     let task = nursery::spawn!(async { 6 * 7 }, parallel);
///     Ok(task.await)
/// }
///
/// assert_eq!(futures::executor::block_on(run()).unwrap(), 42);
/// ```
#[must_use = "a spawner must run the task it is given"]
pub struct ParallelTask(Pin<Box<dyn Future<Output = ()> + Send + 'static>>);

impl Future for ParallelTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for ParallelTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParallelTask").finish_non_exhaustive()
    }
}

static SPAWNER: OnceLock<Arc<dyn Spawner>> = OnceLock::new();

/// Sets the process-wide spawner for `parallel` children, used by every
/// nursery that was not given one with
/// [`Nursery::set_spawner`](crate::Nursery::set_spawner). Done once; with
/// the `tokio` feature, there is no need on tokio (the current runtime is
/// used when no spawner is set).
///
/// # Errors
///
/// [`SpawnerAlreadySet`] if one was set before.
///
/// # Examples
///
/// ```standalone_crate
/// let pool = futures::executor::ThreadPool::new().unwrap();
/// nursery::set_spawner(pool).unwrap();
/// let out = futures::executor::block_on(nursery::scope!(|n| async {
///     let task = n.builder().parallel().spawn(async { Ok::<_, std::io::Error>(7) });
///     Ok(task.await)
/// }));
/// assert_eq!(out.unwrap(), 7);
/// ```
pub fn set_spawner(spawner: impl Spawner) -> Result<(), SpawnerAlreadySet> {
    SPAWNER
        .set(Arc::new(spawner))
        .map_err(|_| SpawnerAlreadySet)
}

/// The error of [`set_spawner`] when a spawner was set before.
///
/// # Examples
///
/// ```standalone_crate
/// let pool = futures::executor::ThreadPool::new().unwrap();
/// nursery::set_spawner(pool.clone()).unwrap();
/// assert_eq!(nursery::set_spawner(pool), Err(nursery::SpawnerAlreadySet));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnerAlreadySet;

impl fmt::Display for SpawnerAlreadySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a process-wide spawner for `parallel` children was already set")
    }
}

impl std::error::Error for SpawnerAlreadySet {}

/// Why a `parallel` child could not be started. The child was not started
/// (its future is dropped, never polled); nothing was added to the nursery.
///
/// It converts into `std::io::Error` (and, as a `std::error::Error`, into
/// `anyhow::Error` or a boxed error), so `try_spawn(…)?` works in most
/// bodies. `spawn!(fut, parallel)` panics with it instead, as `tokio::spawn`
/// does outside a runtime.
///
/// # Examples
///
/// ```
/// use nursery::{nursery, spawn, SpawnError};
///
/// // futures' `block_on` is not a runtime with worker threads, and no
/// // spawner was given: `parallel` says so instead of running the child.
/// #[nursery(n)]
/// async fn run() -> Result<(), nursery::Errors<SpawnError>> {
///     let err = n.builder().parallel().try_spawn(async {}).unwrap_err();
///     assert!(matches!(err, SpawnError::NoSpawner));
///     assert!(err.to_string().contains("set_spawner"));
///     Ok(())
/// }
///
/// futures::executor::block_on(run()).unwrap();
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SpawnError {
    /// No spawner is known: the nursery was not given one, none was set for
    /// the process, and (with the `tokio` feature) it is not running inside
    /// a tokio runtime.
    NoSpawner,
    /// The spawner refused the task (its runtime shut down).
    Rejected(Cow<'static, str>),
    /// The nursery has already finished.
    Closed,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NoSpawner => f.write_str(
                "no spawner for a `parallel` child: run the nursery inside a tokio runtime \
                 (with the `tokio` feature of `nursery`), or give it one with \
                 `Nursery::set_spawner` or `nursery::set_spawner` (any `futures::task::Spawn`, \
                 such as `futures::executor::ThreadPool`), or drop `parallel` to run the \
                 child in the nursery's own task",
            ),
            SpawnError::Rejected(why) => {
                write!(f, "the spawner refused the `parallel` child: {why}")
            }
            SpawnError::Closed => {
                f.write_str("the nursery has already finished: no child can be spawned into it")
            }
        }
    }
}

impl std::error::Error for SpawnError {}

impl From<crate::Closed> for SpawnError {
    fn from(_: crate::Closed) -> Self {
        SpawnError::Closed
    }
}

impl From<SpawnError> for std::io::Error {
    fn from(error: SpawnError) -> Self {
        std::io::Error::other(error)
    }
}

/// The spawner a nursery uses: its own, else the process's, else (feature
/// `tokio`) the current tokio runtime.
pub(crate) enum Chosen {
    Dyn(Arc<dyn Spawner>),
    #[cfg(feature = "tokio")]
    Tokio(tokio::runtime::Handle),
}

pub(crate) fn choose(own: Option<&Arc<dyn Spawner>>) -> Result<Chosen, SpawnError> {
    if let Some(own) = own.or_else(|| SPAWNER.get()) {
        return Ok(Chosen::Dyn(Arc::clone(own)));
    }
    #[cfg(feature = "tokio")]
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        return Ok(Chosen::Tokio(handle));
    }
    Err(SpawnError::NoSpawner)
}

/// What the two sides share: one allocation besides the runtime's task.
struct Remote<F: Future> {
    slot: shared::Mutex<Slot<F>>,
    /// Set (release) once the slot holds the output, under its lock; read
    /// without the lock by the proxy, so that polling a proxy whose child
    /// still runs never waits for a worker's poll.
    done: AtomicBool,
    /// The runtime task, to wake once the proxy dropped the future.
    task: AtomicWaker,
    /// The proxy, to wake when the output is in.
    proxy: AtomicWaker,
}

/// The child, then what became of it.
enum Slot<F: Future> {
    /// Pinned: never moved, only dropped in place (by assigning another
    /// variant over it).
    Running(F),
    Value(F::Output),
    Panicked(Box<dyn Any + Send>),
    /// The runtime dropped the task before the child completed.
    Abandoned,
    /// Dropped by the proxy (cancelled), or its output taken.
    Gone,
}

impl<F: Future> Slot<F> {
    /// Takes the output out; only when the child is no longer running (so
    /// nothing pinned is moved).
    fn take_output(&mut self) -> Slot<F> {
        debug_assert!(!matches!(self, Slot::Running(_)));
        if matches!(self, Slot::Running(_)) {
            return Slot::Gone;
        }
        std::mem::replace(self, Slot::Gone)
    }
}

/// The runtime task's side.
struct RemoteTask<F: Future>(shared::Arc<Remote<F>>);

impl<F> Future for RemoteTask<F>
where
    F: Future,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let remote = &*self.0;
        let mut slot = shared::lock(&remote.slot);
        let Slot::Running(fut) = &mut *slot else {
            return Poll::Ready(()); // cancelled by the proxy, or done
        };
        // SAFETY: the future lives inside an `Arc` (on the heap, never
        // moved: no `Arc` of a `Remote` is ever unwrapped), in a slot that
        // is only ever assigned over — which drops it in place — and never
        // moved out while `Running` (`take_output` refuses to). So it stays
        // at this address until it is dropped: it is pinned.
        #[allow(unsafe_code)]
        let fut = unsafe { Pin::new_unchecked(fut) };
        // Registered before the poll: a proxy that drops the future after we
        // release the lock finds this waker.
        remote.task.register(cx.waker());
        let out = match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(value)) => Slot::Value(value),
            Err(payload) => Slot::Panicked(payload),
        };
        remote.end(slot, out);
        Poll::Ready(())
    }
}

impl<F: Future> Drop for RemoteTask<F> {
    fn drop(&mut self) {
        // Dropped by the runtime before the child completed (it shut down):
        // the child goes now, and the proxy is told.
        let slot = shared::lock(&self.0.slot);
        if matches!(*slot, Slot::Running(_)) {
            self.0.end(slot, Slot::Abandoned);
        }
    }
}

impl<F: Future> Remote<F> {
    /// Ends the child on the runtime's side: drops its future here (a panic
    /// in its drop is its panic), stores `out`, and only then releases the
    /// slot and tells the proxy — so a proxy that finds the future gone
    /// always finds the output.
    fn end(&self, mut slot: shared::MutexGuard<'_, Slot<F>>, out: Slot<F>) {
        *slot = match catch_unwind(AssertUnwindSafe(|| *slot = Slot::Gone)) {
            Ok(()) => out,
            Err(payload) => Slot::Panicked(payload),
        };
        self.done.store(true, Ordering::Release);
        drop(slot);
        self.proxy.wake();
    }
}

/// Failures of parallel children that completed but were dropped before
/// the nursery polled their proxy (it was cancelling): the nursery adds them
/// to its errors before it returns.
pub(crate) type Late<E> = Mutex<Vec<(crate::outcome::Failed<E>, Option<Cow<'static, str>>)>>;

/// The nursery's side: a local child that completes with the parallel
/// child's output.
pub(crate) struct Proxy<F, E>
where
    F: Future,
    F::Output: Outcome<E>,
{
    remote: shared::Arc<Remote<F>>,
    name: Option<Cow<'static, str>>,
    late: Arc<Late<E>>,
    /// The output was taken: the child is over, nothing is left to do.
    taken: bool,
}

impl<F, E> Proxy<F, E>
where
    F: Future,
    F::Output: Outcome<E>,
{
    /// The output, once the child is done.
    fn take(&mut self) -> Option<F::Output> {
        if !self.remote.done.load(Ordering::Acquire) {
            return None;
        }
        self.taken = true;
        let out = shared::lock(&self.remote.slot).take_output();
        match out {
            Slot::Value(value) => Some(value),
            Slot::Panicked(payload) => resume_unwind(payload),
            Slot::Abandoned => panic!(
                "the runtime dropped parallel child {} before it completed (did the runtime shut \
                 down while the nursery was still running?)",
                self.name
                    .as_deref()
                    .map_or_else(|| "(unnamed)".to_owned(), |n| format!("`{n}`")),
            ),
            Slot::Running(_) | Slot::Gone => unreachable!("a proxy completes once"),
        }
    }
}

impl<F, E> Unpin for Proxy<F, E>
where
    F: Future,
    F::Output: Outcome<E>,
{
}

impl<F, E> Future for Proxy<F, E>
where
    F: Future,
    F::Output: Outcome<E>,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if let Some(out) = self.take() {
            return Poll::Ready(out);
        }
        self.remote.proxy.register(cx.waker());
        match self.take() {
            Some(out) => Poll::Ready(out),
            None => Poll::Pending,
        }
    }
}

impl<F, E> Drop for Proxy<F, E>
where
    F: Future,
    F::Output: Outcome<E>,
{
    fn drop(&mut self) {
        if self.taken {
            return; // completed, and its output was given to the nursery
        }
        // Waits for a poll in progress on a worker, then drops the child
        // here (in place): when this returns, the child is gone.
        let mut slot = shared::lock(&self.remote.slot);
        if matches!(*slot, Slot::Running(_)) {
            // Dropped in place; `Gone` is written even if its `Drop` panics,
            // and the runtime task is woken either way (it ends at its next
            // poll), before that panic goes on to the nursery.
            let dropped = catch_unwind(AssertUnwindSafe(|| *slot = Slot::Gone));
            drop(slot);
            self.remote.task.wake();
            if let Err(payload) = dropped {
                resume_unwind(payload);
            }
            return;
        }
        // It completed and nobody took its output: a failure or a panic that
        // happened is never lost.
        let out = slot.take_output();
        drop(slot);
        match out {
            Slot::Value(value) => {
                if let crate::outcome::End::Failed(error) = value.into_end() {
                    lock(&self.late).push((error, self.name.take()));
                }
            }
            Slot::Panicked(payload) if !std::thread::panicking() => resume_unwind(payload),
            _ => {}
        }
    }
}

/// Starts `fut` on `spawner`; the proxy to insert into the nursery.
pub(crate) fn start<F, E>(
    spawner: Chosen,
    fut: F,
    name: Option<Cow<'static, str>>,
    late: Arc<Late<E>>,
) -> Result<Proxy<F, E>, SpawnError>
where
    F: Future + Send + 'static,
    F::Output: Outcome<E> + Send + 'static,
{
    let (task, proxy) = pair(fut, name, late);
    match spawner {
        Chosen::Dyn(spawner) => spawner.spawn(ParallelTask(Box::pin(task)))?,
        #[cfg(feature = "tokio")]
        Chosen::Tokio(handle) => drop(handle.spawn(task)),
    }
    Ok(proxy)
}

/// A parallel child of a nursery with a limit: its runtime task starts at
/// the stand-in's first poll, that is when its turn comes, so that the
/// limit holds for it too.
pub(crate) struct Deferred<F, E>
where
    F: Future,
    F::Output: Outcome<E>,
{
    start: Option<DeferredStart<F, E>>,
    proxy: Option<Proxy<F, E>>,
}

type DeferredStart<F, E> = (Chosen, Box<F>, Option<Cow<'static, str>>, Arc<Late<E>>);

impl<F, E> Deferred<F, E>
where
    F: Future + Send + 'static,
    F::Output: Outcome<E> + Send + 'static,
{
    pub(crate) fn new(
        spawner: Chosen,
        fut: F,
        name: Option<Cow<'static, str>>,
        late: Arc<Late<E>>,
    ) -> Self {
        Deferred {
            start: Some((spawner, Box::new(fut), name, late)),
            proxy: None,
        }
    }
}

impl<F, E> Future for Deferred<F, E>
where
    F: Future + Send + 'static,
    F::Output: Outcome<E> + Send + 'static,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // `Unpin`: the future is boxed until it starts, then owned by the
        // runtime task.
        let this = self.get_mut();
        if let Some((spawner, fut, name, late)) = this.start.take() {
            let shown = name
                .as_deref()
                .map_or_else(|| "(unnamed)".to_owned(), |n| format!("`{n}`"));
            match start(spawner, *fut, name, late) {
                Ok(proxy) => this.proxy = Some(proxy),
                Err(error) => panic!(
                    "the parallel child {shown} of a nursery with a limit could not start when its \
                     turn came: {error}; give the nursery a spawner that accepts its tasks"
                ),
            }
        }
        match &mut this.proxy {
            Some(proxy) => Pin::new(proxy).poll(cx),
            None => unreachable!("started above"),
        }
    }
}

impl<F, E> Unpin for Deferred<F, E>
where
    F: Future,
    F::Output: Outcome<E>,
{
}

/// The two sides of a parallel child: the runtime task and the proxy.
fn pair<F, E>(
    fut: F,
    name: Option<Cow<'static, str>>,
    late: Arc<Late<E>>,
) -> (RemoteTask<F>, Proxy<F, E>)
where
    F: Future,
    F::Output: Outcome<E>,
{
    let remote = shared::Arc::new(Remote {
        slot: shared::Mutex::new(Slot::Running(fut)),
        done: AtomicBool::new(false),
        task: AtomicWaker::new(),
        proxy: AtomicWaker::new(),
    });
    let task = RemoteTask(shared::Arc::clone(&remote));
    let proxy = Proxy {
        remote,
        name,
        late,
        taken: false,
    };
    (task, proxy)
}

/// Loom models of the handover between a parallel child's runtime task and
/// its proxy: `RUSTFLAGS="--cfg loom" cargo test -p nursery-core --lib --release loom`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;

    /// A child that fails on its `polls`-th poll, counting its drops.
    struct Child {
        polls: usize,
        dropped: shared::Arc<AtomicUsize>,
        failed: shared::Arc<AtomicUsize>,
    }

    impl Future for Child {
        type Output = Result<u32, u8>;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<u32, u8>> {
            self.polls -= 1;
            if self.polls == 0 {
                self.failed.fetch_add(1, Ordering::SeqCst);
                Poll::Ready(Err(7))
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    impl Drop for Child {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The child, its drop count and its failure count.
    fn child(polls: usize) -> (Child, shared::Arc<AtomicUsize>, shared::Arc<AtomicUsize>) {
        let dropped = shared::Arc::new(AtomicUsize::new(0));
        let failed = shared::Arc::new(AtomicUsize::new(0));
        let child = Child {
            polls,
            dropped: dropped.clone(),
            failed: failed.clone(),
        };
        (child, dropped, failed)
    }

    #[test]
    fn cancelling_while_a_worker_polls_drops_the_child_before_returning() {
        loom::model(|| {
            let (fut, dropped, failed) = child(1);
            let late = Arc::new(Late::<u8>::default());
            let (task, proxy) = pair(fut, None, late.clone());
            let worker = loom::thread::spawn(move || {
                let mut task = std::pin::pin!(task);
                let waker = std::task::Waker::noop().clone();
                let _ = task.as_mut().poll(&mut Context::from_waker(&waker));
            });
            drop(proxy); // the nursery cancels the child
            // the child is gone when the cancel returns, whatever the worker did
            assert_eq!(dropped.load(Ordering::SeqCst), 1);
            worker.join().unwrap();
            assert_eq!(dropped.load(Ordering::SeqCst), 1, "dropped once");
            // if it failed before the cancel took it, the failure is kept
            assert_eq!(lock(&late).len(), failed.load(Ordering::SeqCst));
        });
    }

    #[test]
    fn a_failure_reaches_the_proxy_and_is_never_lost() {
        loom::model(|| {
            let (fut, dropped, _) = child(2);
            let late = Arc::new(Late::<u8>::default());
            let (task, proxy) = pair(fut, Some("c".into()), late.clone());
            let worker = loom::thread::spawn(move || loom::future::block_on(task));
            let out = loom::future::block_on(proxy);
            assert_eq!(out, Err(7));
            worker.join().unwrap();
            assert_eq!(dropped.load(Ordering::SeqCst), 1);
            assert!(
                lock(&late).is_empty(),
                "taken by the proxy, not reported late"
            );
        });
    }

    #[test]
    fn a_failure_that_races_the_cancel_is_taken_or_reported_late() {
        loom::model(|| {
            let (fut, dropped, failed) = child(1);
            let late = Arc::new(Late::<u8>::default());
            let (task, mut proxy) = pair(fut, None, late.clone());
            let worker = loom::thread::spawn(move || loom::future::block_on(task));
            // the nursery polls the proxy once, then cancels it
            let waker = std::task::Waker::noop().clone();
            let polled = Pin::new(&mut proxy).poll(&mut Context::from_waker(&waker));
            drop(proxy);
            worker.join().unwrap();
            assert_eq!(dropped.load(Ordering::SeqCst), 1);
            let reported = lock(&late).len();
            match polled {
                Poll::Ready(out) => {
                    assert_eq!(out, Err(7));
                    assert_eq!(reported, 0);
                }
                // either cancelled before it failed, or failed and reported
                Poll::Pending => assert_eq!(reported, failed.load(Ordering::SeqCst)),
            }
        });
    }
}
