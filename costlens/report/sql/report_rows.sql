-- report_rows: the requests a report covers, copied once out of the cost view.
--
-- Every section of `costlens report` aggregates this TEMP table instead of
-- request_costs itself: the view joins usage to the price table on every read,
-- and at a million requests one scan of it costs about a second, so one scan
-- per section would blow the report's time budget. Money columns are copied as
-- the view computes them (never recomputed here); only columns some section
-- needs are kept (error messages, rare and long, are read from `results` by the
-- errors query instead). `{where}` is Filters.where('c'), the same condition
-- `summary` uses, so the report and `summary --json` select the same requests.
--
-- comparable: a chat.completion line without its own custom_id, and every Vertex
-- AI batch row (they carry no id), gets its line number as custom_id (ingest/
-- formats); such ids name a position in a file, not a request, so they never join
-- across runs in the model comparison.
CREATE OR REPLACE TEMP TABLE report_rows AS
SELECT
    c.run_id, c.request_id, c.custom_id, c.messages_sha256, c.model, c.status, c.error_type,
    c.prompt_tokens, c.completion_tokens, c.cached_tokens, c.cache_write_tokens, c.cache_write_1h_tokens,
    c.reasoning_tokens, c.request_cost_usd, c.reported_cost_usd,
    c.input_cost_usd, c.output_cost_usd, c.cost_usd, c.priced,
    c.tier_fallback, c.sheet_fallback, c.price_sheet, c.price_sheet_name,
    c.service_tier, c.price_id, c."user", c.finish_reasons, c.occurred_at, c.latency_ms, c.ttft_ms,
    -- No time of its own: dated at the replay (or replay --at).
    c.created_at IS NULL AND c.started_at IS NULL AS undated,
    CASE WHEN c.source_format NOT IN ('chat_completion', 'vertex_batch') THEN true
         ELSE c.custom_id <> CAST(c.source_line_no AS VARCHAR) END AS comparable
FROM request_costs c
WHERE {where}
