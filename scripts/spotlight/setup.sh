#!/usr/bin/env bash
# Installs Spotlight (a local receiver of the Sentry protocol) into scripts/spotlight/node_modules,
# exactly as pinned by the committed package-lock.json. Needs Node >= 20 and npm; reaches only the
# npm registry. Does nothing when the installed tree already matches the lock file.
#   bash scripts/spotlight/setup.sh
set -euo pipefail
cd "$(dirname "$0")"

command -v node >/dev/null || { echo "setup.sh: node (>= 20) is needed" >&2; exit 1; }
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "setup.sh: node >= 20 is needed, found $(node --version)" >&2
  exit 1
fi

stamp=node_modules/.installed-lock
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  echo "spotlight: already installed"
  exit 0
fi
# --ignore-scripts: no install script of any package runs. --no-audit/--no-fund: no extra requests.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
echo "spotlight: installed $(node -p 'require("./node_modules/@spotlightjs/spotlight/package.json").version')"
