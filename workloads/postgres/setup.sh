#!/bin/bash
# Starts PostgreSQL 17 (Debian's cluster "17 main", with postgresql.conf from this folder
# as conf.d/schedcp.conf) and creates database `bench` with pgbench's tables at scale
# factor $1 (100,000 accounts per unit). The guest has no systemd: pg_ctlcluster starts
# the server directly.
set -euo pipefail
scale=${1:-2}
here=$(cd "$(dirname "$0")" && pwd)
install -d -o postgres -g postgres -m 2775 /run/postgresql
pg_lsclusters -h | grep -q '^17 *main ' || pg_createcluster 17 main >/dev/null
install -m 644 "$here/postgresql.conf" /etc/postgresql/17/main/conf.d/schedcp.conf
pg_ctlcluster 17 main status >/dev/null 2>&1 || pg_ctlcluster 17 main start
runuser -u postgres -- dropdb --if-exists bench
runuser -u postgres -- createdb bench
runuser -u postgres -- /usr/lib/postgresql/17/bin/pgbench -i -q -s "$scale" bench
runuser -u postgres -- psql -qAt -c 'VACUUM ANALYZE' bench
echo "postgres ready: database bench, scale $scale"
