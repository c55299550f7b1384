#!/opt/schedcp/py/bin/python
"""ClickHouse (chdb, the in-process ClickHouse engine) on a generated web-analytics table.

Usage: queries.py ROWS. Builds table `hits` (ROWS rows, MergeTree, contents a pure
function of the row number, so every run loads the same data) in a fresh database under
/dev/shm, then runs the analytic queries in queries.sql in order. Both phases are timed
inside the process (importing the engine takes seconds under emulation and is not
measured). Prints load_s=, query_s= and one line per query.
"""

import shutil
import sys
import time
from pathlib import Path

from chdb import session

rows = int(sys.argv[1])
here = Path(__file__).resolve().parent
db = Path("/dev/shm/chdb-bench")
shutil.rmtree(db, ignore_errors=True)
s = session.Session(str(db))

t0 = time.perf_counter()
s.query("""
CREATE TABLE hits (
  id UInt64, user_id UInt32, url String, region LowCardinality(String),
  ts DateTime, duration_ms UInt32, bytes UInt64
) ENGINE = MergeTree ORDER BY (user_id, ts)""")
s.query(f"""
INSERT INTO hits SELECT
  number,
  cityHash64(number, 1) % 50000,
  concat('/page/', toString(cityHash64(number, 2) % 2000)),
  ['eu', 'us', 'asia', 'sa', 'af', 'oc'][1 + cityHash64(number, 3) % 6],
  toDateTime('2026-01-01 00:00:00') + cityHash64(number, 4) % (86400 * 30),
  cityHash64(number, 5) % 5000,
  cityHash64(number, 6) % 1000000
FROM numbers({rows})""")
s.query("OPTIMIZE TABLE hits FINAL")
load_s = time.perf_counter() - t0

queries = [q.strip() for q in (here / "queries.sql").read_text().split(";") if q.strip()
           and not all(line.startswith("--") for line in q.strip().splitlines())]
t1 = time.perf_counter()
for i, q in enumerate(queries, 1):
    tq = time.perf_counter()
    res = s.query(q, "CSV")
    n = len(str(res).strip().splitlines())
    print(f"query {i}: {time.perf_counter() - tq:.3f} s, {n} rows", flush=True)
query_s = time.perf_counter() - t1
s.close()
shutil.rmtree(db, ignore_errors=True)
print(f"load_s={load_s:.4f}")
print(f"query_s={query_s:.4f}")
