-- request_costs: one row per logged request, priced against the price table.
--
-- This view is the single place where money is computed. Everything that shows
-- a cost (summary, export, report) reads it. It is a TEMP view because the
-- price table is loaded per session from CSV into TEMP tables `prices` and
-- `model_aliases` (costlens/pricing.py), so the same usage re-prices when the
-- price table changes, and every figure is reproducible from DB + CSV.
--
-- Model resolution (README "Model resolution"), case-insensitive, first hit wins:
--   1. the model id exactly as logged (response model if known, else requested)
--   2. model_aliases.alias -> model
--   3. the id with its provider prefix (text up to the first '/') stripped, then 1 and 2 again
-- Price row: same resolved model, in force at priced_at ([effective_from,
-- effective_to)), min_prompt_tokens <= prompt_tokens; a row of the request's own
-- service tier wins over a 'standard' row (the fallback is noted in price_note);
-- among those, the highest min_prompt_tokens (long-context tier) applies to all buckets.
-- Buckets are disjoint, so each token is billed exactly once:
--   uncached input = prompt - cache read - cache write      at input_per_1m
--   cache read                                              at cached_input_per_1m, else input
--   cache write                                             at cache_write_per_1m, else input
--   output excluding reasoning = completion - reasoning     at output_per_1m
--   reasoning                                               at reasoning_per_1m, else output
-- DECIMAL(38,0) tokens x DECIMAL(38,9) $/1M x 0.000001 -> DECIMAL(38,15): exact, unrounded.
CREATE OR REPLACE TEMP VIEW request_costs AS
WITH base AS (
    SELECT
        q.run_id, q.request_id, q.custom_id, q.line_no, q.requested_model,
        qp.temperature, qp.max_tokens, qp.stream, qp.top_p, qp.frequency_penalty, qp.presence_penalty,
        qp.stop, qp.n, qp."user", qp.extra_params, qp.msg_count, qp.messages_sha256,
        r.source_format, r.service_tier, r.status, r.http_status, r.error_type, r.error_message,
        r.response_id, r.provider_request_id, r.response_model, r.finish_reasons, r.usage_source,
        r.prompt_tokens, r.completion_tokens, r.total_tokens,
        r.cached_tokens, r.cache_write_tokens, r.reasoning_tokens,
        -- Not reported = none of that kind (for billing); the raw NULLs are still exported.
        coalesce(r.cached_tokens, 0) AS cached_n,
        coalesce(r.cache_write_tokens, 0) AS cache_write_n,
        coalesce(r.reasoning_tokens, 0) AS reasoning_n,
        r.source_line_no, r.created_at, r.priced_at, d.started_at, d.completed_at, d.latency_ms, d.ttft_ms, d.attempts,
        coalesce(r.response_model, q.requested_model) AS model_id
    FROM results r
    JOIN requests q ON q.run_id = r.run_id AND q.request_id = r.request_id
    -- Parameters exist only where the request body was known (run, replay --requests);
    -- details (timings, attempts, completion text) only where run or replay --store-content wrote them.
    LEFT JOIN request_params qp ON qp.run_id = r.run_id AND qp.request_id = r.request_id
    LEFT JOIN result_details d ON d.run_id = r.run_id AND d.request_id = r.request_id
),
price_models AS (
    SELECT lower(model) AS key, min(model) AS model FROM prices GROUP BY lower(model)
),
alias_keys AS (
    SELECT lower(alias) AS key, lower(model) AS target FROM model_aliases
),
model_ids AS (
    SELECT DISTINCT model_id, lower(model_id) AS k1,
        lower(regexp_replace(model_id, '^[^/]*/', '')) AS k2
    FROM base WHERE model_id IS NOT NULL
),
resolved AS (
    SELECT m.model_id, pm.model AS priced_model, pm.key AS priced_key
    FROM model_ids m
    LEFT JOIN alias_keys a1 ON a1.key = m.k1
    LEFT JOIN alias_keys a2 ON a2.key = m.k2
    LEFT JOIN price_models e1 ON e1.key = m.k1
    LEFT JOIN price_models e2 ON e2.key = m.k2
    LEFT JOIN price_models pm ON pm.key = CASE
        WHEN e1.key IS NOT NULL THEN e1.key
        WHEN a1.key IS NOT NULL THEN a1.target
        WHEN e2.key IS NOT NULL THEN e2.key
        WHEN a2.key IS NOT NULL THEN a2.target
    END
),
-- Most (model, tier) pairs have one price row that applies to every request: a
-- single row of the request's tier (or, with none of that tier, a single
-- standard row) with no long-context threshold and no effective dates. Those
-- are chosen by a join on (model, tier); only requests of other pairs go
-- through the per-request choice below. Both give the same row (the property
-- test in tests/test_costs.py holds them to the reference rule).
tiers AS (
    SELECT unnest(['standard', 'batch', 'flex', 'priority']) AS service_tier
),
simple AS (
    SELECT lower(p.model) AS model_key, t.service_tier,
        CASE
            WHEN count(*) FILTER (WHERE p.service_tier = t.service_tier) > 0
            THEN CASE WHEN count(*) FILTER (WHERE p.service_tier = t.service_tier) = 1
                       AND bool_and(p.unconditional) FILTER (WHERE p.service_tier = t.service_tier)
                      THEN min(p.price_id) FILTER (WHERE p.service_tier = t.service_tier) END
            ELSE CASE WHEN count(*) = 1 AND bool_and(p.unconditional) THEN min(p.price_id) END
        END AS price_id
    FROM (SELECT *, min_prompt_tokens = 0 AND effective_from IS NULL AND effective_to IS NULL AS unconditional
          FROM prices) p
    JOIN tiers t ON p.service_tier = t.service_tier OR p.service_tier = 'standard'
    GROUP BY lower(p.model), t.service_tier
),
resolved_base AS (
    SELECT b.*, rm.priced_model, rm.priced_key,
        CASE WHEN coalesce(b.prompt_tokens, 0) >= 0 THEN s.price_id END AS simple_price_id,
        s.price_id IS NOT NULL AS simple_choice
    FROM base b
    LEFT JOIN resolved rm ON rm.model_id = b.model_id
    LEFT JOIN simple s ON s.model_key = rm.priced_key AND s.service_tier = b.service_tier
),
candidates AS (
    SELECT
        b.run_id, b.request_id, p.price_id,
        row_number() OVER (
            PARTITION BY b.run_id, b.request_id
            ORDER BY (p.service_tier = b.service_tier) DESC, p.min_prompt_tokens DESC, p.price_id
        ) AS rank
    FROM resolved_base b
    JOIN prices p
      ON lower(p.model) = b.priced_key
     AND (p.service_tier = b.service_tier OR p.service_tier = 'standard')
     AND (p.effective_from IS NULL OR p.effective_from <= b.priced_at)
     AND (p.effective_to IS NULL OR b.priced_at < p.effective_to)
     AND p.min_prompt_tokens <= coalesce(b.prompt_tokens, 0)
    WHERE NOT b.simple_choice
),
chosen AS (
    SELECT run_id, request_id, price_id FROM candidates WHERE rank = 1
),
costed AS (
    SELECT
        b.*,
        ch.price_id, ch.service_tier AS price_tier, ch.effective_from AS price_effective_from,
        b.prompt_tokens - b.cached_n - b.cache_write_n AS uncached_input_tokens,
        (
            CAST(b.prompt_tokens - b.cached_n - b.cache_write_n AS DECIMAL(38, 0)) * ch.input_per_1m
            + CAST(b.cached_n AS DECIMAL(38, 0)) * coalesce(ch.cached_input_per_1m, ch.input_per_1m)
            + CAST(b.cache_write_n AS DECIMAL(38, 0)) * coalesce(ch.cache_write_per_1m, ch.input_per_1m)
        ) * CAST(0.000001 AS DECIMAL(38, 6)) AS raw_input_cost,
        (
            CAST(b.completion_tokens - b.reasoning_n AS DECIMAL(38, 0)) * ch.output_per_1m
            + CAST(b.reasoning_n AS DECIMAL(38, 0)) * coalesce(ch.reasoning_per_1m, ch.output_per_1m)
        ) * CAST(0.000001 AS DECIMAL(38, 6)) AS raw_output_cost,
        ch.price_id IS NOT NULL AS has_price_row
    FROM resolved_base b
    LEFT JOIN chosen c ON c.run_id = b.run_id AND c.request_id = b.request_id
    LEFT JOIN prices ch ON ch.price_id = coalesce(b.simple_price_id, c.price_id)
),
final AS (
    SELECT
        *,
        -- An error that reported no usage was not billed: cost 0, whatever the model.
        (status = 'error' AND usage_source = 'none') AS not_billed
    FROM costed
),
noted AS (
    SELECT
        *,
        -- Why the request is priced as it is (price_note spells it out; counts use this).
        CASE
            WHEN not_billed THEN 'not_billed'
            WHEN usage_source = 'none' THEN 'no_usage'
            WHEN priced_model IS NULL THEN 'unknown_model'
            WHEN NOT has_price_row THEN 'no_price_row'
            WHEN raw_input_cost IS NULL OR raw_output_cost IS NULL THEN 'empty_cell'
            WHEN price_tier <> service_tier THEN 'tier_fallback'
            WHEN usage_source = 'estimated' THEN 'estimated'
        END AS note_kind
    FROM final
)
SELECT
    run_id, request_id, custom_id, line_no, requested_model, response_model, priced_model,
    coalesce(priced_model, model_id, '(unknown model)') AS model,
    service_tier, price_tier, price_id, price_effective_from, source_format,
    status, http_status, error_type, error_message, response_id, provider_request_id, finish_reasons,
    usage_source, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cache_write_tokens,
    reasoning_tokens, uncached_input_tokens,
    CASE WHEN not_billed THEN CAST(0 AS DECIMAL(38, 15)) ELSE raw_input_cost END AS input_cost_usd,
    CASE WHEN not_billed THEN CAST(0 AS DECIMAL(38, 15)) ELSE raw_output_cost END AS output_cost_usd,
    CASE WHEN not_billed THEN CAST(0 AS DECIMAL(38, 15)) ELSE raw_input_cost + raw_output_cost END AS cost_usd,
    (not_billed OR (raw_input_cost IS NOT NULL AND raw_output_cost IS NOT NULL)) AS priced,
    CASE note_kind
        WHEN 'not_billed' THEN 'not billed: error without usage'
        WHEN 'no_usage' THEN 'unpriced: no usage reported'
        WHEN 'unknown_model' THEN 'unpriced: unknown model'
        WHEN 'no_price_row' THEN 'unpriced: no price row in force at ' || strftime(priced_at, '%Y-%m-%d %H:%M:%S')
        WHEN 'empty_cell' THEN 'unpriced: price cell empty'
        WHEN 'tier_fallback' THEN 'tier fallback: no ' || service_tier || ' price, priced at standard'
        WHEN 'estimated' THEN 'estimated usage'
    END AS price_note,
    coalesce(note_kind = 'tier_fallback', false) AS tier_fallback,
    temperature, max_tokens, stream, top_p, frequency_penalty, presence_penalty, stop, n, "user",
    extra_params, msg_count, messages_sha256,
    created_at, priced_at, coalesce(started_at, priced_at) AS occurred_at, started_at, completed_at,
    latency_ms, ttft_ms, attempts, source_line_no
FROM noted
