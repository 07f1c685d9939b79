use traced_spawn::traced_spawn;

struct Worker {
    id: u32,
}

impl Worker {
    #[traced_spawn]
    fn run(self, extra: u32) -> u32 {
        self.id + extra
    }

    #[traced_spawn]
    fn run_mut(mut self) -> u32 {
        self.id += 1;
        self.id
    }

    #[traced_spawn]
    pub fn boxed(self: Box<Self>) -> u32 {
        self.id
    }

    #[traced_spawn]
    async fn run_async(self, extra: u32) -> u32 {
        self.id * extra
    }
}

trait Job {
    fn start(self) -> std::thread::JoinHandle<String>;
}

impl Job for Worker {
    #[traced_spawn]
    fn start(self) -> String {
        format!("job {}", self.id)
    }
}

#[tokio::main]
async fn main() {
    assert_eq!(Worker { id: 1 }.run(2).join().unwrap(), 3);
    assert_eq!(Worker { id: 1 }.run_mut().join().unwrap(), 2);
    assert_eq!(Box::new(Worker { id: 5 }).boxed().join().unwrap(), 5);
    assert_eq!(Worker { id: 3 }.run_async(3).await.unwrap(), 9);
    assert_eq!(Worker { id: 4 }.start().join().unwrap(), "job 4");
}
