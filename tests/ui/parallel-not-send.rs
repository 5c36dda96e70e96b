use nursery::{nursery, spawn};

#[nursery]
async fn run() -> Result<(), nursery::Errors<nursery::SpawnError>> {
    let shared = std::rc::Rc::new(1);
    spawn!(async move { drop(shared) }, parallel);
    Ok(())
}

fn main() {}
