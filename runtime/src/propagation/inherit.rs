//! What a trace carries besides its ids (its dynamic sampling context, third-party baggage,
//! `tracestate`), and how it reaches contexts captured inside a continuation.
//!
//! sentry 0.49 has no place for an incoming dynamic sampling context: its `TransactionContext`
//! and `Scope` carry none, and a scope has no storage of its own that stays out of events. So the
//! continuation of a remote context *registers* its hub here, and [`TraceContext::capture`]
//! looks the active hub up: a context captured inside the continuation (or inside anything it
//! spawns with this crate, which registers the forked hub in turn) carries the same
//! [`Propagated`] value and sends the frozen context onwards. Hubs forked by other means (e.g.
//! `Hub::new_from_top` by hand) are found by trace id while a continuation of that trace is
//! running.
//!
//! The registry holds weak references: an entry never keeps a hub alive, and it is removed once
//! its hub is gone (swept when entries are added, and when a capture finds nothing). While it is
//! empty, a capture pays one atomic load for it.
//!
//! [`TraceContext::capture`]: crate::TraceContext::capture

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use sentry::protocol::{OrganizationId, TraceId};
use sentry::Hub;

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

struct Entry {
    hub: Weak<Hub>,
    propagated: Arc<Propagated>,
}

#[derive(Default)]
struct Registry {
    /// Keyed by the hub's address; the weak reference keeps the address from being reused while
    /// the entry exists.
    entries: HashMap<usize, Entry>,
    sweep_at: usize,
    misses: usize,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);
/// Number of entries, read without the lock by [`of_hub`].
static ENTRIES: AtomicUsize = AtomicUsize::new(0);

fn with_registry<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut guard = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let registry = guard.get_or_insert_with(Registry::default);
    let out = f(registry);
    ENTRIES.store(registry.entries.len(), Ordering::Release);
    out
}

/// Registers what `hub`'s continuation carries, for contexts captured under it.
pub(crate) fn register(hub: &Arc<Hub>, propagated: Arc<Propagated>) {
    with_registry(|registry| {
        if registry.entries.len() >= registry.sweep_at {
            registry
                .entries
                .retain(|_, entry| entry.hub.strong_count() > 0);
            registry.sweep_at = (registry.entries.len() * 2).max(64);
        }
        registry.entries.insert(
            Arc::as_ptr(hub) as usize,
            Entry {
                hub: Arc::downgrade(hub),
                propagated,
            },
        );
    });
}

/// What the continuation running under `hub` carries, if it registered anything.
///
/// A miss also removes the entries of hubs that are gone, so once the last continuation of a
/// remote trace has ended, the next capture empties the registry and later ones stop at the
/// atomic load.
pub(crate) fn of_hub(hub: &Arc<Hub>) -> Option<Arc<Propagated>> {
    if ENTRIES.load(Ordering::Acquire) == 0 {
        return None;
    }
    with_registry(|registry| {
        // The same address with a live weak reference is the same hub.
        match registry.entries.get(&(Arc::as_ptr(hub) as usize)) {
            Some(entry) if entry.hub.strong_count() > 0 => Some(entry.propagated.clone()),
            _ => {
                // Cheap while there are few entries; with many (many remote continuations
                // running), one miss in 64 pays for the sweep.
                registry.misses = registry.misses.wrapping_add(1);
                if registry.entries.len() <= 16 || registry.misses % 64 == 0 {
                    registry
                        .entries
                        .retain(|_, entry| entry.hub.strong_count() > 0);
                }
                None
            }
        }
    })
}

/// What a running continuation of `trace_id` carries, if one registered anything.
pub(crate) fn of_trace(trace_id: TraceId) -> Option<Arc<Propagated>> {
    if ENTRIES.load(Ordering::Acquire) == 0 {
        return None;
    }
    with_registry(|registry| {
        registry
            .entries
            .values()
            .find(|entry| entry.propagated.trace_id == trace_id && entry.hub.strong_count() > 0)
            .map(|entry| entry.propagated.clone())
    })
}
