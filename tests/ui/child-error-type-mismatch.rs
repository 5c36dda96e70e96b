use nursery::{nursery, spawn, Errors};

#[nursery]
async fn f() -> Result<(), Errors<std::io::Error>> {
    spawn!(async { Err::<(), String>("x".to_string()) });
    Ok(())
}

fn main() {}
