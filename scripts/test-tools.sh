#!/usr/bin/env bash
# Install the Debian packages the tests use when they are missing: pgbouncer
# (make test runs the PostgreSQL tests through it too), chromium (the
# dashboard's browser test) and kcat (the README's kcat block). It needs
# apt-get and root; otherwise it says what to install and fails.
set -euo pipefail
PATH=$PATH:/usr/sbin # where Debian installs pgbouncer

missing=()
command -v pgbouncer >/dev/null || missing+=(pgbouncer)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
command -v kcat >/dev/null || missing+=(kcat)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "test-tools: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]}) and try again" >&2
  exit 1
fi
echo "test-tools: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
