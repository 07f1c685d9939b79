//! `#[traced_spawn]` on sync fns: std threads continue the caller's trace.

use sentry::protocol::SpanStatus;
use traced_spawn::traced_spawn;
use traced_spawn_tests::{
    assert_all_linked, assert_chain, capture, event_trace, in_request, in_span, rate, sampled,
    tx_trace,
};

#[derive(Debug, PartialEq)]
struct BotError(&'static str);

impl std::fmt::Display for BotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BotError {}

#[traced_spawn]
fn generate(question: String) -> Result<usize, BotError> {
    std::thread::sleep(std::time::Duration::from_millis(2));
    if question.is_empty() {
        return Err(BotError("empty question"));
    }
    Ok(question.len())
}

#[test]
fn continues_the_callers_transaction() {
    let captured = capture(sampled(), || {
        in_request("POST /slack/commands", |_| {
            let answer = generate("why?".into()).join().unwrap();
            assert_eq!(answer, Ok(4));
        });
    });
    let request = tx_trace(captured.only("POST /slack/commands"));
    let tx = captured.only("threads::generate");
    let cont = tx_trace(tx);
    assert_eq!(cont.trace_id, request.trace_id);
    assert_eq!(cont.parent_span_id, Some(request.span_id));
    assert_ne!(cont.span_id, request.span_id);
    assert_eq!(cont.op.as_deref(), Some("thread"));
    assert_eq!(cont.status, Some(SpanStatus::Ok));
    assert_eq!(cont.origin.as_deref(), Some(traced_spawn::data::ORIGIN));
    assert_eq!(cont.data["thread.name"], "generate");
    let id = cont.data["thread.id"].as_str().unwrap();
    assert!(id.parse::<u64>().is_ok(), "thread.id {id:?}");
    let delay = cont.data[traced_spawn::data::QUEUE_DELAY_MS]
        .as_f64()
        .unwrap();
    assert!((0.0..10_000.0).contains(&delay), "queue delay {delay}");
}

#[test]
fn parent_is_the_active_child_span() {
    let captured = capture(sampled(), || {
        in_request("request", |tx| {
            let child = tx.start_child("llm", "prepare");
            in_span(&child, || generate("q".into()).join().unwrap().unwrap());
            child.finish();
        });
    });
    let request = captured.only("request");
    let child = request
        .spans
        .iter()
        .find(|span| span.op.as_deref() == Some("llm"))
        .expect("child span sent");
    let cont = tx_trace(captured.only("threads::generate"));
    assert_eq!(cont.trace_id, tx_trace(request).trace_id);
    assert_eq!(cont.parent_span_id, Some(child.span_id));
}

#[traced_spawn(name = "bot.reply", op = "queue.process", thread_name = "reply-worker")]
fn reply(text: String) -> String {
    assert_eq!(std::thread::current().name(), Some("reply-worker"));
    text.to_uppercase()
}

#[test]
fn options_set_name_op_and_thread_name() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            assert_eq!(reply("ok".into()).join().unwrap(), "OK");
        });
    });
    let cont = tx_trace(captured.only("bot.reply"));
    assert_eq!(cont.op.as_deref(), Some("queue.process"));
    assert_eq!(cont.data["thread.name"], "reply-worker");
}

#[traced_spawn]
fn outer(depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    1 + outer(depth - 1).join().unwrap()
}

#[test]
fn nested_spawns_chain_parent_to_child() {
    let captured = capture(sampled(), || {
        in_request("request", |_| assert_eq!(outer(3).join().unwrap(), 3));
    });
    assert_chain(&captured, "request", "threads::outer", 4);
}

#[traced_spawn]
fn explode(message: &'static str) -> u32 {
    panic!("{message}")
}

#[test]
fn panic_fails_the_continuation_and_reaches_the_join_handle() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            let payload = explode("engine crashed").join().unwrap_err();
            assert_eq!(
                payload.downcast_ref::<String>().map(String::as_str),
                Some("engine crashed")
            );
        });
    });
    let cont = tx_trace(captured.only("threads::explode"));
    assert_eq!(cont.status, Some(SpanStatus::InternalError));
    let events = captured.events();
    assert_eq!(events.len(), 1, "one panic event");
    let panic_trace = event_trace(events[0]);
    assert_eq!(panic_trace.trace_id, cont.trace_id);
    assert_eq!(panic_trace.span_id, cont.span_id);
}

#[test]
fn err_fails_the_continuation() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            assert_eq!(
                generate(String::new()).join().unwrap(),
                Err(BotError("empty question"))
            );
        });
    });
    let cont = tx_trace(captured.only("threads::generate"));
    assert_eq!(cont.status, Some(SpanStatus::InternalError));
    assert!(captured.events().is_empty(), "no event without `err`");
}

#[traced_spawn]
fn tag_and_report(label: &'static str) {
    sentry::configure_scope(|scope| scope.set_tag("body", label));
}

#[test]
fn scope_is_forked_not_shared() {
    let captured = capture(sampled(), || {
        sentry::configure_scope(|scope| scope.set_tag("caller", "yes"));
        in_request("request", |_| {
            let a = tag_and_report("a");
            let b = tag_and_report("b");
            a.join().unwrap();
            b.join().unwrap();
        });
    });
    let request = captured.only("request");
    assert_eq!(request.tags.get("caller").map(String::as_str), Some("yes"));
    assert!(
        !request.tags.contains_key("body"),
        "body tag leaked to the caller"
    );
    let bodies = captured.named("threads::tag_and_report");
    assert_eq!(bodies.len(), 2);
    let mut labels: Vec<_> = bodies
        .iter()
        .map(|tx| {
            assert_eq!(tx.tags.get("caller").map(String::as_str), Some("yes"));
            tx.tags["body"].clone()
        })
        .collect();
    labels.sort();
    assert_eq!(labels, ["a", "b"], "each body sees only its own tag");
}

#[traced_spawn]
fn report_error() {
    sentry::capture_message("inside the body", sentry::Level::Error);
}

#[test]
fn unsampled_parent_error_has_the_callers_trace_id() {
    let mut expected = None;
    let captured = capture(sampled(), || {
        let mut ctx = sentry::TransactionContext::new("request", "http.server");
        ctx.set_sampled(false);
        let tx = sentry::start_transaction(ctx);
        expected = Some((
            tx.get_trace_context().trace_id,
            tx.get_trace_context().span_id,
        ));
        in_span(&tx, || report_error().join().unwrap());
        tx.finish();
    });
    let (trace_id, span_id) = expected.unwrap();
    assert!(captured.transactions().is_empty());
    let event = event_trace(captured.events()[0]);
    assert_eq!(event.trace_id, trace_id);
    assert_eq!(event.span_id, span_id);
}

#[test]
fn sampled_parent_wins_over_the_sample_rate() {
    let captured = capture(rate(0.0), || {
        let mut ctx = sentry::TransactionContext::new("request", "http.server");
        ctx.set_sampled(true);
        let tx = sentry::start_transaction(ctx);
        in_span(&tx, || generate("q".into()).join().unwrap().unwrap());
        tx.finish();
    });
    let request = tx_trace(captured.only("request"));
    let cont = tx_trace(captured.only("threads::generate"));
    assert_eq!(cont.parent_span_id, Some(request.span_id));
}

#[test]
fn no_active_span_continues_the_scope_trace() {
    let captured = capture(sampled(), || {
        sentry::capture_message("caller error", sentry::Level::Error);
        generate("q".into()).join().unwrap().unwrap();
    });
    let caller_event = event_trace(captured.events()[0]);
    let cont = tx_trace(captured.only("threads::generate"));
    assert_eq!(cont.trace_id, caller_event.trace_id);
    assert_eq!(cont.parent_span_id, Some(caller_event.span_id));
}

#[test]
fn no_client_runs_the_plain_body() {
    // No client bound on this thread: nothing to continue, the body still runs.
    assert!(traced_spawn::TraceContext::capture().is_empty());
    assert_eq!(generate("four".into()).join().unwrap(), Ok(4));
    assert_eq!(reply("x".into()).join().unwrap(), "X");
}

struct Bot {
    prefix: String,
}

impl Bot {
    #[traced_spawn]
    fn respond(self, question: String) -> String {
        format!("{}{question}", self.prefix)
    }

    #[traced_spawn]
    fn respond_shared(self: std::sync::Arc<Self>, question: String) -> String {
        format!("{}{question}", self.prefix)
    }
}

#[test]
fn methods_are_named_after_their_type() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            let bot = Bot {
                prefix: "> ".into(),
            };
            assert_eq!(bot.respond("hi".into()).join().unwrap(), "> hi");
            let bot = std::sync::Arc::new(Bot {
                prefix: "# ".into(),
            });
            assert_eq!(bot.respond_shared("yo".into()).join().unwrap(), "# yo");
        });
    });
    let request = tx_trace(captured.only("request"));
    for name in ["threads::Bot::respond", "threads::Bot::respond_shared"] {
        let cont = tx_trace(captured.only(name));
        assert_eq!(cont.parent_span_id, Some(request.span_id));
    }
}

#[traced_spawn]
fn count(n: usize) -> usize {
    n
}

#[test]
fn a_hundred_threads_from_one_parent_all_link() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            let handles: Vec<_> = (0..100).map(count).collect();
            let sum: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(sum, (0..100).sum::<usize>());
        });
    });
    assert_all_linked(&captured, "request", "threads::count", 100);
}

struct Worker<T> {
    item: T,
}

impl<T: Send + 'static> Worker<T> {
    #[traced_spawn]
    fn process(self) -> T {
        self.item
    }
}

trait Job {
    fn run_job(self) -> std::thread::JoinHandle<u8>;
}

impl<T: Send + 'static> Job for Worker<T> {
    #[traced_spawn]
    fn run_job(self) -> u8 {
        7
    }
}

#[test]
fn generic_impls_are_named_without_their_type_arguments() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            assert_eq!(Worker { item: 3_u16 }.process().join().unwrap(), 3);
            assert_eq!(Worker { item: "x" }.run_job().join().unwrap(), 7);
        });
    });
    captured.only("threads::Worker::process");
    captured.only("<threads::Worker as threads::Job>::run_job");
}

/// A trait whose default method is traced: each implementor's continuation is named after it.
trait Report: Sized + Send + 'static {
    #[traced_spawn]
    fn report(self) -> u8 {
        1
    }
}

struct Daily;
struct Weekly;
impl Report for Daily {}
impl Report for Weekly {}

#[test]
fn a_default_method_is_named_after_the_implementing_type() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            assert_eq!(Daily.report().join().unwrap(), 1);
            assert_eq!(Weekly.report().join().unwrap(), 1);
        });
    });
    captured.only("<threads::Daily as threads::Report>::report");
    captured.only("<threads::Weekly as threads::Report>::report");
}
