//! The key-value server under load, two ways in one run: the nursery
//! server of the `kv_server` example (supervised `parallel` children, the
//! store's expiry task a background child, shutdown by `cancel_on`) and the
//! same server on `tokio::spawn` + `JoinSet` (a shutdown channel, failures
//! reaped from the set).
//!
//! `cargo bench --features tokio --bench kv`. Each iteration is one load
//! run — `CONNS` clients, `CONCURRENCY` at a time, `PAIRS` SET+GET pairs
//! each — against a server on a 2-worker runtime; criterion reports it as
//! commands per second. The round-trip latencies of every command of every
//! measured run are kept, and their p50/p99 printed at the end (and
//! written to `target/criterion/kv/latency.txt`).

#[path = "../examples/support/kv.rs"]
mod kv;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CONNS: u64 = 500;
const CONCURRENCY: u64 = 50;
const PAIRS: u64 = 4;

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

fn bench(c: &mut Criterion) {
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("kv");
    g.throughput(Throughput::Elements(CONNS * PAIRS * 2));
    g.sample_size(20);
    let mut latencies = String::new();
    // Interleaved: both servers run side by side, each measured in turn.
    let servers = [Server::Nursery, Server::JoinSet].map(|s| (s, start(s), Mutex::new(Vec::new())));
    for (server, (addr, _rt), seen) in &servers {
        let name = format!("{server:?}").to_lowercase();
        g.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let load = client
                        .block_on(kv::load(*addr, CONNS, CONCURRENCY, PAIRS))
                        .unwrap();
                    assert_eq!(load.commands, CONNS * PAIRS * 2);
                    total += load.elapsed;
                    seen.lock().unwrap().extend(&load.latencies_us);
                }
                total
            })
        });
    }
    g.finish();
    for (server, _, seen) in servers {
        let mut all = std::mem::take(&mut *seen.lock().unwrap());
        all.sort_unstable();
        let load = kv::Load {
            latencies_us: all,
            ..Default::default()
        };
        writeln!(
            latencies,
            "{}: round trip p50 {} µs, p99 {} µs ({} commands)",
            format!("{server:?}").to_lowercase(),
            load.percentile(0.50).as_micros(),
            load.percentile(0.99).as_micros(),
            load.latencies_us.len()
        )
        .unwrap();
    }
    print!("{latencies}");
    let dir = std::path::Path::new("target/criterion/kv");
    if std::fs::create_dir_all(dir).is_ok() {
        let _ = std::fs::write(dir.join("latency.txt"), &latencies);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    targets = bench
}
criterion_main!(benches);
