use traced_spawn::traced_spawn;

#[traced_spawn(blocking)]
async fn work() {}

fn main() {}
