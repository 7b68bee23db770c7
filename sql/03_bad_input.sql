-- Bad input: each call fails with a clear error (SQLSTATE, message naming the
-- value, hint) and writes nothing.
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
-- a fixed role, so that actors in the output do not depend on the OS user
SET ROLE regress_incident_dba;
SET pg_incident.timezone = 'UTC';
SET pg_incident.clock = '2026-02-01 10:00:00+00';
SET TimeZone = 'UTC';

SELECT incident_declare('P2', 'Email integration failing') AS open_code \gset
SELECT incident_declare('P3', 'Resolved one') AS resolved_code \gset
SELECT incident_resolve(:'resolved_code', 'fixed');
SELECT incident_declare('P3', 'Closed one') AS closed_code \gset
SELECT incident_resolve(:'closed_code');
SELECT incident_close(:'closed_code');

SELECT incident_checklist_tick(:'open_code', 'investigation', 1);

CREATE TEMP TABLE written AS
SELECT (SELECT count(*) FROM incident) AS incidents,
       (SELECT count(*) FROM incident_event) AS events,
       (SELECT count(*) FROM incident_checklist_tick) AS ticks,
       (SELECT count(*) FROM incident_day_counter) AS days,
       (SELECT md5(string_agg(i::text, ',' ORDER BY id)) FROM incident i
         WHERE code IN (:'resolved_code', :'closed_code')) AS incident_rows,
       (SELECT md5(string_agg(c::text, ',' ORDER BY code, checklist, item_no)) FROM incident_checklist_items c
         WHERE code IN (:'open_code', :'resolved_code', :'closed_code')) AS item_rows;

-- severities
SELECT incident_declare('P5', 'db down');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_declare('urgent', 'db down');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_declare('', 'db down');
\echo :LAST_ERROR_SQLSTATE
-- (NULL and 'auto' are no longer bad input: they classify, see 10_classify)

-- titles
SELECT incident_declare('P1', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_declare('P1', '');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_declare('P1', E'  \t ');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_declare('P1', repeat('x', 201));
\echo :LAST_ERROR_SQLSTATE
-- 200 characters is the limit, and surrounding blanks do not count
SELECT incident_declare('P4', '  ' || repeat('y', 200) || '  ') AS long_code \gset
SELECT length(title) FROM incident WHERE code = :'long_code';
SELECT incident_declare('P1', 'db down', started_at => '2026-02-01 10:00:01+00');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_declare('P1', 'db down', started_at => '-infinity');
\echo :LAST_ERROR_SQLSTATE

-- codes
SELECT incident_acknowledge('INC-1');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_acknowledge('foo');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_acknowledge(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_acknowledge('INC-2099-0101-001');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM incident_checklist('INC-2099-0101-001');
\echo :LAST_ERROR_SQLSTATE

-- responders
SELECT incident_acknowledge(:'open_code', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_acknowledge(:'open_code', ' ');
\echo :LAST_ERROR_SQLSTATE

-- statuses and impossible transitions
SELECT incident_update(:'open_code', 'investigating', 'looking');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_close(:'open_code');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_acknowledge(:'open_code');
SELECT incident_acknowledge(:'open_code');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_update(:'open_code', 'resolved', 'done');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_update(:'open_code', '', 'done');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_update(:'open_code', 'fixed', 'done');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_update(:'open_code', NULL, 'done');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_update(:'open_code', 'investigating', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_update(:'open_code', 'investigating', '');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_update(:'resolved_code', 'investigating', 'still looking');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_acknowledge(:'resolved_code');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_resolve(:'resolved_code');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_resolve(:'closed_code');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_close(:'closed_code');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_resolve(:'open_code', '');
\echo :LAST_ERROR_SQLSTATE

-- severity changes
SELECT incident_set_severity(:'open_code', 'P9', 'worse');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_set_severity(:'open_code', 'high', 'same');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_set_severity(:'open_code', 'P1', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_set_severity(:'open_code', NULL, 'worse');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_set_severity(:'open_code', 'auto', 'worse');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_set_severity(:'closed_code', 'P1', 'worse than thought');
\echo :LAST_ERROR_SQLSTATE

-- roles
SELECT incident_assign(:'open_code', 'scribe', 'alice');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_assign(:'open_code', NULL, 'alice');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_assign(:'open_code', 'technical_lead', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_assign(:'open_code', 'technical_lead', repeat('a', 201));
\echo :LAST_ERROR_SQLSTATE
SELECT incident_assign(:'closed_code', 'technical_lead', 'alice');
\echo :LAST_ERROR_SQLSTATE

-- notes and checklists
SELECT incident_note(:'open_code', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_checklist_tick(:'open_code', 'p1_response', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_checklist_tick(:'open_code', 'investigation', 99);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_checklist_tick(:'closed_code', 'investigation', 1);
\echo :LAST_ERROR_SQLSTATE

-- the timeline is append-only, and incidents cannot be deleted
UPDATE incident_event SET message = 'rewritten' WHERE incident_id = (SELECT id FROM incident WHERE code = :'open_code');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM incident_event;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE incident_event CASCADE;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM incident WHERE code = :'closed_code';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM incident_checklist_tick;
\echo :LAST_ERROR_SQLSTATE
-- not even in replication mode
SET session_replication_role = replica;
DELETE FROM incident_event;
\echo :LAST_ERROR_SQLSTATE
RESET session_replication_role;
TRUNCATE incident CASCADE;
\echo :LAST_ERROR_SQLSTATE

-- settings
SET pg_incident.timezone = 'Mars/Olympus_Mons';
\echo :LAST_ERROR_SQLSTATE
SET pg_incident.clock = 'yesterday-ish';
\echo :LAST_ERROR_SQLSTATE
SET pg_incident.clock = 'now';
\echo :LAST_ERROR_SQLSTATE
SET pg_incident.clock = 'tomorrow';
\echo :LAST_ERROR_SQLSTATE
SET pg_incident.clock = '2026-02-01 10:00:00+00';
SHOW pg_incident.clock;

-- nothing of the failed calls was written: only the acknowledgement and the
-- 200-character declaration above went through
SELECT (SELECT count(*) FROM incident) - w.incidents AS new_incidents,
       (SELECT count(*) FROM incident_event) - w.events AS new_events,
       (SELECT count(*) FROM incident_day_counter) - w.days AS new_days
  FROM written w;
SELECT w.incident_rows = (SELECT md5(string_agg(i::text, ',' ORDER BY id)) FROM incident i
                          WHERE code IN (:'resolved_code', :'closed_code')) AS incidents_unchanged,
       w.item_rows = (SELECT md5(string_agg(c::text, ',' ORDER BY code, checklist, item_no)) FROM incident_checklist_items c
                      WHERE code IN (:'open_code', :'resolved_code', :'closed_code')) AS checklists_unchanged
  FROM written w;
SELECT kind, actor FROM incident_timeline
 WHERE event_id > (SELECT max(event_id) - 2 FROM incident_timeline) ORDER BY event_id;
SELECT status FROM incident WHERE code IN (:'open_code', :'resolved_code', :'closed_code') ORDER BY code;
