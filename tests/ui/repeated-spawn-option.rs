use nursery::{nursery, spawn};

#[nursery]
async fn f() {
    spawn!(async {}, name = "a", name = "b");
}

fn main() {}
