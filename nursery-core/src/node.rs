//! A child's single allocation: its header, its future, its output and the
//! waker of whoever awaits its task handle. The module with the `unsafe` it
//! takes (the driver polls a [`Lent`] node: one `unsafe` call in `run.rs`).
//!
//! Safe Rust needs three allocations per child here: a `Waker` must own a
//! `'static` allocation, the child's future is not `'static` (it borrows the
//! nursery's scope), and its task handle shares the output. This module
//! puts all three in one `Node<F>`, reached through a type-erased pointer
//! to its `Header`, with a hand-written waker vtable. It is what
//! `FuturesUnordered` and tokio's tasks do.
//!
//! # The invariants every `SAFETY` comment below relies on
//!
//! 1. **Ownership of the allocation.** `Header::state` holds a reference
//!    count (in units of [`REF`]): one for the registry's slot, one for the
//!    task handle, one per `Waker`. The allocation is freed by whoever drops
//!    the count to zero, through `VTable::dealloc`, which frees memory only:
//!    by then the future and the output have been dropped already (2, 3).
//! 2. **The future** (`Stage::Running`) is touched only by the nursery's
//!    driver: polled through [`Lent::poll`] (a node lent by its registry
//!    slot for one batch, during which nothing is removed from the registry)
//!    and dropped by [`NodeRef::drop_future`], both while the registry's
//!    reference keeps the node alive, from the one
//!    task that owns the nursery (the registry is behind the nursery's
//!    mutex, and a child is polled with no lock held but also with no other
//!    code able to reach its future). It is dropped exactly once, when the
//!    child completes, fails, panics or is cancelled, always before the
//!    nursery is gone: a `Waker` that outlives the nursery keeps only
//!    memory alive, never the future, so nothing that borrows the nursery's
//!    scope is ever touched after the scope ends.
//! 3. **The output** (`Stage::Done`) is written by the driver once, before
//!    it sets `COMPLETE` (release). After that only the task handle touches
//!    it (it saw `COMPLETE` with acquire), unless the handle was already
//!    gone (`HANDLE` clear), in which case the driver drops the output
//!    itself; the `fetch_or`/`fetch_and` pair on `state` decides which side
//!    owns it, exactly once. A task handle cannot outlive the nursery's scope
//!    (its lifetime), so the output is never dropped after the scope ends
//!    either.
//!    A failure its handle claimed (`Task::result`, the `CLAIMED` flag)
//!    follows the output's rule: the driver keeps it (a `Box<Failure<E>>`,
//!    type-erased in `Shared::claimed`, by the node's address) before it
//!    sets `COMPLETE`, and the side that owns the output then owns it; a
//!    handle dropped with it unread gives the node back to the driver
//!    (`Shared::return_claimed`), which takes it (the loom model
//!    `loom_a_claimed_failure_reaches_exactly_one_side`).
//! 4. **The join waker** (`join_waker`) is touched by the task handle only
//!    while `JOIN_WAKER` is clear (to re-register, it first clears the flag
//!    and checks `COMPLETE` in the same `fetch_and`), and by the driver only
//!    after it set `COMPLETE` and saw `JOIN_WAKER` set (tokio's `JoinHandle`
//!    protocol; the loom models at the bottom check it).
//! 5. **Wakers** only touch the header's atomics and `shared` (an `Arc`),
//!    never the stage; they may run on any thread, at any time, also after
//!    the nursery has finished.

#![allow(unsafe_code)]

use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use crate::errors::Failure;
use crate::outcome::{End, Failed, Outcome};
use crate::registry::Shared;
// loom's under `--cfg loom` (the models at the bottom).
use crate::sync::shim::{Arc, AtomicU32, Ordering, UnsafeCell};

/// Queued in the ready queue, not yet polled.
const QUEUED: u32 = 1 << 0;
/// The child ended; its output, if it had one, is in the stage.
const COMPLETE: u32 = 1 << 1;
/// A task handle exists.
const HANDLE: u32 = 1 << 2;
/// The task handle stored a waker in `join_waker`.
const JOIN_WAKER: u32 = 1 << 3;
/// Spawned with `shield`.
pub(crate) const SHIELD: u32 = 1 << 4;
/// Spawned with `background`.
pub(crate) const BACKGROUND: u32 = 1 << 5;
/// Its task handle cancelled it (`Task::cancel`): the driver drops it at
/// its next turn instead of polling it.
const CANCEL: u32 = 1 << 6;
/// Its task handle claimed its failure (`Task::result`): a failure is
/// written into the stage (`Stage::Failed`) for the handle before the
/// child is marked complete, instead of going to the nursery's policy.
/// Set and cleared only by the handle, with `HANDLE` cleared alongside.
const CLAIMED: u32 = 1 << 7;
/// The unit of the reference count, above the flags.
const REF: u32 = 1 << 8;

/// What every node starts with, whatever its future. Aligned to 8 on every
/// target, so that a registry slot can keep three tag bits below a node's
/// address (see [`Slot`]).
#[repr(align(8))]
pub(crate) struct Header {
    /// Flags, and the reference count in units of `REF`.
    state: AtomicU32,
    /// The child's slot in the registry; fixed at spawn.
    index: u32,
    shared: Arc<Shared>,
    vtable: &'static VTable,
    join_waker: UnsafeCell<Option<Waker>>,
}

struct VTable {
    /// A [`PollFn<E>`] for the nursery's `E`, erased (`E` need not be
    /// `'static`).
    poll: *const (),
    drop_future: unsafe fn(NonNull<Header>, settle: bool) -> Option<Payload>,
    /// Moves the output into `*out: Option<T>` (or `None`), where `T` is the
    /// child's success type.
    take_output: unsafe fn(NonNull<Header>, out: *mut ()),
    /// With `*failure: Option<Box<Failure<E>>>` set, keeps it as the
    /// node's claimed failure (in [`Shared::claimed`], by the node's
    /// address); with it `None`, takes the node's claimed failure into it,
    /// if it has one.
    swap_failure: unsafe fn(NonNull<Header>, failure: *mut ()),
    drop_output: unsafe fn(NonNull<Header>),
    dealloc: unsafe fn(NonNull<Header>),
}

// SAFETY: only function pointers, only ever read.
unsafe impl Sync for VTable {}

#[repr(C)]
struct Node<F, O> {
    header: Header,
    stage: UnsafeCell<Stage<F, O>>,
}

/// A child's node: its future, then its success value. A failure is kept
/// in the node only when its handle claimed it (`Task::result`).
type ChildNode<F, E> = Node<Ended<F, E>, OkOf<F, E>>;

/// (A failure its handle claimed is not kept here but beside the nursery's
/// wake queue, [`Shared::claimed`]: a variant for it would make every
/// small child's node a word larger.)
enum Stage<F, O> {
    Running(F),
    Done(O),
    Empty,
}

/// The type of `VTable::poll` for a nursery whose error type is `E`:
/// `Ready` once the child ended; how it ended badly, if it did, in the
/// [`Aftermath`] (written only then, so the common result stays small).
type PollFn<E> = unsafe fn(NonNull<Header>, &mut Context<'_>, &mut Aftermath<E>) -> Poll<()>;

/// A panic's payload.
pub(crate) type Payload = Box<dyn std::any::Any + Send>;

/// What one poll of a child did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Polled {
    /// The child ended: its future is gone.
    pub(crate) ended: bool,
    /// The child was woken again during the poll (it yielded).
    pub(crate) woken_again: bool,
}

/// How a child that ended in a poll ended badly: written by the poll only
/// then, and emptied by the driver before the next poll.
pub(crate) struct Aftermath<E> {
    /// Its failure (the future is gone, no output is kept).
    pub(crate) failure: Option<Failed<E>>,
    /// The panic of its future's `Drop` (or its unawaited output's): it is
    /// marked complete all the same.
    pub(crate) drop_panic: Option<Payload>,
    /// Its handle cancelled it: it was not polled, and its future is still
    /// there for the driver to drop.
    pub(crate) cancelled: bool,
    /// Its failure is claimed by its handle: it is not marked complete
    /// yet; the driver settles it ([`NodeRef::settle_claimed`]).
    pub(crate) claimed: bool,
}

impl<E> Default for Aftermath<E> {
    fn default() -> Self {
        Aftermath {
            failure: None,
            drop_panic: None,
            cancelled: false,
            claimed: false,
        }
    }
}

impl<E> Aftermath<E> {
    /// Nothing was written: the child that ended succeeded.
    #[inline]
    pub(crate) fn is_clear(&self) -> bool {
        self.failure.is_none() && self.drop_panic.is_none() && !self.cancelled
    }
}

/// A child's success type: `<F::Output as Outcome<E>>::Ok`.
pub(crate) type OkOf<F, E> = <<F as Future>::Output as Outcome<E>>::Ok;

/// A counted reference to a node: the registry's, or a task handle's.
#[repr(transparent)]
pub(crate) struct NodeRef {
    ptr: NonNull<Header>,
}

impl NodeRef {
    /// Allocates a node for `fut`, queued to be polled, with one reference
    /// for the registry and one for the task handle.
    pub(crate) fn new<F, E>(
        fut: F,
        shared: Arc<Shared>,
        index: u32,
        flags: u32,
    ) -> (NodeRef, Joiner<OkOf<F, E>>)
    where
        F: Future,
        F::Output: Outcome<E>,
    {
        let node = Box::new(ChildNode::<F, E> {
            header: Header {
                state: AtomicU32::new((2 * REF) | HANDLE | QUEUED | flags),
                index,
                shared,
                vtable: vtable::<F, E>(),
                join_waker: UnsafeCell::new(None),
            },
            stage: UnsafeCell::new(Stage::Running(Ended {
                fut,
                _e: PhantomData,
            })),
        });
        // `Header` is the first field of a `repr(C)` struct: a pointer to the
        // node is a pointer to its header.
        let ptr = NonNull::from(Box::leak(node)).cast::<Header>();
        (
            NodeRef { ptr },
            Joiner {
                node: NodeRef { ptr },
                _t: PhantomData,
            },
        )
    }

    fn header(&self) -> &Header {
        // SAFETY: we hold a reference, so the allocation is alive (1).
        unsafe { self.ptr.as_ref() }
    }

    /// The flags the child was spawned with (`SHIELD`, `BACKGROUND`).
    fn flags(&self) -> u32 {
        self.header().state.load(Ordering::Relaxed) & (SHIELD | BACKGROUND)
    }

    /// Drops the child's future without completing it (cancelled, or it
    /// panicked); its task handle learns that no value will come. Never
    /// unwinds: a panic in the future's `Drop` is returned, after the child
    /// was marked complete (so a handle waiting for it is woken).
    ///
    /// # Safety
    /// The caller is the nursery's driver (2), and holds the registry's
    /// reference (it took the node out of its slot, or lends it).
    pub(crate) unsafe fn drop_future(&self) -> Option<Payload> {
        // SAFETY: driver-only access to the stage (2, caller).
        unsafe { (self.header().vtable.drop_future)(self.ptr, true) }
    }

    /// Drops the future of a child whose poll panicked and whose failure is
    /// claimed, without marking it complete: [`NodeRef::settle_claimed`]
    /// does, once the panic is written for the handle. A panic of the
    /// future's `Drop` is returned.
    ///
    /// # Safety
    /// As [`NodeRef::drop_future`].
    pub(crate) unsafe fn drop_future_unsettled(&self) -> Option<Payload> {
        // SAFETY: driver-only access to the stage (2, caller).
        unsafe { (self.header().vtable.drop_future)(self.ptr, false) }
    }

    /// Gives a claimed child's failure to its handle and marks the child
    /// complete (3). If the handle was dropped in the meantime (its claim
    /// ended), the failure comes back, for the nursery's policy.
    ///
    /// # Safety
    /// The caller is the nursery's driver (2) and holds the registry's
    /// reference; the child ended with `failure`, its future is gone, it is
    /// not yet marked complete; `E` is its nursery's error type.
    pub(crate) unsafe fn settle_claimed<E>(&self, failure: Failure<E>) -> Option<Failure<E>> {
        let header = self.header();
        let mut slot = Some(Box::new(failure));
        // SAFETY: not complete yet, so the stage is the driver's (2, 3);
        // `slot` is the `Option<Box<Failure<E>>>` the erased fn expects.
        unsafe { (header.vtable.swap_failure)(self.ptr, (&raw mut slot).cast()) };
        let mut taken_back = None;
        complete(header, || {
            // No handle is left: the failure is the driver's again (3).
            // SAFETY: as above.
            unsafe { (header.vtable.swap_failure)(self.ptr, (&raw mut taken_back).cast()) };
        });
        taken_back.map(|failure: Box<Failure<E>>| *failure)
    }

    /// Takes back a claimed failure that its handle returned, unread
    /// (its `result()` future was dropped after the failure was written).
    ///
    /// # Safety
    /// The caller is the nursery's driver, which the handle gave the node
    /// to (through [`Shared::return_claimed`]); `E` is its nursery's error
    /// type.
    pub(crate) unsafe fn take_returned<E>(&self) -> Option<Failure<E>> {
        let mut taken: Option<Box<Failure<E>>> = None;
        // SAFETY: the handle gave up the stage to the driver (3), and the
        // types are the node's.
        unsafe { (self.header().vtable.swap_failure)(self.ptr, (&raw mut taken).cast()) };
        taken.map(|failure| *failure)
    }
}

impl Clone for NodeRef {
    fn clone(&self) -> Self {
        // A new reference from an existing one (1).
        acquire(self.header());
        NodeRef { ptr: self.ptr }
    }
}

/// Takes one more reference; aborts before the count could overflow (as
/// `Arc` does), which would free the node while it is in use.
fn acquire(header: &Header) {
    let prev = header.state.fetch_add(REF, Ordering::Relaxed);
    if prev > u32::MAX - 2 * REF {
        std::process::abort();
    }
}

impl Drop for NodeRef {
    fn drop(&mut self) {
        release(self.ptr);
    }
}

/// A node lent by its registry slot to the driver for one batch of polls,
/// without a count of its own (two atomic operations less per poll): valid
/// while the slot still holds it, which the driver guarantees by removing
/// nothing from the registry between `Registry::lend` and the end of the
/// batch (any removal ends the batch; see `run.rs`).
#[derive(Clone, Copy)]
pub(crate) struct Lent {
    ptr: NonNull<Header>,
}

impl Lent {
    /// Its task handle claimed its failure (`Task::result`).
    pub(crate) fn is_claimed(&self) -> bool {
        // SAFETY: lent by its slot, whose reference keeps the header alive.
        let header = unsafe { self.ptr.as_ref() };
        header.state.load(Ordering::Acquire) & CLAIMED != 0
    }

    /// Its task handle cancelled it.
    pub(crate) fn is_cancelled(&self) -> bool {
        // SAFETY: lent by its slot, whose reference keeps the header alive.
        let header = unsafe { self.ptr.as_ref() };
        header.state.load(Ordering::Acquire) & CANCEL != 0
    }

    /// Polls the child with its own waker, with the nursery's `E`;
    /// completion drops the future and hands the output over (3). Also
    /// tells whether the child was woken again during the poll (a child
    /// that yields wakes itself).
    ///
    /// # Safety
    /// The registry slot this was lent from still holds the node (1), the
    /// caller is the nursery's driver (2), and `E` is the error type of the
    /// nursery whose registry lent it (the erased poll function's type).
    ///
    /// A child its handle cancelled is not polled (the driver drops it),
    /// unless `section_active()`: a shielded section runs inside it, which
    /// it finishes first (it is dropped after the poll in which that ends).
    pub(crate) unsafe fn poll<E>(
        self,
        aftermath: &mut Aftermath<E>,
        section_active: impl Fn() -> bool,
    ) -> Polled {
        // SAFETY: the slot's reference keeps the header alive (caller).
        let header = unsafe { self.ptr.as_ref() };
        // No longer queued: a wake from now on, even during this poll,
        // queues the child again.
        let prev = header.state.fetch_and(!QUEUED, Ordering::AcqRel);
        let cancelled = Polled {
            ended: true,
            woken_again: false,
        };
        if prev & CANCEL != 0 && !section_active() {
            // Cancelled by its handle: not polled again; the driver drops it.
            aftermath.cancelled = true;
            return cancelled;
        }
        // SAFETY: the waker's data is this node's header, alive for the whole
        // poll through the slot's reference; `WAKER_VTABLE` upholds the
        // `RawWaker` contract (5). `ManuallyDrop`: this borrowed waker owns
        // no reference.
        let waker = ManuallyDrop::new(unsafe {
            Waker::from_raw(RawWaker::new(
                self.ptr.as_ptr().cast_const().cast(),
                &WAKER_VTABLE,
            ))
        });
        let mut cx = Context::from_waker(&waker);
        // SAFETY: `vtable.poll` was made by `vtable::<F, E>()` for this node
        // with this nursery's `E` (all children of a nursery share it, and
        // the registry that lent the node belongs to the caller's nursery),
        // so the transmute restores its real type.
        let poll: PollFn<E> =
            unsafe { std::mem::transmute::<*const (), PollFn<E>>(header.vtable.poll) };
        // SAFETY: driver-only access to the stage (2, caller).
        let poll = unsafe { poll(self.ptr, &mut cx, aftermath) };
        let now = header.state.load(Ordering::Acquire);
        if poll.is_pending() && now & CANCEL != 0 && !section_active() {
            // Cancelled during the poll, or its shielded section just ended.
            aftermath.cancelled = true;
            return cancelled;
        }
        Polled {
            ended: poll.is_ready(),
            woken_again: now & QUEUED != 0,
        }
    }
}

// SAFETY: a `NodeRef` reaches the stage only through `Lent::poll`/`drop_future`
// (the driver, 2) and `Joiner` (3); the registry holds nodes of `Send`
// children only in a `Send` nursery (see `kind.rs`), and `Task` is `Send`
// only for `Send` outputs.
unsafe impl Send for NodeRef {}
// SAFETY: `&NodeRef` reaches only the header's atomics.
unsafe impl Sync for NodeRef {}

/// A slot of the registry's slab in one word: a node (the registry's
/// reference to it) with the child's spawn flags in the address's low bits
/// (see [`TAG_SHIFT`]; bit 0 clear), or, when vacant, the index of the next
/// vacant slot (`next << 1 | 1`, an address with no provenance). The free
/// list lives in the vacant slots themselves, so nothing grows while
/// children complete.
///
/// Why the flags are here too: the driver needs them for every child of a
/// batch before it polls it, and reading them from the node's header meant
/// a first touch of every node in a row, each a cache miss once a nursery's
/// children outgrow the cache (measured: `Registry::lend` spent 87% of its
/// time on that load at N = 100 000). The slab is read in order; the node
/// is then first touched by its poll.
#[repr(transparent)]
pub(crate) struct Slot(*mut Header);

/// A slot's tag is the spawn flags shifted down by this: `SHIELD` to bit 1,
/// `BACKGROUND` to bit 2, with bit 0 clear (occupied).
const TAG_SHIFT: u32 = 3;
const _: () = assert!(SHIELD >> TAG_SHIFT == 1 << 1 && BACKGROUND >> TAG_SHIFT == 1 << 2);
/// The bits of an occupied slot that are not the node's address.
const TAG_MASK: usize = 0b111;

// The tags fit below every node's address: a node starts with its header.
const _: () = assert!(std::mem::align_of::<Header>() > TAG_MASK);

impl Slot {
    pub(crate) fn vacant(next: u32) -> Slot {
        Slot(std::ptr::without_provenance_mut(((next as usize) << 1) | 1))
    }

    pub(crate) fn occupied(node: NodeRef) -> Slot {
        let tag = (node.flags() >> TAG_SHIFT) as usize;
        let ptr = node.ptr.as_ptr();
        std::mem::forget(node); // the slot now owns the reference
        Slot(ptr.map_addr(|addr| addr | tag))
    }

    /// The word of a vacant slot, which owns nothing.
    fn into_word(self) -> *mut Header {
        let word = self.0;
        std::mem::forget(self);
        word
    }

    fn is_occupied(&self) -> bool {
        self.0.addr() & 1 == 0
    }

    /// The node of an occupied slot.
    fn node(&self) -> Option<NonNull<Header>> {
        if !self.is_occupied() {
            return None;
        }
        let ptr = self.0.map_addr(|addr| addr & !TAG_MASK);
        // SAFETY: an occupied slot holds a live node's address, tagged.
        Some(unsafe { NonNull::new_unchecked(ptr) })
    }

    /// The flags the child was spawned with (`SHIELD`, `BACKGROUND`), if
    /// the slot holds one; without touching the node.
    pub(crate) fn flags(&self) -> Option<u32> {
        self.is_occupied()
            .then(|| ((self.0.addr() & TAG_MASK) as u32) << TAG_SHIFT)
    }

    /// The node, lent without a count (see [`Lent`]), and its flags.
    pub(crate) fn lend(&self) -> Option<(Lent, u32)> {
        Some((Lent { ptr: self.node()? }, self.flags()?))
    }

    /// Queues the child to be polled again (after a cancellation), if the
    /// slot holds one.
    pub(crate) fn schedule(&self) {
        if let Some(ptr) = self.node() {
            // SAFETY: the slot's reference keeps the node alive while it is
            // borrowed (1).
            wake_header(unsafe { ptr.as_ref() });
        }
    }

    pub(crate) fn next_free(&self) -> Option<u32> {
        (!self.is_occupied()).then(|| (self.0.addr() >> 1) as u32)
    }

    /// Takes the node out, leaving the slot vacant with `next` as its link.
    pub(crate) fn take(&mut self, next: u32) -> Option<NodeRef> {
        let ptr = self.node()?;
        // The word is replaced, not the `Slot` (whose `Drop` would run); the
        // slot's reference moves into the returned `NodeRef`.
        self.0 = Slot::vacant(next).into_word();
        Some(NodeRef { ptr })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(node) = self.take(0) {
            drop(node);
        }
    }
}

// SAFETY: a slot is a `NodeRef` or an integer; see `NodeRef`.
unsafe impl Send for Slot {}
// SAFETY: as for `NodeRef`.
unsafe impl Sync for Slot {}

/// Drops one reference; frees the allocation with the last one (1).
fn release(ptr: NonNull<Header>) {
    // SAFETY: the caller owns one reference, so the header is alive.
    let header = unsafe { ptr.as_ref() };
    let prev = header.state.fetch_sub(REF, Ordering::AcqRel);
    debug_assert!(prev >= REF, "node reference count underflow");
    if prev < 2 * REF {
        // SAFETY: that was the last reference: nobody else can reach the
        // node, and its stage is empty (2, 3).
        unsafe { (header.vtable.dealloc)(ptr) }
    }
}

/// The user's future, its output split into success and failure.
struct Ended<F, E> {
    fut: F,
    _e: PhantomData<fn() -> E>,
}

impl<F, E> Future for Ended<F, E>
where
    F: Future,
    F::Output: Outcome<E>,
{
    type Output = End<OkOf<F, E>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `fut`: `Ended` never moves it out and
        // has no `Drop` of its own.
        let fut = unsafe { self.map_unchecked_mut(|e| &mut e.fut) };
        fut.poll(cx).map(Outcome::into_end)
    }
}

fn vtable<F, E>() -> &'static VTable
where
    F: Future,
    F::Output: Outcome<E>,
{
    struct Of<F, E>(PhantomData<(F, E)>);
    impl<F, E> Of<F, E>
    where
        F: Future,
        F::Output: Outcome<E>,
    {
        const VTABLE: VTable = VTable {
            poll: poll_node::<F, E> as *const (),
            drop_future: drop_future::<F, E>,
            take_output: take_output::<F, E>,
            swap_failure: swap_failure::<F, E>,
            drop_output: drop_output::<F, E>,
            dealloc: dealloc::<F, E>,
        };
    }
    &Of::<F, E>::VTABLE
}

/// The node of `ptr`, typed.
///
/// # Safety
/// `ptr` is a live `Node<Ended<F, E>>`.
unsafe fn node<'a, F, E>(ptr: NonNull<Header>) -> &'a ChildNode<F, E>
where
    F: Future,
    F::Output: Outcome<E>,
{
    // SAFETY: as the caller guarantees.
    unsafe { ptr.cast::<ChildNode<F, E>>().as_ref() }
}

/// # Safety
/// `ptr` is a live `Node<Ended<F, E>>`, polled by the driver only (2).
unsafe fn poll_node<F, E>(
    ptr: NonNull<Header>,
    cx: &mut Context<'_>,
    aftermath: &mut Aftermath<E>,
) -> Poll<()>
where
    F: Future,
    F::Output: Outcome<E>,
{
    // SAFETY: the caller guarantees the type.
    let node = unsafe { node::<F, E>(ptr) };
    let out = node.stage.with_mut(|stage| {
        // SAFETY: exclusive access to the stage (2).
        let Stage::Running(fut) = (unsafe { &mut *stage }) else {
            return Poll::Pending; // a stale wake of an ended child
        };
        // SAFETY: the node never moves (a leaked `Box`), so the future stays
        // pinned in place until it is dropped in place.
        unsafe { Pin::new_unchecked(fut) }.poll(cx)
    });
    let Poll::Ready(out) = out else {
        return Poll::Pending;
    };
    // SAFETY: as ours.
    unsafe { end::<F, E>(ptr, out, aftermath) };
    Poll::Ready(())
}

/// A child's poll returned `Ready(out)`: drops its future, keeps its value
/// (or writes its failure), completes it. Out of line, so that the poll's
/// common path (`Pending`) stays small.
///
/// # Safety
/// As [`poll_node`].
#[inline(never)]
unsafe fn end<F, E>(ptr: NonNull<Header>, out: End<OkOf<F, E>, E>, aftermath: &mut Aftermath<E>)
where
    F: Future,
    F::Output: Outcome<E>,
{
    // SAFETY: the caller guarantees the type.
    let node = unsafe { node::<F, E>(ptr) };
    let next = match out {
        End::Value(value) => Stage::Done(value),
        End::Failed(error) => {
            aftermath.failure = Some(error);
            // Claimed: its handle waits for the failure, which the driver
            // writes (with the child's name) before it completes the child.
            aftermath.claimed = node.header.state.load(Ordering::Acquire) & CLAIMED != 0;
            Stage::Empty
        }
        // Cut short by its own deadline: no value, no failure.
        End::Cancelled => Stage::Empty,
    };
    node.stage.with_mut(|stage| {
        // SAFETY: exclusive access to the stage (2).
        let stage = unsafe { &mut *stage };
        // The future is dropped in place by the assignment; if its `Drop`
        // panics, the assignment still writes `next` while unwinding, so the
        // stage is consistent and the child is completed below all the same.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| *stage = next)) {
            aftermath.drop_panic = Some(payload);
        }
    });
    if aftermath.claimed {
        return;
    }
    // A panic in the output's `Drop` (or in the handle's waker) comes after
    // the first.
    let completed = catch_unwind(AssertUnwindSafe(|| {
        complete(&node.header, || {
            // SAFETY: `complete` calls this only when no handle is left: the
            // output is ours to drop (3).
            unsafe { drop_output::<F, E>(ptr) }
        })
    }));
    if let Err(payload) = completed {
        aftermath.drop_panic.get_or_insert(payload);
    }
}

/// Marks the child complete and wakes its task handle (3, 4); if no handle
/// is left to take the output, `drop_output` drops it here.
fn complete(header: &Header, drop_output: impl FnOnce()) {
    let prev = header.state.fetch_or(COMPLETE, Ordering::AcqRel);
    if prev & HANDLE == 0 {
        drop_output();
        return;
    }
    if prev & JOIN_WAKER != 0 {
        // SAFETY: the handle wrote the waker before setting JOIN_WAKER and
        // does not touch it again now that COMPLETE is set (4).
        let waker = header.join_waker.with_mut(|cell| unsafe { (*cell).take() });
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Drops the future; marks the child complete unless `settle` is false
/// (a claimed failure is written first).
///
/// # Safety
/// As [`poll_node`].
unsafe fn drop_future<F, E>(ptr: NonNull<Header>, settle: bool) -> Option<Payload>
where
    F: Future,
    F::Output: Outcome<E>,
{
    // SAFETY: the caller guarantees the type.
    let node = unsafe { node::<F, E>(ptr) };
    let (running, dropped) = node.stage.with_mut(|stage| {
        // SAFETY: exclusive access to the stage (2).
        let stage = unsafe { &mut *stage };
        if !matches!(stage, Stage::Running(_)) {
            return (false, None);
        }
        // Dropped in place; `Empty` is written even if the `Drop` panics.
        (
            true,
            catch_unwind(AssertUnwindSafe(|| *stage = Stage::Empty)).err(),
        )
    });
    if running && settle {
        // Whatever the drop did, the handle is told the child ended.
        complete(&node.header, || {});
    }
    dropped
}

/// A claimed failure kept for its handle: a `Box<Failure<E>>` with its type
/// erased (see [`Shared::claimed`]).
pub(crate) struct ErasedFailure(NonNull<()>);

// SAFETY: the box moves from the driver to the handle that claimed it (or
// back), which may be on another thread only when the handle is `Send`,
// that is when `E` is (`Task` carries `E`); it is only ever taken whole,
// under the lock of the list it sits in.
unsafe impl Send for ErasedFailure {}

/// # Safety
/// `ptr` is a `Node<Ended<F, E>>` whose stage the caller owns (2, 3), and
/// `failure` points to an `Option<Box<Failure<E>>>`.
unsafe fn swap_failure<F, E>(ptr: NonNull<Header>, failure: *mut ())
where
    F: Future,
    F::Output: Outcome<E>,
{
    // SAFETY: as the caller guarantees.
    let (node, failure) = unsafe {
        (
            node::<F, E>(ptr),
            &mut *failure.cast::<Option<Box<Failure<E>>>>(),
        )
    };
    let mut claimed = crate::sync::shim::lock(&node.header.shared.claimed);
    match failure.take() {
        // Kept, type-erased, by the node's address (unique while the node
        // lives, which whoever takes it back keeps it doing).
        Some(written) => claimed.push((
            ptr.addr(),
            ErasedFailure(NonNull::from(Box::leak(written)).cast()),
        )),
        // Taken back, if there is one.
        None => {
            if let Some(at) = claimed.iter().position(|(node, _)| *node == ptr.addr()) {
                let (_, ErasedFailure(taken)) = claimed.swap_remove(at);
                // SAFETY: kept above from a `Box<Failure<E>>` with this
                // node's `E`, and taken out once.
                *failure = Some(unsafe { Box::from_raw(taken.cast::<Failure<E>>().as_ptr()) });
            }
        }
    }
}

/// # Safety
/// `ptr` is a `Node<Ended<F, E>>` whose output the caller owns (3), and
/// `out` points to an `Option<OkOf<F, E>>`.
unsafe fn take_output<F, E>(ptr: NonNull<Header>, out: *mut ())
where
    F: Future,
    F::Output: Outcome<E>,
{
    // SAFETY: as the caller guarantees.
    let (node, out) = unsafe { (node::<F, E>(ptr), &mut *out.cast::<Option<OkOf<F, E>>>()) };
    // SAFETY: the caller owns the output (3).
    let stage = node
        .stage
        .with_mut(|stage| unsafe { std::mem::replace(&mut *stage, Stage::Empty) });
    *out = match stage {
        Stage::Done(value) => Some(value),
        _ => None,
    };
}

/// # Safety
/// `ptr` is a `Node<Ended<F, E>>` whose output the caller owns (3).
unsafe fn drop_output<F, E>(ptr: NonNull<Header>)
where
    F: Future,
    F::Output: Outcome<E>,
{
    // SAFETY: as the caller guarantees.
    let node = unsafe { node::<F, E>(ptr) };
    // SAFETY: the caller owns the output (3).
    node.stage
        .with_mut(|stage| unsafe { *stage = Stage::Empty });
}

/// # Safety
/// The last reference to a `Node<Ended<F, E>>` was released (1).
unsafe fn dealloc<F, E>(ptr: NonNull<Header>)
where
    F: Future,
    F::Output: Outcome<E>,
{
    // SAFETY: the node was made by `Box::new` in `NodeRef::new` with this
    // type, and nobody can reach it any more.
    let node = unsafe { Box::from_raw(ptr.cast::<ChildNode<F, E>>().as_ptr()) };
    // SAFETY: we own the node.
    let empty = node
        .stage
        .with(|stage| matches!(unsafe { &*stage }, Stage::Empty));
    if !empty {
        // Only when a nursery was leaked with children in it (its driver
        // future forgotten, then the nursery dropped): dropping the future
        // here could touch a scope that has ended, so it is leaked with the
        // rest, as `mem::forget` promised.
        std::mem::forget(node);
        return;
    }
    drop(node); // only the header: an `Arc` and, perhaps, a `'static` waker
}

// ---- the waker (5) ----

static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

/// # Safety
/// `data` comes from a waker made by `NodeRef::poll` or `waker_clone`.
unsafe fn header_of(data: *const ()) -> NonNull<Header> {
    // SAFETY: wakers are only made from a live, non-null header pointer.
    unsafe { NonNull::new_unchecked(data.cast_mut().cast()) }
}

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: the waker being cloned holds (or borrows from the driver) a
    // reference, so the header is alive; the clone takes its own (1).
    acquire(unsafe { header_of(data).as_ref() });
    RawWaker::new(data, &WAKER_VTABLE)
}

unsafe fn waker_wake(data: *const ()) {
    // SAFETY: as `waker_wake_by_ref`; then the waker's reference goes.
    unsafe {
        waker_wake_by_ref(data);
        release(header_of(data));
    }
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: the waker holds a reference (or borrows the driver's), so the
    // header is alive; only its atomics and `Arc` are touched (5).
    wake_header(unsafe { header_of(data).as_ref() });
}

fn wake_header(header: &Header) {
    let prev = header.state.fetch_or(QUEUED, Ordering::AcqRel);
    if prev & (QUEUED | COMPLETE) == 0 {
        header.shared.schedule(header.index);
    }
}

unsafe fn waker_drop(data: *const ()) {
    // SAFETY: the waker owned one reference.
    release(unsafe { header_of(data) });
}

// ---- the task handle's side (3, 4) ----

/// The task handle's reference to a child whose success value is `T`.
pub(crate) struct Joiner<T> {
    node: NodeRef,
    _t: PhantomData<T>,
}

impl<T> Joiner<T> {
    /// Cancels the child: the driver drops it at its next turn, unpolled
    /// (it is queued now, like a wake).
    pub(crate) fn cancel(&self) {
        let header = self.node.header();
        let prev = header.state.fetch_or(CANCEL | QUEUED, Ordering::AcqRel);
        if prev & (QUEUED | COMPLETE) == 0 {
            header.shared.schedule(header.index);
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.node.header().state.load(Ordering::Acquire) & COMPLETE != 0
    }

    /// Whether the child's nursery is cancelling.
    pub(crate) fn nursery_cancelling(&self) -> bool {
        self.node.header().shared.cancelling.load(Ordering::Acquire)
    }

    /// `Ready(Some(value))`, or `Ready(None)` if the child ended without one.
    pub(crate) fn poll_take(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.poll_complete(cx).map(|()| self.take())
    }

    /// `Ready` once the child is complete (its output, or a claimed
    /// failure, is then the handle's).
    pub(crate) fn poll_complete(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let header = self.node.header();
        let state = header.state.load(Ordering::Acquire);
        if state & COMPLETE != 0 {
            return Poll::Ready(());
        }
        if state & JOIN_WAKER != 0 {
            // Take back the right to touch the cell before reading it: while
            // JOIN_WAKER is set, the driver may be taking the waker out
            // (loom found the read here racing that take).
            let prev = header.state.fetch_and(!JOIN_WAKER, Ordering::AcqRel);
            if prev & COMPLETE != 0 {
                return Poll::Ready(());
            }
        }
        // The stored waker is kept if it would wake the same task.
        header.join_waker.with_mut(|cell| {
            // SAFETY: JOIN_WAKER is clear, so the driver does not touch the
            // cell, and only we write it (4).
            let cell = unsafe { &mut *cell };
            if !cell.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *cell = Some(cx.waker().clone());
            }
        });
        let prev = header.state.fetch_or(JOIN_WAKER, Ordering::AcqRel);
        if prev & COMPLETE == 0 {
            return Poll::Pending;
        }
        Poll::Ready(())
    }

    /// Claims the child's failure (`Task::result`): from now on a failure
    /// is written for this handle instead of going to the nursery's
    /// policy, until [`Joiner::unclaim`] or the handle's drop.
    pub(crate) fn claim(&self) {
        self.node.header().state.fetch_or(CLAIMED, Ordering::AcqRel);
    }

    /// Ends the claim once its result was delivered.
    pub(crate) fn unclaim(&self) {
        self.node
            .header()
            .state
            .fetch_and(!CLAIMED, Ordering::AcqRel);
    }

    /// The claimed failure written for this handle, if there is one.
    ///
    /// # Safety
    /// The child is complete (seen with acquire while holding the handle,
    /// so its stage is ours, 3), and `E` is its nursery's error type (every
    /// handle is made by its nursery's spawn, with that nursery's `E`).
    pub(crate) unsafe fn take_failure<E>(&mut self) -> Option<Failure<E>> {
        let mut taken: Option<Box<Failure<E>>> = None;
        // SAFETY: as the caller guarantees.
        unsafe {
            (self.node.header().vtable.swap_failure)(self.node.ptr, (&raw mut taken).cast());
        }
        taken.map(|failure| *failure)
    }

    pub(crate) fn take(&mut self) -> Option<T> {
        let mut out: Option<T> = None;
        // SAFETY: COMPLETE was seen with acquire while we hold the handle, so
        // the output is ours (3); `out` is an `Option<T>` and `T` is the
        // node's success type (made together by `NodeRef::new`).
        unsafe { (self.node.header().vtable.take_output)(self.node.ptr, (&raw mut out).cast()) };
        out
    }
}

impl<T> Drop for Joiner<T> {
    fn drop(&mut self) {
        let header = self.node.header();
        let prev = header
            .state
            .fetch_and(!(HANDLE | CLAIMED), Ordering::AcqRel);
        if prev & (COMPLETE | CLAIMED) == COMPLETE | CLAIMED {
            // A claimed failure may be waiting in the stage, unread: the
            // stage goes back to the driver, which gives the failure to
            // the nursery's policy (a claimed failure is never dropped
            // unseen).
            header.shared.return_claimed(self.node.clone());
            return;
        }
        if prev & COMPLETE != 0 {
            // SAFETY: COMPLETE was set while we held the handle: the output,
            // if there is one left, is ours to drop (3).
            unsafe { (self.node.header().vtable.drop_output)(self.node.ptr) };
        }
    }
}

#[cfg(all(test, not(loom)))]
mod slot_tests {
    use super::*;

    /// A slot holding a child spawned with `flags`, and the child's handle.
    fn child(flags: u32) -> (Slot, Joiner<u8>) {
        let fut = async { Ok::<u8, u8>(1) };
        let (node, joiner) = NodeRef::new::<_, u8>(fut, Arc::new(Shared::default()), 0, flags);
        (Slot::occupied(node), joiner)
    }

    #[test]
    fn a_slot_keeps_the_spawn_flags_beside_the_node() {
        for flags in [0, SHIELD, BACKGROUND, SHIELD | BACKGROUND] {
            let (mut slot, joiner) = child(flags);
            assert_eq!(slot.flags(), Some(flags));
            let (lent, lent_flags) = slot.lend().expect("occupied");
            assert_eq!(lent_flags, flags);
            assert_eq!(
                lent.ptr, joiner.node.ptr,
                "the tags are not part of the address"
            );
            let node = slot.take(7).expect("occupied");
            assert_eq!(node.ptr, joiner.node.ptr);
            assert_eq!(node.flags(), flags, "the header agrees with the slot");
            assert_eq!(slot.flags(), None);
            assert!(slot.lend().is_none());
            assert_eq!(slot.next_free(), Some(7));
            assert!(slot.take(0).is_none());
            // SAFETY: this test is the only driver, and holds the slot's
            // reference it took.
            assert!(unsafe { node.drop_future() }.is_none());
        }
    }
}

/// Loom models of the node's state protocol: the driver completing a child
/// while, on other threads, its task handle takes the output, re-registers
/// its waker or is dropped, and wakers wake, clone and drop. Loom checks
/// every access to the stage and the join waker's cell for races, every
/// interleaving of the atomics, and that the node and the value are freed
/// exactly once (a leaked node leaks its `Arc<Shared>`, which loom reports).
/// `RUSTFLAGS="--cfg loom" cargo test -p nursery-core --lib --release loom`
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::shim::{Mutex, lock};
    use loom::sync::atomic::AtomicUsize;
    use std::future::poll_fn;

    /// A child's value, counting its drops.
    struct Value(Arc<AtomicUsize>);

    impl Drop for Value {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Pending on its first poll (handing a clone of its waker to `waker`)
    /// if `waker` is given, then done with a `Value`.
    struct Child {
        value: Option<Value>,
        waker: Option<Arc<Mutex<Option<Waker>>>>,
    }

    impl Future for Child {
        type Output = Result<Value, u8>;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Value, u8>> {
            if let Some(slot) = self.waker.take() {
                *lock(&slot) = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(Ok(self.value.take().expect("polled after completion")))
        }
    }

    struct Noop;

    impl std::task::Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }

    /// A waker of its own (two of them never `will_wake` each other).
    fn noop_waker() -> Waker {
        Waker::from(std::sync::Arc::new(Noop))
    }

    /// A child in its registry slot, its handle, and its value's drop count.
    fn spawn(waker: Option<Arc<Mutex<Option<Waker>>>>) -> (Slot, Joiner<Value>, Arc<AtomicUsize>) {
        let drops = Arc::new(AtomicUsize::new(0));
        let child = Child {
            value: Some(Value(drops.clone())),
            waker,
        };
        let (node, joiner) = NodeRef::new::<_, u8>(child, Arc::new(Shared::default()), 0, 0);
        (Slot::occupied(node), joiner, drops)
    }

    /// Polls the child in `slot` as the driver does.
    fn poll(slot: &Slot) -> Poll<Result<(), u8>> {
        let (lent, _) = slot.lend().expect("the slot holds the child");
        let mut aftermath = Aftermath::default();
        // SAFETY: the slot holds the node for the whole call, and this thread
        // is the only driver.
        let polled = unsafe { lent.poll::<u8>(&mut aftermath, || false) };
        match (polled.ended, aftermath.failure) {
            (false, _) => Poll::Pending,
            (true, None) => Poll::Ready(Ok(())),
            (true, Some(_)) => Poll::Ready(Err(0)),
        }
    }

    /// The driver completes a child (and the registry frees its slot) while
    /// `handle` runs with the child's task handle on another thread; the
    /// value is dropped exactly once, by one side.
    fn complete_while(handle: impl FnOnce(Joiner<Value>) + Send + 'static) {
        let (slot, joiner, drops) = spawn(None);
        let handle = loom::thread::spawn(move || handle(joiner));
        assert!(poll(&slot).is_ready());
        drop(slot); // the registry frees the slot
        handle.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped once, by one side");
    }

    #[test]
    fn loom_the_output_reaches_a_handle_on_another_thread_once() {
        loom::model(|| {
            complete_while(|mut joiner| {
                let value = loom::future::block_on(poll_fn(|cx| joiner.poll_take(cx)));
                assert!(value.is_some(), "the handle gets the value");
            });
        });
    }

    #[test]
    fn loom_a_handle_re_registering_while_the_child_completes() {
        loom::model(|| {
            complete_while(|mut joiner| {
                let (a, b) = (noop_waker(), noop_waker());
                for waker in [&a, &b] {
                    if let Poll::Ready(value) = joiner.poll_take(&mut Context::from_waker(waker)) {
                        assert!(value.is_some());
                        return;
                    }
                }
                loop {
                    match joiner.poll_take(&mut Context::from_waker(&b)) {
                        Poll::Ready(value) => return assert!(value.is_some()),
                        Poll::Pending => loom::thread::yield_now(),
                    }
                }
            });
        });
    }

    /// A child fails while its handle, on another thread, claims its
    /// failure (`Task::result`) and then reads it or is dropped: the failure
    /// reaches exactly one place — the handle, the driver's policy (claimed
    /// too late, or the claim ended before the write), or the driver again
    /// through the handle's return of an unread failure.
    #[test]
    fn loom_a_claimed_failure_reaches_exactly_one_side() {
        loom::model(|| {
            let shared = Arc::new(Shared::default());
            let (node, joiner) =
                NodeRef::new::<_, u8>(async { Err::<(), u8>(7) }, shared.clone(), 0, 0);
            let mut slot = Slot::occupied(node);
            let handle = loom::thread::spawn(move || {
                let mut joiner = joiner;
                joiner.claim();
                let waker = noop_waker();
                if joiner
                    .poll_complete(&mut Context::from_waker(&waker))
                    .is_pending()
                {
                    return 0; // dropped: the claim ends
                }
                // SAFETY: complete, seen while holding the handle; `u8` is
                // the node's error type.
                let failure = unsafe { joiner.take_failure::<u8>() };
                joiner.unclaim();
                usize::from(failure.is_some())
            });
            // The driver: poll, then the failure goes to the claim or to
            // the policy.
            let (lent, _) = slot.lend().expect("occupied");
            let mut aftermath = Aftermath::default();
            // SAFETY: the slot holds the node; this thread is the driver.
            let polled = unsafe { lent.poll::<u8>(&mut aftermath, || false) };
            assert!(polled.ended);
            let Some(Failed::One(error)) = aftermath.failure.take() else {
                panic!("the child failed")
            };
            let node = slot.take(0).expect("occupied");
            let mut to_policy = 0;
            if aftermath.claimed {
                // SAFETY: the driver, holding the registry's reference; not
                // complete yet (claimed).
                let back = unsafe { node.settle_claimed(Failure::error_of(error, None, None)) };
                to_policy += usize::from(back.is_some());
            } else {
                to_policy += 1;
            }
            let by_handle = handle.join().unwrap();
            for returned in shared.take_returned() {
                // SAFETY: returned by its handle; `u8` is its error type.
                to_policy += usize::from(unsafe { returned.take_returned::<u8>() }.is_some());
            }
            assert_eq!(
                by_handle + to_policy,
                1,
                "the failure reached exactly one side"
            );
            drop(node);
        });
    }

    #[test]
    fn loom_a_handle_dropped_while_the_child_completes() {
        loom::model(|| {
            complete_while(|mut joiner| {
                let waker = noop_waker();
                if let Poll::Ready(value) = joiner.poll_take(&mut Context::from_waker(&waker)) {
                    assert!(value.is_some());
                }
                drop(joiner);
            });
        });
    }

    #[test]
    fn loom_a_waker_on_another_thread_while_the_child_ends() {
        loom::model(|| {
            let stash = Arc::new(Mutex::new(None));
            let (slot, joiner, drops) = spawn(Some(stash.clone()));
            assert!(poll(&slot).is_pending()); // the child hands out its waker
            let waker = lock(&stash).take().expect("the child stored its waker");
            let other = waker.clone();
            let wakes = loom::thread::spawn(move || {
                waker.wake_by_ref();
                drop(waker.clone());
                waker.wake(); // and its reference goes
            });
            drop(joiner);
            assert!(poll(&slot).is_ready());
            drop(slot); // the registry's reference: the node may be freed now
            other.wake(); // a stale wake after the child ended: memory only
            wakes.join().unwrap();
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        });
    }
}
