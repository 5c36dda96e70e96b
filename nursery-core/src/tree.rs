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

use std::fmt;
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
    /// `name` was given (`name = "…"`), not the spawned expression.
    named: bool,
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
            let (name, named) = match (name, info.label) {
                (Some(name), _) => (name.to_owned(), true),
                (None, Some(label)) => (crate::trace::OneLine(label).to_string(), false),
                (None, None) => ("(unnamed)".to_owned(), false),
            };
            children.push(ChildView {
                slot,
                name,
                named,
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

/// Every running nursery of the program and its children, as data: what
/// [`task_tree`] renders. `Display` gives that text; with the `serde`
/// feature it serializes (to JSON, say) for tools.
///
/// Taken by [`TaskTree::capture`]: each nursery is read under its own lock,
/// with the process-wide list of nurseries locked only while they are
/// read, never while the tree is built or rendered.
///
/// # Examples
///
/// ```
/// use nursery::{nursery, spawn};
///
/// #[nursery]
/// async fn serve() -> nursery_core::TaskTree {
///     spawn!(std::future::pending::<()>(), name = "heartbeat", background);
///     tokio::task::yield_now().await; // let it start
///     nursery_core::TaskTree::capture() // `nursery::TaskTree` with the `task-tree` feature
/// }
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let tree = rt.block_on(serve());
/// let serve = tree.nurseries.iter().find(|n| n.name == Some("serve")).unwrap();
/// assert_eq!(serve.state, "running");
/// assert_eq!(serve.children[0].name, "heartbeat");
/// assert_eq!(serve.children[0].tags, ["background"]);
/// ```
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TaskTree {
    /// The nurseries that run in no other nursery's child or body (a
    /// nursery inside a `parallel` child is one: it runs on another thread).
    pub nurseries: Vec<NurserySnapshot>,
}

/// One nursery of a [`TaskTree`].
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct NurserySnapshot {
    /// Its id while it runs (ids of nurseries that ended are reused).
    pub id: usize,
    /// Its fn's name (`#[nursery]`); `None` for a `scope!`.
    pub name: Option<&'static str>,
    /// What it is doing: `running`, `cancelling (why)`, `cancelling, grace
    /// period (why)`, `finishing`, or `busy` when its lock was held by the
    /// thread asking (a callback run under it).
    pub state: String,
    /// How long ago it started.
    pub age: Duration,
    /// Nurseries running in its body.
    pub body: Vec<NurserySnapshot>,
    /// Its children.
    pub children: Vec<ChildSnapshot>,
}

/// One child of a [`NurserySnapshot`].
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ChildSnapshot {
    /// Its slot in its nursery (unique among the nursery's children alive).
    pub slot: u32,
    /// Its name (`name = "…"`), else the spawned expression on one line.
    pub name: String,
    /// Whether `name` is a name it was given (not the spawned expression).
    pub named: bool,
    /// `parallel`, `shielded`, `background`, `waiting for start`,
    /// `cancelling`.
    pub tags: Vec<&'static str>,
    /// How long ago it was spawned.
    pub age: Duration,
    /// Nurseries running inside it.
    pub nurseries: Vec<NurserySnapshot>,
}

impl TaskTree {
    /// Takes a snapshot of every running nursery of the program. Call it
    /// from anywhere, any thread, at any time.
    pub fn capture() -> TaskTree {
        let now = crate::timer::now();
        // Under the list's lock: only the reads (each nursery's own lock,
        // a few copies). Built and rendered after it is let go.
        let records: Vec<Record> = {
            let list = lock(&LIST);
            list.entries
                .iter()
                .enumerate()
                .filter_map(|(key, entry)| {
                    let entry = entry.as_ref()?;
                    // SAFETY: an entry in the list, read under the list's lock.
                    #[allow(unsafe_code)]
                    let view = unsafe { (entry.read)(entry.nursery) };
                    Some(Record {
                        key,
                        name: entry.name,
                        born: entry.born,
                        parent: entry.parent,
                        view,
                    })
                })
                .collect()
        };
        build(records, now)
    }
}

/// One nursery as read under the list's lock.
struct Record {
    key: usize,
    name: Option<&'static str>,
    born: Instant,
    parent: Option<(usize, u32)>,
    view: NurseryView,
}

/// Nests the records: each under the child (or body) it runs in.
fn build(records: Vec<Record>, now: Instant) -> TaskTree {
    use std::collections::HashMap;
    let alive: std::collections::HashSet<usize> = records.iter().map(|r| r.key).collect();
    let mut inside: HashMap<(usize, u32), Vec<Record>> = HashMap::new();
    let mut roots = Vec::new();
    for record in records {
        match record.parent {
            Some(parent) if alive.contains(&parent.0) => {
                inside.entry(parent).or_default().push(record);
            }
            _ => roots.push(record),
        }
    }
    fn snapshot(
        record: Record,
        inside: &mut HashMap<(usize, u32), Vec<Record>>,
        now: Instant,
    ) -> NurserySnapshot {
        let age = now.saturating_duration_since(record.born);
        let mut nested = |slot: u32| -> Vec<NurserySnapshot> {
            inside
                .remove(&(record.key, slot))
                .unwrap_or_default()
                .into_iter()
                .map(|r| snapshot(r, inside, now))
                .collect()
        };
        let body = nested(crate::shield::BODY);
        let children = record
            .view
            .children
            .into_iter()
            .map(|child| ChildSnapshot {
                slot: child.slot,
                nurseries: nested(child.slot),
                name: child.name,
                named: child.named,
                tags: child.tags,
                age: age.saturating_sub(child.born),
            })
            .collect();
        NurserySnapshot {
            id: record.key,
            name: record.name,
            state: record.view.state,
            age,
            body,
            children,
        }
    }
    TaskTree {
        nurseries: roots
            .into_iter()
            .map(|r| snapshot(r, &mut inside, now))
            .collect(),
    }
}

impl fmt::Display for TaskTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nurseries.is_empty() {
            return writeln!(f, "(no nursery is running)");
        }
        for nursery in &self.nurseries {
            render(nursery, 0, f)?;
        }
        Ok(())
    }
}

fn render(nursery: &NurserySnapshot, depth: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let pad = "  ".repeat(depth);
    let name = nursery
        .name
        .map_or_else(|| "(scope)".to_owned(), |n| format!("`{n}`"));
    writeln!(
        f,
        "{pad}nursery {name} ({}, {}, {} children)",
        nursery.state,
        age(nursery.age),
        nursery.children.len()
    )?;
    if !nursery.body.is_empty() {
        writeln!(f, "{pad}  body")?;
        for inner in &nursery.body {
            render(inner, depth + 2, f)?;
        }
    }
    for child in &nursery.children {
        let tags = if child.tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", child.tags.join(", "))
        };
        let name = if child.named {
            format!("`{}`", child.name)
        } else {
            child.name.clone()
        };
        writeln!(f, "{pad}  child {name}{tags} ({})", age(child.age))?;
        for inner in &child.nurseries {
            render(inner, depth + 2, f)?;
        }
    }
    Ok(())
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
    TaskTree::capture().to_string()
}
