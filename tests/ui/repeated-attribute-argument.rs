use nursery::nursery;

#[nursery(local, local)]
async fn f() {}

fn main() {}
