use nursery::{nursery, spawn, Errors};

#[nursery(supervise = "log it")]
async fn serve() -> Result<(), Errors<std::io::Error>> {
    spawn!(async { Ok(()) });
    Ok(())
}

fn main() {}
