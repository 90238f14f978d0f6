-- Failed requests by error type and model, with the HTTP statuses seen and one
-- example message (the smallest, so the choice is deterministic). Messages come
-- from `results` for the failed requests only (report_rows does not carry them).
SELECT
    r.error_type, r.model, count(*) AS requests,
    string_agg(DISTINCT CAST(x.http_status AS VARCHAR), ', ' ORDER BY CAST(x.http_status AS VARCHAR))
        AS http_statuses,
    left(min(x.error_message), 300) AS example_message
FROM report_rows r
JOIN results x ON x.run_id = r.run_id AND x.request_id = r.request_id
WHERE r.status = 'error'
GROUP BY ALL
ORDER BY requests DESC, r.error_type NULLS LAST, r.model
