fn main() {
    let _ = nursery::scope!(|n, m| async { Ok::<_, nursery::Errors<()>>(()) });
}
