use traced_spawn::traced_spawn;

struct Worker {
    id: u32,
}

impl Worker {
    #[traced_spawn]
    async fn bump(&mut self) -> u32 {
        self.id += 1;
        self.id
    }
}

fn main() {}
