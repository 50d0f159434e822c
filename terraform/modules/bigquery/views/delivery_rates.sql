-- Per destination and hour: outcomes by kind and the error rate the alert watches.
SELECT
  TIMESTAMP_TRUNC(recorded_at, HOUR) AS hour,
  destination,
  COUNTIF(outcome = 'delivered') AS delivered,
  COUNTIF(outcome = 'filtered') AS filtered,
  COUNTIF(outcome = 'rejected') AS rejected,
  COUNTIF(outcome = 'dead_lettered') AS dead_lettered,
  SAFE_DIVIDE(COUNTIF(outcome IN ('rejected', 'dead_lettered')), COUNT(*)) AS error_rate
FROM `${dataset}.outcomes_unique`
WHERE destination != '*'
GROUP BY hour, destination
