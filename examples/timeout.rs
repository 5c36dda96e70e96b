//! A whole nursery cancelled by a deadline: `#[nursery(timeout = …)]`.
//! Three downloads race a 500 ms deadline; a shielded cache write finishes
//! even though the deadline passed. Prints a timeline.
//!
//! Run with `cargo run --example timeout --features tokio`.

use std::time::{Duration, Instant};

use nursery::{Errors, TimedOut, nursery, spawn};

#[derive(Debug)]
enum FetchError {
    TimedOut,
}

impl From<TimedOut> for FetchError {
    fn from(_: TimedOut) -> Self {
        FetchError::TimedOut
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::TimedOut => f.write_str("gave up: the deadline passed"),
        }
    }
}

fn at(start: Instant) -> String {
    format!("{:>4} ms", start.elapsed().as_millis())
}

async fn download(name: &str, takes: Duration, start: Instant) -> Result<(), FetchError> {
    println!(
        "{}  {name}: started (takes {} ms)",
        at(start),
        takes.as_millis()
    );
    tokio::time::sleep(takes).await;
    println!("{}  {name}: done", at(start));
    Ok(())
}

#[nursery(timeout = Duration::from_millis(500))]
async fn fetch_all(start: Instant) -> Result<(), Errors<FetchError>> {
    spawn!(
        download("small.txt", Duration::from_millis(200), start),
        name = "small"
    );
    spawn!(
        download("medium.txt", Duration::from_millis(400), start),
        name = "medium"
    );
    spawn!(
        download("huge.iso", Duration::from_millis(2000), start),
        name = "huge"
    );
    spawn!(
        async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            println!(
                "{}  cache: index written (shielded: survives the deadline)",
                at(start)
            );
        },
        shield,
        name = "cache"
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    let start = Instant::now();
    println!("{}  fetch_all: deadline 500 ms", at(start));
    match fetch_all(start).await {
        Ok(()) => println!("{}  fetch_all: everything in time", at(start)),
        Err(errors) => println!("{}  fetch_all: {errors}", at(start)),
    }
    println!("\n(huge.iso never printed `done`: it was cancelled at 500 ms.)");
}
