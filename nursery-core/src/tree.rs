//! Feature `task-tree`: [`task_tree`] renders, at any moment, every running
//! nursery of the program and its children as an indented tree.
//!
//! Each nursery registers itself (a type-erased pointer and a function
//! that reads it) in a process-wide list at its first poll and leaves it
//! when its driver is dropped; `task_tree` locks the list and reads each
//! nursery under the nursery's own lock. Nothing is collected unless a tree
//! is asked for: the steady cost is one registration per nursery, one clock
//! read per step of its driver, and a few bytes per child (its birth time,
//! the spawned expression, whether it is parallel or waiting for `start`).

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::kind::Kind;
use crate::nursery::{Nursery, Phase};
use crate::sync::lock;

/// What the tree shows of a child, kept by the registry per slot (16
/// bytes; a `start!` child's flag is kept aside).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ChildInfo {
    /// Milliseconds since its nursery registered; the top bit says
    /// `parallel`.
    born: u32,
    /// The spawned expression (`spawn!`), for a child without a name (a
    /// thin pointer: the whole entry is 16 bytes).
    pub(crate) label: Option<&'static &'static str>,
}

const PARALLEL: u32 = 1 << 31;

impl ChildInfo {
    pub(crate) fn new(born_ms: u32, label: Option<&'static &'static str>, parallel: bool) -> Self {
        ChildInfo {
            born: born_ms.min(PARALLEL - 1) | if parallel { PARALLEL } else { 0 },
            label,
        }
    }

    fn born_ms(&self) -> u32 {
        self.born & !PARALLEL
    }

    fn parallel(&self) -> bool {
        self.born & PARALLEL != 0
    }
}

/// A nursery's place in the list: a field of the nursery itself, so that
/// the entry leaves the list when the nursery is dropped, whatever became
/// of its driver (forgotten, say) — before the nursery's memory goes.
#[derive(Debug, Default)]
pub(crate) struct Registration {
    key: std::sync::OnceLock<usize>,
}

impl Registration {
    /// Its key in the list, once its driver registered it.
    pub(crate) fn key(&self) -> Option<usize> {
        self.key.get().copied()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(&key) = self.key.get() {
            deregister(key);
        }
    }
}

/// The clock a nursery's children's ages are read on, kept in its state.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    born: Option<Instant>,
    /// Milliseconds since it registered, as of the last spawn.
    now_ms: u32,
    /// A step began since the clock was last read.
    stale: bool,
}

impl Clock {
    /// Called at every step of the driver: children spawned from here on
    /// need the clock read again.
    #[inline]
    pub(crate) fn tick(&mut self) {
        self.stale = true;
    }

    /// The birth of a child spawned now: the clock is read at most once per
    /// step, and only in steps that spawn.
    pub(crate) fn birth(&mut self) -> u32 {
        if self.stale {
            self.stale = false;
            self.read_clock();
        }
        self.now_ms
    }

    fn read_clock(&mut self) {
        if let Some(born) = self.born {
            let elapsed = crate::timer::now().saturating_duration_since(born);
            self.now_ms = u32::try_from(elapsed.as_millis()).unwrap_or(u32::MAX);
        }
    }
}

/// One child, as read for the tree.
struct ChildView {
    slot: u32,
    name: String,
    tags: Vec<&'static str>,
    /// When it was spawned, since its nursery registered.
    born: Duration,
}

/// One nursery, as read for the tree.
/// How many times `read` tries a nursery's lock (yielding between tries)
/// before it shows the nursery as busy.
const BUSY_TRIES: u32 = 1000;

struct NurseryView {
    state: String,
    children: Vec<ChildView>,
}

struct Entry {
    /// The `Nursery`, type-erased; valid while the entry is in the list.
    nursery: *const (),
    read: unsafe fn(*const ()) -> NurseryView,
    name: Option<&'static str>,
    born: Instant,
    /// The nursery and slot (child, or `BODY`) it runs in, if any.
    parent: Option<(usize, u32)>,
}

// SAFETY: the pointer is only dereferenced by `read`, under the list's lock,
// to take the nursery's own mutex; see `register`.
#[allow(unsafe_code)]
unsafe impl Send for Entry {}

#[derive(Default)]
struct List {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
}

static LIST: Mutex<List> = Mutex::new(List {
    entries: Vec::new(),
    free: Vec::new(),
});

/// Adds `nursery` to the list, once (its driver is the only caller, and a
/// nursery has one driver); gives its birth.
///
/// Called at the first poll of its driver, with no lock of the nursery held
/// (`task_tree` takes the list's lock, then nurseries' locks: never the
/// other way round). The nursery is pinned: its memory stays where it is
/// until it is dropped, and its drop takes the entry out first.
pub(crate) fn register<E, K: Kind>(nursery: std::pin::Pin<&Nursery<'_, E, K>>) -> Instant {
    let nursery = nursery.get_ref();
    let born = crate::timer::now();
    let entry = Entry {
        nursery: std::ptr::from_ref(nursery).cast(),
        read: read::<E, K>,
        name: nursery.name(),
        born,
        // the nursery whose child (or body) is being polled: its driver's
        // guardian is on this thread's stack, with the slot it polls
        parent: crate::shield::current_tree_slot(),
    };
    let mut list = lock(&LIST);
    let key = match list.free.pop() {
        Some(key) => {
            list.entries[key] = Some(entry);
            key
        }
        None => {
            list.entries.push(Some(entry));
            list.entries.len() - 1
        }
    };
    drop(list);
    if nursery.tree().key.set(key).is_err() {
        unreachable!("a nursery is registered by its one driver, once");
    }
    born
}

impl Clock {
    pub(crate) fn set(&mut self, born: Instant) {
        self.born = Some(born);
    }
}

/// Takes the nursery out of the list: from here on nothing reads it. Called
/// when the nursery is dropped (its [`Registration`] goes first), with no
/// lock of the nursery held.
fn deregister(key: usize) {
    let mut list = lock(&LIST);
    list.entries[key] = None;
    list.free.push(key);
}

/// Reads a nursery for the tree.
///
/// # Safety
///
/// `ptr` is an entry's pointer, read under the list's lock. It is valid:
/// the nursery was pinned when it registered (the driver takes it as
/// `Pin<&Nursery>`), so its memory is neither moved nor reused before it is
/// dropped (`Pin`'s drop guarantee, which also covers a nursery that is
/// leaked); and the first thing its drop does is take the entry out (its
/// `Registration` field is declared first), under the list's lock — whatever
/// became of its driver, which may have been forgotten. Only the nursery's mutex is
/// used, and through it only data that is itself thread-safe (phases,
/// counts, names, flags read atomically from children's headers): never a
/// child's future, output or error — so reading from another thread is
/// sound even for a nursery whose children are not `Send`.
#[allow(unsafe_code)]
unsafe fn read<E, K: Kind>(ptr: *const ()) -> NurseryView {
    // SAFETY: see above.
    let nursery = unsafe { &*ptr.cast::<Nursery<'_, E, K>>() };
    // Another thread holds the nursery's lock for a moment at most; this
    // thread holds it when a callback run under it (a tracing subscriber)
    // asks for the tree: then the nursery is shown as busy, not waited for.
    let Some(state) = nursery.try_state(BUSY_TRIES) else {
        return NurseryView {
            state: "busy (the tree was asked for from inside it)".to_owned(),
            children: Vec::new(),
        };
    };
    let cancelling = state.phase >= Phase::Cancelling && state.phase < Phase::Closed;
    let phase = match state.phase {
        Phase::Running => "running".to_owned(),
        Phase::Grace => format!(
            "cancelling, grace period ({})",
            state.reason.map_or_else(String::new, |r| r.to_string())
        ),
        Phase::Cancelling | Phase::Cancelled => format!(
            "cancelling ({})",
            state.reason.map_or_else(String::new, |r| r.to_string())
        ),
        Phase::Closed => "finishing".to_owned(),
    };
    let mut children = Vec::new();
    state
        .children
        .each_child(|slot, flags, name, info, started| {
            let mut tags = Vec::new();
            if info.parallel() {
                tags.push("parallel");
            }
            if flags & crate::node::SHIELD != 0 {
                tags.push("shielded");
            }
            if flags & crate::node::BACKGROUND != 0 {
                tags.push("background");
            }
            if started.is_some_and(|s| !s.load(Ordering::Acquire)) {
                tags.push("waiting for start");
            }
            if cancelling && flags & crate::node::SHIELD == 0 {
                tags.push("cancelling");
            }
            let name = match (name, info.label) {
                (Some(name), _) => format!("`{name}`"),
                (None, Some(label)) => crate::trace::OneLine(label).to_string(),
                (None, None) => "(unnamed)".to_owned(),
            };
            children.push(ChildView {
                slot,
                name,
                tags,
                born: Duration::from_millis(u64::from(info.born_ms())),
            });
        });
    NurseryView {
        state: phase,
        children,
    }
}

fn age(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Renders every running nursery of the program, with its children, as an
/// indented tree: names (a nursery's fn; a child's `name = "…"`, or the
/// spawned expression), what each is doing (`running`, `cancelling` and
/// why, `shielded`, `background`, `parallel`, `waiting for start`) and its
/// age. A nursery started inside a child is shown under that child; one
/// inside a nursery's body, under `body`. Call it from anywhere, any
/// thread, at any time (a signal handler's task, a debug endpoint).
///
/// A child's birth is taken at its nursery's step (the clock is read once
/// per step, not per spawn), so a child spawned by the body between two
/// steps looks as old as that step.
///
/// # Examples
///
/// ```
/// use nursery::{nursery, spawn};
///
/// #[nursery]
/// async fn serve() -> String {
///     spawn!(std::future::pending::<()>(), name = "heartbeat", background);
///     spawn!(async {}, name = "quick");
///     tokio::task::yield_now().await; // let the children start
///     nursery_core::task_tree() // `nursery::task_tree` with the `task-tree` feature
/// }
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let tree = rt.block_on(serve());
/// assert!(tree.contains("nursery `serve` (running"), "{tree}");
/// assert!(tree.contains("child `heartbeat` [background]"), "{tree}");
/// ```
pub fn task_tree() -> String {
    let now = crate::timer::now();
    let list = lock(&LIST);
    let mut views = Vec::with_capacity(list.entries.len());
    for entry in &list.entries {
        views.push(entry.as_ref().map(|entry| {
            // SAFETY: an entry in the list, read under the list's lock.
            #[allow(unsafe_code)]
            let view = unsafe { (entry.read)(entry.nursery) };
            view
        }));
    }
    let mut out = String::new();
    let roots: Vec<usize> = list
        .entries
        .iter()
        .enumerate()
        .filter_map(|(key, e)| {
            let e = e.as_ref()?;
            let parent_alive = e
                .parent
                .is_some_and(|(p, _)| list.entries.get(p).is_some_and(Option::is_some));
            (!parent_alive).then_some(key)
        })
        .collect();
    if roots.is_empty() {
        out.push_str("(no nursery is running)\n");
    }
    for key in roots {
        render(&list, &views, key, 0, now, &mut out);
    }
    out
}

fn render(
    list: &List,
    views: &[Option<NurseryView>],
    key: usize,
    depth: usize,
    now: Instant,
    out: &mut String,
) {
    let (Some(entry), Some(view)) = (&list.entries[key], &views[key]) else {
        return;
    };
    let pad = "  ".repeat(depth);
    let name = entry
        .name
        .map_or_else(|| "(scope)".to_owned(), |n| format!("`{n}`"));
    let _ = writeln!(
        out,
        "{pad}nursery {name} ({}, {}, {} children)",
        view.state,
        age(now.saturating_duration_since(entry.born)),
        view.children.len()
    );
    let nested = |slot: u32| {
        list.entries.iter().enumerate().filter_map(move |(k, e)| {
            e.as_ref()
                .filter(|e| e.parent == Some((key, slot)))
                .map(|_| k)
        })
    };
    let body: Vec<usize> = nested(crate::shield::BODY).collect();
    if !body.is_empty() {
        let _ = writeln!(out, "{pad}  body");
        for k in body {
            render(list, views, k, depth + 2, now, out);
        }
    }
    for child in &view.children {
        let tags = if child.tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", child.tags.join(", "))
        };
        let child_age = now
            .saturating_duration_since(entry.born)
            .saturating_sub(child.born);
        let _ = writeln!(
            out,
            "{pad}  child {}{tags} ({})",
            child.name,
            age(child_age)
        );
        for k in nested(child.slot) {
            render(list, views, k, depth + 2, now, out);
        }
    }
}
