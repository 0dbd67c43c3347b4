#!/usr/bin/env bash
# A local Redis Cluster of 3 masters and 3 replicas, for the tests and for
# trying Aisle on a cluster (AISLE_REDIS_CLUSTER=true).
#
#   scripts/redis-cluster.sh [start|stop|url] [PORT_BASE]
#
# start (the default) starts the six nodes on PORT_BASE..PORT_BASE+5 (their
# cluster bus on the port + 10000), or reuses them when they already form a
# healthy cluster, waits until every node says cluster_state:ok, every slot
# is served and every replica is in sync, and prints the REDIS_URL in
# go-redis's cluster form on stdout (everything else goes to stderr):
#
#   export REDIS_URL=$(scripts/redis-cluster.sh start) AISLE_REDIS_CLUSTER=true
#
# stop stops the nodes this script started there and deletes their data.
# url prints the URL without checking anything.
#
# Environment: AISLE_REDIS_CLUSTER_PORT (PORT_BASE when no argument gives
# it; default 7100), AISLE_REDIS_CLUSTER_DIR (where the nodes keep their
# config, logs and pid files; default ${TMPDIR:-/tmp}/aisle-redis-cluster-PORT_BASE),
# AISLE_REDIS_CLUSTER_NODE_TIMEOUT (cluster-node-timeout in ms, default
# 2000: a replica takes over about that long after its master dies).
# Data is not persisted: a cluster is for tests and trials, and Kafka is the
# ground truth anyway (aisle replay rebuilds the features).
set -euo pipefail

cmd=${1:-start}
base=${2:-${AISLE_REDIS_CLUSTER_PORT:-7100}}
dir=${AISLE_REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/aisle-redis-cluster-$base}
node_timeout=${AISLE_REDIS_CLUSTER_NODE_TIMEOUT:-2000}

case $base in
  '' | *[!0-9]*) echo "redis-cluster: the port base must be a number, got '$base'" >&2; exit 2 ;;
esac
if [ "$base" -lt 1024 ] || [ "$base" -gt 55530 ]; then
  # The cluster bus listens on port + 10000, which must stay a valid port.
  echo "redis-cluster: the port base must be within 1024..55530, got $base" >&2
  exit 2
fi
ports=$(seq "$base" $((base + 5)))

url() {
  echo "redis://127.0.0.1:$base?addr=127.0.0.1:$((base + 1))&addr=127.0.0.1:$((base + 2))"
}

cli() { # port args...
  local port=$1
  shift
  redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null
}

info_field() { # port section field
  cli "$1" info "$2" | tr -d '\r' | sed -n "s/^$3://p"
}

# ours: the node on port runs from this script's directory (its pid file
# names the process that answers there).
ours() {
  local port=$1 pidfile="$dir/$1/redis.pid"
  [ -f "$pidfile" ] && [ "$(info_field "$port" server process_id)" = "$(cat "$pidfile")" ]
}

# healthy: all six nodes answer as one cluster with every slot served, three
# masters, and every replica linked to its master.
healthy() {
  local port masters=0
  for port in $ports; do
    local info
    info=$(cli "$port" cluster info | tr -d '\r') || return 1
    grep -qx 'cluster_state:ok' <<<"$info" || return 1
    grep -qx 'cluster_slots_ok:16384' <<<"$info" || return 1
    grep -qx 'cluster_known_nodes:6' <<<"$info" || return 1
    case $(info_field "$port" replication role) in
      master) masters=$((masters + 1)) ;;
      slave) [ "$(info_field "$port" replication master_link_status)" = up ] || return 1 ;;
      *) return 1 ;;
    esac
  done
  [ "$masters" -eq 3 ]
}

stop() {
  local port
  for port in $ports; do
    local pidfile="$dir/$port/redis.pid"
    if ours "$port"; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
  for port in $ports; do
    for _ in $(seq 1 50); do
      ours "$port" || break
      sleep 0.1
    done
    if ours "$port"; then
      echo "redis-cluster: the node on port $port did not stop" >&2
      return 1
    fi
  done
  rm -rf "$dir"
}

start() {
  local missing=
  for bin in redis-server redis-cli; do
    command -v "$bin" >/dev/null || missing="$missing $bin"
  done
  if [ -n "$missing" ]; then
    echo "redis-cluster: missing from PATH:$missing.  Install Redis 7 (Debian: apt-get install redis-server) and try again." >&2
    return 1
  fi
  if healthy; then
    echo "redis-cluster: reusing the healthy cluster on ports $base-$((base + 5))" >&2
    url
    return 0
  fi
  local port
  for port in $ports; do
    if [ "$(cli "$port" ping)" = PONG ] && ! ours "$port"; then
      echo "redis-cluster: port $port answers but is not a node this script started in $dir; pick another port base" >&2
      return 1
    fi
  done
  # Whatever is left of an unhealthy one of ours is started afresh.
  stop
  for port in $ports; do
    mkdir -p "$dir/$port"
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
      --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout "$node_timeout" \
      --save '' --appendonly no \
      --dir "$dir/$port" --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log"
  done
  for port in $ports; do
    for _ in $(seq 1 100); do
      [ "$(cli "$port" ping)" = PONG ] && break
      sleep 0.1
    done
    if [ "$(cli "$port" ping)" != PONG ]; then
      echo "redis-cluster: the node on port $port does not answer; its log:" >&2
      tail -n 20 "$dir/$port/redis.log" >&2 || true
      return 1
    fi
  done
  local nodes=()
  for port in $ports; do nodes+=("127.0.0.1:$port"); done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >&2
  for _ in $(seq 1 300); do
    if healthy; then
      echo "redis-cluster: 3 masters + 3 replicas serve every slot on ports $base-$((base + 5))" >&2
      url
      return 0
    fi
    sleep 0.1
  done
  echo "redis-cluster: the cluster on ports $base-$((base + 5)) is not healthy after 30 s:" >&2
  cli "$base" cluster info >&2 || true
  cli "$base" cluster nodes >&2 || true
  return 1
}

case $cmd in
  start) start ;;
  stop) stop ;;
  url) url ;;
  *) echo "usage: $0 [start|stop|url] [PORT_BASE]" >&2; exit 2 ;;
esac
