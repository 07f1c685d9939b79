//! The runtime API without the attribute: `TraceContext` and `Builder`, for code that cannot be
//! annotated (a channel consumer, a closure handed to some executor, a job queue).
//!
//! ```text
//! cargo run -p traced-spawn-examples --example without_macro
//! ```
//!
//! Prints the request's trace: four continuations, each made a different way, all under it.

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use traced_spawn::{Builder, TraceContext};

fn answer(question: &str) -> usize {
    std::thread::sleep(Duration::from_millis(5));
    question.len()
}

#[tokio::main]
async fn main() -> ExitCode {
    let reporter = traced_spawn::console::init();

    // A long-lived consumer thread: it has no hub of its own, the context carries the caller's.
    let (jobs, queue) = mpsc::channel::<(TraceContext, String)>();
    let consumer = std::thread::spawn(move || {
        for (ctx, question) in queue {
            ctx.run("bot::answer", "queue.process", || answer(&question));
        }
    });

    // A queue that carries only text: the context travels as propagation headers.
    let (remote_jobs, remote_queue) = mpsc::channel::<Vec<(&'static str, String)>>();
    let remote_consumer = std::thread::spawn(move || {
        for headers in remote_queue {
            let pairs = headers.iter().map(|(name, value)| (*name, value.as_str()));
            // Untrusted input: fall back to the local context if the headers are unusable.
            let ctx = TraceContext::from_headers(pairs).unwrap_or_else(|_| TraceContext::capture());
            Builder::new("bot::remote_answer")
                .op("queue.process")
                .context(ctx)
                .run(|| answer("from another process"));
        }
    });

    let tx = sentry::start_transaction(sentry::TransactionContext::new(
        "POST /slack/commands",
        "http.server",
    ));
    sentry::configure_scope(|scope| scope.set_span(Some(tx.clone().into())));

    // 1. capture now, continue on the consumer thread
    jobs.send((TraceContext::capture(), "why?".to_owned()))
        .expect("consumer is running");
    // 2. the same, through headers
    remote_jobs
        .send(TraceContext::capture().to_headers())
        .expect("remote consumer is running");
    // 3. a std thread; an `Err` would finish it as `internal_error`
    let reply = Builder::new("bot::send_generated_response")
        .thread_name("reply")
        .fallible()
        .spawn_thread(|| -> Result<usize, std::num::ParseIntError> { "42".parse() });
    // 4. a future, spawned on any executor (here tokio)
    let ctx = TraceContext::capture();
    let typing = tokio::spawn(ctx.bind("bot::show_typing", "task", async {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }));

    sentry::configure_scope(|scope| scope.set_span(None));
    tx.finish();

    drop(jobs);
    drop(remote_jobs);
    let reply = tokio::task::spawn_blocking(move || {
        consumer.join().expect("consumer panicked");
        remote_consumer.join().expect("remote consumer panicked");
        reply.join().expect("reply thread panicked")
    })
    .await
    .expect("join task");
    typing.await.expect("typing task panicked");
    println!("reply: {reply:?}\n");

    let traces = reporter.print_trees();
    let linked = traces
        .iter()
        .flat_map(|trace| &trace.roots)
        .filter(|root| root.op == "http.server")
        .flat_map(|request| request.nodes())
        .filter(|node| node.is_continuation())
        .count();
    println!("\n{} trace(s), {linked} continuations linked", traces.len());
    if traces.len() == 1 && linked == 4 {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: expected 1 trace with 4 continuations under the request");
        ExitCode::FAILURE
    }
}
