-- Checklists: copied per incident for its severity, ticked with who and when,
-- topped up when the severity rises; templates are editable.
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
-- a fixed role, so that actors in the output do not depend on the OS user
SET ROLE regress_incident_dba;
SET TimeZone = 'UTC';
SET pg_incident.timezone = 'UTC';
SET pg_incident.clock = '2026-03-01 09:00:00+00';

SELECT incident_declare('P1', 'Database unavailable') AS p1,
       incident_declare('P2', 'Admin panel partially accessible') AS p2,
       incident_declare('P4', 'Documentation errors') AS p4 \gset

-- P1 gets the P1 response checklist and the paging items; P4 gets tickets instead
SELECT checklist, count(*) AS items, string_agg(item_no::text, ',' ORDER BY item_no) AS item_nos
  FROM incident_checklist(:'p1') WITH ORDINALITY AS c GROUP BY checklist ORDER BY min(ordinality);
SELECT checklist, item_no, item FROM incident_checklist(:'p4') WHERE checklist IN ('team_assembly', 'fix') ORDER BY 1, 2;
SELECT count(*) FILTER (WHERE checklist = 'p1_response') AS p1_response_items,
       count(*) FILTER (WHERE item = 'Get approval from IC for P1/P2') AS ic_approval,
       count(*) AS total
  FROM incident_checklist(:'p2');

-- tick two items, with who and when
SET pg_incident.clock = '2026-03-01 09:03:00+00';
SELECT incident_checklist_tick(:'p1', 'initial_assessment', 1, 'john.doe');
SELECT incident_checklist_tick(:'p1', 'P1_Response', 2);
SELECT checklist, item_no, item, done, done_at, done_by FROM incident_checklist(:'p1') WHERE done;
SELECT kind, actor, recorded_by, message, details FROM incident_timeline WHERE code = :'p1' AND kind = 'checklist' ORDER BY event_id;
-- a second tick of the same item is refused, naming who ticked it
SELECT incident_checklist_tick(:'p1', 'initial_assessment', 1, 'jane.smith');
\echo :LAST_ERROR_SQLSTATE

-- raising P4 to P1 brings the P1 checklists; what was there stays
SELECT incident_checklist_tick(:'p4', 'initial_assessment', 2, 'jane.smith');
SELECT incident_set_severity(:'p4', 'P1', 'The docs site is the login page');
SELECT checklist, count(*) AS items, count(*) FILTER (WHERE done) AS done
  FROM incident_checklist(:'p4') WITH ORDINALITY AS c GROUP BY checklist ORDER BY min(ordinality);

-- templates are configuration: disable a checklist, add one of your own
UPDATE incident_checklist_template SET enabled = false WHERE checklist = 'root_cause_analysis';
INSERT INTO incident_checklist_template (checklist, title, phase, sort_order, severities)
VALUES ('security_containment', 'Security containment', 'response', 35, '{P1}');
INSERT INTO incident_checklist_template_item (checklist, item_no, item) VALUES
    ('security_containment', 1, 'Block suspicious IPs'),
    ('security_containment', 2, 'Preserve evidence (back up current logs)'),
    ('security_containment', 3, 'Notify security team');
SELECT checklist, is_default, enabled FROM incident_checklist_template
 WHERE checklist IN ('root_cause_analysis', 'security_containment', 'fix') ORDER BY 1;
SELECT incident_declare('P1', 'Security breach or data leak') AS sec \gset
SELECT checklist, count(*) AS items FROM incident_checklist(:'sec') WITH ORDINALITY AS c GROUP BY checklist ORDER BY min(ordinality);
-- an existing edited row is not silently replaced by an insert with its key
INSERT INTO incident_checklist_template (checklist, title, phase, sort_order)
VALUES ('root_cause_analysis', 'RCA', 'resolution', 50);
\echo :LAST_ERROR_SQLSTATE
-- a pristine seeded row is replaced by an insert with its key (this is how pg_dump restores edits)
INSERT INTO incident_checklist_template (checklist, title, phase, sort_order, severities)
VALUES ('closure', 'Closure (our way)', 'post_incident', 80, '{P1,P2}');
SELECT checklist, title, severities, is_default FROM incident_checklist_template WHERE checklist = 'closure';
-- bad template data is refused by constraints
INSERT INTO incident_checklist_template (checklist, title, phase, sort_order, severities)
VALUES ('bad', 'Bad', 'response', 1, '{P7}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_checklist_template_item (checklist, item_no, item) VALUES ('no_such_list', 1, 'x');
\echo :LAST_ERROR_SQLSTATE
