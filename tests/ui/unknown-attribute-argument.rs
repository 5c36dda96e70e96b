use nursery::nursery;

#[nursery(n, timeout = 5)]
async fn f() {}

fn main() {}
