use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use traced_spawn::traced_spawn;

struct Point {
    x: i32,
    y: i32,
}

#[traced_spawn]
fn tuple((a, b): (u32, u32)) -> u32 {
    a + b
}

#[traced_spawn]
fn mutable(mut values: Vec<u32>) -> usize {
    values.push(1);
    values.len()
}

#[traced_spawn]
fn destructure(Point { x, y }: Point) -> i32 {
    x + y
}

#[traced_spawn]
fn wildcard(_: String, kept: u32) -> u32 {
    kept
}

#[traced_spawn]
async fn async_tuple((a, mut b): (u32, u32)) -> u32 {
    b += a;
    b
}

/// Sets its flag when dropped.
struct Guard(Arc<AtomicBool>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

// An argument the body never names still lives until the body ends, as in a plain fn
// (think of a semaphore permit).
#[traced_spawn]
fn holds_guard(_guard: Guard, go: mpsc::Receiver<()>, dropped: Arc<AtomicBool>) -> bool {
    go.recv().unwrap();
    dropped.load(Ordering::SeqCst)
}

#[traced_spawn]
fn holds_ignored_part((_, go): (Guard, mpsc::Receiver<()>), dropped: Arc<AtomicBool>) -> bool {
    go.recv().unwrap();
    dropped.load(Ordering::SeqCst)
}

fn check_guard_lifetime(use_tuple: bool) {
    let dropped = Arc::new(AtomicBool::new(false));
    let (go, wait) = mpsc::channel();
    let guard = Guard(Arc::clone(&dropped));
    let handle = if use_tuple {
        holds_ignored_part((guard, wait), Arc::clone(&dropped))
    } else {
        holds_guard(guard, wait, Arc::clone(&dropped))
    };
    assert!(!dropped.load(Ordering::SeqCst), "dropped before the body ran");
    go.send(()).unwrap();
    assert!(!handle.join().unwrap(), "dropped while the body ran");
    assert!(dropped.load(Ordering::SeqCst), "never dropped");
}

#[tokio::main]
async fn main() {
    assert_eq!(tuple((1, 2)).join().unwrap(), 3);
    assert_eq!(mutable(vec![]).join().unwrap(), 1);
    assert_eq!(destructure(Point { x: 1, y: 2 }).join().unwrap(), 3);
    assert_eq!(wildcard(String::new(), 4).join().unwrap(), 4);
    assert_eq!(async_tuple((1, 2)).await.unwrap(), 3);
    check_guard_lifetime(false);
    check_guard_lifetime(true);
}
