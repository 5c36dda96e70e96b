use nursery::{nursery, spawn};

#[nursery]
async fn outer() {
    fn helper() {
        spawn!(async {});
    }
    helper();
}

fn main() {}
