//! Load for the `kv_server` example: clients that each SET and GET keys of
//! their own (every reply checked), `--concurrency` at a time, and a few
//! bad clients that send garbage or make their connection panic — which
//! must not disturb the others.
//!
//! ```text
//! cargo run --release --features tokio --example kv_load -- --conns 2000 --concurrency 64 --pairs 4 --bad 4
//! ```

#[path = "support/kv.rs"]
mod kv;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: std::net::SocketAddr =
        kv::arg(&args, "--addr").unwrap_or_else(|| "127.0.0.1:6380".parse().unwrap());
    let conns = kv::arg(&args, "--conns").unwrap_or(1000);
    let concurrency = kv::arg(&args, "--concurrency").unwrap_or(64);
    let pairs = kv::arg(&args, "--pairs").unwrap_or(4);
    let bad: u64 = kv::arg(&args, "--bad").unwrap_or(0);
    let misbehave = async {
        for i in 0..bad {
            let mut client = kv::Client::connect(addr).await?;
            let command = if i % 2 == 0 { "BOGUS" } else { "DEBUG PANIC" };
            let reply = client.send(command).await?;
            println!("bad client {i}: {command} -> {reply:?}");
        }
        anyhow::Ok(())
    };
    let (load, bad) = tokio::join!(kv::load(addr, conns, concurrency, pairs), misbehave);
    bad?;
    println!("{}", load?.report());
    Ok(())
}
