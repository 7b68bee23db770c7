-- test/demo.sql: the scripted walk of `make demo` (run by test/demo).
--
-- One P1 incident, "Website completely down - 500 errors" (the playbook's own
-- example), from declaration to closure, as its responders would type it in
-- psql. Three people from the playbook act through database roles of their
-- own, each granted one of the extension's roles (john.doe and sarah.johnson
-- incident_responder, ahmed.alrashid incident_admin), so the timeline records
-- who did what. The cluster's superuser is "postgres" (test/lib.sh), so these
-- roles never collide with the name of the OS user running the demo.
-- The superuser-only test clock pg_incident.clock moves time forward between
-- the steps; each step therefore starts with
--     RESET ROLE; SET pg_incident.clock = '...'; SET ROLE "someone";
-- The last part is in real time: an HTTP probe of a port where nothing
-- answers and a SQL probe, then a wait (polling, at most 30 s) for the
-- incident the background worker declares.
-- Run with psql -X -q -v ON_ERROR_STOP=1: the first error stops the walk.

\set ON_ERROR_STOP 1
\pset pager off
\pset null '-'
\pset footer on

-- What the dashboard shows: the clocks as local wall-clock times.
\set dashboard 'SELECT code, severity AS sev, status, to_char(age, ''HH24:MI'') AS age, owner, to_char(response_due, ''HH24:MI'') AS ack_due, response_state AS ack_clock, to_char(next_update_due, ''HH24:MI'') AS update_due, update_state AS update_clock FROM incident_dashboard;'

\echo '=============================================================================='
\echo ' pg_incident demo: a P1 incident, from declaration to closure'
\echo ' (the playbook: Phase 1 detection, Phase 2 response, Phase 3 resolution,'
\echo '  Phase 4 post-incident; times are Asia/Riyadh, set by the test clock)'
\echo '=============================================================================='
\echo

\echo '-- Setup: the incident day and all times are taken in Asia/Riyadh'
\echo 'SET TimeZone = ''Asia/Riyadh''; SET pg_incident.timezone = ''Asia/Riyadh'';'
SET TimeZone = 'Asia/Riyadh';
SET pg_incident.timezone = 'Asia/Riyadh';

\echo
\echo '-- Setup: CREATE EXTENSION pg_incident (as the superuser postgres)'
CREATE EXTENSION pg_incident;
SELECT extname, extversion FROM pg_extension WHERE extname = 'pg_incident';

\echo
\echo '-- Setup: a database role for each person, granted one of the extension''s three roles:'
\echo '--        incident_viewer     reads the dashboard, the timeline and the tables'
\echo '--        incident_responder  also declares, acknowledges, updates, staffs, ticks, resolves, closes'
\echo '--        incident_admin      also edits the playbook: severities, checklists, on-call'
CREATE ROLE "john.doe" IN ROLE incident_responder;
CREATE ROLE "ahmed.alrashid" IN ROLE incident_admin;
CREATE ROLE "sarah.johnson" IN ROLE incident_responder;
SELECT p.person, r.rolname AS granted_role, p.job
  FROM (VALUES (1, 'john.doe', 'lead developer, on call this week'),
               (2, 'ahmed.alrashid', 'system administrator, incident commander'),
               (3, 'sarah.johnson', 'business owner, communications')) AS p(ord, person, job)
  JOIN pg_roles m ON m.rolname = p.person
  JOIN pg_auth_members a ON a.member = m.oid
  JOIN pg_roles r ON r.oid = a.roleid
 ORDER BY p.ord;

\echo
\echo '-- Setup: the playbook''s severity levels (incident_severity, seeded by CREATE EXTENSION)'
SELECT severity, name, response_time, update_every, pir_due, page, calendar, escalation_policy
  FROM incident_severity ORDER BY severity;

\echo
\echo '-- Setup: the playbook''s on-call rotation (two weeks: John Doe with Jane Smith as'
\echo '--        backup, then Ahmed Al-Rashid with Sarah Johnson), handoff Sunday 09:00 Riyadh,'
\echo '--        and Ahmed Al-Rashid (system administrator) as Incident Commander;'
\echo '--        ahmed.alrashid enters it: on-call configuration is for incident_admin'
\echo '--        (jane.smith is only on the rotation: she does not act here and has no database role)'
SET ROLE "ahmed.alrashid";
INSERT INTO incident_responder (name, phone, email, chat) VALUES
    ('john.doe', '+966-5X-XXX-XXXX', 'john.doe@example.com', '@john'),
    ('jane.smith', '+966-5X-XXX-XXXY', 'jane.smith@example.com', '@jane'),
    ('ahmed.alrashid', '+966-5X-XXX-XXXZ', 'ahmed@example.com', '@ahmed'),
    ('sarah.johnson', '+966-5X-XXX-XXXA', 'sarah@example.com', '@sarah');
-- the seeded escalation policy of P1/P2 pages the rotation named "on-call"
INSERT INTO incident_rotation (name, shift, starts_at, time_zone, description)
VALUES ('on-call', '1 week', '2026-01-11 09:00 Asia/Riyadh', 'Asia/Riyadh', 'The playbook''s two-week rotation');
INSERT INTO incident_rotation_member (rotation, position, responder, backup) VALUES
    ('on-call', 1, 'john.doe', 'jane.smith'),
    ('on-call', 2, 'ahmed.alrashid', 'sarah.johnson');
UPDATE incident_team_role SET primary_responder = 'ahmed.alrashid' WHERE role = 'incident_commander';
SELECT w AS week_of, o.primary_responder, o.backup_responder
  FROM unnest(ARRAY['2026-01-15 12:00+03', '2026-01-22 12:00+03']::timestamptz[]) AS w,
       incident_oncall('on-call', w) AS o;
RESET ROLE;

\echo
\echo '=============================================================================='
\echo ' Phase 1: detection and declaration'
\echo '=============================================================================='
\echo '-- 14:27  every page of the website starts returning HTTP 500'
\echo '-- 14:29  initial assessment, "determine initial severity level": the classifier agrees'
\echo '--        that the playbook''s example is a P1, and says which rule decided (rank 1)'
\echo '--        and which rule would have come next (rank 2)'
SELECT rank, rule, severity, category, matched
  FROM incident_classify_explain('Website completely down - 500 errors') WHERE rank <= 2;
\echo '-- 14:30  john.doe (on call) declares it, as the playbook example does:'
\echo '--        incident_declare(''critical'', ''Website completely down - 500 errors'', ...)'
\echo '--        ''critical'' is P1: acknowledge within 15 minutes, an update every 15 minutes'
RESET ROLE; SET pg_incident.clock = '2026-01-15 14:30:00+03'; SET ROLE "john.doe";
LISTEN pg_incident;
SELECT incident_declare('critical', 'Website completely down - 500 errors',
                        'Monitoring: every page returns HTTP 500; users cannot browse or submit leads.',
                        started_at => '2026-01-15 14:27:00+03') AS code \gset
UNLISTEN pg_incident;
\echo '-- (the line above is the NOTIFY pg_incident that every timeline event sends)'
\echo
\echo 'declared incident' :code
\x on
SELECT code, severity, status, title, description, declared_by, started_at, declared_at,
       response_due, next_update_due
  FROM incident WHERE code = :'code';
\x off

\echo
\echo '-- 14:30  the dashboard: one open P1, both clocks running'
:dashboard

\echo
\echo '-- 14:30  who gets paged while nobody has acknowledged: the escalation schedule'
\echo '--        (the background worker that pages on time comes in a later version)'
SELECT step, level, to_char(due_at, 'HH24:MI') AS due, target_type, target, responder, state, reason
  FROM incident_escalation_schedule(:'code') LIMIT 4;

\echo
\echo '-- 14:33  initial assessment (5 minutes): john.doe ticks the playbook''s checklist'
RESET ROLE; SET pg_incident.clock = '2026-01-15 14:33:00+03'; SET ROLE "john.doe";
SELECT v.checklist, v.item_no AS "#",
       (SELECT t.item FROM incident_checklist_template_item t WHERE (t.checklist, t.item_no) = (v.checklist, v.item_no)) AS item,
       incident_checklist_tick(:'code', v.checklist, v.item_no) AS incident_status
  FROM (VALUES ('team_assembly', 1), ('initial_assessment', 1), ('initial_assessment', 2), ('initial_assessment', 4)) AS v(checklist, item_no);

\echo
\echo '=============================================================================='
\echo ' Phase 2: response and mitigation'
\echo '=============================================================================='
\echo '-- 14:36 (+6 min)  john.doe acknowledges: the response clock stops, met in time'
RESET ROLE; SET pg_incident.clock = '2026-01-15 14:36:00+03'; SET ROLE "john.doe";
SELECT incident_acknowledge(:'code') AS incident_status;
SELECT v.checklist, v.item_no AS "#",
       (SELECT t.item FROM incident_checklist_template_item t WHERE (t.checklist, t.item_no) = (v.checklist, v.item_no)) AS item,
       incident_checklist_tick(:'code', v.checklist, v.item_no) AS incident_status
  FROM (VALUES ('p1_response', 1)) AS v(checklist, item_no);

\echo
\echo '-- 14:37  team assembly: the playbook''s three incident roles (incident_assign): john.doe'
\echo '--        names the incident commander, who names the technical and communications leads'
RESET ROLE; SET pg_incident.clock = '2026-01-15 14:37:00+03'; SET ROLE "john.doe";
SELECT incident_assign(:'code', 'incident_commander', 'ahmed.alrashid') AS incident_status;
SELECT v.checklist, v.item_no AS "#",
       (SELECT t.item FROM incident_checklist_template_item t WHERE (t.checklist, t.item_no) = (v.checklist, v.item_no)) AS item,
       incident_checklist_tick(:'code', v.checklist, v.item_no) AS incident_status
  FROM (VALUES ('team_assembly', 2)) AS v(checklist, item_no);
RESET ROLE; SET pg_incident.clock = '2026-01-15 14:38:00+03'; SET ROLE "ahmed.alrashid";
SELECT incident_assign(:'code', 'technical_lead', 'john.doe') AS incident_status;
SELECT incident_assign(:'code', 'communications_lead', 'sarah.johnson') AS incident_status;
SELECT v.checklist, v.item_no AS "#",
       (SELECT t.item FROM incident_checklist_template_item t WHERE (t.checklist, t.item_no) = (v.checklist, v.item_no)) AS item,
       incident_checklist_tick(:'code', v.checklist, v.item_no) AS incident_status
  FROM (VALUES ('team_assembly', 3), ('team_assembly', 4)) AS v(checklist, item_no);
SELECT code, incident_commander, technical_lead, communications_lead
  FROM incident_dashboard WHERE code = :'code';

\echo
\echo '-- 14:40  P1 response checklist: war room open, stakeholders notified, status page updated'
RESET ROLE; SET pg_incident.clock = '2026-01-15 14:40:00+03'; SET ROLE "sarah.johnson";
SELECT v.checklist, v.item_no AS "#",
       (SELECT t.item FROM incident_checklist_template_item t WHERE (t.checklist, t.item_no) = (v.checklist, v.item_no)) AS item,
       incident_checklist_tick(:'code', v.checklist, v.item_no) AS incident_status
  FROM (VALUES ('p1_response', 2), ('p1_response', 3), ('p1_response', 6)) AS v(checklist, item_no);

\echo
\echo '-- 14:42  the checklists so far: progress per checklist, then the ones being worked'
RESET ROLE; SET pg_incident.clock = '2026-01-15 14:42:00+03'; SET ROLE "ahmed.alrashid";
SELECT checklist, checklist_title AS title, phase, count(*) FILTER (WHERE done) AS done, count(*) AS items
  FROM incident_checklist(:'code') WITH ORDINALITY AS c
 GROUP BY checklist, checklist_title, phase
 ORDER BY min(c.ordinality);
SELECT checklist, item_no AS "#", item, CASE WHEN done THEN 'x' ELSE ' ' END AS done,
       to_char(done_at, 'HH24:MI') AS at, done_by
  FROM incident_checklist(:'code')
 WHERE checklist IN ('initial_assessment', 'team_assembly', 'p1_response');

\echo
\echo '-- 14:42  the dashboard: acknowledged in time (ok); the first update is due at 14:45 (due_soon)'
:dashboard

\echo
\echo '-- 14:44 (+14 min)  sarah.johnson posts the first status update: investigating'
RESET ROLE; SET pg_incident.clock = '2026-01-15 14:44:00+03'; SET ROLE "sarah.johnson";
SELECT incident_update(:'code', 'investigating',
    'All pages return HTTP 500 since 14:27. Release v2.14.0 went out at 14:20 and is the first suspect. Next update by 14:59.') AS incident_status;

\echo
\echo '-- 14:50-14:52  the technical lead investigates and notes what he found'
RESET ROLE; SET pg_incident.clock = '2026-01-15 14:50:00+03'; SET ROLE "john.doe";
SELECT v.checklist, v.item_no AS "#",
       (SELECT t.item FROM incident_checklist_template_item t WHERE (t.checklist, t.item_no) = (v.checklist, v.item_no)) AS item,
       incident_checklist_tick(:'code', v.checklist, v.item_no) AS incident_status
  FROM (VALUES ('p1_response', 4), ('investigation', 1), ('investigation', 2), ('investigation', 3)) AS v(checklist, item_no);
RESET ROLE; SET pg_incident.clock = '2026-01-15 14:52:00+03'; SET ROLE "john.doe";
SELECT incident_note(:'code',
    'Error log: relation "leads_v2" does not exist. v2.14.0 reads a table its migration was meant to create; the migration never ran.') AS incident_status;

\echo
\echo '-- 15:01 (+31 min)  the dashboard: the next update was due at 14:59 and is late (breached)'
RESET ROLE; SET pg_incident.clock = '2026-01-15 15:01:00+03'; SET ROLE "ahmed.alrashid";
:dashboard

\echo
\echo '-- 15:01  sarah.johnson posts the second update: identified (the update clock restarts)'
RESET ROLE; SET pg_incident.clock = '2026-01-15 15:01:00+03'; SET ROLE "sarah.johnson";
SELECT incident_update(:'code', 'identified',
    'Cause found: release v2.14.0 needs a database migration that did not run. Rolling back to v2.13.2. Next update by 15:16.') AS incident_status;

\echo
\echo '=============================================================================='
\echo ' Phase 3: resolution and recovery'
\echo '=============================================================================='
\echo '-- 15:03-15:06  fix: approved by the IC, rolled back, watched'
RESET ROLE; SET pg_incident.clock = '2026-01-15 15:03:00+03'; SET ROLE "ahmed.alrashid";
SELECT v.checklist, v.item_no AS "#",
       (SELECT t.item FROM incident_checklist_template_item t WHERE (t.checklist, t.item_no) = (v.checklist, v.item_no)) AS item,
       incident_checklist_tick(:'code', v.checklist, v.item_no, 'john.doe') AS incident_status
  FROM (VALUES ('fix', 1), ('fix', 2)) AS v(checklist, item_no);
SELECT v.checklist, v.item_no AS "#",
       (SELECT t.item FROM incident_checklist_template_item t WHERE (t.checklist, t.item_no) = (v.checklist, v.item_no)) AS item,
       incident_checklist_tick(:'code', v.checklist, v.item_no) AS incident_status
  FROM (VALUES ('fix', 4)) AS v(checklist, item_no);
RESET ROLE; SET pg_incident.clock = '2026-01-15 15:06:00+03'; SET ROLE "john.doe";
SELECT v.checklist, v.item_no AS "#",
       (SELECT t.item FROM incident_checklist_template_item t WHERE (t.checklist, t.item_no) = (v.checklist, v.item_no)) AS item,
       incident_checklist_tick(:'code', v.checklist, v.item_no) AS incident_status
  FROM (VALUES ('p1_response', 5), ('fix', 5), ('fix', 6)) AS v(checklist, item_no);

\echo
\echo '-- 15:08 (+38 min)  third update: monitoring'
RESET ROLE; SET pg_incident.clock = '2026-01-15 15:08:00+03'; SET ROLE "sarah.johnson";
SELECT incident_update(:'code', 'monitoring',
    'Rolled back to v2.13.2 at 15:06. Pages load again and the error rate is back to baseline; watching for 5 minutes. Next update by 15:23.') AS incident_status;
:dashboard

\echo
\echo '-- 15:12  recovery verification'
RESET ROLE; SET pg_incident.clock = '2026-01-15 15:12:00+03'; SET ROLE "john.doe";
SELECT v.checklist, v.item_no AS "#",
       (SELECT t.item FROM incident_checklist_template_item t WHERE (t.checklist, t.item_no) = (v.checklist, v.item_no)) AS item,
       incident_checklist_tick(:'code', v.checklist, v.item_no) AS incident_status
  FROM (VALUES ('fix', 7), ('recovery_verification', 1), ('recovery_verification', 2), ('recovery_verification', 3), ('recovery_verification', 4), ('recovery_verification', 5)) AS v(checklist, item_no);

\echo
\echo '-- 15:14 (+44 min)  the incident commander resolves it, with the root cause'
RESET ROLE; SET pg_incident.clock = '2026-01-15 15:14:00+03'; SET ROLE "ahmed.alrashid";
SELECT incident_resolve(:'code',
    'Release v2.14.0 was deployed before its database migration (create table leads_v2) had run, so every page failed with HTTP 500. Rolled back to v2.13.2; the release pipeline will run migrations before the deploy step.') AS incident_status;

\echo
\echo '-- 15:14  the dashboard lists open incidents only: the resolved incident has left it'
SELECT count(*) = 0 AS dashboard_empty FROM incident_dashboard \gset
\if :dashboard_empty
\echo 'incident_dashboard: no open incidents'
\else
:dashboard
\endif

\echo
\echo '-- 15:14  the incident''s clocks: acknowledged in 6 minutes, resolved in 44 (47 since impact began);'
\echo '--        the post-incident review is due within 48 hours'
SELECT code, status,
       acknowledged_at - declared_at AS time_to_ack,
       resolved_at - declared_at AS time_to_resolve,
       resolved_at - started_at AS customer_impact,
       to_char(pir_due, 'YYYY-MM-DD HH24:MI') AS pir_due
  FROM incident WHERE code = :'code';

\echo
\echo '-- 15:14  every SLA clock of the incident (incident_sla): the response was in time, the'
\echo '--        second status update came 2 minutes late, the post-incident review clock runs'
SELECT clock, seq, to_char(started_at, 'HH24:MI') AS started, to_char(due, 'MM-DD HH24:MI') AS due,
       to_char(met_at, 'HH24:MI') AS met, remaining, overdue, state
  FROM incident_sla WHERE code = :'code';

\echo
\echo '=============================================================================='
\echo ' Phase 4: post-incident activities'
\echo '=============================================================================='
\echo '-- 16:00  closure checklist, then incident_close'
RESET ROLE; SET pg_incident.clock = '2026-01-15 16:00:00+03'; SET ROLE "sarah.johnson";
SELECT v.checklist, v.item_no AS "#",
       (SELECT t.item FROM incident_checklist_template_item t WHERE (t.checklist, t.item_no) = (v.checklist, v.item_no)) AS item,
       incident_checklist_tick(:'code', v.checklist, v.item_no) AS incident_status
  FROM (VALUES ('closure', 1), ('closure', 2), ('closure', 3), ('closure', 4), ('closure', 5)) AS v(checklist, item_no);
RESET ROLE; SET pg_incident.clock = '2026-01-15 16:02:00+03'; SET ROLE "ahmed.alrashid";
SELECT v.checklist, v.item_no AS "#",
       (SELECT t.item FROM incident_checklist_template_item t WHERE (t.checklist, t.item_no) = (v.checklist, v.item_no)) AS item,
       incident_checklist_tick(:'code', v.checklist, v.item_no) AS incident_status
  FROM (VALUES ('closure', 6)) AS v(checklist, item_no);
SELECT incident_close(:'code') AS incident_status;

\echo
\echo '-- a closed incident is final: resolving it again is refused (the error is expected)'
\set ON_ERROR_STOP 0
\set SHOW_CONTEXT never
SELECT incident_resolve(:'code');
\set ON_ERROR_STOP 1
\set SHOW_CONTEXT errors
\if :ERROR
\else
DO $$ BEGIN RAISE EXCEPTION 'demo: resolving a closed incident was not refused'; END $$;
\endif

\echo
\echo '-- the closed incident as the table incident keeps it: who did each step, and when'
\echo '--        (the root cause wrapped for reading)'
\x on
SELECT code, severity, status, title, declared_by, declared_at, acknowledged_by, acknowledged_at,
       incident_commander, technical_lead, communications_lead, resolved_by, resolved_at,
       rtrim(regexp_replace(root_cause, '(.{1,72})(\s|$)', E'\\1\n', 'g'), E'\n') AS root_cause,
       closed_by, closed_at, pir_due
  FROM incident WHERE code = :'code';
\x off
SELECT count(*) = 0 AS dashboard_empty FROM incident_dashboard \gset
\if :dashboard_empty
\echo 'incident_dashboard: no open incidents'
\else
SELECT * FROM incident_dashboard;
\endif

\echo
\echo '-- incident_timeline: everything that happened, in order, with who did it'
SELECT to_char(at, 'HH24:MI') AS at, kind, actor, status,
       CASE WHEN length(message) > 72 THEN left(message, 69) || '...' ELSE message END AS message
  FROM incident_timeline WHERE code = :'code'
 ORDER BY event_id;

\echo
\echo '-- the same timeline, counted by kind of event'
SELECT kind, count(*) AS events FROM incident_timeline WHERE code = :'code'
 GROUP BY kind ORDER BY min(event_id);

RESET ROLE;
RESET pg_incident.clock;

\echo
\echo '=============================================================================='
\echo ' Automated detection: the worker probes, and declares an incident on its own'
\echo ' (the playbook''s website-outage runbook, "curl -I https://...", as probes;'
\echo '  real time from here on: the worker does not use the test clock)'
\echo '=============================================================================='
\echo
\echo '-- the background worker, preloaded with the cluster, was paused for the scripted'
\echo '--        walk above (it works in real time, not on the test clock); on again:'
ALTER SYSTEM SET pg_incident.enabled = on;
SELECT pg_reload_conf() AS reloaded;
DO $$
BEGIN
    FOR i IN 1 .. 150 LOOP
        EXIT WHEN (SELECT bool_and(state = 'idle') FROM incident_worker_status);
        PERFORM pg_sleep(0.2);
    END LOOP;
END
$$;
SELECT process, state, database FROM incident_worker_status;

\echo
\echo '-- ahmed.alrashid (incident_admin) connects the team chat: a webhook in the slack'
\echo '--        format, for P1 and P2 incidents (the receiver here is the demo''s own)'
SET ROLE "ahmed.alrashid";
SELECT incident_channel_webhook('team-chat', 'http://127.0.0.1:' || :'hook_port' || '/hook?name=chat',
                                format => 'slack', min_severity => 'P2') AS channel;
RESET ROLE;

\echo
\echo '-- ahmed.alrashid (incident_admin) writes two probes: the website, on a port where'
\echo '--        nothing answers (a site that is down), and a SQL check of the database,'
\echo '--        run as a role of its own that may read pg_stat_activity'
CREATE ROLE demo_probe IN ROLE pg_monitor;
GRANT demo_probe TO "ahmed.alrashid";
SET ROLE "ahmed.alrashid";
SELECT incident_probe_http('website', 'http://127.0.0.1:9/', method => 'HEAD', every => '1 second',
                           failures => 3, component => 'website', resolve_on_recovery => true) AS website_probe;
SELECT incident_probe_sql('connections', 'SELECT count(*) FROM pg_stat_activity', every => '1 second',
                          warn => 80, crit => 95, run_as => 'demo_probe', component => 'database') AS sql_probe;

\echo
\echo '-- before relying on them, one check of each, now (incident_probe_run records nothing)'
SELECT 'website' AS probe, ok, failure, left(error, 60) AS error FROM incident_probe_run('website')
UNION ALL
SELECT 'connections', ok, failure, 'value ' || value FROM incident_probe_run('connections');
RESET ROLE;

\echo
\echo '-- waiting (at most 30 s) for the worker: 3 failed checks of website, 1 second apart'
DO $$
BEGIN
    FOR i IN 1 .. 150 LOOP
        EXIT WHEN EXISTS (SELECT FROM incident WHERE source = 'probe');
        PERFORM pg_sleep(0.2);
    END LOOP;
    IF NOT EXISTS (SELECT FROM incident WHERE source = 'probe') THEN
        RAISE EXCEPTION 'demo: the worker declared no incident within 30 seconds'
            USING HINT = 'SELECT * FROM incident_worker_status; shows what the worker is doing.';
    END IF;
END
$$;

\echo
\echo '-- incident_probe_status: the website is down, the database up'
SELECT name, kind, state, consecutive_failures AS failures_in_a_row, last_failure, incident
  FROM incident_probe_status ORDER BY name;

\echo
\echo '-- the incident the worker declared, through incident_declare like a person would:'
\echo '--        severity P1 (a site that does not answer), source probe, its impact starting'
\echo '--        at the first failing check (for time to detection)'
SELECT code, severity, status, title, source, component, declared_by,
       to_char(declared_at - started_at, 'MI:SS') AS detected_after
  FROM incident WHERE source = 'probe';

\echo
\echo '-- nobody acknowledged it: the worker fires the P1 escalation policy''s levels as they'
\echo '--        fall due (page the on-call engineer and notify the Incident Commander at once)'
DO $$
BEGIN
    FOR i IN 1 .. 150 LOOP
        EXIT WHEN (SELECT count(*) >= 2 FROM incident_timeline
                    WHERE code = (SELECT code FROM incident WHERE source = 'probe') AND kind = 'escalated');
        PERFORM pg_sleep(0.2);
    END LOOP;
END
$$;
SELECT kind, actor, left(message, 70) AS message
  FROM incident_timeline WHERE code = (SELECT code FROM incident WHERE source = 'probe')
 ORDER BY event_id;

\echo
\echo '-- every event went to the chat, each in its own short transaction after the commit'
DO $$
BEGIN
    FOR i IN 1 .. 150 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM incident_notifications WHERE state <> 'delivered');
        PERFORM pg_sleep(0.2);
    END LOOP;
END
$$;
SELECT channel, event_kind, state, attempts, last_status,
       round(extract(epoch FROM latency) * 1000) AS latency_ms
  FROM incident_notifications ORDER BY id;
