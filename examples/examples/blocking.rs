//! A sync fn on tokio's blocking pool: `#[traced_spawn(blocking)]`.
//!
//! ```text
//! cargo run -p traced-spawn-examples --example blocking
//! ```
//!
//! CPU-bound or blocking work (image resizing, a synchronous database driver, a sync LLM client)
//! must not run on tokio's async workers. `blocking` runs the body with
//! `tokio::task::spawn_blocking`, as a continuation of the caller's trace.

use std::process::ExitCode;
use std::time::Duration;

use traced_spawn::traced_spawn;

/// Calling it (inside a tokio runtime) runs the body on the blocking pool and returns a
/// `tokio::task::JoinHandle<Result<Vec<u8>, String>>` at once. Default op: `task.blocking`.
#[traced_spawn(blocking, name = "images::thumbnail")]
fn make_thumbnail(image: Vec<u8>, width: u32) -> Result<Vec<u8>, String> {
    if image.is_empty() {
        return Err("empty image".into()); // finishes the continuation as `internal_error`
    }
    std::thread::sleep(Duration::from_millis(25)); // the blocking work
    Ok(image.into_iter().step_by(8).take(width as usize).collect())
}

#[tokio::main]
async fn main() -> ExitCode {
    // Prints each trace as a tree; with SENTRY_DSN set, also sends it there.
    let reporter = traced_spawn::console::init();

    let (small, broken) = traced_spawn_examples::in_request("POST /images", || {
        (
            make_thumbnail(vec![7; 4096], 64),
            make_thumbnail(Vec::new(), 64),
        )
    });

    let small = small.await.expect("thumbnail task panicked");
    let broken = broken.await.expect("thumbnail task panicked");
    println!(
        "thumbnail: {:?} bytes; empty upload: {broken:?}\n",
        small.map(|t| t.len())
    );

    let traces = reporter.print_trees();
    traced_spawn_examples::check_linked(&traces, 1, 2)
}
