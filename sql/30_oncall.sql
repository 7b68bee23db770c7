-- On-call rotations, overrides, incident roles and escalation policies, on a
-- test clock: the playbook's two-week rotation, handoffs across daylight
-- saving, the seeded P1/P2 policy, manual escalation, and bad input.
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
-- a fixed role, so that actors in the output do not depend on the OS user
SET ROLE regress_incident_dba;
SET pg_incident.timezone = 'UTC';
SET TimeZone = 'UTC';

------------------------------------------------------------------------------
-- What CREATE EXTENSION seeds
------------------------------------------------------------------------------

-- the playbook's Incident Response Team, without people yet
SELECT role, title, primary_title, backup_title, primary_responder, backup_responder,
       array_length(responsibilities, 1) AS responsibilities, is_default
  FROM incident_team_role ORDER BY role;
-- "page on-call engineer immediately; notify Incident Commander" for P1/P2
SELECT name, repeat_every, repeat_limit, is_default FROM incident_escalation_policy;
SELECT policy, level, delay, target_type, target, note FROM incident_escalation_level ORDER BY policy, level;
SELECT severity, escalation_policy, is_default FROM incident_severity ORDER BY severity;

------------------------------------------------------------------------------
-- Escalation before anyone is set up: the seeded policy pages nobody, and says why
------------------------------------------------------------------------------

SET pg_incident.clock = '2026-02-20 10:00:00+00';
SELECT incident_declare('P1', 'Database unavailable') AS early_code \gset
SELECT code, policy, level, repeat, due_at, overdue, target_type, target, responder, reason, done_levels
  FROM incident_escalations WHERE code = :'early_code';
-- escalating by hand records the level, pages nobody and warns
SELECT incident_escalate(:'early_code') AS paged;
SELECT kind, actor, message, details - 'due_at' AS details FROM incident_timeline
 WHERE code = :'early_code' AND kind = 'escalated';
-- the view moves on to level 2: the Incident Commander, not set either
SELECT level, due_at, target_type, target, responder, reason, done_levels, escalations
  FROM incident_escalations WHERE code = :'early_code';
SELECT incident_resolve(:'early_code', 'false alarm');
SELECT count(*) AS rows_for_code FROM incident_escalations WHERE code = :'early_code';

------------------------------------------------------------------------------
-- The playbook's team and its two-week rotation
------------------------------------------------------------------------------

INSERT INTO incident_responder (name, phone, email, chat) VALUES
    ('John Doe', '+966-5X-XXX-XXXX', 'john.doe@almazahir.example', '@john'),
    ('Jane Smith', '+966-5X-XXX-XXXY', 'jane.smith@almazahir.example', '@jane'),
    ('Ahmed Al-Rashid', '+966-5X-XXX-XXXZ', 'ahmed@almazahir.example', '@ahmed'),
    ('Sarah Johnson', '+966-5X-XXX-XXXA', 'sarah@almazahir.example', '@sarah'),
    ('Omar Haddad', '+966-5X-XXX-XXXB', ' omar@almazahir.example ', ''),
    ('Lina Saleh', NULL, 'lina@almazahir.example', '@lina');
-- contacts are trimmed and empty ones become NULL
SELECT name, email, chat FROM incident_responder WHERE name = 'Omar Haddad';

-- The playbook rotates pairs: week 1 John Doe primary with Jane Smith as
-- backup, week 2 Ahmed Al-Rashid primary with Sarah Johnson as backup. So the
-- rotation has two members, each with their own backup. Weekly shifts (the
-- default), handoff on Sunday 09:00 in Riyadh (06:00 UTC).
INSERT INTO incident_rotation (name, starts_at, time_zone, description)
VALUES ('on-call', '2026-03-01 09:00 Asia/Riyadh', 'Asia/Riyadh', 'The playbook''s two-week primary/backup rotation');
INSERT INTO incident_rotation_member (rotation, position, responder, backup) VALUES
    ('on-call', 10, 'John Doe', 'Jane Smith'),
    ('on-call', 20, 'Ahmed Al-Rashid', 'Sarah Johnson');
SELECT name, shift, starts_at, time_zone FROM incident_rotation;

-- six weeks, each Wednesday noon in Riyadh: the pairs alternate
SELECT w + 1 AS week, a.at, o.primary_responder, o.backup_responder
  FROM generate_series(0, 5) AS w,
       LATERAL (SELECT '2026-03-04 12:00 Asia/Riyadh'::timestamptz + w * interval '7 days' AS at) a,
       LATERAL incident_oncall('on-call', a.at) o
 ORDER BY w;

-- around the handoffs: before the first one nobody is on call
SELECT a.at, o.primary_responder, o.backup_responder
  FROM unnest(ARRAY['2026-03-01 05:59:59+00', '2026-03-01 06:00:00+00',
                    '2026-03-08 05:59:59+00', '2026-03-08 06:00:00+00',
                    '2026-03-15 05:59:59+00', '2026-03-15 06:00:00+00',
                    '2027-03-07 06:00:00+00']::timestamptz[]) AS a(at),
       LATERAL incident_oncall('on-call', a.at) o;

SELECT * FROM incident_oncall_schedule('on-call', '2026-02-28 00:00+00', '2026-03-29 00:00+00');

-- at defaults to incident_now(), the test clock
SET pg_incident.clock = '2026-03-10 10:00:00+00';
SELECT * FROM incident_oncall('on-call');
SET pg_incident.clock = '2026-03-16 10:00:00+00';
SELECT * FROM incident_oncall('on-call');

------------------------------------------------------------------------------
-- Overrides
------------------------------------------------------------------------------

-- Sarah covers John's primary slot on Tuesday evening to Wednesday morning;
-- Ahmed covers Jane's backup slot all Wednesday (right after, which is fine)
INSERT INTO incident_rotation_override (rotation, slot, responder, starts_at, ends_at, reason) VALUES
    ('on-call', 'primary', 'Sarah Johnson', '2026-03-03 18:00 Asia/Riyadh', '2026-03-04 09:00 Asia/Riyadh', 'John at the dentist'),
    ('on-call', 'Backup', 'Ahmed Al-Rashid', '2026-03-04 09:00 Asia/Riyadh', '2026-03-05 09:00 Asia/Riyadh', 'Jane travelling'),
    ('on-call', 'primary', 'Jane Smith', '2026-03-04 09:00 Asia/Riyadh', '2026-03-04 10:00 Asia/Riyadh', 'right after the first');
SELECT id, rotation, slot, responder, starts_at, ends_at, created_by FROM incident_rotation_override ORDER BY id;
SELECT * FROM incident_oncall_schedule('on-call', '2026-03-03 00:00+00', '2026-03-06 00:00+00');
SELECT a.at, o.*
  FROM unnest(ARRAY['2026-03-03 14:59:59+00', '2026-03-03 15:00:00+00', '2026-03-04 05:59:59+00',
                    '2026-03-04 06:00:00+00', '2026-03-04 07:00:00+00', '2026-03-05 06:00:00+00']::timestamptz[]) AS a(at),
       LATERAL incident_oncall('on-call', a.at) o;
-- an override also applies in the other pair's week and before the rotation starts
INSERT INTO incident_rotation_override (rotation, slot, responder, starts_at, ends_at)
VALUES ('on-call', 'primary', 'Lina Saleh', '2026-02-27 00:00+00', '2026-02-28 00:00+00');
SELECT * FROM incident_oncall('on-call', '2026-02-27 12:00+00');
DELETE FROM incident_rotation_override WHERE responder = 'Lina Saleh';

------------------------------------------------------------------------------
-- Handoffs keep their local time across daylight saving
------------------------------------------------------------------------------

INSERT INTO incident_responder (name) VALUES ('ny-1'), ('ny-2'), ('ny-3'), ('de-1'), ('de-2'), ('solo');

-- daily at 09:00 in New York across the start of DST (2026-03-08): 14:00 UTC
-- before, 13:00 UTC after; the shift across the change lasts 23 hours. With
-- no backups set, the backup is the next member (the first after the last).
INSERT INTO incident_rotation (name, shift, starts_at, time_zone)
VALUES ('ny-daily', '1 day', '2026-03-05 09:00 America/New_York', 'America/New_York');
INSERT INTO incident_rotation_member (rotation, position, responder) VALUES
    ('ny-daily', 1, 'ny-1'), ('ny-daily', 2, 'ny-2'), ('ny-daily', 3, 'ny-3');
SELECT starts_at, ends_at, ends_at - starts_at AS length, primary_responder, backup_responder
  FROM incident_oncall_schedule('ny-daily', '2026-03-06 14:00+00', '2026-03-10 13:00+00');
-- 13:30 UTC on 8 March is 09:30 EDT: ny-1 has taken over, though 24 hours
-- of UTC after the previous handoff would not have passed yet
SELECT * FROM incident_oncall('ny-daily', '2026-03-08 13:30+00');

-- weekly on Monday 09:00 in Berlin across the end of DST (2026-10-25):
-- 07:00 UTC before, 08:00 UTC after; that week lasts 169 hours
INSERT INTO incident_rotation (name, starts_at, time_zone)
VALUES ('berlin-weekly', '2026-10-12 09:00 Europe/Berlin', 'Europe/Berlin');
INSERT INTO incident_rotation_member (rotation, position, responder) VALUES
    ('berlin-weekly', 1, 'de-1'), ('berlin-weekly', 2, 'de-2');
SELECT starts_at, ends_at, ends_at - starts_at AS length, primary_responder, backup_responder
  FROM incident_oncall_schedule('berlin-weekly', '2026-10-12 07:00+00', '2026-11-09 08:00+00');
SELECT a.at, o.primary_responder
  FROM unnest(ARRAY['2026-10-26 07:30+00', '2026-10-26 08:00+00']::timestamptz[]) AS a(at),
       LATERAL incident_oncall('berlin-weekly', a.at) o;

-- a handoff at 02:30, a time that does not exist on 8 March in New York:
-- that day it happens at 03:30 EDT (07:30 UTC), as PostgreSQL reads the time
INSERT INTO incident_rotation (name, shift, starts_at, time_zone)
VALUES ('ny-night', '1 day', '2026-03-06 02:30 America/New_York', 'America/New_York');
INSERT INTO incident_rotation_member (rotation, position, responder) VALUES
    ('ny-night', 1, 'ny-1'), ('ny-night', 2, 'ny-2');
SELECT starts_at, ends_at, primary_responder
  FROM incident_oncall_schedule('ny-night', '2026-03-07 00:00+00', '2026-03-10 00:00+00');

-- monthly shifts count calendar months from starts_at: the 31st, or the last day
INSERT INTO incident_rotation (name, shift, starts_at)
VALUES ('monthly', '1 mon', '2026-01-31 09:00+00');
INSERT INTO incident_rotation_member (rotation, position, responder) VALUES
    ('monthly', 1, 'de-1'), ('monthly', 2, 'de-2');
SELECT starts_at, ends_at, primary_responder
  FROM incident_oncall_schedule('monthly', '2026-01-31 09:00+00', '2026-06-01 00:00+00');
-- years later, still exact
SELECT * FROM incident_oncall('monthly', '2036-01-31 08:59:59+00');
SELECT * FROM incident_oncall('monthly', '2036-01-31 09:00:00+00');

-- a one-member rotation has no backup unless the member names one
INSERT INTO incident_rotation (name, shift, starts_at) VALUES ('solo', '12 hours', '2026-01-01 00:00+00');
INSERT INTO incident_rotation_member (rotation, position, responder) VALUES ('solo', 1, 'solo');
SELECT * FROM incident_oncall('solo', '2026-06-01 00:00+00');
UPDATE incident_rotation_member SET backup = 'de-1' WHERE rotation = 'solo';
SELECT * FROM incident_oncall('solo', '2026-06-01 00:00+00');

------------------------------------------------------------------------------
-- Escalation of an unacknowledged P1 across a handoff
------------------------------------------------------------------------------

-- admins set the people of the roles
UPDATE incident_team_role SET primary_responder = 'Omar Haddad', backup_responder = 'Lina Saleh'
 WHERE role = 'incident_commander';
SELECT role, primary_responder, backup_responder, is_default FROM incident_team_role ORDER BY role;

-- declared five minutes before the handoff from John/Jane to Ahmed/Sarah
-- (Sunday 8 March, 09:00 Riyadh = 06:00 UTC): level 3, due at 06:05, goes to
-- the backup then on call, Sarah; the first repeat (from 06:25) to Ahmed
SET pg_incident.clock = '2026-03-08 05:55:00+00';
SELECT incident_declare('P1', 'Complete website outage') AS code \gset
SELECT step, repeat, level, due_at, target_type, target, responder, reason, state
  FROM incident_escalation_schedule(:'code');

SELECT code, policy, level, repeat, due_at, overdue, target, responder, phone, email, chat, reason,
       done_levels, escalations, note
  FROM incident_escalations WHERE code = :'code';

-- level 1 by hand, on time
SELECT incident_escalate(:'code') AS paged;
SELECT level, due_at, overdue, target_type, responder, phone, done_levels, escalations, last_escalated_at
  FROM incident_escalations WHERE code = :'code';
SELECT incident_escalate(:'code') AS paged;
-- three minutes later level 3 is not due yet
SET pg_incident.clock = '2026-03-08 05:58:00+00';
SELECT level, due_at, overdue, responder, done_levels FROM incident_escalations WHERE code = :'code';
-- at 06:05 it is
SET pg_incident.clock = '2026-03-08 06:05:00+00';
SELECT level, due_at, overdue, responder, done_levels FROM incident_escalations WHERE code = :'code';
-- escalate it early instead, at 06:01: the page goes to whoever is on call now
SET pg_incident.clock = '2026-03-08 06:01:00+00';
SELECT incident_escalate(:'code') AS paged;
-- the next one is the first repeat's level 1, at 06:25 (10 minutes + 20)
SELECT level, repeat, due_at, overdue, responder, done_levels, escalations FROM incident_escalations WHERE code = :'code';
SET pg_incident.clock = '2026-03-08 06:30:00+00';
SELECT level, repeat, due_at, overdue, responder FROM incident_escalations WHERE code = :'code';
-- the worker's sweep computes the same next steps, for every incident at once
SELECT count(*) AS due_rows,
       count(*) FILTER (WHERE v.due_at IS DISTINCT FROM d.due_at OR v.code IS NULL OR d.code IS NULL) AS disagreeing
  FROM (SELECT * FROM incident_escalations WHERE level IS NOT NULL) v
  FULL JOIN incident__escalations_due() d USING (code);

-- the timeline names each level and person
SELECT at, kind, actor, status, message FROM incident_timeline WHERE code = :'code' ORDER BY event_id;
SELECT details FROM incident_timeline WHERE code = :'code' AND kind = 'escalated' ORDER BY event_id DESC LIMIT 1;
SELECT step, repeat, level, due_at, responder, state, escalated_at
  FROM incident_escalation_schedule(:'code') WHERE step < 5;

-- acknowledging stops escalation
SELECT incident_acknowledge(:'code', 'Ahmed Al-Rashid');
SELECT count(*) AS rows_for_code FROM incident_escalations WHERE code = :'code';
SELECT step, level, responder, state FROM incident_escalation_schedule(:'code');
SELECT incident_escalate(:'code');
\echo :LAST_ERROR_SQLSTATE

------------------------------------------------------------------------------
-- Repeats, exhausted policies, severities without a policy
------------------------------------------------------------------------------

INSERT INTO incident_escalation_policy (name, repeat_every, repeat_limit) VALUES ('twice', '5 minutes', 1);
INSERT INTO incident_escalation_level (policy, level, delay, target_type, target) VALUES
    ('twice', 1, '30 minutes', 'responder', 'Lina Saleh'),
    ('twice', 2, '1 hour', 'role_backup', 'incident_commander');
INSERT INTO incident_escalation_policy (name, repeat_every) VALUES ('forever', '1 hour');
INSERT INTO incident_escalation_level (policy, level, delay, target_type, target)
VALUES ('forever', 1, '0', 'rotation_primary', 'ny-daily');
UPDATE incident_severity SET escalation_policy = 'twice' WHERE severity = 'P3';
SELECT severity, escalation_policy, is_default FROM incident_severity ORDER BY severity;

SET pg_incident.clock = '2026-03-09 12:00:00+00';
SELECT incident_declare('P3', 'Moderate performance issues') AS p3 \gset
SELECT incident_declare('P4', 'Typo on the about page') AS p4 \gset
-- run 1 starts 5 minutes after run 0's last level (1 hour): at 13:05
SELECT step, repeat, level, due_at, target_type, responder, state FROM incident_escalation_schedule(:'p3');
SELECT code, severity, policy, level, due_at, responder, reason FROM incident_escalations
 WHERE code IN (:'p3', :'p4') ORDER BY code;
SELECT incident_escalate(:'p3'), incident_escalate(:'p3'), incident_escalate(:'p3'), incident_escalate(:'p3');
SELECT code, policy, level, due_at, responder, reason, done_levels, escalations FROM incident_escalations WHERE code = :'p3';
SELECT incident_escalate(:'p3');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_escalate(:'p4');
\echo :LAST_ERROR_SQLSTATE

-- a policy that repeats until acknowledged, every hour after its last level
UPDATE incident_severity SET escalation_policy = 'forever' WHERE severity = 'P4';
SELECT step, repeat, level, due_at, responder, state FROM incident_escalation_schedule(:'p4', 5);
SELECT incident_escalate(:'p4');
-- under the new policy nothing was done yet: the P3 escalations stay with P3's policy
SELECT code, policy, level, repeat, due_at, responder, done_levels FROM incident_escalations WHERE code = :'p4';
-- a level may name a responder or rotation before they exist: it pages nobody, and says why
INSERT INTO incident_escalation_level (policy, level, delay, target_type, target)
VALUES ('forever', 2, '30 minutes', 'responder', 'Ghost');
SELECT step, level, due_at, responder, reason, state FROM incident_escalation_schedule(:'p4', 3);
DELETE FROM incident_escalation_level WHERE policy = 'forever' AND level = 2;
-- and the sweep agrees with the view on repeating, exhausted and switched policies
SELECT count(*) AS due_rows,
       count(*) FILTER (WHERE v.due_at IS DISTINCT FROM d.due_at OR v.code IS NULL OR d.code IS NULL) AS disagreeing
  FROM (SELECT * FROM incident_escalations WHERE level IS NOT NULL) v
  FULL JOIN incident__escalations_due() d USING (code);
SELECT incident_resolve(:'p3'), incident_resolve(:'p4');

------------------------------------------------------------------------------
-- Bad input: clear errors, nothing written
------------------------------------------------------------------------------

CREATE TEMP TABLE written AS
SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM incident_responder t) AS responders,
       (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM incident_rotation t) AS rotations,
       (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM incident_rotation_member t) AS members,
       (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM incident_rotation_override t) AS overrides,
       (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM incident_team_role t) AS roles,
       (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM incident_escalation_policy t) AS policies,
       (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM incident_escalation_level t) AS levels,
       (SELECT count(*) FROM incident_event) AS events;

-- unknown rotation, no members, null arguments
SELECT * FROM incident_oncall('nope');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM incident_oncall(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM incident_oncall('on-call', NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation (name, starts_at) VALUES ('empty', '2026-01-01 00:00+00');
SELECT * FROM incident_oncall('empty');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM incident_oncall_schedule('empty', '2026-01-01', '2026-02-01');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM incident_oncall_schedule('on-call', '2026-02-01', '2026-01-01');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM incident_oncall_schedule('solo', '2026-01-01', '2046-01-01');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM incident_rotation WHERE name = 'empty';

-- rotations: time zone, shift, first handoff
INSERT INTO incident_rotation (name, starts_at, time_zone) VALUES ('mars', '2026-01-01', 'Mars/Olympus_Mons');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation (name, starts_at, time_zone) VALUES ('nozone', '2026-01-01', NULL);
\echo :LAST_ERROR_SQLSTATE
UPDATE incident_rotation SET time_zone = 'Europe/Berlinn' WHERE name = 'on-call';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation (name, shift, starts_at) VALUES ('zero', '0', '2026-01-01');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation (name, shift, starts_at) VALUES ('negative', '-1 day', '2026-01-01');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation (name, shift, starts_at) VALUES ('mixed', '1 day -1 hour', '2026-01-01');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation (name, shift, starts_at) VALUES ('noshift', NULL, '2026-01-01');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation (name, starts_at) VALUES ('nostart', NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation (name, starts_at) VALUES ('   ', '2026-01-01');
\echo :LAST_ERROR_SQLSTATE

-- responders
INSERT INTO incident_responder (name, email) VALUES ('Bad Mail', 'not-an-address');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_responder (name) VALUES (NULL);
\echo :LAST_ERROR_SQLSTATE

-- members
INSERT INTO incident_rotation_member (rotation, position, responder) VALUES ('on-call', 30, 'Nobody Known');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation_member (rotation, position, responder, backup) VALUES ('on-call', 30, 'Lina Saleh', 'Ghost');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation_member (rotation, position, responder) VALUES ('nope', 1, 'Lina Saleh');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation_member (rotation, position, responder) VALUES ('on-call', 0, 'Lina Saleh');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation_member (rotation, position, responder) VALUES ('on-call', 30, 'John Doe');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation_member (rotation, position, responder, backup) VALUES ('on-call', 30, 'Lina Saleh', 'Lina Saleh');
\echo :LAST_ERROR_SQLSTATE

-- overrides
INSERT INTO incident_rotation_override (rotation, slot, responder, starts_at, ends_at)
VALUES ('on-call', 'primary', 'Ghost', '2026-04-01', '2026-04-02');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation_override (rotation, slot, responder, starts_at, ends_at)
VALUES ('on-call', 'tertiary', 'Lina Saleh', '2026-04-01', '2026-04-02');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation_override (rotation, slot, responder, starts_at, ends_at)
VALUES ('on-call', 'primary', 'Lina Saleh', '2026-04-02', '2026-04-01');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation_override (rotation, slot, responder, starts_at, ends_at)
VALUES ('on-call', 'primary', 'Lina Saleh', NULL, '2026-04-01');
\echo :LAST_ERROR_SQLSTATE
-- overlapping the override of Sarah (18:00 Tuesday to 09:00 Wednesday, Riyadh)
INSERT INTO incident_rotation_override (rotation, slot, responder, starts_at, ends_at)
VALUES ('on-call', 'primary', 'Lina Saleh', '2026-03-04 08:00 Asia/Riyadh', '2026-03-04 12:00 Asia/Riyadh');
\echo :LAST_ERROR_SQLSTATE
-- also when both are inserted by one statement
INSERT INTO incident_rotation_override (rotation, slot, responder, starts_at, ends_at)
VALUES ('on-call', 'backup', 'Lina Saleh', '2026-05-01', '2026-05-03'),
       ('on-call', 'backup', 'Omar Haddad', '2026-05-02', '2026-05-04');
\echo :LAST_ERROR_SQLSTATE
UPDATE incident_rotation_override SET ends_at = '2026-03-04 10:00 Asia/Riyadh' WHERE responder = 'Sarah Johnson';
\echo :LAST_ERROR_SQLSTATE

-- roles
UPDATE incident_team_role SET backup_responder = 'Ghost' WHERE role = 'technical_lead';
\echo :LAST_ERROR_SQLSTATE

-- escalation policies and levels
INSERT INTO incident_escalation_level (policy, level, delay, target_type, target)
VALUES ('twice', 3, '-5 minutes', 'responder', 'Lina Saleh');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_escalation_level (policy, level, delay, target_type, target)
VALUES ('twice', 3, NULL, 'responder', 'Lina Saleh');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_escalation_level (policy, level, delay, target_type, target)
VALUES ('twice', 3, '2 hours', 'pager', 'Lina Saleh');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_escalation_level (policy, level, delay, target_type, target)
VALUES ('twice', 3, '2 hours', 'role_primary', 'ceo');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_escalation_level (policy, level, delay, target_type, target)
VALUES ('nope', 1, '0', 'responder', 'Lina Saleh');
\echo :LAST_ERROR_SQLSTATE
-- delays may not decrease from level to level
INSERT INTO incident_escalation_level (policy, level, delay, target_type, target)
VALUES ('twice', 3, '45 minutes', 'responder', 'John Doe');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_escalation_policy (name, repeat_every) VALUES ('backwards', '-10 minutes');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_escalation_policy (name, repeat_limit) VALUES ('limit-only', 2);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM incident_escalation_schedule('INC-2026-0309-001', 0);
\echo :LAST_ERROR_SQLSTATE

-- nothing was written by any of them
SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM incident_responder t) = w.responders AS responders,
       (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM incident_rotation t) = w.rotations AS rotations,
       (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM incident_rotation_member t) = w.members AS members,
       (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM incident_rotation_override t) = w.overrides AS overrides,
       (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM incident_team_role t) = w.roles AS roles,
       (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM incident_escalation_policy t) = w.policies AS policies,
       (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM incident_escalation_level t) = w.levels AS levels,
       (SELECT count(*) FROM incident_event) = w.events AS events
  FROM written w;

-- one UPDATE may move every delay of a policy at once
UPDATE incident_escalation_level SET delay = CASE level WHEN 1 THEN interval '2 hours' ELSE interval '3 hours' END
 WHERE policy = 'twice';
SELECT level, delay FROM incident_escalation_level WHERE policy = 'twice' ORDER BY level;

------------------------------------------------------------------------------
-- Who may do what
------------------------------------------------------------------------------

SELECT f, has_function_privilege('incident_viewer', f, 'EXECUTE') AS viewer,
       has_function_privilege('incident_responder', f, 'EXECUTE') AS responder,
       has_function_privilege('public', f, 'EXECUTE') AS public
  FROM unnest(ARRAY['incident_oncall(text,timestamptz)', 'incident_oncall_schedule(text,timestamptz,timestamptz)',
                    'incident_escalation_schedule(text,int)', 'incident_escalate(text)']::regprocedure[]) AS f;
SELECT t, has_table_privilege('incident_viewer', t, 'SELECT') AS viewer_select,
       has_table_privilege('incident_responder', t, 'INSERT') AS responder_insert,
       has_table_privilege('incident_admin', t, 'INSERT') AS admin_insert
  FROM unnest(ARRAY['incident_responder', 'incident_rotation', 'incident_rotation_member',
                    'incident_rotation_override', 'incident_team_role', 'incident_escalation_policy',
                    'incident_escalation_level', 'incident_escalations']::regclass[]) AS t;

RESET pg_incident.clock;
