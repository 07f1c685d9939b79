use traced_spawn::traced_spawn;

#[traced_spawn(name = 5)]
fn work() {}

fn main() {}
