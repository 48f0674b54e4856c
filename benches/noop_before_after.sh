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
# worker from process start to exit) with the two sides alternating, and which side goes
# first alternating too (a side that always ran second would inherit the first one's
# leftovers: dirty pages, a checkpoint, autovacuum). Beside the wall-clock rate it counts
# the CPU time the work phase used: the worker's (from /usr/bin/time) and, on PostgreSQL,
# the server's (every server process's, and the backends it has reaped, from /proc).
# Single rounds swing by 10-30 % on a 2-core machine, and CPU time per task swings with the
# rate (worker and server between them keep both cores busy), so it does not steady the
# figure; it does show a change of cost that the wall clock hides behind waiting. Decide a
# bound of 10 % on the medians of 12 or more rounds. It prints every round and the medians
# of each side and of the per-round ratios (after / before).
set -euo pipefail
shopt -s inherit_errexit # a failing step inside `$(drain …)` stops the script too
backend="$1"
rounds="$2"
before="$3"
after="$4"
n=20000
url="${MAILROOM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 69; }

median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# CPU seconds the PostgreSQL server has used so far (0 for SQLite): its live processes, and
# what the postmaster (the oldest `postgres`) has collected from the backends it reaped.
server_cpu() {
  [ "$backend" = postgres ] || { echo 0; return; }
  local pm ticks=0 pid f
  pm=$(pgrep -o -x postgres)
  for pid in $(pgrep -x postgres); do
    f=$(cut -d' ' -f14-17 "/proc/$pid/stat" 2>/dev/null) || continue
    read -r ut st cut cst <<<"$f"
    ticks=$((ticks + ut + st))
    [ "$pid" = "$pm" ] && ticks=$((ticks + cut + cst))
  done
  echo "$ticks / $(getconf CLK_TCK)" | bc -l
}

# Prints, for one work phase of binary $1: tasks per second, then CPU milliseconds per
# 1,000 tasks (worker and server together).
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
      # Dropped however this subshell ends, a failed run included.
      # (Expanded now: the function's locals are gone when the trap runs.)
      trap "PGOPTIONS=--client-min-messages=warning psql $(printf %q "$url") -qAtc 'DROP SCHEMA IF EXISTS $schema CASCADE'" EXIT
      concurrency=32
      ;;
    *) echo "unknown backend $backend (sqlite or postgres)" >&2; exit 64 ;;
  esac
  "$bin" enqueue "$queue" "$n" --noop >/dev/null
  local t0 t1 s0 s1 worker_cpu
  s0=$(server_cpu)
  t0=$(date +%s.%N)
  worker_cpu=$(/usr/bin/time -f '%U + %S' "$bin" work "$queue" /dev/null \
    --concurrency "$concurrency" --burst 2>&1 >/dev/null | tail -1)
  t1=$(date +%s.%N)
  sleep 0.3 # the worker's backends exit after it does; the postmaster reaps them
  s1=$(server_cpu)
  echo "$n / ($t1 - $t0)" | bc -l
  echo "($worker_cpu + $s1 - $s0) * 1000000 / $n" | bc -l
}

declare -a b a r bc ac rc
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then
    x=($(drain "$before")); y=($(drain "$after"))
  else
    y=($(drain "$after")); x=($(drain "$before"))
  fi
  b+=("${x[0]}"); a+=("${y[0]}"); r+=("$(echo "${y[0]} / ${x[0]}" | bc -l)")
  bc+=("${x[1]}"); ac+=("${y[1]}"); rc+=("$(echo "${y[1]} / ${x[1]}" | bc -l)")
  printf 'round %d (load %s): before %.0f/s %.1f cpu-ms/1k, after %.0f/s %.1f cpu-ms/1k; rate ratio %.3f, cpu ratio %.3f\n' \
    "$round" "$(cut -d' ' -f1 /proc/loadavg)" "${x[0]}" "${x[1]}" "${y[0]}" "${y[1]}" "${r[-1]}" "${rc[-1]}"
done
printf 'median: before %.0f/s, after %.0f/s; median rate ratio %.3f\n' \
  "$(printf '%s\n' "${b[@]}" | median)" "$(printf '%s\n' "${a[@]}" | median)" \
  "$(printf '%s\n' "${r[@]}" | median)"
printf 'median CPU per 1,000 tasks: before %.1f ms, after %.1f ms; median cpu ratio %.3f (above 1: after costs more)\n' \
  "$(printf '%s\n' "${bc[@]}" | median)" "$(printf '%s\n' "${ac[@]}" | median)" \
  "$(printf '%s\n' "${rc[@]}" | median)"
