-- Cost by model, plus the grand total (ROLLUP row, is_total = 1).
-- Same definitions as costlens/summary.py (_SUMMARY_SQL): sums of money only
-- over priced requests, unpriced requests counted and their tokens reported,
-- never added as $0. priced_tokens is the denominator of "cost per 1M tokens".
-- ok / first_at / last_at feed the headline; first/last are shown in $tz.
SELECT
    grouping(model) AS is_total,
    model,
    count(*) AS requests,
    count(*) FILTER (WHERE status = 'ok') AS ok,
    count(*) FILTER (WHERE status = 'error') AS failed,
    coalesce(sum(prompt_tokens), 0) AS input_tokens,
    coalesce(sum(cached_tokens), 0) AS cached_tokens,
    coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens,
    coalesce(sum(completion_tokens), 0) AS output_tokens,
    coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
    sum(input_cost_usd) FILTER (WHERE priced) AS input_cost_usd,
    sum(output_cost_usd) FILTER (WHERE priced) AS output_cost_usd,
    sum(cost_usd) FILTER (WHERE priced) AS cost_usd,
    count(*) FILTER (WHERE priced) AS priced,
    count(*) FILTER (WHERE NOT priced) AS unpriced,
    count(*) FILTER (WHERE tier_fallback) AS tier_fallback,
    count(*) FILTER (WHERE sheet_fallback) AS sheet_fallback,
    coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)) FILTER (WHERE NOT priced), 0)
        AS unpriced_tokens,
    coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)) FILTER (WHERE priced), 0)
        AS priced_tokens,
    -- The provider's own figures, against costlens's over the same requests (summary.py: the same).
    count(*) FILTER (WHERE reported_cost_usd IS NOT NULL) AS reported_requests,
    count(*) FILTER (WHERE reported_cost_usd IS NOT NULL AND priced) AS reported_compared,
    sum(reported_cost_usd) FILTER (WHERE priced) AS reported_compared_usd,
    sum(cost_usd) FILTER (WHERE reported_cost_usd IS NOT NULL AND priced) AS computed_compared_usd,
    timezone($tz, timezone('UTC', min(occurred_at))) AS first_at,
    timezone($tz, timezone('UTC', max(occurred_at))) AS last_at
FROM report_rows
GROUP BY ROLLUP (model)
ORDER BY is_total, cost_usd DESC NULLS LAST, requests DESC, model
