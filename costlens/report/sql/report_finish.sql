-- Finish reasons of successful requests, per model, counted per choice (a request
-- with n > 1 has one finish reason per choice). NULL reason = not reported.
-- Requests are grouped by their whole list first, so only distinct lists are unnested.
WITH lists AS (
    SELECT model, finish_reasons, count(*) AS requests
    FROM report_rows
    WHERE status = 'ok'
    GROUP BY ALL
)
SELECT reason, model, CAST(sum(requests) AS BIGINT) AS choices
FROM (
    SELECT model, requests, unnest(coalesce(finish_reasons, [NULL])) AS reason
    FROM lists
)
GROUP BY ALL
ORDER BY model, choices DESC, reason NULLS LAST
