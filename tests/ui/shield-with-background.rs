use nursery::{nursery, spawn};

#[nursery]
async fn f() {
    spawn!(async {}, shield, background);
}

fn main() {}
