-- The analytic queries of the clickhouse workload, run in this order on table `hits`
-- (see queries.py). ClickHouse parallelises each over max_threads (= the CPUs).
-- 1. top users by traffic
SELECT user_id, count() AS hits, sum(bytes) AS traffic FROM hits GROUP BY user_id ORDER BY traffic DESC LIMIT 10;
-- 2. latency percentiles per region
SELECT region, quantiles(0.5, 0.9, 0.99)(duration_ms) FROM hits GROUP BY region ORDER BY region;
-- 3. distinct visitors per page, high-cardinality aggregation
SELECT url, uniqExact(user_id) AS visitors FROM hits GROUP BY url ORDER BY visitors DESC LIMIT 10;
-- 4. hourly time series with a filter
SELECT toStartOfHour(ts) AS h, count(), avg(duration_ms) FROM hits WHERE region IN ('eu', 'us') GROUP BY h ORDER BY h;
-- 5. self-join of per-user aggregates against per-page aggregates
SELECT u.user_id, u.pages, p.avg_ms
FROM (SELECT user_id, any(url) AS url, count() AS pages FROM hits GROUP BY user_id) AS u
JOIN (SELECT url, avg(duration_ms) AS avg_ms FROM hits GROUP BY url) AS p ON u.url = p.url
ORDER BY u.pages DESC, u.user_id LIMIT 10;
-- 6. full sort of a large projection
SELECT id, duration_ms FROM hits ORDER BY duration_ms DESC, id LIMIT 100 OFFSET 1000;
