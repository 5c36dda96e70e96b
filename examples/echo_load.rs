//! The load generator for `echo_server`: opens many concurrent connections,
//! each sends lines and checks their echoes, and prints connections per
//! second and round-trip latency (p50, p99).
//!
//! ```text
//! cargo run --release --features tokio --example echo_load -- --conns 2000 --concurrency 64 --lines 10
//! ```
//!
//! Options: `--addr 127.0.0.1:7878`, `--conns` (total), `--concurrency`
//! (open at once), `--lines` (per connection).

#[path = "support/echo.rs"]
mod echo;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = echo::arg(&args, "--addr").unwrap_or_else(|| "127.0.0.1:7878".parse().unwrap());
    let conns = echo::arg(&args, "--conns").unwrap_or(2000);
    let concurrency = echo::arg(&args, "--concurrency").unwrap_or(64);
    let lines = echo::arg(&args, "--lines").unwrap_or(10);
    println!("{conns} connections to {addr}, {concurrency} at a time, {lines} lines each");
    let load = echo::load(addr, conns, concurrency, lines).await?;
    println!("{}", load.report());
    Ok(())
}
