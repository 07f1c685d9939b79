// The handle a spawner fn returns is the spawner's: its type must be known from the signature.
use std::sync::Arc;

use traced_spawn::traced_spawn;

struct Service {
    pool: Arc<rayon::ThreadPool>,
}

impl Service {
    #[traced_spawn(spawner = self.pool.clone())]
    fn render(self: Arc<Self>) -> u32 {
        1
    }
}

fn main() {}
