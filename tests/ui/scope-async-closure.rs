fn main() {
    let _ = nursery::scope!(async |n| Ok::<_, nursery::Errors<()>>(()));
}
