#!/usr/bin/env bash
# The no-op drain rate of two builds of `examples/task_worker`, side by side: issue 15's
# bound that its features, present but unused, cost the no-op rate at most 10 %.
#
#   bash benches/noop_before_after.sh BACKEND ROUNDS BEFORE_BIN AFTER_BIN
#
# BACKEND is `sqlite` (a fresh file per run, concurrency 16) or `postgres` (a fresh schema
# per run in MAILROOM_TEST_POSTGRES_URL or the local test database, concurrency 32). Build
# each side in its own checkout and target directory, e.g. for the build before issue 15:
#
#   git worktree add --detach /tmp/before 22711f3
#   (cd /tmp/before && CARGO_TARGET_DIR=/tmp/before-target cargo build --release \
#       --no-default-features --features sqlite,postgres --example task_worker)
#
# Each round enqueues 20,000 no-op tasks for each side, then times its work phase (a burst
# worker from process start to exit) with the two sides alternating; it prints every round
# and the medians of each side and of the per-round ratios (after / before).
set -euo pipefail
backend="$1"
rounds="$2"
before="$3"
after="$4"
n=20000
url="${MAILROOM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Prints the tasks per second of one work phase of binary $1.
drain() {
  local bin="$1" queue concurrency schema=""
  case "$backend" in
    sqlite)
      queue="sqlite:$dir/q.db"
      concurrency=16
      rm -f "$dir"/q.db*
      ;;
    postgres)
      schema="noop_cmp_$RANDOM$RANDOM"
      queue="$url?schema=$schema"
      concurrency=32
      ;;
    *) echo "unknown backend $backend (sqlite or postgres)" >&2; exit 64 ;;
  esac
  "$bin" enqueue "$queue" "$n" --noop >/dev/null
  local t0 t1
  t0=$(date +%s.%N)
  "$bin" work "$queue" /dev/null --concurrency "$concurrency" --burst >/dev/null
  t1=$(date +%s.%N)
  if [ -n "$schema" ]; then
    PGOPTIONS="--client-min-messages=warning" psql "$url" -qAtc "DROP SCHEMA $schema CASCADE"
  fi
  echo "$n / ($t1 - $t0)" | bc -l
}

declare -a b a r
for round in $(seq "$rounds"); do
  x=$(drain "$before")
  y=$(drain "$after")
  b+=("$x")
  a+=("$y")
  r+=("$(echo "$y / $x" | bc -l)")
  printf 'round %d (load %s): before %.0f/s, after %.0f/s, ratio %.3f\n' \
    "$round" "$(cut -d' ' -f1 /proc/loadavg)" "$x" "$y" "${r[-1]}"
done
printf 'median: before %.0f/s, after %.0f/s; median ratio %.3f\n' \
  "$(printf '%s\n' "${b[@]}" | median)" "$(printf '%s\n' "${a[@]}" | median)" \
  "$(printf '%s\n' "${r[@]}" | median)"
