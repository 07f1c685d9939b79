// `#[tokio::main]` above: the fn `main` it leaves is the entry point.
use traced_spawn::traced_spawn;

#[tokio::main]
#[traced_spawn]
async fn main() {}
