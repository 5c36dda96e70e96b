//! The echo server under load, three ways in one run: the nursery server of
//! the `echo_server` example (a `parallel` child per connection), the same
//! server with plain `tokio::spawn`, and with a `JoinSet`.
//!
//! `cargo bench --features tokio --bench echo`. Each iteration is one load
//! run — `CONNS` connections, `CONCURRENCY` open at a time, `LINES` echoed
//! lines each — against a server on a 2-worker runtime; criterion reports it
//! as connections per second (throughput). The round-trip latencies of every
//! line of every measured run are kept, and their p50/p99 printed at the end
//! (and written to `target/criterion/echo/latency.txt`).

#[path = "../examples/support/echo.rs"]
mod echo;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CONNS: u64 = 500;
const CONCURRENCY: u64 = 50;
const LINES: u64 = 4;

#[derive(Clone, Copy, Debug)]
enum Server {
    Nursery,
    TokioSpawn,
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
    let config = echo::Config {
        idle: Duration::from_secs(60),
        max_conns: None,
    };
    let stats = Arc::new(echo::Stats::default());
    match server {
        Server::Nursery => {
            rt.spawn(echo::serve(listener, config, stats, std::future::pending()));
        }
        Server::TokioSpawn => {
            rt.spawn(echo::serve_tokio_spawn(listener, config, stats));
        }
        Server::JoinSet => {
            rt.spawn(echo::serve_join_set(listener, config, stats));
        }
    }
    (addr, rt)
}

fn bench(c: &mut Criterion) {
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("echo");
    g.throughput(Throughput::Elements(CONNS));
    g.sample_size(20);
    let mut latencies = String::new();
    for server in [Server::Nursery, Server::TokioSpawn, Server::JoinSet] {
        let (addr, rt) = start(server);
        let seen = Mutex::new(Vec::<u32>::new());
        let name = format!("{server:?}").to_lowercase();
        g.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let load = client
                        .block_on(echo::load(addr, CONNS, CONCURRENCY, LINES))
                        .unwrap();
                    assert_eq!(load.lines, CONNS * LINES);
                    total += load.elapsed;
                    seen.lock().unwrap().extend(&load.latencies_us);
                }
                total
            })
        });
        let mut all = seen.into_inner().unwrap();
        all.sort_unstable();
        let load = echo::Load {
            latencies_us: all,
            ..Default::default()
        };
        writeln!(
            latencies,
            "{name}: round trip p50 {} µs, p99 {} µs ({} lines)",
            load.percentile(0.50).as_micros(),
            load.percentile(0.99).as_micros(),
            load.latencies_us.len()
        )
        .unwrap();
        drop(rt); // the server and its connections go with their runtime
    }
    g.finish();
    print!("{latencies}");
    let dir = std::path::Path::new("target/criterion/echo");
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
