//! The `skywire` command.
fn main() {}
