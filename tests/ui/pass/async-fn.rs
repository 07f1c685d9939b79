use std::time::Duration;

use traced_spawn::traced_spawn;

#[traced_spawn]
async fn double(id: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    id * 2
}

#[traced_spawn]
async fn notify(done: tokio::sync::oneshot::Sender<&'static str>) {
    let _ = done.send("ran");
}

#[traced_spawn]
async fn fallible(input: String) -> Result<u32, std::num::ParseIntError> {
    input.parse()
}

#[tokio::main]
async fn main() {
    let handle: tokio::task::JoinHandle<u64> = double(21);
    assert_eq!(handle.await.unwrap(), 42);

    // The task is spawned when the fn is called, not when the handle is awaited.
    let (done, ran) = tokio::sync::oneshot::channel();
    let handle = notify(done);
    assert_eq!(ran.await.unwrap(), "ran");
    handle.await.unwrap();

    assert_eq!(fallible("7".to_owned()).await.unwrap().unwrap(), 7);
    assert!(fallible("x".to_owned()).await.unwrap().is_err());
}
