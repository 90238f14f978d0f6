-- Cost by run tag (key=value). Tags belong to runs, so a request counts under
-- every tag of its run; shares across different keys can add up to over 100%.
WITH per_run AS (
    SELECT run_id, count(*) AS requests, sum(cost_usd) FILTER (WHERE priced) AS cost_usd,
           count(*) FILTER (WHERE NOT priced) AS unpriced
    FROM report_rows
    GROUP BY run_id
),
tagged AS (
    SELECT r.run_id, unnest(map_entries(json_transform(r.tags, '"MAP(VARCHAR, VARCHAR)"'))) AS tag
    FROM runs r
    WHERE r.run_id IN (SELECT run_id FROM per_run) AND r.tags IS NOT NULL
)
SELECT
    t.tag.key AS key, t.tag.value AS value,
    count(*) AS runs, sum(p.requests) AS requests, sum(p.cost_usd) AS cost_usd, sum(p.unpriced) AS unpriced
FROM tagged t
JOIN per_run p ON p.run_id = t.run_id
GROUP BY ALL
ORDER BY key, cost_usd DESC NULLS LAST, value
