use traced_spawn::traced_spawn;

trait Job {
    fn start(self) -> std::thread::JoinHandle<String>;
}

struct Worker;

impl Job for Worker {
    // The trait returns a thread's handle; an async fn returns a task's handle.
    #[traced_spawn]
    async fn start(self) -> String {
        "done".to_owned()
    }
}

fn main() {}
