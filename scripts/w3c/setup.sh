#!/usr/bin/env bash
# Installs what W3C's Trace Context validation suite needs: a virtualenv in scripts/w3c/.venv with
# aiohttp, exactly as pinned in requirements.txt. Needs python3 (>= 3.9) with the venv module;
# reaches only PyPI. Does nothing when the venv already matches requirements.txt.
#   bash scripts/w3c/setup.sh
set -euo pipefail
cd "$(dirname "$0")"

command -v python3 >/dev/null || { echo "setup.sh: python3 is needed" >&2; exit 1; }
stamp=.venv/.installed-requirements
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && cmp -s requirements.txt "$stamp"; then
  echo "w3c suite dependencies: already installed"
  exit 0
fi
python3 -m venv .venv
# --no-deps: exactly what requirements.txt pins, nothing resolved behind its back.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt
cp requirements.txt "$stamp"
echo "w3c suite dependencies: installed aiohttp $(.venv/bin/python -c 'import aiohttp; print(aiohttp.__version__)')"
