//! A shielded payment completes while a failing SMS sender fails the
//! nursery; both outcomes are printed (aionursery's classic example).
//!
//! Run with `cargo run --example payment`.

use std::time::Duration;

use nursery::{Errors, nursery, spawn};

#[derive(Debug)]
enum ShopError {
    SmsGateway(String),
}

impl std::fmt::Display for ShopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShopError::SmsGateway(why) => write!(f, "SMS gateway: {why}"),
        }
    }
}

async fn charge_card(amount: u32) -> Result<String, ShopError> {
    println!("payment: charging {amount} ...");
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!("payment: charged {amount}");
    Ok(format!("receipt #{amount}"))
}

async fn send_sms() -> Result<(), ShopError> {
    println!("sms: connecting to the gateway ...");
    tokio::time::sleep(Duration::from_millis(100)).await;
    Err(ShopError::SmsGateway("connection refused".into()))
}

async fn recommend() -> Result<(), ShopError> {
    println!("recommendations: computing ...");
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!("recommendations: done (never printed: cancelled)");
    Ok(())
}

#[nursery]
async fn checkout(receipt: &std::sync::Mutex<Option<String>>) -> Result<(), Errors<ShopError>> {
    spawn!(
        async move {
            let r = charge_card(42).await?;
            *receipt.lock().unwrap() = Some(r);
            Ok(())
        },
        shield,
        name = "payment"
    );
    spawn!(send_sms(), name = "sms");
    spawn!(recommend(), name = "recommendations");
    Ok(())
}

#[tokio::main]
async fn main() {
    let receipt = std::sync::Mutex::new(None);
    let outcome = checkout(&receipt).await;
    println!();
    println!("payment outcome: {:?}", receipt.lock().unwrap());
    match outcome {
        Ok(()) => println!("checkout outcome: ok"),
        Err(errors) => println!("checkout outcome: failed: {errors}"),
    }
}
