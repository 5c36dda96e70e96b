use nursery::{nursery, Errors};
use std::time::Duration;

#[derive(Debug)]
struct MyError;

#[nursery(timeout = Duration::from_secs(1))]
async fn f() -> Result<(), Errors<MyError>> {
    Ok(())
}

fn main() {}
