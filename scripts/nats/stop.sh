#!/usr/bin/env bash
# Stops the NATS server started by start.sh (only that process, by its recorded pid) and removes
# its JetStream store.
#   bash scripts/nats/stop.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
run="$here/.run"
bash "$here/../stop-recorded.sh" "$run"
rm -f "$run"/*.ports
if [ -f "$run/store" ]; then
  rm -rf "$(cat "$run/store")"
  rm -f "$run/store"
fi
