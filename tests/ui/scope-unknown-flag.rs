fn main() {
    let _ = nursery::scope!(detached, |n| async { Ok::<_, nursery::Errors<()>>(()) });
}
