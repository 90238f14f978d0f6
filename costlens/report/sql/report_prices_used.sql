-- Price rows that priced at least one request of the report, with how many.
WITH used AS (
    SELECT price_id, count(*) AS requests
    FROM report_rows
    WHERE price_id IS NOT NULL
    GROUP BY price_id
)
SELECT
    p.price_id, p.model, p.service_tier, p.min_prompt_tokens, p.input_per_1m, p.cached_input_per_1m,
    p.cache_write_per_1m, p.cache_write_1h_per_1m, p.output_per_1m, p.reasoning_per_1m, p.per_request_usd,
    p.effective_from, p.effective_to,
    p.price_file, p.price_line, u.requests
FROM used u
JOIN prices p ON p.price_id = u.price_id
ORDER BY p.sheet, p.model_key, p.service_tier, p.min_prompt_tokens, p.effective_from NULLS FIRST, p.price_id
