#!/usr/bin/env bash
# mailroom's PostgreSQL worker against graphile-worker on the same database, side by side:
# 20,000 no-op tasks drained by one worker process at concurrency 32, interleaved rounds,
# the median of each printed with the ratios (issue 15's speed target: mailroom at least
# 1.5x graphile-worker's batched mode).
#
#   bash benches/compare_graphile.sh [ROUNDS]    (MAILROOM_TEST_POSTGRES_URL or the local test db)
#
# mailroom is timed from outside, process start to exit (which counts its start-up against
# it); graphile-worker from inside, from just before its worker starts until it has stopped
# with every completion flushed.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
url="${MAILROOM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
n=20000
concurrency=32

(cd benches/graphile && [ -d node_modules/graphile-worker ] || npm install --silent --no-audit --no-fund)
cargo build --quiet --release --all-features --example task_worker
worker=target/release/examples/task_worker

sql() { PGOPTIONS="--client-min-messages=warning" psql "$url" -qAtc "$1"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -a mr gb gd
for round in $(seq "$rounds"); do
  s="mailroom_cmp_$RANDOM$RANDOM"
  "$worker" enqueue "$url?schema=$s" "$n" --noop >/dev/null
  t0=$(date +%s.%N)
  "$worker" work "$url?schema=$s" /dev/null --concurrency "$concurrency" --burst >/dev/null
  t1=$(date +%s.%N)
  mr+=("$(echo "$n / ($t1 - $t0)" | bc -l | cut -d. -f1)")
  sql "DROP SCHEMA \"$s\" CASCADE"
  for mode in batched default; do
    g="graphile_cmp_$RANDOM$RANDOM"
    rate=$(cd benches/graphile && DATABASE_URL="$url" node bench.mjs "$mode" "$n" "$concurrency" "$g")
    sql "DROP SCHEMA \"$g\" CASCADE"
    if [ "$mode" = batched ]; then gb+=("$rate"); else gd+=("$rate"); fi
  done
  echo "round $round: mailroom ${mr[-1]}/s, graphile-worker batched ${gb[-1]}/s, default ${gd[-1]}/s"
done
m=$(printf '%s\n' "${mr[@]}" | median)
b=$(printf '%s\n' "${gb[@]}" | median)
d=$(printf '%s\n' "${gd[@]}" | median)
echo "median of $rounds: mailroom $m/s, graphile-worker batched $b/s, default $d/s"
echo "ratio mailroom / graphile batched: $(echo "scale=2; $m / $b" | bc)"
echo "ratio mailroom / graphile default: $(echo "scale=2; $m / $d" | bc)"
