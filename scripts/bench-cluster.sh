#!/usr/bin/env bash
# Stream ingest on one Redis vs a 3-master Redis Cluster, in one run:
# the stream worker's BenchmarkIngest (streaming/) alternately on a
# redis-server of this script's own and on scripts/redis-cluster.sh's
# cluster, RUNS times each. Both are local, without persistence, and used by
# nothing else, so that neither pays for other clients.
#
#   scripts/bench-cluster.sh [RUNS]     (default 3; about 25 s per pair)
#
# AISLE_REDIS_CLUSTER_PORT moves the cluster (default 7100); the single
# server listens on that port + 99.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3}
base=${AISLE_REDIS_CLUSTER_PORT:-7100}
single=$((base + 99))
go=${GO:-go}

cluster_url=$(./scripts/redis-cluster.sh start "$base")

dir=$(mktemp -d)
trap 'kill "$(cat "$dir/redis.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$dir"' EXIT
redis-server --port "$single" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
  --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
for _ in $(seq 1 100); do
  [ "$(redis-cli -h 127.0.0.1 -p "$single" ping 2>/dev/null)" = PONG ] && break
  sleep 0.1
done

bench() { # label, then environment assignments
  local label=$1
  shift
  env "$@" "$go" test -count=1 -run '^$' -bench '^BenchmarkIngest$' -benchtime 3x ./streaming/ |
    sed -n "s/^Benchmark/$label &/p"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq 1 "$runs"); do
  bench "one node:" AISLE_REDIS_CLUSTER=false REDIS_URL="redis://127.0.0.1:$single/0"
  bench "cluster: " AISLE_REDIS_CLUSTER=true REDIS_URL="$cluster_url"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
