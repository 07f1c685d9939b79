#!/usr/bin/env bash
# Installs Redis (redis-server and redis-cli) from Debian's packages when it is missing. Reaches only
# the Debian archive, and only when something must be installed; with Redis present it does nothing.
#   bash scripts/redis/setup.sh
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  echo "redis: already installed ($(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p'))"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || {
  echo "setup.sh: redis-server is missing and apt-get is not available: install Redis >= 6.2" >&2
  exit 1
}
sudo=()
if [ "$(id -u)" != 0 ]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# --no-install-recommends: the server and the CLI, no extras. The package's own service is not
# used: start.sh runs a private instance on a free port.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends redis-server >/dev/null
echo "redis: installed ($(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p'))"
