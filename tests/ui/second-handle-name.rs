use nursery::nursery;

#[nursery(n, m)]
async fn f() {}

fn main() {}
