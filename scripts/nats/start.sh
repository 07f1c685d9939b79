#!/usr/bin/env bash
# Starts a private NATS server in the background on 127.0.0.1 with JetStream on (its store in a
# temporary directory that stop.sh removes), and prints its URL (nats://127.0.0.1:PORT) on stdout
# once it accepts clients with JetStream enabled. Stop it with stop.sh.
#   NATS_URL="$(bash scripts/nats/start.sh [PORT])"    # PORT 0 (default): a free port
# Its log goes to scripts/nats/.run/nats.log. Run setup.sh first.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)"
port="${1:-0}"
run="$dir/.run"

command -v nats-server >/dev/null || {
  echo "start.sh: nats-server is not installed: run scripts/nats/setup.sh first" >&2
  exit 1
}
if [ -f "$run/pid" ] && kill -0 "$(cat "$run/pid")" 2>/dev/null; then
  echo "start.sh: NATS is already running (pid $(cat "$run/pid")): stop it with stop.sh" >&2
  exit 1
fi
mkdir -p "$run"
rm -f "$run/pid" "$run/port" "$run"/*.ports
# A store left by a server that was killed rather than stopped.
if [ -f "$run/store" ]; then rm -rf "$(cat "$run/store")"; fi
store="$(mktemp -d "${TMPDIR:-/tmp}/traced-spawn-nats.XXXXXX")"
echo "$store" >"$run/store"

# `-p -1`: the server takes a free port itself and writes it to its ports file (no race with
# another process). Output to the log, not our stdout: `$(start.sh)` must not wait for the server.
if [ "$port" = 0 ]; then port=-1; fi
nats-server -a 127.0.0.1 -p "$port" -js -sd "$store" -P "$run/pid" \
  --ports_file_dir "$run" -l "$run/nats.log" >/dev/null 2>&1 </dev/null &
pid=$!

# The server's first line to a client is INFO, with "jetstream":true once JetStream is on.
ready() {
  local p="$1" info
  exec 3<>"/dev/tcp/127.0.0.1/$p" || return 1
  IFS= read -r -t 2 info <&3 || info=""
  exec 3<&- 3>&-
  [[ "$info" == INFO*'"jetstream":true'* ]]
}

for _ in $(seq 150); do
  kill -0 "$pid" 2>/dev/null || break
  ports="$run/nats-server_$pid.ports"
  if [ -f "$ports" ]; then
    p="$(sed -n 's/.*"nats":\["nats:\/\/[^"]*:\([0-9]*\)".*/\1/p' "$ports")"
    if [ -n "$p" ] && ready "$p" 2>/dev/null; then
      echo "$pid" >"$run/pid"
      echo "$p" >"$run/port"
      echo "nats://127.0.0.1:$p"
      exit 0
    fi
  fi
  sleep 0.1
done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
rm -f "$run/pid"
rm -rf "$store" "$run/store"
echo "start.sh: NATS did not start; its log:" >&2
cat "$run/nats.log" >&2 2>/dev/null || true
exit 1
