// The entry point runs the program; a traced fn only spawns it.
use traced_spawn::traced_spawn;

#[traced_spawn]
#[tokio::main]
async fn main() {}
