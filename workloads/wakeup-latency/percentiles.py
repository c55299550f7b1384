"""Percentiles of wake-up latency from a cyclictest -h histogram (all threads pooled)."""
import sys

counts = {}
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    cols = line.split()
    us = int(cols[0])
    counts[us] = counts.get(us, 0) + sum(int(c) for c in cols[1:])
total = sum(counts.values())
if total == 0:
    sys.exit("no samples in histogram")
for p in (50, 99):
    need, seen = total * p / 100, 0
    for us in sorted(counts):
        seen += counts[us]
        if seen >= need:
            print(f"p{p}_latency_us={us}")
            break
print(f"samples={total}")
