PRAGMA journal_mode=OFF;
PRAGMA synchronous=OFF;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @rows)
INSERT INTO t SELECT x, (x * 7919) % 1000, printf('%08x', (x * 2654435761) % 4294967296) FROM c;
CREATE INDEX t_k ON t(k);
CREATE TABLE u AS SELECT k, count(*) AS n, sum(id) AS s FROM t GROUP BY k;
SELECT count(*), sum(t.id % 13) FROM t JOIN u ON t.k = u.k WHERE u.n > 100;
SELECT k, max(v) FROM t GROUP BY k ORDER BY k LIMIT 3;
