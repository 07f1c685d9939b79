//! What the variants run against: a caller hub (with or without a client, with a sampled or an
//! unsampled active transaction), a transport that counts what it is handed and otherwise discards
//! it, and the body every spawn runs.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sentry::protocol::{SpanId, TraceId};
use sentry::{ClientOptions, Hub, Transaction, TransactionContext};

/// A DSN that is never contacted: the client needs one to be enabled; the transport is ours.
const DSN: &str = "https://public@sentry.invalid/1";

pub use traced_spawn_tests::bench::CountingTransport;

/// How the caller's client samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// No client bound to the caller's hub.
    NoClient,
    /// A client with `traces_sample_rate(1.0)` and a parent transaction started with
    /// `set_sampled(false)`: the parent's decision (not the rate) drops the trace.
    UnsampledParent,
    /// A client with `traces_sample_rate(1.0)` and a sampled parent transaction.
    Sampled,
}

/// A caller: a hub whose scope has an active transaction bound as its span, like a request
/// handler under sentry's tower layer.
pub struct Caller {
    pub hub: Arc<Hub>,
    pub transport: Option<Arc<CountingTransport>>,
    pub parent: Transaction,
}

impl Caller {
    pub fn new(sampling: Sampling, keep_envelopes: bool) -> Caller {
        let (client, transport) = match sampling {
            Sampling::NoClient => (None, None),
            Sampling::UnsampledParent | Sampling::Sampled => {
                let transport = Arc::new(CountingTransport::new(keep_envelopes));
                let mut options = ClientOptions::new().traces_sample_rate(1.0);
                options.dsn = Some(DSN.parse().expect("valid DSN"));
                options.transport = Some(Arc::new(transport.clone()));
                (Some(Arc::new(options.into())), Some(transport))
            }
        };
        let hub = Arc::new(Hub::new(client, Default::default()));
        let mut ctx = TransactionContext::new("bench.request", "http.server");
        if sampling == Sampling::UnsampledParent {
            ctx.set_sampled(false);
        }
        let parent = hub.start_transaction(ctx);
        hub.configure_scope(|scope| scope.set_span(Some(parent.clone().into())));
        Caller {
            hub,
            transport,
            parent,
        }
    }

    /// Transactions the transport received so far (0 without a client).
    pub fn transactions(&self) -> usize {
        self.transport.as_ref().map_or(0, |t| t.transactions())
    }

    pub fn trace_id(&self) -> TraceId {
        self.parent.get_trace_context().trace_id
    }

    pub fn span_id(&self) -> SpanId {
        self.parent.get_trace_context().span_id
    }
}

/// The active span seen inside a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
}

static OBSERVE: AtomicBool = AtomicBool::new(false);
static OBSERVED: Mutex<Vec<Option<Seen>>> = Mutex::new(Vec::new());

/// Starts (or stops) recording, inside every body, the active span the body runs under. Off in
/// timed rounds.
pub fn observe(on: bool) {
    OBSERVED.lock().unwrap().clear();
    OBSERVE.store(on, Ordering::SeqCst);
}

/// What the bodies saw since [`observe`] was turned on.
pub fn observed() -> Vec<Option<Seen>> {
    std::mem::take(&mut *OBSERVED.lock().unwrap())
}

/// The body of every spawned thread and task, whatever the variant: trivial, so the table shows
/// the cost of spawning and tracing, not of work.
#[inline]
pub fn work(x: u64) -> u64 {
    if OBSERVE.load(Ordering::Relaxed) {
        let seen = sentry::configure_scope(|scope| scope.get_span()).map(|span| {
            let ctx = span.get_trace_context();
            Seen {
                trace_id: ctx.trace_id,
                span_id: ctx.span_id,
                parent_span_id: ctx.parent_span_id,
            }
        });
        OBSERVED.lock().unwrap().push(seen);
    }
    black_box(x)
}
