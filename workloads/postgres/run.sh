#!/bin/bash
# Usage: run.sh CLIENTS SECONDS. pgbench's built-in select-only script (-S: one indexed
# SELECT on pgbench_accounts per transaction) with CLIENTS connections over one thread
# per CPU, for SECONDS, logging every transaction's latency; prints pgbench's summary
# and the latency percentiles computed from the per-transaction log.
set -euo pipefail
clients=$1 secs=$2
logs=$(mktemp -d /tmp/pgbench.XXXXXX)
chown postgres "$logs"
runuser -u postgres -- /usr/lib/postgresql/17/bin/pgbench -S -n -c "$clients" -j "$(nproc)" -T "$secs" \
  -l --log-prefix="$logs/pgbench_log" bench
python3 - "$logs" <<'PY'
import glob, sys
lat = sorted(int(line.split()[2]) for f in glob.glob(sys.argv[1] + "/pgbench_log*") for line in open(f))
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"transactions_logged={len(lat)}")
print(f"p50_latency_us={pick(0.50)}")
print(f"p99_latency_us={pick(0.99)}")
PY
rm -rf "$logs"
