use nursery::{nursery, spawn};

#[nursery(cancel_on = true)]
async fn serve() {
    spawn!(async {});
}

#[nursery(cancel_on)]
async fn serve_too() {
    spawn!(async {});
}

fn main() {}
