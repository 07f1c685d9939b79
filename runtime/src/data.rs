//! What a continuation records on its transaction (or span): data keys and its origin.

/// Data key of the time, in milliseconds (a float), between the call that captured the context and
/// the start of the body: time spent queued behind other work of the executor. For a context
/// rebuilt from headers or serde, it counts from the rebuild.
///
/// ```
/// # use traced_spawn::__private::doc::sent;
/// let trace = sent(|| traced_spawn::Builder::new("job").spawn_thread(|| ()).join().unwrap());
/// let queued_ms = trace.data[traced_spawn::data::QUEUE_DELAY_MS].as_f64().unwrap();
/// assert!(queued_ms >= 0.0);
/// ```
pub const QUEUE_DELAY_MS: &str = "spawn.queue_delay_ms";
/// Data key of the executing thread's id: the number of its `ThreadId`, as a string.
///
/// ```
/// # use traced_spawn::__private::doc::sent;
/// let trace = sent(|| traced_spawn::Builder::new("job").spawn_thread(|| ()).join().unwrap());
/// let id: u64 = trace.data[traced_spawn::data::THREAD_ID].as_str().unwrap().parse().unwrap();
/// assert!(id > 0);
/// ```
pub const THREAD_ID: &str = "thread.id";
/// Data key of the executing thread's name, when it has one.
///
/// ```
/// # use traced_spawn::__private::doc::sent;
/// let trace = sent(|| {
///     let job = traced_spawn::Builder::new("job").thread_name("reply-worker");
///     job.spawn_thread(|| ()).join().unwrap()
/// });
/// assert_eq!(trace.data[traced_spawn::data::THREAD_NAME], "reply-worker");
/// ```
pub const THREAD_NAME: &str = "thread.name";
/// `origin` of every continuation transaction: Sentry shows it as automatic instrumentation.
///
/// ```
/// # use traced_spawn::__private::doc::sent;
/// let trace = sent(|| traced_spawn::Builder::new("job").spawn_thread(|| ()).join().unwrap());
/// assert_eq!(trace.origin.as_deref(), Some(traced_spawn::data::ORIGIN));
/// ```
pub const ORIGIN: &str = "auto.function.traced_spawn";
