//! Linking: a continuation joins its caller's trace. On every executor (a std thread, a tokio
//! task, tokio's blocking pool, a `LocalSet`, rayon's pool, a custom spawner, an executor passed as
//! a value), in every fan-out (traced futures in a `JoinSet`, `child` spans, a stream, rayon's
//! `par_iter` inside a continuation) and through nested continuations, it has the caller's trace
//! id and sampling decision and the caller's active span as its parent, with its op, its name
//! (after the fn's path) and the data of the thread it ran on.

use std::sync::mpsc;
use std::time::Duration;

use futures_util::StreamExt as _;
use sentry::protocol::SpanStatus;
use traced_spawn::{traced_spawn, Builder, TraceContext};
use traced_spawn_tests::{
    assert_all_linked, assert_chain, assert_linked, capture, event_trace, in_request, in_span,
    on_local_set, on_worker, rate, sampled, tx_trace, BotError,
};

// std threads: `#[traced_spawn]` on sync fns.

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
    let tx = captured.only("linking::generate");
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
    let cont = tx_trace(captured.only("linking::generate"));
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
    assert_chain(&captured, "request", "linking::outer", 4);
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
    let cont = tx_trace(captured.only("linking::generate"));
    assert_eq!(cont.parent_span_id, Some(request.span_id));
}

#[test]
fn no_active_span_continues_the_scope_trace() {
    let captured = capture(sampled(), || {
        sentry::capture_message("caller error", sentry::Level::Error);
        generate("q".into()).join().unwrap().unwrap();
    });
    let caller_event = event_trace(captured.events()[0]);
    let cont = tx_trace(captured.only("linking::generate"));
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
    for name in ["linking::Bot::respond", "linking::Bot::respond_shared"] {
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
    assert_all_linked(&captured, "request", "linking::count", 100);
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
    captured.only("linking::Worker::process");
    captured.only("<linking::Worker as linking::Job>::run_job");
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
    captured.only("<linking::Daily as linking::Report>::report");
    captured.only("<linking::Weekly as linking::Report>::report");
}

/// `#[traced_spawn]` on async fns: tokio tasks, spawned from a worker of a multi-thread runtime,
/// continue the caller's trace.
mod tasks {
    use std::time::Duration;

    use sentry::protocol::SpanStatus;
    use traced_spawn::traced_spawn;
    use traced_spawn_tests::{
        assert_all_linked, assert_chain, capture, event_trace, in_request, in_span, on_worker,
        sampled, tx_trace,
    };

    #[traced_spawn]
    async fn generate(question: String) -> Result<usize, String> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        if question.is_empty() {
            return Err("empty question".to_owned());
        }
        Ok(question.len())
    }

    #[test]
    fn continues_the_callers_transaction() {
        let captured = capture(sampled(), || {
            on_worker(async {
                let tx = sentry::start_transaction(sentry::TransactionContext::new(
                    "request",
                    "http.server",
                ));
                let handle = in_span(&tx, || generate("why?".into()));
                assert_eq!(handle.await.unwrap(), Ok(4));
                tx.finish();
            });
        });
        let request = tx_trace(captured.only("request"));
        let cont = tx_trace(captured.only("linking::tasks::generate"));
        assert_eq!(cont.trace_id, request.trace_id);
        assert_eq!(cont.parent_span_id, Some(request.span_id));
        assert_eq!(cont.op.as_deref(), Some("task"));
        assert_eq!(cont.status, Some(SpanStatus::Ok));
        assert!(cont.data.contains_key("thread.id"));
        assert!(cont.data["thread.name"]
            .as_str()
            .unwrap()
            .starts_with("tokio-"));
        assert!(cont.data[traced_spawn::data::QUEUE_DELAY_MS]
            .as_f64()
            .is_some());
    }

    #[test]
    fn parent_is_the_active_child_span() {
        let captured = capture(sampled(), || {
            on_worker(async {
                let tx = sentry::start_transaction(sentry::TransactionContext::new(
                    "request",
                    "http.server",
                ));
                let child = tx.start_child("llm", "prepare");
                let handle = in_span(&child, || generate("q".into()));
                handle.await.unwrap().unwrap();
                child.finish();
                tx.finish();
            });
        });
        let request = captured.only("request");
        let child = request
            .spans
            .iter()
            .find(|s| s.op.as_deref() == Some("llm"))
            .unwrap();
        let cont = tx_trace(captured.only("linking::tasks::generate"));
        assert_eq!(cont.trace_id, tx_trace(request).trace_id);
        assert_eq!(cont.parent_span_id, Some(child.span_id));
    }

    #[test]
    fn spawned_at_call_time_not_at_first_poll() {
        let captured = capture(sampled(), || {
            on_worker(async {
                let (tx_done, rx_done) = tokio::sync::oneshot::channel();
                let handle = in_request("request", |_| notify(tx_done));
                // The handle is never awaited before the body has run.
                tokio::time::timeout(Duration::from_secs(5), rx_done)
                    .await
                    .unwrap()
                    .unwrap();
                handle.await.unwrap();
            });
        });
        assert_eq!(captured.named("linking::tasks::notify").len(), 1);
    }

    #[traced_spawn]
    async fn notify(done: tokio::sync::oneshot::Sender<()>) {
        let _ = done.send(());
    }

    #[traced_spawn]
    async fn outer(depth: u32) -> u32 {
        if depth == 0 {
            return 0;
        }
        1 + outer(depth - 1).await.unwrap()
    }

    #[test]
    fn nested_spawns_chain_parent_to_child() {
        let captured = capture(sampled(), || {
            on_worker(async {
                let handle = in_request("request", |_| outer(3));
                assert_eq!(handle.await.unwrap(), 3);
            });
        });
        assert_chain(&captured, "request", "linking::tasks::outer", 4);
    }

    #[traced_spawn]
    async fn report_error() {
        sentry::capture_message("inside the body", sentry::Level::Error);
    }

    #[test]
    fn unsampled_parent_sends_no_continuation_but_errors_link() {
        let mut expected = None;
        let captured = capture(sampled(), || {
            expected = Some(on_worker(async {
                let mut ctx = sentry::TransactionContext::new("request", "http.server");
                ctx.set_sampled(false);
                let tx = sentry::start_transaction(ctx);
                in_span(&tx, report_error).await.unwrap();
                let trace = tx.get_trace_context();
                tx.finish();
                (trace.trace_id, trace.span_id)
            }));
        });
        let (trace_id, span_id) = expected.unwrap();
        assert!(captured.transactions().is_empty());
        let event = event_trace(captured.events()[0]);
        assert_eq!(event.trace_id, trace_id);
        assert_eq!(event.span_id, span_id);
    }

    #[test]
    fn no_client_runs_the_plain_body() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(async {
            tokio::spawn(async { generate("four".into()).await.unwrap() })
                .await
                .unwrap()
        });
        assert_eq!(out, Ok(4));
    }

    #[traced_spawn]
    async fn count(n: usize) -> usize {
        tokio::task::yield_now().await;
        n
    }

    #[test]
    fn a_thousand_tasks_from_one_parent_all_link() {
        let captured = capture(sampled(), || {
            on_worker(async {
                let handles = in_request("request", |_| (0..1000).map(count).collect::<Vec<_>>());
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await.unwrap();
                }
                assert_eq!(sum, (0..1000).sum::<usize>());
            });
        });
        assert_all_linked(&captured, "request", "linking::tasks::count", 1000);
    }
}

// tokio's blocking pool, a `LocalSet`, rayon's pool.

#[traced_spawn(blocking)]
fn query(sql: &'static str) -> Result<usize, std::io::Error> {
    std::thread::sleep(Duration::from_millis(2));
    if sql.is_empty() {
        return Err(std::io::Error::other("empty query"));
    }
    Ok(sql.len())
}

#[test]
fn blocking_pool_continues_the_trace() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let handle = in_request("request", |_| query("select 1"));
            assert_eq!(handle.await.unwrap().unwrap(), 8);
        });
    });
    let cont = assert_linked(&captured, "linking::query");
    assert_eq!(cont.op.as_deref(), Some("task.blocking"));
    assert_eq!(cont.status, Some(SpanStatus::Ok));
    assert!(cont.data["thread.name"]
        .as_str()
        .unwrap()
        .starts_with("tokio-"));
}

#[traced_spawn(local)]
async fn render(shared: std::rc::Rc<String>) -> usize {
    tokio::task::yield_now().await;
    shared.len()
}

#[test]
fn local_set_continues_the_trace() {
    let captured = capture(sampled(), || {
        on_local_set(async {
            let handle = in_request("request", |_| render(std::rc::Rc::new("abc".into())));
            assert_eq!(handle.await.unwrap(), 3);
        });
    });
    let cont = assert_linked(&captured, "linking::render");
    assert_eq!(cont.op.as_deref(), Some("task.local"));
    assert_eq!(cont.status, Some(SpanStatus::Ok));
}

#[traced_spawn(rayon)]
fn index(items: Vec<u32>) -> u32 {
    items.iter().sum()
}

#[test]
fn rayon_pool_continues_the_trace() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            assert_eq!(index(vec![1, 2, 3]).join().unwrap(), 6);
        });
    });
    let cont = assert_linked(&captured, "linking::index");
    assert_eq!(cont.op.as_deref(), Some("task.rayon"));
    assert_eq!(cont.status, Some(SpanStatus::Ok));
}

#[test]
fn rayon_handle_can_be_awaited() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let handle = in_request("request", |_| index(vec![4, 5]));
            assert_eq!(handle.await.unwrap(), 9);
        });
    });
    assert_linked(&captured, "linking::index");
}

/// A custom spawner: the `spawner` option on a type of the user's that implements `Spawn`.
mod custom_spawner {
    use std::sync::mpsc;
    use std::sync::{Mutex, OnceLock};

    use traced_spawn::{traced_spawn, Spawn};
    use traced_spawn_tests::{capture, in_request, sampled, tx_trace};

    /// A fixed pool of two worker threads fed through a channel: the kind of home-grown executor the
    /// `spawner` option is for.
    struct Pool;

    type Job = Box<dyn FnOnce() + Send>;

    fn pool() -> &'static Mutex<mpsc::Sender<Job>> {
        static POOL: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
        POOL.get_or_init(|| {
            let (send, recv) = mpsc::channel::<Job>();
            let recv = std::sync::Arc::new(Mutex::new(recv));
            for n in 0..2 {
                let recv = recv.clone();
                std::thread::Builder::new()
                    .name(format!("pool-{n}"))
                    .spawn(move || loop {
                        let job = recv.lock().unwrap().recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    })
                    .unwrap();
            }
            Mutex::new(send)
        })
    }

    impl Spawn for Pool {
        type Handle<R: Send + 'static> = mpsc::Receiver<R>;

        fn spawn<R: Send + 'static>(
            &self,
            job: impl FnOnce() -> R + Send + 'static,
        ) -> mpsc::Receiver<R> {
            let (send, recv) = mpsc::channel();
            pool()
                .lock()
                .unwrap()
                .send(Box::new(move || {
                    let _ = send.send(job());
                }))
                .unwrap();
            recv
        }
    }

    #[traced_spawn(spawner = Pool)]
    fn on_pool(n: u32) -> u32 {
        sentry::configure_scope(|scope| scope.set_tag("n", n));
        n * 2
    }

    #[test]
    fn custom_spawner_continues_the_trace() {
        let captured = capture(sampled(), || {
            in_request("request", |_| {
                let handles: Vec<_> = (0..8).map(on_pool).collect();
                let outs: Vec<u32> = handles.into_iter().map(|h| h.recv().unwrap()).collect();
                assert_eq!(outs, [0, 2, 4, 6, 8, 10, 12, 14]);
            });
        });
        let request = tx_trace(captured.only("request"));
        let conts = captured.named("linking::custom_spawner::on_pool");
        assert_eq!(conts.len(), 8);
        let mut tags: Vec<u32> = conts
            .iter()
            .map(|tx| {
                let t = tx_trace(tx);
                assert_eq!(t.trace_id, request.trace_id);
                assert_eq!(t.parent_span_id, Some(request.span_id));
                assert_eq!(t.op.as_deref(), Some("task"));
                assert!(t.data["thread.name"].as_str().unwrap().starts_with("pool-"));
                tx.tags["n"].parse().unwrap()
            })
            .collect();
        tags.sort();
        assert_eq!(
            tags,
            [0, 1, 2, 3, 4, 5, 6, 7],
            "each job's scope is its own"
        );
    }
}

/// Executors as values: a runtime's `Handle` passed as a parameter, a pool held by a service, a
/// pool in a static.
mod spawner_values {
    use std::sync::{Arc, LazyLock};

    use traced_spawn::traced_spawn;
    use traced_spawn_tests::{capture, in_request, sampled, tx_trace};

    #[traced_spawn(spawner = runtime)]
    async fn on_runtime(runtime: tokio::runtime::Handle, n: u32) -> u32 {
        tokio::task::yield_now().await;
        n + 1
    }

    struct Service {
        pool: Arc<rayon::ThreadPool>,
    }

    impl Service {
        #[traced_spawn(spawner = self.pool.clone() as Arc<rayon::ThreadPool>)]
        fn render(self: Arc<Self>, n: u32) -> u32 {
            n * 3
        }
    }

    static POOL: LazyLock<rayon::ThreadPool> = LazyLock::new(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "static-pool".into())
            .build()
            .unwrap()
    });

    #[traced_spawn(spawner = POOL as rayon::ThreadPool)]
    fn on_static_pool(n: u32) -> String {
        format!("{n}:{}", std::thread::current().name().unwrap_or(""))
    }

    #[test]
    fn a_spawner_value_is_evaluated_at_the_call_and_continues_the_trace() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let service = Arc::new(Service {
            pool: Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .unwrap(),
            ),
        });
        let captured = capture(sampled(), || {
            in_request("request", |_| {
                // From a plain thread, onto the runtime through its handle.
                let task = on_runtime(runtime.handle().clone(), 1);
                assert_eq!(runtime.block_on(task).unwrap(), 2);
                assert_eq!(service.clone().render(2).join().unwrap(), 6);
                assert_eq!(on_static_pool(3).join().unwrap(), "3:static-pool");
            });
        });
        let request = tx_trace(captured.only("request"));
        for (name, op) in [
            ("linking::spawner_values::on_runtime", "task"),
            ("linking::spawner_values::Service::render", "task"),
            ("linking::spawner_values::on_static_pool", "task"),
        ] {
            let trace = tx_trace(captured.only(name));
            assert_eq!(trace.trace_id, request.trace_id, "{name}");
            assert_eq!(trace.parent_span_id, Some(request.span_id), "{name}");
            assert_eq!(trace.op.as_deref(), Some(op), "{name}");
        }
    }

    #[test]
    fn builder_spawns_on_a_value() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let captured = capture(sampled(), || {
            in_request("request", |_| {
                let task = traced_spawn::Builder::new("on.handle")
                    .spawn_future_on(runtime.handle(), async { 5 });
                assert_eq!(runtime.block_on(task).unwrap(), 5);
                let job = traced_spawn::Builder::new("on.pool").spawn_on(&pool, || 6);
                assert_eq!(job.join().unwrap(), 6);
            });
        });
        let request = tx_trace(captured.only("request"));
        for name in ["on.handle", "on.pool"] {
            let trace = tx_trace(captured.only(name));
            assert_eq!(trace.trace_id, request.trace_id, "{name}");
            assert_eq!(trace.parent_span_id, Some(request.span_id), "{name}");
        }
    }
}

// Fan-out, where users spawn: traced futures handed back unspawned (`future`) for a `JoinSet`,
// child spans for awaited fan-out (`child`), a stream as one continuation, and rayon's `par_iter`
// inside a continuation.

#[traced_spawn(future)]
async fn fetch_page(n: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    n
}

#[test]
fn a_join_set_of_traced_futures_sends_one_continuation_each_under_the_caller() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "request",
                "http.server",
            ));
            let mut set = tokio::task::JoinSet::new();
            in_span(&tx, || {
                for n in 0..20 {
                    // The context is captured here, at the call; the set spawns it.
                    set.spawn(fetch_page(n));
                }
            });
            let mut sum = 0;
            while let Some(page) = set.join_next().await {
                sum += page.unwrap();
            }
            assert_eq!(sum, (0..20).sum::<u32>());
            tx.finish();
        });
    });
    let request = tx_trace(captured.only("request"));
    let pages = captured.named("linking::fetch_page");
    assert_eq!(pages.len(), 20);
    for page in pages {
        let page = tx_trace(page);
        assert_eq!(page.trace_id, request.trace_id);
        assert_eq!(page.parent_span_id, Some(request.span_id));
        assert_eq!(page.op.as_deref(), Some("task"));
        assert_eq!(page.status, Some(SpanStatus::Ok));
    }
}

#[traced_spawn(child)]
async fn summarize(n: u32) -> Result<u32, String> {
    sentry::configure_scope(|scope| scope.set_tag("part", n));
    if n % 10 == 9 {
        return Err(format!("part {n} failed"));
    }
    Ok(n)
}

#[test]
fn child_fan_out_of_fifty_sends_one_transaction_with_fifty_spans() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "request",
                "http.server",
            ));
            let handles: Vec<_> = in_span(&tx, || (0..50).map(summarize).collect());
            let mut failed = 0;
            for handle in handles {
                failed += usize::from(handle.await.unwrap().is_err());
            }
            assert_eq!(failed, 5);
            tx.finish();
        });
    });
    assert_eq!(captured.transactions().len(), 1, "one transaction, not 51");
    let request = captured.only("request");
    let trace = tx_trace(request);
    let parts: Vec<_> = request
        .spans
        .iter()
        .filter(|span| span.description.as_deref() == Some("linking::summarize"))
        .collect();
    assert_eq!(parts.len(), 50);
    for span in &parts {
        assert_eq!(span.trace_id, trace.trace_id);
        assert_eq!(span.parent_span_id, Some(trace.span_id));
        assert_eq!(span.op.as_deref(), Some("task"));
        assert!(span.data.contains_key(traced_spawn::data::THREAD_ID));
    }
    let failed = parts
        .iter()
        .filter(|span| span.status == Some(SpanStatus::InternalError))
        .count();
    let ok = parts
        .iter()
        .filter(|span| span.status == Some(SpanStatus::Ok))
        .count();
    assert_eq!((ok, failed), (45, 5));
    // Each child ran in its own fork: the caller's scope did not get their tags.
    assert!(!request.tags.contains_key("part"));
}

#[traced_spawn(child)]
fn late_part() -> u32 {
    std::thread::sleep(Duration::from_millis(50));
    1
}

/// The documented limit of `child`, measured: a child that finishes after its transaction was
/// sent is dropped by sentry.
#[test]
fn a_child_that_outlives_its_transaction_is_lost() {
    let mut handle = None;
    let captured = capture(sampled(), || {
        in_request("request", |_| handle = Some(late_part()));
        assert_eq!(handle.take().unwrap().join().unwrap(), 1);
    });
    let request = captured.only("request");
    assert!(
        request.spans.is_empty(),
        "the late child is not in the transaction: {:?}",
        request.spans
    );
    assert_eq!(captured.transactions().len(), 1);
}

#[test]
fn a_stream_is_one_continuation_cancelled_when_dropped_half_way() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let tx = sentry::start_transaction(sentry::TransactionContext::new(
                "request",
                "http.server",
            ));
            let (full, half) = in_span(&tx, || {
                let full = traced_spawn::Builder::new("export::all")
                    .bind_stream(futures_util::stream::iter(0..10));
                let half = traced_spawn::Builder::new("export::half")
                    .bind_stream(futures_util::stream::iter(0..10));
                (full, half)
            });
            assert_eq!(full.collect::<Vec<_>>().await.len(), 10);
            let taken: Vec<_> = half.take(5).collect().await;
            assert_eq!(taken, [0, 1, 2, 3, 4]);
            tx.finish();
        });
    });
    let request = tx_trace(captured.only("request"));
    let all = tx_trace(captured.only("export::all"));
    let half = tx_trace(captured.only("export::half"));
    for cont in [all, half] {
        assert_eq!(cont.trace_id, request.trace_id);
        assert_eq!(cont.parent_span_id, Some(request.span_id));
    }
    assert_eq!(all.status, Some(SpanStatus::Ok));
    assert_eq!(half.status, Some(SpanStatus::Cancelled));
}

/// Starts a span under the current hub's active span, as instrumented library code does.
fn traced_item(n: &u32) -> u32 {
    if let Some(parent) = sentry::configure_scope(|scope| scope.get_span()) {
        parent
            .start_child("index.item", &format!("item {n}"))
            .finish();
    }
    n * 2
}

#[traced_spawn]
fn index_plain(items: Vec<u32>) -> u32 {
    use rayon::prelude::*;
    items.par_iter().map(traced_item).sum()
}

#[traced_spawn]
fn index_in_trace(items: Vec<u32>) -> u32 {
    use rayon::prelude::*;
    items
        .par_iter()
        .map(traced_spawn::in_current_trace(traced_item))
        .sum()
}

#[test]
fn rayon_par_iter_spans_are_lost_without_in_current_trace_and_kept_with_it() {
    let items: Vec<u32> = (0..64).collect();
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            assert_eq!(index_plain(items.clone()).join().unwrap(), 4032);
            assert_eq!(index_in_trace(items.clone()).join().unwrap(), 4032);
        });
    });
    let plain = captured.only("linking::index_plain");
    let kept = captured.only("linking::index_in_trace");
    // On rayon's workers (the calling thread may run a few items itself, under the
    // continuation): most items' spans are lost.
    let plain_items = plain
        .spans
        .iter()
        .filter(|s| s.op.as_deref() == Some("index.item"))
        .count();
    assert!(
        plain_items < items.len(),
        "{plain_items} of {} kept",
        items.len()
    );
    let kept_items: Vec<_> = kept
        .spans
        .iter()
        .filter(|s| s.op.as_deref() == Some("index.item"))
        .collect();
    assert_eq!(kept_items.len(), items.len());
    for span in kept_items {
        assert_eq!(span.parent_span_id, Some(tx_trace(kept).span_id));
    }
}

// Without the macro: `TraceContext::run` in a consumer, `Builder` with tracing disabled.

#[test]
fn job_queue_consumer_continues_the_producers_trace() {
    let captured = capture(sampled(), || {
        let (send, recv) = mpsc::channel::<(TraceContext, u32)>();
        // A plain consumer thread: no hub of its own, no client.
        let consumer = std::thread::spawn(move || {
            let mut done = 0;
            for (ctx, job) in recv {
                ctx.run("jobs::process", "queue.process", || {
                    sentry::configure_scope(|scope| scope.set_tag("job", job));
                });
                done += 1;
            }
            done
        });
        in_request("request", |_| {
            for job in 0..3 {
                send.send((TraceContext::capture(), job)).unwrap();
            }
        });
        drop(send);
        assert_eq!(consumer.join().unwrap(), 3);
    });
    let request = tx_trace(captured.only("request"));
    let jobs = captured.named("jobs::process");
    assert_eq!(jobs.len(), 3);
    for job in jobs {
        let t = tx_trace(job);
        assert_eq!(t.trace_id, request.trace_id);
        assert_eq!(t.parent_span_id, Some(request.span_id));
        assert_eq!(t.op.as_deref(), Some("queue.process"));
        assert!(job.tags.contains_key("job"));
    }
}

#[test]
fn tracing_disabled_forks_the_hub_without_a_transaction() {
    let mut options = rate(0.0);
    options.traces_sampling_strategy = sentry::TracesSamplingStrategy::Disabled;
    let captured = capture(options, || {
        Builder::new("work")
            .spawn_thread(|| sentry::capture_message("from the body", sentry::Level::Error))
            .join()
            .unwrap();
        sentry::capture_message("from the caller", sentry::Level::Error);
    });
    assert!(captured.transactions().is_empty());
    let events = captured.events();
    assert_eq!(events.len(), 2, "the body reports to the caller's client");
    assert_eq!(
        event_trace(events[0]).trace_id,
        event_trace(events[1]).trace_id
    );
}
