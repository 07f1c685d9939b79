#!/usr/bin/env bash
# Build cost of `#[traced_spawn]` per annotated fn, against the same fns without an attribute,
# with `#[tracing::instrument(skip_all)]` (the anchor), and spawned by hand without tracing
# (`std::thread::spawn` / `tokio::spawn` of the same body: what offloading costs by itself):
# generates four crates of N fns each (half sync, half async), builds their dependencies once,
# then rebuilds each crate alone R times, interleaved, and prints the median build time and the
# cost per fn over the plain crate.
#   bash scripts/compile-time/measure.sh [N=600] [R=5] [check|build|release]
# KIND=sync or KIND=async generates only that kind of fn (default: both, half each).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
n="${1:-600}"
rounds="${2:-5}"
mode="${3:-build}"
# `release` is `cargo build --release`.
flags=()
if [ "$mode" = release ]; then mode=build; flags=(--release); fi
kind="${KIND:-both}"
if [ "$kind" = both ]; then per_kind=$((n / 2)); else per_kind="$n"; fi
dir="$root/target/compile-time"
export CARGO_TARGET_DIR="$dir/target"
mkdir -p "$dir"

# One crate per variant; `attr` is what stands above every fn (`spawn`: no attribute, the body
# spawned by hand).
generate() { # name attr
  local name="$1" attr="$2" crate="$dir/$1"
  mkdir -p "$crate/src"
  cat > "$crate/Cargo.toml" <<TOML
[package]
name = "ct-$name"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
traced-spawn = { path = "$root/runtime" }
tracing = { version = "0.1", default-features = false, features = ["std", "attributes"] }
tokio = { version = "1", default-features = false, features = ["rt"] }
TOML
  {
    echo "#![allow(dead_code, unused_imports)]"
    echo "use traced_spawn::traced_spawn;"
    for i in $(seq 1 "$per_kind"); do
      if [ "$name" = spawn ]; then
        if [ "$kind" != async ]; then
        echo "pub fn sync_$i(a: u64, b: String) -> std::thread::JoinHandle<Result<u64, String>> { std::thread::spawn(move || { if b.is_empty() { return Err(b); } Ok(a + $i) }) }"
        fi
        if [ "$kind" != sync ]; then
        echo "pub fn async_$i(a: u64, b: String) -> tokio::task::JoinHandle<Result<u64, String>> { tokio::spawn(async move { if b.is_empty() { return Err(b); } Ok(a * $i) }) }"
        fi
        continue
      fi
      if [ "$kind" != async ]; then
      echo "$attr"
      echo "pub fn sync_$i(a: u64, b: String) -> Result<u64, String> { if b.is_empty() { return Err(b); } Ok(a + $i) }"
      fi
      if [ "$kind" != sync ]; then
      echo "$attr"
      echo "pub async fn async_$i(a: u64, b: String) -> Result<u64, String> { if b.is_empty() { return Err(b); } Ok(a * $i) }"
      fi
    done
  } > "$crate/src/lib.rs"
}

generate plain ""
generate traced "#[traced_spawn]"
generate instrument "#[tracing::instrument(skip_all)]"
generate spawn ""
printf '[workspace]\nmembers = ["plain", "traced", "instrument", "spawn"]\nresolver = "2"\n' > "$dir/Cargo.toml"

cd "$dir"
cargo "$mode" "${flags[@]}" -q --workspace >/dev/null 2>&1 || cargo "$mode" "${flags[@]}" --workspace
declare -A times
for round in $(seq 1 "$rounds"); do
  for variant in plain traced instrument spawn; do
    touch "$variant/src/lib.rs"
    start=$(date +%s%N)
    cargo "$mode" "${flags[@]}" -q -p "ct-$variant"
    times[$variant]+="$(( ($(date +%s%N) - start) / 1000000 )) "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
plain=$(echo "${times[plain]}" | median)
echo "cargo $mode${flags[*]:+ ${flags[*]}}, $n fns ($kind), median of $rounds interleaved rebuilds:"
for variant in plain traced instrument spawn; do
  m=$(echo "${times[$variant]}" | median)
  per=$(awk -v m="$m" -v p="$plain" -v n="$n" 'BEGIN {printf "%.2f", (m - p) / n}')
  printf '  %-10s %6d ms  (+%s ms per fn over plain; runs: %s)\n' "$variant" "$m" "$per" "${times[$variant]% }"
done
