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
use std::time::{Duration, Instant};

use nursery::{Errors, Race, nursery, spawn};
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

/// Connects to the first target that answers, or gives every attempt's
/// failure.
async fn happy_eyeballs(
    targets: &[Target],
    start: Instant,
) -> Result<TcpStream, Errors<io::Error>> {
    let race = Race::new();
    // one "this attempt failed" signal per attempt, to start the next early
    let failed: Vec<Notify> = targets.iter().map(|_| Notify::new()).collect();
    staggered(targets, &failed, &race, start).await;
    race.finish()
}

/// Starts the attempts 250 ms apart (or as soon as the previous one
/// fails); the first to connect cancels this nursery: the other attempts
/// and this loop.
#[nursery(n)]
async fn staggered(
    targets: &[Target],
    failed: &[Notify],
    race: &Race<TcpStream, io::Error>,
    start: Instant,
) {
    for (i, target) in targets.iter().enumerate() {
        if i > 0 {
            tokio::select! {
                _ = tokio::time::sleep(ATTEMPT_DELAY) => {}
                _ = failed[i - 1].notified() => {}
            }
        }
        let name = format!("attempt {i} ({})", target.addr);
        spawn!(race.attempt(n, name, attempt(i, *target, &failed[i], start)));
    }
}

async fn attempt(
    i: usize,
    target: Target,
    failed: &Notify,
    start: Instant,
) -> Result<TcpStream, io::Error> {
    println!("{}  attempt {i}: connecting to {}", at(start), target.addr);
    tokio::time::sleep(target.latency).await;
    match TcpStream::connect(target.addr).await {
        Ok(stream) => {
            println!(
                "{}  attempt {i}: connected: the others are cancelled",
                at(start)
            );
            Ok(stream)
        }
        Err(e) => {
            println!("{}  attempt {i}: failed ({e})", at(start));
            failed.notify_one();
            Err(e)
        }
    }
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
    match happy_eyeballs(&targets, start).await {
        Ok(stream) => println!("{}  connected to {}", at(start), stream.peer_addr()?),
        // every attempt failed: each failure, with its attempt's name
        Err(errors) => println!("{}  {errors}", at(start)),
    }
    Ok(())
}
