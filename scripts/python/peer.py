"""The Python side of the propagation interop tests (tests/tests/python_peer.rs,
tests/tests/reqwest_client.rs).

Sentry's Python SDK, with a transport that keeps envelopes in memory, in one of three roles:

  python peer.py continue   reads headers as a JSON list of [name, value] pairs on stdin,
                            continues them with sentry_sdk.continue_trace and prints, as JSON,
                            the transaction it sent, the envelope's trace header (the dynamic
                            sampling context) and the headers it would send onwards.
  python peer.py head       starts a trace and prints the headers it sends (get_traceparent(),
                            get_baggage()) with the ids of its transaction.
  python peer.py serve      an HTTP server on 127.0.0.1 behind the SDK's WSGI middleware, which
                            continues each request's headers with continue_trace (the server
                            side of sentry-sdk). Prints {"url": ...} as its first line; each
                            response is the JSON of the request's transaction (trace id, span
                            id, parent span id, sampled) and the trace headers received. When
                            stdin closes it stops and prints the transactions it sent.

Options come from the environment: PEER_DSN, PEER_RELEASE, PEER_STRICT (1 for
strict_trace_continuation).
"""

import json
import os
import sys
import threading

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


def serve():
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware

    def app(environ, start_response):
        transaction = sentry_sdk.get_current_scope().transaction
        transaction.name = "python.serve"
        body = {
            "trace_id": transaction.trace_id,
            "span_id": transaction.span_id,
            "parent_span_id": transaction.parent_span_id,
            "sampled": transaction.sampled,
            "headers": {
                name: environ.get("HTTP_" + name.upper().replace("-", "_"))
                for name in ("sentry-trace", "baggage", "traceparent", "tracestate")
            },
        }
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format, *args):
            pass

    server = make_server(
        "127.0.0.1", 0, SentryWsgiMiddleware(app), handler_class=QuietHandler
    )
    json.dump({"url": "http://127.0.0.1:%d" % server.server_port}, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sys.stdin.read()
    server.shutdown()
    thread.join()
    server.server_close()
    return {"transactions": transactions()}


def main():
    init()
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "continue":
        result = continue_headers()
    elif mode == "head":
        result = head()
    elif mode == "serve":
        result = serve()
    else:
        sys.exit("usage: peer.py continue|head|serve")
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
