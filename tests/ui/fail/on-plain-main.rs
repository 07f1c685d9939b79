use traced_spawn::traced_spawn;

#[traced_spawn]
fn main() {}
