#!/usr/bin/env bash
# Starts Spotlight in the background, listening on 127.0.0.1 only, and prints its base URL
# (http://127.0.0.1:PORT) on stdout, once it accepts connections. Stop it with stop.sh.
#   SPOTLIGHT_URL="$(bash scripts/spotlight/start.sh [PORT])"    # PORT 0 (default): any free port
# Its log goes to scripts/spotlight/.run/spotlight.log. Run setup.sh first.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)"
port="${1:-0}"
run="$dir/.run"

if [ ! -d "$dir/node_modules/@spotlightjs/spotlight" ]; then
  echo "start.sh: Spotlight is not installed: run scripts/spotlight/setup.sh first" >&2
  exit 1
fi
if [ -f "$run/pid" ] && kill -0 "$(cat "$run/pid")" 2>/dev/null; then
  echo "start.sh: Spotlight is already running (pid $(cat "$run/pid")): stop it with stop.sh" >&2
  exit 1
fi
mkdir -p "$run"
rm -f "$run/port" "$run/pid"

# Its output goes to the log, not to our stdout: `$(start.sh)` must not wait for the server.
node "$dir/server.mjs" "$port" "$run/port" >"$run/spotlight.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$run/pid"

# server.mjs writes the port file once the server listens. Give it 15 s.
for _ in $(seq 150); do
  if [ -s "$run/port" ]; then
    echo "http://127.0.0.1:$(cat "$run/port")"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
echo "start.sh: Spotlight did not start; its log:" >&2
cat "$run/spotlight.log" >&2
kill "$pid" 2>/dev/null || true
rm -f "$run/pid"
exit 1
