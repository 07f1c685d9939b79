#!/usr/bin/env bash
# Installs the NATS server (nats-server, with JetStream) from Debian's packages when it is missing.
# Reaches only the Debian archive, and only when something must be installed; with nats-server
# present it does nothing.
#   bash scripts/nats/setup.sh
set -euo pipefail

version() { nats-server --version 2>/dev/null | sed -n 's/.*v\([0-9][^ ]*\).*/\1/p'; }

if command -v nats-server >/dev/null 2>&1; then
  echo "nats: already installed ($(version))"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || {
  echo "setup.sh: nats-server is missing and apt-get is not available: install nats-server >= 2.9 (JetStream)" >&2
  exit 1
}
sudo=()
if [ "$(id -u)" != 0 ]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# --no-install-recommends: the server only. The package's own service is not used: start.sh runs
# a private instance on a free port.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends nats-server >/dev/null
echo "nats: installed ($(version))"
