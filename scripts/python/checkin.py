"""The Python side of the Sentry Crons comparison (tests/tests/monitor.rs).

Runs one job under sentry-python's `monitor` decorator (which calls `capture_checkin` when the
job starts and when it ends), inside a transaction as a traced job runs, with a transport that
keeps envelopes in memory, and prints the check-in items it sent as JSON:

  python checkin.py ok      the job returns
  python checkin.py error   the job raises

The job's monitor is `nightly-report`, with the schedule `0 3 * * *`, `max_runtime` 30 and
`checkin_margin` 5; the client's environment is `peer` and its release `py@1.0`. Printed:
{"check_ins": [{"headers": <item headers>, "payload": <item payload>}, ...],
 "envelope_headers": [...], "trace_id": <the transaction's trace id>}.
"""

import json
import sys
import time

import sentry_sdk
from sentry_sdk.transport import Transport


ENVELOPES = []


class MemoryTransport(Transport):
    """Keeps envelopes in memory (passed as a class, as peer.py does)."""

    def capture_envelope(self, envelope):
        ENVELOPES.append(envelope)


MONITOR_CONFIG = {
    "schedule": {"type": "crontab", "value": "0 3 * * *"},
    "max_runtime": 30,
    "checkin_margin": 5,
}


@sentry_sdk.monitor(monitor_slug="nightly-report", monitor_config=MONITOR_CONFIG)
def nightly_report(fail):
    time.sleep(0.01)
    if fail:
        raise RuntimeError("the report failed")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in ("ok", "error"):
        sys.exit("usage: checkin.py ok|error")
    sentry_sdk.init(
        dsn="https://pykey@o42.ingest.sentry.io/5",
        release="py@1.0",
        environment="peer",
        traces_sample_rate=1.0,
        transport=MemoryTransport,
        default_integrations=False,
    )
    with sentry_sdk.start_transaction(op="task", name="nightly") as transaction:
        try:
            nightly_report(mode == "error")
        except RuntimeError:
            pass
        trace_id = transaction.trace_id
    sentry_sdk.flush()
    check_ins = []
    envelope_headers = []
    for envelope in ENVELOPES:
        items = [item for item in envelope.items if item.type == "check_in"]
        if items:
            envelope_headers.append(envelope.headers)
        for item in items:
            check_ins.append({"headers": item.headers, "payload": item.payload.json})
    result = {
        "check_ins": check_ins,
        "envelope_headers": envelope_headers,
        "trace_id": trace_id,
    }
    json.dump(result, sys.stdout, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
