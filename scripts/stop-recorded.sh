#!/usr/bin/env bash
# Stops the process a service's start.sh recorded in RUN_DIR/pid (only that process), and removes
# its pid and port files. SIGTERM first; with RETERM_AT, a second SIGTERM after that many tenths of
# a second; SIGKILL after 5 s.
#   bash scripts/stop-recorded.sh RUN_DIR [RETERM_AT]
set -euo pipefail
run="$1"
reterm_at="${2:-}"
[ -f "$run/pid" ] || exit 0
pid="$(cat "$run/pid")"
rm -f "$run/pid" "$run/port"
kill -0 "$pid" 2>/dev/null || exit 0
kill -TERM "$pid" 2>/dev/null || true
for i in $(seq 50); do
  kill -0 "$pid" 2>/dev/null || exit 0
  if [ "$i" = "$reterm_at" ]; then kill -TERM "$pid" 2>/dev/null || true; fi
  sleep 0.1
done
kill -KILL "$pid" 2>/dev/null || true
