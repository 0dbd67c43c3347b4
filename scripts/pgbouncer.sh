#!/usr/bin/env bash
# A local pgbouncer in transaction pooling mode in front of the local
# PostgreSQL, for the tests and for trying Aisle behind a pooler.
#
#   scripts/pgbouncer.sh [start|stop|url] [PORT]
#
# start (the default) starts pgbouncer on 127.0.0.1:PORT, or reuses the one
# this script started there, waits until it answers, and prints the
# DATABASE_URL of the database "aisle" through it on stdout (everything else
# goes to stderr):
#
#   export DATABASE_URL=$(scripts/pgbouncer.sh start)
#   export DATABASE_DIRECT_URL=postgres://postgres@127.0.0.1:5432/aisle?sslmode=disable
#
# Every database of the server is served (pgbouncer's "*" entry), so tests'
# own databases are reachable through it as soon as they exist. Each
# database gets a small pool (AISLE_PGBOUNCER_POOL_SIZE, default 5) and
# idle server connections close after 10 s, so that many short-lived test
# databases stay well within PostgreSQL's max_connections.
# stop stops the pgbouncer this script started there and deletes its files.
# url prints the URL without checking anything.
#
# Environment: AISLE_PGBOUNCER_PORT (PORT when no argument gives it; default
# 6440, clear of the 6432 of a pgbouncer service the package may start),
# AISLE_PGBOUNCER_DIR (its config, log and pid file; default
# ${TMPDIR:-/tmp}/aisle-pgbouncer-PORT), PGHOST/PGPORT (the PostgreSQL
# server, default 127.0.0.1:5432; trust authentication, user postgres).
set -euo pipefail
PATH=$PATH:/usr/sbin # where Debian installs pgbouncer

cmd=${1:-start}
port=${2:-${AISLE_PGBOUNCER_PORT:-6440}}
dir=${AISLE_PGBOUNCER_DIR:-${TMPDIR:-/tmp}/aisle-pgbouncer-$port}
pool_size=${AISLE_PGBOUNCER_POOL_SIZE:-5}
pg_host=${PGHOST:-127.0.0.1}
pg_port=${PGPORT:-5432}

case $port in
  '' | *[!0-9]*) echo "pgbouncer: the port must be a number, got '$port'" >&2; exit 2 ;;
esac

url() {
  echo "postgres://postgres@127.0.0.1:$port/aisle?sslmode=disable"
}

answers() {
  pg_isready -q -h 127.0.0.1 -p "$port" -d postgres 2>/dev/null
}

# ours: the pgbouncer of this script's directory is running.
ours() {
  [ -f "$dir/pgbouncer.pid" ] && kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null
}

stop() {
  if ours; then
    kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
    for _ in $(seq 1 50); do
      ours || break
      sleep 0.1
    done
    if ours; then
      echo "pgbouncer: the pgbouncer on port $port did not stop" >&2
      return 1
    fi
  fi
  rm -rf "$dir"
}

start() {
  if ! command -v pgbouncer >/dev/null; then
    echo "pgbouncer: not in PATH. Install it (Debian: apt-get install pgbouncer) and try again." >&2
    return 1
  fi
  if ours && answers; then
    echo "pgbouncer: reusing the pgbouncer on port $port" >&2
    url
    return 0
  fi
  if answers; then
    echo "pgbouncer: port $port answers but is not a pgbouncer this script started in $dir; pick another port" >&2
    return 1
  fi
  stop
  mkdir -p "$dir"
  echo '"postgres" ""' >"$dir/userlist.txt"
  cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=$pg_host port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = $pool_size
server_idle_timeout = 10
server_lifetime = 300
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
  # pgbouncer refuses to run as root without being told to (-u), so it runs
  # as the postgres user there, which must then read its files.
  local user=()
  if [ "$(id -u)" = 0 ]; then
    user=(-u postgres)
    chown -R postgres "$dir"
  fi
  pgbouncer -d "${user[@]}" "$dir/pgbouncer.ini" >&2
  for _ in $(seq 1 100); do
    if answers; then
      echo "pgbouncer: transaction pooling on 127.0.0.1:$port in front of $pg_host:$pg_port" >&2
      url
      return 0
    fi
    sleep 0.1
  done
  echo "pgbouncer: not answering on port $port; its log:" >&2
  tail -n 20 "$dir/pgbouncer.log" >&2 || true
  return 1
}

case $cmd in
  start) start ;;
  stop) stop ;;
  url) url ;;
  *) echo "usage: $0 [start|stop|url] [PORT]" >&2; exit 2 ;;
esac
