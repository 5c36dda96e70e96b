use nursery::{nursery, spawn};

#[derive(Debug)]
struct MyError;

#[nursery]
async fn f() -> Result<(), MyError> {
    spawn!(async { Err::<(), _>(MyError) });
    Ok(())
}

fn main() {}
