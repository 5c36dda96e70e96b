use nursery::{nursery, spawn};

#[nursery]
async fn fetch() -> Result<(), Box<dyn std::error::Error>> {
    spawn!(async { Ok(()) });
    Ok(())
}

fn main() {}
