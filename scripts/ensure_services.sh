#!/usr/bin/env bash
# Make sure the local PostgreSQL and Redis that the tests use are up: start them when they are
# installed but stopped, and say exactly what is missing otherwise.
set -u
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
status=0

pg_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

if ! command -v pg_isready >/dev/null 2>&1; then
  echo "ensure_services: PostgreSQL client tools are not installed (apt-get install postgresql)." >&2
  status=1
elif ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
    echo "ensure_services: starting PostgreSQL"
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    done
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
  pg_up || { echo "ensure_services: PostgreSQL is not running on $PGHOST:$PGPORT and could not be started (apt-get install postgresql)." >&2; status=1; }
fi

if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "ensure_services: starting Redis"
    mkdir -p /tmp/tunixrt-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir /tmp/tunixrt-redis --logfile /tmp/tunixrt-redis/redis.log >/dev/null
    for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
  fi
  redis_up || { echo "ensure_services: Redis is not running on 127.0.0.1:$REDIS_PORT and could not be started (apt-get install redis-server)." >&2; status=1; }
fi
exit $status
