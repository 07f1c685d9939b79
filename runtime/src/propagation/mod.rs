//! Carrying a [`TraceContext`] across a process or queue boundary: Sentry's `sentry-trace` and
//! `baggage` headers, W3C Trace Context's `traceparent` and `tracestate`, and the serde form.
//!
//! The codecs (`traceparent`, `tracestate`, `baggage` here, `sentry-trace` in `crate::ids`) know
//! nothing of the rest of the crate. This file turns a [`TraceContext`] into headers and back,
//! builds the dynamic sampling context, and decides, where a remote context is continued,
//! whether its trace is continued at all (Sentry's org rule). `crate::carried` keeps a
//! continuation's incoming baggage within reach of the contexts captured inside it.

mod baggage;
mod list;
#[cfg(feature = "serde")]
mod serde;
mod traceparent;
mod tracestate;

use std::fmt;
use std::sync::Arc;

use sentry::protocol::{OrganizationId, TraceId};
use sentry::{ClientOptions, TracesSamplingStrategy, TransactionContext};

use crate::context::{Origin, TraceContext};
use crate::header;
use crate::ids::{self as sentry_trace, Parent};

use crate::carried::{carried, Dsc, IncomingOrg, Propagated};

/// Why incoming propagation headers could not be continued.
///
/// Headers are untrusted input: a rejected value is never partially used. Fall back to the context
/// current where the work runs with `unwrap_or_else(|_| TraceContext::capture())`, which continues
/// the local trace (or none). An invalid `baggage` or `tracestate` is not an error: it is ignored
/// whole, and the trace is continued from its ids.
///
/// ```
/// use traced_spawn::{HeaderError, TraceContext};
///
/// let err = TraceContext::from_headers([("sentry-trace", "not a trace")]).unwrap_err();
/// assert_eq!(err, HeaderError::SentryTraceMalformed);
/// assert_eq!(err.to_string(), "malformed sentry-trace header");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// Neither a `sentry-trace` nor a `traceparent` header was given.
    Missing,
    /// No valid `sentry-trace`, and its value is longer than any valid one.
    SentryTraceTooLong,
    /// No valid `sentry-trace`, and its value is not `TRACE_ID-SPAN_ID[-SAMPLED]` in hex.
    SentryTraceMalformed,
    /// No `sentry-trace`, and the `traceparent` value is longer than the 512 bytes read.
    TraceparentTooLong,
    /// No `sentry-trace`, and the `traceparent` value is not valid W3C Trace Context (upper-case
    /// hex, an all-zero id, version `ff`, a wrong length or separator).
    TraceparentMalformed,
    /// No `sentry-trace`, and more than one `traceparent` header: W3C says to ignore them all.
    TraceparentDuplicated,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderError::Missing => "missing sentry-trace and traceparent headers",
            HeaderError::SentryTraceTooLong => "oversized sentry-trace header",
            HeaderError::SentryTraceMalformed => "malformed sentry-trace header",
            HeaderError::TraceparentTooLong => "oversized traceparent header",
            HeaderError::TraceparentMalformed => "malformed traceparent header",
            HeaderError::TraceparentDuplicated => "more than one traceparent header",
        })
    }
}

impl std::error::Error for HeaderError {}

impl From<sentry_trace::Error> for HeaderError {
    fn from(err: sentry_trace::Error) -> Self {
        match err {
            sentry_trace::Error::TooLong => HeaderError::SentryTraceTooLong,
            sentry_trace::Error::Malformed => HeaderError::SentryTraceMalformed,
        }
    }
}

impl From<traceparent::Error> for HeaderError {
    fn from(err: traceparent::Error) -> Self {
        match err {
            traceparent::Error::TooLong => HeaderError::TraceparentTooLong,
            traceparent::Error::Malformed => HeaderError::TraceparentMalformed,
        }
    }
}

impl TraceContext {
    /// The propagation headers that let another process continue this context, in this order:
    /// `sentry-trace`, `baggage` (when there is anything to carry), `traceparent`, and
    /// `tracestate` when one came in with the trace. Empty for an empty context.
    ///
    /// `baggage` carries the trace's dynamic sampling context, frozen at its head: for a trace
    /// started in this process, `sentry-trace_id`, `sentry-public_key`, `sentry-org_id`,
    /// `sentry-release`, `sentry-environment`, `sentry-transaction` (when the head transaction's
    /// name is known here), `sentry-sample_rate` (with a fixed `traces_sample_rate`) and
    /// `sentry-sampled`, from the captured client; for a trace continued from another process, the
    /// `sentry-*` entries that came in, unchanged. Third-party entries that came in follow them.
    /// A context rebuilt from headers and not yet continued gives back what it was built from.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use traced_spawn::TraceContext;
    ///
    /// let mut options = sentry::ClientOptions::new().traces_sample_rate(1.0);
    /// options.dsn = Some("https://public@o42.ingest.sentry.io/1".parse().unwrap());
    /// options.release = Some("shop@1.2.0".into());
    /// options.transport = Some(Arc::new(sentry::test::TestTransport::new()));
    /// let hub = Arc::new(sentry::Hub::new(Some(Arc::new(options.into())), Default::default()));
    /// sentry::Hub::run(hub, || {
    ///     let tx = sentry::start_transaction(sentry::TransactionContext::new("GET /", "http.server"));
    ///     sentry::configure_scope(|scope| scope.set_span(Some(tx.clone().into())));
    ///
    ///     let headers = TraceContext::capture().to_headers();
    ///     let trace_id = tx.get_trace_context().trace_id;
    ///     let span_id = tx.get_trace_context().span_id;
    ///     assert_eq!(headers[0], ("sentry-trace", format!("{trace_id}-{span_id}-1")));
    ///     assert_eq!(
    ///         headers[1],
    ///         (
    ///             "baggage",
    ///             format!(
    ///                 "sentry-trace_id={trace_id},sentry-public_key=public,sentry-org_id=42,\
    ///                  sentry-release=shop@1.2.0,sentry-sample_rate=1,sentry-sampled=true"
    ///             )
    ///         )
    ///     );
    ///     assert_eq!(headers[2], ("traceparent", format!("00-{trace_id}-{span_id}-01")));
    ///     tx.finish();
    /// });
    /// ```
    pub fn to_headers(&self) -> Vec<(&'static str, String)> {
        let Some(parent) = self.parent() else {
            return Vec::new();
        };
        let remote = matches!(self.origin, Origin::Remote { .. });
        let ids = Parent {
            trace_id: parent.trace_id,
            span_id: parent.span_id,
            sampled: parent.sampled,
        };
        // What the trace carries: the context's own (rebuilt from headers, or captured inside a
        // continuation), else that of a running continuation of the same trace.
        let propagated = match &self.propagated {
            Some(propagated) if propagated.trace_id == parent.trace_id => Some(propagated.clone()),
            _ if !remote => carried().filter(|p| p.trace_id == parent.trace_id),
            _ => None,
        };
        let mut baggage = baggage::Writer::default();
        match propagated.as_deref().map(|p| &p.dsc) {
            Some(Dsc::Frozen(members)) => {
                for member in members.iter() {
                    baggage.push_raw(member);
                }
            }
            // A remote context is passed through: its DSC is written by whoever continues it.
            _ if remote => {}
            head => {
                let transaction = match head {
                    Some(Dsc::Head { transaction }) => transaction.as_deref(),
                    _ => None,
                };
                let hub = match &self.origin {
                    Origin::Captured { hub, .. } => Some(hub),
                    _ => None,
                };
                if let Some(client) = hub.and_then(|hub| hub.client()) {
                    write_head_dsc(&mut baggage, client.options(), parent, transaction);
                }
            }
        }
        if let Some(propagated) = &propagated {
            for member in propagated.third_party.iter() {
                baggage.push_raw(member);
            }
        }
        let mut headers = Vec::with_capacity(4);
        headers.push((header::SENTRY_TRACE, sentry_trace::format(ids)));
        if let Some(baggage) = baggage.finish() {
            headers.push((header::BAGGAGE, baggage));
        }
        headers.push((header::TRACEPARENT, traceparent::format(ids)));
        if let Some(tracestate) = propagated.as_ref().and_then(|p| p.tracestate.as_deref()) {
            headers.push((header::TRACESTATE, tracestate.to_owned()));
        }
        headers
    }

    /// Rebuilds a context from incoming propagation headers (names compared case-insensitively).
    ///
    /// The trace comes from the first valid `sentry-trace`, or, with none, from the one
    /// `traceparent` (W3C: lower-case hex, no all-zero id, not version `ff`; two `traceparent`
    /// headers are ignored). `baggage` is kept for forwarding: its `sentry-*` entries unchanged,
    /// then its third-party entries; `tracestate` is kept when it came with the `traceparent` of
    /// the same trace.
    ///
    /// `tracestate` is read as W3C Trace Context and its working group's validation suite read
    /// it: several header lines are one list, combined in order; each member is `key=value`, the
    /// key up to 256 characters of `a`-`z`, `0`-`9`, `_`, `-`, `*`, `/` and `@`, starting with a
    /// letter or a digit (`tenant@vendor`, `foo@`), the value up to 256 printable ASCII characters
    /// other than `,` and `=`, not ending with a space; empty members are left out; a key that
    /// repeats is passed on as it came. It is kept whole or not at all: with a member outside
    /// that grammar, a 33rd member, or more than 8192 bytes over its lines, none of it is sent on.
    ///
    /// Such a context has no hub of its own: it continues under a fork of the hub current where it
    /// is run ([`TraceContext::run`]) or, when it is spawned ([`Builder::context`](crate::Builder::context)
    /// then a `spawn_*` method, or [`TraceContext::bind`]), of the hub current where it is spawned,
    /// so the work reports to that thread's client. There Sentry's rule for remote traces applies,
    /// as in sentry's own `continue_from_headers`: when the baggage's `sentry-org_id` differs from
    /// the client's org id (its `org_id` option, or the DSN's `o<digits>` host), or one of them is
    /// missing and `strict_trace_continuation` is on, the work starts a new trace instead.
    ///
    /// Every value is checked for length before it is parsed, so hostile input costs a bounded
    /// amount of work and never panics; an invalid `baggage` or `tracestate` is ignored whole.
    ///
    /// ```
    /// use traced_spawn::TraceContext;
    ///
    /// let ctx = TraceContext::from_headers([
    ///     ("Sentry-Trace", "0123456789abcdef0123456789abcdef-0123456789abcdef-0"),
    ///     ("baggage", "sentry-org_id=7,sentry-sampled=false"),
    /// ])
    /// .unwrap();
    /// assert_eq!(ctx.trace_id().unwrap().to_string(), "0123456789abcdef0123456789abcdef");
    /// assert_eq!(ctx.parent_span_id().unwrap().to_string(), "0123456789abcdef");
    /// assert_eq!(ctx.sampled(), Some(false));
    /// ```
    ///
    /// Two `tracestate` lines, combined; the same with a key that starts with `@`, dropped whole:
    ///
    /// ```
    /// use traced_spawn::{header, TraceContext};
    ///
    /// let tracestate = |second_line| {
    ///     let ctx = TraceContext::from_headers([
    ///         (header::TRACEPARENT, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ///         (header::TRACESTATE, "rojo=00f067aa0ba902b7, tenant@congo=t61rcWkgMzE"),
    ///         (header::TRACESTATE, second_line),
    ///     ])
    ///     .unwrap();
    ///     let headers = ctx.to_headers();
    ///     headers.into_iter().find(|(name, _)| *name == header::TRACESTATE).map(|(_, v)| v)
    /// };
    /// assert_eq!(
    ///     tracestate("rojo=1").as_deref(),
    ///     Some("rojo=00f067aa0ba902b7,tenant@congo=t61rcWkgMzE,rojo=1")
    /// );
    /// assert_eq!(tracestate("@rojo=1"), None);
    /// ```
    pub fn from_headers<'a, I>(headers: I) -> Result<TraceContext, HeaderError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut incoming = Incoming::default();
        for (name, value) in headers {
            incoming.add(name, value);
        }
        incoming.finish()
    }
}

/// The trace headers seen in one request.
#[derive(Default)]
enum Traceparent {
    #[default]
    None,
    One(Result<Parent, HeaderError>),
    Duplicated,
}

/// Every propagation header of one request, read as it comes.
#[derive(Default)]
struct Incoming<'a> {
    /// The first valid `sentry-trace`, or the error of the last invalid one.
    sentry_trace: Option<Result<Parent, HeaderError>>,
    traceparent: Traceparent,
    baggage: baggage::Reader<'a>,
    tracestate: tracestate::Reader<'a>,
}

impl<'a> Incoming<'a> {
    fn add(&mut self, name: &str, value: &'a str) {
        // `eq_ignore_ascii_case` compares lengths first: a huge name costs nothing.
        if name.eq_ignore_ascii_case(header::SENTRY_TRACE) {
            if !matches!(self.sentry_trace, Some(Ok(_))) {
                self.sentry_trace = Some(sentry_trace::parse(value).map_err(HeaderError::from));
            }
        } else if name.eq_ignore_ascii_case(header::TRACEPARENT) {
            self.traceparent = match self.traceparent {
                Traceparent::None => {
                    Traceparent::One(traceparent::parse(value).map_err(HeaderError::from))
                }
                _ => Traceparent::Duplicated,
            };
        } else if name.eq_ignore_ascii_case(header::BAGGAGE) {
            self.baggage.add(value);
        } else if name.eq_ignore_ascii_case(header::TRACESTATE) {
            self.tracestate.add(value);
        }
    }

    fn finish(self) -> Result<TraceContext, HeaderError> {
        let w3c = match self.traceparent {
            Traceparent::None => Err(HeaderError::Missing),
            Traceparent::One(parsed) => parsed,
            Traceparent::Duplicated => Err(HeaderError::TraceparentDuplicated),
        };
        let ids = match (self.sentry_trace, w3c) {
            (Some(Ok(ids)), _) | (_, Ok(ids)) => ids,
            (Some(Err(err)), _) | (None, Err(err)) => return Err(err),
        };
        // `tracestate` belongs to its `traceparent`: kept only when that one names this trace.
        let tracestate = match w3c {
            Ok(w3c) if w3c.trace_id == ids.trace_id => self.tracestate.finish(),
            _ => None,
        };
        let (sentry, third_party, incoming_org) = match self.baggage.finish() {
            baggage::Incoming::Absent => (Vec::new(), Vec::new(), IncomingOrg::Absent),
            baggage::Incoming::Rejected => (Vec::new(), Vec::new(), IncomingOrg::Unreadable),
            baggage::Incoming::Valid(members) => {
                let (sentry, third_party): (Vec<&str>, Vec<&str>) = members
                    .into_iter()
                    .partition(|member| baggage::sentry_key(member).is_some());
                let org = org_id_of(&sentry);
                (sentry, third_party, org)
            }
        };
        let carried = !sentry.is_empty() || !third_party.is_empty() || tracestate.is_some();
        let propagated = (carried || incoming_org != IncomingOrg::Absent).then(|| {
            Arc::new(Propagated {
                trace_id: ids.trace_id,
                dsc: if sentry.is_empty() {
                    Dsc::Head { transaction: None }
                } else {
                    Dsc::Frozen(boxed(sentry))
                },
                third_party: boxed(third_party),
                tracestate,
                incoming_org,
            })
        });
        Ok(TraceContext::from_remote(ids, propagated))
    }
}

fn boxed(members: Vec<&str>) -> Box<[Box<str>]> {
    members.into_iter().map(Box::from).collect()
}

/// The org id of incoming `sentry-*` members, read as sentry reads it: the last `sentry-org_id`
/// that is a number wins; one that is not counts as absent.
fn org_id_of(sentry: &[&str]) -> IncomingOrg {
    sentry
        .iter()
        .rev()
        .filter(|member| baggage::sentry_key(member) == Some("org_id"))
        .find_map(|member| baggage::decode(baggage::key_value(member).1)?.parse().ok())
        .map_or(IncomingOrg::Absent, IncomingOrg::Id)
}

/// The client's org id: its `org_id` option, else the DSN's `o<digits>` host.
fn client_org_id(options: &ClientOptions) -> Option<OrganizationId> {
    options
        .org_id
        .or_else(|| options.dsn.as_ref().and_then(|dsn| dsn.org_id()))
}

/// Sentry's rule for continuing a remote trace (sentry-core's `should_continue_trace`): equal org
/// ids continue, different ones never; with one missing, only when `strict` is off. A baggage that
/// was rejected whole has an org id that cannot be read: it never equals the client's.
fn continues(incoming: IncomingOrg, client: Option<OrganizationId>, strict: bool) -> bool {
    match (incoming, client) {
        (IncomingOrg::Id(incoming), Some(client)) => incoming == client,
        (IncomingOrg::Unreadable, Some(_)) => false,
        (IncomingOrg::Id(_) | IncomingOrg::Unreadable, None) | (IncomingOrg::Absent, Some(_)) => {
            !strict
        }
        (IncomingOrg::Absent, None) => true,
    }
}

/// Writes the dynamic sampling context of a trace whose head is in this process.
fn write_head_dsc(
    baggage: &mut baggage::Writer,
    options: &ClientOptions,
    parent: Parent,
    transaction: Option<&str>,
) {
    baggage.push_sentry("trace_id", &parent.trace_id.to_string());
    if let Some(dsn) = &options.dsn {
        baggage.push_sentry("public_key", dsn.public_key());
    }
    if let Some(org_id) = client_org_id(options) {
        baggage.push_sentry("org_id", &org_id.to_string());
    }
    if let Some(release) = &options.release {
        baggage.push_sentry("release", release);
    }
    if let Some(environment) = &options.environment {
        baggage.push_sentry("environment", environment);
    }
    if let Some(transaction) = transaction {
        baggage.push_sentry("transaction", transaction);
    }
    if let TracesSamplingStrategy::FixedRate(rate) = options.traces_sampling_strategy {
        baggage.push_sentry("sample_rate", &rate.to_string());
    }
    if let Some(sampled) = parent.sampled {
        baggage.push_sentry("sampled", if sampled { "true" } else { "false" });
    }
}

/// A remote context on its way into a continuation: its parent and what it carries.
pub(crate) struct Remote {
    pub(crate) parent: Parent,
    pub(crate) propagated: Option<Arc<Propagated>>,
}

/// The transaction context of a remote context's continuation in `hub`, whose client has
/// `options`: a continuation of the remote parent when Sentry's org rule allows it (see
/// [`TraceContext::from_headers`]), otherwise the head of a new trace, as sentry's own
/// `continue_from_headers` decides. Also what the continuation carries (see [`Carrying`]), so
/// contexts captured inside it send the trace's onwards.
pub(crate) fn remote_transaction_context(
    remote: &Remote,
    name: &str,
    op: &str,
    options: &ClientOptions,
) -> (TransactionContext, Arc<Propagated>) {
    let incoming_org = remote
        .propagated
        .as_ref()
        .map_or(IncomingOrg::Absent, |p| p.incoming_org);
    let continued = continues(
        incoming_org,
        client_org_id(options),
        options.strict_trace_continuation,
    );
    let (tx_ctx, propagated) = if continued {
        let tx_ctx = TransactionContext::builder(name, op)
            .with_trace_id(remote.parent.trace_id)
            .with_parent_span_id(Some(remote.parent.span_id))
            .with_sampled(remote.parent.sampled)
            .finish();
        let propagated = match &remote.propagated {
            Some(propagated) if matches!(propagated.dsc, Dsc::Frozen(_)) => propagated.clone(),
            // No Sentry SDK upstream froze a DSC: this continuation is the Sentry head.
            Some(propagated) => Arc::new(Propagated {
                dsc: Dsc::Head {
                    transaction: Some(name.into()),
                },
                ..Propagated::clone(propagated)
            }),
            None => head_of(remote.parent.trace_id, name),
        };
        (tx_ctx, propagated)
    } else {
        // A new trace: nothing of the foreign one is kept.
        let tx_ctx = TransactionContext::new(name, op);
        let propagated = head_of(tx_ctx.trace_id(), name);
        (tx_ctx, propagated)
    };
    (tx_ctx, propagated)
}

fn head_of(trace_id: TraceId, name: &str) -> Arc<Propagated> {
    Arc::new(Propagated {
        trace_id,
        dsc: Dsc::Head {
            transaction: Some(name.into()),
        },
        third_party: Box::default(),
        tracestate: None,
        incoming_org: IncomingOrg::Absent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_org_rule_matches_sentry_core() {
        let one: OrganizationId = 1.into();
        let two: OrganizationId = 2.into();
        for strict in [false, true] {
            assert!(continues(IncomingOrg::Id(one), Some(one), strict));
            assert!(!continues(IncomingOrg::Id(one), Some(two), strict));
            assert_eq!(continues(IncomingOrg::Id(one), None, strict), !strict);
            assert_eq!(continues(IncomingOrg::Absent, Some(one), strict), !strict);
            assert!(continues(IncomingOrg::Absent, None, strict));
            assert!(!continues(IncomingOrg::Unreadable, Some(one), strict));
            assert_eq!(continues(IncomingOrg::Unreadable, None, strict), !strict);
        }
    }

    #[test]
    fn traceparent_follows_the_w3c_rules() {
        let valid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let ids = traceparent::parse(valid).unwrap();
        assert_eq!(traceparent::format(ids), valid);
        assert_eq!(
            traceparent::parse(" \t00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00 ")
                .unwrap()
                .sampled,
            Some(false)
        );
        // A later version may append fields after a `-`.
        let future = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-comes-next";
        assert_eq!(traceparent::parse(future).unwrap(), ids);
        for bad in [
            "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01.extra",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
            "0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "",
        ] {
            assert_eq!(
                traceparent::parse(bad),
                Err(traceparent::Error::Malformed),
                "{bad}"
            );
        }
        let long = format!(
            "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-{}",
            "x".repeat(500)
        );
        assert_eq!(traceparent::parse(&long), Err(traceparent::Error::TooLong));
    }

    #[test]
    fn baggage_is_read_whole_or_not_at_all() {
        let mut reader = baggage::Reader::default();
        reader.add("a=1 ; p ; q = v ,\t b = x%20y");
        reader.add("");
        reader.add("sentry-org_id=12");
        assert_eq!(
            reader.finish(),
            baggage::Incoming::Valid(vec!["a=1 ; p ; q = v", "b = x%20y", "sentry-org_id=12"])
        );
        for bad in ["a", "=1", "a b=1", "a=\"x\"", "a=1;p q", "a=x y", "a=\\"] {
            let mut reader = baggage::Reader::default();
            reader.add("ok=1");
            reader.add(bad);
            assert_eq!(reader.finish(), baggage::Incoming::Rejected, "{bad}");
        }
        let too_many = vec!["k=v"; baggage::MAX_MEMBERS + 1].join(",");
        let mut reader = baggage::Reader::default();
        reader.add(&too_many);
        assert_eq!(reader.finish(), baggage::Incoming::Rejected);
        assert_eq!(
            baggage::decode("x%20y%2C%e2%82%ac").as_deref(),
            Some("x y,€")
        );
        assert_eq!(baggage::decode("%2"), None);
        assert_eq!(baggage::decode("%ff"), None);
        let mut encoded = String::new();
        baggage::encode("GET /a b,c;d%€", &mut encoded);
        assert_eq!(encoded, "GET%20/a%20b%2Cc%3Bd%25%E2%82%AC");
        assert_eq!(baggage::decode(&encoded).as_deref(), Some("GET /a b,c;d%€"));
    }

    #[test]
    fn tracestate_is_validated_whole() {
        let mut reader = tracestate::Reader::default();
        reader.add("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7");
        reader.add("tenant@vendor=x,,");
        assert_eq!(
            reader.finish().as_deref(),
            Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7,tenant@vendor=x")
        );
        for bad in [
            "Congo=1",
            "a=1,@a=2",
            "a=",
            "a=x\u{7f}",
            "a=b=c",
            "_a=x",
            "a@B=x",
            "a",
        ] {
            let mut reader = tracestate::Reader::default();
            reader.add(bad);
            assert_eq!(reader.finish(), None, "{bad}");
        }
        let many: Vec<String> = (0..=tracestate::MAX_MEMBERS)
            .map(|i| format!("k{i}=v"))
            .collect();
        let many = many.join(",");
        let mut reader = tracestate::Reader::default();
        reader.add(&many);
        assert_eq!(reader.finish(), None);
    }
}
