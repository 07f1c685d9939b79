#!/usr/bin/env bash
# Stops the Redis started by start.sh (only that process, by its recorded pid).
#   bash scripts/redis/stop.sh
set -euo pipefail
run="$(cd "$(dirname "$0")" && pwd)/.run"
[ -f "$run/pid" ] || exit 0
pid="$(cat "$run/pid")"
rm -f "$run/pid" "$run/port"
kill -0 "$pid" 2>/dev/null || exit 0
kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 50); do
  kill -0 "$pid" 2>/dev/null || exit 0
  sleep 0.1
done
kill -KILL "$pid" 2>/dev/null || true
