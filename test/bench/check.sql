-- test/bench/check.sql: after the declare runs of `make bench`, one row of
-- facts that must hold however many clients declared at once: no code given
-- twice, each day's numbers 1..N without a gap, the day counter at N, one
-- "declared" event per incident, and (for 200 incidents picked at random,
-- through the view incident_checklist_items, however checklists are stored)
-- the full P2 checklist.
WITH expected AS (
    SELECT count(*) AS items
      FROM incident_checklist_template t
      JOIN incident_checklist_template_item ti USING (checklist)
     WHERE t.enabled AND ti.enabled AND 'P2' = ANY (t.severities)
       AND (ti.severities IS NULL OR 'P2' = ANY (ti.severities))
)
SELECT count(*) AS incidents,
       count(DISTINCT code) AS distinct_codes,
       count(DISTINCT day) AS days,
       (SELECT count(*) FROM (SELECT day FROM incident GROUP BY day
                               HAVING count(*) <> max(day_seq) OR min(day_seq) <> 1
                                   OR count(DISTINCT day_seq) <> count(*)) g) AS days_with_gaps,
       (SELECT count(*) FROM incident_day_counter c
         WHERE c.last_seq IS DISTINCT FROM (SELECT max(i.day_seq) FROM incident i WHERE i.day = c.day)) AS counter_mismatches,
       (SELECT count(*) FROM incident_event e WHERE e.kind = 'declared') AS declared_events,
       (SELECT count(*) FROM (SELECT i.code FROM incident i ORDER BY random() LIMIT 200) s
         WHERE (SELECT count(*) FROM incident_checklist_items c WHERE c.code = s.code)
               <> (SELECT items FROM expected)) AS sampled_without_checklist,
       (SELECT items FROM expected) AS checklist_items
  FROM incident;
