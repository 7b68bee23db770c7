-- The playbook's lifecycle of a P1, step by step, on a test clock.
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
-- a fixed role, so that actors in the output do not depend on the OS user
SET ROLE regress_incident_dba;
SET pg_incident.timezone = 'UTC';
SET pg_incident.clock = '2026-01-15 14:30:00+00';
SET TimeZone = 'UTC';

SELECT incident_declare('critical', 'Website completely down - 500 errors',
                        'Every page returns 500 since the 14:20 deploy',
                        started_at => '2026-01-15 14:20:00+00') AS code \gset
SELECT :'code' AS code;

SELECT code, severity, status, title, declared_by, started_at, declared_at, response_due, next_update_due, pir_due
  FROM incident WHERE code = :'code';

-- the dashboard right after declaring: both clocks running
SELECT code, severity, severity_name, status, age, owner, response_due, response_state, next_update_due, update_state
  FROM incident_dashboard WHERE code = :'code';

-- twelve minutes in, the 15-minute response clock is due soon
SET pg_incident.clock = '2026-01-15 14:42:00+00';
SELECT age, response_state, update_state FROM incident_dashboard WHERE code = :'code';

SELECT incident_acknowledge(:'code', 'john.doe');
SELECT acknowledged_at, acknowledged_by FROM incident WHERE code = :'code';
SELECT response_state, owner FROM incident_dashboard WHERE code = :'code';

SELECT incident_assign(:'code', 'incident_commander', 'john.doe');
SELECT incident_assign(:'code', 'technical_lead', 'lead.dev');
SELECT incident_assign(:'code', 'communications_lead', 'business.owner');
-- handing over a role records who had it
SELECT incident_assign(:'code', 'Technical_Lead', 'senior.dev');
-- assigning the holder again changes nothing
SELECT incident_assign(:'code', 'technical_lead', 'senior.dev');
SELECT incident_commander, technical_lead, communications_lead FROM incident WHERE code = :'code';

-- the first update is late: 15 minutes after declaring it was due
SET pg_incident.clock = '2026-01-15 14:46:00+00';
SELECT update_state FROM incident_dashboard WHERE code = :'code';
SELECT incident_update(:'code', 'Investigating', 'Rolling back the 14:20 deploy');
SELECT status, last_update_at, next_update_due, update_state FROM incident_dashboard WHERE code = :'code';

SET pg_incident.clock = '2026-01-15 14:58:00+00';
SELECT update_state FROM incident_dashboard WHERE code = :'code';
SELECT incident_update(:'code', 'monitoring', 'Rollback done, error rate back to baseline');
SELECT incident_note(:'code', 'Customer support informed');

SET pg_incident.clock = '2026-01-15 15:10:00+00';
SELECT incident_resolve(:'code', 'Deploy 4711 shipped a broken connection string');
SELECT status, resolved_at, resolved_by, root_cause, next_update_due, pir_due FROM incident WHERE code = :'code';
-- resolved incidents leave the dashboard
SELECT count(*) AS on_dashboard FROM incident_dashboard WHERE code = :'code';

-- a note after resolution is fine; an update is not (see 03_bad_input)
SELECT incident_note(:'code', 'PIR scheduled for Monday');

SET pg_incident.clock = '2026-01-16 09:00:00+00';
SELECT incident_close(:'code');
SELECT status, closed_at, closed_by FROM incident WHERE code = :'code';

-- the whole timeline, in order
SELECT at, kind, actor, recorded_by, status, message, details
  FROM incident_timeline WHERE code = :'code' ORDER BY event_id;

-- lower-case codes are accepted
SELECT status FROM incident WHERE code = upper(lower(:'code'));
SELECT count(*) FROM incident_checklist(lower(:'code'));

-- a false alarm can be resolved without being acknowledged
SET pg_incident.clock = '2026-01-15 16:00:00+00';
SELECT incident_declare('p3', 'Slow admin panel') AS code2 \gset
SELECT :'code2' AS code2;
SELECT incident_resolve(:'code2');
SELECT status, acknowledged_at, root_cause, pir_due - resolved_at AS pir_after FROM incident WHERE code = :'code2';

-- severity change on an open incident recomputes its clocks from the declaration
SET pg_incident.clock = '2026-01-15 16:10:00+00';
SELECT incident_declare('Low', 'Typo on the about page') AS code3 \gset
SELECT response_due, next_update_due FROM incident WHERE code = :'code3';
SET pg_incident.clock = '2026-01-15 16:40:00+00';
SELECT incident_set_severity(:'code3', 'P2', 'It is the checkout page, not the about page');
SELECT severity, response_due, next_update_due FROM incident WHERE code = :'code3';
SELECT severity, response_state, update_state FROM incident_dashboard WHERE code = :'code3';
SELECT kind, message, details FROM incident_timeline WHERE code = :'code3' ORDER BY event_id;

-- a severity change after resolution moves the PIR deadline
SELECT incident_acknowledge(:'code3');
SELECT incident_resolve(:'code3', 'Template fixed');
SELECT incident_set_severity(:'code3', 'P4', 'Only the test checkout was affected');
SELECT severity, status, next_update_due, pir_due - resolved_at AS pir_after FROM incident WHERE code = :'code3';

-- the dashboard lists open incidents, most severe and oldest first
SET pg_incident.clock = '2026-01-15 17:00:00+00';
SELECT incident_declare('P4', 'Docs out of date') AS d4, incident_declare('P2', 'Lead submission fails') AS d2 \gset
SELECT code, severity, status, age, response_state FROM incident_dashboard
 WHERE code IN (:'d4', :'d2') ORDER BY severity;
SELECT code FROM incident_dashboard WHERE declared_at >= '2026-01-15' AND declared_at < '2026-01-16';

-- clock states: ok until the last quarter, due_soon in it, breached after; met in time is ok, late is breached
SELECT incident_clock_state('2026-01-15 12:00+00', '1 hour', NULL, '2026-01-15 11:00+00') AS at_start,
       incident_clock_state('2026-01-15 12:00+00', '1 hour', NULL, '2026-01-15 11:44+00') AS before_last_quarter,
       incident_clock_state('2026-01-15 12:00+00', '1 hour', NULL, '2026-01-15 11:45+00') AS last_quarter,
       incident_clock_state('2026-01-15 12:00+00', '1 hour', NULL, '2026-01-15 12:00+00') AS at_due,
       incident_clock_state('2026-01-15 12:00+00', '1 hour', NULL, '2026-01-15 12:00:01+00') AS past_due,
       incident_clock_state('2026-01-15 12:00+00', '1 hour', '2026-01-15 11:59+00', '2026-01-15 13:00+00') AS met,
       incident_clock_state('2026-01-15 12:00+00', '1 hour', '2026-01-15 12:01+00', '2026-01-15 13:00+00') AS met_late,
       incident_clock_state(NULL, '1 hour') AS no_clock;
