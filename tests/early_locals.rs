//! Children borrow the locals a `#[nursery]` body declares before its
//! nursery opens (its first `spawn!`, `start!` or use of `n`), as threads
//! borrow what was declared before `std::thread::scope` (issue 20); `?` and
//! `return` there work as in any fn; `timeout` still covers the whole fn.

mod common;

use common::*;
use nursery::{Errors, nursery, spawn};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

struct Conn {
    beats: AtomicU32,
    log: Mutex<Vec<String>>,
}

impl Conn {
    async fn connect(fail: bool) -> Result<Conn, String> {
        yield_now().await;
        if fail {
            return Err("refused".to_owned());
        }
        Ok(Conn {
            beats: AtomicU32::new(0),
            log: Mutex::new(Vec::new()),
        })
    }

    async fn heartbeat(&self) {
        loop {
            self.beats.fetch_add(1, Ordering::SeqCst);
            yield_now().await;
        }
    }

    async fn request(&self, what: &str) -> Result<(), String> {
        yield_times(3).await;
        self.log.lock().unwrap().push(what.to_owned());
        Ok(())
    }
}

/// The seed, as the README shows it.
#[nursery]
async fn session(fail: bool, out: &Mutex<(u32, Vec<String>)>) -> Result<(), Errors<String>> {
    let conn = Conn::connect(fail).await?; // before the nursery opens
    let greeting = String::from("GET /a");
    spawn!(conn.heartbeat(), background); // borrows `conn`
    conn.request(&greeting).await?;
    let beats = conn.beats.load(Ordering::SeqCst);
    *out.lock().unwrap() = (beats, conn.log.lock().unwrap().clone());
    Ok(())
}

#[nursery(n)]
async fn early_return(skip: bool) -> u32 {
    let limit = 3u32;
    if skip {
        return 0; // returns from the fn: no nursery was opened
    }
    let counter = AtomicU32::new(0);
    n.cancel_token(); // the nursery opens here
    for _ in 0..limit {
        spawn!(async { counter.fetch_add(1, Ordering::SeqCst) });
    }
    yield_times(2).await;
    counter.load(Ordering::SeqCst)
}

/// A nested item written after the first `spawn!` is still visible before.
#[nursery]
async fn hoisted_item() -> u32 {
    let base = helper();
    let task = spawn!(async { base + 1 });
    fn helper() -> u32 {
        41
    }
    task.await
}

on_every_runtime! {
    async fn children_borrow_locals_declared_before_the_first_spawn() {
        let out = Mutex::new((0, Vec::new()));
        session(false, &out).await.unwrap();
        let (beats, log) = out.into_inner().unwrap();
        assert!(beats >= 1, "the heartbeat ran on the borrowed connection");
        assert_eq!(log, ["GET /a"]);
    }

    async fn question_mark_before_the_nursery_returns_from_the_fn() {
        let out = Mutex::new((0, Vec::new()));
        let errors = session(true, &out).await.unwrap_err();
        assert_eq!(errors.into_vec(), ["refused"]);
    }

    async fn return_before_the_nursery_returns_from_the_fn() {
        assert_eq!(early_return(true).await, 0);
        assert_eq!(early_return(false).await, 3);
    }

    async fn items_are_visible_across_the_split() {
        assert_eq!(hoisted_item().await, 42);
    }
}

/// `timeout` covers the statements before the nursery: a connect that hangs
/// times out as the nursery would have, and the deadline is the same one
/// afterwards (what the connect took is not given again).
#[cfg(feature = "tokio")]
mod deadline {
    use super::*;
    use std::time::Duration;

    #[derive(Debug, PartialEq)]
    enum E {
        TimedOut,
    }

    impl From<nursery::TimedOut> for E {
        fn from(_: nursery::TimedOut) -> Self {
            E::TimedOut
        }
    }

    #[nursery(timeout = Duration::from_secs(10))]
    async fn slow_connect(
        connect: Duration,
        work: Duration,
        done: &AtomicU32,
    ) -> Result<(), Errors<E>> {
        tokio::time::sleep(connect).await; // before the nursery opens
        let conn = AtomicU32::new(0);
        spawn!(async {
            tokio::time::sleep(work).await;
            conn.fetch_add(1, Ordering::SeqCst);
        });
        yield_now().await;
        done.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn run(connect: u64, work: u64) -> (Result<(), Errors<E>>, u32) {
        let done = AtomicU32::new(0);
        let out = paused_runtime().block_on(slow_connect(
            Duration::from_secs(connect),
            Duration::from_secs(work),
            &done,
        ));
        (out, done.load(Ordering::SeqCst))
    }

    #[test]
    fn a_deadline_covers_the_statements_before_the_nursery() {
        let (out, done) = run(20, 1);
        let errors = out.unwrap_err();
        let failure = errors.failures().next().unwrap();
        assert_eq!(
            (failure.name(), failure.nursery()),
            (Some("timeout"), Some("slow_connect"))
        );
        assert_eq!(errors.into_vec(), [E::TimedOut]);
        assert_eq!(done, 0);
    }

    #[test]
    fn the_nursery_gets_what_is_left_of_the_same_deadline() {
        // 6 s before + 6 s after > 10 s: the nursery's part times out.
        let (out, done) = run(6, 6);
        assert_eq!(out.unwrap_err().into_vec(), [E::TimedOut]);
        assert_eq!(
            done, 1,
            "the body finished; its child was cut at the deadline"
        );
        // 3 s + 3 s fits.
        let (out, _) = run(3, 3);
        out.unwrap();
    }
}
