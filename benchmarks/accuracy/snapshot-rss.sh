#!/usr/bin/env bash
# What the exit snapshot costs a program: peak RSS and the time to take and write it, on the
# real-crates workloads of this benchmark (a ~100 MB release binary with `debug = "limited"`),
# three ways: no snapshot, the exit snapshot raw (the default: return addresses and modules,
# symbolized later by the CLI), and symbolized in process (TRACEALLOC_SYMBOLIZE=process). Each
# workload runs without its in-process report (ACCURACY_NO_REPORT=1), so that the exit snapshot is
# the only one. Results: docs/performance.md, "What a snapshot costs the profiled program".
#
#   cargo build --release --bin accuracy        # from this directory
#   ./snapshot-rss.sh                           # RUNS=5 WORKLOADS="markdown index" to change
set -euo pipefail
cd "$(dirname "$0")"
bin=${ACCURACY_BIN:-${CARGO_TARGET_DIR:-target}/release/accuracy}
runs=${RUNS:-3}
workloads=${WORKLOADS:-markdown walk+grep serialize http index}
[ -x "$bin" ] || { echo "build it first: cargo build --release --bin accuracy" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

echo "binary: $bin ($(( $(stat -c %s "$bin") / 1000000 )) MB), $runs runs per cell, warm (page cache)"
echo
echo "| workload | no snapshot: peak RSS | raw exit snapshot: peak RSS | time | file | symbolized in process: peak RSS | time | file |"
echo "|---|---|---|---|---|---|---|---|"
# min-max of a column of numbers, as "a-b" (or "a")
range() { sort -n | awk 'NR==1{lo=$1} {hi=$1} END{ if (lo==hi) print lo; else print lo "-" hi }'; }
for workload in $workloads; do
  # A warm-up run: the binary and the workload's inputs in the page cache.
  ACCURACY_NO_REPORT=1 "$bin" run "$workload" > /dev/null 2>&1
  row="| $workload |"
  for mode in none later process; do
    : > "$dir/rss"; : > "$dir/ms"; : > "$dir/size"
    for _ in $(seq "$runs"); do
      envs=(ACCURACY_NO_REPORT=1)
      if [ "$mode" != none ]; then
        envs+=(TRACEALLOC_OUT="$dir/exit.json" TRACEALLOC_SYMBOLIZE="$mode")
      fi
      env "${envs[@]}" /usr/bin/time -f %M -o "$dir/time" "$bin" run "$workload" \
        > /dev/null 2> "$dir/err"
      awk '{printf "%.1f\n", $1 / 1024}' "$dir/time" >> "$dir/rss"
      if [ "$mode" != none ]; then
        sed -n 's/.*wrote the exit snapshot to .* (\([0-9]*\) ms.*/\1/p' "$dir/err" >> "$dir/ms"
        awk '{printf "%.0f\n", $1 / 1024}' <<< "$(stat -c %s "$dir/exit.json")" >> "$dir/size"
      fi
    done
    row="$row $(range < "$dir/rss") MiB |"
    if [ "$mode" != none ]; then
      row="$row $(range < "$dir/ms") ms | $(range < "$dir/size") KiB |"
    fi
  done
  echo "$row"
done
