use nursery::{nursery, spawn};

#[nursery]
async fn f() {
    let early = String::from("declared before the nursery opens: children may borrow it");
    spawn!(async { println!("{}", early) });
    let late = String::from("declared after the nursery opened");
    spawn!(async { println!("{}", late) });
}

fn main() {}
