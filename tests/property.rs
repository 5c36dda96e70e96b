//! Property test: random task trees (nested nurseries up to depth 4,
//! fan-out 8) on `futures::executor`, tokio current-thread and tokio
//! multi-thread, checked against a log of what actually happened.
//!
//! The trees hold what an adversarial user writes: futures whose `Drop`
//! panics (while pending, or after they completed), children that keep
//! their wakers and have them woken after everything ended, children that
//! leak (`mem::forget`) a shielded `CancelScope::run` section they polled,
//! `start` children the body waits for, `parallel` children (on the tokio
//! runtimes) and `Duration::MAX` deadlines. The checks:
//!
//! * every child's guard is dropped by the time its nursery returns, and no
//!   child is polled after its nursery returned;
//! * the errors returned are exactly the failures logged by the nurseries
//!   that returned (each once);
//! * a panic anywhere (in `poll` or in a `Drop`) resumes in the caller with
//!   one of the logged payloads; with no panic, none was logged;
//! * no shielded child of the top nursery is dropped before it ended;
//! * a background child is dropped only once its nursery's body and other
//!   children are done, or when the nursery is cancelled;
//! * every run ends (on `futures::executor` a hang is a failure: nothing is
//!   left to wake it), and nothing is left on the tokio runtime.
//!
//! `PROPTEST_CASES` sets the number of cases (CI: the default below);
//! `scripts/property-soak` runs 100 000. A failure prints the seed and the
//! smallest tree that shows it.

mod common;

use common::*;
use futures::FutureExt;
use nursery::{CancelScope, Errors, Nursery};
use proptest::prelude::*;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;

#[derive(Debug, Clone)]
enum Act {
    Value,
    Fail,
    Panic,
    /// Waits forever: only ever a background child.
    Forever,
    CancelNursery,
    Nest(Vec<Child>),
}

/// Where a child's future panics when dropped.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DropPanic {
    No,
    /// A guard inside the child: panics if the child is dropped unfinished
    /// (cancelled), or as the child completes.
    Inside,
    /// The child's future itself: panics whenever it is dropped, after
    /// `Ready` included.
    Outside,
}

#[derive(Debug, Clone)]
struct Child {
    yields: u8,
    act: Act,
    shield: bool,
    background: bool,
    drop_panic: DropPanic,
    /// Keeps a clone of its waker at each yield; they are woken after the
    /// run ended.
    keep_wakers: bool,
    /// Polls a shielded `CancelScope::run` section once and leaks it.
    leak_section: bool,
    /// Started with `start`: the body waits until it calls `started`.
    start: bool,
    /// A `parallel` child (a leaf; on the tokio runtimes only).
    parallel: bool,
    /// Runs its act under `move_on_after(Duration::MAX, …)`.
    max_deadline: bool,
}

#[derive(Debug, Clone)]
struct Extras {
    drop_panic: DropPanic,
    keep_wakers: bool,
    leak_section: bool,
    start: bool,
    parallel: bool,
    max_deadline: bool,
}

fn extras() -> impl Strategy<Value = Extras> {
    (
        prop_oneof![
            12 => Just(DropPanic::No),
            1 => Just(DropPanic::Inside),
            1 => Just(DropPanic::Outside),
        ],
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(drop_panic, keep_wakers, leak_section, start, parallel, max_deadline)| Extras {
                drop_panic,
                keep_wakers,
                leak_section,
                start,
                parallel,
                max_deadline,
            },
        )
}

fn child() -> impl Strategy<Value = Child> {
    let leaf = prop_oneof![
        4 => Just(Act::Value),
        2 => Just(Act::Fail),
        1 => Just(Act::Panic),
        1 => Just(Act::Forever),
        1 => Just(Act::CancelNursery),
    ];
    let act = leaf.prop_recursive(3, 40, 8, |inner| {
        prop::collection::vec(
            (0u8..4, inner, any::<bool>(), any::<bool>(), extras())
                .prop_map(|(y, a, s, b, x)| make(y, a, s, b, x)),
            0..8,
        )
        .prop_map(Act::Nest)
    });
    (0u8..4, act, any::<bool>(), any::<bool>(), extras())
        .prop_map(|(y, a, s, b, x)| make(y, a, s, b, x))
}

fn make(yields: u8, act: Act, shield: bool, background: bool, x: Extras) -> Child {
    // a child that waits forever must be background (or nothing would end)
    let forever = matches!(act, Act::Forever);
    // a parallel child owns what it uses: it cannot borrow its nursery
    // (cancel it, nest a nursery that logs into the test's borrowed log)
    let leaf = matches!(act, Act::Value | Act::Fail | Act::Panic | Act::Forever);
    Child {
        yields,
        shield: shield && !background && !forever,
        background: background || forever,
        drop_panic: x.drop_panic,
        keep_wakers: x.keep_wakers,
        // a child that leaks a shielded section stays shielded until it
        // ends by itself: never one that waits forever
        leak_section: x.leak_section && !forever,
        start: x.start,
        parallel: x.parallel && leaf,
        max_deadline: x.max_deadline,
        act,
    }
}

#[derive(Debug, PartialEq, Clone)]
enum Fail {
    One(usize),
    Many(Vec<Fail>),
}

impl From<Errors<Fail>> for Fail {
    fn from(e: Errors<Fail>) -> Self {
        Fail::Many(e.into_vec())
    }
}

fn leaves(f: &Fail, out: &mut Vec<usize>) {
    match f {
        Fail::One(id) => out.push(*id),
        Fail::Many(v) => v.iter().for_each(|f| leaves(f, out)),
    }
}

#[derive(Default)]
struct Log {
    me: Weak<Log>,
    /// `parallel` children may be spawned (a tokio runtime runs the tree).
    parallel_ok: bool,
    /// The test drops the top nursery from outside: its shielded children
    /// go with it.
    dropped_from_outside: AtomicBool,
    next_id: AtomicUsize,
    /// (nursery id, child id) of every failure, in the order they happened.
    failures: Mutex<Vec<(usize, usize)>>,
    /// payloads of every panic, in `poll` or in a `Drop`
    panics: Mutex<Vec<usize>>,
    /// nurseries that returned (their failures must all be reported)
    returned: Mutex<Vec<usize>>,
    /// each nursery's parent nursery
    parents: Mutex<std::collections::HashMap<usize, usize>>,
    violations: Mutex<Vec<String>>,
    guards: Tracker,
    /// wakers children kept, woken once the run ended
    wakers: Mutex<Vec<Waker>>,
}

impl Log {
    fn new(parallel_ok: bool) -> Arc<Log> {
        Arc::new_cyclic(|me| Log {
            me: me.clone(),
            parallel_ok,
            ..Log::default()
        })
    }
    fn arc(&self) -> Arc<Log> {
        self.me.upgrade().expect("the test holds it")
    }
    fn id(&self) -> usize {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }
    fn violation(&self, what: String) {
        self.violations.lock().unwrap().push(what);
    }
    /// Logs a panic with a fresh payload, and raises it.
    fn panic(&self) -> ! {
        let id = self.id();
        self.panics.lock().unwrap().push(id);
        std::panic::panic_any(id)
    }
    /// Wakes every kept waker: their children (and nurseries) are gone.
    fn wake_late(&self) {
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap());
        for waker in wakers {
            waker.wake();
        }
    }
}

type Boxed<'a> = Pin<Box<dyn Future<Output = Result<(), Errors<Fail>>> + Send + 'a>>;

fn nursery_of<'a>(
    children: &'a [Child],
    log: &'a Log,
    top: bool,
    parent: Option<usize>,
) -> Boxed<'a> {
    Box::pin(async move {
        let nid = log.id();
        if let Some(parent) = parent {
            log.parents.lock().unwrap().insert(nid, parent);
        }
        let returned = Arc::new(AtomicBool::new(false));
        let foreground = &AtomicUsize::new(1); // the body
        let r = nursery::scope!(|n| async {
            for c in children {
                let started = spawn_child(n, c, nid, log, top, &returned, foreground);
                if let Some(started) = started {
                    started.await;
                }
            }
            yield_now().await;
            foreground.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        })
        .await;
        returned.store(true, Ordering::SeqCst);
        log.returned.lock().unwrap().push(nid);
        r
    })
}

/// Checks that the child is never polled after its nursery returned.
struct Watched<F> {
    fut: Pin<Box<F>>,
    returned: Arc<AtomicBool>,
    log: Arc<Log>,
    /// Panics when dropped ([`DropPanic::Outside`]).
    panic_on_drop: bool,
}

impl<F: Future> Future for Watched<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        if self.returned.load(Ordering::SeqCst) {
            self.log
                .violation("a child was polled after its nursery returned".into());
        }
        self.fut.as_mut().poll(cx)
    }
}

impl<F> Drop for Watched<F> {
    fn drop(&mut self) {
        if self.panic_on_drop && !std::thread::panicking() {
            self.log.panic();
        }
    }
}

/// Panics when dropped ([`DropPanic::Inside`]), unless already unwinding.
struct PanicGuard(Arc<Log>);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.0.panic();
        }
    }
}

/// Dropped with the child: checks background children go last.
struct BackgroundCheck<'a> {
    n: &'a Nursery<'a, Fail>,
    foreground: &'a AtomicUsize,
    log: &'a Log,
    done: bool,
}

impl Drop for BackgroundCheck<'_> {
    fn drop(&mut self) {
        // (unwinding from its own panic is not being cancelled)
        if !self.done
            && !std::thread::panicking()
            && self.foreground.load(Ordering::SeqCst) > 0
            && !self.n.is_cancelled()
        {
            self.log.violation(
                "a background child was cancelled while foreground work remained".into(),
            );
        }
    }
}

/// Dropped with a shielded child of the top nursery: it must have ended
/// (completed, or unwound from its own panic) unless the test dropped the
/// top nursery from outside.
struct ShieldCheck {
    log: Arc<Log>,
    done: bool,
}

impl Drop for ShieldCheck {
    fn drop(&mut self) {
        if !self.done
            && !std::thread::panicking()
            && !self.log.dropped_from_outside.load(Ordering::SeqCst)
        {
            self.log
                .violation("a shielded child was dropped before it ended".into());
        }
    }
}

/// Yields once, keeping a clone of the waker in the log if `keep`.
fn yield_keeping(log: &Log, keep: bool) -> impl Future<Output = ()> + '_ {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        if keep {
            log.wakers.lock().unwrap().push(cx.waker().clone());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// Polls a shielded section once, then leaks it.
async fn leak_a_shielded_section() {
    let scope = CancelScope::shielded();
    let mut section = Box::pin(scope.run(std::future::pending::<()>()));
    std::future::poll_fn(|cx| {
        let _ = section.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
    std::mem::forget(section);
}

/// What a leaf child does, with what it owns: the body of a parallel child
/// as of a local one.
async fn leaf(log: Arc<Log>, act: Act, nid: usize, id: usize) -> Result<(), Fail> {
    match act {
        Act::Value => Ok(()),
        Act::Forever => std::future::pending().await,
        Act::Fail => {
            log.failures.lock().unwrap().push((nid, id));
            Err(Fail::One(id))
        }
        Act::Panic => log.panic(),
        Act::CancelNursery | Act::Nest(_) => unreachable!("not a leaf"),
    }
}

/// Runs `act` under `move_on_after(Duration::MAX, …)` if `max`: never
/// cancelled, never a panic of the clock.
async fn maybe_max<F: Future<Output = Result<(), Fail>>>(max: bool, act: F) -> Result<(), Fail> {
    if max {
        nursery::move_on_after(Duration::MAX, act)
            .await
            .expect("Duration::MAX never passes")
    } else {
        act.await
    }
}

fn spawn_child<'a>(
    n: &'a Nursery<'a, Fail>,
    c: &'a Child,
    nid: usize,
    log: &'a Log,
    top: bool,
    returned: &Arc<AtomicBool>,
    foreground: &'a AtomicUsize,
) -> Option<nursery::Started<()>> {
    let parallel = c.parallel && log.parallel_ok;
    let guard = log.guards.guard();
    let id = log.id();
    if !c.background {
        foreground.fetch_add(1, Ordering::SeqCst);
    }
    let mut shield_check = (top && c.shield).then(|| ShieldCheck {
        log: log.arc(),
        done: false,
    });
    let inside = (c.drop_panic == DropPanic::Inside).then(|| PanicGuard(log.arc()));
    let b = n.builder();
    let b = if c.shield { b.shield() } else { b };
    let b = if c.background { b.background() } else { b };
    if parallel {
        let (owned, act, yields, keep, max, start) = (
            log.arc(),
            c.act.clone(),
            c.yields,
            c.keep_wakers,
            c.max_deadline,
            c.start,
        );
        let child = move |status: Option<nursery::TaskStatus<()>>| async move {
            let log = owned;
            let _guard = guard;
            let _inside = inside;
            for _ in 0..yields {
                yield_keeping(&log, keep).await;
            }
            if let Some(status) = status {
                status.started(());
            }
            let r = maybe_max(max, leaf(log.clone(), act, nid, id)).await;
            if let Some(check) = &mut shield_check {
                check.done = true;
            }
            r
        };
        let wrap = |fut| Watched {
            fut: Box::pin(fut),
            returned: returned.clone(),
            log: log.arc(),
            panic_on_drop: c.drop_panic == DropPanic::Outside,
        };
        let b = b.parallel();
        // (foreground counts only local children's ends: a parallel child
        // is never background-checked)
        if !c.background {
            foreground.fetch_sub(1, Ordering::SeqCst);
        }
        return if start {
            Some(b.start(|status| wrap(child(Some(status)))))
        } else {
            b.spawn(wrap(child(None)));
            None
        };
    }
    let mut check = c.background.then(|| BackgroundCheck {
        n,
        foreground,
        log,
        done: false,
    });
    let child = move |status: Option<nursery::TaskStatus<()>>| async move {
        let _guard = guard;
        let _inside = inside;
        for _ in 0..c.yields {
            yield_keeping(log, c.keep_wakers).await;
        }
        if c.leak_section {
            leak_a_shielded_section().await;
        }
        if let Some(status) = status {
            status.started(());
        }
        let act = async {
            match &c.act {
                Act::CancelNursery => {
                    n.cancel();
                    Ok(())
                }
                Act::Nest(kids) => nursery_of(kids, log, false, Some(nid))
                    .await
                    .map_err(Fail::from),
                other => leaf(log.arc(), other.clone(), nid, id).await,
            }
        };
        let r = maybe_max(c.max_deadline, act).await;
        if let Some(check) = &mut check {
            check.done = true;
        }
        if !c.background {
            foreground.fetch_sub(1, Ordering::SeqCst);
        }
        if let Some(check) = &mut shield_check {
            check.done = true;
        }
        r
    };
    let wrap = |fut| Watched {
        fut: Box::pin(fut),
        returned: returned.clone(),
        log: log.arc(),
        panic_on_drop: c.drop_panic == DropPanic::Outside,
    };
    if c.start {
        Some(b.start(|status| wrap(child(Some(status)))))
    } else {
        b.spawn(wrap(child(None)));
        None
    }
}

fn check(
    tree: &[Child],
    parallel_ok: bool,
    run: impl FnOnce(Boxed<'_>) -> std::thread::Result<Result<(), Errors<Fail>>>,
) -> Result<(), TestCaseError> {
    let log = Log::new(parallel_ok);
    let outcome = run(nursery_of(tree, &log, true, None));
    // Wakers of children (and nurseries) that are gone: harmless.
    log.wake_late();
    let violations = log.violations.lock().unwrap().clone();
    prop_assert!(violations.is_empty(), "{violations:?}");
    prop_assert!(log.guards.all_dropped(), "a child outlived its nursery");
    match outcome {
        Err(payload) => {
            let id = *payload.downcast_ref::<usize>().expect("our payload");
            prop_assert!(
                log.panics.lock().unwrap().contains(&id),
                "unknown panic payload {id}"
            );
        }
        Ok(result) => {
            prop_assert!(log.panics.lock().unwrap().is_empty(), "a panic was lost");
            // A failure must reach the top when every nursery on its way up
            // returned. One inside a nested nursery that was itself dropped
            // by an outer cancellation is lost: the known gap (docs/departures.md).
            let returned = log.returned.lock().unwrap().clone();
            let parents = log.parents.lock().unwrap().clone();
            let reaches_top = |mut nid: usize| loop {
                if !returned.contains(&nid) {
                    break false;
                }
                match parents.get(&nid) {
                    Some(&parent) => nid = parent,
                    None => break true,
                }
            };
            let expected: Vec<usize> = log
                .failures
                .lock()
                .unwrap()
                .iter()
                .filter(|&&(nid, _)| reaches_top(nid))
                .map(|&(_, id)| id)
                .collect();
            let mut got = Vec::new();
            if let Err(errors) = &result {
                errors.iter().for_each(|f| leaves(f, &mut got));
            }
            let mut sorted_got = got.clone();
            sorted_got.sort_unstable();
            let mut sorted_expected = expected.clone();
            sorted_expected.sort_unstable();
            prop_assert_eq!(
                sorted_got,
                sorted_expected,
                "errors reported vs failures logged"
            );
            prop_assert_eq!(result.is_err(), !expected.is_empty());
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn trees_on_futures_executor(tree in prop::collection::vec(child(), 0..8)) {
        // `must_finish`: a hang (pending, nothing left to wake it) fails
        check(&tree, false, |fut| std::panic::catch_unwind(AssertUnwindSafe(|| must_finish(fut))))?;
    }

    #[test]
    fn trees_dropped_after_every_number_of_polls(tree in prop::collection::vec(child(), 0..8)) {
        // drop the whole nursery after k polls, for every k until it ends
        for k in 0..64 {
            let log = Log::new(false);
            let mut fut = nursery_of(&tree, &log, true, None);
            let mut ended = false;
            for _ in 0..k {
                match std::panic::catch_unwind(AssertUnwindSafe(|| poll_once(fut.as_mut()))) {
                    Ok(std::task::Poll::Pending) => {}
                    _ => {
                        ended = true;
                        break;
                    }
                }
            }
            log.dropped_from_outside.store(true, Ordering::SeqCst);
            // A child's `Drop` may panic here: the drop from outside goes
            // on (every child is still dropped) and the panic was reported
            // by the hook when it happened.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| drop(fut)));
            log.wake_late();
            let violations = log.violations.lock().unwrap().clone();
            prop_assert!(violations.is_empty(), "k = {}: {:?}", k, violations);
            prop_assert!(
                log.guards.all_dropped(),
                "k = {}: {} of {} children dropped",
                k,
                log.guards.dropped.get(),
                log.guards.created.get()
            );
            if ended {
                break;
            }
        }
    }

    #[test]
    fn trees_on_tokio_current_thread(tree in prop::collection::vec(child(), 0..8)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        check(&tree, true, |fut| rt.block_on(AssertUnwindSafe(fut).catch_unwind()))?;
        // The runtime runs only inside `block_on`: let the runtime tasks of
        // parallel children take the poll in which they see their end.
        rt.block_on(async {
            for _ in 0..1000 {
                if rt.metrics().num_alive_tasks() == 0 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        });
        assert_no_task_left(&rt);
    }

    #[test]
    fn trees_on_tokio_multi_thread(tree in prop::collection::vec(child(), 0..8)) {
        // the tree borrows the test's data, so it runs in `block_on` on a
        // multi-thread runtime: its wakes come from the runtime's workers
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        check(&tree, true, |fut| rt.block_on(AssertUnwindSafe(fut).catch_unwind()))?;
        assert_no_task_left(&rt);
    }
}

/// Trees the property test found bugs with, kept as fixed cases.
mod regressions {
    use super::*;

    fn c(yields: u8, act: Act, shield: bool, background: bool) -> Child {
        Child {
            yields,
            act,
            shield,
            background,
            drop_panic: DropPanic::No,
            keep_wakers: false,
            leak_section: false,
            start: false,
            parallel: false,
            max_deadline: false,
        }
    }

    fn on_executor(tree: &[Child]) -> Result<(), TestCaseError> {
        check(tree, false, |fut| {
            std::panic::catch_unwind(AssertUnwindSafe(|| must_finish(fut)))
        })
    }

    #[test]
    fn a_panic_in_a_nursery_inside_a_dropped_background_child_resumes() {
        on_executor(&[
            c(
                0,
                Act::Nest(vec![
                    c(3, Act::Value, false, false),
                    c(0, Act::Panic, false, false),
                    c(3, Act::Value, true, false),
                ]),
                false,
                true,
            ),
            c(0, Act::Value, false, false),
        ])
        .unwrap();
    }

    #[test]
    fn a_panic_in_a_nursery_dropped_by_an_outer_failure_resumes() {
        on_executor(&[
            c(
                1,
                Act::Nest(vec![
                    c(3, Act::Value, false, false),
                    c(2, Act::Panic, false, false),
                ]),
                false,
                false,
            ),
            c(2, Act::Fail, false, false),
        ])
        .unwrap();
    }

    #[test]
    fn a_background_child_of_a_nursery_dropped_from_outside_is_cancelled() {
        on_executor(&[
            c(2, Act::CancelNursery, false, false),
            c(
                0,
                Act::Nest(vec![
                    c(
                        0,
                        Act::Nest(vec![c(2, Act::CancelNursery, false, false)]),
                        false,
                        false,
                    ),
                    c(2, Act::Value, false, true),
                ]),
                false,
                false,
            ),
        ])
        .unwrap();
    }
}
