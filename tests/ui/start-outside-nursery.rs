use nursery::start;

async fn no_nursery() -> u8 {
    start!(|status| async move { status.started(1u8) })
}

fn main() {}
