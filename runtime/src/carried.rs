//! What a trace carries besides its ids (its dynamic sampling context, third-party baggage,
//! `tracestate`), and how it reaches contexts captured inside a continuation.
//!
//! sentry 0.49 has no place for an incoming dynamic sampling context: its `TransactionContext`
//! and `Scope` carry none, and a scope has no storage of its own that stays out of events. So a
//! continuation keeps what its trace carries ([`Propagated`]) itself, and *carries* it on the
//! thread that runs its body, for as long as the body runs (a job) or is polled (a future), in a
//! thread-local slot: [`TraceContext::capture`] there takes it along, so whatever the body
//! spawns with this crate (or sends as headers) sends the frozen context onwards, and each
//! continuation of it carries it in turn. No lock, no map, nothing global: a capture pays one
//! thread-local read, plus one reference count when the body belongs to a remote trace.
//!
//! Where it stops: code that runs outside the body's own run or poll. A hub forked by hand inside
//! the body (`Hub::run(Arc::new(Hub::new_from_top(..)), ..)` on the same thread) is inside it; a
//! thread or task spawned by hand from the body (`std::thread::spawn`, `tokio::spawn` of a future
//! bound with `bind_hub`) runs its code elsewhere, and a context captured there sends this
//! process's own dynamic sampling context instead of the frozen one (trace id, parent span and
//! sampling decision are still the caller's: they come from the scope).
//!
//! [`TraceContext::capture`]: crate::TraceContext::capture

use std::cell::Cell;
use std::sync::Arc;

use sentry::protocol::{OrganizationId, TraceId};

/// The dynamic sampling context of a trace, as far as this process knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dsc {
    /// `sentry-*` members received from upstream: the head is elsewhere; forwarded unchanged.
    Frozen(Box<[Box<str>]>),
    /// No Sentry SDK upstream set one: it is written from this process's client when sent, with
    /// the head transaction's name when it is known here.
    Head { transaction: Option<Box<str>> },
}

/// The org id an incoming trace claims (`sentry-org_id` in its baggage).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum IncomingOrg {
    /// No `sentry-org_id`, or one that is not a number (as sentry reads it).
    Absent,
    Id(OrganizationId),
    /// The baggage was rejected whole: its org id cannot be trusted to be absent.
    Unreadable,
}

/// What a trace carries across processes besides its ids.
#[derive(Debug, Clone)]
pub(crate) struct Propagated {
    /// The trace this belongs to: it is used for that trace only.
    pub(crate) trace_id: TraceId,
    pub(crate) dsc: Dsc,
    /// Third-party baggage members, in wire form, in order.
    pub(crate) third_party: Box<[Box<str>]>,
    /// The `tracestate` list that came with the `traceparent`.
    pub(crate) tracestate: Option<Box<str>>,
    pub(crate) incoming_org: IncomingOrg,
}

thread_local! {
    /// What the continuation whose body runs on this thread carries, if anything.
    static CARRIED: Cell<Option<Arc<Propagated>>> = const { Cell::new(None) };
}

/// What the continuation running on this thread carries, if it carries anything (whatever its
/// trace: a user compares trace ids).
pub(crate) fn carried() -> Option<Arc<Propagated>> {
    CARRIED.with(|slot| {
        let current = slot.take();
        let out = current.clone();
        slot.set(current);
        out
    })
}

/// Carries `propagated` on this thread until dropped, then what was carried before.
pub(crate) struct Carrying(Option<Option<Arc<Propagated>>>);

impl Carrying {
    /// Nothing is written for a continuation that carries nothing: a context captured in its
    /// body compares trace ids before it uses what an outer continuation carries.
    pub(crate) fn begin(propagated: Option<&Arc<Propagated>>) -> Carrying {
        Carrying(propagated.map(|p| CARRIED.replace(Some(p.clone()))))
    }
}

impl Drop for Carrying {
    fn drop(&mut self) {
        if let Some(previous) = self.0.take() {
            // Restored even while unwinding: the slot outlives the body that panicked.
            let _ = CARRIED.try_with(|slot| slot.set(previous));
        }
    }
}
