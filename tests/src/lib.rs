//! Test support for `traced-spawn`: a client on sentry's own test transport, and readers for the
//! envelopes it captured.

use sentry::integrations::panic::PanicIntegration;
use sentry::protocol::{Context, EnvelopeItem, Event, TraceContext, Transaction};
use sentry::{ClientOptions, Hub};

/// Everything a client sent while a test ran.
#[derive(Debug)]
pub struct Captured {
    /// The envelopes, in the order they were sent.
    pub envelopes: Vec<sentry::Envelope>,
}

/// Client options with every transaction sampled and the panic integration installed.
pub fn sampled() -> ClientOptions {
    rate(1.0)
}

/// Client options with the given `traces_sample_rate` and the panic integration installed.
pub fn rate(traces_sample_rate: f32) -> ClientOptions {
    ClientOptions::new()
        .traces_sample_rate(traces_sample_rate)
        .add_integration(PanicIntegration::new())
}

/// Runs `f` with a fresh hub bound to a client on sentry's test transport and returns what it sent.
pub fn capture(options: ClientOptions, f: impl FnOnce()) -> Captured {
    Captured {
        envelopes: sentry::test::with_captured_envelopes_options(f, options),
    }
}

impl Captured {
    /// Every transaction sent.
    pub fn transactions(&self) -> Vec<&Transaction<'static>> {
        self.items()
            .filter_map(|item| match item {
                EnvelopeItem::Transaction(tx) => Some(&**tx),
                _ => None,
            })
            .collect()
    }

    /// Every error event sent.
    pub fn events(&self) -> Vec<&Event<'static>> {
        self.items()
            .filter_map(|item| match item {
                EnvelopeItem::Event(event) => Some(&**event),
                _ => None,
            })
            .collect()
    }

    /// Every transaction named `name`.
    pub fn named(&self, name: &str) -> Vec<&Transaction<'static>> {
        self.transactions()
            .into_iter()
            .filter(|tx| tx.name.as_deref() == Some(name))
            .collect()
    }

    /// The one transaction named `name`; panics, listing what was sent, when there is not exactly
    /// one.
    pub fn only(&self, name: &str) -> &Transaction<'static> {
        let found = self.named(name);
        assert_eq!(
            found.len(),
            1,
            "expected one transaction named {name:?}; sent: {:?}",
            self.transactions()
                .iter()
                .map(|tx| tx.name.as_deref())
                .collect::<Vec<_>>()
        );
        found[0]
    }

    fn items(&self) -> impl Iterator<Item = &EnvelopeItem> {
        self.envelopes.iter().flat_map(|envelope| envelope.items())
    }
}

/// The trace context of a transaction or an event.
pub fn trace(contexts: &sentry::protocol::Map<String, Context>) -> &TraceContext {
    match contexts.get("trace") {
        Some(Context::Trace(trace)) => trace,
        other => panic!("no trace context: {other:?}"),
    }
}

/// The trace context of a transaction.
pub fn tx_trace<'a>(tx: &'a Transaction<'static>) -> &'a TraceContext {
    trace(&tx.contexts)
}

/// The trace context of an event.
pub fn event_trace<'a>(event: &'a Event<'static>) -> &'a TraceContext {
    trace(&event.contexts)
}

/// Runs `f` inside a transaction named `name` (op `http.server`) bound as the active span, like a
/// request handler under sentry's tower layer; the transaction finishes after `f`.
pub fn in_request<R>(name: &str, f: impl FnOnce(&sentry::Transaction) -> R) -> R {
    let tx = sentry::start_transaction(sentry::TransactionContext::new(name, "http.server"));
    let out = in_span(&tx, || f(&tx));
    tx.finish();
    out
}

/// Runs `f` with `span` bound as the active span of the current hub, then restores the previous one.
pub fn in_span<R>(
    span: &(impl Clone + Into<sentry::TransactionOrSpan>),
    f: impl FnOnce() -> R,
) -> R {
    let previous = sentry::configure_scope(|scope| {
        let previous = scope.get_span();
        scope.set_span(Some(span.clone().into()));
        previous
    });
    let out = f();
    sentry::configure_scope(|scope| scope.set_span(previous));
    out
}

/// A multi-thread tokio runtime (2 workers) that runs `f` as a task spawned on a worker, with the
/// current hub bound to it (as sentry's tower layer does for a request).
pub fn on_worker<F>(f: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    use sentry::SentryFutureExt;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let hub = Hub::current();
    let out = rt.block_on(async move {
        tokio::spawn(f.bind_hub(hub))
            .await
            .expect("caller task panicked")
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    out
}

/// Asserts that the transactions named `name` form a chain of `depth` nested continuations under
/// the transaction named `root`: each one's parent is the level above, all in the root's trace.
pub fn assert_chain(captured: &Captured, root: &str, name: &str, depth: usize) {
    let root = tx_trace(captured.only(root));
    let chain = captured.named(name);
    assert_eq!(chain.len(), depth, "{name}: one transaction per level");
    let mut parent = root.span_id;
    for level in 0..depth {
        let next = chain
            .iter()
            .map(|tx| tx_trace(tx))
            .find(|t| t.parent_span_id == Some(parent))
            .unwrap_or_else(|| panic!("{name}: no continuation of level {level}"));
        assert_eq!(next.trace_id, root.trace_id);
        parent = next.span_id;
    }
}

/// Asserts that exactly `count` transactions named `name` were sent, each a continuation of the
/// transaction named `root` (same trace, parent = its span) with status `ok` and its own span id.
pub fn assert_all_linked(captured: &Captured, root: &str, name: &str, count: usize) {
    let root = tx_trace(captured.only(root));
    let children = captured.named(name);
    assert_eq!(
        children.len(),
        count,
        "{name}: every continuation delivered"
    );
    let mut span_ids = std::collections::HashSet::new();
    for tx in children {
        let t = tx_trace(tx);
        assert_eq!(t.trace_id, root.trace_id);
        assert_eq!(t.parent_span_id, Some(root.span_id));
        assert_eq!(t.status, Some(sentry::protocol::SpanStatus::Ok));
        assert!(span_ids.insert(t.span_id), "{name}: span ids are unique");
    }
}

/// The example program `name`, built next to the running test's `deps/` directory
/// (`target/<profile>/examples/<name>`), or the path in the environment variable `override_var`.
/// `cargo test --workspace` builds the examples before it runs the tests.
pub fn example_binary(name: &str, override_var: &str) -> std::path::PathBuf {
    if let Some(path) = std::env::var_os(override_var) {
        return std::path::PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("path of the test binary");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p traced-spawn-examples --example {name}` \
         (`cargo test --workspace` builds it), or set {override_var}",
        bin.display()
    );
    bin
}
