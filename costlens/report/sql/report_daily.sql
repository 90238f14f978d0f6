-- Daily cost per model; a day is a calendar day in $tz (occurred_at is naive UTC).
--
-- Requests are first summed into 15-minute UTC buckets and only the buckets are
-- converted to $tz: a million time-zone conversions cost more than the rest of the
-- query. Exact because every UTC offset in use since 1979 (when Liberia dropped
-- -0:44:30) is a whole number of quarter hours, so no bucket straddles a local midnight.
WITH buckets AS (
    SELECT
        time_bucket(INTERVAL 15 MINUTES, occurred_at) AS bucket,
        model,
        count(*) AS requests,
        sum(cost_usd) FILTER (WHERE priced) AS cost_usd,
        count(*) FILTER (WHERE NOT priced) AS unpriced
    FROM report_rows
    GROUP BY ALL
)
SELECT
    CAST(timezone($tz, timezone('UTC', bucket)) AS DATE) AS day,
    model,
    sum(requests) AS requests,
    sum(cost_usd) AS cost_usd,
    sum(unpriced) AS unpriced
FROM buckets
GROUP BY ALL
ORDER BY day, model
