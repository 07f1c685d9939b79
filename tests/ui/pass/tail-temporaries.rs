// A tail expression that borrows a parameter through a temporary (a lock guard, a `RefCell`
// borrow) compiles as it does without the attribute: its temporaries are dropped before the
// parameters, on every executor. Warnings are denied: the expansion adds none.
#![deny(warnings)]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use traced_spawn::traced_spawn;

#[traced_spawn]
fn count(db: Arc<Mutex<Vec<u32>>>) -> usize {
    db.lock().unwrap().len()
}

#[traced_spawn]
fn first(db: Arc<Mutex<Vec<u32>>>) -> Option<u32> {
    let wanted = 0;
    db.lock().unwrap().get(wanted).copied()
}

#[traced_spawn]
async fn count_async(db: Arc<Mutex<Vec<u32>>>) -> usize {
    tokio::task::yield_now().await;
    db.lock().unwrap().len()
}

#[traced_spawn(blocking)]
fn count_blocking(db: Arc<Mutex<Vec<u32>>>) -> usize {
    db.lock().unwrap().len()
}

#[traced_spawn(local)]
async fn read_local(cell: Rc<RefCell<u32>>) -> u32 {
    *cell.borrow()
}

#[traced_spawn(rayon)]
fn count_rayon(db: Arc<Mutex<Vec<u32>>>) -> usize {
    db.lock().unwrap().len()
}

#[traced_spawn(future)]
async fn count_future(db: Arc<Mutex<Vec<u32>>>) -> usize {
    db.lock().unwrap().len()
}

#[traced_spawn]
fn sum((db, extra): (Arc<Mutex<Vec<u32>>>, u32)) -> u32 {
    db.lock().unwrap().iter().sum::<u32>() + extra
}

#[traced_spawn]
fn opaque(db: Arc<Mutex<Vec<u32>>>) -> impl std::fmt::Debug + Send + 'static {
    db.lock().unwrap().len()
}

#[traced_spawn]
fn early(db: Arc<Mutex<Vec<u32>>>) -> usize {
    if db.lock().unwrap().is_empty() {
        return 0;
    }
    db.lock().unwrap().len()
}

struct Store {
    db: Mutex<Vec<u32>>,
}

impl Store {
    #[traced_spawn]
    fn count(self: Arc<Self>) -> usize {
        self.db.lock().unwrap().len()
    }
}

/// Never returns: the code after the body is not reported as unreachable.
#[traced_spawn]
#[allow(clippy::empty_loop)]
fn forever(db: Arc<Mutex<Vec<u32>>>) {
    let _db = db;
    loop {
        std::thread::park();
    }
}

fn main() {
    let db = Arc::new(Mutex::new(vec![1, 2, 3]));
    assert_eq!(count(db.clone()).join().unwrap(), 3);
    assert_eq!(first(db.clone()).join().unwrap(), Some(1));
    assert_eq!(sum((db.clone(), 4)).join().unwrap(), 10);
    assert_eq!(format!("{:?}", opaque(db.clone()).join().unwrap()), "3");
    assert_eq!(early(db.clone()).join().unwrap(), 3);
    assert_eq!(count_rayon(db.clone()).join().unwrap(), 3);
    let store = Arc::new(Store {
        db: Mutex::new(vec![7]),
    });
    assert_eq!(store.count().join().unwrap(), 1);
    drop(forever(db.clone()));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert_eq!(count_async(db.clone()).await.unwrap(), 3);
        assert_eq!(count_blocking(db.clone()).await.unwrap(), 3);
        assert_eq!(count_future(db.clone()).await, 3);
        let local = tokio::task::LocalSet::new();
        let cell = Rc::new(RefCell::new(5));
        local
            .run_until(async move { assert_eq!(read_local(cell).await.unwrap(), 5) })
            .await;
    });
}
