//! The key-value server under load, two ways in one run: the nursery
//! server of the `kv_server` example (supervised `parallel` children, the
//! store's expiry task a background child, shutdown by `cancel_on`) and the
//! same server on `tokio::spawn` + `JoinSet` (a shutdown channel, failures
//! reaped from the set).
//!
//! `cargo bench --features tokio --bench kv`. Both servers run side by side,
//! each on its own 2-worker runtime; `ROUNDS` load runs — `CONNS` clients,
//! `CONCURRENCY` at a time, `PAIRS` SET+GET pairs each — take turns between
//! them, and the medians of commands per second and their ratio are
//! printed, with the round-trip p50/p99 of every command.

#[path = "../examples/support/kv.rs"]
mod kv;

use std::sync::Arc;

const CONNS: u64 = 300;
const CONCURRENCY: u64 = 50;
const PAIRS: u64 = 4;
/// Load runs per server, taking turns (the machine's drift reaches both
/// alike; a criterion group per server measured minutes apart did not).
const ROUNDS: usize = 30;

#[derive(Clone, Copy, Debug)]
enum Server {
    Nursery,
    JoinSet,
}

/// Starts `server` on a fresh 2-worker runtime; its address and runtime.
fn start(server: Server) -> (std::net::SocketAddr, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(kv::Stats::default());
    let never = std::future::pending::<()>();
    match server {
        Server::Nursery => {
            rt.spawn(kv::serve(listener, None, stats, never));
        }
        Server::JoinSet => {
            rt.spawn(kv::serve_join_set(listener, None, stats, never));
        }
    }
    (addr, rt)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list
    }
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let servers = [Server::Nursery, Server::JoinSet].map(|s| (s, start(s)));
    // Warm up both (connections, the store, the allocator).
    for (_, (addr, _)) in &servers {
        client
            .block_on(kv::load(*addr, CONNS, CONCURRENCY, PAIRS))
            .unwrap();
    }
    let mut rates = [Vec::new(), Vec::new()];
    let mut latencies = [Vec::new(), Vec::new()];
    for round in 0..ROUNDS {
        // Alternate which goes first, too.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (addr, _) = &servers[i].1;
            let load = client
                .block_on(kv::load(*addr, CONNS, CONCURRENCY, PAIRS))
                .unwrap();
            assert_eq!(load.commands, CONNS * PAIRS * 2);
            rates[i].push(load.commands as f64 / load.elapsed.as_secs_f64());
            latencies[i].extend(load.latencies_us);
        }
    }
    println!(
        "kv: {ROUNDS} interleaved load runs per server ({CONNS} clients, {CONCURRENCY} at a time, {PAIRS} SET+GET pairs each)"
    );
    let mut medians = [0.0; 2];
    for (i, (server, _)) in servers.iter().enumerate() {
        let mut all = std::mem::take(&mut latencies[i]);
        all.sort_unstable();
        let load = kv::Load {
            latencies_us: all,
            ..Default::default()
        };
        medians[i] = median(rates[i].clone());
        println!(
            "{:>8}: median {:.0} commands/s; round trip p50 {} µs, p99 {} µs",
            format!("{server:?}").to_lowercase(),
            medians[i],
            load.percentile(0.50).as_micros(),
            load.percentile(0.99).as_micros(),
        );
    }
    println!(
        "nursery / joinset throughput: {:.3}",
        medians[0] / medians[1]
    );
}
