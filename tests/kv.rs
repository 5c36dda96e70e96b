//! The key-value server of the `kv_server` example, end to end over
//! loopback TCP (issue 18): bad clients — one sends garbage, one makes its
//! connection panic — are logged with their connection's name while the
//! good clients' every reply stays right; the shutdown signal tells the
//! open connections and closes everything; expiry runs on the store's own
//! background child.
#![cfg(feature = "tokio")]

#[path = "../examples/support/kv.rs"]
mod kv;

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{assert_no_task_left, multi_thread_runtime};
use nursery::{Errors, nursery};

/// A listener on a free loopback port, its address, fresh stats, and a
/// stop signal with its sender.
async fn setup() -> (
    tokio::net::TcpListener,
    std::net::SocketAddr,
    Arc<kv::Stats>,
    tokio::sync::oneshot::Sender<()>,
    impl std::future::Future<Output = ()> + Send,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async {
        let _ = stopped.await;
    };
    (listener, addr, Arc::new(kv::Stats::default()), stop, signal)
}

#[test]
fn a_bad_client_does_not_disturb_the_others_and_shutdown_closes_everything() {
    let rt = multi_thread_runtime();
    rt.block_on(async {
        let (listener, addr, stats, stop, signal) = setup().await;
        let server = tokio::spawn(kv::serve(listener, None, stats.clone(), signal));

        // An idle client, open across the shutdown.
        let mut idle = kv::Client::connect(addr).await.unwrap();
        idle.expect("PING", "PONG").await.unwrap();

        // Good clients and bad ones, at once.
        let good = kv::load(addr, 40, 8, 5);
        let bad = async {
            let mut garbage = kv::Client::connect(addr).await.unwrap();
            let reply = garbage.send("BOGUS").await.unwrap();
            assert_eq!(reply.as_deref(), Some("ERR unknown command \"BOGUS\""));
            assert_eq!(
                garbage.reply().await.unwrap(),
                None,
                "its connection was closed"
            );
            let mut panics = kv::Client::connect(addr).await.unwrap();
            assert_eq!(panics.send("DEBUG PANIC").await.unwrap(), None);
        };
        let (load, ()) = tokio::join!(good, bad);
        let load = load.expect("every good client got every right reply");
        assert_eq!(load.commands, 40 * 5 * 2);

        // Each failure reaches the handler once, with its connection's name
        // (the client may see its connection closed before the server's
        // nursery has handled the failure: wait for it, bounded).
        tokio::time::timeout(Duration::from_secs(20), async {
            while stats.failed.load(Ordering::Relaxed) < 2 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("both failures reach the handler");
        let mut recent = stats.recent.lock().unwrap().clone();
        recent.sort_by_key(|line| line.contains("panicked"));
        assert_eq!(recent.len(), 2, "{recent:?}");
        assert!(
            recent
                .iter()
                .all(|line| line.starts_with("child `conn 127.0.0.1:")),
            "{recent:?}"
        );
        assert!(
            recent[0].ends_with("of nursery `serve` failed: unknown command \"BOGUS\""),
            "{recent:?}"
        );
        assert!(
            recent[1].ends_with("panicked: DEBUG PANIC: the client asked this connection to panic"),
            "{recent:?}"
        );

        // The server still works, then shuts down.
        let mut late = kv::Client::connect(addr).await.unwrap();
        late.expect("SET after failures", "OK").await.unwrap();
        late.expect("GET after", "failures").await.unwrap();
        stop.send(()).unwrap();
        assert_eq!(
            idle.reply().await.unwrap().as_deref(),
            Some("ERR server shutting down")
        );
        assert_eq!(idle.reply().await.unwrap(), None, "then closed");
        assert_eq!(
            late.reply().await.unwrap().as_deref(),
            Some("ERR server shutting down")
        );
        server.await.unwrap().expect("a shutdown is not a failure");
        assert!(stats.goodbyes.load(Ordering::Relaxed) >= 2);
        assert!(
            kv::Client::connect(addr).await.is_err(),
            "the listener is closed"
        );
    });
    assert_no_task_left(&rt);
}

/// The same clients against the `tokio::spawn` + `JoinSet` twin (the
/// benchmark's baseline) get the same replies.
#[test]
fn the_join_set_twin_serves_the_same_protocol() {
    let rt = multi_thread_runtime();
    rt.block_on(async {
        let (listener, addr, stats, stop, signal) = setup().await;
        let server = tokio::spawn(kv::serve_join_set(listener, None, stats.clone(), signal));
        let load = kv::load(addr, 20, 4, 3).await.unwrap();
        assert_eq!(load.commands, 20 * 3 * 2);
        let mut garbage = kv::Client::connect(addr).await.unwrap();
        garbage.send("BOGUS").await.unwrap();
        assert_eq!(garbage.reply().await.unwrap(), None);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        // Reaped during the grace period at the latest.
        assert_eq!(stats.failed.load(Ordering::Relaxed), 1);
    });
}

/// Keys expire on the store's own background child, on the deadlines'
/// clock (paused here), and the child goes with the nursery.
#[test]
fn keys_expire_on_the_stores_background_child() {
    #[nursery(n)]
    async fn run() -> Result<(), Errors<std::io::Error>> {
        let store = kv::Store::open(n);
        store.set("short", "1", Some(Duration::from_millis(100)));
        store.set("long", "2", Some(Duration::from_secs(10)));
        store.set("forever", "3", None);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(store.get("short"), None);
        assert_eq!(store.len(), 2, "removed, not only hidden");
        assert_eq!(store.get("long").as_deref(), Some("2"));
        store.set("long", "4", Some(Duration::from_millis(10))); // sooner
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(store.len(), 1);
        assert!(store.del("forever") && !store.del("forever"));
        Ok(()) // the expiry child is cancelled with the nursery's other work
    }
    common::paused_runtime().block_on(run()).unwrap();
}
