#!/usr/bin/env bash
# Installs the Python side of the interop tests (propagation: peer.py; Sentry Crons check-ins:
# checkin.py; Relay's ingestion normalization: normalize.py): a virtualenv in scripts/python/.venv
# with Sentry's Python SDK and sentry-relay, exactly as pinned in requirements.txt. Needs python3
# (>= 3.11, for the pinned pycparser) with the venv module; reaches only PyPI. Does nothing when
# the venv already matches requirements.txt.
#   bash scripts/python/setup.sh
set -euo pipefail
cd "$(dirname "$0")"

command -v python3 >/dev/null || { echo "setup.sh: python3 is needed" >&2; exit 1; }
stamp=.venv/.installed-requirements
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && cmp -s requirements.txt "$stamp"; then
  echo "python peer: already installed"
  exit 0
fi
python3 -m venv .venv
# --no-deps: exactly what requirements.txt pins, nothing resolved behind its back.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt
cp requirements.txt "$stamp"
echo "python peer: installed sentry-sdk $(.venv/bin/python -c 'import sentry_sdk; print(sentry_sdk.VERSION)')"
