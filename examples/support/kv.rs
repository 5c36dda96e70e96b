//! A small Redis-like key-value server over TCP, its `tokio::spawn` +
//! `JoinSet` twin, and a load generator; shared by the `kv_server` and
//! `kv_load` examples, the `kv` integration test and the `kv` benchmark.
//!
//! The protocol is one command per line, one reply per line:
//!
//! | command | reply |
//! | --- | --- |
//! | `PING` | `PONG` |
//! | `SET key value` / `SET key value PX ms` | `OK` (the key expires after `ms`) |
//! | `GET key` | the value, or `(nil)` |
//! | `DEL key` | `1` if it was there, else `0` |
//! | `QUIT` | `BYE`, then the server closes the connection |
//! | `DEBUG PANIC` | none: the connection panics (Redis has `DEBUG SEGFAULT`) |
//! | anything else | `ERR …`, then the connection fails with that error |
//!
//! On shutdown every open connection gets `ERR server shutting down`
//! during the grace period, then the server returns; nothing is left
//! running.
#![allow(dead_code)] // each user takes what it needs

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nursery::{Errors, Failure, Kind, Nursery, nursery, spawn};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

#[path = "common.rs"]
mod common;
#[allow(unused_imports)] // the examples use it, the tests and benchmarks do not
pub use common::arg;

/// The keys, their values and when they expire; an object that owns its
/// background expiry task (the seed pattern: it is handed the nursery).
#[derive(Default)]
pub struct Store {
    state: Mutex<State>,
    /// Wakes the expiry task when a sooner expiry is set.
    sooner: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    values: HashMap<String, (String, Option<Instant>)>,
    expiries: BTreeSet<(Instant, String)>,
}

impl Store {
    /// A store whose expired keys are removed by a `background` child of
    /// `n`: it lives exactly as long as the nursery's other work. A `Send`
    /// child, so it goes into a nursery of any kind with no extra bounds.
    pub fn open<E: Send, K: Kind>(n: &Nursery<'_, E, K>) -> Arc<Store> {
        let store = Arc::new(Store::default());
        let expiry = store.clone();
        n.builder()
            .name("expiry")
            .background()
            .spawn_send(async move { expiry.expire_forever().await });
        store
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        match state.values.get(key) {
            Some((_, Some(at))) if *at <= Instant::now() => None, // due, not yet removed
            Some((value, _)) => Some(value.clone()),
            None => None,
        }
    }

    pub fn set(&self, key: &str, value: &str, ttl: Option<Duration>) {
        let at = ttl.map(|ttl| Instant::now() + ttl);
        let mut state = self.state.lock().unwrap();
        let sooner =
            at.is_some_and(|at| state.expiries.first().is_none_or(|(first, _)| at < *first));
        if let Some((_, Some(old))) = state.values.insert(key.to_owned(), (value.to_owned(), at)) {
            state.expiries.remove(&(old, key.to_owned()));
        }
        if let Some(at) = at {
            state.expiries.insert((at, key.to_owned()));
        }
        drop(state);
        if sooner {
            self.sooner.notify_one();
        }
    }

    pub fn del(&self, key: &str) -> bool {
        let mut state = self.state.lock().unwrap();
        match state.values.remove(key) {
            Some((_, Some(at))) => {
                state.expiries.remove(&(at, key.to_owned()));
                true
            }
            Some(_) => true,
            None => false,
        }
    }

    /// How many keys are stored (expired ones not yet removed included).
    pub fn len(&self) -> usize {
        self.state.lock().unwrap().values.len()
    }

    /// Removes keys as they expire, until cancelled.
    async fn expire_forever(&self) {
        loop {
            let next = {
                let mut state = self.state.lock().unwrap();
                let now = Instant::now();
                while let Some((at, key)) = state.expiries.first().cloned() {
                    if at > now {
                        break;
                    }
                    state.expiries.pop_first();
                    state.values.remove(&key);
                }
                state.expiries.first().map(|(at, _)| *at)
            };
            let sooner = self.sooner.notified();
            match next {
                Some(at) => tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = sooner => {}
                },
                None => sooner.await,
            }
        }
    }
}

/// What the server saw; printed as its summary.
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: AtomicU64,
    /// Connections that ended, however they ended.
    pub served: AtomicU64,
    pub commands: AtomicU64,
    /// Connections that failed (an error or a panic), each logged.
    pub failed: AtomicU64,
    pub goodbyes: AtomicU64,
    /// Wakes whoever waits for `served` to change (`--max-conns`).
    pub changed: tokio::sync::Notify,
    /// Print each failure (the examples); the tests and benchmarks count.
    pub log: bool,
    /// The last few failures, as printed (the integration test reads them).
    pub recent: Mutex<Vec<String>>,
}

impl Stats {
    /// The supervisor's handler: one failed connection, logged with its
    /// name; it is not kept (a server runs forever in constant memory).
    pub fn connection_failed(&self, failure: Failure<io::Error>) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if self.log {
            eprintln!("{failure}");
        }
        let mut recent = self.recent.lock().unwrap();
        if recent.len() == 16 {
            recent.remove(0);
        }
        recent.push(failure.to_string());
    }

    pub fn summary(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{} connections served ({} accepted): {} commands, {} failed, {} told the server was shutting down",
            get(&self.served),
            get(&self.accepted),
            get(&self.commands),
            get(&self.failed),
            get(&self.goodbyes),
        )
    }
}

/// How long open connections get to finish once the server stops.
pub const GRACE: Duration = Duration::from_secs(1);

/// Resolves once `signal` fires or `max_conns` connections were served.
pub async fn stop_when(max_conns: Option<u64>, stats: &Stats, signal: impl Future<Output = ()>) {
    let enough = async {
        let Some(max) = max_conns else {
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

/// The server: the accept loop is the body; every connection a supervised
/// `parallel` child (a failing or panicking one is logged with its name by
/// the handler, and the server goes on); the store's expiry task a
/// background child. The stop signal cancels the nursery with a grace
/// period: open connections are told, the rest is dropped after `GRACE`.
#[nursery(
    n,
    supervise = |failure| stats.connection_failed(failure),
    grace = GRACE,
    cancel_on = stop_when(max_conns, &stats, signal),
)]
pub async fn serve(
    listener: TcpListener,
    max_conns: Option<u64>,
    stats: Arc<Stats>,
    signal: impl Future<Output = ()> + Send,
) -> Result<(), Errors<io::Error>> {
    let store = Store::open(n);
    let shutdown = n.cancel_token();
    loop {
        let (stream, peer) = listener.accept().await?;
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let (store, stats, shutdown) = (store.clone(), stats.clone(), shutdown.clone());
        spawn!(
            async move { connection(stream, &store, &stats, shutdown.cancelled()).await },
            parallel,
            name = format!("conn {peer}")
        );
    }
}

/// The same server on `tokio::spawn` + `JoinSet`, as a careful tokio user
/// writes it: a shutdown channel every connection watches, failures and
/// panics reaped from the set and logged, a grace period, then `abort_all`.
pub async fn serve_join_set(
    listener: TcpListener,
    max_conns: Option<u64>,
    stats: Arc<Stats>,
    signal: impl Future<Output = ()>,
) -> io::Result<()> {
    let store = Arc::new(Store::default());
    let expiry = tokio::spawn({
        let store = store.clone();
        async move { store.expire_forever().await }
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut set = tokio::task::JoinSet::new();
    let stop = stop_when(max_conns, &stats, signal);
    tokio::pin!(stop);
    let reap = |done: Result<io::Result<()>, tokio::task::JoinError>, stats: &Stats| {
        let failure = match done {
            Ok(Ok(())) => return,
            Ok(Err(e)) => format!("a connection failed: {e}"),
            Err(e) => format!("a connection panicked: {e}"),
        };
        stats.failed.fetch_add(1, Ordering::Relaxed);
        if stats.log {
            eprintln!("{failure}");
        }
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                stats.accepted.fetch_add(1, Ordering::Relaxed);
                let (store, stats, mut stop_rx) = (store.clone(), stats.clone(), stop_rx.clone());
                set.spawn(async move {
                    let shutdown = async move {
                        let _ = stop_rx.wait_for(|stop| *stop).await;
                    };
                    connection(stream, &store, &stats, shutdown).await
                });
            }
            Some(done) = set.join_next(), if !set.is_empty() => reap(done, &stats),
            () = &mut stop => break,
        }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(GRACE, async {
        while let Some(done) = set.join_next().await {
            reap(done, &stats);
        }
    })
    .await;
    set.abort_all();
    while set.join_next().await.is_some() {}
    expiry.abort();
    let _ = expiry.await;
    Ok(())
}

/// One connection: commands until the client quits or closes, the server
/// shuts down (`shutdown` completes), or a command is invalid (its error
/// is the connection's failure).
pub async fn connection(
    stream: TcpStream,
    store: &Store,
    stats: &Stats,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    struct Served<'a>(&'a Stats);
    impl Drop for Served<'_> {
        fn drop(&mut self) {
            self.0.served.fetch_add(1, Ordering::Relaxed);
            self.0.changed.notify_waiters();
        }
    }
    let _served = Served(stats);
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    tokio::pin!(shutdown);
    loop {
        let line = tokio::select! {
            biased;
            () = &mut shutdown => {
                write.write_all(b"ERR server shutting down\n").await?;
                stats.goodbyes.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            line = lines.next_line() => line?,
        };
        let Some(line) = line else {
            return Ok(()); // the client closed
        };
        stats.commands.fetch_add(1, Ordering::Relaxed);
        let reply = match execute(store, &line) {
            Ok(Some(reply)) => reply,
            Ok(None) => {
                write.write_all(b"BYE\n").await?;
                return Ok(());
            }
            Err(why) => {
                write.write_all(format!("ERR {why}\n").as_bytes()).await?;
                return Err(io::Error::new(io::ErrorKind::InvalidData, why));
            }
        };
        write.write_all(reply.as_bytes()).await?;
        write.write_all(b"\n").await?;
    }
}

/// One command's reply (`None`: `QUIT`), or why it is not one.
fn execute(store: &Store, line: &str) -> Result<Option<String>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let reply = match words.as_slice() {
        ["PING"] => "PONG".to_owned(),
        ["GET", key] => store.get(key).unwrap_or_else(|| "(nil)".to_owned()),
        ["SET", key, value] => {
            store.set(key, value, None);
            "OK".to_owned()
        }
        ["SET", key, value, "PX", ms] => {
            let ms: u64 = ms.parse().map_err(|_| format!("bad expiry {ms:?}"))?;
            store.set(key, value, Some(Duration::from_millis(ms)));
            "OK".to_owned()
        }
        ["DEL", key] => u8::from(store.del(key)).to_string(),
        ["QUIT"] => return Ok(None),
        ["DEBUG", "PANIC"] => panic!("DEBUG PANIC: the client asked this connection to panic"),
        _ => return Err(format!("unknown command {line:?}")),
    };
    Ok(Some(reply))
}

/// What a load run measured.
#[derive(Debug, Default, Clone)]
pub struct Load {
    pub conns: u64,
    pub commands: u64,
    pub elapsed: Duration,
    /// Round-trip time of every command, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl Load {
    pub fn percentile(&self, p: f64) -> Duration {
        common::percentile(&self.latencies_us, p)
    }

    pub fn report(&self) -> String {
        format!(
            "{} connections, {} commands in {:.3} s: {:.0} commands/s; round trip p50 {} µs, p99 {} µs",
            self.conns,
            self.commands,
            self.elapsed.as_secs_f64(),
            self.commands as f64 / self.elapsed.as_secs_f64(),
            self.percentile(0.50).as_micros(),
            self.percentile(0.99).as_micros(),
        )
    }
}

/// `conns` clients, `concurrency` at a time; each sets and reads back
/// `pairs` keys of its own (checking every reply), then quits.
pub async fn load(addr: SocketAddr, conns: u64, concurrency: u64, pairs: u64) -> io::Result<Load> {
    let start = std::time::Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(conns) {
        let next = next.clone();
        workers.spawn(async move {
            let mut mine = Load::default();
            loop {
                let id = next.fetch_add(1, Ordering::Relaxed);
                if id >= conns {
                    break;
                }
                let mut client = Client::connect(addr).await?;
                for i in 0..pairs {
                    let (key, value) = (format!("k{id}.{i}"), format!("v{i}"));
                    let sent = std::time::Instant::now();
                    client.expect(&format!("SET {key} {value}"), "OK").await?;
                    client.expect(&format!("GET {key}"), &value).await?;
                    let rtt = sent.elapsed().as_micros() / 2;
                    mine.latencies_us
                        .extend([u32::try_from(rtt).unwrap_or(u32::MAX); 2]);
                    mine.commands += 2;
                }
                client.expect("QUIT", "BYE").await?;
                mine.conns += 1;
            }
            io::Result::Ok(mine)
        });
    }
    let mut total = Load::default();
    while let Some(done) = workers.join_next().await {
        let mine = done.map_err(io::Error::other)??;
        total.conns += mine.conns;
        total.commands += mine.commands;
        total.latencies_us.extend(mine.latencies_us);
    }
    total.elapsed = start.elapsed();
    total.latencies_us.sort_unstable();
    Ok(total)
}

/// A client connection: one command, one reply.
pub struct Client {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        Ok(Client {
            lines: BufReader::new(read).lines(),
            write,
        })
    }

    /// Sends `command`; its reply (`None`: the server closed).
    pub async fn send(&mut self, command: &str) -> io::Result<Option<String>> {
        self.write
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.reply().await
    }

    /// The next line from the server (`None`: it closed the connection).
    pub async fn reply(&mut self) -> io::Result<Option<String>> {
        match self.lines.next_line().await {
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(None),
            other => other,
        }
    }

    /// Sends `command` and checks its reply.
    pub async fn expect(&mut self, command: &str, reply: &str) -> io::Result<()> {
        match self.send(command).await? {
            Some(got) if got == reply => Ok(()),
            got => Err(io::Error::other(format!(
                "{command}: expected {reply:?}, got {got:?}"
            ))),
        }
    }
}
