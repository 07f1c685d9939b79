//! Every executor keeps the trace: tokio's blocking pool, a `LocalSet`, rayon's pool, a custom
//! spawner; and `err` captures the error as an event linked to the continuation.

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sentry::protocol::SpanStatus;
use traced_spawn::{traced_spawn, Spawn};
use traced_spawn_tests::{
    capture, event_trace, in_request, on_worker, sampled, tx_trace, Captured,
};

/// The request transaction and the one continuation named `name` are linked parent to child.
fn assert_linked(captured: &Captured, name: &str) -> sentry::protocol::TraceContext {
    let request = tx_trace(captured.only("request"));
    let cont = tx_trace(captured.only(name)).clone();
    assert_eq!(cont.trace_id, request.trace_id, "{name}: trace id");
    assert_eq!(cont.parent_span_id, Some(request.span_id), "{name}: parent");
    cont
}

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
    let cont = assert_linked(&captured, "executors::query");
    assert_eq!(cont.op.as_deref(), Some("task.blocking"));
    assert_eq!(cont.status, Some(SpanStatus::Ok));
    assert!(cont.data["thread.name"]
        .as_str()
        .unwrap()
        .starts_with("tokio-"));
}

#[test]
fn blocking_err_and_panic_fail() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let failed = in_request("request", |_| query(""));
            assert!(failed.await.unwrap().is_err());
        });
    });
    assert_eq!(
        assert_linked(&captured, "executors::query").status,
        Some(SpanStatus::InternalError)
    );
}

/// Runs `future` on a `LocalSet` of a current-thread runtime.
fn on_local_set<F: std::future::Future>(future: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, future)
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
    let cont = assert_linked(&captured, "executors::render");
    assert_eq!(cont.op.as_deref(), Some("task.local"));
    assert_eq!(cont.status, Some(SpanStatus::Ok));
}

#[traced_spawn(local)]
async fn local_forever() {
    std::future::pending::<()>().await;
}

#[test]
fn local_abort_cancels() {
    let captured = capture(sampled(), || {
        on_local_set(async {
            let handle = in_request("request", |_| local_forever());
            tokio::task::yield_now().await;
            handle.abort();
            assert!(handle.await.unwrap_err().is_cancelled());
        });
    });
    assert_eq!(
        assert_linked(&captured, "executors::local_forever").status,
        Some(SpanStatus::Cancelled)
    );
}

#[traced_spawn(rayon)]
fn index(items: Vec<u32>) -> u32 {
    items.iter().sum()
}

#[traced_spawn(rayon)]
fn index_panics() -> u32 {
    panic!("index corrupt")
}

#[test]
fn rayon_pool_continues_the_trace() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            assert_eq!(index(vec![1, 2, 3]).join().unwrap(), 6);
        });
    });
    let cont = assert_linked(&captured, "executors::index");
    assert_eq!(cont.op.as_deref(), Some("task.rayon"));
    assert_eq!(cont.status, Some(SpanStatus::Ok));
}

#[test]
fn rayon_panic_reaches_the_handle_and_fails() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            let payload = index_panics().join().unwrap_err();
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"index corrupt"));
        });
    });
    let cont = assert_linked(&captured, "executors::index_panics");
    assert_eq!(cont.status, Some(SpanStatus::InternalError));
    let event = event_trace(captured.events()[0]);
    assert_eq!(event.span_id, cont.span_id);
}

#[test]
fn rayon_handle_can_be_awaited() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let handle = in_request("request", |_| index(vec![4, 5]));
            assert_eq!(handle.await.unwrap(), 9);
        });
    });
    assert_linked(&captured, "executors::index");
}

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
    let conts = captured.named("executors::on_pool");
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

#[derive(Debug)]
struct EngineError {
    source: std::io::Error,
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("answer generation failed")
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[traced_spawn(err)]
fn generate() -> Result<String, EngineError> {
    Err(EngineError {
        source: std::io::Error::other("model timed out"),
    })
}

#[traced_spawn(err)]
async fn generate_async() -> Result<String, EngineError> {
    Err(EngineError {
        source: std::io::Error::other("model timed out"),
    })
}

fn assert_error_event(captured: &Captured, name: &str) {
    let cont = assert_linked(captured, name);
    assert_eq!(cont.status, Some(SpanStatus::InternalError));
    let events = captured.events();
    assert_eq!(events.len(), 1, "one error event");
    let event = events[0];
    assert_eq!(event_trace(event).trace_id, cont.trace_id);
    assert_eq!(event_trace(event).span_id, cont.span_id);
    // The whole chain, outermost error last (sentry's convention).
    let values: Vec<_> = event
        .exception
        .values
        .iter()
        .map(|e| e.value.as_deref())
        .collect();
    assert_eq!(
        values,
        [Some("model timed out"), Some("answer generation failed")]
    );
    assert_eq!(event.exception.values[1].ty, "EngineError");
}

#[test]
fn err_option_captures_the_error_chain_on_a_thread() {
    let captured = capture(sampled(), || {
        in_request("request", |_| assert!(generate().join().unwrap().is_err()));
    });
    assert_error_event(&captured, "executors::generate");
}

#[test]
fn err_option_captures_the_error_chain_on_a_task() {
    let captured = capture(sampled(), || {
        on_worker(async {
            let handle = in_request("request", |_| generate_async());
            assert!(handle.await.unwrap().is_err());
        });
    });
    assert_error_event(&captured, "executors::generate_async");
}

#[traced_spawn(err)]
fn generate_string_error() -> Result<(), String> {
    Err("quota exhausted".into())
}

#[test]
fn err_option_with_a_non_error_type_reports_its_type_and_debug_text() {
    let captured = capture(sampled(), || {
        in_request("request", |_| {
            assert!(generate_string_error().join().unwrap().is_err())
        });
    });
    let cont = assert_linked(&captured, "executors::generate_string_error");
    let event = captured.events()[0];
    let exception = &event.exception.values[0];
    assert_eq!(exception.ty, "alloc::string::String");
    assert_eq!(exception.value.as_deref(), Some("\"quota exhausted\""));
    assert_eq!(event_trace(event).span_id, cont.span_id);
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
            ("executors::spawner_values::on_runtime", "task"),
            ("executors::spawner_values::Service::render", "task"),
            ("executors::spawner_values::on_static_pool", "task"),
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
