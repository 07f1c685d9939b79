//! What the example programs share: a stand-in for a web framework's request transaction, the
//! check each program ends with, and (in [`queue`]) what the two queue examples share.
//!
//! The printing itself is `traced_spawn::console` (feature `console` of `traced-spawn`), which you
//! can use in your own programs: `let reporter = traced_spawn::console::init();` first thing in
//! `main`, `reporter.print_trees()` at the end.
//!
//! ```
//! let reporter = traced_spawn::console::init();
//! let handle = traced_spawn_examples::in_request("GET /report", || {
//!     traced_spawn::Builder::new("render").spawn_thread(|| 2 + 2)
//! });
//! assert_eq!(handle.join().unwrap(), 4);
//! let traces = reporter.print_trees();
//! assert_eq!(traced_spawn_examples::check_linked(&traces, 1, 1), std::process::ExitCode::SUCCESS);
//! ```

#![warn(missing_docs)]

use std::process::ExitCode;

use sentry::protocol::SpanStatus;
use traced_spawn::console::Trace;

/// Runs `handler` inside an `http.server` transaction named `name`, bound as the active span, the
/// way sentry's tower or actix integration runs a request handler (the `slack_bot` example uses
/// the real thing). The transaction finishes when `handler` returns, with status `ok`.
///
/// ```
/// let reporter = traced_spawn::console::init();
/// let answer = traced_spawn_examples::in_request("GET /", || 42);
/// assert_eq!(answer, 42);
/// assert_eq!(reporter.traces()[0].roots[0].op, "http.server");
/// ```
pub fn in_request<R>(name: &str, handler: impl FnOnce() -> R) -> R {
    let tx = sentry::start_transaction(sentry::TransactionContext::new(name, "http.server"));
    let previous = sentry::configure_scope(|scope| {
        let previous = scope.get_span();
        scope.set_span(Some(tx.clone().into()));
        previous
    });
    let output = handler();
    sentry::configure_scope(|scope| scope.set_span(previous));
    tx.set_status(SpanStatus::Ok);
    tx.finish();
    output
}

/// The check every example ends with: `traces` holds exactly `expected_traces` traces, and each of
/// them exactly `continuations_per_trace` continuation transactions, every one linked under its
/// caller (none is a root of its trace). Prints one summary line per trace and returns the exit
/// code: a failure when anything is not linked, so CI can run the examples as checks.
///
/// ```
/// use std::process::ExitCode;
///
/// let reporter = traced_spawn::console::init();
/// // A continuation with no caller: a root of its own trace, not linked.
/// traced_spawn::Builder::new("orphan").run(|| ());
/// let traces = reporter.traces();
/// assert_eq!(traced_spawn_examples::check_linked(&traces, 1, 1), ExitCode::FAILURE);
/// ```
pub fn check_linked(
    traces: &[Trace],
    expected_traces: usize,
    continuations_per_trace: usize,
) -> ExitCode {
    let mut ok = traces.len() == expected_traces;
    println!();
    for trace in traces {
        let roots = trace.roots.iter().filter(|root| !root.is_continuation());
        let linked = roots
            .flat_map(|root| root.nodes())
            .filter(|node| node.is_continuation())
            .count();
        let unlinked = trace
            .roots
            .iter()
            .filter(|root| root.is_continuation())
            .count();
        println!(
            "trace {}: {linked} continuation(s) linked, {unlinked} not linked",
            trace.trace_id
        );
        ok &= linked == continuations_per_trace && unlinked == 0;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "error: expected {expected_traces} trace(s), each with {continuations_per_trace} \
             continuation(s) linked under its caller; got {} trace(s)",
            traces.len()
        );
        ExitCode::FAILURE
    }
}

/// What the queue examples (`apalis_queue`, `nats_queue`) share: the reply task and its work,
/// the file of JSON lines a process writes its transactions to (`--envelopes FILE`), and the demo
/// that runs a worker as a child process and prints the one trace.
pub mod queue {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::{Command, ExitCode, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use sentry::protocol::{EnvelopeItem, SpanStatus};
    use sentry::{ClientOptions, Envelope, Transport};
    use serde::{Deserialize, Serialize};
    use traced_spawn::console::{ConsoleTransport, Reporter, Trace};
    use traced_spawn::queue::{OP_PROCESS, OP_PUBLISH};

    /// The task: post an answer to a question in a channel.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Reply {
        /// The channel to post in.
        pub channel: String,
        /// The question to answer.
        pub question: String,
    }

    /// The work: generate the answer, post it. Its spans nest under `queue.process`.
    pub async fn send_reply(reply: Reply, work_ms: u64) -> Result<(), String> {
        let parent = sentry::configure_scope(|scope| scope.get_span());
        let child = |op: &str, description: &str| {
            parent
                .as_ref()
                .map(|parent| parent.start_child(op, description))
        };
        let generate = child("llm.generate", "generate answer");
        tokio::time::sleep(Duration::from_millis(work_ms)).await;
        let answer = format!("the answer to {:?} is 42", reply.question);
        if let Some(span) = generate {
            span.set_status(SpanStatus::Ok);
            span.finish();
        }
        let post = child("http.client", "POST /api/chat.update");
        if let Some(span) = post {
            span.set_status(SpanStatus::Ok);
            span.finish();
        }
        if work_ms > 0 {
            println!("posted: #{}: {answer}", reply.channel);
        }
        Ok(())
    }

    /// Where the program `program` reports: with `envelopes`, a client that writes every
    /// transaction to that file as a JSON line (its guard); else the console (its reporter).
    /// `Err` (exit code 2, after a message) when the file cannot be opened.
    pub fn report_to(
        program: &'static str,
        envelopes: Option<&Path>,
    ) -> Result<(Option<sentry::ClientInitGuard>, Option<Reporter>), ExitCode> {
        let Some(path) = envelopes else {
            return Ok((None, Some(traced_spawn::console::init())));
        };
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => {
                let transport = Arc::new(JsonLines {
                    program,
                    file: Mutex::new(file),
                });
                Ok((Some(init_with_transport(transport)), None))
            }
            Err(err) => {
                eprintln!("{program}: --envelopes {}: {err}", path.display());
                Err(ExitCode::from(2))
            }
        }
    }

    /// Binds a client that samples every transaction and hands every envelope to `transport`.
    fn init_with_transport(transport: Arc<dyn Transport>) -> sentry::ClientInitGuard {
        let mut options = ClientOptions::new().traces_sample_rate(1.0);
        options.dsn = Some(
            traced_spawn::console::PLACEHOLDER_DSN
                .parse()
                .expect("a valid DSN"),
        );
        options.transport = Some(Arc::new(move |_: &ClientOptions| transport.clone()));
        sentry::init(options)
    }

    /// Writes each transaction (and event) as a JSON line, for another process to read.
    struct JsonLines {
        program: &'static str,
        file: Mutex<std::fs::File>,
    }

    impl Transport for JsonLines {
        fn send_envelope(&self, envelope: Envelope) {
            let mut file = self
                .file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for item in envelope.items() {
                let line = match item {
                    EnvelopeItem::Transaction(tx) => serde_json::json!({ "transaction": tx }),
                    EnvelopeItem::Event(event) => serde_json::json!({ "event": event }),
                    _ => continue,
                };
                if let Err(err) = writeln!(file, "{line}").and_then(|()| file.flush()) {
                    eprintln!("{}: could not write a transaction: {err}", self.program);
                }
            }
        }
    }

    /// Feeds the transactions another process wrote with [`JsonLines`] to the console.
    fn read_json_lines(path: &Path, console: &ConsoleTransport) -> Result<(), String> {
        let text =
            std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
        for line in text.lines() {
            let mut value: serde_json::Value =
                serde_json::from_str(line).map_err(|err| err.to_string())?;
            if let Some(tx) = value.get_mut("transaction").map(serde_json::Value::take) {
                let tx: sentry::protocol::Transaction<'static> =
                    serde_json::from_value(tx).map_err(|err| err.to_string())?;
                let mut envelope = Envelope::new();
                envelope.add_item(tx);
                console.send_envelope(envelope);
            }
        }
        Ok(())
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64)
    }

    /// A name for one demo run: for its queue or subject.
    pub fn demo_id() -> String {
        format!("{:x}", unix_ms() ^ u64::from(std::process::id()))
    }

    /// The demo of `program`: starts this program again as a worker (`worker_args`, writing its
    /// transactions to a file), runs `handler` (one slash command: its answer or an error), waits
    /// until the worker has stopped after its one task, then prints the one trace and checks its
    /// shape.
    pub async fn demo(
        program: &'static str,
        id: &str,
        worker_args: &[&str],
        reporter: &Reporter,
        handler: impl std::future::Future<Output = Result<String, String>>,
    ) -> ExitCode {
        let envelopes = std::env::temp_dir().join(format!("{program}-worker-{id}.jsonl"));
        let code = demo_run(program, &envelopes, worker_args, reporter, handler).await;
        let _ = std::fs::remove_file(&envelopes);
        code
    }

    async fn demo_run(
        program: &'static str,
        envelopes: &PathBuf,
        worker_args: &[&str],
        reporter: &Reporter,
        handler: impl std::future::Future<Output = Result<String, String>>,
    ) -> ExitCode {
        let exe = std::env::current_exe().expect("path of this program");
        let mut worker = match Command::new(exe)
            .args(worker_args)
            .arg("--envelopes")
            .arg(envelopes)
            .stdin(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(err) => {
                eprintln!("{program}: could not start the worker process: {err}");
                return ExitCode::FAILURE;
            }
        };

        let started = Instant::now();
        match handler.await {
            Ok(answer) => println!(
                "handler answered {answer} after {:.1} ms",
                started.elapsed().as_secs_f64() * 1e3
            ),
            Err(err) => {
                eprintln!("{program}: {err}");
                let _ = worker.kill();
                let _ = worker.wait();
                return ExitCode::FAILURE;
            }
        }

        // The worker stops after its one task.
        let status = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::task::spawn_blocking(move || {
                let status = worker.wait();
                (worker, status)
            }),
        )
        .await;
        let ok = matches!(&status, Ok(Ok((_, Ok(status)))) if status.success());
        if !ok {
            let reason = match status {
                Ok(Ok((mut worker, status))) => {
                    let _ = worker.kill();
                    let _ = worker.wait();
                    format!("{status:?}")
                }
                Ok(Err(err)) => err.to_string(),
                Err(_) => "did not stop within 30 s".to_owned(),
            };
            eprintln!("{program}: the worker process failed or did not stop: {reason}");
            return ExitCode::FAILURE;
        }
        if let Err(err) = read_json_lines(envelopes, reporter.transport()) {
            eprintln!("{program}: reading the worker's transactions: {err}");
            return ExitCode::FAILURE;
        }
        let traces = reporter.print_trees();
        check_shape(&traces)
    }

    /// One trace: request -> queue.publish -> the worker's continuation -> queue.process -> the
    /// work.
    pub fn check_shape(traces: &[Trace]) -> ExitCode {
        let code = crate::check_linked(traces, 1, 1);
        let linked = traces.first().is_some_and(|trace| {
            let request = &trace.roots[0];
            let publish = request.children.iter().find(|node| node.op == OP_PUBLISH);
            let consumer = publish
                .and_then(|publish| publish.children.iter().find(|node| node.is_continuation()));
            let process = consumer
                .and_then(|consumer| consumer.children.iter().find(|node| node.op == OP_PROCESS));
            process.is_some_and(|process| {
                process
                    .children
                    .iter()
                    .any(|node| node.op == "llm.generate")
            })
        });
        if !linked {
            eprintln!(
                "error: expected request -> queue.publish -> continuation -> queue.process -> work"
            );
            return ExitCode::FAILURE;
        }
        code
    }
}
