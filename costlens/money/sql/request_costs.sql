-- request_costs: one row per logged request, priced against the price sheets.
--
-- This view is the single place where money is computed. Everything that shows
-- a cost (summary, export, report, estimate, run --budget) reads it. It is a TEMP
-- view because the price sheets are loaded per session from CSV into TEMP tables
-- (costlens/money/pricing.py: prices, model_aliases, model_matches, price_sheets),
-- so the same usage re-prices when a sheet changes, and every figure is
-- reproducible from DB + CSV. The table names carry a suffix (__SFX__) so other
-- sheets can price the same usage side by side (--compare-pricing, pricing diff). The four
-- sources (__RESULTS__ ...) are the tables, except in a scoped copy that prices a few rows alone
-- (costlens.money.costs.scoped_cost_view_sql: a run's latest batch, for its budget).
--
-- Model resolution (README "Model resolution"), case-insensitive, over DISTINCT
-- model ids (never per request). Sheet by sheet (0 = main, then each fallback in
-- order), first hit wins:
--   1. the model id exactly as logged (response model if known, else requested)
--   2. an alias (alias files, and `exact:` match rows of the sheet)
--   3. a pattern match row, most specific first: prefix, suffix, contains (each
--      longest pattern first), then regex (model_matches.rank holds that order)
--   4. the id with its provider prefix (text up to the first '/') stripped, then 1-3 again
-- A fallback sheet is consulted only for ids no earlier sheet resolves.
-- Price row: same sheet and resolved model, in force at priced_at
-- ([effective_from, effective_to)), min_prompt_tokens <= prompt_tokens; a row of
-- the request's own service tier wins over a 'standard' row (the fallback is
-- noted in price_note); among those, the highest min_prompt_tokens (long-context
-- cliff) applies to all buckets.
-- Buckets are disjoint, so each token is billed exactly once:
--   uncached input = prompt - cache read - cache write      at input_per_1m
--   cache read                                              at cached_input_per_1m, else input
--   5-minute cache write = cache write - 1-hour write       at cache_write_per_1m, else input
--   1-hour cache write                                      at cache_write_1h_per_1m, else cache write, else input
--   output excluding reasoning = completion - reasoning     at output_per_1m
--   reasoning                                               at reasoning_per_1m, else output
--   one successful request                                  at per_request_usd (else nothing)
-- DECIMAL(38,0) tokens x DECIMAL(38,9) $/1M x 0.000001 -> DECIMAL(38,15): exact, unrounded.
-- reported_cost_usd is what the provider or gateway said the request cost (OpenRouter usage.cost,
-- LiteLLM's x-litellm-response-cost): carried through as reported, never an input to cost_usd.
CREATE OR REPLACE TEMP VIEW __VIEW__ AS
WITH base AS (
    SELECT
        q.run_id, q.request_id, q.custom_id, q.line_no, q.requested_model,
        qp.temperature, qp.max_tokens, qp.stream, qp.top_p, qp.frequency_penalty, qp.presence_penalty,
        qp.stop, qp.n, qp."user", qp.extra_params, qp.msg_count, qp.messages_sha256,
        r.source_format, r.service_tier, r.status, r.http_status, r.error_type, r.error_message,
        r.response_id, r.provider_request_id, r.response_model, r.finish_reasons, r.usage_source,
        r.prompt_tokens, r.completion_tokens, r.total_tokens,
        r.cached_tokens, r.cache_write_tokens, r.cache_write_1h_tokens, r.reasoning_tokens,
        r.reported_cost_usd, r.reported_cost_source,
        -- Not reported = none of that kind (for billing); the raw NULLs are still exported.
        coalesce(r.cached_tokens, 0) AS cached_n,
        coalesce(r.cache_write_tokens, 0) AS cache_write_n,
        coalesce(r.cache_write_1h_tokens, 0) AS cache_write_1h_n,
        coalesce(r.reasoning_tokens, 0) AS reasoning_n,
        r.source_line_no, r.created_at, r.priced_at, d.started_at, d.completed_at, d.latency_ms, d.ttft_ms, d.attempts,
        coalesce(r.response_model, q.requested_model) AS model_id
    FROM __RESULTS__ r
    JOIN __REQUESTS__ q ON q.run_id = r.run_id AND q.request_id = r.request_id
    -- Parameters exist only where the request body was known (run, replay --requests);
    -- details (timings, attempts, completion text) only where run or replay --store-content wrote them.
    LEFT JOIN __PARAMS__ qp ON qp.run_id = r.run_id AND qp.request_id = r.request_id
    LEFT JOIN __DETAILS__ d ON d.run_id = r.run_id AND d.request_id = r.request_id
),
price_models AS (
    SELECT sheet, model_key AS key, min(model) AS model FROM prices__SFX__ GROUP BY sheet, model_key
),
alias_keys AS (
    SELECT lower(alias) AS key, lower(model) AS target, alias AS rule FROM model_aliases__SFX__
),
model_ids AS (
    SELECT DISTINCT model_id FROM base WHERE model_id IS NOT NULL
),
-- Each distinct id, as logged (stripped = 0) and without its provider prefix (stripped = 1).
id_keys AS (
    SELECT model_id, lower(model_id) AS k, 0 AS stripped FROM model_ids
    UNION ALL
    SELECT model_id, lower(regexp_replace(model_id, '^[^/]*/', '')) AS k, 1 AS stripped
    FROM model_ids WHERE model_id LIKE '%/%'
),
-- Every way an id could resolve; step orders them within a sheet (see the header).
matches AS (
    SELECT i.model_id, pm.sheet, i.stripped, 1 AS step, 0 AS rank, pm.key, 'exact' AS how, NULL AS rule
    FROM id_keys i JOIN price_models pm ON pm.key = i.k
    UNION ALL
    SELECT i.model_id, pm.sheet, i.stripped, 2, 0, pm.key, 'alias', a.rule
    FROM id_keys i JOIN alias_keys a ON a.key = i.k JOIN price_models pm ON pm.key = a.target
    UNION ALL
    SELECT i.model_id, m.sheet, i.stripped, CASE WHEN m.kind = 'exact' THEN 2 ELSE 3 END, m.rank, m.model_key,
        CASE WHEN m.kind = 'exact' THEN 'alias' ELSE 'pattern' END, m.kind || ':' || m.pattern
    FROM id_keys i JOIN model_matches__SFX__ m ON CASE m.kind
        WHEN 'exact' THEN i.k = m.pattern
        WHEN 'prefix' THEN starts_with(i.k, m.pattern)
        WHEN 'suffix' THEN ends_with(i.k, m.pattern)
        WHEN 'contains' THEN contains(i.k, m.pattern)
        ELSE regexp_matches(i.k, m.pattern) END
),
resolved AS (
    SELECT model_id,
        arg_min(sheet, (sheet, stripped, step, rank, key)) AS priced_sheet,
        arg_min(key, (sheet, stripped, step, rank, key)) AS priced_key,
        arg_min(CASE WHEN stripped = 1 THEN 'prefix stripped, ' ELSE '' END || how
                || coalesce(' ' || rule, ''), (sheet, stripped, step, rank, key)) AS price_match
    FROM matches GROUP BY model_id
),
-- Most (sheet, model, tier) triples have one price row that applies to every
-- request: a single row of the request's tier (or, with none of that tier, a
-- single standard row) with no long-context threshold and no effective dates.
-- Those are chosen by a join; only requests of other triples go through the
-- per-request choice below. Both give the same row (the property test in
-- tests/test_costs.py holds them to the reference rule).
tiers AS (
    SELECT unnest(['standard', 'batch', 'flex', 'priority']) AS service_tier
),
simple AS (
    SELECT p.sheet, p.model_key, t.service_tier,
        CASE
            WHEN count(*) FILTER (WHERE p.service_tier = t.service_tier) > 0
            THEN CASE WHEN count(*) FILTER (WHERE p.service_tier = t.service_tier) = 1
                       AND bool_and(p.unconditional) FILTER (WHERE p.service_tier = t.service_tier)
                      THEN min(p.price_id) FILTER (WHERE p.service_tier = t.service_tier) END
            ELSE CASE WHEN count(*) = 1 AND bool_and(p.unconditional) THEN min(p.price_id) END
        END AS price_id
    FROM (SELECT *, min_prompt_tokens = 0 AND effective_from IS NULL AND effective_to IS NULL AS unconditional
          FROM prices__SFX__) p
    JOIN tiers t ON p.service_tier = t.service_tier OR p.service_tier = 'standard'
    GROUP BY p.sheet, p.model_key, t.service_tier
),
resolved_base AS (
    SELECT b.*, pm.model AS priced_model, rm.priced_key, rm.priced_sheet, rm.price_match,
        CASE WHEN coalesce(b.prompt_tokens, 0) >= 0 THEN s.price_id END AS simple_price_id,
        s.price_id IS NOT NULL AS simple_choice
    FROM base b
    LEFT JOIN resolved rm ON rm.model_id = b.model_id
    LEFT JOIN price_models pm ON pm.sheet = rm.priced_sheet AND pm.key = rm.priced_key
    LEFT JOIN simple s
      ON s.sheet = rm.priced_sheet AND s.model_key = rm.priced_key AND s.service_tier = b.service_tier
),
candidates AS (
    SELECT
        b.run_id, b.request_id, p.price_id,
        row_number() OVER (
            PARTITION BY b.run_id, b.request_id
            ORDER BY (p.service_tier = b.service_tier) DESC, p.min_prompt_tokens DESC, p.price_id
        ) AS rank
    FROM resolved_base b
    JOIN prices__SFX__ p
      ON p.sheet = b.priced_sheet
     AND p.model_key = b.priced_key
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
            + CAST(b.cache_write_n - b.cache_write_1h_n AS DECIMAL(38, 0))
                * coalesce(ch.cache_write_per_1m, ch.input_per_1m)
            + CAST(b.cache_write_1h_n AS DECIMAL(38, 0))
                * coalesce(ch.cache_write_1h_per_1m, ch.cache_write_per_1m, ch.input_per_1m)
        ) * CAST(0.000001 AS DECIMAL(38, 6)) AS raw_input_cost,
        (
            CAST(b.completion_tokens - b.reasoning_n AS DECIMAL(38, 0)) * ch.output_per_1m
            + CAST(b.reasoning_n AS DECIMAL(38, 0)) * coalesce(ch.reasoning_per_1m, ch.output_per_1m)
        ) * CAST(0.000001 AS DECIMAL(38, 6)) AS raw_output_cost,
        -- A per-request fee is charged once per successful request.
        CAST(CASE WHEN b.status = 'ok' THEN coalesce(ch.per_request_usd, 0) ELSE 0 END AS DECIMAL(38, 15))
            AS raw_request_cost,
        ch.price_id IS NOT NULL AS has_price_row,
        CASE WHEN b.cache_write_1h_n > 0 AND ch.cache_write_1h_per_1m IS NULL
             THEN CASE WHEN ch.cache_write_per_1m IS NULL THEN 'input' ELSE 'cache-write' END END
            AS cache_1h_fallback
    FROM resolved_base b
    LEFT JOIN chosen c ON c.run_id = b.run_id AND c.request_id = b.request_id
    LEFT JOIN prices__SFX__ ch ON ch.price_id = coalesce(b.simple_price_id, c.price_id)
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
        END AS note_kind,
        (not_billed OR (raw_input_cost IS NOT NULL AND raw_output_cost IS NOT NULL)) AS is_priced
    FROM final
)
SELECT
    n.run_id, n.request_id, n.custom_id, n.line_no, n.requested_model, n.response_model, n.priced_model,
    coalesce(n.priced_model, n.model_id, '(unknown model)') AS model,
    n.service_tier, n.price_tier, n.price_id, n.price_effective_from, n.source_format,
    n.status, n.http_status, n.error_type, n.error_message, n.response_id, n.provider_request_id, n.finish_reasons,
    n.usage_source, n.prompt_tokens, n.completion_tokens, n.total_tokens, n.cached_tokens, n.cache_write_tokens,
    n.cache_write_1h_tokens, n.reasoning_tokens, n.uncached_input_tokens,
    CASE WHEN n.not_billed THEN CAST(0 AS DECIMAL(38, 15)) ELSE n.raw_input_cost END AS input_cost_usd,
    CASE WHEN n.not_billed THEN CAST(0 AS DECIMAL(38, 15)) ELSE n.raw_output_cost END AS output_cost_usd,
    CASE WHEN n.not_billed THEN CAST(0 AS DECIMAL(38, 15))
         WHEN n.is_priced THEN n.raw_request_cost END AS request_cost_usd,
    CASE WHEN n.not_billed THEN CAST(0 AS DECIMAL(38, 15))
         ELSE n.raw_input_cost + n.raw_output_cost + n.raw_request_cost END AS cost_usd,
    n.is_priced AS priced,
    nullif(concat_ws('; ',
        CASE WHEN n.priced_sheet > 0 AND n.is_priced AND NOT n.not_billed
             THEN 'fallback sheet ' || ps.name END,
        CASE n.note_kind
            WHEN 'not_billed' THEN 'not billed: error without usage'
            WHEN 'no_usage' THEN 'unpriced: no usage reported'
            WHEN 'unknown_model' THEN 'unpriced: unknown model'
            WHEN 'no_price_row' THEN 'unpriced: no price row in force at ' || strftime(n.priced_at, '%Y-%m-%d %H:%M:%S')
            WHEN 'empty_cell' THEN 'unpriced: price cell empty'
            WHEN 'tier_fallback' THEN 'tier fallback: no ' || n.service_tier || ' price, priced at standard'
            WHEN 'estimated' THEN 'estimated usage'
        END,
        CASE WHEN n.cache_1h_fallback IS NOT NULL AND n.is_priced AND NOT n.not_billed
             THEN '1-hour cache writes at the ' || n.cache_1h_fallback || ' price (no 1-hour price)' END
    ), '') AS price_note,
    coalesce(n.note_kind = 'tier_fallback', false) AS tier_fallback,
    coalesce(n.priced_sheet > 0 AND n.is_priced AND NOT n.not_billed, false) AS sheet_fallback,
    n.priced_sheet AS price_sheet, ps.name AS price_sheet_name, n.price_match,
    n.temperature, n.max_tokens, n.stream, n.top_p, n.frequency_penalty, n.presence_penalty, n.stop, n.n, n."user",
    n.extra_params, n.msg_count, n.messages_sha256,
    n.created_at, n.priced_at, coalesce(n.started_at, n.priced_at) AS occurred_at, n.started_at, n.completed_at,
    n.latency_ms, n.ttft_ms, n.attempts, n.source_line_no,
    -- The provider's own figure, as reported (never computed here), beside cost_usd.
    n.reported_cost_usd, n.reported_cost_source
FROM noted n
LEFT JOIN price_sheets__SFX__ ps ON ps.sheet = n.priced_sheet
