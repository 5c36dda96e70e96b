use nursery::{nursery, spawn};

#[nursery]
async fn f() {
    spawn!(async { Err::<(), std::io::Error>(std::io::Error::other("x")) });
}

fn main() {}
