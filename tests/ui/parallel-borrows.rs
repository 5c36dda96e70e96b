use nursery::{nursery, spawn};

#[nursery]
async fn run(name: &str) -> Result<(), nursery::Errors<nursery::SpawnError>> {
    spawn!(async move { println!("{name}") }, parallel);
    Ok(())
}

fn main() {}
