-- Runs covered by the selection, with their requests and cost inside it, and the
-- previous run *of the same name within the selection* (a nightly job compared with
-- the night before). Percent changes are ratios of money, so they are computed in
-- Python Decimal from these sums (DuckDB's decimal division returns DOUBLE).
WITH per_run AS (
    SELECT run_id, count(*) AS requests, sum(cost_usd) FILTER (WHERE priced) AS cost_usd,
           count(*) FILTER (WHERE priced) AS priced
    FROM report_rows
    GROUP BY run_id
)
SELECT
    r.run_id, r.name, r.kind, coalesce(r.simulated, FALSE) AS simulated, r.source_file,
    timezone($tz, timezone('UTC', r.started_at)) AS started_at,
    coalesce(CAST(r.tags AS VARCHAR), '{}') AS tags,
    p.requests, p.cost_usd, p.priced,
    lag(r.run_id) OVER w AS previous_run_id,
    lag(p.requests) OVER w AS previous_requests,
    lag(p.cost_usd) OVER w AS previous_cost_usd,
    lag(p.priced) OVER w AS previous_priced
FROM per_run p
JOIN runs r ON r.run_id = p.run_id
WINDOW w AS (PARTITION BY r.name ORDER BY r.started_at, r.run_id)
ORDER BY r.run_id
