//! A Slack bot: an axum server that answers a slash command at once and generates the reply in
//! the background, in the same trace as the request.
//!
//! ```text
//! # sends itself one command, prints the trace, exits (non-zero if the work is not linked)
//! cargo run -p traced-spawn-examples --example slack_bot -- --demo
//!
//! # serves on 127.0.0.1:3000 (--port N to change it) until Ctrl-C, printing each trace
//! cargo run -p traced-spawn-examples --example slack_bot
//! curl -H 'sentry-trace: 0123456789abcdef0123456789abcdef-0123456789abcdef-1' \
//!      -d 'channel_id=C042&user_name=ada&text=why is the build red?' \
//!      http://127.0.0.1:3000/slack/commands
//! ```
//!
//! Slack waits 3 seconds for the answer to a slash command. `POST /slack/commands` answers `200`
//! "working on it" at once and hands the question to `send_generated_response`, a
//! `#[traced_spawn]` async fn: the answer is generated on a tokio task (a simulated engine, slow
//! and sometimes failing) and posted to `POST /api/chat.update`, a stand-in for Slack's API served
//! by this same server.
//!
//! Tracing is sentry's own tower integration (`sentry-tower`, feature `tower-http` of `sentry`):
//! each request gets its own hub and an `http.server` transaction that continues the incoming
//! `sentry-trace`/`baggage` headers, so a trace started upstream flows through. The trace:
//!
//! ```text
//! (upstream)
//! └─ tx   http.server  POST /slack/commands                  answered at once
//!    └─ tx   task  slack_bot::send_generated_response       the continuation, outlives the request
//!       ├─ span llm.generate  generate answer
//!       └─ span http.client  POST /api/chat.update
//!          └─ tx   http.server  POST /api/chat.update       continued from the headers sent
//! ```

use std::hash::{BuildHasher, RandomState};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Form, Request, State};
use axum::routing::post;
use axum::{Json, Router};
use sentry::integrations::tower::{NewSentryLayer, SentryHttpLayer};
use sentry::protocol::{SpanId, SpanStatus, TraceId};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use traced_spawn::console::Reporter;
use traced_spawn::traced_spawn;

/// A slash command, form-encoded as Slack sends it. Slack sends more fields (`team_id`,
/// `user_id`, `command`, `response_url`, `trigger_id`, ...); the ones not declared are ignored.
#[derive(Deserialize)]
struct SlashCommand {
    channel_id: String,
    user_name: String,
    text: String,
}

/// What `chat.update` receives: the message to replace, and its new text.
#[derive(Serialize, Deserialize)]
struct ChatUpdate {
    channel: String,
    ts: String,
    text: String,
}

/// The bot's shared state.
#[derive(Clone)]
struct Bot {
    http: reqwest::Client,
    /// Base URL of the Slack API: this server.
    slack_api: String,
    /// Every message `chat.update` received (the demo waits for one).
    posted: mpsc::UnboundedSender<ChatUpdate>,
}

#[derive(Debug)]
enum BotError {
    /// The (simulated) answer engine failed.
    Engine(String),
    /// Posting the reply failed.
    Slack(reqwest::Error),
}

impl std::fmt::Display for BotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BotError::Engine(reason) => write!(f, "engine failed: {reason}"),
            BotError::Slack(_) => f.write_str("chat.update failed"),
        }
    }
}

impl std::error::Error for BotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BotError::Engine(_) => None,
            BotError::Slack(err) => Some(err),
        }
    }
}

/// `POST /slack/commands`: answers at once; the work goes on in the background.
async fn slash_command(
    State(bot): State<Bot>,
    Form(command): Form<SlashCommand>,
) -> Json<serde_json::Value> {
    let ts = message_ts();
    // Captures the request's trace context here, spawns the task, returns its JoinHandle at
    // once. Dropping the handle detaches the task; the continuation still finishes and is sent.
    let _reply = send_generated_response(bot, command.channel_id, ts, command.text);
    Json(serde_json::json!({
        "response_type": "ephemeral",
        "text": format!("Working on it, {}…", command.user_name),
    }))
}

/// The offloaded work: a continuation transaction of the request, on a tokio task. `err`: an
/// `Err` is also captured as an error event linked to it, and finishes it as `internal_error`.
#[traced_spawn(err)]
async fn send_generated_response(
    bot: Bot,
    channel: String,
    ts: String,
    question: String,
) -> Result<(), BotError> {
    let answer = generate_answer(&question).await;
    let text = match &answer {
        Ok(answer) => answer.clone(),
        Err(err) => format!("Sorry, I could not answer that ({err})."),
    };
    bot.chat_update(ChatUpdate { channel, ts, text }).await?;
    answer.map(drop)
}

/// A simulated answer engine (an LLM call, say): slow, and failing about one time in five (or
/// when asked to: a question containing "fail").
async fn generate_answer(question: &str) -> Result<String, BotError> {
    let span = child_span("llm.generate", "generate answer");
    tokio::time::sleep(Duration::from_millis(80)).await;
    // A random number without a dependency: std's hasher is seeded randomly.
    let dice = RandomState::new().hash_one(question);
    let result = if question.contains("fail") || dice.is_multiple_of(5) {
        Err(BotError::Engine("the model is overloaded".into()))
    } else {
        Ok(format!("The answer to {question:?} is 42."))
    };
    finish_span(span, result.is_ok());
    result
}

impl Bot {
    /// Posts to the Slack API's `chat.update`, in an `http.client` span whose propagation headers
    /// go with the request, so the receiving side continues the trace under this span.
    async fn chat_update(&self, message: ChatUpdate) -> Result<(), BotError> {
        let span = child_span("http.client", "POST /api/chat.update");
        let mut request = self
            .http
            .post(format!("{}/api/chat.update", self.slack_api))
            .json(&message);
        for (name, value) in span.iter().flat_map(|span| span.iter_headers()) {
            request = request.header(name, value);
        }
        let result = match request.send().await {
            Ok(response) => response.error_for_status().map(drop),
            Err(err) => Err(err),
        };
        finish_span(span, result.is_ok());
        result.map_err(BotError::Slack)
    }
}

/// A child span of the active span (inside the task: the continuation transaction).
fn child_span(op: &str, description: &str) -> Option<sentry::Span> {
    sentry::configure_scope(|scope| scope.get_span())
        .map(|parent| parent.start_child(op, description))
}

/// Finishes a span from [`child_span`] with the status of what it measured.
fn finish_span(span: Option<sentry::Span>, ok: bool) {
    if let Some(span) = span {
        span.set_status(if ok {
            SpanStatus::Ok
        } else {
            SpanStatus::InternalError
        });
        span.finish();
    }
}

/// A Slack message timestamp (`seconds.micros`), which names the message to update.
fn message_ts() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:06}", now.as_secs(), now.subsec_micros())
}

/// `POST /api/chat.update`: the stand-in for Slack's API.
async fn chat_update(
    State(bot): State<Bot>,
    Json(message): Json<ChatUpdate>,
) -> Json<serde_json::Value> {
    let _ = bot.posted.send(message);
    Json(serde_json::json!({ "ok": true }))
}

/// The server: two routes, and sentry-tower's two layers. axum applies the last `.layer` first,
/// so `NewSentryLayer` (a fresh hub for each request) wraps `SentryHttpLayer` (the request's
/// `http.server` transaction, continuing incoming `sentry-trace`/`baggage` headers).
fn app(bot: Bot) -> Router {
    Router::new()
        .route("/slack/commands", post(slash_command))
        .route("/api/chat.update", post(chat_update))
        .with_state(bot)
        .layer(SentryHttpLayer::new().enable_transaction())
        .layer(NewSentryLayer::<Request>::new_from_top())
}

#[tokio::main]
async fn main() -> ExitCode {
    // Prints each trace as a tree; with SENTRY_DSN set, also sends it there.
    let reporter = traced_spawn::console::init();

    let Some(args) = Args::parse(std::env::args().skip(1)) else {
        eprintln!("usage: slack_bot [--demo] [--port N]   (N = 0: any free port)");
        return ExitCode::from(2);
    };
    let port = args.port.unwrap_or(if args.demo { 0 } else { 3000 });
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("error: cannot listen on 127.0.0.1:{port}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let base = format!("http://{}", listener.local_addr().expect("local address"));
    let (posted, replies) = mpsc::unbounded_channel();
    let bot = Bot {
        http: reqwest::Client::new(),
        slack_api: base.clone(),
        posted,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app(bot))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let code = if args.demo {
        demo(&base, replies, &reporter).await
    } else {
        serve(&base, replies, &reporter).await
    };
    let _ = stop.send(());
    let _ = server.await;
    // Replies still being generated finish and are sent before the client closes.
    traced_spawn::flush(Duration::from_secs(5)).await;
    code
}

/// Sends one slash command with a `sentry-trace` header from a fake upstream, waits for the reply
/// to be posted, prints the trace and checks it.
async fn demo(
    base: &str,
    mut replies: mpsc::UnboundedReceiver<ChatUpdate>,
    reporter: &Reporter,
) -> ExitCode {
    // The upstream (a gateway, another service) already traces this request.
    let (upstream_trace, upstream_span) = (TraceId::default(), SpanId::default());
    println!("upstream sentry-trace: {upstream_trace}-{upstream_span}-1");

    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{base}/slack/commands"))
        .header(
            "sentry-trace",
            format!("{upstream_trace}-{upstream_span}-1"),
        )
        .header(
            "baggage",
            format!("sentry-trace_id={upstream_trace},sentry-sampled=true"),
        )
        .form(&[
            ("channel_id", "C042"),
            ("user_name", "ada"),
            ("command", "/ask"),
            ("text", "why is the build red?"),
        ])
        .send()
        .await;
    let answered = started.elapsed();
    let response = match response {
        Ok(response) => response,
        Err(err) => {
            eprintln!("error: POST /slack/commands failed: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "POST /slack/commands answered {} after {:.1} ms: {}",
        response.status(),
        answered.as_secs_f64() * 1000.0,
        response.text().await.unwrap_or_default()
    );

    match tokio::time::timeout(Duration::from_secs(10), replies.recv()).await {
        Ok(Some(reply)) => println!(
            "chat.update #{} {}: {}\n",
            reply.channel, reply.ts, reply.text
        ),
        _ => {
            eprintln!("error: no reply was posted within 10 s");
            return ExitCode::FAILURE;
        }
    }

    // The continuation finishes right after chat.update answered: wait until it has finished
    // and been sent.
    if !traced_spawn::flush(Duration::from_secs(5)).await {
        eprintln!("error: the continuation did not finish within 5 s");
    }
    let traces = tokio::task::block_in_place(|| reporter.print_trees());
    if traces.iter().any(|trace| trace.trace_id != upstream_trace) {
        eprintln!("error: a trace other than the upstream's {upstream_trace} was recorded");
        return ExitCode::FAILURE;
    }
    traced_spawn_examples::check_linked(&traces, 1, 1)
}

/// Serves until Ctrl-C, printing each posted reply and each trace once it has settled.
async fn serve(
    base: &str,
    mut replies: mpsc::UnboundedReceiver<ChatUpdate>,
    reporter: &Reporter,
) -> ExitCode {
    reporter.print_live(Duration::from_millis(500));
    println!("listening on {base} (Ctrl-C to stop); try:");
    println!(
        "  curl -d 'channel_id=C042&user_name=ada&text=why is the build red?' {base}/slack/commands"
    );
    let printer = tokio::spawn(async move {
        while let Some(reply) = replies.recv().await {
            println!(
                "chat.update #{} {}: {}",
                reply.channel, reply.ts, reply.text
            );
        }
    });
    let _ = tokio::signal::ctrl_c().await;
    printer.abort();
    ExitCode::SUCCESS
}

/// Command-line arguments: `--demo`, `--port N`.
struct Args {
    demo: bool,
    port: Option<u16>,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Option<Args> {
        let mut parsed = Args {
            demo: false,
            port: None,
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--demo" => parsed.demo = true,
                "--port" => parsed.port = Some(args.next()?.parse().ok()?),
                _ => match arg.strip_prefix("--port=") {
                    Some(port) => parsed.port = Some(port.parse().ok()?),
                    None => return None,
                },
            }
        }
        Some(parsed)
    }
}
