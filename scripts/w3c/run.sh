#!/usr/bin/env bash
# Runs W3C's Trace Context validation suite (w3c/trace-context, test/: the working group's harness)
# against the example service `w3c_service`, on 127.0.0.1 only.
#   bash scripts/w3c/run.sh PATH [PATTERN...]
#   W3C_TRACE_CONTEXT=PATH bash scripts/w3c/run.sh [PATTERN...]
# PATH is a checkout of w3c/trace-context, or its git directory (a bare or mirror clone works:
# test/ is read from its HEAD). The suite is copied to a temporary directory and run from there;
# nothing of it is written into this repository. PATTERNs select tests as test.py takes them
# (e.g. TraceContextTest.test_tracestate_duplicated_keys).
# The suite runs at Trace Context Level 1 (SPEC_LEVEL=1, the suite's default and the level the
# crate implements) with every tracestate check (STRICT_LEVEL=2); both can be overridden. The
# harness listens on 127.0.0.1:7777 (HARNESS_PORT to change it); the service on a free port.
# Exit status: the suite's (0 when every test passed).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"

suite="${W3C_TRACE_CONTEXT:-}"
if [ -z "$suite" ]; then
  [ "$#" -gt 0 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
  suite="$1"
  shift
fi
[ -e "$suite" ] || { echo "run.sh: $suite does not exist" >&2; exit 2; }

tmp="$(mktemp -d)"
service_pid=""
cleanup() {
  if [ -n "$service_pid" ]; then
    kill "$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# The suite, from a work tree or from a git directory.
if [ -f "$suite/test/test.py" ]; then
  cp -R "$suite/test" "$tmp/test"
elif git --git-dir="$suite" rev-parse --verify -q HEAD >/dev/null; then
  git --git-dir="$suite" archive HEAD test | tar -x -C "$tmp"
else
  echo "run.sh: $suite is neither a checkout nor a git directory of w3c/trace-context" >&2
  exit 2
fi
[ -f "$tmp/test/test.py" ] || { echo "run.sh: no test/test.py in $suite" >&2; exit 2; }
if git --git-dir="$suite" rev-parse -q HEAD >/dev/null 2>&1; then
  echo "w3c suite: $(git --git-dir="$suite" log -1 --format='%h %s' HEAD)"
elif git -C "$suite" rev-parse -q HEAD >/dev/null 2>&1; then
  echo "w3c suite: $(git -C "$suite" log -1 --format='%h %s' HEAD)"
fi

bash "$root/scripts/w3c/setup.sh"

cd "$root"
cargo build -q -p traced-spawn-examples --all-features --example w3c_service
target_dir="$(cargo metadata --format-version 1 --no-deps \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
env -u SENTRY_DSN "$target_dir/debug/examples/w3c_service" --listen 127.0.0.1:0 \
  >"$tmp/service.log" 2>&1 &
service_pid=$!
url=""
for _ in $(seq 150); do
  url="$(sed -n 's/^w3c_service listening on \(http:[^ ]*\)$/\1/p' "$tmp/service.log")"
  [ -n "$url" ] && break
  kill -0 "$service_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "run.sh: w3c_service did not start" >&2
  cat "$tmp/service.log" >&2
  exit 1
fi
echo "w3c_service: $url"

cd "$tmp/test"
status=0
SPEC_LEVEL="${SPEC_LEVEL:-1}" STRICT_LEVEL="${STRICT_LEVEL:-2}" \
  HARNESS_HOST="${HARNESS_HOST:-127.0.0.1}" HARNESS_PORT="${HARNESS_PORT:-7777}" \
  timeout 600 "$root/scripts/w3c/.venv/bin/python" test.py "$url" "$@" 2>&1 || status=$?
exit "$status"
