//! [`Nursery`]: the handle children are spawned through.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::marker::{PhantomData, PhantomPinned};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::deadline::{ChildDeadline, TimedOut, When};
use crate::errors::{Closed, Errors, Failure};
use crate::kind::{Accepts, Kind, Sendable};
use crate::node::NodeRef;
use crate::outcome::Outcome;
use crate::parallel::{SpawnError, Spawner};
use crate::registry::{Options, Registry};
use crate::start::{Started, TaskStatus};
use crate::sync::{Waiters, lock};
use crate::task::Task;
use crate::token::CancelToken;
use crate::trace::Reason;

/// A nursery: the scope its children live in.
///
/// `#[nursery]` creates one for the body of an `async fn` and, with
/// `#[nursery(n)]`, binds `n: &Nursery<'_, E>`; `spawn!` is shorthand for
/// [`Nursery::spawn`] and its options. The handle is a shared reference, so
/// it is `Copy`: move it into children (a child may spawn siblings) or give
/// it to an object that spawns its own background children (a connection's
/// heartbeat).
///
/// * `'scope` is the lifetime of the nursery's children: they may borrow
///   anything that outlives it — the fn's arguments and the locals declared
///   before the body — and the nursery itself.
/// * `E` is the error type its children fail with.
/// * `K` is [`Sendable`] (children must be `Send`; the default) or
///   [`Local`](crate::Local) (they need not be).
///
/// An object that holds a nursery is written `&'a Nursery<'scope, E>`.
///
/// # Examples
///
/// ```
/// use nursery::{nursery, spawn, Nursery};
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// /// An object that owns a background child for as long as it lives.
/// struct Counter<'a, 'scope> {
///     ticks: &'a AtomicU32,
///     _nursery: &'a Nursery<'scope, std::convert::Infallible>,
/// }
///
/// impl<'a, 'scope> Counter<'a, 'scope> {
///     fn new(n: &'a Nursery<'scope, std::convert::Infallible>, ticks: &'a AtomicU32) -> Self
///     where
///         'a: 'scope,
///     {
///         n.builder().background().spawn(async move {
///             loop {
///                 ticks.fetch_add(1, Ordering::Relaxed);
///                 std::future::pending::<()>().await; // a real heartbeat would sleep here
///             }
///         });
///         Counter { ticks, _nursery: n }
///     }
/// }
///
/// #[nursery(n)]
/// async fn run(ticks: &AtomicU32) {
///     let _counter = Counter::new(n, ticks);
///     spawn!(async { /* foreground work */ });
/// } // the background child is cancelled once the body and `spawn!` child are done
///
/// let ticks = AtomicU32::new(0);
/// futures::executor::block_on(run(&ticks));
/// assert_eq!(ticks.load(Ordering::Relaxed), 1);
/// ```
pub struct Nursery<'scope, E, K: Kind = Sendable> {
    /// Its entry in the task tree (feature `task-tree`): declared before
    /// the state, so that it leaves the tree before the state is dropped.
    #[cfg(feature = "task-tree")]
    tree: crate::tree::Registration,
    state: Mutex<State<E, K>>,
    /// Its span and its children's (feature `tracing`): outside the state,
    /// so that a subscriber is never called with the state's lock held.
    pub(crate) trace: crate::trace::NurseryTrace,
    name: Option<&'static str>,
    /// A `supervise = handler` nursery's handler (taken out while it
    /// runs). `ManuallyDrop`: the handler may borrow the scope, and the
    /// nursery is dropped after its scope's borrows end; the driver's
    /// teardown drops the handler while the scope is alive (a nursery that
    /// is never driven never runs its body, which is what sets a handler).
    pub(crate) handler: std::mem::ManuallyDrop<Mutex<Option<Handler<'scope, E>>>>,
    _scope: PhantomData<fn(&'scope ()) -> &'scope ()>,
    /// Its errors outlive its scope (they are kept in it, and a child's
    /// deadline may make one): `E: 'scope` is implied wherever a nursery is.
    _errors: PhantomData<fn() -> &'scope E>,
    /// A nursery is driven where it was made (the task tree reads it there
    /// until it is dropped): the driver takes it pinned.
    _pinned: PhantomPinned,
}

pub(crate) struct State<E, K: Kind> {
    pub(crate) children: Registry,
    /// Makes a `Local` nursery `!Send` and `!Sync`.
    _kind: K::Marker,
    pub(crate) phase: Phase,
    /// What a child's failure does.
    pub(crate) policy: Policy,
    pub(crate) errors: Option<Errors<E>>,
    pub(crate) panic: Option<Box<dyn Any + Send>>,
    /// The task driving the nursery, woken by `cancel()` from elsewhere.
    pub(crate) parent: Option<Waker>,
    /// Futures waiting in `cancelled()`.
    pub(crate) cancel_waiters: Waiters,
    /// Futures waiting in `admit()` for room under the limit.
    pub(crate) admit_waiters: Waiters,
    /// Whether `cancel()` was called or a failure happened.
    pub(crate) cancel_requested: bool,
    /// Counts of shielded sections in children, once one registered.
    pub(crate) shields: Option<std::sync::Arc<crate::shield::Shields>>,
    /// Cancelled children waiting for a shielded section inside to end.
    pub(crate) deferred: Vec<u32>,
    /// Children that were queued when the nursery was cancelled: they still
    /// get their poll (they were scheduled in the same round, as in trio),
    /// so that failures that happen at once are all kept.
    pub(crate) cancel_backlog: usize,
    /// `#[nursery(grace = …)]`: how long cancelled children may clean up.
    pub(crate) grace: Option<std::time::Duration>,
    /// The end of the grace period, once it began.
    pub(crate) grace_sleep: Option<crate::Sleep>,
    /// Where `parallel` children run, if given with `set_spawner`.
    spawner: Option<std::sync::Arc<dyn Spawner>>,
    /// Failures of parallel children dropped after they completed, once a
    /// parallel child was spawned.
    pub(crate) late: Option<std::sync::Arc<crate::parallel::Late<E>>>,
    /// Why it was cancelled, once it was.
    pub(crate) reason: Option<crate::trace::Reason>,
    /// `#[nursery(timeout)]` spawned its `timeout` child.
    pub(crate) timeout_armed: bool,
    /// A driver took the nursery: a second one is refused.
    pub(crate) driven: bool,
    /// The task tree's clock for its children's ages (feature `task-tree`).
    #[cfg(feature = "task-tree")]
    pub(crate) tree: crate::tree::Clock,
    /// What to do once the lock is let go: callbacks into user code.
    pub(crate) after: After,
    /// The state behind `cancel_token()`, once one was asked for.
    pub(crate) token: Option<std::sync::Arc<crate::token::Inner>>,
}

/// A nursery's policy for its children's failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Policy {
    /// The first failure cancels the nursery.
    #[default]
    FailFast,
    /// Failures cancel nobody and are all returned.
    Supervise,
    /// Failures cancel nobody and go to the handler, one by one.
    Handler,
}

/// A `supervise = handler` nursery's handler.
pub(crate) type Handler<'scope, E> = Box<dyn FnMut(Failure<E>) + Send + 'scope>;

/// Where a nursery is in its life. The transitions, each a method of
/// [`State`] (the driver's settlement applies them at the end of a step):
///
/// | from | when | to | method |
/// | --- | --- | --- | --- |
/// | `Running` | `cancel()`, a token, a failure, a panic, the deadline | `Cancelling` | `request_cancel` |
/// | `Cancelling` | the children queued at the cancel were polled, with a grace period | `Grace` | `begin_grace` |
/// | `Grace` | every child is gone, or the grace period ended | `Cancelling` | `end_grace` |
/// | `Cancelling` | the children queued at the cancel were polled | `Cancelled` (unshielded children dropped) | `drop_cancelled` |
/// | any | the body and every child are gone | `Closed` | the driver's `finish` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Running,
    /// Cancelled or failed; the driver has not yet dropped the children.
    Cancelling,
    /// Cancelled, with a grace period: children may finish their cleanup
    /// until it ends.
    Grace,
    /// The driver dropped every unshielded child.
    Cancelled,
    /// Finished: nothing can be spawned any more.
    Closed,
}

impl<'scope, E, K: Kind> Nursery<'scope, E, K> {
    #[doc(hidden)]
    pub fn new() -> Self {
        Self::with_name(None)
    }

    /// What `#[nursery]` uses: a nursery named after its fn.
    #[doc(hidden)]
    pub fn named(name: &'static str) -> Self {
        Self::with_name(Some(name))
    }

    fn with_name(name: Option<&'static str>) -> Self {
        Nursery {
            name,
            handler: std::mem::ManuallyDrop::new(Mutex::new(None)),
            state: Mutex::new(State {
                children: Registry::default(),
                _kind: K::Marker::default(),
                phase: Phase::Running,
                policy: Default::default(),
                errors: None,
                panic: None,
                parent: None,
                cancel_waiters: Waiters::default(),
                admit_waiters: Waiters::default(),
                cancel_requested: false,
                shields: None,
                deferred: Vec::new(),
                cancel_backlog: 0,
                grace: None,
                grace_sleep: None,
                spawner: None,
                late: None,
                reason: None,
                timeout_armed: false,
                driven: false,
                #[cfg(feature = "task-tree")]
                tree: Default::default(),
                after: After::default(),
                token: None,
            }),
            #[cfg(feature = "task-tree")]
            tree: Default::default(),
            trace: crate::trace::NurseryTrace::new(name),
            _scope: PhantomData,
            _errors: PhantomData,
            _pinned: PhantomPinned,
        }
    }

    /// The state, locked; what was left to do [`After`] the lock runs when
    /// the guard is dropped, with the lock let go.
    pub(crate) fn state(&self) -> StateGuard<'_, 'scope, E, K> {
        StateGuard {
            nursery: self,
            guard: Some(lock(&self.state)),
        }
    }

    /// The state, locked, for the hot paths that never leave work
    /// [`After`] the lock (they cancel nothing and wake no one's waker):
    /// spawning, lending a batch, freeing children that ended. A plain
    /// guard: what it would have left undone is checked in debug builds
    /// ([`QuietState`]).
    #[inline]
    pub(crate) fn quiet_state(&self) -> QuietState<'_, E, K> {
        QuietState(lock(&self.state))
    }

    /// Its entry in the task tree.
    #[cfg(feature = "task-tree")]
    pub(crate) fn tree(&self) -> &crate::tree::Registration {
        &self.tree
    }

    /// The state, unless its lock stays held over `tries` attempts (by this
    /// thread, say: a callback run under it).
    #[cfg(feature = "task-tree")]
    pub(crate) fn try_state(&self, tries: u32) -> Option<std::sync::MutexGuard<'_, State<E, K>>> {
        for _ in 0..tries {
            match self.state.try_lock() {
                Ok(state) => return Some(state),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => {
                    return Some(poisoned.into_inner());
                }
                Err(std::sync::TryLockError::WouldBlock) => std::thread::yield_now(),
            }
        }
        None
    }

    /// Starts `fut` as a child and returns its task handle.
    ///
    /// The child starts when the spawner next yields. Its output is `()` or
    /// `Result<T, E>`; an `Err` cancels the nursery and is collected in its
    /// [`Errors`]. A child spawned into a nursery that is already cancelling
    /// is dropped without being polled; into one that has finished, likewise
    /// (see [`Nursery::try_spawn`] to be told). For the options (`name`,
    /// `shield`, `background`) use [`Nursery::builder`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sum = futures::executor::block_on(nursery::scope!(|n| async {
    ///     let a = n.spawn(async { Ok::<_, std::io::Error>(1) });
    ///     let b = n.spawn(async { Ok(2) });
    ///     Ok(a.await + b.await)
    /// }));
    /// assert_eq!(sum.unwrap(), 3);
    /// ```
    pub fn spawn<F>(&self, fut: F) -> Task<'scope, <F::Output as Outcome<E>>::Ok, E>
    where
        F: Future + 'scope,
        F::Output: Outcome<E>,
        K: Accepts<'scope, F, E>,
    {
        self.builder().spawn(fut)
    }

    /// Like [`Nursery::spawn`], but a nursery that has already finished
    /// gives [`Closed`] instead of silently dropping `fut`.
    pub fn try_spawn<F>(
        &self,
        fut: F,
    ) -> Result<Task<'scope, <F::Output as Outcome<E>>::Ok, E>, Closed>
    where
        F: Future + 'scope,
        F::Output: Outcome<E>,
        K: Accepts<'scope, F, E>,
    {
        self.builder().try_spawn(fut)
    }

    /// Starts `f(status)` as a child and waits until it reports itself
    /// started; see [`Builder::start`] and `start!`.
    pub fn start<T: 'scope, F, Fut>(&self, f: F) -> Started<T>
    where
        F: FnOnce(TaskStatus<T>) -> Fut,
        Fut: Future + 'scope,
        Fut::Output: Outcome<E>,
        K: Accepts<'scope, Fut, E>,
    {
        self.builder().start(f)
    }

    /// Spawns with options: `name`, `shield`, `background`.
    ///
    /// # Examples
    ///
    /// ```
    /// use nursery::nursery;
    ///
    /// #[nursery(n)]
    /// async fn run() -> Result<(), nursery::Errors<&'static str>> {
    ///     n.builder().name("saver").shield().spawn(async { Ok(()) });
    ///     n.builder().name("ticker").background().spawn(futures::future::pending::<()>());
    ///     Ok(())
    /// }
    ///
    /// futures::executor::block_on(run()).unwrap();
    /// ```
    pub fn builder(&self) -> Builder<'_, 'scope, E, K> {
        Builder {
            nursery: self,
            options: Options::default(),
            deadline: None,
        }
    }

    /// Cancels the nursery: its body and every child that is not shielded
    /// are dropped at the nursery's next step, and the nursery returns
    /// normally (cancelling is not an error).
    ///
    /// A body whose value is `()` (or an `Option`, which becomes `None`)
    /// needs nothing more. A body that must produce another value finishes
    /// with it by calling `cancel()` and then returning the value before its
    /// next `.await`: the body is not interrupted until it yields.
    /// Cancelling a finished nursery does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use nursery::{nursery, spawn};
    ///
    /// #[nursery(n)]
    /// async fn first_wins() -> u32 {
    ///     spawn!(futures::future::pending::<()>()); // would run forever
    ///     n.cancel();
    ///     7 // returned: the body is only interrupted at its next `.await`
    /// }
    ///
    /// assert_eq!(futures::executor::block_on(first_wins()), 7);
    /// ```
    pub fn cancel(&self) {
        let parent = {
            let mut state = self.state();
            state.request_cancel(Reason::Explicit);
            // Wakes the driver even when it is the caller: one spurious poll
            // at most, instead of a flag to keep on every step.
            state.parent.clone()
        };
        if let Some(parent) = parent {
            parent.wake();
        }
    }

    /// Whether the nursery was cancelled, by [`Nursery::cancel`] or by a
    /// failure.
    pub fn is_cancelled(&self) -> bool {
        self.state().cancel_requested
    }

    /// A future that completes once the nursery is cancelled: what a
    /// shielded child awaits to start its cleanup.
    pub fn cancelled(&self) -> Cancelled<'_, 'scope, E, K> {
        Cancelled::new(self)
    }

    /// Cancels the nursery (with its grace period, if it has one) when
    /// `signal` completes: a shutdown signal in one line
    /// (`#[nursery(cancel_on = tokio::signal::ctrl_c())]`). `signal` is
    /// watched by a `background` child named `cancel_on`, so it never keeps
    /// the nursery open: once the body and the other children are done, it
    /// is dropped with no cancel. Its output is ignored (`ctrl_c()` gives
    /// an `io::Result`: an error there cancels too).
    ///
    /// # Examples
    ///
    /// ```
    /// use nursery::{nursery, spawn};
    /// use futures::channel::oneshot;
    ///
    /// #[nursery(n)]
    /// async fn serve(shutdown: oneshot::Receiver<()>) -> u32 {
    ///     n.cancel_on(shutdown);
    ///     spawn!(std::future::pending::<()>(), name = "listener"); // runs until the signal
    ///     7
    /// }
    ///
    /// let (stop, shutdown) = oneshot::channel();
    /// stop.send(()).unwrap();
    /// // Cancelled: the body's value is the one its type gives for a cancel.
    /// assert_eq!(futures::executor::block_on(serve(shutdown)), 7);
    /// ```
    pub fn cancel_on<F>(&self, signal: F)
    where
        F: Future + 'scope,
        K: Accepts<'scope, CancelOn<F>, E>,
    {
        let watch = CancelOn {
            signal,
            token: Some(self.cancel_token()),
        };
        self.builder().name("cancel_on").background().spawn(watch);
    }

    /// The nursery's cancellation as an owned, `'static` [`CancelToken`]:
    /// for `parallel` children, which cannot borrow the nursery, to see it
    /// cancelling (`token.cancelled().await`) or to cancel it.
    ///
    /// # Examples
    ///
    /// ```
    /// use nursery::{nursery, spawn};
    ///
    /// #[nursery(n)]
    /// async fn run() {
    ///     let token = n.cancel_token();
    ///     std::thread::spawn(move || token.cancel()) // from anywhere
    ///         .join()
    ///         .unwrap();
    ///     spawn!(std::future::pending::<()>()); // cancelled with the nursery
    /// }
    ///
    /// futures::executor::block_on(run());
    /// ```
    pub fn cancel_token(&self) -> CancelToken {
        let mut state = self.state();
        let cancelled = state.cancel_requested;
        let parent = state.parent.clone();
        let inner = state.token.get_or_insert_with(|| {
            let inner = std::sync::Arc::new(crate::token::Inner::default());
            if let Some(parent) = &parent {
                inner.driver.register(parent);
            }
            if cancelled {
                inner.mark_cancelled();
            }
            inner
        });
        CancelToken::new(std::sync::Arc::clone(inner))
    }

    /// Gives this nursery the [`Spawner`] its `parallel` children run on,
    /// in place of the process-wide one ([`set_spawner`](crate::set_spawner))
    /// or the current tokio runtime. Children already started keep theirs.
    ///
    /// # Examples
    ///
    /// See [`Spawner`].
    pub fn set_spawner(&self, spawner: impl Spawner) {
        let old = self.state().spawner.replace(std::sync::Arc::new(spawner));
        drop(old); // with no lock held: its `Drop` is the user's
    }

    /// Limits how many children run at once to `max` (what
    /// `#[nursery(limit = N)]` sets): a child spawned while `max` run waits,
    /// without being polled, and starts when a running one ends, in the
    /// order they were spawned. Background children are not counted (a
    /// heartbeat never keeps work from running). Raising the limit starts
    /// waiting children at once. Use [`Nursery::admit`] to wait for room
    /// before spawning (backpressure for a producer loop).
    ///
    /// # Panics
    ///
    /// If `max` is 0: no child would ever run.
    ///
    /// # Examples
    ///
    /// ```
    /// use nursery::{nursery, spawn};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// #[nursery(limit = 2)]
    /// async fn crawl(running: &AtomicUsize, most: &AtomicUsize) {
    ///     for _ in 0..10 {
    ///         spawn!(async {
    ///             let now = running.fetch_add(1, Ordering::SeqCst) + 1;
    ///             most.fetch_max(now, Ordering::SeqCst);
    ///             yield_once().await; // as a real fetch would wait
    ///             running.fetch_sub(1, Ordering::SeqCst);
    ///         });
    ///     }
    /// }
    ///
    /// async fn yield_once() {
    ///     let mut yielded = false;
    ///     std::future::poll_fn(|cx| {
    ///         if yielded {
    ///             return std::task::Poll::Ready(());
    ///         }
    ///         yielded = true;
    ///         cx.waker().wake_by_ref();
    ///         std::task::Poll::Pending
    ///     })
    ///     .await
    /// }
    ///
    /// let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
    /// futures::executor::block_on(crawl(&running, &most));
    /// assert_eq!(most.load(Ordering::SeqCst), 2);
    /// ```
    pub fn set_limit(&self, max: usize) {
        assert!(
            max > 0,
            "a nursery limit of 0 would never run a child: give 1 or more"
        );
        let mut state = self.state();
        let (room, admitted) = state.children.set_limit(max);
        if room {
            let waiters = state.admit_waiters.take_all();
            state.after.wake(waiters, None);
        }
        // Children admitted outside the driver's step need its task woken.
        let wake = match admitted && !state.children.in_step {
            true => state.children.shared().cloned(),
            false => None,
        };
        drop(state);
        if let Some(shared) = wake {
            shared.wake_parent();
        }
    }

    /// Completes once a child spawned now would start at once: fewer than
    /// the limit run and none waits (at once without a limit, and once the
    /// nursery is cancelling, where a spawn is dropped anyway). What a
    /// producer loop awaits before each spawn, so that it does not run ahead
    /// of its children.
    ///
    /// # Examples
    ///
    /// ```
    /// use nursery::{nursery, spawn};
    ///
    /// #[nursery(n, limit = 4)]
    /// async fn consume(jobs: Vec<u32>) -> u32 {
    ///     let mut started = 0;
    ///     for job in jobs {
    ///         n.admit().await; // backpressure: at most 4 in flight
    ///         spawn!(async move { job * 2 });
    ///         started += 1;
    ///     }
    ///     started
    /// }
    ///
    /// assert_eq!(futures::executor::block_on(consume((0..10).collect())), 10);
    /// ```
    pub fn admit(&self) -> Admit<'_, 'scope, E, K> {
        Admit::new(self)
    }

    /// The nursery's name: the name of the fn `#[nursery]` is on (`None`
    /// for a `scope!`). Shown with its children's failures.
    ///
    /// # Examples
    ///
    /// ```
    /// use nursery::{nursery, spawn, Errors};
    ///
    /// #[nursery(n)]
    /// async fn checkout() -> Result<(), Errors<&'static str>> {
    ///     assert_eq!(n.name(), Some("checkout"));
    ///     spawn!(async { Err::<(), _>("gateway down") }, name = "sms");
    ///     Ok(())
    /// }
    ///
    /// let errors = futures::executor::block_on(checkout()).unwrap_err();
    /// assert_eq!(errors.to_string(), "child `sms` of nursery `checkout` failed: gateway down");
    /// ```
    pub fn name(&self) -> Option<&'static str> {
        self.name
    }

    /// Inserts a child, under a deadline of its own if it has one (for a
    /// parallel child, its stand-in: cutting it short stops the task).
    fn insert_within<F>(
        &self,
        fut: F,
        deadline: Option<(When, Option<MakeError<E>>)>,
        options: Options,
    ) -> Result<Task<'scope, <F::Output as Outcome<E>>::Ok, E>, Closed>
    where
        F: Future + 'scope,
        F::Output: Outcome<E>,
    {
        match deadline {
            None => self.insert_node(fut, options),
            Some((when, fail)) => self.insert_node(ChildDeadline::new(fut, when, fail), options),
        }
    }

    /// Inserts a child with no `Accepts` bound: its callers' own bounds
    /// guarantee its `Send`-ness (`K: Accepts` on the spawn methods, or a
    /// parallel child's `Send + 'static`; the wrappers added on the way
    /// change neither `Send`-ness nor the success value).
    fn insert_node<F>(
        &self,
        fut: F,
        options: Options,
    ) -> Result<Task<'scope, <F::Output as Outcome<E>>::Ok, E>, Closed>
    where
        F: Future + 'scope,
        F::Output: Outcome<E>,
    {
        // Its span is made with no lock held (a subscriber may call back).
        let mut options = options;
        let fut = self.trace.child::<F, E>(fut, &mut options);
        let mut state = self.quiet_state();
        match state.admission(&options) {
            Admission::Closed => return Err(Closed),
            Admission::DropUnpolled => {
                drop(state);
                drop(fut); // never polled
                return Ok(Task::new(None));
            }
            Admission::Insert => {}
        }
        #[cfg(feature = "task-tree")]
        {
            options.born_ms = state.tree.birth();
        }
        let joiner = state.children.insert(options, |shared, index, flags| {
            NodeRef::new::<_, E>(fut, shared, index, flags)
        });
        // Outside the driver's step, the nursery's task is woken to poll it.
        let wake = match state.children.in_step {
            true => None,
            false => state.children.shared().cloned(),
        };
        drop(state);
        if let Some(shared) = wake {
            shared.wake_parent(); // with no lock held: the waker is the runtime's
        }
        Ok(Task::new(Some(joiner)))
    }
}

/// What becomes of a child spawned now.
enum Admission {
    Insert,
    /// The nursery is cancelling and the child is not shielded: dropped
    /// without being polled, its handle given no value.
    DropUnpolled,
    /// The nursery has finished.
    Closed,
}

impl<E, K: Kind> State<E, K> {
    /// The one rule for a child spawned now, local or parallel.
    fn admission(&self, options: &Options) -> Admission {
        match self.phase {
            Phase::Closed => Admission::Closed,
            Phase::Cancelling | Phase::Cancelled if !options.shield => Admission::DropUnpolled,
            _ => Admission::Insert,
        }
    }

    /// Cancelling → Grace: once the children queued at the cancel were
    /// polled, with a grace period: children see `cancelled()` and may
    /// clean up until it ends (the body is interrupted now). `None` past
    /// what an `Instant` holds: then it ends only when every child has.
    pub(crate) fn begin_grace(&mut self) {
        let Some(grace) = self.grace else {
            return;
        };
        if self.phase == Phase::Cancelling && self.cancel_backlog == 0 {
            let timer = crate::timer::timer();
            self.grace_sleep =
                crate::timer::after(timer.now(), grace).map(|end| timer.sleep_until(end));
            self.phase = Phase::Grace;
            // (inside the step: the wakes only queue the children)
            self.children.wake_all();
        }
    }

    /// Grace → Cancelling: every child is gone, or the grace period ended;
    /// what is left is dropped next.
    pub(crate) fn end_grace(&mut self) {
        self.grace_sleep = None;
        self.phase = Phase::Cancelling;
    }

    /// Cancelling → Cancelled, once the children queued at the cancel were
    /// polled: takes every unshielded child out into `dropped`, once; one
    /// with a shielded section running inside (`shielded(slot)`) is
    /// deferred and goes (on a later step) as soon as that section ends.
    pub(crate) fn drop_cancelled(
        &mut self,
        shielded: &impl Fn(u32) -> bool,
        dropped: &mut Vec<NodeRef>,
    ) {
        if self.phase == Phase::Cancelling && self.cancel_backlog == 0 {
            self.phase = Phase::Cancelled;
            let mut deferred = Vec::new();
            self.children.drain(
                |flags, slot| {
                    let cancel = flags & crate::node::SHIELD == 0;
                    if cancel && shielded(slot) {
                        deferred.push(slot);
                    }
                    cancel && !shielded(slot)
                },
                dropped,
            );
            self.deferred = deferred;
            // Shielded children still waiting for their turn (the others
            // are gone) start now, under the limit, as their turn comes.
            self.children.reopen_limit();
            self.children.wake_all();
        } else if self.phase == Phase::Cancelled && !self.deferred.is_empty() {
            let deferred = std::mem::take(&mut self.deferred);
            let (done, waiting): (Vec<u32>, Vec<u32>) =
                deferred.into_iter().partition(|&slot| !shielded(slot));
            self.deferred = waiting;
            for slot in done {
                self.children
                    .drain_one(slot, |flags| flags & crate::node::SHIELD == 0, dropped);
            }
        }
    }

    pub(crate) fn request_cancel(&mut self, reason: Reason) {
        if self.phase == Phase::Running {
            self.reason = Some(reason);
            self.phase = Phase::Cancelling;
            self.cancel_requested = true;
            if let Some(shared) = self.children.shared() {
                shared
                    .cancelling
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            self.cancel_backlog = self.children.queued();
            if let Some(limit) = &mut self.children.limit {
                limit.closed = true; // children waiting their turn never start
            }
            // Reported and woken once the lock is let go.
            self.after.cancelled = Some(reason);
            let mut waiters = self.cancel_waiters.take_all();
            waiters.extend(self.admit_waiters.take_all());
            self.after.wake(waiters, self.token.clone());
        }
    }
}

/// What a holder of the state's lock leaves to be done once it is let go:
/// every call into user code (a tracing subscriber, a waker) is made with
/// no lock of the nursery held, so that it may call back into it (ask for
/// the task tree, cancel, spawn).
#[derive(Default)]
pub(crate) struct After {
    /// Something below is left to do: the one check on every unlock.
    pending: bool,
    /// The nursery was cancelled, for this reason: report it.
    cancelled: Option<Reason>,
    /// Wakers of `cancelled()` futures, to wake.
    pub(crate) wakers: Vec<Waker>,
    /// The nursery's cancel token, to mark cancelled (waking its waiters).
    pub(crate) token: Option<std::sync::Arc<crate::token::Inner>>,
}

impl After {
    /// Wakes `wakers` and marks `token` cancelled once the lock is let go.
    pub(crate) fn wake(
        &mut self,
        wakers: Vec<Waker>,
        token: Option<std::sync::Arc<crate::token::Inner>>,
    ) {
        self.pending = true;
        self.wakers.extend(wakers);
        self.token = token;
    }

    fn run(self, trace: &crate::trace::NurseryTrace) {
        if let Some(reason) = self.cancelled {
            trace.cancelled(reason);
        }
        if let Some(token) = self.token {
            token.mark_cancelled();
        }
        self.wakers.into_iter().for_each(Waker::wake);
    }
}

/// The nursery's state, locked by [`Nursery::quiet_state`]: nothing may be
/// left [`After`] it (a debug assertion says so when it is let go).
pub(crate) struct QuietState<'a, E, K: Kind>(std::sync::MutexGuard<'a, State<E, K>>);

impl<E, K: Kind> std::ops::Deref for QuietState<'_, E, K> {
    type Target = State<E, K>;

    #[inline]
    fn deref(&self) -> &State<E, K> {
        &self.0
    }
}

impl<E, K: Kind> std::ops::DerefMut for QuietState<'_, E, K> {
    #[inline]
    fn deref_mut(&mut self) -> &mut State<E, K> {
        &mut self.0
    }
}

impl<E, K: Kind> Drop for QuietState<'_, E, K> {
    #[inline]
    fn drop(&mut self) {
        debug_assert!(
            !self.0.after.pending,
            "a quiet path of the nursery left callbacks to run: use `state()`"
        );
    }
}

/// The nursery's state, locked: runs what was left [`After`] the lock once
/// it is let go.
pub(crate) struct StateGuard<'a, 'scope, E, K: Kind> {
    nursery: &'a Nursery<'scope, E, K>,
    guard: Option<std::sync::MutexGuard<'a, State<E, K>>>,
}

impl<E, K: Kind> std::ops::Deref for StateGuard<'_, '_, E, K> {
    type Target = State<E, K>;

    #[inline]
    fn deref(&self) -> &State<E, K> {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl<E, K: Kind> std::ops::DerefMut for StateGuard<'_, '_, E, K> {
    #[inline]
    fn deref_mut(&mut self) -> &mut State<E, K> {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl<E, K: Kind> Drop for StateGuard<'_, '_, E, K> {
    #[inline]
    fn drop(&mut self) {
        if self.guard.as_ref().is_some_and(|state| state.after.pending) {
            self.run_after();
        }
    }
}

impl<E, K: Kind> StateGuard<'_, '_, E, K> {
    /// Lets go of the lock, then does what was left to do.
    #[cold]
    #[inline(never)]
    fn run_after(&mut self) {
        if let Some(mut state) = self.guard.take() {
            let after = std::mem::take(&mut state.after);
            drop(state);
            after.run(&self.nursery.trace);
        }
    }
}

impl<E, K: Kind> fmt::Debug for Nursery<'_, E, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Nursery")
            .field("children", &state.children.live)
            .field("phase", &state.phase)
            .field("failures", &state.errors.as_ref().map_or(0, Errors::len))
            .finish()
    }
}

/// Spawns a child with options; made by [`Nursery::builder`].
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct Builder<'n, 'scope, E, K: Kind = Sendable> {
    nursery: &'n Nursery<'scope, E, K>,
    options: Options,
    /// A deadline of the child's own, and the failure it makes (`fail_after`).
    deadline: Option<(When, Option<MakeError<E>>)>,
}

/// What makes the failure of a child past its `fail_after` deadline.
type MakeError<E> = fn() -> E;

impl<'n, 'scope, E, K: Kind> Builder<'n, 'scope, E, K> {
    /// Names the child: the name is shown with its errors.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.options.name = Some(name.into());
        self
    }

    /// Shields the child: it is not cancelled when a sibling fails or the
    /// nursery is cancelled, and the nursery waits for it. It is still
    /// dropped if the whole nursery future is dropped by its caller.
    /// Replaces `background`.
    pub fn shield(mut self) -> Self {
        self.options.shield = true;
        self.options.background = false;
        self
    }

    /// Makes the child a background child: it is cancelled automatically
    /// once the body and every other non-background child have finished (a
    /// heartbeat). Replaces `shield`.
    pub fn background(mut self) -> Self {
        self.options.background = true;
        self.options.shield = false;
        self
    }

    /// Cancels the child when `timeout` has passed since its first poll, as
    /// [`Task::cancel`] does: it ends without a value, and that is not a
    /// failure (`move_on_after` for one child). `Duration::MAX` means never.
    /// The deadline runs on the deadlines' timer (tokio's with the `tokio`
    /// feature, so paused time works, or the one given to
    /// [`set_timer`](crate::set_timer)); one timer entry per child that has
    /// one, none otherwise.
    ///
    /// # Examples
    ///
    #[cfg_attr(feature = "tokio", doc = "```")]
    #[cfg_attr(not(feature = "tokio"), doc = "```ignore")]
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use nursery::{nursery, spawn};
    /// use std::time::Duration;
    ///
    /// #[nursery]
    /// async fn lookup() -> Option<&'static str> {
    ///     let slow = async {
    ///         tokio::time::sleep(Duration::from_secs(10)).await;
    ///         "found"
    ///     };
    ///     spawn!(slow, timeout = Duration::from_secs(1)).try_join().await
    /// }
    ///
    /// assert_eq!(lookup().await, None); // cut short at 1 s, not a failure
    /// # }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Some((When::After(timeout), None));
        self
    }

    /// Cancels the child when `deadline` passes; see [`Builder::timeout`].
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some((When::At(deadline), None));
        self
    }

    /// Makes the child fail with `E::from(TimedOut)` when `timeout` has
    /// passed since its first poll (`fail_after` for one child): a failure
    /// like any other, which cancels its siblings in a fail-fast nursery.
    pub fn fail_after(mut self, timeout: Duration) -> Self
    where
        E: From<TimedOut>,
    {
        self.deadline = Some((When::After(timeout), Some(|| E::from(TimedOut))));
        self
    }

    /// Makes the child a `parallel` one: it runs as a task of the runtime,
    /// on another worker thread, so it must be `Send + 'static`. See
    /// [`ParallelBuilder`].
    pub fn parallel(self) -> ParallelBuilder<'n, 'scope, E, K> {
        self.parallel_if(true)
    }

    /// A `parallel` child when `parallel` is true, a local one otherwise
    /// (`spawn!(fut, parallel = BOOL)`): the choice made at run time, in
    /// one call. Either way the child must be `Send + 'static`, which any
    /// nursery accepts, whatever its kind: this is also how an object that
    /// holds a `&Nursery<'_, E, K>` for any `K` spawns a `Send` child into
    /// it with no extra bounds.
    ///
    /// # Examples
    ///
    /// ```
    /// use nursery::{Kind, Nursery};
    ///
    /// /// Works for `#[nursery]` and `#[nursery(local)]` nurseries alike.
    /// fn start_ticker<E: 'static, K: Kind>(n: &Nursery<'_, E, K>, on_threads: bool) {
    ///     n.builder().background().parallel_if(on_threads).spawn(async {});
    /// }
    ///
    /// #[nursery::nursery(n, local)]
    /// async fn run() {
    ///     start_ticker(n, false);
    /// }
    ///
    /// futures::executor::block_on(run());
    /// ```
    pub fn parallel_if(mut self, parallel: bool) -> ParallelBuilder<'n, 'scope, E, K> {
        self.options.parallel = parallel;
        ParallelBuilder {
            inner: self,
            parallel,
        }
    }

    /// The spawned expression, for traces (`spawn!` passes it).
    #[doc(hidden)]
    pub fn __label(mut self, label: &'static &'static str) -> Self {
        self.options.label = Some(label);
        self
    }

    /// Starts the child; see [`Nursery::spawn`].
    pub fn spawn<F>(self, fut: F) -> Task<'scope, <F::Output as Outcome<E>>::Ok, E>
    where
        F: Future + 'scope,
        F::Output: Outcome<E>,
        K: Accepts<'scope, F, E>,
    {
        match self.try_spawn(fut) {
            Ok(task) => task,
            Err(Closed) => Task::new(None),
        }
    }

    /// Starts a `Send` child in a nursery of any kind: what an object
    /// generic over the kind (`&Nursery<'scope, E, K>` for any `K`) uses,
    /// with no bound on `K` — every kind accepts a `Send` child (a
    /// [`Sendable`] nursery needs it, a [`Local`](crate::Local) one accepts
    /// anything). The child may borrow the scope, as any local child.
    ///
    /// # Examples
    ///
    /// ```
    /// use nursery::{Kind, Nursery};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// /// A counter with a background ticker, in any nursery.
    /// fn start_ticker<'scope, E: Send, K: Kind>(n: &Nursery<'scope, E, K>, ticks: &'scope AtomicU32) {
    ///     n.builder().name("ticker").spawn_send(async move {
    ///         ticks.fetch_add(1, Ordering::Relaxed);
    ///     });
    /// }
    ///
    /// #[nursery::nursery(n, local)]
    /// async fn run(ticks: &AtomicU32) {
    ///     let not_send = std::rc::Rc::new(()); // a local nursery
    ///     start_ticker(n, ticks);
    ///     drop(not_send);
    /// }
    ///
    /// let ticks = AtomicU32::new(0);
    /// futures::executor::block_on(run(&ticks));
    /// assert_eq!(ticks.load(Ordering::Relaxed), 1);
    /// ```
    pub fn spawn_send<F>(self, fut: F) -> Task<'scope, <F::Output as Outcome<E>>::Ok, E>
    where
        F: Future + Send + 'scope,
        F::Output: Outcome<E>,
        <F::Output as Outcome<E>>::Ok: Send,
        E: Send,
    {
        // Every kind accepts it: what `Sendable` asks (`Send` future,
        // output and error) is bound here, and `Local` asks nothing.
        match self.nursery.insert_within(fut, self.deadline, self.options) {
            Ok(task) => task,
            Err(Closed) => Task::new(None),
        }
    }

    /// Starts `f(status)` as a child and waits until it calls
    /// [`TaskStatus::started`]; yields that value. This is what `start!`
    /// does. The child keeps running in the nursery afterwards.
    ///
    /// # Panics
    ///
    /// See [`Started`].
    #[allow(unused_mut)] // `mut` for the task tree's flag
    pub fn start<T: 'scope, F, Fut>(mut self, f: F) -> Started<T>
    where
        F: FnOnce(TaskStatus<T>) -> Fut,
        Fut: Future + 'scope,
        Fut::Output: Outcome<E>,
        K: Accepts<'scope, Fut, E>,
    {
        let (status, started) = crate::start::status(self.options.name.clone());
        #[cfg(feature = "task-tree")]
        {
            self.options.started = Some(status.tree_flag());
        }
        let child = crate::start::watch::<T, E, _>(&started, f(status));
        // `watch` (and a deadline's wrapper) change neither `Send`-ness nor
        // the success value: what `K` accepts for `Fut` it accepts for them.
        match self
            .nursery
            .insert_within(child, self.deadline, self.options)
        {
            Ok(_) | Err(Closed) => started,
        }
    }

    /// Starts the child; see [`Nursery::try_spawn`].
    pub fn try_spawn<F>(
        self,
        fut: F,
    ) -> Result<Task<'scope, <F::Output as Outcome<E>>::Ok, E>, Closed>
    where
        F: Future + 'scope,
        F::Output: Outcome<E>,
        K: Accepts<'scope, F, E>,
    {
        self.nursery.insert_within(fut, self.deadline, self.options)
    }
}

impl<E, K: Kind> fmt::Debug for Builder<'_, '_, E, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("options", &self.options)
            .finish()
    }
}

/// A wait on the nursery's state, shared by [`Admit`] and [`Cancelled`]:
/// ready once `ready(state)` holds; otherwise its waker sits in the
/// `waiters` list of the state (one slot, reused, freed when it is dropped).
struct WaitOn<'n, 'scope, E, K: Kind> {
    nursery: &'n Nursery<'scope, E, K>,
    ready: fn(&State<E, K>) -> bool,
    waiters: fn(&mut State<E, K>) -> &mut Waiters,
    /// Its slot among the waiters, once it waited.
    key: Option<usize>,
}

impl<E, K: Kind> WaitOn<'_, '_, E, K> {
    fn poll(&mut self, cx: &Context<'_>) -> Poll<()> {
        let mut state = self.nursery.state();
        if (self.ready)(&state) {
            return Poll::Ready(());
        }
        (self.waiters)(&mut state).register(&mut self.key, cx.waker());
        Poll::Pending
    }
}

impl<E, K: Kind> Drop for WaitOn<'_, '_, E, K> {
    fn drop(&mut self) {
        if self.key.is_some() {
            let waker = (self.waiters)(&mut self.nursery.state()).remove(&mut self.key);
            drop(waker); // with no lock held
        }
    }
}

/// The future of [`Nursery::admit`].
#[must_use = "futures do nothing unless polled"]
pub struct Admit<'n, 'scope, E, K: Kind = Sendable>(WaitOn<'n, 'scope, E, K>);

impl<'n, 'scope, E, K: Kind> Admit<'n, 'scope, E, K> {
    fn new(nursery: &'n Nursery<'scope, E, K>) -> Self {
        Admit(WaitOn {
            nursery,
            // room for one more, or cancelling (a spawn is dropped anyway)
            ready: |state| {
                state.cancel_requested
                    || state
                        .children
                        .limit
                        .as_ref()
                        .is_none_or(|limit| limit.running < limit.max && limit.waiting() == 0)
            },
            waiters: |state| &mut state.admit_waiters,
            key: None,
        })
    }
}

impl<E, K: Kind> Future for Admit<'_, '_, E, K> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.poll(cx)
    }
}

impl<E, K: Kind> fmt::Debug for Admit<'_, '_, E, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admit").finish_non_exhaustive()
    }
}

/// The future of [`Nursery::cancelled`].
#[must_use = "futures do nothing unless polled"]
pub struct Cancelled<'n, 'scope, E, K: Kind = Sendable>(WaitOn<'n, 'scope, E, K>);

impl<'n, 'scope, E, K: Kind> Cancelled<'n, 'scope, E, K> {
    fn new(nursery: &'n Nursery<'scope, E, K>) -> Self {
        Cancelled(WaitOn {
            nursery,
            ready: |state| state.cancel_requested,
            waiters: |state| &mut state.cancel_waiters,
            key: None,
        })
    }
}

impl<E, K: Kind> Future for Cancelled<'_, '_, E, K> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.poll(cx)
    }
}

impl<E, K: Kind> fmt::Debug for Cancelled<'_, '_, E, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancelled").finish_non_exhaustive()
    }
}

/// Spawns a `parallel` child: made by [`Builder::parallel`]; what
/// `spawn!(fut, parallel)` uses.
///
/// A parallel child runs as a task of the runtime, on any of its worker
/// threads, and keeps every promise of a nursery's child: the nursery waits
/// for it, its failure cancels its siblings (and theirs cancels it), its
/// error is collected, its panic resumes in the nursery's caller, `shield`,
/// `background`, `name` and its task handle work as for a local child. When
/// it is cancelled — or the whole nursery future is dropped — its future is
/// dropped before the nursery goes on (if a worker is polling it at that
/// moment, after that poll returns); nothing of it is left running. Only
/// leaking the nursery's future (`mem::forget`) skips that drop: then a
/// parallel child, which owns all it uses, may run on to its end (its
/// output goes nowhere), where a local child is never polled again.
///
/// It runs on the nursery's [`Spawner`]: the one given with
/// [`Nursery::set_spawner`], else the process-wide one, else (feature
/// `tokio`) the tokio runtime the nursery runs on. With none of these,
/// spawning gives [`SpawnError::NoSpawner`].
///
/// A parallel child cannot borrow the nursery: it learns of cancellation
/// through [`Nursery::cancel_token`]. A `CancelScope::shielded()` section
/// inside it is not seen by its nursery (it runs on another thread): shield
/// the whole child with [`ParallelBuilder::shield`] instead.
///
/// # Examples
///
/// ```
/// use nursery::{nursery, spawn};
///
/// #[nursery(n)]
/// async fn squares(pool: futures::executor::ThreadPool) -> Result<u64, nursery::Errors<std::io::Error>> {
///     n.set_spawner(pool); // not needed on tokio (feature `tokio`)
///     let tasks: Vec<_> = (1..=4u64)
///         .map(|i| spawn!(async move { Ok(i * i) }, parallel))
///         .collect();
///     let mut sum = 0;
///     for task in tasks {
///         sum += task.await;
///     }
///     Ok(sum)
/// }
///
/// let pool = futures::executor::ThreadPool::new().unwrap();
/// assert_eq!(futures::executor::block_on(squares(pool)).unwrap(), 30);
/// ```
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct ParallelBuilder<'n, 'scope, E, K: Kind = Sendable> {
    inner: Builder<'n, 'scope, E, K>,
    /// `false`: `parallel_if(false)`, a local child after all.
    parallel: bool,
}

impl<'n, 'scope, E, K: Kind> ParallelBuilder<'n, 'scope, E, K> {
    /// Names the child; see [`Builder::name`].
    pub fn name(self, name: impl Into<Cow<'static, str>>) -> Self {
        ParallelBuilder {
            inner: self.inner.name(name),
            ..self
        }
    }

    /// Shields the child; see [`Builder::shield`].
    pub fn shield(self) -> Self {
        ParallelBuilder {
            inner: self.inner.shield(),
            ..self
        }
    }

    /// Makes the child a background child; see [`Builder::background`].
    pub fn background(self) -> Self {
        ParallelBuilder {
            inner: self.inner.background(),
            ..self
        }
    }

    /// Starts the child on the nursery's spawner, and gives its handle, as
    /// [`Nursery::spawn`] does for a local child.
    ///
    /// A nursery that is cancelling drops `fut` without running it and
    /// gives a handle with no value, as [`Nursery::spawn`] does (and so
    /// does a nursery that has finished).
    ///
    /// # Panics
    ///
    /// When the child cannot be started: no spawner is known (the message
    /// says how to give one, as `tokio::spawn` outside a runtime does), or
    /// the spawner refuses it. [`ParallelBuilder::try_spawn`] gives these
    /// as a [`SpawnError`].
    #[track_caller]
    pub fn spawn<F>(self, fut: F) -> Task<'scope, <F::Output as Outcome<E>>::Ok, E>
    where
        F: Future + Send + 'static,
        F::Output: Outcome<E> + Send + 'static,
        E: 'scope,
    {
        match self.try_spawn(fut) {
            Ok(task) => task,
            Err(SpawnError::Closed) => Task::new(None),
            Err(error) => panic!("{error} (`try_spawn` gives this as an error)"),
        }
    }

    /// Like [`ParallelBuilder::spawn`], with the reasons a child cannot be
    /// started as an error.
    ///
    /// # Errors
    ///
    /// [`SpawnError::NoSpawner`] when no spawner is known,
    /// [`SpawnError::Rejected`] when it refuses the task,
    /// [`SpawnError::Closed`] when the nursery has finished. In each case
    /// `fut` is dropped without being polled.
    pub fn try_spawn<F>(
        self,
        fut: F,
    ) -> Result<Task<'scope, <F::Output as Outcome<E>>::Ok, E>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Outcome<E> + Send + 'static,
        E: 'scope,
    {
        let nursery = self.inner.nursery;
        let mut options = self.inner.options;
        if !self.parallel {
            // `Send + 'static`: accepted by a nursery of any kind.
            return Ok(nursery.insert_within(fut, self.inner.deadline, options)?);
        }
        let (spawner, late, fut, limited) = {
            let mut state = nursery.state();
            // Checked before the task is started, by the rule `insert_node`
            // applies again to the stand-in.
            match state.admission(&options) {
                Admission::Closed => return Err(SpawnError::Closed),
                Admission::DropUnpolled => {
                    drop(state);
                    drop(fut); // never polled, as for a local child
                    return Ok(Task::new(None));
                }
                Admission::Insert => {}
            }
            let spawner = crate::parallel::choose(state.spawner.as_ref())?;
            let late = std::sync::Arc::clone(state.late.get_or_insert_with(Default::default));
            // Under a limit, its task starts when its turn comes.
            let limited = state.children.limit.is_some() && !options.background;
            (spawner, late, fut, limited)
        };
        let fut = nursery.trace.parallel(fut, &mut options);
        let name = options.name.clone();
        if limited {
            let stand_in = crate::parallel::Deferred::new(spawner, fut, name, late);
            return Ok(nursery.insert_within(stand_in, self.inner.deadline, options)?);
        }
        let proxy = crate::parallel::start(spawner, fut, name, late)?;
        Ok(nursery.insert_within(proxy, self.inner.deadline, options)?)
    }

    /// Starts `f(status)` as a parallel child and waits until it calls
    /// [`TaskStatus::started`]; see [`Builder::start`].
    ///
    /// # Panics
    ///
    /// As [`ParallelBuilder::spawn`].
    #[track_caller]
    pub fn start<T, F, Fut>(self, f: F) -> Started<T>
    where
        T: Send + 'static,
        F: FnOnce(TaskStatus<T>) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Outcome<E> + Send + 'static,
        E: 'scope,
    {
        match self.start_child(f) {
            (started, Ok(()) | Err(SpawnError::Closed)) => started,
            (_, Err(error)) => panic!("{error} (`try_start` gives this as an error)"),
        }
    }

    /// Like [`ParallelBuilder::start`], with the reasons a child cannot be
    /// started as an error.
    ///
    /// # Errors
    ///
    /// As [`ParallelBuilder::try_spawn`].
    pub fn try_start<T, F, Fut>(self, f: F) -> Result<Started<T>, SpawnError>
    where
        T: Send + 'static,
        F: FnOnce(TaskStatus<T>) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Outcome<E> + Send + 'static,
        E: 'scope,
    {
        let (started, spawned) = self.start_child(f);
        spawned.map(|()| started)
    }

    #[allow(unused_mut)] // `mut` for the task tree's flag
    fn start_child<T, F, Fut>(mut self, f: F) -> (Started<T>, Result<(), SpawnError>)
    where
        T: Send + 'static,
        F: FnOnce(TaskStatus<T>) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Outcome<E> + Send + 'static,
        E: 'scope,
    {
        let (status, started) = crate::start::status(self.inner.options.name.clone());
        #[cfg(feature = "task-tree")]
        {
            self.inner.options.started = Some(status.tree_flag());
        }
        let child = crate::start::watch::<T, E, _>(&started, f(status));
        let spawned = self.try_spawn(child).map(drop);
        (started, spawned)
    }
}

impl<E, K: Kind> fmt::Debug for ParallelBuilder<'_, '_, E, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParallelBuilder")
            .field("options", &self.inner.options)
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// The child of [`Nursery::cancel_on`]: waits for its signal, then
    /// cancels the nursery.
    #[doc(hidden)]
    pub struct CancelOn<F> {
        #[pin]
        signal: F,
        token: Option<CancelToken>,
    }
}

impl<F: Future> Future for CancelOn<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        std::task::ready!(this.signal.poll(cx));
        if let Some(token) = this.token.take() {
            token.cancel();
        }
        Poll::Ready(())
    }
}
