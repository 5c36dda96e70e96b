use nursery::{nursery, spawn};

#[nursery]
async fn f() {
    spawn!();
}

fn main() {}
