//! The child registry: a slab of children and a queue of the ones that
//! were woken.
//!
//! Each child is one allocation (a node, see `node.rs`) whose waker pushes
//! the child's index onto the shared ready queue (once, until it is polled
//! again) and wakes the nursery's task. The driver polls only the children
//! in that queue, in batches of [`BATCH`] taken with one lock, and at most
//! two batches' worth per poll of the nursery before it yields back to the
//! executor (sooner when the runtime's budget is spent or a child yielded):
//! the cost of one wake does not depend on how many children there are, a
//! chain of wakes runs within one poll, and a burst of ready children
//! cannot keep the nursery's task from yielding (the trap that makes
//! `FuturesUnordered` quadratic on tokio, whose coop budget defers the wakes
//! of children polled after the budget ran out).
//!
//! The slab and the queues are in blocks (`blocks.rs`).

use std::borrow::Cow;
use std::collections::HashMap;

use crate::blocks::{BlockVec, IndexQueue};

use crate::node::{BACKGROUND, Lent, NodeRef, SHIELD, Slot};
// loom's under `--cfg loom`: the node's loom models reach this queue.
use crate::sync::shim::{Arc, AtomicBool, AtomicWaker, Mutex, Ordering, lock};

const NONE: u32 = u32::MAX;

/// How many queued children the driver takes (and polls) at once.
pub(crate) const BATCH: usize = 64;

/// The part of a nursery that wakers reach: `'static`, `Send` and `Sync`.
pub(crate) struct Shared {
    ready: Mutex<IndexQueue>,
    pub(crate) parent: AtomicWaker,
    /// The driver is inside its step: it looks at the queue before it
    /// returns, so a child queued now needs no wake of the parent.
    driving: AtomicBool,
    /// The body's own waker fired: poll it (again, if within the step).
    pub(crate) body_woken: AtomicBool,
    /// Children whose claimed failure their handle gave back unread
    /// (`Task::result` dropped after the failure was written), for the
    /// driver to hand to the nursery's policy; `any_returned` says there
    /// are some without taking the lock.
    returned: Mutex<Vec<NodeRef>>,
    any_returned: AtomicBool,
    /// Failures claimed by a child's handle (`Task::result`), written by the
    /// driver and not yet taken: each a `Box<Failure<E>>`, type-erased, by
    /// the child's node address (see `node.rs`, `swap_failure`). Touched
    /// only on that rare path; left here, one leaks (memory only) if its
    /// handle was leaked.
    pub(crate) claimed: Mutex<Vec<(std::num::NonZeroUsize, crate::node::ErasedFailure)>>,
    /// The nursery is cancelling (or was cancelled, or dropped): code of
    /// it awaiting a child that ended without a value will be dropped.
    pub(crate) cancelling: AtomicBool,
}

/// The body's waker (from its second poll on): marks the body woken, so the
/// driver polls it only then, and at once when a child it awaits finishes
/// within the same step (a chain of nested nurseries unwinds in one pass).
pub(crate) struct BodyWake(pub(crate) Arc<Shared>);

impl std::task::Wake for BodyWake {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.body_woken.store(true, Ordering::Release);
        self.0.wake_parent();
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            ready: Mutex::new(IndexQueue::default()),
            parent: AtomicWaker::new(),
            driving: AtomicBool::new(false),
            body_woken: AtomicBool::new(false),
            returned: Mutex::new(Vec::new()),
            any_returned: AtomicBool::new(false),
            claimed: Mutex::new(Vec::new()),
            cancelling: AtomicBool::new(false),
        }
    }
}

impl Shared {
    /// Moves up to `out.len()` queued indices into `out`, in order, with one
    /// lock.
    pub(crate) fn take_ready(&self, out: &mut [u32]) -> usize {
        let mut ready = lock(&self.ready);
        let count = out.len().min(ready.len());
        for slot in &mut out[..count] {
            *slot = ready.pop_front().expect("counted");
        }
        count
    }

    /// Puts indices taken but not polled back at the front, in order.
    pub(crate) fn requeue_front(&self, indices: &[u32]) {
        let mut ready = lock(&self.ready);
        for &index in indices.iter().rev() {
            ready.push_front(index);
        }
    }

    pub(crate) fn ready_len(&self) -> usize {
        lock(&self.ready).len()
    }

    /// Queues child `index` and wakes the nursery's task.
    pub(crate) fn schedule(&self, index: u32) {
        lock(&self.ready).push_back(index);
        // Acquire: pairs with the driver clearing `driving` (AcqRel) after it
        // last looked at the queue; if we see it set, it has not looked yet.
        if !self.driving.load(Ordering::Acquire) {
            self.parent.wake();
        }
    }

    /// Wakes the nursery's task, unless the driver is inside its step.
    pub(crate) fn wake_parent(&self) {
        if !self.driving.load(Ordering::Acquire) {
            self.parent.wake();
        }
    }

    /// A handle gives back a child whose claimed failure it did not read;
    /// the driver takes it at its next step.
    pub(crate) fn return_claimed(&self, node: NodeRef) {
        lock(&self.returned).push(node);
        self.any_returned.store(true, Ordering::Release);
        self.parent.wake();
    }

    /// The children handles gave back, if any (a load when there are none).
    pub(crate) fn take_returned(&self) -> Vec<NodeRef> {
        // A load first: this runs at every step, and there are almost never
        // any (the swap is a write to a shared line).
        if !self.any_returned.load(Ordering::Acquire)
            || !self.any_returned.swap(false, Ordering::AcqRel)
        {
            return Vec::new();
        }
        std::mem::take(&mut *lock(&self.returned))
    }

    /// Marks the driver as inside (`true`) or outside its step.
    pub(crate) fn set_driving(&self, driving: bool) {
        self.driving.store(driving, Ordering::Release);
    }
}

/// What a child was spawned with.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) shield: bool,
    pub(crate) background: bool,
    pub(crate) parallel: bool,
    /// The spawned expression, from `spawn!`: the child's name in traces
    /// when it has none of its own.
    pub(crate) label: Option<&'static &'static str>,
    /// A span made before the child was inserted (a parallel child's, whose
    /// runtime task runs in it too).
    #[cfg(feature = "tracing")]
    pub(crate) span: Option<tracing::Span>,
    /// When it was spawned, for the task tree.
    #[cfg(feature = "task-tree")]
    pub(crate) born_ms: u32,
    /// A `start!` child's flag, for the task tree.
    #[cfg(feature = "task-tree")]
    pub(crate) started: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Options {
    pub(crate) fn flags(&self) -> u32 {
        (if self.shield { SHIELD } else { 0 }) | (if self.background { BACKGROUND } else { 0 })
    }
}

/// A slab of children with counts of what is still alive.
pub(crate) struct Registry {
    slots: BlockVec,
    /// The first vacant slot (`NONE`: none); the rest are linked through
    /// the vacant slots themselves.
    free: u32,
    /// Children spawned and not yet polled: queued here, under the lock the
    /// spawner holds anyway, rather than in the shared queue.
    fresh: IndexQueue,
    shared: Option<Arc<Shared>>,
    /// Names of the children that have one.
    names: HashMap<usize, Cow<'static, str>>,
    /// What the task tree shows of each slot's child.
    #[cfg(feature = "task-tree")]
    info: Vec<crate::tree::ChildInfo>,
    /// The flags of `start!` children, for the task tree.
    #[cfg(feature = "task-tree")]
    started: HashMap<usize, std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The driver is inside its step, and looks at `fresh` before it
    /// returns: a child spawned now needs no wake of the nursery's task
    /// (set and cleared under the nursery's lock, like `fresh` itself).
    pub(crate) in_step: bool,
    /// The nursery's shielded-section counts, once a section registered:
    /// a child that leaves retires its slot's count.
    pub(crate) shields: Option<std::sync::Arc<crate::shield::Shields>>,
    /// `limit = N`: how many children may run at once, and who waits.
    pub(crate) limit: Option<Limit>,
    /// Children alive.
    pub(crate) live: usize,
    /// Children alive that are not `background`.
    pub(crate) foreground: usize,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            slots: BlockVec::default(),
            free: NONE,
            fresh: IndexQueue::default(),
            shared: None,
            names: HashMap::new(),
            #[cfg(feature = "task-tree")]
            info: Vec::new(),
            #[cfg(feature = "task-tree")]
            started: HashMap::new(),
            in_step: false,
            shields: None,
            limit: None,
            live: 0,
            foreground: 0,
        }
    }
}

impl Registry {
    /// Once the cancelled children were dropped: the waiting children left
    /// (shielded ones) may start again, in order, under the limit.
    pub(crate) fn reopen_limit(&mut self) {
        if let Some(limit) = &mut self.limit {
            limit.closed = false;
            limit.admit(&mut self.fresh);
        }
    }

    /// The name of the child in `slot`, if it has one.
    pub(crate) fn name_of(&self, slot: u32) -> Option<Cow<'static, str>> {
        self.names.get(&(slot as usize)).cloned()
    }

    /// Sets the limit to `max` (see `Nursery::set_limit`), starting waiting
    /// children if it rose; gives whether there is room now, and whether a
    /// child was started.
    pub(crate) fn set_limit(&mut self, max: usize) -> (bool, bool) {
        let running = self.foreground;
        let limit = self.limit.get_or_insert_with(|| Limit::new(max, running));
        limit.max = max;
        let before = self.fresh.len();
        limit.admit(&mut self.fresh);
        (limit.running < limit.max, self.fresh.len() > before)
    }

    /// The shared wake queue, made if need be.
    pub(crate) fn shared_or_init(&mut self) -> &Arc<Shared> {
        self.shared.get_or_insert_with(Default::default)
    }

    /// The shared wake queue, if any child was ever spawned.
    pub(crate) fn shared(&self) -> Option<&Arc<Shared>> {
        self.shared.as_ref()
    }

    /// Adds a child, made by `make(shared, index, flags)` already queued.
    /// Outside the driver's step (`!in_step`) the nursery's task must then
    /// be woken: the caller does so once it has let go of the nursery's
    /// lock, since the waker is the runtime's code.
    #[inline]
    pub(crate) fn insert<R>(
        &mut self,
        options: Options,
        make: impl FnOnce(Arc<Shared>, u32, u32) -> (NodeRef, R),
    ) -> R {
        let shared = self.shared.get_or_insert_with(Default::default);
        let index = if self.free == NONE {
            self.slots.len()
        } else {
            self.free as usize
        };
        let slot = u32::try_from(index)
            .ok()
            .filter(|&i| i != NONE)
            .expect("a nursery holds fewer than 2^32 - 1 children at once");
        let (node, rest) = make(Arc::clone(shared), slot, options.flags());
        // Under a limit, a child beyond it waits, unpolled, for its turn.
        match &mut self.limit {
            Some(limit) if !options.background => {
                if limit.running < limit.max {
                    limit.running += 1;
                    self.fresh.push_back(slot);
                } else {
                    limit.wait(slot);
                }
            }
            _ => self.fresh.push_back(slot),
        }
        if index == self.slots.len() {
            self.slots.push(Slot::occupied(node));
        } else {
            self.free = self.slots[index]
                .next_free()
                .expect("the free list points at a vacant slot");
            self.slots[index] = Slot::occupied(node);
        }
        self.live += 1;
        if !options.background {
            self.foreground += 1;
        }
        #[cfg(feature = "task-tree")]
        {
            let info =
                crate::tree::ChildInfo::new(options.born_ms, options.label, options.parallel);
            if index == self.info.len() {
                self.info.push(info);
            } else {
                self.info[index] = info;
            }
            if let Some(started) = options.started {
                self.started.insert(index, started);
            }
        }
        if let Some(name) = options.name {
            self.names.insert(index, name);
        }
        rest
    }

    /// Every child alive: its slot, flags, name and tree information.
    #[cfg(feature = "task-tree")]
    pub(crate) fn each_child(
        &self,
        mut f: impl FnMut(
            u32,
            u32,
            Option<&str>,
            &crate::tree::ChildInfo,
            Option<&std::sync::atomic::AtomicBool>,
        ),
    ) {
        for (index, slot) in self.slots.iter().enumerate() {
            if let Some(flags) = slot.flags() {
                let name = self.names.get(&index).map(|n| &**n);
                let info = &self.info[index];
                let started = self.started.get(&index).map(|s| &**s);
                f(index as u32, flags, name, info, started);
            }
        }
    }

    /// Completes a batch of `ready` indices (`count` of them, from the
    /// shared queue) with fresh children up to `ready.len()`, and lends
    /// each child (with its flags) in `nodes`, to poll them with no lock
    /// held: valid until anything is removed from the registry (see
    /// [`Lent`]). Returns the new count.
    pub(crate) fn lend(
        &mut self,
        ready: &mut [u32],
        mut count: usize,
        nodes: &mut [Option<(Lent, u32)>],
    ) -> usize {
        while count < ready.len() {
            let Some(index) = self.fresh.pop_front() else {
                break;
            };
            ready[count] = index;
            count += 1;
        }
        for (node, &index) in nodes.iter_mut().zip(&ready[..count]) {
            *node = self.slots.get(index as usize).and_then(Slot::lend);
            // (a child waiting for its turn is not polled, whatever woke it;
            // one cancelled by its handle is dropped unpolled all the same)
            if self.limit.as_ref().is_some_and(|l| l.is_waiting(index))
                && let Some((lent, _)) = node
                && !lent.is_cancelled()
            {
                *node = None;
            }
        }
        count
    }

    /// Whether a child is in `slot`.
    pub(crate) fn is_occupied(&self, slot: u32) -> bool {
        self.slots
            .get(slot as usize)
            .is_some_and(|s| s.flags().is_some())
    }

    /// How many children are queued to be polled (woken or fresh).
    pub(crate) fn queued(&self) -> usize {
        self.fresh.len() + self.shared.as_ref().map_or(0, |s| s.ready_len())
    }

    /// Frees the slot of a child; gives back the slot's reference to it
    /// (moved, not cloned) and its name.
    pub(crate) fn take(&mut self, index: usize) -> (NodeRef, Option<Cow<'static, str>>) {
        let slot = &mut self.slots[index];
        let flags = slot.flags().expect("removed a vacant slot");
        let node = slot.take(self.free).expect("occupied");
        self.free = index as u32;
        if let Some(shields) = &self.shields {
            shields.retire(index as u32);
        }
        self.live -= 1;
        if flags & BACKGROUND == 0 {
            self.foreground -= 1;
            if let Some(limit) = &mut self.limit {
                limit.leave(index as u32, &mut self.fresh);
            }
        }
        #[cfg(feature = "task-tree")]
        if !self.started.is_empty() {
            self.started.remove(&index);
        }
        let name = if self.names.is_empty() {
            None // most nurseries name no child: no hashing then
        } else {
            self.names.remove(&index)
        };
        (node, name)
    }

    /// Takes out every child whose flags `which` accepts, for the caller to
    /// drop once it has released the lock (their `Drop` may spawn).
    pub(crate) fn drain(
        &mut self,
        mut which: impl FnMut(u32, u32) -> bool,
        out: &mut Vec<NodeRef>,
    ) {
        for index in 0..self.slots.len() {
            self.drain_one(index as u32, &mut |flags| which(flags, index as u32), out);
        }
    }

    /// Takes out the child at `slot` if `which` accepts its flags.
    pub(crate) fn drain_one(
        &mut self,
        slot: u32,
        mut which: impl FnMut(u32) -> bool,
        out: &mut Vec<NodeRef>,
    ) {
        let index = slot as usize;
        let Some(flags) = self.slots.get(index).and_then(Slot::flags) else {
            return;
        };
        if which(flags) {
            // The slot's own reference goes to the caller: no count traffic.
            out.push(self.take(index).0);
        }
    }

    /// Queues every child to be polled again (after a cancellation, so that
    /// shielded children waiting on `cancelled()` see it).
    pub(crate) fn wake_all(&self) {
        for slot in self.slots.iter() {
            slot.schedule();
        }
    }
}

/// `limit = N`: at most `max` children (background ones aside) run at once;
/// the others wait, in the order they were spawned, without being polled.
#[derive(Debug)]
pub(crate) struct Limit {
    pub(crate) max: usize,
    /// Admitted children alive.
    pub(crate) running: usize,
    /// Waiting children, in order: (slot, ticket). An entry whose ticket is
    /// no longer its slot's left the queue (dropped while it waited).
    waiting: std::collections::VecDeque<(u32, u64)>,
    /// Per slot: the ticket of the child waiting there (0: none waits).
    tickets: Vec<u64>,
    next_ticket: u64,
    /// How many wait.
    count: usize,
    /// A child left since the driver last looked: `admit()` waiters may go.
    pub(crate) freed: bool,
    /// The nursery is cancelling: no waiting child starts any more (they
    /// are dropped unpolled with the rest).
    pub(crate) closed: bool,
}

impl Limit {
    /// A limit of `max`, with `running` children already admitted.
    pub(crate) fn new(max: usize, running: usize) -> Self {
        Limit {
            max,
            running,
            waiting: std::collections::VecDeque::new(),
            tickets: Vec::new(),
            next_ticket: 1,
            count: 0,
            freed: false,
            closed: false,
        }
    }

    fn wait(&mut self, slot: u32) {
        let index = slot as usize;
        if self.tickets.len() <= index {
            self.tickets.resize(index + 1, 0);
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.tickets[index] = ticket;
        self.waiting.push_back((slot, ticket));
        self.count += 1;
    }

    pub(crate) fn is_waiting(&self, slot: u32) -> bool {
        self.tickets.get(slot as usize).is_some_and(|&t| t != 0)
    }

    /// How many wait for their turn.
    pub(crate) fn waiting(&self) -> usize {
        self.count
    }

    /// The child in `slot` leaves (it ended, or was dropped): a waiting one
    /// gives up its ticket; a running one makes room for the next.
    fn leave(&mut self, slot: u32, fresh: &mut IndexQueue) {
        if self.is_waiting(slot) {
            self.tickets[slot as usize] = 0;
            self.count -= 1;
            return;
        }
        self.running -= 1;
        self.freed = true;
        if !self.closed {
            self.admit(fresh);
        }
    }

    /// Starts waiting children, in order, while there is room.
    pub(crate) fn admit(&mut self, fresh: &mut IndexQueue) {
        while self.running < self.max {
            let Some((slot, ticket)) = self.waiting.pop_front() else {
                break;
            };
            if self.tickets.get(slot as usize) != Some(&ticket) {
                continue; // it left while it waited
            }
            self.tickets[slot as usize] = 0;
            self.count -= 1;
            self.running += 1;
            fresh.push_back(slot);
        }
    }
}
