use traced_spawn::traced_spawn;

#[traced_spawn(name = "first", op = "x", name = "second")]
fn work() {}

fn main() {}
