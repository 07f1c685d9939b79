use traced_spawn::traced_spawn;

#[traced_spawn(blocking, local)]
fn work() {}

fn main() {}
