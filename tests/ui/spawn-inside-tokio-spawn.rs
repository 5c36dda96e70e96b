use nursery::{nursery, spawn};

#[nursery]
async fn run() {
    tokio::spawn(async {
        spawn!(async {});
    });
}

fn main() {}
