//! The model the printer shows: one [`Trace`] per trace id, its transactions, spans and error
//! events arranged parent -> child, and the Sentry logs captured inside it.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::time::{Duration, SystemTime};

use sentry::protocol::{Context, Event, Log, LogLevel, SpanId, SpanStatus, TraceId, Value};

use crate::data::{ORIGIN, QUEUE_DELAY_MS as QUEUE_DELAY_KEY, THREAD_NAME as THREAD_NAME_KEY};

use super::waterfall::Layout;

/// One trace: its transactions, spans and error events arranged parent -> child, and its logs.
///
/// ```
/// let reporter = traced_spawn::console::init();
/// sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task")).finish();
/// let trace = &reporter.traces()[0];
/// assert_eq!(trace.roots.len(), 1);
/// assert_eq!(trace.roots[0].name, "job");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The trace id shared by every node.
    pub trace_id: TraceId,
    /// Nodes whose parent was not received: normally the one transaction that started the trace
    /// (or, for a trace continued from another service, the first one received). A continuation
    /// that shows up here is *not* linked to its caller.
    pub roots: Vec<Node>,
    /// The Sentry logs of the trace (sentry's `logger_*!` macros, sentry-tracing's `LogLayer`),
    /// in time order.
    pub logs: Vec<LogLine>,
}

impl Trace {
    /// Every node of the trace, depth first.
    ///
    /// ```
    /// let reporter = traced_spawn::console::init();
    /// let tx = sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task"));
    /// tx.finish();
    /// let traces = reporter.traces();
    /// assert_eq!(traces[0].nodes().count(), 1);
    /// ```
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.roots.iter().flat_map(Node::nodes)
    }

    /// The trace as text: the tree on the left, the time waterfall on the right, then its logs,
    /// laid out for `layout` (see [`Layout`]). [`Display`](fmt::Display) renders it with
    /// [`Layout::from_env`] without colour.
    ///
    /// ```
    /// use traced_spawn::console::Layout;
    ///
    /// let reporter = traced_spawn::console::init();
    /// sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task")).finish();
    /// let text = reporter.traces()[0].render(&Layout::new(80, false));
    /// assert!(text.lines().all(|line| line.chars().count() <= 80));
    /// assert!(text.contains("└─ tx   queue.task  job"));
    /// ```
    pub fn render(&self, layout: &Layout) -> String {
        layout.render(self)
    }
}

/// Prints the trace as a tree with a time waterfall beside it, one line per node, then its logs
/// (here 100 columns wide):
///
/// ```text
/// trace 5cda84d74d7601661ce0bb738a0cc5af                                                   0 … 33.7 ms
/// └─ tx   http.server  POST /slack/commands  0.9 ms  ok            │█                                │
///    ├─ tx   thread  quickstart::send_generated_response  32.5 ms… │ ████████████████████████████████│
///    │  └─ span llm.generate  generate answer  32.2 ms  ok         │ ████████████████████████████████│
///    └─ tx   task  quickstart::show_typing  11.5 ms  ok            │  ████████████                   │
/// logs                                                             │                                 │
///      +20.1 ms  info   posting the answer                         │                   •             │
/// ```
///
/// ```
/// let reporter = traced_spawn::console::init();
/// sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task")).finish();
/// let text = reporter.traces()[0].to_string();
/// assert!(text.starts_with("trace "));
/// assert!(text.contains("└─ tx   queue.task  job"));
/// ```
impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut layout = Layout::from_env();
        layout.color = false;
        f.write_str(&layout.render(self))
    }
}

/// What a [`Node`] is.
///
/// ```
/// use traced_spawn::console::NodeKind;
///
/// let reporter = traced_spawn::console::init();
/// sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task")).finish();
/// assert_eq!(reporter.traces()[0].roots[0].kind, NodeKind::Transaction);
/// ```
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
///
/// ```
/// let reporter = traced_spawn::console::init();
/// let tx = sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task"));
/// tx.set_status(sentry::protocol::SpanStatus::Ok);
/// tx.finish();
/// let node = &reporter.traces()[0].roots[0];
/// assert_eq!((node.op.as_str(), node.name.as_str()), ("queue.task", "job"));
/// assert_eq!(node.status, Some(sentry::protocol::SpanStatus::Ok));
/// assert!(node.duration_ms.is_some());
/// ```
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
    /// The transaction's `origin` ([`ORIGIN`] for a continuation).
    pub origin: Option<String>,
    /// The [`THREAD_NAME_KEY`] data of a continuation transaction.
    pub thread_name: Option<String>,
    /// The [`QUEUE_DELAY_KEY`] data of a continuation transaction.
    pub queue_delay_ms: Option<f64>,
    /// The nodes under this one, ordered by start time.
    pub children: Vec<Node>,
}

impl Node {
    /// Whether this is a continuation transaction started by `traced-spawn`.
    ///
    /// ```
    /// let reporter = traced_spawn::console::init();
    /// traced_spawn::Builder::new("job").run(|| ());
    /// let traces = reporter.traces();
    /// assert!(traces[0].roots[0].is_continuation());
    /// ```
    pub fn is_continuation(&self) -> bool {
        self.kind == NodeKind::Transaction && self.origin.as_deref() == Some(ORIGIN)
    }

    /// This node and every node under it, depth first.
    ///
    /// ```
    /// let reporter = traced_spawn::console::init();
    /// let tx = sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task"));
    /// tx.start_child("db", "select").finish();
    /// tx.finish();
    /// assert_eq!(reporter.traces()[0].roots[0].nodes().count(), 2);
    /// ```
    pub fn nodes(&self) -> Box<dyn Iterator<Item = &Node> + '_> {
        Box::new(std::iter::once(self).chain(self.children.iter().flat_map(Node::nodes)))
    }

    /// When the node ended (its start for an error event).
    pub(crate) fn end(&self) -> SystemTime {
        let duration = Duration::from_secs_f64(self.duration_ms.unwrap_or(0.0).max(0.0) / 1000.0);
        self.start + duration
    }

    /// The node's text in the tree, without the branch prefix: what it is (kind, op, name,
    /// duration, status), and the details a narrow line can do without (thread, queue delay).
    pub(crate) fn line(&self) -> (String, String) {
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
        let mut details = String::new();
        if let Some(thread_name) = &self.thread_name {
            let _ = write!(details, "  {THREAD_NAME_KEY}={thread_name}");
        }
        if let Some(delay) = self.queue_delay_ms {
            let _ = write!(details, "  queued {delay:.1} ms");
        }
        (line, details)
    }
}

/// One Sentry log of a trace.
///
/// ```
/// let reporter = traced_spawn::console::init();
/// let tx = sentry::start_transaction(sentry::TransactionContext::new("job", "queue.task"));
/// sentry::configure_scope(|scope| scope.set_span(Some(tx.clone().into())));
/// sentry::logger_info!("step {} done", 1);
/// sentry::configure_scope(|scope| scope.set_span(None));
/// tx.finish();
/// let log = &reporter.traces()[0].logs[0];
/// assert_eq!((log.level.as_str(), log.body.as_str()), ("info", "step 1 done"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// The level: `trace`, `debug`, `info`, `warn`, `error` or `fatal`.
    pub level: String,
    /// The message.
    pub body: String,
    /// When it was logged.
    pub timestamp: SystemTime,
    /// The span that was active where it was logged (its `parent_span_id` attribute), if any.
    pub span_id: Option<SpanId>,
}

impl LogLine {
    fn from_log(log: &Log) -> LogLine {
        let span_id = ["sentry.trace.parent_span_id", "parent_span_id", "span_id"]
            .iter()
            .find_map(|key| log.attributes.get(*key))
            .and_then(|value| value.0.as_str())
            .and_then(|id| id.parse().ok());
        LogLine {
            level: level_name(log.level).to_owned(),
            body: log.body.clone(),
            timestamp: log.timestamp,
            span_id,
        }
    }
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
        LogLevel::Fatal => "fatal",
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

pub(crate) fn trace_context(
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

pub(crate) fn build_traces(
    transactions: &[sentry::protocol::Transaction<'static>],
    events: &[Event<'static>],
    logs: &[Log],
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
                    .get(THREAD_NAME_KEY)
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                queue_delay_ms: number(QUEUE_DELAY_KEY),
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
    // Logs go under their trace; a trace with logs only (no transaction finished yet) is shown too.
    let mut logs_by_trace: HashMap<TraceId, Vec<LogLine>> = HashMap::new();
    for log in logs {
        let Some(trace_id) = log.trace_id else {
            continue;
        };
        if !by_trace.contains_key(&trace_id) && !logs_by_trace.contains_key(&trace_id) {
            order.push(trace_id);
        }
        logs_by_trace
            .entry(trace_id)
            .or_default()
            .push(LogLine::from_log(log));
    }
    order
        .into_iter()
        .map(|trace_id| {
            let mut logs = logs_by_trace.remove(&trace_id).unwrap_or_default();
            logs.sort_by_key(|log| log.timestamp);
            Trace {
                trace_id,
                roots: arrange(by_trace.remove(&trace_id).unwrap_or_default()),
                logs,
            }
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
