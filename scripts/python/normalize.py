"""Runs Sentry's ingestion normalization (PyPI `sentry-relay`: the Rust code Relay runs, through
its C ABI) over what an SDK sends, and reports everything it rejected, flagged, dropped or changed.

Used by tests/tests/relay_normalization.rs; installed by setup.sh (scripts/python/.venv).

Input (stdin): a JSON list of envelope items, each `{"item_type": ..., "payload": ...}`: the
item header's type (`event`, `transaction`, `check_in`) and the payload exactly as sent. A bare
payload is accepted too; its type is then guessed (`check_in_id`: a check-in; `"type":
"transaction"`: a transaction; else an event). The item type matters: like Relay, the normalizer
takes a transaction item's type from its header (the payload need not say it is a transaction).

Output (stdout): a JSON list, one entry per input, in order:

    {"kind": "transaction" | "event" | "check_in",
     "skipped": null | "why it was not normalized",
     "normalized": the payload as Relay's normalization left it (null when skipped or rejected),
     "problems": [{"kind": ..., "path": ..., "detail": ...}, ...],
     "notes": ["what Relay added that is no problem but worth knowing", ...]}

Problem kinds:
- `rejected`: normalization refused the payload (e.g. an invalid transaction).
- `meta_error`: an `_meta` entry with errors (`err`), anywhere in the normalized tree: a value
  Relay found invalid and removed or replaced.
- `meta_remark`: an `_meta` entry with remarks (`rem`): a value Relay trimmed or scrubbed.
- `event_error`: an entry of the normalized event's `errors` (the processing errors Sentry shows
  on the event).
- `dropped`: a key or list element of the input missing (or null) in the output.
- `changed`: a value of the input different in the output (other than the rewrites below).
- `added`: a key in the output absent from the input, other than the additions below.

Exit status: 0 whenever the report was written (problems are data, not failures); nonzero only
when the script itself fails (bad input, sentry-relay missing).

    .venv/bin/python normalize.py < payloads.json
"""

import datetime
import json
import sys

from sentry_relay.processing import StoreNormalizer

# The normalizer as Relay runs it on the way in, not the light re-normalization Sentry's
# event manager applies to events Relay already processed:
# - is_renormalize=False: validate the event (timestamps, a transaction's trace context and
#   spans), run the full normalization and emit event errors.
# - remove_other=True: unknown attributes are removed with an `invalid_attribute` error (what
#   Relay does with them); this is how an attribute Sentry does not know shows up.
# - normalize_spans=True: spans are normalized (and get their exclusive time) as Relay does.
# - enable_trimming=True: Relay's size limits apply; anything trimmed leaves a remark.
# - max_secs_in_future / max_secs_in_past: Relay's defaults (60 s, 30 days): a timestamp out of
#   that range is an error.
# - project_id: any project; it only shows up as the added `project`.
NORMALIZER_CONFIG = {
    "project_id": 1,
    "is_renormalize": False,
    "remove_other": True,
    "normalize_spans": True,
    "enable_trimming": True,
    "max_secs_in_future": 60,
    "max_secs_in_past": 30 * 24 * 3600,
}

# Keys Relay adds that the SDK did not send, and why that is no loss: paths as tuples of
# segments, "*" for any one key or list index.
IGNORED_ADDITIONS = {
    # Set at ingestion from the normalizer's config and the time of arrival.
    ("project",): "the project the payload was sent to (the normalizer's project_id)",
    ("received",): "the time Relay received the payload",
    ("key_id",): "the DSN key the payload came with",
    ("version",): "the protocol version of the request",
    ("ingest_path",): "the Relays the payload went through",
    ("grouping_config",): "the project's grouping config",
    # Defaults of fields the SDK may leave out.
    ("level",): "defaults to `error` for events, `info` for transactions",
    ("type",): "an event's type, from the item type or inferred from its contents",
    ("logger",): "defaults to the empty string",
    ("platform",): "defaults to `other`",
    ("timestamp",): "an event's time, the time received when not sent",
    ("transaction_info",): "a transaction's name source, `unknown` when the SDK sent none",
    ("transaction_info", "source"): "a transaction's name source, `unknown` when not sent",
    # Every context is written with its type, which the context's key implies.
    ("contexts", "*", "type"): "a context's type, implied by its key (`trace`, `os`, ...)",
    # Span normalization computes the time of a span not covered by its children.
    ("contexts", "trace", "exclusive_time"): "the transaction's exclusive time, computed",
    ("spans", "*", "exclusive_time"): "a span's exclusive time, computed from the spans",
    # Derived from the spans and the transaction: measurements and breakdowns.
    ("measurements",): "measurements Relay derives (none are sent)",
    ("breakdowns",): "span-op breakdowns Relay derives",
    ("_metrics",): "Relay's internal processing flags",
    # A transaction finished without a status (the tests' request transactions, which sentry's
    # own `start_transaction` opens) gets `unknown`. A status that was sent is compared as any
    # value: a changed one is reported.
    ("contexts", "trace", "status"): "a transaction's status, `unknown` when none was sent",
}

# Span data keys Relay backfills under their current name when a span carries them under a legacy
# name (a `legacy_alias` of Relay's span data schema), keeping the legacy key as it was: the added
# key is accepted only when the legacy key was sent, is kept, and has the same value, and it is
# listed in the report's `notes` (the sender may want the current name). Applies to
# `spans[*].data` and `contexts.trace.data`.
DATA_ALIASES = {
    "url.full": "url",
    "http.response.body.size": "http.response_content_length",
}
DATA_PATHS = (("spans", "*", "data"), ("contexts", "trace", "data"))


def _backfilled(path, key, value, sent):
    """Whether the added `path`/`key` is Relay's copy of a data key `sent` has under its legacy
    name."""
    alias = DATA_ALIASES.get(key)
    return (
        alias is not None
        and any(_matches(path, pattern) for pattern in DATA_PATHS)
        and alias in sent
        and (sent[alias] == value or _same_number(sent[alias], value))
    )


# Values Relay moves without changing them, applied to the input before it is compared.
def legacy_moves(sent):
    """The input as Relay writes it back: a top-level `message` string (the legacy form sentry's
    Rust SDK sends for `capture_message`) becomes `logentry.formatted`."""
    expected = dict(sent)
    message = expected.get("message")
    if isinstance(message, str) and "logentry" not in expected:
        del expected["message"]
        expected["logentry"] = {"formatted": message}
    return expected


# Values Relay rewrites without changing what they say, and why. Timestamps (any key named
# `timestamp` or `start_timestamp`) are compared as instants, to the microsecond: Relay parses
# them and writes them back as floats of microsecond precision, so the last digits of a float, or
# an RFC 3339 string with nanoseconds (sentry's Rust SDK sends a transaction's `timestamp` so),
# come back differently. Numbers are compared as numbers (Relay may write an integer as a float).
TIMESTAMP_KEYS = {"timestamp", "start_timestamp"}
TIMESTAMP_TOLERANCE_SECS = 5e-6


def _is_empty(value):
    """Whether dropping `value` loses nothing: null or empty (`{}`, `[]`, ""), which Relay does
    not keep."""
    return value is None or value == {} or value == [] or value == ""


def _matches(path, pattern):
    if len(path) != len(pattern):
        return False
    return all(p == "*" or p == str(seg) for seg, p in zip(path, pattern))


def _ignored(path, table):
    return any(_matches(path, pattern) for pattern in table)


def _show(path):
    """A path as `spans[0].data["messaging.system"]`."""
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += "[%d]" % seg
        elif seg.replace("_", "").isalnum():
            out += ("." if out else "") + seg
        else:
            out += "[%s]" % json.dumps(seg)
    return out or "(root)"


def _instant(value):
    """A timestamp (seconds as a number, or an RFC 3339 string) as seconds since the epoch."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.replace("Z", "+00:00")
        try:
            parsed = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        return parsed.timestamp()
    return None


def _same_number(a, b):
    """Whether `a` and `b` are the same number (`2` and `2.0`); booleans are not numbers."""
    numbers = (int, float)
    return (
        isinstance(a, numbers)
        and isinstance(b, numbers)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )


def diff(sent, kept, path, problems, notes):
    """Reports every value of `sent` dropped or changed in `kept`, and every addition of `kept`
    that is not in IGNORED_ADDITIONS or a backfilled data key (those go to `notes`)."""
    if path and path[-1] in TIMESTAMP_KEYS and not isinstance(sent, (dict, list)):
        a, b = _instant(sent), _instant(kept)
        if a is None or b is None or abs(a - b) > TIMESTAMP_TOLERANCE_SECS:
            problems.append(
                {"kind": "changed", "path": _show(path), "detail": "%r -> %r" % (sent, kept)}
            )
        return
    if isinstance(sent, dict) and isinstance(kept, dict):
        for key, value in sent.items():
            if key not in kept or kept[key] is None:
                if not _is_empty(value):
                    problems.append(
                        {
                            "kind": "dropped",
                            "path": _show(path + (key,)),
                            "detail": "sent %s" % json.dumps(value)[:200],
                        }
                    )
                continue
            diff(value, kept[key], path + (key,), problems, notes)
        for key, value in kept.items():
            if key in sent or value is None or (not path and key in ("_meta", "errors")):
                continue
            if _backfilled(path, key, value, sent):
                notes.append(
                    "%s: backfilled by Relay from its legacy name %s"
                    % (_show(path + (key,)), json.dumps(DATA_ALIASES[key]))
                )
            elif not _ignored(path + (key,), IGNORED_ADDITIONS):
                problems.append(
                    {
                        "kind": "added",
                        "path": _show(path + (key,)),
                        "detail": "added %s" % json.dumps(value)[:200],
                    }
                )
        return
    if isinstance(sent, list) and isinstance(kept, list):
        for index, value in enumerate(sent):
            if index >= len(kept) or kept[index] is None:
                if not _is_empty(value):
                    problems.append(
                        {
                            "kind": "dropped",
                            "path": _show(path + (index,)),
                            "detail": "sent %s" % json.dumps(value)[:200],
                        }
                    )
                continue
            diff(value, kept[index], path + (index,), problems, notes)
        for index in range(len(sent), len(kept)):
            problems.append(
                {
                    "kind": "added",
                    "path": _show(path + (index,)),
                    "detail": "added %s" % json.dumps(kept[index])[:200],
                }
            )
        return
    if sent == kept or _same_number(sent, kept):
        return
    problems.append(
        {
            "kind": "changed",
            "path": _show(path),
            "detail": "%s -> %s" % (json.dumps(sent)[:200], json.dumps(kept)[:200]),
        }
    )


def meta_problems(meta, path, problems):
    """Every `_meta` entry with errors or remarks, anywhere in the tree."""
    if not isinstance(meta, dict):
        return
    for key, value in meta.items():
        if key == "" and isinstance(value, dict):
            for err in value.get("err") or []:
                problems.append(
                    {
                        "kind": "meta_error",
                        "path": _show(path),
                        "detail": json.dumps(
                            {"err": err, "original": value.get("val")}, sort_keys=True
                        ),
                    }
                )
            for rem in value.get("rem") or []:
                problems.append(
                    {
                        "kind": "meta_remark",
                        "path": _show(path),
                        "detail": json.dumps(
                            {"rem": rem, "original_length": value.get("len")}, sort_keys=True
                        ),
                    }
                )
            continue
        seg = int(key) if key.isdigit() else key
        meta_problems(value, path + (seg,), problems)


def unwrap(entry):
    """The item type and the payload of one input entry."""
    if isinstance(entry, dict) and set(entry) == {"item_type", "payload"}:
        return entry["item_type"], entry["payload"]
    if isinstance(entry, dict) and "check_in_id" in entry:
        return "check_in", entry
    if isinstance(entry, dict) and entry.get("type") == "transaction":
        return "transaction", entry
    return "event", entry


def check(normalizer, entry):
    kind, payload = unwrap(entry)
    report = {"kind": kind, "skipped": None, "normalized": None, "problems": [], "notes": []}
    if kind == "check_in":
        # sentry-relay's Python bindings expose no check-in processing (relay-monitors is not
        # part of the C ABI), so Relay's check-in validation cannot be run here.
        report["skipped"] = "sentry-relay has no check-in normalization"
        return report
    if not isinstance(payload, dict):
        report["problems"].append(
            {"kind": "rejected", "path": "(root)", "detail": "not a JSON object"}
        )
        return report
    if kind not in ("event", "transaction"):
        report["skipped"] = "not an event or a transaction item"
        return report
    # Relay sets the event type from the item header before it normalizes: `transaction` for a
    # transaction item, none (to be inferred from the contents) for an event item.
    event = dict(payload)
    if kind == "transaction":
        event["type"] = "transaction"
    else:
        event.pop("type", None)
    try:
        normalized = normalizer.normalize_event(event)
    except Exception as err:  # any refusal of the normalizer is the answer, not a failure
        # The message, without the Rust backtrace sentry-relay appends to it.
        message = str(err).split("\n\nstacktrace:")[0].strip()
        report["problems"].append(
            {
                "kind": "rejected",
                "path": "(root)",
                "detail": "%s: %s" % (type(err).__name__, message),
            }
        )
        return report
    report["normalized"] = normalized
    problems = report["problems"]
    meta_problems(normalized.get("_meta"), (), problems)
    for error in normalized.get("errors") or []:
        problems.append(
            {
                "kind": "event_error",
                "path": str(error.get("name", "(root)")),
                "detail": json.dumps(error, sort_keys=True),
            }
        )
    diff(legacy_moves(payload), normalized, (), problems, report["notes"])
    return report


def main():
    entries = json.load(sys.stdin)
    if not isinstance(entries, list):
        raise SystemExit("normalize.py: expected a JSON list of items on stdin")
    normalizer = StoreNormalizer(**NORMALIZER_CONFIG)
    reports = [check(normalizer, entry) for entry in entries]
    json.dump(reports, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
