#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on localhost before the service or the
# tests run: start them with the machine's own commands when they are
# installed but stopped, then wait. Says exactly what is missing otherwise.
set -euo pipefail

pg_start='pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
redis_start='redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log'

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

ensure() { # name check start-command
  local name=$1 check=$2 start=$3
  if $check; then return 0; fi
  echo "services: $name is not answering; starting it: $start" >&2
  bash -c "$start" >&2 || true
  for _ in $(seq 1 60); do
    if $check; then echo "services: $name is up" >&2; return 0; fi
    sleep 0.5
  done
  echo "services: $name is still not answering on localhost. Start it with:" >&2
  echo "  $start" >&2
  return 1
}

if [ -z "${DATABASE_URL:-}" ]; then ensure PostgreSQL pg_up "$pg_start"; fi
if [ -z "${REDIS_URL:-}" ]; then ensure Redis redis_up "$redis_start"; fi
