-- One row per event_uid (see outcomes_unique.sql for why and for the pruning caveat).
SELECT * EXCEPT (_n)
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY event_uid ORDER BY event_time) AS _n
  FROM `${dataset}.events`
)
WHERE _n = 1
