//! A client connection whose heartbeat lives exactly as long as the
//! connection, over real loopback TCP.
//!
//! Two seed patterns:
//! 1. a `#[nursery]` fn that opens the connection for you: the heartbeat is a
//!    `background` child of the session and ends when the session returns;
//! 2. an object handed the nursery (`Client::connect(n, …)`): the object
//!    spawns its own heartbeat into the caller's nursery and stops it when
//!    it is closed.
//!
//! Run with `cargo run --example heartbeat`.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::FutureExt;
use nursery::{Errors, Nursery, nursery, spawn};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, oneshot};

const BEAT: Duration = Duration::from_millis(100);

fn stamp(start: Instant) -> String {
    format!("{:>4} ms", start.elapsed().as_millis())
}

/// The server: prints every line it receives, and when each connection closes.
async fn serve(listener: TcpListener, start: Instant) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            let mut beats = 0;
            while let Ok(Some(line)) = lines.next_line().await {
                if line == "PING" {
                    beats += 1;
                }
                println!("{}  server <- {peer}: {line}", stamp(start));
            }
            println!(
                "{}  server: {peer} closed after {beats} heartbeats",
                stamp(start)
            );
        });
    }
}

async fn send(w: &Mutex<OwnedWriteHalf>, line: &str) -> io::Result<()> {
    w.lock()
        .await
        .write_all(format!("{line}\n").as_bytes())
        .await
}

/// Pattern 1: the session opens the connection and owns its heartbeat.
#[nursery]
async fn session(addr: SocketAddr, start: Instant) -> Result<(), Errors<io::Error>> {
    // Before the nursery opens (its first `spawn!`): children may borrow
    // what these lines declare, as threads borrow what was declared before
    // `std::thread::scope`.
    let (_read, write) = TcpStream::connect(addr).await?.into_split();
    let write = Mutex::new(write);
    spawn!(
        async {
            loop {
                tokio::time::sleep(BEAT).await;
                send(&write, "PING").await?; // borrows `write`
            }
        },
        background,
        name = "heartbeat"
    );
    for request in ["GET /a", "GET /b", "GET /c"] {
        tokio::time::sleep(Duration::from_millis(250)).await;
        send(&write, request).await?;
    }
    println!("{}  session: done, closing the connection", stamp(start));
    Ok(())
} // the heartbeat is cancelled here, and the socket closes with the session

/// Pattern 2: an object handed the nursery spawns its own heartbeat.
struct Client<'a> {
    write: &'a Mutex<OwnedWriteHalf>,
    stop: Option<oneshot::Sender<()>>,
}

impl<'a> Client<'a> {
    fn connect<'scope>(n: &Nursery<'scope, io::Error>, write: &'a Mutex<OwnedWriteHalf>) -> Self
    where
        'a: 'scope,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        n.builder().name("client heartbeat").spawn(async move {
            let mut stopped = stopped.fuse();
            loop {
                futures::select_biased! {
                    _ = stopped => return Ok(()),
                    _ = tokio::time::sleep(BEAT).fuse() => send(write, "PING").await?,
                }
            }
        });
        Client {
            write,
            stop: Some(stop),
        }
    }

    async fn request(&self, line: &str) -> io::Result<()> {
        send(self.write, line).await
    }

    /// Stops the heartbeat and shuts the connection down.
    async fn close(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.write.lock().await.shutdown().await
    }
}

async fn object_owned(addr: SocketAddr, start: Instant) -> Result<(), Errors<io::Error>> {
    let (_read, write) = TcpStream::connect(addr).await?.into_split();
    // Children borrow what outlives their nursery: the socket lives here,
    // the nursery in `use_client`.
    use_client(&Mutex::new(write), start).await
}

#[nursery(n)]
async fn use_client(
    write: &Mutex<OwnedWriteHalf>,
    start: Instant,
) -> Result<(), Errors<io::Error>> {
    let client = Client::connect(n, write);
    client.request("GET /x").await?;
    tokio::time::sleep(Duration::from_millis(450)).await;
    client.request("GET /y").await?;
    println!("{}  client: closing", stamp(start));
    client.close().await?;
    tokio::time::sleep(Duration::from_millis(300)).await; // no heartbeat after close
    println!("{}  client: nursery done", stamp(start));
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let start = Instant::now();
    println!("server listening on {addr}");
    tokio::spawn(serve(listener, start));

    println!("\n-- pattern 1: a #[nursery] fn that opens the connection --");
    session(addr, start).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    println!("\n-- pattern 2: an object handed the nursery --");
    object_owned(addr, start).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}
