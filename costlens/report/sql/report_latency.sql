-- Latency and time to first token per model, over the requests that recorded them
-- (replayed results carry neither, so their counts are 0 and the report says
-- "not recorded"). Milliseconds are DOUBLE: they are measurements, not money.
-- One list-valued quantile per column sorts each column once, not three times.
WITH q AS (
    SELECT
        model,
        count(*) AS requests,
        count(latency_ms) AS latency_n,
        quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS latency_q,
        count(ttft_ms) AS ttft_n,
        quantile_cont(ttft_ms, [0.5, 0.95, 0.99]) AS ttft_q
    FROM report_rows
    GROUP BY model
)
SELECT
    model, requests,
    latency_n, latency_q[1] AS latency_p50, latency_q[2] AS latency_p95, latency_q[3] AS latency_p99,
    ttft_n, ttft_q[1] AS ttft_p50, ttft_q[2] AS ttft_p95, ttft_q[3] AS ttft_p99
FROM q
ORDER BY model
