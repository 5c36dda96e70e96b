//! Helpers shared by the integration tests.
#![allow(dead_code, unused_macros, unused_imports)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

/// Yields once to the executor, on any runtime.
pub fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

/// Yields `n` times.
pub async fn yield_times(n: usize) {
    for _ in 0..n {
        yield_now().await;
    }
}

/// Counts events (drops, polls, completions) across threads.
#[derive(Clone, Default, Debug)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
    /// A guard that counts once when dropped (however the future ends).
    pub fn on_drop(&self) -> OnDrop {
        OnDrop(self.clone())
    }
}

/// Counts guards created and guards dropped: every one created must be dropped.
#[derive(Clone, Default, Debug)]
pub struct Tracker {
    pub created: Counter,
    pub dropped: Counter,
}

impl Tracker {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn guard(&self) -> OnDrop {
        self.created.add();
        self.dropped.on_drop()
    }
    pub fn all_dropped(&self) -> bool {
        self.created.get() == self.dropped.get()
    }
}

#[derive(Debug)]
pub struct OnDrop(Counter);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.add();
    }
}

/// Wraps a future and counts its polls.
pub struct CountPolls<F> {
    pub fut: Pin<Box<F>>,
    pub polls: Counter,
}

impl<F: Future> Future for CountPolls<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.add();
        self.fut.as_mut().poll(cx)
    }
}

pub fn count_polls<F: Future>(fut: F, polls: &Counter) -> CountPolls<F> {
    CountPolls {
        fut: Box::pin(fut),
        polls: polls.clone(),
    }
}

/// Polls a future once with a waker that does nothing.
pub fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    fut.poll(&mut cx)
}

/// Runs `fut` to completion on a tokio multi-thread runtime, inside
/// `tokio::spawn` (so it must be `Send`); resumes its panic if it panicked.
pub fn on_multi_thread<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match rt.block_on(rt.spawn(fut)) {
        Ok(out) => out,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// A 2-worker multi-thread runtime with every driver.
pub fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits until no task is alive on `rt`: the runtime tasks of parallel
/// children end at their next poll once their nursery is done. A condition,
/// not a duration: the bound only turns a leak into a failure.
pub fn assert_no_task_left(rt: &tokio::runtime::Runtime) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while rt.metrics().num_alive_tasks() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} task(s) left alive on the runtime",
            rt.metrics().num_alive_tasks()
        );
        std::thread::yield_now();
    }
}

/// A current-thread runtime whose clock starts paused (it jumps to the next
/// timer whenever every task waits).
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

pub fn on_current_thread<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fut)
}

/// Runs `fut` on smol's executor (`async-executor`).
pub fn on_smol<F: Future>(fut: F) -> F::Output {
    let ex = async_executor::Executor::new();
    futures_lite::future::block_on(ex.run(fut))
}

/// Defines each test once per runtime: `futures::executor::block_on`, tokio
/// current-thread, tokio multi-thread (inside `tokio::spawn`), and smol's
/// executor.
macro_rules! on_every_runtime {
    ($( $(#[$meta:meta])* async fn $name:ident() $body:block )*) => {
        mod futures_executor {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$meta])* #[test] fn $name() { futures::executor::block_on(async $body) } )*
        }
        mod tokio_current_thread {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$meta])* #[test] fn $name() { $crate::common::on_current_thread(async $body) } )*
        }
        mod tokio_multi_thread {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$meta])* #[test] fn $name() { $crate::common::on_multi_thread(async $body) } )*
        }
        mod smol {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$meta])* #[test] fn $name() { $crate::common::on_smol(async $body) } )*
        }
    };
}
pub(crate) use on_every_runtime;

/// Runs `fut` on this thread to completion, and fails (instead of hanging)
/// if it is ever pending with no wake outstanding: for futures whose every
/// wake comes from this thread (local children), "pending and nothing will
/// wake it" is a hang, decided without a clock.
pub fn must_finish<F: Future>(fut: F) -> F::Output {
    use std::sync::atomic::AtomicBool;
    struct Flag(AtomicBool);
    impl futures::task::ArcWake for Flag {
        fn wake_by_ref(this: &Arc<Self>) {
            this.0.store(true, Ordering::SeqCst);
        }
    }
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = futures::task::waker(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        assert!(
            flag.0.swap(false, Ordering::SeqCst),
            "hang: the future is pending and nothing is left to wake it"
        );
    }
}

/// A future that is `inner`, and whose `Drop` panics with `payload`
/// (however it ends: completed, cancelled, or while it unwinds).
pub struct PanicOnDrop<F> {
    pub inner: Pin<Box<F>>,
    pub payload: &'static str,
}

impl<F: Future> Future for PanicOnDrop<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<F> Drop for PanicOnDrop<F> {
    fn drop(&mut self) {
        std::panic::panic_any(self.payload);
    }
}

pub fn panic_on_drop<F: Future>(payload: &'static str, inner: F) -> PanicOnDrop<F> {
    PanicOnDrop {
        inner: Box::pin(inner),
        payload,
    }
}

/// The payload of a panic, as the `&str` it was raised with.
pub fn payload_str(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<not a string>")
}
