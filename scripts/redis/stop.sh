#!/usr/bin/env bash
# Stops the Redis started by start.sh (only that process, by its recorded pid).
#   bash scripts/redis/stop.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/../stop-recorded.sh" "$here/.run"
