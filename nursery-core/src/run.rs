//! The driver: polls a nursery's body and woken children until all are
//! done, applies cancellation, and drops every child when it is dropped.

use crate::sync::shim::Arc;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::{Pin, pin};
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use crate::errors::{Errors, Failure};
use crate::kind::Kind;
use crate::outcome::Failed;

use crate::node::{Aftermath, BACKGROUND, Lent, NodeRef, Payload, Polled, SHIELD};
use crate::nursery::{Nursery, Phase, State, StateGuard};
use crate::registry::{BATCH, BodyWake, Shared};
use crate::runtime::budget_left;
use crate::shield::{self, BODY, Guardian, Interrupted};
use crate::trace::Reason;

/// How a nursery ended, before the caller's return type is applied.
pub(crate) type Ended<T, E> = Result<Option<T>, Errors<E>>;

/// Runs a nursery: `body` is the nursery's body; `absorb` turns its output
/// into its value or its failures. Returns `Ok(Some(value))`, `Ok(None)` if
/// the body was cancelled, or every failure; resumes the first panic.
///
/// # Panics
///
/// When the nursery already has a driver: a nursery is driven once, by the
/// `#[nursery]` fn or `scope!` that made it.
pub(crate) async fn drive<'scope, E, K, B, T>(
    pinned: Pin<&Nursery<'scope, E, K>>,
    body: B,
    absorb: impl FnOnce(B::Output) -> Result<T, Errors<E>>,
) -> Ended<T, E>
where
    K: Kind,
    B: Future,
{
    let nursery = pinned.get_ref();
    claim(pinned);
    // Declared first, so dropped last: after the body, it closes the nursery
    // and drops every child still in it.
    let _teardown = Teardown(nursery);
    let mut body = pin!(Some(body));
    let mut bs = BodyState {
        absorb: Some(absorb),
        value: None,
        waker: BodyWaker::default(),
    };
    poll_fn(|cx| step(nursery, cx, body.as_mut(), &mut bs)).await
}

/// Takes the nursery for this driver, and enters it in the task tree.
fn claim<E, K: Kind>(nursery: Pin<&Nursery<'_, E, K>>) {
    if std::mem::replace(&mut nursery.state().driven, true) {
        panic!(
            "this nursery already has a driver: a `Nursery` is driven once, by the \
             `#[nursery]` fn or `scope!` that made it; open a new nursery instead"
        );
    }
    #[cfg(feature = "task-tree")]
    {
        let born = crate::tree::register(nursery);
        nursery.state().tree.set(born);
    }
}

/// How the body is woken: through the nursery's task for its first poll
/// (an empty nursery allocates nothing), through its own waker after that.
#[derive(Default)]
struct BodyWaker {
    polls: u32,
    /// From the second poll on: the body's own waker, and its flag's home.
    own: Option<(Arc<Shared>, Waker)>,
}

impl BodyWaker {
    /// Whether the body should be polled now, and the waker to poll it with.
    fn due(
        &mut self,
        nursery_shared: impl FnOnce() -> Arc<Shared>,
        parent: &Waker,
    ) -> Option<Waker> {
        match (self.polls, &self.own) {
            (0, _) => {
                self.polls = 1;
                Some(parent.clone())
            }
            (_, None) => {
                // The second poll, whatever any flag says: the first one
                // registered the parent's waker, this one registers its own.
                let shared = nursery_shared();
                let waker = Waker::from(std::sync::Arc::new(BodyWake(shared.clone())));
                self.own = Some((shared, waker.clone()));
                self.polls = 2;
                Some(waker)
            }
            (_, Some((shared, waker))) => shared
                .body_woken
                .swap(false, Ordering::AcqRel)
                .then(|| waker.clone()),
        }
    }
}

/// The body's side of the driver: its output's conversion, its value once
/// it returned, and how it is woken.
struct BodyState<A, T> {
    absorb: Option<A>,
    value: Option<T>,
    waker: BodyWaker,
}

/// One poll of the nursery's task: the prologue (who to wake, a token's
/// cancel), a round of the body and batches of children, then the
/// settlement (the phase machine, drops, the end). See [`Phase`] for the
/// transitions.
fn step<E, K, B, T>(
    nursery: &Nursery<'_, E, K>,
    cx: &mut Context<'_>,
    mut body: Pin<&mut Option<B>>,
    bs: &mut BodyState<impl FnOnce(B::Output) -> Result<T, Errors<E>>, T>,
) -> Poll<Ended<T, E>>
where
    K: Kind,
    B: Future,
{
    #[cfg(feature = "tracing")]
    let span = nursery.trace.span().clone();
    let start = prologue(nursery, cx);
    if let Some(shared) = &start.shared {
        nursery.take_returned(shared);
    }
    // The step runs in the nursery's span (prologue events name it as their
    // parent themselves).
    #[cfg(feature = "tracing")]
    let _entered = span.enter();
    let guardian = shield::nursery_guardian(
        start.shields.clone(),
        #[cfg(feature = "task-tree")]
        nursery.tree().key(),
    );
    let (shared, guardian) =
        shield::guarded(guardian, || round(nursery, cx, body.as_mut(), bs, &start));
    settle(nursery, cx, body, bs, guardian, shared)
}

/// What the prologue found.
struct Start {
    /// The children's wake queue, if any child was ever spawned.
    shared: Option<Arc<Shared>>,
    /// The nursery was cancelling when the step began.
    cancelling: bool,
    /// The counts of shielded sections, once one registered.
    shields: Option<std::sync::Arc<shield::Shields>>,
}

/// One lock for the prologue: who to wake, a token's cancel, and where the
/// children are.
fn prologue<E, K: Kind>(nursery: &Nursery<'_, E, K>, cx: &Context<'_>) -> Start {
    let mut state = nursery.state();
    state.children.in_step = true;
    #[cfg(feature = "task-tree")]
    state.tree.tick();
    if !state
        .parent
        .as_ref()
        .is_some_and(|w| w.will_wake(cx.waker()))
    {
        state.parent = Some(cx.waker().clone());
    }
    if let Some(shields) = &state.shields {
        shields.parent.register(cx.waker());
    }
    if let Some(token) = &state.token {
        token.driver.register(cx.waker());
        if token.requested() {
            state.request_cancel(Reason::Token);
        }
    }
    Start {
        shared: state.children.shared().cloned(),
        cancelling: state.phase >= Phase::Cancelling,
        shields: state.shields.clone(),
    }
}

/// The body (when due) and batches of children, with no lock held; gives
/// the wake queue (made if the body spawned the first child).
fn round<E, K, B, T>(
    nursery: &Nursery<'_, E, K>,
    cx: &mut Context<'_>,
    mut body: Pin<&mut Option<B>>,
    bs: &mut BodyState<impl FnOnce(B::Output) -> Result<T, Errors<E>>, T>,
    start: &Start,
) -> Option<Arc<Shared>>
where
    K: Kind,
    B: Future,
{
    let shielded = |slot: u32| start.shields.as_ref().is_some_and(|s| s.active(slot));
    // The body: polled when woken (the first two times, always), until it is
    // done or dropped (when cancelled, only while a shielded section inside
    // it runs).
    if body.is_some() && (!start.cancelling || shielded(BODY)) {
        let shared_of = || nursery.state().children.shared_or_init().clone();
        if let Some(waker) = bs.waker.due(shared_of, cx.waker()) {
            poll_body(nursery, &waker, body.as_mut(), bs);
        }
    }
    // Batches of the children queued (woken or fresh), until the step has
    // polled STEP_POLLS of them, none is left, the runtime's budget is spent
    // or a child failed: children woken within the step (a chain of wakes)
    // are polled in it, a bounded number of times.
    let shared = start
        .shared
        .clone()
        .or_else(|| nursery.state().children.shared().cloned());
    let Some(queue) = &shared else {
        return None;
    };
    queue.set_driving(true);
    queue.parent.register(cx.waker());
    let mut polled = 0;
    while polled < STEP_POLLS && (polled == 0 || budget_left()) {
        let batch = poll_batch(nursery, queue, body.is_none());
        polled += batch.polled;
        // A child that finished in this batch woke the body (it awaited its
        // handle): poll it now rather than through a wake of the whole task.
        if body.is_some()
            && bs.waker.polls >= 2
            && queue.body_woken.load(Ordering::Acquire)
            && nursery.state().phase < Phase::Cancelling
        {
            if let Some(waker) = bs.waker.due(|| queue.clone(), cx.waker()) {
                shield::set_slot(BODY, false);
                poll_body(nursery, &waker, body.as_mut(), bs);
            }
        }
        if batch.polled == 0 || batch.stopped {
            break;
        }
    }
    shared
}

/// The epilogue: shields adopted, the phase machine advanced, what it
/// cancels dropped (with no lock held), and the end once the body and
/// every child are gone.
fn settle<E, K, B, T, A>(
    nursery: &Nursery<'_, E, K>,
    cx: &mut Context<'_>,
    mut body: Pin<&mut Option<B>>,
    bs: &mut BodyState<A, T>,
    guardian: Guardian,
    shared: Option<Arc<Shared>>,
) -> Poll<Ended<T, E>>
where
    K: Kind,
{
    let mut state = nursery.state();
    // A child spawned from now on wakes the task; one spawned before is
    // seen by the `queued()` checks below.
    state.children.in_step = false;
    adopt_shields(&mut state, guardian, cx);
    let shields = state.shields.clone();
    let shielded = |slot: u32| shields.as_ref().is_some_and(|s| s.active(slot));
    state = advance(nursery, state, cx);
    let mut dropped = Vec::new();
    state.drop_cancelled(&shielded, &mut dropped);
    let drop_body = state.phase >= Phase::Cancelling && body.is_some() && !shielded(BODY);
    if !dropped.is_empty() || drop_body {
        drop(state);
        if drop_body {
            self::drop_body(nursery, body.as_mut());
        }
        drop_all(nursery, dropped);
        nursery.end_background_if_done(body.is_none());
        state = nursery.state();
    }
    // Done when the body and every child are gone.
    if body.is_none() && state.children.live == 0 {
        return Poll::Ready(finish(nursery, state, shared.as_deref(), bs.value.take()));
    }
    drop(state);
    let Some(shared) = shared else {
        return Poll::Pending;
    };
    // Outside the step from here: a child queued after the look below wakes
    // the parent itself; one queued before it is seen (the queue's lock
    // orders the two).
    shared.set_driving(false);
    let body_woken = body.is_some() && shared.body_woken.load(Ordering::Acquire);
    if body_woken || nursery.state().children.queued() > 0 {
        // Yield so other tasks run (and tokio's budget refills), then go on.
        cx.waker().wake_by_ref();
    }
    Poll::Pending
}

/// A shielded section registered with this nursery for the first time
/// during the step: the nursery keeps its counts from now on.
fn adopt_shields<E, K: Kind>(state: &mut State<E, K>, guardian: Guardian, cx: &Context<'_>) {
    let Guardian::Nursery { shields, .. } = guardian else {
        return;
    };
    if let (None, Some(made)) = (&state.shields, shields.into_inner()) {
        made.parent.register(cx.waker());
        // Children that left during this step, before the registry knew the
        // counts, retire theirs now.
        made.retain(|slot| slot == BODY || state.children.is_occupied(slot));
        state.children.shields = Some(made.clone());
        state.shields = Some(made);
    }
}

/// The grace period's transitions: it begins once the children queued at
/// the cancel were polled, and ends when every child is gone or its timer
/// fires (polled with no lock held: a timer given with `set_timer` is user
/// code).
fn advance<'n, 'scope, E, K: Kind>(
    nursery: &'n Nursery<'scope, E, K>,
    mut state: StateGuard<'n, 'scope, E, K>,
    cx: &mut Context<'_>,
) -> StateGuard<'n, 'scope, E, K> {
    if state.children.queued() == 0 {
        state.cancel_backlog = 0; // nothing left of it (some entries were stale)
    }
    state.begin_grace();
    if state.phase == Phase::Grace {
        let mut ended = state.children.live == 0;
        if let (false, Some(mut sleep)) = (ended, state.grace_sleep.take()) {
            drop(state);
            ended = sleep.as_mut().poll(cx).is_ready();
            state = nursery.state();
            state.grace_sleep = Some(sleep);
        }
        if ended {
            state.end_grace();
        }
    }
    state
}

/// The nursery ends: closed, its failures (parallel children's late ones
/// included) returned, or its first panic resumed.
fn finish<'n, 'scope, E, K: Kind, T>(
    nursery: &'n Nursery<'scope, E, K>,
    mut state: StateGuard<'n, 'scope, E, K>,
    shared: Option<&Shared>,
    value: Option<T>,
) -> Ended<T, E> {
    if let Some(shared) = shared {
        // The last `result()` futures went with the body: what they
        // claimed and did not read goes to the policy now.
        drop(state);
        nursery.take_returned(shared);
        state = nursery.state();
    }
    state.phase = Phase::Closed;
    if let Some(late) = state.late.take() {
        // Routed by the policy like any other (a handler is called with no
        // lock held).
        drop(state);
        let late = std::mem::take(&mut *crate::sync::lock(&late));
        for (failed, name) in late {
            nursery.child_failed(failed, name);
        }
        state = nursery.state();
    }
    let panic = state.panic.take();
    let errors = state.errors.take();
    drop(state);
    if let Some(errors) = &errors {
        nursery.trace.failed(errors.len());
    }
    if let Some(shared) = shared {
        shared.set_driving(false);
    }
    if let Some(payload) = panic {
        resume_unwind(payload);
    }
    match errors {
        Some(errors) => Err(errors),
        None => Ok(value),
    }
}

/// At most [`STEP_POLLS`] children are polled in one step (in batches of
/// [`BATCH`]) before the nursery yields to its executor: tokio's budget per
/// poll of a task (128), so that children that each spend one unit of it
/// (a channel's receive) never find it spent, even when the driver cannot
/// see it (without the `tokio` feature) and cannot tell a child whose
/// budget ran out (its wake deferred) from one that waits.
const STEP_POLLS: usize = 2 * BATCH;

/// What one batch did.
struct Batch {
    /// Children taken from the queue (polled, or found gone).
    polled: usize,
    /// The step must end now: the runtime's budget is spent, a background
    /// child waits for the completions to be counted, a child failed, or a
    /// child woke itself (it yielded: the executor runs others first, as
    /// `FuturesUnordered` lets it after two).
    stopped: bool,
}

/// Takes up to [`BATCH`] queued children (woken first, then fresh ones)
/// and polls them, with no lock held.
fn poll_batch<E, K: Kind>(nursery: &Nursery<'_, E, K>, shared: &Shared, body_done: bool) -> Batch {
    let mut ready = [0u32; BATCH];
    let mut nodes: [Option<(Lent, u32)>; BATCH] = [None; BATCH];
    let count = {
        let mut state = nursery.quiet_state();
        // While cancelling, only the backlog of children that were
        // queued at the cancel still gets polled.
        let limit = if state.phase == Phase::Cancelling {
            state.cancel_backlog.min(BATCH)
        } else {
            BATCH
        };
        let count = shared.take_ready(&mut ready[..limit]);
        let count = state.children.lend(&mut ready[..limit], count, &mut nodes);
        if state.phase == Phase::Cancelling {
            state.cancel_backlog -= count;
        }
        count
    };
    // Children that completed: their slots are freed with one lock after
    // the batch (or before anything else is removed).
    let mut ended = [0u32; BATCH];
    let mut ended_count = 0;
    let mut stopped = false;
    let mut yielded = false;
    let mut aftermath = Aftermath::<E>::default();
    for i in 0..count {
        let Some((node, flags)) = nodes[i] else {
            continue; // a stale wake of a child that is gone
        };
        let background_after_completions = flags & BACKGROUND != 0 && ended_count > 0;
        if !budget_left() || background_after_completions {
            // The rest goes back to the front: on budget, the step ends,
            // its wake yields and the next poll has a fresh budget; a
            // background child waits until the completions are counted
            // (it may be due to go, unpolled).
            requeue(nursery, shared, &ready[i..count]);
            stopped = true;
            break;
        }
        shield::set_slot(ready[i], flags & SHIELD != 0);
        // SAFETY: lent by the registry above, and nothing has been removed
        // from it since: completions are only noted in `ended`, and every
        // path below that removes a child ends the batch. `E` is this
        // nursery's error type, and the registry is this nursery's.
        #[allow(unsafe_code)]
        let polled = catch_unwind(AssertUnwindSafe(|| unsafe {
            node.poll::<E>(&mut aftermath, || shield::section_active(ready[i]))
        }));
        match polled {
            Ok(Polled {
                ended: false,
                woken_again,
            }) => {
                yielded |= woken_again;
                continue;
            }
            Ok(Polled { ended: true, .. }) if aftermath.is_clear() => {
                ended[ended_count] = ready[i];
                ended_count += 1;
                continue;
            }
            _ => {}
        }
        // A failure or a panic ends the step (out of line: the loop above
        // is the hot path).
        ended[ended_count] = ready[i];
        ended_badly(
            nursery,
            node,
            shared,
            &ready[i + 1..count],
            &ended[..=ended_count],
            polled.err(),
            &mut aftermath,
            body_done,
        );
        ended_count = 0;
        stopped = true;
        break;
    }
    if ended_count > 0 {
        remove_ended(nursery, &ended[..ended_count]);
        nursery.end_background_if_done(body_done);
        crate::heap::children_ended(ended_count);
    }
    Batch {
        polled: count,
        stopped: stopped || yielded,
    }
}

/// The last of `ended` ended with a failure or a panic (`panic`: of its
/// poll; its `aftermath`: its failure, a panic of its `Drop`): the rest of
/// the batch (`rest`) is requeued before it cancels, so it counts among the
/// children queued at the cancel; the slots of the children that ended are
/// freed now.
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn ended_badly<E, K: Kind>(
    nursery: &Nursery<'_, E, K>,
    node: Lent,
    shared: &Shared,
    rest: &[u32],
    ended: &[u32],
    panic: Option<Payload>,
    aftermath: &mut Aftermath<E>,
    body_done: bool,
) {
    // The child's error, and the first panic of its poll or its drop (a
    // child cancelled by its handle has neither: it is only dropped).
    aftermath.cancelled = false;
    let error = aftermath.failure.take();
    let drop_panic = aftermath.drop_panic.take();
    // Shielded code unwound out of a wait that can never end: the child
    // ends as a cancelled one does.
    let panic = panic.filter(|payload| !payload.is::<Interrupted>());
    if std::mem::take(&mut aftermath.claimed) || (panic.is_some() && node.is_claimed()) {
        requeue(nursery, shared, rest);
        let (error, panic) = (error.map(Ok), panic.map(Err));
        let how = error
            .or(panic)
            .expect("a claimed child ended with a failure");
        return ended_claimed(nursery, ended, how, drop_panic, body_done);
    }
    let panic = panic.or(drop_panic);
    requeue(nursery, shared, rest);
    // The failure cancels the nursery before the slots are freed, so that
    // under a limit no waiting child is started for it.
    let last = *ended.last().expect("at least one child ended");
    let name = (error.is_some() || panic.is_some())
        .then(|| nursery.quiet_state().children.name_of(last))
        .flatten();
    if let Some(payload) = panic {
        nursery.child_panicked(payload, name.clone());
    }
    if let Some(error) = error {
        nursery.child_failed(error, name);
    }
    let node = remove_ended(nursery, ended);
    // A child whose poll panicked still has its future: dropped now, with
    // no lock held; a panic of its `Drop` comes second.
    drop_child(nursery, &node);
    drop(node);
    nursery.end_background_if_done(body_done);
}

/// The last of `ended` ended with a failure its task handle claimed
/// (`Task::result`): the failure goes to the handle, not to the policy (it
/// cancels nobody); a panic of the future's `Drop` comes second, to the
/// policy.
#[cold]
#[inline(never)]
fn ended_claimed<E, K: Kind>(
    nursery: &Nursery<'_, E, K>,
    ended: &[u32],
    how: Result<Failed<E>, Payload>,
    drop_panic: Option<Payload>,
    body_done: bool,
) {
    let last = *ended.last().expect("at least one child ended");
    let name = nursery.quiet_state().children.name_of(last);
    let node = remove_ended(nursery, ended);
    let mut second = drop_panic;
    let failure = match how {
        Ok(Failed::One(error)) => Failure::error_of(error, name.clone(), nursery.name()),
        Ok(Failed::Many(errors)) => Failure::nested(errors, name.clone()),
        Err(payload) => {
            // Its poll panicked: the future is still there, dropped now
            // (with no lock held) without completing the child.
            // SAFETY: the driver, holding the registry's reference to the
            // node (taken out of its slot).
            #[allow(unsafe_code)]
            let dropped =
                catch_unwind(AssertUnwindSafe(|| unsafe { node.drop_future_unsettled() }));
            if let Ok(Some(extra)) | Err(extra) = dropped {
                second = second.or(Some(extra));
            }
            Failure::panic_of(payload, name.clone(), nursery.name())
        }
    };
    // SAFETY: the driver, with the registry's reference; the child ended
    // with this failure, its future is gone and it is not complete yet (it
    // was claimed); `E` is the nursery's.
    #[allow(unsafe_code)]
    let settled = catch_unwind(AssertUnwindSafe(|| unsafe { node.settle_claimed(failure) }));
    match settled {
        Ok(None) => {}
        // The claim ended meanwhile (its handle was dropped).
        Ok(Some(back)) => nursery.route(back),
        // The handle's waker panicked.
        Err(payload) => nursery.panicked(payload),
    }
    if let Some(payload) = second {
        nursery.child_panicked(payload, name);
    }
    drop(node);
    nursery.end_background_if_done(body_done);
}

/// Puts children taken for a batch but not polled back at the front of the
/// queue; while cancelling, they still count among those queued at the
/// cancel, which get their poll.
fn requeue<E, K: Kind>(nursery: &Nursery<'_, E, K>, shared: &Shared, indices: &[u32]) {
    let mut state = nursery.state();
    shared.requeue_front(indices);
    if state.phase == Phase::Cancelling {
        state.cancel_backlog += indices.len();
    }
}

/// Frees the slots of children that ended (one lock for a batch of them);
/// gives back the last one's reference (its name, if a failure needs it,
/// was read before: the failure cancels the nursery before slots are freed).
fn remove_ended<E, K: Kind>(nursery: &Nursery<'_, E, K>, ended: &[u32]) -> NodeRef {
    let (last, rest) = ended.split_last().expect("at least one child ended");
    let mut state = nursery.quiet_state();
    for &index in rest {
        // A node freed here drops only its header (its future and output
        // are gone already), so this may run under the lock.
        drop(state.children.take(index as usize));
    }
    let (last, _) = state.children.take(*last as usize);
    // Under a limit, room was made: `admit()` waiters go (woken with no
    // lock held).
    if let Some(limit) = &mut state.children.limit
        && std::mem::take(&mut limit.freed)
    {
        let waiters = state.admit_waiters.take_all();
        drop(state);
        waiters.into_iter().for_each(Waker::wake);
    }
    last
}

/// Polls the body once with `waker`: its value, its failures, or its panic.
fn poll_body<E, K, B, T>(
    nursery: &Nursery<'_, E, K>,
    waker: &Waker,
    mut body: Pin<&mut Option<B>>,
    bs: &mut BodyState<impl FnOnce(B::Output) -> Result<T, Errors<E>>, T>,
) where
    K: Kind,
    B: Future,
{
    let Some(fut) = body.as_mut().as_pin_mut() else {
        return;
    };
    let mut cx = Context::from_waker(waker);
    match catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx))) {
        Ok(Poll::Pending) => {}
        Ok(Poll::Ready(out)) => {
            drop_body(nursery, body);
            let absorb = bs.absorb.take().expect("the body completes once");
            match absorb(out) {
                Ok(v) => bs.value = Some(v),
                Err(errors) => {
                    let mut state = nursery.state();
                    Errors::extend(&mut state.errors, errors);
                    state.request_cancel(Reason::Failure);
                }
            }
            nursery.end_background_if_done(true);
        }
        Err(payload) if payload.is::<Interrupted>() => drop_body(nursery, body),
        Err(payload) => {
            nursery.trace.body_panicked(&*payload);
            nursery.panicked(payload);
            drop_body(nursery, body);
        }
    }
}

/// Drops the body in place, with no lock held; a panic in its `Drop` is
/// the nursery's panic (the first one wins), never an unwind out of the
/// driver, which would leave shielded children behind.
fn drop_body<E, K: Kind, B>(nursery: &Nursery<'_, E, K>, mut body: Pin<&mut Option<B>>) {
    // The assignment writes `None` even when the drop unwinds.
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| body.set(None))) {
        nursery.panicked(payload);
    }
}

/// Drops a child's future (if it still has one), with no lock held; a
/// panic in its `Drop` is the nursery's panic, like one while polling it.
fn drop_child<E, K: Kind>(nursery: &Nursery<'_, E, K>, child: &NodeRef) {
    // SAFETY: the driver, holding the registry's reference to the node
    // (taken out of its slot).
    #[allow(unsafe_code)]
    let dropped = catch_unwind(AssertUnwindSafe(|| unsafe { child.drop_future() }));
    match dropped {
        Ok(None) => {}
        Ok(Some(payload)) | Err(payload) => nursery.child_panicked(payload, None),
    }
}

impl<E, K: Kind> Nursery<'_, E, K> {
    /// Background children go as soon as the body and every other child
    /// are done, before they are polled again.
    fn end_background_if_done(&self, body_done: bool) {
        let mut dropped = Vec::new();
        {
            let mut state = self.state();
            if body_done && state.children.foreground == 0 && state.children.live > 0 {
                state
                    .children
                    .drain(|flags, _| flags & BACKGROUND != 0, &mut dropped);
            }
        }
        if !dropped.is_empty() {
            drop_all_for(self, dropped, Some(Reason::Background));
        }
    }

    pub(crate) fn panicked(&self, payload: Payload) {
        let mut state = self.state();
        if state.panic.is_none() {
            state.panic = Some(payload);
        }
        state.request_cancel(Reason::Panic);
    }
}

/// Drops the futures of children taken out of the registry, with no lock
/// held: their `Drop` may spawn or cancel.
/// A panic while dropping a child (its own `Drop`, or a nursery inside it
/// resuming a panic of its own) is the nursery's panic, like one while
/// polling it: it resumes once every child is gone.
fn drop_all<E, K: Kind>(nursery: &Nursery<'_, E, K>, children: Vec<NodeRef>) {
    if children.is_empty() {
        return;
    }
    let reason = nursery.state().reason;
    drop_all_for(nursery, children, reason);
}

/// [`drop_all`], with the reason the children are dropped for.
fn drop_all_for<E, K: Kind>(
    nursery: &Nursery<'_, E, K>,
    children: Vec<NodeRef>,
    reason: Option<Reason>,
) {
    let _reason = crate::trace::ReasonGuard::set(reason);
    DROPPING_CHILDREN.with(|d| d.set(d.get() + 1));
    for child in &children {
        drop_child(nursery, child);
    }
    DROPPING_CHILDREN.with(|d| d.set(d.get() - 1));
}

thread_local! {
    /// How many drivers are dropping children on this thread: a nursery
    /// dropped inside one hands its unresumed panic to that driver.
    static DROPPING_CHILDREN: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Closes the nursery and drops every child left in it.
struct Teardown<'n, 'scope, E, K: Kind>(&'n Nursery<'scope, E, K>);

impl<E, K: Kind> Drop for Teardown<'_, '_, E, K> {
    fn drop(&mut self) {
        let dropped_unfinished = {
            // Dropped from outside: cancelled, as far as anyone asks.
            let mut state = self.0.state();
            let mut report = false;
            if state.phase < Phase::Closed {
                state.cancel_requested = true;
                if state.children.live > 0 && state.reason.is_none() {
                    // Reported, but not a cancel children can see and act on
                    // (no token, no `cancelled()`): they are dropped now.
                    state.reason = Some(Reason::Dropped);
                    report = true;
                }
            }
            state.phase = Phase::Closed;
            report
        };
        if dropped_unfinished {
            self.0.trace.cancelled(Reason::Dropped);
        }
        loop {
            let mut dropped = Vec::new();
            self.0.state().children.drain(|_, _| true, &mut dropped);
            if dropped.is_empty() {
                break;
            }
            drop_all_for(self.0, dropped, Some(Reason::Dropped));
        }
        // What `result()` futures dropped with the children claimed and did
        // not read: kept with the nursery's failures (reported below).
        let shared = self.0.state().children.shared().cloned();
        if let Some(shared) = shared {
            self.0.take_returned(&shared);
        }
        {
            // Its children are gone: whoever watches it from outside (its
            // cancel token) sees it cancelled, if it did not end by itself.
            let mut state = self.0.state();
            if state.cancel_requested {
                let waiters = state.cancel_waiters.take_all();
                let token = state.token.clone();
                state.after.wake(waiters, token);
            }
        }
        let errors = self.0.state().errors.take();
        if let Some(errors) = errors {
            self.0.trace.dropped_with_failures(errors.len());
        }
        // The handler goes while the scope it may borrow is alive (a panic
        // of its `Drop` is a panic of the drop of the nursery's future).
        drop(crate::sync::lock(&self.0.handler).take());
        // A panic of this nursery that never got to resume (it was dropped
        // from outside before it finished): if an enclosing nursery is
        // dropping it, that nursery takes it over (and resumes it once its
        // own children are gone), so a panic inside a structure is never
        // lost. Dropped by any other caller (a timeout, `select!`), it does
        // not panic in `drop`: the panic hook reported it when it happened.
        let panic = self.0.state().panic.take();
        if let Some(payload) = panic {
            let inside_a_nursery = DROPPING_CHILDREN.with(std::cell::Cell::get) > 0;
            if inside_a_nursery && !std::thread::panicking() {
                resume_unwind(payload);
            }
        }
    }
}
