//! What the `tracing` feature reports, printed by `tracing-subscriber`:
//! every nursery and child in its span (names from `name = "…"`, or the
//! spawned expression), failures, panics, and each cancellation with why.
//!
//! ```text
//! cargo run --example tracing --features tokio,tracing
//! ```

use std::time::Duration;

use nursery::{Errors, nursery, spawn};

#[derive(Debug)]
struct Failed(&'static str);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

async fn send_sms() -> Result<(), Failed> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    Err(Failed("the SMS gateway is down"))
}

/// A nested nursery: its children are cancelled with it.
#[nursery]
async fn fetch_prices() -> Result<u32, Errors<Failed>> {
    spawn!(
        tokio::time::sleep(Duration::from_secs(60)),
        name = "slow-quote"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(3)
}

#[nursery(n)]
async fn checkout() -> Result<(), Errors<Failed>> {
    spawn!(
        async {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        },
        name = "heartbeat",
        background
    );
    spawn!(
        tokio::time::sleep(Duration::from_millis(50)),
        name = "payment",
        shield
    );
    spawn!(send_sms());
    spawn!(async { fetch_prices().await.map(drop).map_err(|e| e.into_first()) });
    spawn!(
        async {
            tokio::time::sleep(Duration::from_secs(60)).await;
        },
        parallel,
        name = "audit-log"
    );
    let _ = n;
    Ok(())
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_target(false)
        .without_time()
        .init();
    let outcome = checkout().await;
    println!(
        "\ncheckout: {}",
        outcome.map_or_else(|e| e.to_string(), |()| "ok".into())
    );
}
