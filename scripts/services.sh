#!/usr/bin/env bash
# Makes sure PostgreSQL, Redis and NATS (with JetStream) run on 127.0.0.1 at
# their standard ports: installs them from Debian's packages if missing and
# starts any that are down. Idempotent; needs root (or sudo) to install.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_up() {
  for _ in $(seq 1 50); do up "$2" && return 0; sleep 0.2; done
  echo "services: $1 did not come up on port $2" >&2
  return 1
}

missing=()
command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "services: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! up 5432; then
  echo "services: starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || $SUDO pg_ctlcluster "$version" main start
  wait_up PostgreSQL 5432
fi
if ! up 6379; then
  echo "services: starting Redis"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_up Redis 6379
fi
if ! up 4222; then
  echo "services: starting NATS"
  nats=$(command -v nats-server || echo /usr/sbin/nats-server)
  $SUDO mkdir -p /var/lib/nats-server
  $SUDO start-stop-daemon --start --oknodo --background --exec "$nats" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_up NATS 4222
fi
# CI only (`.ci/run` sets SKYWIRE_CI=1; its database is thrown away): no
# fsync. The tests create and drop hundreds of databases; with fsync on, a
# checkpoint syncing their files ran for minutes on this 2-core VM, and every
# CREATE/DROP DATABASE (which waits for a checkpoint) and commit stalled
# behind it.
if [ "${SKYWIRE_CI:-}" = 1 ]; then
  psql -q -h 127.0.0.1 -U postgres -d postgres \
    -c "ALTER SYSTEM SET fsync = off" \
    -c "ALTER SYSTEM SET synchronous_commit = off" \
    -c "ALTER SYSTEM SET full_page_writes = off" \
    -c "SELECT pg_reload_conf()" >/dev/null
  echo "services: PostgreSQL set up for throwaway CI data (no fsync)"
fi
echo "services: PostgreSQL, Redis and NATS are up"
