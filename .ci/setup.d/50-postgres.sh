#!/usr/bin/env bash
# PostgreSQL for the tasks backend tests: start the local cluster if it is not running,
# wait until it accepts connections, and make sure the test database exists.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  apt-get update
  apt-get install -y postgresql
fi

if ! pg_isready -h 127.0.0.1 -q; then
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
fi

for _ in $(seq 1 60); do
  pg_isready -h 127.0.0.1 -q && break
  sleep 1
done
pg_isready -h 127.0.0.1

URL="${MAILROOM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
if ! psql "$URL" -qtAc 'SELECT 1' >/dev/null 2>&1; then
  # The database may be missing on a fresh cluster; create it as the superuser.
  su postgres -c "createdb test" 2>/dev/null || createdb -h 127.0.0.1 -U postgres test
fi
psql "$URL" -qtAc 'SELECT 1' >/dev/null
echo "PostgreSQL ready at $URL"
