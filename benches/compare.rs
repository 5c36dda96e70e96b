//! nursery against its peers, side by side in one run, on the same runtime.
//!
//! `cargo bench --bench compare` (all scenarios), or a filter such as
//! `cargo bench --bench compare -- wake_all`. `scripts/bench-table` turns a
//! run into the table of medians and ratios in docs/performance.md.

use std::future::{Future, poll_fn};
use std::hint::black_box;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::task::Poll;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use nursery::{Errors, nursery, spawn};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::oneshot;
use tokio::task::{JoinSet, yield_now};

type NoError = Errors<std::convert::Infallible>;

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---- spawn_join: N trivial children (yield once, return a small integer) ----

/// The child every system runs: the same future for all of them.
async fn trivial(i: u64) -> u64 {
    yield_now().await;
    i & 7
}

#[nursery]
async fn nursery_spawn_join(n: u64) -> u64 {
    let handles: Vec<_> = (0..n).map(|i| spawn!(trivial(i))).collect();
    let mut sum = 0;
    for h in handles {
        sum += h.await;
    }
    sum
}

/// The same, under `limit = 64`: children beyond it wait for their turn
/// (the cost per child of a limited nursery, against `nursery`).
#[nursery(limit = 64)]
async fn nursery_limited_spawn_join(n: u64) -> u64 {
    let handles: Vec<_> = (0..n).map(|i| spawn!(trivial(i))).collect();
    let mut sum = 0;
    for h in handles {
        sum += h.await;
    }
    sum
}

/// The same children, summed into a shared counter instead of through task
/// handles: the registry's own cost, without the handle API's.
#[nursery]
async fn nursery_spawn_sum(n: u64) -> u64 {
    let sum = &AtomicU64::new(0);
    nursery::scope!(|_n| async {
        for i in 0..n {
            spawn!(async move {
                yield_now().await;
                sum.fetch_add(i & 7, Relaxed);
            });
        }
        Ok::<_, NoError>(())
    })
    .await
    .unwrap();
    sum.load(Relaxed)
}

async fn scope_spawn_join(n: u64) -> u64 {
    nursery::scope!(|_n| async {
        let handles: Vec<_> = (0..n).map(|i| spawn!(trivial(i))).collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await;
        }
        Ok::<_, NoError>(sum)
    })
    .await
    .unwrap()
}

async fn fu_spawn_join(n: u64) -> u64 {
    let mut set = FuturesUnordered::new();
    for i in 0..n {
        set.push(trivial(i));
    }
    let mut sum = 0;
    while let Some(x) = set.next().await {
        sum += x;
    }
    sum
}

async fn join_all_spawn_join(n: u64) -> u64 {
    futures::future::join_all((0..n).map(trivial))
        .await
        .into_iter()
        .sum()
}

async fn joinset_spawn_join(n: u64) -> u64 {
    let mut set = JoinSet::new();
    for i in 0..n {
        set.spawn(trivial(i));
    }
    let mut sum = 0;
    while let Some(x) = set.join_next().await {
        sum += x.unwrap();
    }
    sum
}

async fn tokio_spawn_join(n: u64) -> u64 {
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(trivial(i))).collect();
    let mut sum = 0;
    for h in handles {
        sum += h.await.unwrap();
    }
    sum
}

async fn moro_spawn_join(n: u64) -> u64 {
    moro::async_scope!(|scope| {
        let handles: Vec<_> = (0..n).map(|i| scope.spawn(trivial(i))).collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await;
        }
        sum
    })
    .await
}

// ---- parallel: the same children as runtime tasks on a 2-worker runtime ----

#[nursery]
async fn nursery_parallel(n: u64) -> Result<u64, Errors<nursery::SpawnError>> {
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        handles.push(spawn!(trivial(i), parallel));
    }
    let mut sum = 0;
    for h in handles {
        sum += h.await;
    }
    Ok(sum)
}

// ---- wake_all / wake_chain: N children each waiting on its own oneshot ----

/// How many children of the running wake benchmark wait on their receiver.
/// Every system wakes its children only once all of them wait (a `yield`
/// is not enough: a nursery polls at most 64 children per step, and tokio's
/// current-thread scheduler runs the yielded task again after 61 others,
/// so most children would find their value already sent and never wait).
static ARMED: AtomicUsize = AtomicUsize::new(0);

/// The phases of a wake benchmark, timed only under `NURSERY_PROFILE_RUNS`
/// (see [`Phases`]): spawn, arm (until every child waits), send, and,
/// from the total, finish (until every child is done and dropped).
static PHASES: Phases = Phases::new();

struct Phases {
    on: AtomicBool,
    /// Nanoseconds spent in spawn, arm and send, summed over the runs.
    spent: [AtomicU64; 3],
}

impl Phases {
    const fn new() -> Self {
        Phases {
            on: AtomicBool::new(false),
            spent: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// Now, if phases are timed.
    fn start(&self) -> Option<Instant> {
        self.on.load(Relaxed).then(Instant::now)
    }

    /// Adds the time since `*since` to phase `phase`, and restarts the clock.
    fn end(&self, phase: usize, since: &mut Option<Instant>) {
        if let Some(since) = since {
            let now = Instant::now();
            self.spent[phase].fetch_add((now - *since).as_nanos() as u64, Relaxed);
            *since = now;
        }
    }

    /// Starts timing, from zero.
    fn enable(&self) {
        for spent in &self.spent {
            spent.store(0, Relaxed);
        }
        self.on.store(true, Relaxed);
    }

    /// Prints the phases per child, if any were timed, given the time per run.
    fn print(&self, runs: usize, n: usize, per_run: u128) {
        let per_child = |ns: u64| ns as f64 / runs as f64 / n as f64;
        let spent: Vec<f64> = self
            .spent
            .iter()
            .map(|s| per_child(s.load(Relaxed)))
            .collect();
        if spent.iter().all(|&s| s == 0.0) {
            return;
        }
        let finish = per_run as f64 / n as f64 - spent.iter().sum::<f64>();
        println!(
            "phases, ns per child: spawn {:.1}, arm {:.1}, send {:.1}, finish {finish:.1}",
            spent[0], spent[1], spent[2]
        );
    }
}

/// The child of the wake scenarios: counts itself, then waits.
async fn armed<T>(rx: oneshot::Receiver<T>) -> T {
    ARMED.fetch_add(1, Relaxed);
    rx.await.unwrap()
}

/// Yields until all `n` children wait on their receivers.
async fn all_armed(n: usize) {
    while ARMED.load(Relaxed) < n {
        yield_now().await;
    }
}

/// Polls `set` (and yields) until all `n` of its children wait on their
/// receivers; none can finish before its value is sent.
async fn all_armed_in<F: Future>(set: &mut FuturesUnordered<F>, n: usize) {
    while ARMED.load(Relaxed) < n {
        assert!(futures::poll!(set.next()).is_pending());
        yield_now().await;
    }
}

#[nursery]
async fn nursery_wake_all(n: usize) -> usize {
    let mut clock = PHASES.start();
    ARMED.store(0, Relaxed);
    let mut txs = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = oneshot::channel::<usize>();
        txs.push(tx);
        spawn!(armed(rx));
    }
    PHASES.end(0, &mut clock);
    all_armed(n).await;
    PHASES.end(1, &mut clock);
    for (i, tx) in txs.into_iter().enumerate() {
        tx.send(i).unwrap();
    }
    PHASES.end(2, &mut clock);
    n
}

async fn fu_wake_all(n: usize) -> usize {
    let mut clock = PHASES.start();
    ARMED.store(0, Relaxed);
    let mut txs = Vec::with_capacity(n);
    let mut set = FuturesUnordered::new();
    for _ in 0..n {
        let (tx, rx) = oneshot::channel::<usize>();
        txs.push(tx);
        set.push(armed(rx));
    }
    PHASES.end(0, &mut clock);
    all_armed_in(&mut set, n).await;
    PHASES.end(1, &mut clock);
    for (i, tx) in txs.into_iter().enumerate() {
        tx.send(i).unwrap();
    }
    PHASES.end(2, &mut clock);
    let mut count = 0;
    while set.next().await.is_some() {
        count += 1;
    }
    count
}

/// The scenario's own work with no scheduler at all: each child's future
/// in a box of its own (one allocation per child, as every in-task system
/// makes), polled in order once to arm it and, after the sends, once more to
/// finish it, then dropped. No system can do less for `wake_all`: the
/// growth of this body bounds what a flat cost per child can mean on the
/// machine (docs/performance.md). Run under `unconstrained`, since it
/// polls every child in one poll of its task.
async fn bare_wake_all(n: usize) -> usize {
    let mut clock = PHASES.start();
    ARMED.store(0, Relaxed);
    let mut txs = Vec::with_capacity(n);
    let mut children = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = oneshot::channel::<usize>();
        txs.push(tx);
        children.push(Box::pin(armed(rx)));
    }
    PHASES.end(0, &mut clock);
    poll_fn(|cx| {
        for child in &mut children {
            assert!(child.as_mut().poll(cx).is_pending());
        }
        Poll::Ready(())
    })
    .await;
    PHASES.end(1, &mut clock);
    for (i, tx) in txs.into_iter().enumerate() {
        tx.send(i).unwrap();
    }
    PHASES.end(2, &mut clock);
    poll_fn(|cx| {
        let mut count = 0;
        for mut child in children.drain(..) {
            assert!(child.as_mut().poll(cx).is_ready());
            count += 1;
        }
        Poll::Ready(count)
    })
    .await
}

async fn joinset_wake_all(n: usize) -> usize {
    ARMED.store(0, Relaxed);
    let mut txs = Vec::with_capacity(n);
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (tx, rx) = oneshot::channel::<usize>();
        txs.push(tx);
        set.spawn(armed(rx));
    }
    all_armed(n).await;
    for (i, tx) in txs.into_iter().enumerate() {
        tx.send(i).unwrap();
    }
    let mut count = 0;
    while set.join_next().await.is_some() {
        count += 1;
    }
    count
}

#[nursery]
async fn nursery_wake_chain(n: usize) -> usize {
    ARMED.store(0, Relaxed);
    let (first, mut rx) = oneshot::channel::<usize>();
    for _ in 0..n {
        let (tx, next_rx) = oneshot::channel::<usize>();
        let prev = std::mem::replace(&mut rx, next_rx);
        spawn!(async move {
            let i = armed(prev).await;
            let _ = tx.send(i + 1);
        });
    }
    all_armed(n).await;
    first.send(0).unwrap();
    rx.await.unwrap()
}

async fn fu_wake_chain(n: usize) -> usize {
    ARMED.store(0, Relaxed);
    let (first, mut rx) = oneshot::channel::<usize>();
    let mut set = FuturesUnordered::new();
    for _ in 0..n {
        let (tx, next_rx) = oneshot::channel::<usize>();
        let prev = std::mem::replace(&mut rx, next_rx);
        set.push(async move {
            let i = armed(prev).await;
            let _ = tx.send(i + 1);
        });
    }
    all_armed_in(&mut set, n).await;
    first.send(0).unwrap();
    while set.next().await.is_some() {}
    rx.await.unwrap()
}

// ---- cancel: N pending children and one that then fails ----

#[nursery]
async fn nursery_cancel(n: usize) -> Result<(), Errors<u8>> {
    for _ in 0..n {
        spawn!(std::future::pending::<()>());
    }
    spawn!(async {
        yield_now().await;
        Err::<(), _>(1u8)
    });
    Ok(())
}

async fn fu_cancel(n: usize) -> Result<(), u8> {
    let mut set = FuturesUnordered::new();
    for _ in 0..n {
        set.push(futures::future::Either::Left(std::future::pending::<
            Result<(), u8>,
        >()));
    }
    set.push(futures::future::Either::Right(async {
        yield_now().await;
        Err(1u8)
    }));
    while let Some(r) = set.next().await {
        r?; // the first error drops the set, and every child with it
    }
    Ok(())
}

// ---- nested: entering and leaving nurseries ----

#[nursery]
async fn nursery_empty() -> u8 {
    1
}

fn nursery_chain(
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = usize> + Send>> {
    Box::pin(async move {
        if depth == 0 {
            return 0;
        }
        nursery::scope!(|_n| async { Ok::<_, NoError>(nursery_chain(depth - 1).await + 1) })
            .await
            .unwrap()
    })
}

fn boxed_chain(depth: usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = usize> + Send>> {
    Box::pin(async move {
        if depth == 0 {
            return 0;
        }
        boxed_chain(depth - 1).await + 1
    })
}

// ---- the harness ----

fn sizes(default: &[u64]) -> Vec<u64> {
    match std::env::var("NURSERY_BENCH_SIZES") {
        Ok(s) => s.split(',').map(|x| x.trim().parse().unwrap()).collect(),
        Err(_) => default.to_vec(),
    }
}

/// `NURSERY_PROFILE=<group>/<system>/<n>` (e.g. `spawn_join/nursery/100000`):
/// run that one benchmark's body once, outside criterion, for a profiler
/// (`scripts/callgrind` runs it under valgrind's callgrind).
fn profiling(group: &str, name: &str, n: u64) -> Option<bool> {
    let wanted = std::env::var("NURSERY_PROFILE").ok()?;
    Some(wanted == format!("{group}/{name}/{n}"))
}

/// `NURSERY_PROFILE_RUNS=<k>`: the profiled body runs once to warm up, then
/// `k` times, timed, and the time per run is printed: the steady state a
/// benchmark measures (memory freed by one run is reused by the next), for
/// a profiler or for `scripts/growth`, with the wake benchmarks' time per
/// phase ([`Phases`]). Unset: it runs once.
fn profile_runs() -> Option<usize> {
    let runs = std::env::var("NURSERY_PROFILE_RUNS").ok()?;
    Some(runs.parse().expect("NURSERY_PROFILE_RUNS is a count"))
}

/// The process's minor page faults so far (Linux; 0 elsewhere).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name's closing parenthesis, field 10 is `minflt`.
    let fields = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    fields
        .split_whitespace()
        .nth(7)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// `NURSERY_FAULTS=1`: instead of timing, run each benchmark body 12 times
/// and print the page faults of the last 10 runs, per run. A run that hands
/// memory back to the operating system pays to fault it in again on the
/// next; that cost grows with N and shows here, not in instruction counts.
fn count_faults<F: std::future::Future>(rt: &Runtime, label: String, mut run: impl FnMut() -> F) {
    for _ in 0..2 {
        black_box(rt.block_on(run()));
    }
    let before = minor_faults();
    for _ in 0..10 {
        black_box(rt.block_on(run()));
    }
    println!(
        "{label}: {} page faults per run",
        (minor_faults() - before) / 10
    );
}

macro_rules! bench_on {
    ($group:expr, $rt:expr, $name:expr, $n:expr, $f:expr) => {
        if std::env::var_os("NURSERY_FAULTS").is_some() {
            // (with `NURSERY_PROFILE`, only that one)
            if profiling($group.name, $name, $n as u64) != Some(false) {
                let n = $n;
                count_faults(&$rt, format!("{}/{}/{}", $group.name, $name, n), || $f(n));
            }
        } else {
            match profiling($group.name, $name, $n as u64) {
                Some(true) => match profile_runs() {
                    None => {
                        let _ = black_box($rt.block_on($f($n)));
                    }
                    Some(runs) => {
                        let _ = black_box($rt.block_on($f($n))); // warm-up
                        PHASES.enable();
                        let start = Instant::now();
                        for _ in 0..runs {
                            let _ = black_box($rt.block_on($f($n)));
                        }
                        let per_run = start.elapsed().as_nanos() / runs as u128;
                        println!("{}/{}/{}: {per_run} ns per run", $group.name, $name, $n);
                        PHASES.print(runs, $n as usize, per_run);
                    }
                },
                Some(false) => {}
                None => {
                    $group
                        .inner
                        .bench_with_input(BenchmarkId::new($name, $n), &$n, |b, &n| {
                            b.iter(|| black_box($rt.block_on($f(n))))
                        });
                }
            }
        }
    };
}

/// A criterion group that knows its name, for [`profiling`].
struct Group<'c> {
    inner: criterion::BenchmarkGroup<'c, criterion::measurement::WallTime>,
    name: &'static str,
}

fn group<'c>(c: &'c mut Criterion, name: &'static str) -> Group<'c> {
    Group {
        inner: c.benchmark_group(name),
        name,
    }
}

fn spawn_join(c: &mut Criterion) {
    let rt = current_thread();
    let mt = multi_thread();
    let mut g = group(c, "spawn_join");
    for n in sizes(&[1_000, 100_000, 1_000_000]) {
        g.inner.sample_size(if n >= 1_000_000 { 10 } else { 20 });
        bench_on!(g, rt, "nursery", n, nursery_spawn_join);
        bench_on!(g, rt, "nursery_scope", n, scope_spawn_join);
        bench_on!(g, rt, "nursery_limited", n, nursery_limited_spawn_join);
        bench_on!(g, rt, "nursery_no_handles", n, nursery_spawn_sum);
        bench_on!(g, rt, "futures_unordered", n, fu_spawn_join);
        bench_on!(g, rt, "join_all", n, join_all_spawn_join);
        bench_on!(g, rt, "joinset", n, joinset_spawn_join);
        bench_on!(g, mt, "joinset_multi_thread", n, joinset_spawn_join);
        bench_on!(g, rt, "tokio_spawn", n, tokio_spawn_join);
        bench_on!(g, rt, "moro", n, moro_spawn_join);
    }
    g.inner.finish();
}

fn parallel(c: &mut Criterion) {
    if !cfg!(feature = "tokio") {
        // `parallel` children need a spawner: the tokio feature's.
        eprintln!("parallel: skipped (run with `--features tokio`)");
        return;
    }
    let mt = multi_thread();
    let mut g = group(c, "parallel");
    for n in sizes(&[1_000, 10_000, 100_000]) {
        g.inner.sample_size(if n >= 100_000 { 10 } else { 20 });
        bench_on!(g, mt, "nursery", n, |n| async move {
            nursery_parallel(n).await.unwrap()
        });
        bench_on!(g, mt, "joinset", n, joinset_spawn_join);
        bench_on!(g, mt, "tokio_spawn", n, tokio_spawn_join);
    }
    g.inner.finish();
}

fn wake_all(c: &mut Criterion) {
    let rt = current_thread();
    let mut g = group(c, "wake_all");
    for n in sizes(&[1_000, 10_000, 100_000]) {
        let n = n as usize;
        g.inner.sample_size(10);
        bench_on!(g, rt, "nursery", n, nursery_wake_all);
        bench_on!(g, rt, "futures_unordered", n, fu_wake_all);
        bench_on!(g, rt, "futures_unordered_unconstrained", n, |n| {
            tokio::task::unconstrained(fu_wake_all(n))
        });
        bench_on!(g, rt, "nursery_unconstrained", n, |n| {
            tokio::task::unconstrained(nursery_wake_all(n))
        });
        bench_on!(g, rt, "joinset", n, joinset_wake_all);
        bench_on!(g, rt, "bare_unconstrained", n, |n| {
            tokio::task::unconstrained(bare_wake_all(n))
        });
    }
    g.inner.finish();
}

fn wake_chain(c: &mut Criterion) {
    let rt = current_thread();
    let mut g = group(c, "wake_chain");
    for n in sizes(&[1_000, 10_000, 100_000]) {
        let n = n as usize;
        g.inner.sample_size(10);
        bench_on!(g, rt, "nursery", n, nursery_wake_chain);
        bench_on!(g, rt, "futures_unordered", n, fu_wake_chain);
    }
    g.inner.finish();
}

fn cancel(c: &mut Criterion) {
    let rt = current_thread();
    let mut g = group(c, "cancel");
    for n in sizes(&[1_000, 100_000]) {
        let n = n as usize;
        g.inner.sample_size(10);
        bench_on!(g, rt, "nursery", n, nursery_cancel);
        bench_on!(g, rt, "futures_unordered", n, fu_cancel);
    }
    g.inner.finish();
}

fn nested(c: &mut Criterion) {
    if std::env::var_os("NURSERY_PROFILE").is_some() {
        return; // not profiled: these are single futures, not sizes
    }
    let rt = current_thread();
    let mut g = c.benchmark_group("nested");
    g.bench_function("nursery_empty", |b| {
        b.iter(|| black_box(rt.block_on(nursery_empty())))
    });
    g.bench_function("async_fn_empty", |b| {
        b.iter(|| black_box(rt.block_on(async { 1u8 })))
    });
    g.bench_function("nursery_chain_1000", |b| {
        b.iter(|| black_box(rt.block_on(nursery_chain(1000))))
    });
    g.bench_function("boxed_chain_1000", |b| {
        b.iter(|| black_box(rt.block_on(boxed_chain(1000))))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = spawn_join, parallel, wake_all, wake_chain, cancel, nested
}
criterion_main!(benches);
