use traced_spawn::traced_spawn;

/// Not an executor: it implements neither `Spawn` nor `SpawnFuture`.
struct NotAnExecutor;

#[traced_spawn(spawner = NotAnExecutor)]
fn work(n: u32) -> u32 {
    n + 1
}

fn main() {
    let _ = work(1);
}
