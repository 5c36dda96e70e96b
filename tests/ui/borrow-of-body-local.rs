use nursery::{nursery, spawn};

#[nursery]
async fn f() {
    let local = String::from("dies with the body");
    spawn!(async { println!("{}", local) });
}

fn main() {}
