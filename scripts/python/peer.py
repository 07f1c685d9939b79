"""The Python side of the propagation interop tests (tests/tests/python_peer.rs).

Sentry's Python SDK, with a transport that keeps envelopes in memory, in one of two roles:

  python peer.py continue   reads headers as a JSON list of [name, value] pairs on stdin,
                            continues them with sentry_sdk.continue_trace and prints, as JSON,
                            the transaction it sent, the envelope's trace header (the dynamic
                            sampling context) and the headers it would send onwards.
  python peer.py head       starts a trace and prints the headers it sends (get_traceparent(),
                            get_baggage()) with the ids of its transaction.

Options come from the environment: PEER_DSN, PEER_RELEASE, PEER_STRICT (1 for
strict_trace_continuation).
"""

import json
import os
import sys

import sentry_sdk
from sentry_sdk.transport import Transport


ENVELOPES = []


class MemoryTransport(Transport):
    """Keeps envelopes in memory. Passed as a class, so that the SDK builds it with its options
    (and reads the DSN from it, as its own transports do)."""

    def capture_envelope(self, envelope):
        ENVELOPES.append(envelope)


def init():
    sentry_sdk.init(
        dsn=os.environ.get("PEER_DSN", "https://pykey@o42.ingest.sentry.io/5"),
        release=os.environ.get("PEER_RELEASE", "py@1.0"),
        environment="peer",
        traces_sample_rate=1.0,
        strict_trace_continuation=os.environ.get("PEER_STRICT") == "1",
        transport=MemoryTransport,
        default_integrations=False,
    )


def transactions():
    sentry_sdk.flush()
    out = []
    for envelope in ENVELOPES:
        event = envelope.get_transaction_event()
        if event is None:
            continue
        trace = event["contexts"]["trace"]
        out.append(
            {
                "name": event.get("transaction"),
                "trace_id": trace["trace_id"],
                "span_id": trace["span_id"],
                "parent_span_id": trace.get("parent_span_id"),
                "dsc": envelope.headers.get("trace"),
            }
        )
    return out


def continue_headers():
    headers = dict(json.load(sys.stdin))
    transaction = sentry_sdk.continue_trace(headers, op="task", name="python.continue")
    with sentry_sdk.start_transaction(transaction):
        outgoing = {
            "sentry-trace": sentry_sdk.get_traceparent(),
            "baggage": sentry_sdk.get_baggage(),
        }
    return {"transactions": transactions(), "outgoing": outgoing}


def head():
    with sentry_sdk.start_transaction(op="http.server", name="python.head") as transaction:
        outgoing = {
            "sentry-trace": sentry_sdk.get_traceparent(),
            "baggage": sentry_sdk.get_baggage(),
        }
        ids = {"trace_id": transaction.trace_id, "span_id": transaction.span_id}
    return {"outgoing": outgoing, "ids": ids, "transactions": transactions()}


def main():
    init()
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "continue":
        result = continue_headers()
    elif mode == "head":
        result = head()
    else:
        sys.exit("usage: peer.py continue|head")
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
