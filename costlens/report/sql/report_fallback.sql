-- Requests priced at the standard row for lack of a row of their own tier, by that tier
-- (headline: "K priced at standard for lack of a batch price").
SELECT service_tier, count(*) AS requests
FROM report_rows
WHERE tier_fallback
GROUP BY service_tier
ORDER BY service_tier
