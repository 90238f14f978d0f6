-- What-if: the selection's observed token volumes priced on every model of the
-- main price sheet (plus any fallback-sheet model that ran in the selection: a
-- fallback sheet may hold thousands of models), at its standard-tier row in force at $as_of.
--
-- Same bucket rules as request_costs.sql (each token billed once):
--   uncached input = prompt - cache read - cache write   at input_per_1m
--   cache read at cached_input_per_1m, else input
--   5-minute writes at cache_write_per_1m, else input; 1-hour writes at cache_write_1h_per_1m,
--   else cache_write_per_1m, else input
--   output excluding reasoning at output_per_1m; reasoning at reasoning_per_1m, else output
--   per_request_usd once per successful request
-- Input volumes are exact. Output is an estimate: where the target model ran in
-- the selection, input x its observed output/input ratio (reasoning keeps its
-- observed share of that output), rounded half-up to whole tokens; elsewhere the
-- same output tokens as observed.
--
-- Long-context rows (min_prompt_tokens > 0) apply per request, so requests are
-- first summed into bands between consecutive thresholds: every request of a band
-- is priced by the same row of any given model. Only requests that reported usage count.
WITH standard AS (
    SELECT *
    FROM prices
    WHERE service_tier = 'standard'
      AND (effective_from IS NULL OR effective_from <= $as_of)
      AND (effective_to IS NULL OR $as_of < effective_to)
),
bands AS (
    SELECT 0 AS lo UNION SELECT min_prompt_tokens FROM standard
),
-- Summed per (model, prompt size) first: a few thousand rows to band instead of every request.
usage_rows AS (
    SELECT model, prompt_tokens,
           sum(prompt_tokens) AS input_n, sum(completion_tokens) AS completion_n,
           sum(coalesce(cached_tokens, 0)) AS cached_n, sum(coalesce(cache_write_tokens, 0)) AS cache_write_n,
           sum(coalesce(cache_write_1h_tokens, 0)) AS cache_write_1h_n,
           sum(coalesce(reasoning_tokens, 0)) AS reasoning_n,
           count(*) AS requests_n, count(*) FILTER (WHERE status = 'ok') AS ok_n
    FROM report_rows
    WHERE prompt_tokens IS NOT NULL AND completion_tokens IS NOT NULL
    GROUP BY model, prompt_tokens
),
volumes AS (
    SELECT
        b.lo AS band,
        CAST(sum(u.input_n) AS HUGEINT) AS input_tokens,
        CAST(sum(u.input_n - u.cached_n - u.cache_write_n) AS HUGEINT) AS uncached_tokens,
        CAST(sum(u.cached_n) AS HUGEINT) AS cached_tokens,
        CAST(sum(u.cache_write_n) AS HUGEINT) AS cache_write_tokens,
        CAST(sum(u.cache_write_1h_n) AS HUGEINT) AS cache_write_1h_tokens,
        CAST(sum(u.ok_n) AS HUGEINT) AS ok_requests,
        CAST(sum(u.completion_n) AS HUGEINT) AS output_tokens,
        CAST(sum(u.reasoning_n) AS HUGEINT) AS reasoning_tokens
    FROM usage_rows u
    ASOF JOIN bands b ON u.prompt_tokens >= b.lo
    GROUP BY b.lo
),
observed AS (
    SELECT lower(model) AS key,
           CAST(sum(input_n) AS HUGEINT) AS input_tokens,
           CAST(sum(completion_n) AS HUGEINT) AS output_tokens,
           CAST(sum(reasoning_n) AS HUGEINT) AS reasoning_tokens,
           CAST(sum(requests_n) AS BIGINT) AS requests
    FROM usage_rows
    GROUP BY 1
    HAVING sum(input_n) > 0
),
ran_on_fallback AS (
    SELECT DISTINCT price_sheet AS sheet, lower(model) AS key FROM report_rows WHERE price_sheet > 0
),
targets AS (
    SELECT p.sheet, min(p.model) AS model, p.model_key AS key, min(p.provider) AS provider
    FROM prices p
    WHERE p.sheet = 0 OR (p.sheet, p.model_key) IN (SELECT (sheet, key) FROM ran_on_fallback)
    GROUP BY p.sheet, p.model_key
    -- a model of the main sheet hides the same id on a fallback sheet, as in the cost view
    QUALIFY row_number() OVER (PARTITION BY p.model_key ORDER BY p.sheet) = 1
),
estimated AS (
    SELECT
        t.sheet, t.model, t.key, t.provider, v.band, o.key IS NOT NULL AS ran_here,
        o.input_tokens AS observed_input, o.output_tokens AS observed_output, o.requests AS observed_requests,
        v.input_tokens, v.uncached_tokens, v.cached_tokens, v.cache_write_tokens, v.cache_write_1h_tokens,
        v.ok_requests,
        CASE WHEN o.key IS NULL THEN v.output_tokens
             ELSE (2 * v.input_tokens * o.output_tokens + o.input_tokens) // (2 * o.input_tokens)
        END AS est_output,
        o.reasoning_tokens AS observed_reasoning,
        v.reasoning_tokens AS band_reasoning
    FROM targets t
    CROSS JOIN volumes v
    LEFT JOIN observed o ON o.key = t.key
),
with_reasoning AS (
    SELECT *,
        CASE WHEN NOT ran_here THEN band_reasoning
             WHEN observed_output = 0 THEN 0
             ELSE (2 * est_output * observed_reasoning + observed_output) // (2 * observed_output)
        END AS est_reasoning
    FROM estimated
),
chosen AS (
    SELECT e.*, s.price_id, s.input_per_1m, s.cached_input_per_1m, s.cache_write_per_1m,
           s.cache_write_1h_per_1m, s.output_per_1m, s.reasoning_per_1m, s.per_request_usd
    FROM with_reasoning e
    LEFT JOIN standard s ON s.sheet = e.sheet AND s.model_key = e.key AND s.min_prompt_tokens <= e.band
    QUALIFY row_number() OVER (PARTITION BY e.key, e.band ORDER BY s.min_prompt_tokens DESC NULLS LAST) = 1
),
costed AS (
    SELECT *,
        (
            CAST(uncached_tokens AS DECIMAL(38, 0)) * input_per_1m
            + CAST(cached_tokens AS DECIMAL(38, 0)) * coalesce(cached_input_per_1m, input_per_1m)
            + CAST(cache_write_tokens - cache_write_1h_tokens AS DECIMAL(38, 0))
                * coalesce(cache_write_per_1m, input_per_1m)
            + CAST(cache_write_1h_tokens AS DECIMAL(38, 0))
                * coalesce(cache_write_1h_per_1m, cache_write_per_1m, input_per_1m)
        ) * CAST(0.000001 AS DECIMAL(38, 6)) AS input_cost,
        CAST(ok_requests AS DECIMAL(38, 0)) * coalesce(per_request_usd, 0) AS request_cost,
        (
            CAST(est_output - est_reasoning AS DECIMAL(38, 0)) * output_per_1m
            + CAST(est_reasoning AS DECIMAL(38, 0)) * coalesce(reasoning_per_1m, output_per_1m)
        ) * CAST(0.000001 AS DECIMAL(38, 6)) AS output_cost
    FROM chosen
)
SELECT
    model, provider, ran_here,
    any_value(observed_input) AS observed_input_tokens,
    any_value(observed_output) AS observed_output_tokens,
    any_value(observed_requests) AS observed_requests,
    CAST(sum(input_tokens) AS BIGINT) AS input_tokens,
    CAST(sum(cached_tokens) AS BIGINT) AS cached_tokens,
    CAST(sum(cache_write_tokens) AS BIGINT) AS cache_write_tokens,
    CAST(sum(est_output) AS BIGINT) AS output_tokens,
    CAST(sum(est_reasoning) AS BIGINT) AS reasoning_tokens,
    CASE WHEN bool_and(input_cost IS NOT NULL) THEN sum(input_cost) END AS input_cost_usd,
    CASE WHEN bool_and(output_cost IS NOT NULL) THEN sum(output_cost) END AS output_cost_usd,
    CASE WHEN bool_and(input_cost IS NOT NULL AND output_cost IS NOT NULL)
         THEN sum(input_cost) + sum(output_cost) + sum(request_cost) END AS cost_usd,
    bool_or(price_id IS NULL) AS missing_row,
    list(DISTINCT price_id ORDER BY price_id) FILTER (WHERE price_id IS NOT NULL) AS price_ids
FROM costed
GROUP BY sheet, model, key, provider, ran_here
ORDER BY cost_usd NULLS LAST, lower(model)
