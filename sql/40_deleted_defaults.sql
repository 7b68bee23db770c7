-- Deleting a seeded configuration row is remembered, so that a pg_dump
-- restore (whose CREATE EXTENSION seeds the defaults again) deletes it again.
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET ROLE regress_incident_dba;
SET TimeZone = 'UTC';
SET pg_incident.clock = '2026-09-01 10:00:00+00';

-- an admin stops paging the Incident Commander and drops a rule
DELETE FROM incident_escalation_level WHERE policy = 'page-on-call' AND level = 2;
DELETE FROM incident_classify_rule WHERE name = 'ui_inconsistency';
-- a row someone added and deleted again is remembered too (harmless: no seed has its key)
INSERT INTO incident_classify_rule (name, priority, pattern, severity, category)
VALUES ('temporary', 5000, 'temporary', 'P4', 'cosmetic');
DELETE FROM incident_classify_rule WHERE name = 'temporary';
SELECT table_name, key, deleted_at, deleted_by FROM incident_deleted_default
 WHERE deleted_at >= '2026-09-01' ORDER BY table_name, key::text;

-- what a restore does: the seeded rows come back with CREATE EXTENSION, then
-- the remembered deletions are restored and delete them again
INSERT INTO incident_escalation_level (policy, level, delay, target_type, target, note, is_default)
VALUES ('page-on-call', 2, '0', 'role_primary', 'incident_commander', 'Notify Incident Commander', true);
SELECT level FROM incident_escalation_level WHERE policy = 'page-on-call' ORDER BY level;
CREATE TEMP TABLE tombstones AS SELECT * FROM incident_deleted_default;
TRUNCATE incident_deleted_default;
INSERT INTO incident_deleted_default SELECT * FROM tombstones;
SELECT level FROM incident_escalation_level WHERE policy = 'page-on-call' ORDER BY level;

-- a checklist deleted with its items: restored together, items first
DELETE FROM incident_checklist_template_item WHERE checklist = 'root_cause_analysis';
DELETE FROM incident_checklist_template WHERE checklist = 'root_cause_analysis';
CREATE TEMP TABLE rca_tombstones AS
SELECT * FROM incident_deleted_default WHERE key ->> 'checklist' = 'root_cause_analysis' ORDER BY table_name;
-- CREATE EXTENSION seeds them again (here: by hand, as pristine rows)
INSERT INTO incident_checklist_template (checklist, title, phase, sort_order, is_default)
VALUES ('root_cause_analysis', 'Root cause analysis', 'resolution', 50, true);
INSERT INTO incident_checklist_template_item (checklist, item_no, item, is_default)
SELECT 'root_cause_analysis', g, 'step ' || g, true FROM generate_series(1, 6) g;
DELETE FROM incident_deleted_default WHERE key ->> 'checklist' = 'root_cause_analysis';
-- the template's tombstone comes first in this restore, yet items go first
INSERT INTO incident_deleted_default SELECT * FROM rca_tombstones ORDER BY table_name;
SELECT count(*) AS rca_templates, (SELECT count(*) FROM incident_checklist_template_item
                                    WHERE checklist = 'root_cause_analysis') AS rca_items
  FROM incident_checklist_template WHERE checklist = 'root_cause_analysis';

-- a row the admin edited is not deleted by a remembered deletion of its key
UPDATE incident_checklist_template SET title = 'Fix (our way)' WHERE checklist = 'fix';
INSERT INTO incident_deleted_default (table_name, key) VALUES ('incident_checklist_template', '{"checklist": "fix"}');
SELECT checklist, title, is_default FROM incident_checklist_template WHERE checklist = 'fix';
UPDATE incident_checklist_template SET title = 'Fix implementation', is_default = true WHERE checklist = 'fix';

-- put things back for the files after this one
DELETE FROM incident_deleted_default;
