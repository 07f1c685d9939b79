//! A console reporter for developing with `traced-spawn`: see your traces as a tree on stdout,
//! without a Sentry account.
//!
//! [`init`] binds a Sentry client whose transport is a [`ConsoleTransport`]: it keeps every
//! transaction and error event the client sends, and [`Reporter::print_trees`] prints them as one
//! tree per trace. Transactions and their child spans are linked parent -> child by
//! `parent_span_id`, across transactions of the same trace, so a continuation transaction started by
//! `#[traced_spawn]` appears under the span that spawned it.
//!
//! ```
//! let reporter = traced_spawn_examples::init();
//!
//! let tx = sentry::start_transaction(sentry::TransactionContext::new("GET /", "http.server"));
//! sentry::configure_scope(|scope| scope.set_span(Some(tx.clone().into())));
//! let handle = traced_spawn::Builder::new("render").spawn_thread(|| 2 + 2);
//! sentry::configure_scope(|scope| scope.set_span(None));
//! tx.finish();
//! assert_eq!(handle.join().unwrap(), 4);
//!
//! let traces = reporter.print_trees();
//! assert_eq!(traces.len(), 1);
//! assert_eq!(traces[0].roots[0].children[0].name, "render");
//! ```

#![warn(missing_docs)]

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use sentry::protocol::{Context, EnvelopeItem, Event, SpanId, SpanStatus, TraceId, Value};
use sentry::types::Dsn;
use sentry::{ClientInitGuard, ClientOptions, Envelope};

/// DSN the console client is configured with when `SENTRY_DSN` is not set. A client needs a DSN to
/// be enabled; nothing is ever sent to this address (the `.invalid` top-level domain never resolves).
pub const PLACEHOLDER_DSN: &str = "https://public@console.invalid/0";

/// A [`sentry::Transport`] that keeps transactions and error events in memory, for printing.
///
/// Other envelope items (sessions, client reports, attachments) are ignored.
///
/// ```
/// use std::sync::Arc;
/// use traced_spawn_examples::{ConsoleTransport, PLACEHOLDER_DSN};
///
/// let transport = Arc::new(ConsoleTransport::new());
/// let mut options = sentry::ClientOptions::new()
///     .traces_sample_rate(1.0)
///     .transport(transport.clone());
/// options.dsn = Some(PLACEHOLDER_DSN.parse().unwrap());
/// let _guard = sentry::init(options);
/// sentry::capture_message("hello", sentry::Level::Error);
/// assert_eq!(transport.events().len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct ConsoleTransport {
    received: Mutex<Received>,
}

#[derive(Debug, Default)]
struct Received {
    transactions: Vec<sentry::protocol::Transaction<'static>>,
    events: Vec<Event<'static>>,
}

impl ConsoleTransport {
    /// An empty transport.
    ///
    /// ```
    /// let transport = traced_spawn_examples::ConsoleTransport::new();
    /// assert!(transport.transactions().is_empty());
    /// ```
    pub fn new() -> ConsoleTransport {
        ConsoleTransport::default()
    }

    fn received(&self) -> MutexGuard<'_, Received> {
        // A panic while holding the lock cannot leave `Received` half-updated: keep going.
        self.received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every transaction received so far, in the order they finished.
    ///
    /// ```
    /// let transport = traced_spawn_examples::ConsoleTransport::new();
    /// assert_eq!(transport.transactions().len(), 0);
    /// ```
    pub fn transactions(&self) -> Vec<sentry::protocol::Transaction<'static>> {
        self.received().transactions.clone()
    }

    /// Every error event received so far, in the order they were captured.
    ///
    /// ```
    /// let transport = traced_spawn_examples::ConsoleTransport::new();
    /// assert_eq!(transport.events().len(), 0);
    /// ```
    pub fn events(&self) -> Vec<Event<'static>> {
        self.received().events.clone()
    }

    /// Builds one [`Trace`] per trace id from what was received, ordered by start time.
    ///
    /// ```
    /// let transport = traced_spawn_examples::ConsoleTransport::new();
    /// assert!(transport.traces().is_empty());
    /// ```
    pub fn traces(&self) -> Vec<Trace> {
        let received = self.received();
        build_traces(&received.transactions, &received.events)
    }
}

impl sentry::Transport for ConsoleTransport {
    fn send_envelope(&self, envelope: Envelope) {
        let mut received = self.received();
        for item in envelope.into_items() {
            match item {
                EnvelopeItem::Transaction(tx) => received.transactions.push(*tx),
                EnvelopeItem::Event(event) => received.events.push(*event),
                _ => {}
            }
        }
    }
}

/// The client bound by [`init`]: keep it alive for as long as the program reports, then call
/// [`Reporter::print_trees`].
///
/// Dropping it closes the client, like dropping the guard of `sentry::init`.
#[must_use = "the client is closed when the reporter is dropped"]
pub struct Reporter {
    transport: Arc<ConsoleTransport>,
    guard: ClientInitGuard,
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

/// Binds a Sentry client on the current hub that records into a [`ConsoleTransport`], with every
/// transaction sampled (`traces_sample_rate` 1.0).
///
/// Call it first thing in `main`, on the main thread, before starting threads or a tokio runtime
/// (like `sentry::init`): threads started later inherit the client.
///
/// With `SENTRY_DSN` set, the client is configured with that DSN but still reports to the console:
/// this crate has no HTTP transport yet (sending to Sentry comes with sentry's `reqwest` transport).
/// A note saying so is printed to stderr.
///
/// ```
/// let reporter = traced_spawn_examples::init();
/// assert!(reporter.traces().is_empty());
/// ```
pub fn init() -> Reporter {
    let dsn = match std::env::var("SENTRY_DSN") {
        Ok(value) if !value.trim().is_empty() => {
            eprintln!(
                "note: SENTRY_DSN is set, but this build has no HTTP transport: reporting to the \
                 console anyway (sending to Sentry comes with sentry's `reqwest` transport)"
            );
            value.trim().parse::<Dsn>().unwrap_or_else(|err| {
                eprintln!("note: SENTRY_DSN is not a valid DSN ({err}), ignoring it");
                placeholder_dsn()
            })
        }
        _ => placeholder_dsn(),
    };
    let transport = Arc::new(ConsoleTransport::new());
    // `ClientOptions` is `#[non_exhaustive]`: set fields on a value, no struct literal.
    let mut options = ClientOptions::new()
        .traces_sample_rate(1.0)
        .transport(transport.clone());
    options.dsn = Some(dsn);
    let guard = sentry::init(options);
    Reporter { transport, guard }
}

fn placeholder_dsn() -> Dsn {
    PLACEHOLDER_DSN
        .parse()
        .expect("PLACEHOLDER_DSN is a valid DSN")
}

impl Reporter {
    /// The transport the client records into.
    ///
    /// ```
    /// let reporter = traced_spawn_examples::init();
    /// assert!(reporter.transport().events().is_empty());
    /// ```
    pub fn transport(&self) -> &ConsoleTransport {
        &self.transport
    }

    /// Flushes the client, then returns the traces received so far (see [`ConsoleTransport::traces`]).
    ///
    /// ```
    /// let reporter = traced_spawn_examples::init();
    /// assert!(reporter.traces().is_empty());
    /// ```
    pub fn traces(&self) -> Vec<Trace> {
        self.guard.flush(Some(Duration::from_secs(2)));
        self.transport.traces()
    }

    /// Flushes the client, prints every trace received so far as a tree on stdout and returns
    /// them, so a program can check what was linked.
    ///
    /// Call it once the work is done (its join handles joined): a transaction is printed only once
    /// it has finished.
    ///
    /// ```
    /// let reporter = traced_spawn_examples::init();
    /// let traces = reporter.print_trees(); // nothing finished yet: prints nothing
    /// assert!(traces.is_empty());
    /// ```
    pub fn print_trees(&self) -> Vec<Trace> {
        let traces = self.traces();
        for trace in &traces {
            print!("{trace}");
        }
        traces
    }
}

/// One trace: its transactions, spans and error events arranged parent -> child.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The trace id shared by every node.
    pub trace_id: TraceId,
    /// Nodes whose parent was not received: normally the one transaction that started the trace.
    /// A continuation that shows up here is *not* linked to its caller.
    pub roots: Vec<Node>,
}

impl Trace {
    /// Every node of the trace, depth first.
    ///
    /// ```
    /// let reporter = traced_spawn_examples::init();
    /// let tx = sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task"));
    /// tx.finish();
    /// let traces = reporter.traces();
    /// assert_eq!(traces[0].nodes().count(), 1);
    /// ```
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.roots.iter().flat_map(Node::nodes)
    }
}

/// Prints the trace as a tree, one line per node:
///
/// ```text
/// trace 0f8e…
/// └─ tx   http.server  POST /slack/commands  0.4 ms  ok
///    └─ tx   thread  quickstart::send_generated_response  31.2 ms  ok  thread.name=send_generated_response  queued 0.1 ms
///       └─ span llm.generate  generate answer  30.1 ms  ok
/// ```
impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "trace {}", self.trace_id)?;
        for (i, root) in self.roots.iter().enumerate() {
            root.write_tree(f, "", i + 1 == self.roots.len())?;
        }
        Ok(())
    }
}

/// What a [`Node`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A transaction (the request, or a continuation).
    Transaction,
    /// A child span of a transaction.
    Span,
    /// An error event, placed under the span that was active when it was captured.
    Error,
}

/// One line of a trace tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Transaction, span or error event.
    pub kind: NodeKind,
    /// The span id (for an error event: the span it was captured under).
    pub span_id: SpanId,
    /// The parent span id, if any.
    pub parent_span_id: Option<SpanId>,
    /// The op (for an error event: its level).
    pub op: String,
    /// The transaction name, the span description, or the error message.
    pub name: String,
    /// When the node started (for an error event: when it was captured).
    pub start: SystemTime,
    /// Duration in milliseconds; `None` for an error event.
    pub duration_ms: Option<f64>,
    /// The status, if one was set.
    pub status: Option<SpanStatus>,
    /// The transaction's `origin` (`auto.function.traced_spawn` for a continuation).
    pub origin: Option<String>,
    /// The `thread.name` data of a continuation transaction.
    pub thread_name: Option<String>,
    /// The `spawn.queue_delay_ms` data of a continuation transaction.
    pub queue_delay_ms: Option<f64>,
    /// The nodes under this one, ordered by start time.
    pub children: Vec<Node>,
}

impl Node {
    /// Whether this is a continuation transaction started by `traced-spawn`.
    ///
    /// ```
    /// let reporter = traced_spawn_examples::init();
    /// traced_spawn::Builder::new("job").run(|| ());
    /// let traces = reporter.traces();
    /// assert!(traces[0].roots[0].is_continuation());
    /// ```
    pub fn is_continuation(&self) -> bool {
        self.kind == NodeKind::Transaction && self.origin.as_deref() == Some(traced_spawn::ORIGIN)
    }

    /// This node and every node under it, depth first.
    ///
    /// ```
    /// let reporter = traced_spawn_examples::init();
    /// let tx = sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task"));
    /// tx.start_child("db", "select").finish();
    /// tx.finish();
    /// assert_eq!(reporter.traces()[0].roots[0].nodes().count(), 2);
    /// ```
    pub fn nodes(&self) -> Box<dyn Iterator<Item = &Node> + '_> {
        Box::new(std::iter::once(self).chain(self.children.iter().flat_map(Node::nodes)))
    }

    fn line(&self) -> String {
        let mut line = match self.kind {
            NodeKind::Transaction => format!("tx   {}  {}", self.op, self.name),
            NodeKind::Span => format!("span {}  {}", self.op, self.name),
            NodeKind::Error => format!("{}: {}", self.op, self.name),
        };
        if let Some(ms) = self.duration_ms {
            let _ = write!(line, "  {ms:.1} ms");
        }
        if let Some(status) = &self.status {
            let _ = write!(line, "  {status}");
        }
        if let Some(thread_name) = &self.thread_name {
            let _ = write!(line, "  {}={thread_name}", traced_spawn::THREAD_NAME_KEY);
        }
        if let Some(delay) = self.queue_delay_ms {
            let _ = write!(line, "  queued {delay:.1} ms");
        }
        line
    }

    fn write_tree(&self, f: &mut fmt::Formatter<'_>, prefix: &str, last: bool) -> fmt::Result {
        let branch = if last { "└─ " } else { "├─ " };
        writeln!(f, "{prefix}{branch}{}", self.line())?;
        let prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
        for (i, child) in self.children.iter().enumerate() {
            child.write_tree(f, &prefix, i + 1 == self.children.len())?;
        }
        Ok(())
    }
}

fn duration_ms(start: SystemTime, end: Option<SystemTime>) -> Option<f64> {
    let end = end?;
    Some(
        end.duration_since(start)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
            * 1000.0,
    )
}

fn trace_context(
    contexts: &sentry::protocol::Map<String, Context>,
) -> Option<&sentry::protocol::TraceContext> {
    match contexts.get("trace") {
        Some(Context::Trace(trace)) => Some(trace),
        _ => None,
    }
}

fn event_message(event: &Event<'static>) -> String {
    if let Some(exception) = event.exception.values.last() {
        return match &exception.value {
            Some(value) => format!("{}: {value}", exception.ty),
            None => exception.ty.clone(),
        };
    }
    event
        .message
        .clone()
        .or_else(|| event.logentry.as_ref().map(|entry| entry.message.clone()))
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// A node before it is placed in its tree: the node and the trace it belongs to.
struct Loose {
    trace_id: TraceId,
    node: Node,
}

fn build_traces(
    transactions: &[sentry::protocol::Transaction<'static>],
    events: &[Event<'static>],
) -> Vec<Trace> {
    let mut loose = Vec::new();
    for tx in transactions {
        let Some(trace) = trace_context(&tx.contexts) else {
            continue;
        };
        let number = |key: &str| trace.data.get(key).and_then(Value::as_f64);
        loose.push(Loose {
            trace_id: trace.trace_id,
            node: Node {
                kind: NodeKind::Transaction,
                span_id: trace.span_id,
                parent_span_id: trace.parent_span_id,
                op: trace.op.clone().unwrap_or_default(),
                name: tx.name.clone().unwrap_or_default(),
                start: tx.start_timestamp,
                duration_ms: duration_ms(tx.start_timestamp, tx.timestamp),
                status: trace.status,
                origin: trace.origin.clone(),
                thread_name: trace
                    .data
                    .get(traced_spawn::THREAD_NAME_KEY)
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                queue_delay_ms: number(traced_spawn::QUEUE_DELAY_KEY),
                children: Vec::new(),
            },
        });
        for span in &tx.spans {
            loose.push(Loose {
                trace_id: span.trace_id,
                node: Node {
                    kind: NodeKind::Span,
                    span_id: span.span_id,
                    parent_span_id: span.parent_span_id,
                    op: span.op.clone().unwrap_or_default(),
                    name: span.description.clone().unwrap_or_default(),
                    start: span.start_timestamp,
                    duration_ms: duration_ms(span.start_timestamp, span.timestamp),
                    status: span.status,
                    origin: None,
                    thread_name: None,
                    queue_delay_ms: None,
                    children: Vec::new(),
                },
            });
        }
    }
    for event in events {
        let Some(trace) = trace_context(&event.contexts) else {
            continue;
        };
        loose.push(Loose {
            trace_id: trace.trace_id,
            node: Node {
                kind: NodeKind::Error,
                span_id: trace.span_id,
                // An error hangs under the span it was captured in.
                parent_span_id: Some(trace.span_id),
                op: event.level.to_string(),
                name: event_message(event),
                start: event.timestamp,
                duration_ms: None,
                status: None,
                origin: None,
                thread_name: None,
                queue_delay_ms: None,
                children: Vec::new(),
            },
        });
    }

    // Group by trace, keeping the order in which traces first started.
    loose.sort_by_key(|item| item.node.start);
    let mut order: Vec<TraceId> = Vec::new();
    let mut by_trace: HashMap<TraceId, Vec<Node>> = HashMap::new();
    for item in loose {
        if !by_trace.contains_key(&item.trace_id) {
            order.push(item.trace_id);
        }
        by_trace.entry(item.trace_id).or_default().push(item.node);
    }
    order
        .into_iter()
        .map(|trace_id| Trace {
            trace_id,
            roots: arrange(by_trace.remove(&trace_id).unwrap_or_default()),
        })
        .collect()
}

/// Arranges the nodes of one trace (sorted by start time) into trees by `parent_span_id`.
fn arrange(nodes: Vec<Node>) -> Vec<Node> {
    // Only spans and transactions can be parents; error events are leaves.
    let parents: HashMap<SpanId, usize> = nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| node.kind != NodeKind::Error)
        .map(|(i, node)| (node.span_id, i))
        .collect();
    let parent_of: Vec<Option<usize>> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            node.parent_span_id
                .and_then(|id| parents.get(&id).copied())
                .filter(|&parent| parent != i)
        })
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut roots = Vec::new();
    for (i, parent) in parent_of.iter().enumerate() {
        match parent {
            Some(parent) => children[*parent].push(i),
            None => roots.push(i),
        }
    }
    let mut slots: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    fn take(i: usize, slots: &mut [Option<Node>], children: &[Vec<usize>]) -> Option<Node> {
        let mut node = slots[i].take()?;
        node.children = children[i]
            .iter()
            .filter_map(|&child| take(child, slots, children))
            .collect();
        Some(node)
    }
    roots
        .into_iter()
        .filter_map(|root| take(root, &mut slots, &children))
        .collect()
}
