use nursery::{nursery, spawn};

#[nursery]
async fn f() {
    spawn!(async {}, parallel);
}

fn main() {}
