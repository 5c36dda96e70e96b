use nursery::{nursery, start, TaskStatus};

#[nursery]
async fn f() -> u8 {
    start!(|status: TaskStatus<u8>| async move {
        status.started(1);
        status.started(2);
    })
}

fn main() {}
