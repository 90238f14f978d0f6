-- Model comparison on the same requests: $baseline paired with every other model
-- over the custom_ids both ran (report_compare_rows: latest run per custom_id and
-- model, prompts agreeing).
--
-- Sums of money stay DECIMAL; the total cost ratio is taken in Python Decimal.
-- mean_cost_ratio (the mean of per-request ratios) is a dimensionless statistic,
-- so DOUBLE is fine for it. Output length compares pairs that succeeded on both
-- sides; latency, pairs where both recorded it.
WITH pairs AS (
    SELECT
        m.model,
        m.status = 'error' AS m_error, b.status = 'error' AS b_error,
        m.priced AND b.priced AS both_priced,
        m.status = 'ok' AND b.status = 'ok' AND m.completion_tokens IS NOT NULL
            AND b.completion_tokens IS NOT NULL AS both_ok,
        m.latency_ms IS NOT NULL AND b.latency_ms IS NOT NULL AS both_latency,
        m.cost_usd AS m_cost, b.cost_usd AS b_cost,
        m.completion_tokens AS m_out, b.completion_tokens AS b_out,
        m.latency_ms AS m_latency, b.latency_ms AS b_latency
    FROM report_compare_rows b
    JOIN report_compare_rows m ON m.custom_id = b.custom_id AND m.model <> b.model
    WHERE b.model = $baseline
)
SELECT
    model,
    count(*) AS pairs,
    count(*) FILTER (WHERE both_priced) AS priced_pairs,
    sum(m_cost) FILTER (WHERE both_priced) AS cost_usd,
    sum(b_cost) FILTER (WHERE both_priced) AS baseline_cost_usd,
    avg(CAST(m_cost AS DOUBLE) / CAST(b_cost AS DOUBLE)) FILTER (WHERE both_priced AND b_cost > 0)
        AS mean_cost_ratio,
    count(*) FILTER (WHERE both_ok) AS ok_pairs,
    coalesce(sum(m_out) FILTER (WHERE both_ok), 0) AS output_tokens,
    coalesce(sum(b_out) FILTER (WHERE both_ok), 0) AS baseline_output_tokens,
    count(*) FILTER (WHERE both_latency) AS latency_pairs,
    avg(m_latency) FILTER (WHERE both_latency) AS mean_latency_ms,
    avg(b_latency) FILTER (WHERE both_latency) AS baseline_mean_latency_ms,
    count(*) FILTER (WHERE m_error) AS failed,
    count(*) FILTER (WHERE b_error) AS baseline_failed
FROM pairs
GROUP BY model
ORDER BY model
