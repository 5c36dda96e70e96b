use nursery::{nursery, spawn};

#[nursery]
async fn f() -> Result<(), std::io::Error> {
    spawn!(async { Ok(()) });
    Ok(())
}

fn main() {}
