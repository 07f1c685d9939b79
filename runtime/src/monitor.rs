//! Sentry Crons check-ins of monitored work: the `monitor` option and [`Builder::monitor`].
//!
//! A monitored continuation sends a `check_in` item with status `in_progress` when its body
//! starts, and one with the same `check_in_id`, status `ok` or `error` and the `duration` in
//! seconds when it ends (a dropped, never finished continuation ends as `error`). They go through
//! the client of the continuation's hub whatever the trace's sampling, with the client's
//! `environment` and `release`, the monitor config when a schedule is set (so the monitor is
//! created on first use), and `contexts.trace.trace_id` of the continuation, as sentry-python's
//! `capture_checkin` sends them.
//!
//! sentry-types' `MonitorCheckIn` has no `contexts`, which is where Sentry reads the trace a
//! check-in belongs to, so the item is written here: sentry's own serialization of the check-in,
//! with `release` and `contexts` added, sent as a raw envelope.
//!
//! [`Builder::monitor`]: crate::Builder::monitor

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use sentry::protocol::value::{to_value, Value};
use sentry::protocol::{
    Envelope, MonitorCheckIn, MonitorCheckInStatus, MonitorConfig, MonitorSchedule, SpanStatus,
    TraceId, Uuid,
};
use sentry::{Client, Hub};

use crate::ids;

/// The monitor a continuation checks in to, and the config it sends with each check-in.
#[derive(Debug, Clone, Default)]
pub(crate) struct Monitor {
    /// The monitor's slug; an empty one (a schedule set without a monitor) sends nothing.
    pub(crate) slug: Cow<'static, str>,
    pub(crate) schedule: Option<MonitorSchedule>,
    /// Minutes.
    pub(crate) max_runtime: Option<u64>,
    /// Minutes.
    pub(crate) checkin_margin: Option<u64>,
}

impl Monitor {
    /// The config sent with every check-in when a schedule is set: Sentry creates or updates the
    /// monitor from it.
    fn config(&self) -> Option<MonitorConfig> {
        let schedule = self.schedule.clone()?;
        Some(MonitorConfig {
            schedule,
            checkin_margin: self.checkin_margin,
            max_runtime: self.max_runtime,
            timezone: None,
            failure_issue_threshold: None,
            recovery_threshold: None,
        })
    }
}

/// A check-in sent as `in_progress`, waiting for its end. Dropped before [`CheckIn::finish`] (a
/// cancelled task, work dropped unrun), it ends as `error`.
pub(crate) struct CheckIn {
    monitor: Box<Monitor>,
    id: Uuid,
    started: Instant,
    /// The continuation's trace, read from its hub when the check-in starts.
    trace_id: Option<TraceId>,
    client: Arc<Client>,
    finished: bool,
}

impl CheckIn {
    /// Sends the `in_progress` check-in of `monitor` through the client of `hub`, the
    /// continuation's, just started. `None` when there is no client, or no monitor slug.
    pub(crate) fn start(monitor: Box<Monitor>, hub: &Hub) -> Option<CheckIn> {
        if monitor.slug.is_empty() {
            return None;
        }
        let client = hub.client()?;
        let check_in = CheckIn {
            monitor,
            id: random_id(),
            started: Instant::now(),
            trace_id: trace_id(hub),
            client,
            finished: false,
        };
        check_in.send(MonitorCheckInStatus::InProgress);
        Some(check_in)
    }

    /// Sends the final check-in: `ok` when the continuation finished `ok`, else `error`.
    pub(crate) fn finish(mut self, status: SpanStatus) {
        self.finished = true;
        self.send(if status == SpanStatus::Ok {
            MonitorCheckInStatus::Ok
        } else {
            MonitorCheckInStatus::Error
        });
    }

    /// Sends one check-in item with `status`; a final one carries the duration.
    fn send(&self, status: MonitorCheckInStatus) {
        let duration = (status != MonitorCheckInStatus::InProgress)
            .then(|| self.started.elapsed().as_secs_f64());
        let options = self.client.options();
        let check_in = MonitorCheckIn {
            check_in_id: self.id,
            monitor_slug: self.monitor.slug.clone().into_owned(),
            status,
            environment: options.environment.as_deref().map(str::to_owned),
            duration,
            monitor_config: self.monitor.config(),
        };
        let Ok(Value::Object(mut item)) = to_value(&check_in) else {
            return;
        };
        if let Some(release) = &options.release {
            item.insert("release".to_owned(), Value::from(release.as_ref()));
        }
        if let Some(trace_id) = self.trace_id {
            let trace = Value::from_iter([("trace_id", Value::from(trace_id.to_string()))]);
            item.insert("contexts".to_owned(), Value::from_iter([("trace", trace)]));
        }
        let payload = Value::Object(item).to_string();
        let bytes = format!(
            "{{}}\n{{\"type\":\"check_in\",\"length\":{}}}\n{payload}\n",
            payload.len()
        );
        let Ok(envelope) = Envelope::from_bytes_raw(bytes.into_bytes()) else {
            return;
        };
        // The client attaches the client reports it has pending to the next envelope it sends,
        // and a raw envelope cannot take one: an empty envelope takes them first (the transport
        // sends it only if it carries one).
        self.client.send_envelope(Envelope::new());
        self.client.send_envelope(envelope);
    }
}

impl Drop for CheckIn {
    fn drop(&mut self) {
        if !self.finished {
            self.send(MonitorCheckInStatus::Error);
        }
    }
}

/// A random (version 4) check-in id, from the random bytes sentry draws for a trace id (sentry
/// builds `uuid` without its generator unless a feature needs it).
fn random_id() -> Uuid {
    let random = Uuid::parse_str(&TraceId::default().to_string()).unwrap_or_default();
    let mut bytes = *random.as_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// The trace of the work running in `hub`: its active span's, else its propagation context's.
fn trace_id(hub: &Hub) -> Option<TraceId> {
    hub.configure_scope(|scope| {
        scope
            .iter_trace_propagation_headers()
            .find_map(|(_, value)| ids::parse(&value).ok())
            .map(|ids| ids.trace_id)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sentry::protocol::MonitorSchedule;
    use sentry::{ClientOptions, Hub};

    use super::{CheckIn, Monitor};

    /// The JSON of every check-in item sent while `f` runs under a hub with `options`.
    fn check_ins(options: ClientOptions, f: impl FnOnce(&Hub)) -> Vec<serde_json::Value> {
        let transport = sentry::test::TestTransport::new();
        let mut options = options;
        options.dsn = Some("https://public@sentry.invalid/1".parse().unwrap());
        options.transport = Some(Arc::new(transport.clone()));
        let hub = Hub::new(Some(Arc::new(options.into())), Arc::default());
        f(&hub);
        let mut items = Vec::new();
        for envelope in transport.fetch_and_clear_envelopes() {
            let mut bytes = Vec::new();
            envelope.to_writer(&mut bytes).unwrap();
            let text = String::from_utf8(bytes).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for pair in lines[1..].chunks(2) {
                let header: serde_json::Value = serde_json::from_str(pair[0]).unwrap();
                if header["type"] == "check_in" {
                    items.push(serde_json::from_str(pair[1]).unwrap());
                }
            }
        }
        items
    }

    fn monitor(slug: &'static str) -> Box<Monitor> {
        Box::new(Monitor {
            slug: slug.into(),
            ..Monitor::default()
        })
    }

    #[test]
    fn a_check_in_is_started_and_finished_with_one_id() {
        let mut options = ClientOptions::new();
        options.environment = Some("staging".into());
        options.release = Some("app@2.0.0".into());
        let items = check_ins(options, |hub| {
            let check_in = CheckIn::start(monitor("nightly-report"), hub).unwrap();
            check_in.finish(sentry::protocol::SpanStatus::Ok);
        });
        assert_eq!(items.len(), 2, "{items:?}");
        let (start, end) = (&items[0], &items[1]);
        assert_eq!(start["status"], "in_progress");
        assert_eq!(end["status"], "ok");
        assert_eq!(start["check_in_id"], end["check_in_id"]);
        assert_eq!(start["check_in_id"].as_str().unwrap().len(), 32);
        assert_eq!(start["monitor_slug"], "nightly-report");
        assert_eq!(start["environment"], "staging");
        assert_eq!(start["release"], "app@2.0.0");
        assert!(start.get("duration").is_none());
        assert!(end["duration"].as_f64().unwrap() > 0.0);
        // The scope's propagation context: the trace errors of this hub are reported in.
        assert_eq!(
            start["contexts"]["trace"]["trace_id"]
                .as_str()
                .unwrap()
                .len(),
            32
        );
        assert_eq!(
            start["contexts"]["trace"]["trace_id"],
            end["contexts"]["trace"]["trace_id"]
        );
    }

    #[test]
    fn a_dropped_check_in_ends_as_error_and_a_schedule_is_sent_as_config() {
        let items = check_ins(ClientOptions::new(), |hub| {
            let mut with_schedule = monitor("billing-sync");
            with_schedule.schedule = Some(MonitorSchedule::from_crontab("0 3 * * *").unwrap());
            with_schedule.max_runtime = Some(30);
            drop(CheckIn::start(with_schedule, hub));
        });
        assert_eq!(items.len(), 2);
        assert_eq!(items[1]["status"], "error");
        for item in &items {
            assert_eq!(
                item["monitor_config"],
                serde_json::json!({
                    "schedule": {"type": "crontab", "value": "0 3 * * *"},
                    "max_runtime": 30
                })
            );
        }
    }

    #[test]
    fn check_in_ids_are_random_version_4_uuids() {
        let (a, b) = (super::random_id(), super::random_id());
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(a.get_variant(), sentry::types::UuidVariant::RFC4122);
    }

    #[test]
    fn nothing_is_sent_without_a_slug() {
        let items = check_ins(ClientOptions::new(), |hub| {
            assert!(CheckIn::start(monitor(""), hub).is_none());
        });
        assert!(items.is_empty());
    }
}
