use nursery::{nursery, spawn};

#[nursery]
#[nursery(n)]
async fn f() {
    spawn!(async {});
}

fn main() {}
