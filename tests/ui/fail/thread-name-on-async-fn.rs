use traced_spawn::traced_spawn;

#[traced_spawn(thread_name = "worker")]
async fn work() {}

fn main() {}
