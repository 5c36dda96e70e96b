use nursery::nursery;
use std::time::Duration;

#[nursery(timeout = Duration::from_secs(1))]
async fn f() {}

fn main() {}
