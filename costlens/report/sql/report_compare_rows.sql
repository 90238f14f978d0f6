-- report_compare_rows: the requests the model comparison pairs up, one per (custom_id, model).
--
-- A custom_id is compared when it ran on at least two models and the prompts
-- recorded for it agree (messages_sha256, known when replay had the batch input
-- file: min = max, or none recorded). When a custom_id ran several times on one
-- model (a nightly job), its latest run stands for it, so every comparison figure
-- is built from plain pairs of real requests, never from averages of averages.
-- Materialised once because report_compare_models.sql and report_compare.sql both
-- read it. Only the (custom_id, model) groups that do repeat go through the window
-- (a sort): at a million requests that is most of this query's cost.
CREATE OR REPLACE TEMP TABLE report_compare_rows AS
WITH shared AS (
    SELECT custom_id
    FROM report_rows
    WHERE comparable
    GROUP BY custom_id
    HAVING min(model) <> max(model) AND coalesce(min(messages_sha256) = max(messages_sha256), true)
),
candidates AS MATERIALIZED (
    SELECT r.custom_id, r.model, r.status, r.priced, r.cost_usd, r.completion_tokens, r.latency_ms,
           r.occurred_at, r.run_id, r.request_id
    FROM report_rows r
    SEMI JOIN shared s ON s.custom_id = r.custom_id
    WHERE r.comparable
),
repeated AS (
    SELECT custom_id, model FROM candidates GROUP BY ALL HAVING count(*) > 1
)
SELECT c.custom_id, c.model, c.status, c.priced, c.cost_usd, c.completion_tokens, c.latency_ms
FROM candidates c
ANTI JOIN repeated d ON d.custom_id = c.custom_id AND d.model = c.model
UNION ALL
SELECT custom_id, model, status, priced, cost_usd, completion_tokens, latency_ms
FROM (
    SELECT c.*
    FROM candidates c
    SEMI JOIN repeated d ON d.custom_id = c.custom_id AND d.model = c.model
    QUALIFY row_number() OVER (
        PARTITION BY c.custom_id, c.model ORDER BY c.occurred_at DESC, c.run_id DESC, c.request_id DESC) = 1
)
