use nursery::nursery;

#[nursery(timeout)]
async fn f() -> Result<(), nursery::Errors<nursery::TimedOut>> {
    Ok(())
}

fn main() {}
