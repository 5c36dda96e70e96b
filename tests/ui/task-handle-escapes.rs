use nursery::{nursery, spawn, Task};

#[nursery]
async fn leak(out: &mut Option<Task<'static, u32>>) {
    *out = Some(spawn!(async { 1u32 }));
}

fn main() {}
