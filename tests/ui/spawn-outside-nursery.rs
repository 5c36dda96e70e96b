use nursery::spawn;

async fn no_nursery() {
    spawn!(async {});
}

fn main() {}
