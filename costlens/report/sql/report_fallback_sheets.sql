-- Fallback sheets that priced at least one request of the report (headline coverage line).
SELECT price_sheet_name, count(*) AS requests
FROM report_rows
WHERE sheet_fallback
GROUP BY price_sheet_name
ORDER BY price_sheet_name
