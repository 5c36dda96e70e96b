use nursery::{nursery, spawn, Errors};

#[nursery(n)]
async fn run() -> Result<(), Errors<std::io::Error>> {
    spawn!(async move { n.cancel() }, parallel);
    Ok(())
}

fn main() {}
