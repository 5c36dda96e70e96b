//! Gathering the results of children, and a producer/consumer pipeline
//! over a channel, each child borrowing the caller's data.
//!
//! Run with `cargo run --example gather`.

use std::time::Duration;

use nursery::{Errors, nursery, spawn};
use tokio::sync::mpsc;

#[derive(Debug)]
struct NotFound(String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} not found", self.0)
    }
}

/// Pretends to fetch a page: its length, after a delay that grows with it.
async fn fetch(url: &str) -> Result<usize, NotFound> {
    tokio::time::sleep(Duration::from_millis(10 * url.len() as u64)).await;
    if url.ends_with("404") {
        return Err(NotFound(url.to_string()));
    }
    Ok(url.len())
}

/// Results in the order of `urls`, whatever order the children finish in.
#[nursery]
async fn fetch_all(urls: &[&str]) -> Result<Vec<usize>, Errors<NotFound>> {
    let handles: Vec<_> = urls
        .iter()
        .map(|u| spawn!(fetch(u), name = u.to_string()))
        .collect();
    let mut pages = Vec::new();
    for h in handles {
        pages.push(h.await);
    }
    Ok(pages)
}

/// A producer, three workers and a collector, connected by channels.
async fn pipeline(words: &[&str]) -> usize {
    let (jobs_tx, jobs_rx) = mpsc::channel::<&str>(4);
    // Children borrow what outlives the nursery: the workers share the job
    // queue through a reference to this fn's local, passed in.
    let jobs_rx = tokio::sync::Mutex::new(jobs_rx);
    run_pipeline(words, jobs_tx, &jobs_rx).await
}

#[nursery]
async fn run_pipeline<'w>(
    words: &[&'w str],
    jobs_tx: mpsc::Sender<&'w str>,
    jobs_rx: &tokio::sync::Mutex<mpsc::Receiver<&'w str>>,
) -> usize {
    let (done_tx, mut done_rx) = mpsc::channel::<(usize, usize)>(4);

    spawn!(async move {
        for w in words {
            jobs_tx.send(w).await.unwrap();
        }
        println!("producer: sent {} jobs", words.len());
    });
    for worker in 0..3 {
        let done_tx = done_tx.clone();
        spawn!(async move {
            loop {
                let Some(word) = jobs_rx.lock().await.recv().await else {
                    return;
                };
                tokio::time::sleep(Duration::from_millis(5)).await;
                done_tx.send((worker, word.len())).await.unwrap();
            }
        });
    }
    drop(done_tx);
    let mut total = 0;
    while let Some((worker, len)) = done_rx.recv().await {
        println!("collector: worker {worker} measured {len}");
        total += len;
    }
    total
}

#[tokio::main]
async fn main() {
    let urls = ["example.com/a", "example.com/bb", "example.com/ccc"];
    println!("fetch_all: {:?}", fetch_all(&urls).await.unwrap());

    let with_missing = ["example.com/a", "example.com/404", "example.com/long-page"];
    match fetch_all(&with_missing).await {
        Ok(pages) => println!("fetch_all: {pages:?}"),
        Err(errors) => println!("fetch_all failed fast: {errors}"),
    }

    let words = ["structured", "concurrency", "for", "async", "rust"];
    println!("pipeline: total length {}", pipeline(&words).await);
}
