//! A Slack bot whose replies are NATS JetStream messages, processed by a consumer in a separate
//! process, in one trace.
//!
//! ```text
//! bash scripts/nats/setup.sh && export NATS_URL="$(bash scripts/nats/start.sh)"
//!
//! # starts a consumer process, handles one command, prints the one trace (non-zero if not linked)
//! cargo run -p traced-spawn-examples --example nats_queue -- --demo
//!
//! # or by hand, in two terminals
//! cargo run -p traced-spawn-examples --example nats_queue -- --worker
//! cargo run -p traced-spawn-examples --example nats_queue -- --produce 3
//! ```
//!
//! The handler of a slash command answers at once and publishes the reply with
//! [`traced_spawn::nats::publish`]: a `queue.publish` span that ends with JetStream's
//! acknowledgement, and the trace in the message's headers. The worker reads a durable pull
//! consumer; each message goes through [`traced_spawn::nats::Delivery`]: a continuation of the
//! publish span with a `queue.process` span (retry count from JetStream's delivery count, receive
//! latency, body and envelope sizes, status), acknowledged after the work succeeded:
//!
//! ```text
//! tx   http.server  POST /slack/commands          producer process
//! └─ span queue.publish  slack.replies
//!    └─ tx   function  slack.replies              worker process
//!       └─ span queue.process  slack.replies
//!          ├─ span llm.generate  generate answer
//!          └─ span http.client  POST /api/chat.update
//! ```
//!
//! Delivery is JetStream's: at least once. A message whose worker dies before acknowledging it is
//! delivered again once the consumer's `ack_wait` has passed, in the same trace, with retry count
//! 1; make the work idempotent where that matters.
//!
//! Flags (the end-to-end test `tests/tests/e2e_nats.rs` drives these): `--demo` (the default),
//! `--worker`, `--produce N`; `--subject NAME` (default `slack.replies`; the stream is named after
//! it); `--envelopes FILE` (write every transaction as a JSON line to FILE instead of printing
//! trees); worker only: `--durable NAME` (the durable consumer, default `worker`), `--ack-wait-ms
//! MS` (the consumer's `ack_wait` when this worker creates it, default 30000), `--work-ms MS` (time
//! the simulated answer takes, default 20), `--jobs N` (stop after N messages are done),
//! `--exit-when-idle MS` (stop after MS without a message; default: run until killed).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures_util::StreamExt;
use sentry::protocol::{EnvelopeItem, SpanStatus};
use sentry::{ClientOptions, Envelope, Transport};
use serde::{Deserialize, Serialize};
use traced_spawn::console::{ConsoleTransport, Trace};
use traced_spawn::nats::Delivery;
use traced_spawn::queue::{OP_PROCESS, OP_PUBLISH};

/// The message: post an answer to a question in a channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reply {
    channel: String,
    question: String,
}

#[derive(Debug, Clone)]
struct Options {
    subject: String,
    envelopes: Option<PathBuf>,
    durable: String,
    ack_wait_ms: u64,
    work_ms: u64,
    jobs: Option<usize>,
    exit_when_idle: Option<u64>,
}

#[derive(Debug, PartialEq)]
enum Mode {
    Demo,
    Worker,
    Produce(usize),
}

fn main() -> ExitCode {
    let (mode, options) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("nats_queue: {message}");
            return ExitCode::from(2);
        }
    };
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());

    let mut guard = None;
    let mut reporter = None;
    match &options.envelopes {
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => guard = Some(init_with_transport(Arc::new(JsonLines(Mutex::new(file))))),
            Err(err) => {
                eprintln!("nats_queue: --envelopes {}: {err}", path.display());
                return ExitCode::from(2);
            }
        },
        None => reporter = Some(traced_spawn::console::init()),
    }
    if let (Some(reporter), Mode::Worker) = (&reporter, &mode) {
        reporter.print_live(Duration::from_millis(500));
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = rt.block_on(async {
        match mode {
            Mode::Demo => demo(&url, &options, reporter.as_ref()).await,
            Mode::Worker => match worker(&url, &options).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("nats_queue: worker: {err}");
                    ExitCode::FAILURE
                }
            },
            Mode::Produce(n) => produce(&url, &options, n).await,
        }
    });
    drop(rt);
    if let (Some(reporter), Mode::Produce(_)) = (&reporter, &mode) {
        reporter.print_trees();
    }
    drop(guard);
    code
}

fn parse_args() -> Result<(Mode, Options), String> {
    let mut mode = Mode::Demo;
    let mut options = Options {
        subject: "slack.replies".to_owned(),
        envelopes: None,
        durable: "worker".to_owned(),
        ack_wait_ms: 30_000,
        work_ms: 20,
        jobs: None,
        exit_when_idle: None,
    };
    let mut args = std::env::args().skip(1);
    let number = |flag: &str, value: Option<String>| -> Result<u64, String> {
        value
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--demo" => mode = Mode::Demo,
            "--worker" => mode = Mode::Worker,
            "--produce" => mode = Mode::Produce(number("--produce", args.next())? as usize),
            "--subject" => options.subject = args.next().ok_or("--subject needs a name")?,
            "--envelopes" => {
                options.envelopes = Some(args.next().ok_or("--envelopes needs a file")?.into());
            }
            "--durable" => options.durable = args.next().ok_or("--durable needs a name")?,
            "--ack-wait-ms" => options.ack_wait_ms = number("--ack-wait-ms", args.next())?,
            "--work-ms" => options.work_ms = number("--work-ms", args.next())?,
            "--jobs" => options.jobs = Some(number("--jobs", args.next())? as usize),
            "--exit-when-idle" => {
                options.exit_when_idle = Some(number("--exit-when-idle", args.next())?);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((mode, options))
}

/// The stream that holds the subject's messages: its name in capitals, `_` for anything else.
fn stream_name(subject: &str) -> String {
    subject
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

async fn connect(url: &str) -> Result<jetstream::Context, String> {
    let client = tokio::time::timeout(
        Duration::from_secs(5),
        async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(3))
            .connect(url),
    )
    .await
    .map_err(|_| format!("NATS_URL {url:?}: no answer within 5 s"))?
    .map_err(|err| format!("NATS_URL {url:?}: {err}"))?;
    Ok(jetstream::new(client))
}

/// The stream of `subject`, created when missing (by whichever process comes first).
async fn stream(
    js: &jetstream::Context,
    subject: &str,
) -> Result<jetstream::stream::Stream, String> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: stream_name(subject),
        subjects: vec![subject.to_owned()],
        ..Default::default()
    })
    .await
    .map_err(|err| format!("stream for {subject:?}: {err}"))
}

/// The slash-command handler: publishes the reply, answers at once.
async fn handle(
    js: &jetstream::Context,
    options: &Options,
    channel: &str,
    question: &str,
) -> Result<String, String> {
    let request = sentry::start_transaction(sentry::TransactionContext::new(
        "POST /slack/commands",
        "http.server",
    ));
    sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
    let reply = Reply {
        channel: channel.to_owned(),
        question: question.to_owned(),
    };
    let payload = serde_json::to_vec(&reply).expect("a Reply serializes");
    let published = traced_spawn::nats::publish(
        js,
        options.subject.as_str(),
        async_nats::HeaderMap::new(),
        payload.into(),
    )
    .await;
    request.set_status(if published.is_ok() {
        SpanStatus::Ok
    } else {
        SpanStatus::InternalError
    });
    sentry::configure_scope(|scope| scope.set_span(None));
    request.finish();
    match published {
        Ok(published) => Ok(format!(
            "\"on it\" (message {}, #{} of {})",
            published.id, published.ack.sequence, published.ack.stream
        )),
        Err(err) => Err(format!("could not queue the reply: {err}")),
    }
}

async fn produce(url: &str, options: &Options, n: usize) -> ExitCode {
    let js = match connect(url).await {
        Ok(js) => js,
        Err(err) => {
            eprintln!("nats_queue: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = stream(&js, &options.subject).await {
        eprintln!("nats_queue: {err}");
        return ExitCode::FAILURE;
    }
    for i in 0..n {
        match handle(&js, options, "C042", &format!("question {i}")).await {
            Ok(answer) => println!("handler answered {answer}"),
            Err(err) => {
                eprintln!("nats_queue: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

async fn worker(url: &str, options: &Options) -> Result<(), String> {
    let js = connect(url).await?;
    let consumer = stream(&js, &options.subject)
        .await?
        .get_or_create_consumer(
            &options.durable,
            pull::Config {
                durable_name: Some(options.durable.clone()),
                ack_wait: Duration::from_millis(options.ack_wait_ms),
                ..Default::default()
            },
        )
        .await
        .map_err(|err| format!("consumer {:?}: {err}", options.durable))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|err| format!("consumer {:?}: {err}", options.durable))?;
    let idle = options.exit_when_idle.map(Duration::from_millis);
    let mut done = 0;
    loop {
        let next = match idle {
            None => messages.next().await,
            Some(idle) => match tokio::time::timeout(idle, messages.next()).await {
                Ok(next) => next,
                Err(_) => return Ok(()),
            },
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(err)) => {
                eprintln!("nats_queue: receiving: {err}");
                continue;
            }
            None => return Err("the consumer's message stream ended".to_owned()),
        };
        let delivery = Delivery::new(&message);
        let id = delivery.message_id().to_owned();
        println!("took message {id} delivery {}", delivery.retry_count() + 1);
        let reply = serde_json::from_slice::<Reply>(&message.payload)
            .map_err(|err| format!("message {id}: {err}"));
        let work_ms = options.work_ms;
        let result = delivery
            .bind(options.subject.clone(), async move {
                send_reply(reply?, work_ms).await
            })
            .await;
        // Acknowledged after the work, and confirmed by the server: a worker that dies before
        // this line gets its message delivered again.
        let acked = match &result {
            Ok(()) => message.double_ack().await,
            Err(err) => {
                eprintln!("nats_queue: message {id}: {err}");
                message.ack_with(AckKind::Nak(None)).await
            }
        };
        if let Err(err) = acked {
            eprintln!("nats_queue: acknowledging message {id}: {err}");
            continue;
        }
        if result.is_ok() {
            done += 1;
            println!("done: message {id} ({done})");
            if options.jobs.is_some_and(|jobs| done >= jobs) {
                return Ok(());
            }
        }
    }
}

/// The work: generate the answer, post it. Its spans nest under `queue.process`.
async fn send_reply(reply: Reply, work_ms: u64) -> Result<(), String> {
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

// ---------------------------------------------------------------------------------------------
// Demo: the handler here, the worker in a child process, one trace printed.

async fn demo(
    url: &str,
    options: &Options,
    reporter: Option<&traced_spawn::console::Reporter>,
) -> ExitCode {
    let Some(reporter) = reporter else {
        eprintln!("nats_queue: --demo prints the trace: it cannot write --envelopes");
        return ExitCode::from(2);
    };
    let id = format!("{:x}", unix_ms() ^ u64::from(std::process::id()));
    let demo_options = Options {
        subject: format!("{}.demo-{id}", options.subject),
        ..options.clone()
    };
    let envelopes = std::env::temp_dir().join(format!("nats_queue-worker-{id}.jsonl"));
    let js = match connect(url).await {
        Ok(js) => js,
        Err(err) => {
            eprintln!("nats_queue: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = stream(&js, &demo_options.subject).await {
        eprintln!("nats_queue: {err}");
        return ExitCode::FAILURE;
    }
    let code = demo_run(&js, &demo_options, &envelopes, reporter).await;
    let _ = std::fs::remove_file(&envelopes);
    let _ = js.delete_stream(stream_name(&demo_options.subject)).await;
    code
}

async fn demo_run(
    js: &jetstream::Context,
    options: &Options,
    envelopes: &PathBuf,
    reporter: &traced_spawn::console::Reporter,
) -> ExitCode {
    let exe = std::env::current_exe().expect("path of this program");
    let mut worker = match Command::new(exe)
        .args(["--worker", "--subject", &options.subject, "--jobs", "1"])
        .arg("--envelopes")
        .arg(envelopes)
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            eprintln!("nats_queue: could not start the worker process: {err}");
            return ExitCode::FAILURE;
        }
    };

    let started = Instant::now();
    match handle(js, options, "C042", "why is the build red?").await {
        Ok(answer) => println!(
            "handler answered {answer} after {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        ),
        Err(err) => {
            eprintln!("nats_queue: {err}");
            let _ = worker.kill();
            let _ = worker.wait();
            return ExitCode::FAILURE;
        }
    }

    // The worker stops after its one message.
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
        if let Ok(Ok((mut worker, _))) = status {
            let _ = worker.kill();
            let _ = worker.wait();
        }
        eprintln!("nats_queue: the worker process failed or did not stop");
        return ExitCode::FAILURE;
    }
    if let Err(err) = read_json_lines(envelopes, reporter.transport()) {
        eprintln!("nats_queue: reading the worker's transactions: {err}");
        return ExitCode::FAILURE;
    }
    let traces = reporter.print_trees();
    check_shape(&traces)
}

/// One trace: request -> queue.publish -> the worker's continuation -> queue.process -> the work.
fn check_shape(traces: &[Trace]) -> ExitCode {
    let code = traced_spawn_examples::check_linked(traces, 1, 1);
    let linked = traces.first().is_some_and(|trace| {
        let request = &trace.roots[0];
        let publish = request.children.iter().find(|node| node.op == OP_PUBLISH);
        let consumer =
            publish.and_then(|publish| publish.children.iter().find(|node| node.is_continuation()));
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
struct JsonLines(Mutex<std::fs::File>);

impl Transport for JsonLines {
    fn send_envelope(&self, envelope: Envelope) {
        let mut file = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for item in envelope.items() {
            let line = match item {
                EnvelopeItem::Transaction(tx) => serde_json::json!({ "transaction": tx }),
                EnvelopeItem::Event(event) => serde_json::json!({ "event": event }),
                _ => continue,
            };
            if let Err(err) = writeln!(file, "{line}").and_then(|()| file.flush()) {
                eprintln!("nats_queue: could not write a transaction: {err}");
            }
        }
    }
}

/// Feeds the transactions another process wrote with [`JsonLines`] to the console.
fn read_json_lines(path: &PathBuf, console: &ConsoleTransport) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
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

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
