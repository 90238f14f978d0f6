-- Models in the comparison (report_compare_rows), with the scatter's figures over
-- their shared requests: requests, priced count and cost (the mean is taken in
-- Python Decimal), and mean latency. shared_ids = custom_ids that ran on two or
-- more models (the same on every row).
SELECT
    model,
    count(*) AS requests,
    count(*) FILTER (WHERE priced) AS priced,
    sum(cost_usd) FILTER (WHERE priced) AS cost_usd,
    count(latency_ms) AS latency_n,
    avg(latency_ms) AS mean_latency_ms,
    (SELECT count(DISTINCT custom_id) FROM report_compare_rows) AS shared_ids
FROM report_compare_rows
GROUP BY model
ORDER BY model
