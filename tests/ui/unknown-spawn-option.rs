use nursery::{nursery, spawn};

#[nursery]
async fn f() {
    spawn!(async {}, detached);
}

fn main() {}
