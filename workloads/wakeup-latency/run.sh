#!/bin/bash
# Usage: run.sh SECONDS. Loads every CPU with stress-ng, measures wake-up latency with
# cyclictest (one thread per CPU, 1 ms period, histogram up to 20 ms) and prints
# percentiles computed from the histogram.
set -eu
secs=$1
ncpu=$(nproc)
stress-ng --cpu "$ncpu" --timeout $((secs + 3)) --quiet &
load=$!
sleep 0.5
cyclictest -m -t"$ncpu" -i 1000 -D "$secs" -q -h 20000 > /tmp/cyclictest.hist
kill "$load" 2>/dev/null || true
wait "$load" 2>/dev/null || true
python3 "$(dirname "$0")/percentiles.py" /tmp/cyclictest.hist
