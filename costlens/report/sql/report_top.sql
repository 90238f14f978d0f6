-- The $limit most expensive priced requests (a $0 one, e.g. an error not billed, is not "expensive"); completion text only where it was
-- stored (run, or replay --store-content), cut to $max_chars characters.
WITH top AS (
    SELECT run_id, request_id, custom_id, model, "user", occurred_at, prompt_tokens, completion_tokens,
           cost_usd
    FROM report_rows
    WHERE priced AND cost_usd > 0
    ORDER BY cost_usd DESC, run_id, request_id
    LIMIT $limit
)
SELECT
    t.run_id, t.request_id, t.custom_id, t.model, t."user",
    timezone($tz, timezone('UTC', t.occurred_at)) AS occurred_at,
    t.prompt_tokens, t.completion_tokens, t.cost_usd,
    CASE WHEN r.completion IS NOT NULL THEN
        left(array_to_string(list_transform(
            CAST(r.completion AS JSON[]),
            lambda x: coalesce(x ->> '$', CAST(x AS VARCHAR))), chr(10) || '---' || chr(10)), $max_chars)
    END AS completion
FROM top t
LEFT JOIN result_details r ON r.run_id = t.run_id AND r.request_id = t.request_id
ORDER BY t.cost_usd DESC, t.run_id, t.request_id
