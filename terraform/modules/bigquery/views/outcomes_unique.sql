-- One row per (hit_id, event_uid, destination), the latest: Pub/Sub BigQuery subscriptions deliver at
-- least once, so a row can (rarely) land twice, and after `tagpipe replay` a dead_lettered outcome is
-- followed by the replayed delivery's outcome. Filter on `recorded_at` in the outer query for correctness, but
-- note the window stops partition pruning: for big ranges put the filter inside, as
-- BigQueryStore.outcome_counts does.
SELECT * EXCEPT (_n)
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY hit_id, event_uid, destination ORDER BY recorded_at DESC) AS _n
  FROM `${dataset}.outcomes`
)
WHERE _n = 1
