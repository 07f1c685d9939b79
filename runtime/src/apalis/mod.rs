//! apalis tasks in the caller's trace, in the shape of Sentry's Queues module (feature `apalis`).
//!
//! apalis' own `SentryLayer` starts a fresh trace for every task. This module keeps the trace of
//! the code that pushed the task, across processes, over any apalis backend:
//!
//! - **Push**: [`Queue::push`] (or [`Queue::push_task`]) opens a `queue.publish` span under the
//!   caller's active span and puts the trace into the task's metadata (the propagation headers of
//!   that span and the push time, as [`MessageTrace`]); a failed push finishes the span as
//!   `internal_error` and returns the backend's error.
//! - **Work**: [`Queue::layer`] is a tower [`Layer`] for apalis workers. Each call of the worker's
//!   service becomes a continuation of the publish span, on a forked hub, holding a
//!   `queue.process` span with the retry count, the receive latency (from the push time) and the
//!   status of the task's result. Put it after apalis' retry layer
//!   (`.retry(..).layer(queue.layer())`) and every attempt is a continuation of the same publish
//!   span.
//!
//! The retry count is the number of earlier attempts: apalis' attempt counter. A backend records
//! an attempt when its worker reports the result, so an attempt whose worker died (killed, out of
//! memory) is not counted: apalis-redis re-enqueues such a task with its old count. Where that
//! matters, give the layer a delivery counter kept in the backend's store
//! ([`TraceTasks::count_deliveries`]): the retry count is then the larger of the two.
//!
//! ```
//! use std::sync::Arc;
//! use apalis_core::backend::memory::MemoryStorage;
//! use apalis_core::layers::{Layer, Service};
//! use apalis_core::task::{task_fn::task_fn, Task};
//! use traced_spawn::apalis::Queue;
//!
//! # let transport = sentry::test::TestTransport::new();
//! # let mut options = sentry::ClientOptions::new().traces_sample_rate(1.0);
//! # options.dsn = Some("https://public@sentry.invalid/1".parse().unwrap());
//! # options.transport = Some(Arc::new(transport.clone()));
//! # let hub = Arc::new(sentry::Hub::new(Some(Arc::new(options.into())), Default::default()));
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # sentry::Hub::run(hub, || rt.block_on(async {
//! let queue = Queue::new("memory", "emails");
//! let mut storage = MemoryStorage::<String>::new();
//!
//! // Producer, inside a request transaction.
//! let request = sentry::start_transaction(sentry::TransactionContext::new("POST /signup", "http.server"));
//! sentry::configure_scope(|scope| scope.set_span(Some(request.clone().into())));
//! let pushed = queue.push(&mut storage, "ada@example.com".to_owned()).await.unwrap();
//! request.finish();
//!
//! // A worker's service, wrapped by the layer (apalis' WorkerBuilder does this with `.layer(..)`).
//! async fn send_email(to: String) -> String {
//!     format!("sent to {to}")
//! }
//! let mut send = queue.layer().layer(task_fn(send_email));
//! // The task as a worker receives it from the backend, with the metadata of the push.
//! let mut task = Task::new("ada@example.com".to_owned());
//! task.inject_metadata(&pushed.trace).unwrap();
//! send.call(task).await.unwrap();
//! # }));
//! # let txs: Vec<_> = transport.fetch_and_clear_envelopes().iter()
//! #     .flat_map(|e| e.items().cloned().collect::<Vec<_>>())
//! #     .filter_map(|i| match i { sentry::protocol::EnvelopeItem::Transaction(t) => Some(t), _ => None })
//! #     .collect();
//! # assert_eq!(txs.len(), 2);
//! # assert_eq!(txs[0].spans[0].op.as_deref(), Some("queue.publish"));
//! # assert_eq!(txs[1].spans[0].op.as_deref(), Some("queue.process"));
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use apalis_core::backend::{TaskSink, TaskSinkError};
use apalis_core::layers::{Layer, Service};
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::metadata::{Metadata, MetadataStore};
use apalis_core::task::task_id::TaskId;
use apalis_core::task::Task;

use crate::queue::{MessageTrace, Process, Publish};

/// Metadata key of the push time, in milliseconds since the Unix epoch. The propagation headers
/// are stored under their own names (`sentry-trace`, `baggage`).
///
/// ```
/// use apalis_core::task::metadata::{Metadata, MetadataStore};
/// use traced_spawn::apalis::PUBLISHED_AT_KEY;
/// use traced_spawn::queue::MessageTrace;
///
/// let mut store = MetadataStore::new();
/// let trace = MessageTrace { published_at_ms: 42, ..Default::default() };
/// trace.inject(&mut store).unwrap();
/// assert_eq!(store.get(PUBLISHED_AT_KEY), Some("42"));
/// ```
pub const PUBLISHED_AT_KEY: &str = "sentry-published-at-ms";

/// The trace part of a task, in apalis task metadata: each header under its name, the push time
/// under [`PUBLISHED_AT_KEY`]. Injecting replaces earlier values; extracting never fails (missing
/// or malformed values give an empty trace, which the consumer continues as its own scope's).
///
/// ```
/// use apalis_core::task::metadata::{Metadata, MetadataStore};
/// use traced_spawn::queue::MessageTrace;
///
/// let trace = MessageTrace {
///     headers: [("sentry-trace".to_owned(), "0123456789abcdef0123456789abcdef-0123456789abcdef-1".to_owned())].into(),
///     published_at_ms: 1_700_000_000_000,
/// };
/// let mut store = MetadataStore::new();
/// trace.inject(&mut store).unwrap();
/// assert_eq!(MessageTrace::extract(&store).unwrap(), trace);
/// ```
impl Metadata for MessageTrace {
    type Error = std::convert::Infallible;

    fn extract(store: &MetadataStore) -> Result<Self, Self::Error> {
        use crate::header::{BAGGAGE, SENTRY_TRACE, TRACEPARENT, TRACESTATE};
        let headers = [SENTRY_TRACE, BAGGAGE, TRACEPARENT, TRACESTATE]
            .iter()
            .filter_map(|name| Some(((*name).to_owned(), store.get(name)?.to_owned())))
            .collect();
        let published_at_ms = store
            .get(PUBLISHED_AT_KEY)
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0);
        Ok(MessageTrace {
            headers,
            published_at_ms,
        })
    }

    fn inject(&self, store: &mut MetadataStore) -> Result<(), Self::Error> {
        for (name, value) in &self.headers {
            store.remove(name);
            // Cannot fail: the key was just removed.
            let _ = store.insert(name.clone(), value.clone());
        }
        store.remove(PUBLISHED_AT_KEY);
        let _ = store.insert(PUBLISHED_AT_KEY, self.published_at_ms.to_string());
        Ok(())
    }
}

/// A queue of apalis tasks, named as Sentry shows it: `messaging.system` (the backend's engine:
/// `redis`, `postgres`, ...) and `messaging.destination.name` (the queue). Pushes with a
/// `queue.publish` span and gives the worker [`Layer`] that continues the trace.
///
/// ```
/// use traced_spawn::apalis::Queue;
///
/// let queue = Queue::new("redis", "emails");
/// assert_eq!(queue.system(), "redis");
/// assert_eq!(queue.name(), "emails");
/// ```
#[derive(Debug, Clone)]
pub struct Queue {
    system: String,
    name: String,
}

/// What [`Queue::push`] pushed: the task's id (its `messaging.message.id`) and the trace put into
/// its metadata.
///
/// ```
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// use apalis_core::backend::memory::MemoryStorage;
/// use traced_spawn::apalis::Queue;
///
/// let mut storage = MemoryStorage::<u32>::new();
/// let pushed = Queue::new("memory", "numbers").push(&mut storage, 7).await.unwrap();
/// assert!(!pushed.id.to_string().is_empty());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The task's id: the one it was pushed with, or a new random one.
    pub id: TaskId,
    /// The trace in the task's metadata.
    pub trace: MessageTrace,
}

impl Queue {
    /// A queue named `name` on the engine `system`.
    ///
    /// ```
    /// let queue = traced_spawn::apalis::Queue::new("redis", "emails");
    /// # let _ = queue;
    /// ```
    pub fn new(system: impl Into<String>, name: impl Into<String>) -> Queue {
        Queue {
            system: system.into(),
            name: name.into(),
        }
    }

    /// The engine, `messaging.system`.
    ///
    /// ```
    /// assert_eq!(traced_spawn::apalis::Queue::new("redis", "q").system(), "redis");
    /// ```
    pub fn system(&self) -> &str {
        &self.system
    }

    /// The queue, `messaging.destination.name`.
    ///
    /// ```
    /// assert_eq!(traced_spawn::apalis::Queue::new("redis", "q").name(), "q");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Pushes `args` as a new task; see [`Queue::push_task`].
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// use apalis_core::backend::memory::MemoryStorage;
    /// let mut storage = MemoryStorage::<u32>::new();
    /// traced_spawn::apalis::Queue::new("memory", "numbers").push(&mut storage, 7).await.unwrap();
    /// # });
    /// ```
    pub async fn push<B, Args, K>(
        &self,
        sink: &mut B,
        args: Args,
    ) -> Result<Pushed, TaskSinkError<B::Error>>
    where
        B: TaskSink<Args, K>,
    {
        self.push_task(sink, TaskBuilder::new(args).build()).await
    }

    /// Pushes `task` inside a `queue.publish` span with the trace in its metadata. A task without
    /// an id gets a random one first, so that the span and the worker name the same message. The
    /// span's status is `internal_error` when the backend refuses the task.
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// use apalis_core::backend::memory::MemoryStorage;
    /// use apalis_core::task::{builder::TaskBuilder, task_id::TaskId};
    /// let mut storage = MemoryStorage::<u32>::new();
    /// let task = TaskBuilder::new(7).task_id(TaskId::from_string("job-7")).build();
    /// let pushed = traced_spawn::apalis::Queue::new("memory", "numbers")
    ///     .push_task(&mut storage, task)
    ///     .await
    ///     .unwrap();
    /// assert_eq!(pushed.id.to_string(), "job-7");
    /// # });
    /// ```
    pub async fn push_task<B, Args, K>(
        &self,
        sink: &mut B,
        task: Task<Args>,
    ) -> Result<Pushed, TaskSinkError<B::Error>>
    where
        B: TaskSink<Args, K>,
    {
        let id = task.task_id().cloned().unwrap_or_else(|| {
            TaskId::from_string(sentry::protocol::TraceId::default().to_string())
        });
        let publish = Publish::start(&self.system, &self.name, id.to_string());
        let trace = publish.trace().clone();
        let mut builder = task.into_builder().task_id(id.clone());
        builder = builder.metadata(&trace);
        let result = sink.push_task(builder.build()).await;
        publish.finish(&result);
        result.map(|()| Pushed { id, trace })
    }

    /// The tower layer for apalis workers: each task (each attempt) a continuation of its publish
    /// span with a `queue.process` span. The continuation is named after the queue.
    ///
    /// ```
    /// use apalis_core::layers::{Layer, Service};
    /// use apalis_core::task::{task_fn::task_fn, Task};
    ///
    /// async fn double(n: u32) -> u32 {
    ///     n * 2
    /// }
    /// let layer = traced_spawn::apalis::Queue::new("redis", "emails").layer();
    /// let mut service = layer.layer(task_fn(double));
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(service.call(Task::new(1))).unwrap();
    /// ```
    pub fn layer(&self) -> TraceTasks {
        TraceTasks {
            queue: self.clone(),
            deliveries: None,
        }
    }
}

/// A delivery counter of [`TraceTasks::count_deliveries`]: given a task id, counts one more
/// delivery and returns the count (1 the first time), or `None` when it cannot tell.
type Deliveries =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Option<u64>> + Send>> + Send + Sync>;

/// The worker [`Layer`] of [`Queue::layer`].
///
/// ```
/// let layer: traced_spawn::apalis::TraceTasks = traced_spawn::apalis::Queue::new("redis", "q").layer();
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct TraceTasks {
    queue: Queue,
    deliveries: Option<Deliveries>,
}

impl std::fmt::Debug for TraceTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceTasks")
            .field("queue", &self.queue)
            .field("deliveries", &self.deliveries.is_some())
            .finish()
    }
}

impl TraceTasks {
    /// Counts deliveries with `count`, called with the task id before each attempt: it records
    /// one more delivery in a store that outlives the worker (for example `HINCRBY` in the
    /// backend's Redis) and returns the new count. The retry count becomes the larger of apalis'
    /// attempt count and `count - 1`, so a task whose worker died mid-task arrives with retry
    /// count 1. `None` (the store is unreachable) falls back to apalis' count.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::sync::{Arc, Mutex};
    ///
    /// let seen: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    /// let layer = traced_spawn::apalis::Queue::new("redis", "emails")
    ///     .layer()
    ///     .count_deliveries(move |id| {
    ///         let seen = seen.clone();
    ///         async move {
    ///             let mut seen = seen.lock().unwrap();
    ///             let count = seen.entry(id).or_insert(0);
    ///             *count += 1;
    ///             Some(*count)
    ///         }
    ///     });
    /// # let _ = layer;
    /// ```
    pub fn count_deliveries<F, Fut>(mut self, count: F) -> TraceTasks
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<u64>> + Send + 'static,
    {
        self.deliveries = Some(Arc::new(move |id| Box::pin(count(id))));
        self
    }
}

impl<S> Layer<S> for TraceTasks {
    type Service = TraceTasksService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceTasksService {
            queue: self.queue.clone(),
            deliveries: self.deliveries.clone(),
            inner,
        }
    }
}

/// The service [`TraceTasks`] wraps a worker's service in.
///
/// ```
/// use apalis_core::layers::Layer;
///
/// let service: traced_spawn::apalis::TraceTasksService<()> =
///     traced_spawn::apalis::Queue::new("redis", "q").layer().layer(());
/// # let _ = service;
/// ```
#[derive(Clone)]
pub struct TraceTasksService<S> {
    queue: Queue,
    deliveries: Option<Deliveries>,
    inner: S,
}

impl<S: std::fmt::Debug> std::fmt::Debug for TraceTasksService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceTasksService")
            .field("queue", &self.queue)
            .field("deliveries", &self.deliveries.is_some())
            .field("inner", &self.inner)
            .finish()
    }
}

/// The number of earlier attempts: apalis' count, or the counted deliveries before this one.
fn retry_count(attempt: usize, delivered: Option<u64>) -> u64 {
    let attempts = u64::try_from(attempt).unwrap_or(u64::MAX);
    attempts.max(delivered.map_or(0, |count| count.saturating_sub(1)))
}

impl<S, Args> Service<Task<Args>> for TraceTasksService<S>
where
    S: Service<Task<Args>>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, task: Task<Args>) -> Self::Future {
        let trace = MessageTrace::extract(task.metadata()).unwrap_or_else(|e| match e {});
        let id = task.task_id().map(ToString::to_string).unwrap_or_default();
        let attempt = task.attempt();
        let counted = self.deliveries.as_ref().map(|count| count(id.clone()));
        let process = Process::new(&self.queue.system, &self.queue.name, id, &trace);
        let name = self.queue.name.clone();
        let future = self.inner.call(task);
        Box::pin(async move {
            let delivered = match counted {
                Some(counted) => counted.await,
                None => None,
            };
            process
                .retry_count(retry_count(attempt, delivered))
                .bind(name, future)
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_count_is_the_larger_of_attempts_and_earlier_deliveries() {
        assert_eq!(retry_count(0, None), 0);
        assert_eq!(retry_count(2, None), 2);
        assert_eq!(retry_count(0, Some(1)), 0);
        assert_eq!(retry_count(0, Some(2)), 1, "a worker died mid-task");
        assert_eq!(retry_count(1, Some(2)), 1, "a retry of the same delivery");
        assert_eq!(retry_count(0, Some(0)), 0);
    }

    #[test]
    fn a_trace_survives_metadata_with_other_keys() {
        let mut store = MetadataStore::new();
        store.insert("tenant", "acme").unwrap();
        let trace = MessageTrace {
            headers: [("baggage".to_owned(), "sentry-trace_id=1".to_owned())].into(),
            published_at_ms: 5,
        };
        trace.inject(&mut store).unwrap();
        trace.inject(&mut store).unwrap();
        assert_eq!(MessageTrace::extract(&store).unwrap(), trace);
        assert_eq!(store.get("tenant"), Some("acme"));
    }
}
