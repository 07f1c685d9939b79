#!/usr/bin/env bash
# Stops the Spotlight started by start.sh (only that process, by its recorded pid).
#   bash scripts/spotlight/stop.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# Spotlight closes its server on the first SIGTERM and exits on the second (sent after 1 s).
exec bash "$here/../stop-recorded.sh" "$here/.run" 10
