#!/usr/bin/env bash
# Starts a private Redis in the background on 127.0.0.1, with no persistence (no RDB snapshots,
# no AOF), and prints its URL (redis://127.0.0.1:PORT) on stdout once it answers PING. Stop it
# with stop.sh.
#   REDIS_URL="$(bash scripts/redis/start.sh [PORT])"    # PORT 0 (default): a free port
# Its log goes to scripts/redis/.run/redis.log. Run setup.sh first.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)"
port="${1:-0}"
run="$dir/.run"

command -v redis-server >/dev/null || {
  echo "start.sh: redis-server is not installed: run scripts/redis/setup.sh first" >&2
  exit 1
}
if [ -f "$run/pid" ] && kill -0 "$(cat "$run/pid")" 2>/dev/null; then
  echo "start.sh: Redis is already running (pid $(cat "$run/pid")): stop it with stop.sh" >&2
  exit 1
fi
mkdir -p "$run"
rm -f "$run/pid" "$run/port"

# Redis cannot pick a free port itself (port 0 disables TCP): ask the kernel for one, then try
# again if another process takes it first.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' \
    2>/dev/null || echo $(( 20000 + RANDOM % 20000 ))
}

for _ in 1 2 3; do
  p="$port"
  if [ "$p" = 0 ]; then p="$(free_port)"; fi
  # Output to the log, not our stdout: `$(start.sh)` must not wait for the server.
  redis-server --bind 127.0.0.1 --port "$p" --protected-mode yes \
    --save '' --appendonly no --dir "$run" --daemonize no \
    --logfile "$run/redis.log" >/dev/null 2>&1 </dev/null &
  pid=$!
  for _ in $(seq 100); do
    if redis-cli -h 127.0.0.1 -p "$p" ping 2>/dev/null | grep -q PONG; then
      echo "$pid" >"$run/pid"
      echo "$p" >"$run/port"
      echo "redis://127.0.0.1:$p"
      exit 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ "$port" = 0 ] || break
done
echo "start.sh: Redis did not start; its log:" >&2
cat "$run/redis.log" >&2 2>/dev/null || true
exit 1
