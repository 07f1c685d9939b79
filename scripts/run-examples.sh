#!/usr/bin/env bash
# Runs the example programs as checks: each prints the trace it produced as a tree and exits
# non-zero when a continuation is not linked under its caller.
#   bash scripts/run-examples.sh              # all of them
#   bash scripts/run-examples.sh thread job_queue
# They are built with the features of `cargo test --workspace --all-features`, so after that
# command nothing is rebuilt; each run is bounded (60 s) and reports to the console only
# (SENTRY_DSN and SENTRY_SPOTLIGHT are unset for them). `apalis_queue` needs REDIS_URL
# (scripts/redis/start.sh) and `nats_queue` NATS_URL (scripts/nats/start.sh): without it, each is
# skipped with a notice, or fails when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

all=(quickstart without_macro thread tokio_task blocking rayon_pool job_queue cross_service
  tracing_logs slack_bot apalis_queue nats_queue fan_out cron_job)
if [ "$#" -gt 0 ]; then names=("$@"); else names=("${all[@]}"); fi

cargo build -q --workspace --all-features --examples
target_dir="$(cargo metadata --format-version 1 --no-deps \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bin_dir="$target_dir/debug/examples"

for name in "${names[@]}"; do
  args=()
  if [ "$name" = slack_bot ] || [ "$name" = cron_job ]; then args=(--demo); fi
  if [ "$name" = apalis_queue ]; then
    args=(--demo)
    if [ -z "${REDIS_URL:-}" ]; then
      if [ "${CI:-}" = true ]; then
        echo "example apalis_queue: REDIS_URL is not set (scripts/redis/start.sh)" >&2
        exit 1
      fi
      printf '\n--- example apalis_queue: SKIPPED, REDIS_URL is not set (bash scripts/redis/setup.sh && export REDIS_URL="$(bash scripts/redis/start.sh)")\n'
      continue
    fi
  fi
  if [ "$name" = nats_queue ]; then
    args=(--demo)
    if [ -z "${NATS_URL:-}" ]; then
      if [ "${CI:-}" = true ]; then
        echo "example nats_queue: NATS_URL is not set (scripts/nats/start.sh)" >&2
        exit 1
      fi
      printf '\n--- example nats_queue: SKIPPED, NATS_URL is not set (bash scripts/nats/setup.sh && export NATS_URL="$(bash scripts/nats/start.sh)")\n'
      continue
    fi
  fi
  printf '\n--- example %s\n' "$name${args[*]:+ ${args[*]}}"
  start=$(date +%s%N)
  if ! env -u SENTRY_DSN -u SENTRY_SPOTLIGHT timeout 60 "$bin_dir/$name" "${args[@]}"; then
    echo "example $name failed" >&2
    exit 1
  fi
  printf -- '--- %s: ok in %d ms\n' "$name" $(( ($(date +%s%N) - start) / 1000000 ))
done
