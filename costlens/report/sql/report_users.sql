-- Cost by end user (the request's `user` parameter), the $limit most expensive
-- listed and the rest folded into one row (listed = false, users = how many).
-- NULL user = not set on the request.
WITH per_user AS (
    SELECT
        "user", count(*) AS requests, count(*) FILTER (WHERE status = 'error') AS failed,
        coalesce(sum(prompt_tokens), 0) AS input_tokens, coalesce(sum(completion_tokens), 0) AS output_tokens,
        sum(cost_usd) FILTER (WHERE priced) AS cost_usd, count(*) FILTER (WHERE NOT priced) AS unpriced
    FROM report_rows
    GROUP BY "user"
),
ranked AS (
    SELECT *, row_number() OVER (ORDER BY cost_usd DESC NULLS LAST, requests DESC, "user" NULLS LAST) AS rank
    FROM per_user
)
SELECT
    rank <= $limit AS listed,
    CASE WHEN rank <= $limit THEN "user" END AS "user",
    count(*) AS users,
    sum(requests) AS requests, sum(failed) AS failed,
    sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
    sum(cost_usd) AS cost_usd, sum(unpriced) AS unpriced,
    min(rank) AS rank
FROM ranked
GROUP BY ALL
ORDER BY rank
