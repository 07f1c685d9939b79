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

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures_util::StreamExt;
use sentry::protocol::SpanStatus;
use traced_spawn::nats::Delivery;
use traced_spawn_examples::queue::{self, demo_id, report_to, send_reply, Reply};

const PROGRAM: &str = "nats_queue";

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
            eprintln!("{PROGRAM}: {message}");
            return ExitCode::from(2);
        }
    };
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());

    let (guard, reporter) = match report_to(PROGRAM, options.envelopes.as_deref()) {
        Ok(report) => report,
        Err(code) => return code,
    };
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
                    eprintln!("{PROGRAM}: worker: {err}");
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
    let created = js
        .get_or_create_stream(jetstream::stream::Config {
            name: stream_name(subject),
            subjects: vec![subject.to_owned()],
            ..Default::default()
        })
        .await;
    match created {
        Ok(stream) => Ok(stream),
        // Two processes that both found no stream create it at the same moment, and the server
        // refuses the second: the stream is there, so take it.
        Err(err) => js
            .get_stream(stream_name(subject))
            .await
            .map_err(|_| format!("stream for {subject:?}: {err}")),
    }
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
            eprintln!("{PROGRAM}: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = stream(&js, &options.subject).await {
        eprintln!("{PROGRAM}: {err}");
        return ExitCode::FAILURE;
    }
    for i in 0..n {
        match handle(&js, options, "C042", &format!("question {i}")).await {
            Ok(answer) => println!("handler answered {answer}"),
            Err(err) => {
                eprintln!("{PROGRAM}: {err}");
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
                eprintln!("{PROGRAM}: receiving: {err}");
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
                eprintln!("{PROGRAM}: message {id}: {err}");
                message.ack_with(AckKind::Nak(None)).await
            }
        };
        if let Err(err) = acked {
            eprintln!("{PROGRAM}: acknowledging message {id}: {err}");
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

// ---------------------------------------------------------------------------------------------
// Demo: the handler here, the worker in a child process, one trace printed.

async fn demo(
    url: &str,
    options: &Options,
    reporter: Option<&traced_spawn::console::Reporter>,
) -> ExitCode {
    let Some(reporter) = reporter else {
        eprintln!("{PROGRAM}: --demo prints the trace: it cannot write --envelopes");
        return ExitCode::from(2);
    };
    let id = demo_id();
    let demo_options = Options {
        subject: format!("{}.demo-{id}", options.subject),
        ..options.clone()
    };
    let js = match connect(url).await {
        Ok(js) => js,
        Err(err) => {
            eprintln!("{PROGRAM}: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = stream(&js, &demo_options.subject).await {
        eprintln!("{PROGRAM}: {err}");
        return ExitCode::FAILURE;
    }
    let worker = [
        "--worker",
        "--subject",
        &demo_options.subject,
        "--jobs",
        "1",
    ];
    let handler = handle(&js, &demo_options, "C042", "why is the build red?");
    let code = queue::demo(PROGRAM, &id, &worker, reporter, handler).await;
    let _ = js.delete_stream(stream_name(&demo_options.subject)).await;
    code
}
