use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use traced_spawn::traced_spawn;

#[derive(Default)]
struct Service {
    handled: AtomicU32,
}

impl Service {
    #[traced_spawn]
    fn handle(self: Arc<Self>) -> u32 {
        self.handled.fetch_add(1, Ordering::SeqCst) + 1
    }

    #[traced_spawn]
    async fn handle_async(self: Arc<Self>, by: u32) -> u32 {
        self.handled.fetch_add(by, Ordering::SeqCst) + by
    }
}

#[tokio::main]
async fn main() {
    let service = Arc::new(Service::default());
    assert_eq!(Arc::clone(&service).handle().join().unwrap(), 1);
    assert_eq!(Arc::clone(&service).handle_async(2).await.unwrap(), 3);
    assert_eq!(service.handled.load(Ordering::SeqCst), 3);
}
