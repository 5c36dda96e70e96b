use nursery::{nursery, spawn, Errors};

#[nursery]
async fn fetch(fail: bool) -> Result<(), Errors<std::io::Error>> {
    spawn!(async { Ok(()) });
    if fail {
        return Err(std::io::Error::other("refused"));
    }
    Ok(())
}

fn main() {}
