use nursery::{nursery, spawn};

#[nursery]
async fn run() {
    spawn!(
        async {},
        timeout = std::time::Duration::from_secs(1),
        fail_after = std::time::Duration::from_secs(2)
    );
}

fn main() {}
