//! A TCP echo server on 127.0.0.1: the accept loop is a nursery's body and
//! every connection a `parallel` child, on every worker of the runtime.
//!
//! Each connection has an idle deadline; Ctrl-C (or, for scripted runs,
//! `--max-conns N`: stop once N connections were served) cancels the
//! nursery with a grace period, so connections still open get a `goodbye`
//! line; then it prints a summary. Nothing is left running when it returns.
//!
//! ```text
//! cargo run --release --features tokio --example echo_server -- --max-conns 2000
//! cargo run --release --features tokio --example echo_load -- --conns 2000 --concurrency 64
//! ```
//!
//! Options: `--addr 127.0.0.1:7878`, `--idle-ms 5000`, `--max-conns N`.
//!
//! Built with the `task-tree` feature (`--features tokio,task-tree`), it
//! prints the live task tree — the server's nursery and every open
//! connection — each time Enter is pressed.

#[path = "support/echo.rs"]
mod echo;

use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: std::net::SocketAddr =
        echo::arg(&args, "--addr").unwrap_or_else(|| "127.0.0.1:7878".parse().unwrap());
    let config = echo::Config {
        idle: Duration::from_millis(echo::arg(&args, "--idle-ms").unwrap_or(5000)),
        max_conns: echo::arg(&args, "--max-conns"),
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "echo server on {} (idle deadline {:?}, grace {:?}{}); Ctrl-C to stop",
        listener.local_addr()?,
        config.idle,
        echo::GRACE,
        config
            .max_conns
            .map_or_else(String::new, |n| format!(", stops after {n} connections")),
    );
    let stats = Arc::new(echo::Stats::default());
    let started = Instant::now();
    #[cfg(feature = "task-tree")]
    {
        println!("press Enter to print the task tree");
        std::thread::spawn(|| {
            for _ in std::io::stdin().lines().map_while(Result::ok) {
                print!("{}", nursery::task_tree());
            }
        });
    }
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await // no signal handling here: run until max-conns
        }
        println!("Ctrl-C: shutting down, open connections get a goodbye");
    };
    let result = echo::serve(listener, config, stats.clone(), ctrl_c).await;
    println!("after {:.2?}: {}", started.elapsed(), stats.summary());
    // `serve` returned, so no connection is running any more.
    result.map_err(anyhow::Error::from)
}
