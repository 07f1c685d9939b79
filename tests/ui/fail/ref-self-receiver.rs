use traced_spawn::traced_spawn;

struct Worker {
    id: u32,
}

impl Worker {
    #[traced_spawn]
    fn run(&self) -> u32 {
        self.id
    }
}

fn main() {
    // The rewritten signature is still emitted: the call site type-checks.
    let _: std::thread::JoinHandle<u32> = Worker { id: 1 }.run();
}
