use nursery::{nursery, spawn, Task};

#[nursery]
async fn start_work() -> Task<'static, u32> {
    spawn!(async { 1u32 })
}

fn main() {}
