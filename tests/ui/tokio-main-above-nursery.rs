use nursery::{nursery, spawn};

#[tokio::main]
#[nursery]
async fn main() {
    spawn!(async {});
}
