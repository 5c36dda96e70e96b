//! The echo server (three ways) and its load generator, shared by the
//! `echo_server` and `echo_load` examples and the `echo` benchmark.
//!
//! The protocol: the client sends lines, the server echoes each line back.
//! A connection idle for `idle` gets `idle, bye` and is closed; when the
//! server shuts down, every open connection gets `goodbye` during the grace
//! period.
#![allow(dead_code)] // each user takes what it needs

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nursery::{CancelToken, Errors, nursery, spawn};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[path = "common.rs"]
mod common;
#[allow(unused_imports)] // the examples use it, the tests and benchmarks do not
pub use common::arg;

/// What the server saw; printed as its summary.
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: AtomicU64,
    /// Connections that ended (the client closed, idle, goodbye or error).
    pub served: AtomicU64,
    pub lines: AtomicU64,
    pub idle: AtomicU64,
    pub goodbyes: AtomicU64,
    pub errors: AtomicU64,
    /// Wakes the accept loop when `served` changes.
    pub changed: tokio::sync::Notify,
}

impl Stats {
    pub fn summary(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{} connections served ({} accepted): {} lines echoed, {} closed idle, {} said goodbye to, {} errors",
            get(&self.served),
            get(&self.accepted),
            get(&self.lines),
            get(&self.idle),
            get(&self.goodbyes),
            get(&self.errors),
        )
    }
}

/// How the server runs.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// A connection that sends nothing for this long is closed.
    pub idle: Duration,
    /// Stop (with a grace period) once this many connections were served.
    pub max_conns: Option<u64>,
}

/// Why the accept loop stops: the signal (Ctrl-C), or `max_conns`.
async fn stop_when(config: Config, stats: &Stats, signal: impl Future<Output = ()>) {
    let enough = async {
        let Some(max) = config.max_conns else {
            return std::future::pending().await;
        };
        loop {
            let changed = stats.changed.notified();
            if stats.served.load(Ordering::Relaxed) >= max {
                return;
            }
            changed.await;
        }
    };
    tokio::select! {
        () = signal => {}
        () = enough => {}
    }
}

pub const GRACE: Duration = Duration::from_secs(1);

/// The nursery server: the accept loop is the body, each connection a
/// supervised `parallel` child (its failure — an I/O error, a panic — is
/// counted by the handler and cancels nobody). When `signal` fires (or
/// `max_conns` were served) the nursery is cancelled with a grace period:
/// open connections see their token cancelled and say goodbye; whatever is
/// left after `GRACE` is dropped. When this returns, no connection is left
/// running.
#[nursery(n, grace = GRACE, supervise = |_failure| {
    stats.errors.fetch_add(1, Ordering::Relaxed);
})]
pub async fn serve(
    listener: TcpListener,
    config: Config,
    stats: Arc<Stats>,
    signal: impl Future<Output = ()> + Send,
) -> Result<(), Errors<io::Error>> {
    let token = n.cancel_token();
    let stop = stop_when(config, &stats, signal);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut stop => break,
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        spawn!(
            connection(stream, config.idle, stats.clone(), Some(token.clone())),
            parallel,
            name = format!("conn {peer}")
        );
    }
    n.cancel(); // every open connection gets its goodbye, within GRACE
    Ok(())
}

/// One connection: echo lines until the client closes, the connection is
/// idle for `idle`, or the server shuts down (`token`). Its error is its
/// failure (the nursery server's handler counts it).
pub async fn connection(
    stream: TcpStream,
    idle: Duration,
    stats: Arc<Stats>,
    token: Option<CancelToken>,
) -> io::Result<()> {
    let echoed = echo(stream, idle, &stats, token).await;
    stats.served.fetch_add(1, Ordering::Relaxed);
    stats.changed.notify_one();
    echoed
}

/// [`connection`] for the servers with no supervisor: its error counted.
async fn counted(stream: TcpStream, idle: Duration, stats: Arc<Stats>) {
    if connection(stream, idle, stats.clone(), None).await.is_err() {
        stats.errors.fetch_add(1, Ordering::Relaxed);
    }
}

async fn echo(
    stream: TcpStream,
    idle: Duration,
    stats: &Stats,
    token: Option<CancelToken>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let shutdown = async {
        match &token {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(shutdown);
    loop {
        let line = tokio::select! {
            biased;
            () = &mut shutdown => {
                write.write_all(b"goodbye\n").await?;
                stats.goodbyes.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            line = nursery::fail_after(idle, lines.next_line()) => line,
        };
        match line {
            Err(nursery::TimedOut) => {
                write.write_all(b"idle, bye\n").await?;
                stats.idle.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Ok(Ok(Some(mut line))) => {
                line.push('\n');
                write.write_all(line.as_bytes()).await?;
                stats.lines.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Ok(None)) => return Ok(()), // the client closed
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// The same server with plain `tokio::spawn`: connections are detached (a
/// shutdown leaves them running, nobody waits for them).
pub async fn serve_tokio_spawn(
    listener: TcpListener,
    config: Config,
    stats: Arc<Stats>,
) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(counted(stream, config.idle, stats.clone()));
    }
}

/// The same server with a `JoinSet`: connections are aborted when the
/// server's future is dropped; finished ones are reaped as it goes.
pub async fn serve_join_set(
    listener: TcpListener,
    config: Config,
    stats: Arc<Stats>,
) -> io::Result<()> {
    let mut set = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                stats.accepted.fetch_add(1, Ordering::Relaxed);
                set.spawn(counted(stream, config.idle, stats.clone()));
            }
            Some(done) = set.join_next(), if !set.is_empty() => {
                if let Err(e) = done {
                    if e.is_panic() {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            }
        }
    }
}

/// What a load run measured.
#[derive(Debug, Default, Clone)]
pub struct Load {
    pub conns: u64,
    pub lines: u64,
    pub goodbyes: u64,
    /// Connections refused or cut off: the server had stopped.
    pub refused: u64,
    pub elapsed: Duration,
    /// Round-trip time of every line, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl Load {
    pub fn percentile(&self, p: f64) -> Duration {
        common::percentile(&self.latencies_us, p)
    }

    pub fn report(&self) -> String {
        format!(
            "{} connections, {} lines in {:.3} s: {:.0} connections/s, {:.0} lines/s; round trip p50 {} µs, p99 {} µs{}",
            self.conns,
            self.lines,
            self.elapsed.as_secs_f64(),
            self.conns as f64 / self.elapsed.as_secs_f64(),
            self.lines as f64 / self.elapsed.as_secs_f64(),
            self.percentile(0.50).as_micros(),
            self.percentile(0.99).as_micros(),
            if self.goodbyes + self.refused > 0 {
                format!(
                    "; the server stopped: {} connections were told goodbye, {} refused",
                    self.goodbyes, self.refused
                )
            } else {
                String::new()
            },
        )
    }
}

/// Opens `conns` connections to `addr`, `concurrency` at a time; each sends
/// `lines` lines and checks every echo, then closes. A `goodbye` from a
/// server shutting down ends that connection early (counted).
pub async fn load(addr: SocketAddr, conns: u64, concurrency: u64, lines: u64) -> io::Result<Load> {
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(conns) {
        let next = next.clone();
        workers.spawn(async move {
            let mut mine = Load::default();
            while next.fetch_add(1, Ordering::Relaxed) < conns {
                let done = match TcpStream::connect(addr).await {
                    Ok(stream) => one_client(stream, lines, &mut mine).await,
                    Err(e) => Err(e),
                };
                match done {
                    Ok(()) => {}
                    Err(e) if server_stopped(&e) => {
                        mine.refused += 1; // the server stopped: so does this worker
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            io::Result::Ok(mine)
        });
    }
    let mut total = Load::default();
    while let Some(done) = workers.join_next().await {
        let mine = done.map_err(io::Error::other)??;
        total.conns += mine.conns;
        total.lines += mine.lines;
        total.goodbyes += mine.goodbyes;
        total.refused += mine.refused;
        total.latencies_us.extend(mine.latencies_us);
    }
    total.elapsed = start.elapsed();
    total.latencies_us.sort_unstable();
    Ok(total)
}

/// Errors that mean the server went away (it stopped accepting, or
/// connections still in its backlog were reset when it closed).
fn server_stopped(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionReset | BrokenPipe | UnexpectedEof
    )
}

async fn one_client(stream: TcpStream, lines: u64, out: &mut Load) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut replies = BufReader::new(read).lines();
    out.conns += 1;
    for i in 0..lines {
        let line = format!("hello {i}\n");
        let sent = Instant::now();
        write.write_all(line.as_bytes()).await?;
        match replies.next_line().await? {
            Some(reply) if reply == line.trim_end() => {
                out.lines += 1;
                out.latencies_us
                    .push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            Some(reply) if reply == "goodbye" => {
                out.goodbyes += 1;
                return Ok(());
            }
            None => return Err(io::ErrorKind::UnexpectedEof.into()),
            Some(other) => {
                return Err(io::Error::other(format!(
                    "expected the echo of {line:?}, got {other:?}"
                )));
            }
        }
    }
    Ok(())
}
