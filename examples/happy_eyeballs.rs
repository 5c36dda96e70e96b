//! Happy Eyeballs (RFC 8305): connection attempts to several addresses,
//! started 250 ms apart, or as soon as the previous attempt fails; the first
//! success cancels the rest. Prints a timeline.
//!
//! The addresses are loopback listeners this program starts: one refuses
//! (nothing listens there), one is slow (loopback cannot drop packets, so
//! its attempt waits 1 s before connecting, as a black-holed address would),
//! one answers.
//!
//! Run with `cargo run --example happy_eyeballs --features tokio`.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nursery::{Errors, Nursery, nursery, spawn};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

#[derive(Clone, Copy)]
struct Target {
    addr: SocketAddr,
    /// How long the network takes to answer (a stand-in for a black hole).
    latency: Duration,
}

fn at(start: Instant) -> String {
    format!("{:>4} ms", start.elapsed().as_millis())
}

/// Connects to the first target that answers; `winner` receives it.
async fn happy_eyeballs(
    targets: &[Target],
    start: Instant,
) -> Result<TcpStream, Errors<io::Error>> {
    let winner = Mutex::new(None);
    // one "this attempt failed" signal per attempt, to start the next early
    let failed: Vec<Notify> = targets.iter().map(|_| Notify::new()).collect();
    race(targets, &failed, &winner, start).await?;
    winner.into_inner().unwrap().ok_or_else(|| {
        Errors::from(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "every attempt failed",
        ))
    })
}

#[nursery(n)]
async fn race(
    targets: &[Target],
    failed: &[Notify],
    winner: &Mutex<Option<TcpStream>>,
    start: Instant,
) -> Result<(), Errors<io::Error>> {
    for (i, target) in targets.iter().enumerate() {
        if i > 0 {
            // wait 250 ms, or less if the previous attempt fails
            tokio::select! {
                _ = tokio::time::sleep(ATTEMPT_DELAY) => {}
                _ = failed[i - 1].notified() => {}
            }
        }
        spawn!(
            attempt(n, i, *target, &failed[i], winner, start),
            name = format!("attempt {i}")
        );
    }
    Ok(())
}

async fn attempt<'scope>(
    n: &Nursery<'scope, io::Error>,
    i: usize,
    target: Target,
    failed: &Notify,
    winner: &Mutex<Option<TcpStream>>,
    start: Instant,
) -> Result<(), io::Error> {
    println!("{}  attempt {i}: connecting to {}", at(start), target.addr);
    tokio::time::sleep(target.latency).await;
    match TcpStream::connect(target.addr).await {
        Ok(stream) => {
            println!(
                "{}  attempt {i}: connected: cancelling the others",
                at(start)
            );
            *winner.lock().unwrap() = Some(stream);
            n.cancel();
        }
        Err(e) => {
            println!("{}  attempt {i}: failed ({e})", at(start));
            failed.notify_one();
        }
    }
    Ok(()) // a failed attempt is not a failure of the race
}

#[tokio::main]
async fn main() -> io::Result<()> {
    // a port that refuses: bind, note it, close it
    let refusing = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    let slow = TcpListener::bind("127.0.0.1:0").await?;
    let good = TcpListener::bind("127.0.0.1:0").await?;
    let targets = [
        Target {
            addr: refusing,
            latency: Duration::ZERO,
        },
        Target {
            addr: slow.local_addr()?,
            latency: Duration::from_secs(1),
        },
        Target {
            addr: good.local_addr()?,
            latency: Duration::from_millis(50),
        },
    ];
    let start = Instant::now();
    let stream = happy_eyeballs(&targets, start)
        .await
        .map_err(Errors::into_first)?;
    println!("{}  connected to {}", at(start), stream.peer_addr()?);
    Ok(())
}
