use traced_spawn::traced_spawn;

#[traced_spawn(local)]
fn work() {}

fn main() {}
