//! A small Redis-like key-value store over TCP (GET/SET/DEL with expiry):
//! the server users copy. Every connection is a supervised `parallel`
//! child: a client that sends garbage or makes its connection panic
//! (`DEBUG PANIC`) is logged with its connection's name and the server
//! goes on. The store owns its background expiry task. Ctrl-C (or
//! `--max-conns N`) shuts down with a grace period: open connections are
//! told, then everything is gone when `serve` returns.
//!
//! ```text
//! cargo run --release --features tokio --example kv_server -- --max-conns 2000
//! cargo run --release --features tokio --example kv_load -- --conns 2000 --concurrency 64
//! ```
//!
//! Try it by hand: `nc 127.0.0.1 6380`, then `SET a 1 PX 5000`, `GET a`,
//! `DEL a`, `BOGUS` (that connection fails and is logged), `QUIT`.

#[path = "support/kv.rs"]
mod kv;

use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: std::net::SocketAddr =
        kv::arg(&args, "--addr").unwrap_or_else(|| "127.0.0.1:6380".parse().unwrap());
    let max_conns = kv::arg(&args, "--max-conns");
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "key-value server on {} (grace {:?}{}); Ctrl-C to stop",
        listener.local_addr()?,
        kv::GRACE,
        max_conns.map_or_else(String::new, |n| format!(", stops after {n} connections")),
    );
    let stats = Arc::new(kv::Stats {
        log: true,
        ..Default::default()
    });
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await // no signal handling here
        }
        println!("Ctrl-C: shutting down");
    };
    let result = kv::serve(listener, max_conns, stats.clone(), ctrl_c).await;
    // `serve` returned: no connection is running any more.
    println!("{}", stats.summary());
    result.map_err(anyhow::Error::from)
}
