use nursery::{nursery, Nursery};
use std::convert::Infallible;

#[nursery(n)]
async fn leak(out: &mut Option<&'static Nursery<'static, Infallible>>) {
    *out = Some(n);
}

fn main() {}
