//! Sync fns on rayon's global thread pool: `#[traced_spawn(rayon)]` (feature `rayon`).
//!
//! ```text
//! cargo run -p traced-spawn-examples --example rayon_pool
//! ```
//!
//! A pool thread runs jobs from many callers, one after the other; it has no hub or span of its
//! own that could link them. Each job carries its caller's context and runs as its own
//! continuation, so four documents indexed on the pool are four continuations of the request,
//! whichever pool thread ran them.

use std::process::ExitCode;
use std::time::Duration;

use traced_spawn::traced_spawn;

/// Calling it queues the body on rayon's global pool (`rayon::spawn`) and returns a
/// `traced_spawn::RayonHandle<usize>`: `.join()` it from sync code, or `.await` it. Default op:
/// `task.rayon`.
#[traced_spawn(rayon, name = "search::index_document")]
fn index_document(id: u32, text: String) -> usize {
    std::thread::sleep(Duration::from_millis(10)); // tokenizing, stemming...
    let words = text.split_whitespace().count();
    sentry::configure_scope(|scope| scope.set_tag("document", id));
    words
}

fn main() -> ExitCode {
    // Prints each trace as a tree; with SENTRY_DSN set, also sends it there.
    let reporter = traced_spawn::console::init();

    let documents = [
        "the build is red",
        "why is the build red",
        "the answer is 42",
        "red green refactor",
    ];
    let handles = traced_spawn_examples::in_request("POST /search/reindex", || {
        documents
            .iter()
            .zip(1..)
            .map(|(text, id)| index_document(id, (*text).to_owned()))
            .collect::<Vec<_>>()
    });

    // A panic in a job reaches its handle as `Err`, as with a thread.
    let words: usize = handles
        .into_iter()
        .map(|handle| handle.join().expect("indexing job panicked"))
        .sum();
    println!("indexed {words} words\n");

    let traces = reporter.print_trees();
    traced_spawn_examples::check_linked(&traces, 1, documents.len())
}
