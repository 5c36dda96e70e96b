use nursery::{nursery, spawn};

#[nursery]
async fn run() {
    spawn!(async {}, parallel, parallel);
}

fn main() {}
