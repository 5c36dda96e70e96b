//! Behaviour 2: children borrow the fn's arguments; a nursery handle can be
//! handed to an object that owns background children (the heartbeat seed).

mod common;

use common::*;
use futures::StreamExt;
use futures::channel::mpsc;
use nursery::{Errors, Nursery, nursery, spawn};
use std::convert::Infallible;
use std::sync::Mutex;

#[nursery]
async fn borrow_args(words: &[String], total: &Mutex<usize>) {
    for w in words {
        spawn!(async move {
            yield_now().await;
            *total.lock().unwrap() += w.len();
        });
    }
}

#[nursery]
async fn borrow_mut_arg(out: &mut Vec<u32>) {
    let out = &mut *out;
    spawn!(async move {
        yield_now().await;
        out.push(1);
    });
}

/// A connection that owns a heartbeat for exactly as long as it lives.
struct Connection<'a> {
    beats: &'a Counter,
    closed: futures::channel::oneshot::Sender<()>,
}

impl<'a> Connection<'a> {
    /// Seed pattern 1: an object handed the nursery spawns its own child.
    fn open<'scope>(n: &Nursery<'scope, Infallible>, beats: &'a Counter) -> Self
    where
        'a: 'scope,
    {
        let (closed, mut on_close) = futures::channel::oneshot::channel::<()>();
        n.builder().name("heartbeat").spawn(async move {
            loop {
                if let Ok(Some(())) | Err(_) = on_close.try_recv() {
                    return;
                }
                beats.add();
                yield_now().await;
            }
        });
        Connection { beats, closed }
    }

    fn close(self) {
        let _ = self.closed.send(());
    }
}

#[nursery(n)]
async fn use_connection(beats: &Counter, log: &Mutex<Vec<String>>) {
    let conn = Connection::open(n, beats);
    yield_times(5).await;
    log.lock()
        .unwrap()
        .push(format!("beats while open: {}", conn.beats.get() > 0));
    conn.close();
}

/// Seed pattern 2: a function that opens a connection inside the caller's
/// nursery and returns it; the heartbeat is `background`, so it ends with
/// the caller's nursery even if nobody closes it.
fn connect<'a, 'scope>(
    n: &'a Nursery<'scope, Infallible>,
    beats: &'scope Counter,
) -> &'a Nursery<'scope, Infallible> {
    spawn_heartbeat(n, beats);
    n
}

fn spawn_heartbeat<'scope>(n: &Nursery<'scope, Infallible>, beats: &'scope Counter) {
    n.builder().background().spawn(async move {
        loop {
            beats.add();
            yield_now().await;
        }
    });
}

#[nursery(n)]
async fn background_heartbeat(beats: &Counter) -> usize {
    let _conn = connect(n, beats);
    yield_times(4).await;
    beats.get()
}

#[nursery]
async fn pipeline(items: &[u32]) -> Result<u32, Errors<Infallible>> {
    let (tx, mut rx) = mpsc::channel::<u32>(2);
    spawn!(async move {
        let mut tx = tx;
        for i in items {
            futures::SinkExt::send(&mut tx, *i).await.unwrap();
        }
    });
    let consumer = spawn!(async move {
        let mut sum = 0;
        while let Some(x) = rx.next().await {
            sum += x;
        }
        sum
    });
    Ok(consumer.await)
}

on_every_runtime! {
    async fn children_borrow_the_fns_arguments() {
        let words = vec!["ab".to_string(), "cde".to_string()];
        let total = Mutex::new(0);
        borrow_args(&words, &total).await;
        assert_eq!(*total.lock().unwrap(), 5);
    }

    async fn a_child_may_borrow_an_argument_mutably() {
        let mut v = Vec::new();
        borrow_mut_arg(&mut v).await;
        assert_eq!(v, [1]);
    }

    async fn an_object_handed_the_nursery_owns_its_heartbeat() {
        let beats = Counter::new();
        let log = Mutex::new(Vec::new());
        use_connection(&beats, &log).await;
        let after = beats.get();
        assert_eq!(*log.lock().unwrap(), ["beats while open: true"]);
        assert!(after > 0);
    }

    async fn a_background_heartbeat_ends_with_its_nursery() {
        let beats = Counter::new();
        let seen = background_heartbeat(&beats).await;
        assert!(seen > 0);
        assert_eq!(beats.get(), seen, "no beat after the nursery returned");
    }

    async fn a_producer_consumer_pipeline() {
        assert_eq!(pipeline(&[1, 2, 3, 4]).await.unwrap(), 10);
    }
}
