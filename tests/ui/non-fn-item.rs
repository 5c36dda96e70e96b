use nursery::nursery;

#[nursery]
struct Server;

fn main() {}
