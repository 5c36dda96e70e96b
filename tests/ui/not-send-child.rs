use nursery::{nursery, spawn};
use std::rc::Rc;

#[nursery]
async fn f() {
    let rc = Rc::new(1);
    spawn!(async move { drop(rc) });
}

fn main() {}
