use nursery::nursery;

#[nursery]
fn not_async() {}

fn main() {}
