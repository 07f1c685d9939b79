#!/usr/bin/env bash
# Stops the Spotlight started by start.sh (only that process, by its recorded pid).
#   bash scripts/spotlight/stop.sh
set -euo pipefail
run="$(cd "$(dirname "$0")" && pwd)/.run"
[ -f "$run/pid" ] || exit 0
pid="$(cat "$run/pid")"
rm -f "$run/pid" "$run/port"
kill -0 "$pid" 2>/dev/null || exit 0
# Spotlight closes its server on the first SIGTERM and exits on the second.
kill -TERM "$pid" 2>/dev/null || true
for i in $(seq 50); do
  kill -0 "$pid" 2>/dev/null || exit 0
  if [ "$i" = 10 ]; then kill -TERM "$pid" 2>/dev/null || true; fi
  sleep 0.1
done
kill -KILL "$pid" 2>/dev/null || true
