#!/usr/bin/env python3
"""Counts what a running Spotlight receives from the slack_bot example when commands come after
idle pauses (Spotlight's Node server closes a keep-alive connection idle for 5 s).

    python3 scripts/spotlight/idle-scenario.py SPOTLIGHT_BASE_URL SLACK_BOT_BINARY spotlight|dsn

It serves slack_bot on a free port, reporting to Spotlight through SENTRY_SPOTLIGHT (`spotlight`)
or through SENTRY_DSN, sentry's own HTTP transport (`dsn`); sends three slash commands, the first
after a 7 s pause, then 1 s and 7 s later, each with its own upstream trace; waits 3 s; then
reads Spotlight's /stream and prints how many of the 9 transactions (3 per command) arrived, and
the client reports of discarded data Spotlight holds. Only loopback; Python 3 standard library.
"""
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request

if len(sys.argv) != 4 or sys.argv[3] not in ("spotlight", "dsn"):
    sys.exit(__doc__)
base, binary, mode = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
host, port = base.split("//", 1)[1].split(":")
env = {k: v for k, v in os.environ.items() if k not in ("SENTRY_DSN", "SENTRY_SPOTLIGHT")}
if mode == "dsn":
    env["SENTRY_DSN"] = f"http://public@{host}:{port}/0"
else:
    env["SENTRY_SPOTLIGHT"] = f"{base}/stream"

bot = subprocess.Popen([binary, "--port", "0"], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
try:
    line = ""
    while "listening on" not in line:
        line = bot.stdout.readline()
        if not line:
            sys.exit("slack_bot did not start")
    url = re.search(r"listening on (\S+)", line).group(1)
    threading.Thread(target=lambda: [None for _ in bot.stdout], daemon=True).start()

    traces = []
    for pause in (7, 1, 7):
        time.sleep(pause)
        trace_id, span_id = "%032x" % random.getrandbits(128), "%016x" % random.getrandbits(64)
        traces.append(trace_id)
        request = urllib.request.Request(
            url + "/slack/commands",
            data=b"channel_id=C042&user_name=ada&text=why+is+the+build+red",
            headers={"sentry-trace": f"{trace_id}-{span_id}-1",
                     "baggage": f"sentry-trace_id={trace_id},sentry-sampled=true"})
        urllib.request.urlopen(request).read()
    time.sleep(3)

    stream = socket.create_connection((host, int(port)))
    stream.sendall(f"GET /stream?client=idle-scenario HTTP/1.1\r\nHost: {host}:{port}\r\n"
                   "Accept: text/event-stream\r\n\r\n".encode())
    stream.settimeout(2)
    data = b""
    try:
        while chunk := stream.recv(65536):
            data += chunk
    except socket.timeout:
        pass
finally:
    bot.kill()
    bot.wait()

counts = {trace_id: 0 for trace_id in traces}
reports = []
for match in re.finditer(rb"data:(.*)", data):
    try:
        envelope = json.loads(match.group(1))
    except ValueError:
        continue
    for header, payload in envelope[1]:
        if header.get("type") == "client_report" and payload.get("discarded_events"):
            reports.append(payload["discarded_events"])
        if header.get("type") == "transaction":
            trace_id = payload["contexts"]["trace"]["trace_id"]
            if trace_id in counts:
                counts[trace_id] += 1
print(f"{mode} {os.path.basename(binary)}: {sum(counts.values())}/9 transactions received; "
      f"per command {[counts[t] for t in traces]}; client reports of discards held by "
      f"Spotlight (any client): {len(reports)}")
