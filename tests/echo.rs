//! The `echo_server` example's server, driven by its load generator: every
//! connection served, goodbyes on shutdown, idle deadlines, and nothing left
//! on the runtime afterwards.
#![cfg(feature = "tokio")]

#[path = "../examples/support/echo.rs"]
mod echo;

mod common;

use common::{assert_no_task_left, multi_thread_runtime, paused_runtime};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

type Server = JoinHandle<Result<(), nursery::Errors<std::io::Error>>>;

/// The nursery server on a free loopback port, as a task of the current
/// runtime: its address, its stats and its task.
async fn start_server(
    idle: Duration,
    max_conns: Option<u64>,
    signal: impl Future<Output = ()> + Send + 'static,
) -> (SocketAddr, Arc<echo::Stats>, Server) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = echo::Config { idle, max_conns };
    let stats = Arc::new(echo::Stats::default());
    let server = tokio::spawn(echo::serve(listener, config, stats.clone(), signal));
    (addr, stats, server)
}

#[test]
fn every_connection_of_a_load_run_is_served_and_echoed() {
    let rt = multi_thread_runtime();
    let (load, stats) = rt.block_on(async {
        let (addr, stats, server) =
            start_server(Duration::from_secs(60), Some(300), std::future::pending()).await;
        let load = echo::load(addr, 300, 32, 5).await.unwrap();
        server.await.unwrap().unwrap(); // stops by itself after 300 connections
        (load, stats)
    });
    assert_eq!(
        (load.conns, load.lines, load.goodbyes, load.refused),
        (300, 1500, 0, 0)
    );
    assert_eq!(load.latencies_us.len(), 1500);
    assert_eq!(stats.served.load(Ordering::SeqCst), 300);
    assert_eq!(stats.lines.load(Ordering::SeqCst), 1500);
    assert_eq!(stats.errors.load(Ordering::SeqCst), 0);
    assert_no_task_left(&rt);
}

#[test]
fn a_shutdown_says_goodbye_to_every_open_connection_then_returns() {
    let rt = multi_thread_runtime();
    rt.block_on(async {
        let (stop, signal) = tokio::sync::oneshot::channel::<()>();
        let (addr, s, server) = start_server(Duration::from_secs(60), None, async {
            signal.await.ok();
        })
        .await;
        // Ten clients, each connected and echoed once (so it is being served).
        let mut clients = Vec::new();
        for i in 0..10 {
            let stream = TcpStream::connect(addr).await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            write
                .write_all(format!("hi {i}\n").as_bytes())
                .await
                .unwrap();
            assert_eq!(lines.next_line().await.unwrap().unwrap(), format!("hi {i}"));
            clients.push((lines, write));
        }
        stop.send(()).unwrap();
        for (lines, _write) in &mut clients {
            assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("goodbye"));
        }
        server.await.unwrap().unwrap();
        assert_eq!(s.goodbyes.load(Ordering::SeqCst), 10);
        assert_eq!(
            s.served.load(Ordering::SeqCst),
            10,
            "served: every connection ended before serve returned"
        );
    });
    assert_no_task_left(&rt);
}

#[test]
fn an_idle_connection_is_closed_at_its_deadline() {
    // Paused time: the runtime jumps to the deadline as soon as it is idle.
    let rt = paused_runtime();
    rt.block_on(async {
        let (addr, stats, server) =
            start_server(Duration::from_secs(30), Some(1), std::future::pending()).await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let start = tokio::time::Instant::now();
        let mut lines = BufReader::new(stream).lines();
        assert_eq!(
            lines.next_line().await.unwrap().as_deref(),
            Some("idle, bye")
        );
        assert!(start.elapsed() >= Duration::from_secs(30));
        server.await.unwrap().unwrap();
        assert_eq!(stats.idle.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn dropping_the_server_future_closes_every_connection() {
    let rt = multi_thread_runtime();
    rt.block_on(async {
        let (addr, _stats, server) =
            start_server(Duration::from_secs(60), None, std::future::pending()).await;
        let mut clients = Vec::new();
        for _ in 0..8 {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(b"x\n").await.unwrap();
            let mut lines = BufReader::new(stream).lines();
            assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("x"));
            clients.push(lines);
        }
        server.abort(); // drops the nursery future: every connection with it
        assert!(server.await.unwrap_err().is_cancelled());
        for lines in &mut clients {
            // The connection's socket was dropped: end of stream, no goodbye.
            assert_eq!(lines.next_line().await.unwrap(), None);
        }
    });
    assert_no_task_left(&rt);
}
