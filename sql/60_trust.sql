-- Trust: no extension function depends on the caller's search_path, errors
-- quote a bounded prefix of what was given, admin input that would break
-- other features is refused when it is written, and the smaller bad inputs.
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET TimeZone = 'UTC';
DROP EXTENSION IF EXISTS pg_incident;
CREATE EXTENSION pg_incident;
SET pg_incident.timezone = 'UTC';
SET pg_incident.clock = '2026-03-02 09:00:00+00';

------------------------------------------------------------------------------
-- An attacker's operators ahead of pg_catalog
------------------------------------------------------------------------------

-- Every binary operator of pg_catalog on the types pg_incident uses gets a
-- twin in schema evil that records its use and then does the real thing.
CREATE SCHEMA evil;
CREATE TABLE evil.hits (op text);
DO $$
DECLARE
    o record;
    n int := 0;
BEGIN
    FOR o IN SELECT p.oprname, p.oprleft::regtype AS l, p.oprright::regtype AS r, p.oprresult::regtype AS res
               FROM pg_operator p
              WHERE p.oprnamespace = 'pg_catalog'::regnamespace AND p.oprkind = 'b'
                AND p.oprleft IN ('text'::regtype, 'int4'::regtype, 'int8'::regtype, 'bool'::regtype,
                                  'timestamptz'::regtype, 'interval'::regtype, 'jsonb'::regtype, 'date'::regtype,
                                  'time'::regtype, 'numeric'::regtype, 'float8'::regtype, 'name'::regtype)
                AND p.oprright IN ('text'::regtype, 'int4'::regtype, 'int8'::regtype, 'bool'::regtype,
                                   'timestamptz'::regtype, 'interval'::regtype, 'jsonb'::regtype, 'date'::regtype,
                                   'time'::regtype, 'numeric'::regtype, 'float8'::regtype, 'name'::regtype, 'text[]'::regtype)
    LOOP
        n := n + 1;
        EXECUTE format('CREATE FUNCTION evil.op_%s(a %s, b %s) RETURNS %s LANGUAGE sql AS %L',
                       n, o.l, o.r, o.res,
                       format('INSERT INTO evil.hits VALUES (%L); SELECT a OPERATOR(pg_catalog.%s) b',
                              format('%s %s %s', o.l, o.oprname, o.r), o.oprname));
        EXECUTE format('CREATE OPERATOR evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = evil.op_%s)',
                       o.oprname, o.l, o.r, n);
    END LOOP;
    RAISE NOTICE 'planted % operators', CASE WHEN n > 200 THEN 'over 200' ELSE n::text END;
END
$$;
SELECT count(*) > 0 AS planted_equals FROM pg_operator WHERE oprnamespace = 'evil'::regnamespace AND oprname = '=';

-- the twins are used when evil comes first: the test can see a hijack
SET search_path = evil, public, pg_catalog;
SELECT 'a'::text = 'a'::text AS hijacked_here;
RESET search_path;
SELECT count(*) AS hits_from_the_probe FROM evil.hits;
TRUNCATE evil.hits;

-- now every function, view and configuration write of pg_incident with evil
-- first (the statements here use no bare operator themselves)
SET search_path = evil, public, pg_catalog;
INSERT INTO incident_calendar (name, time_zone) VALUES ('office', 'Europe/Berlin');
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends)
VALUES ('office', 1, '09:00', '17:00'), ('office', 2, '09:00', '17:00');
INSERT INTO incident_calendar_holiday (calendar, day, name) VALUES ('office', '2026-03-03', 'a day off');
INSERT INTO incident_classify_rule (name, priority, pattern, severity, category)
VALUES ('newsletter', 205, '\mnewsletter\M', 'P4', 'functionality');
INSERT INTO incident_responder (name, email) VALUES ('erin', 'erin@example.com'), ('frank', NULL);
INSERT INTO incident_rotation (name, starts_at, time_zone) VALUES ('on-call', '2026-03-02 09:00+00', 'UTC');
INSERT INTO incident_rotation_member (rotation, position, responder) VALUES ('on-call', 1, 'erin'), ('on-call', 2, 'frank');
INSERT INTO incident_rotation_override (rotation, responder, starts_at, ends_at)
VALUES ('on-call', 'frank', '2026-03-10 00:00+00', '2026-03-11 00:00+00');
UPDATE incident_team_role SET primary_responder = 'erin' WHERE role OPERATOR(pg_catalog.=) 'incident_commander';
UPDATE incident_escalation_level SET delay = '5 minutes' WHERE policy OPERATOR(pg_catalog.=) 'page-on-call' AND level OPERATOR(pg_catalog.=) 3;
UPDATE incident_severity SET response_time = '2 hours' WHERE severity OPERATOR(pg_catalog.=) 'P3';
SELECT incident_classify('the newsletter has a typo'), incident_classify('{"page_load_s": 12}'::jsonb);
SELECT count(*) OPERATOR(pg_catalog.>) 0 AS explained FROM incident_classify_explain('database down');
SELECT count(*) OPERATOR(pg_catalog.>) 0 AS explained FROM incident_classify_explain('{"users_affected_pct": 40}'::jsonb);
SELECT incident_severity_normalize('high'), incident_timezone_valid('UTC'), incident_timezone(),
       incident_now(), incident_invoker() IS NOT NULL AS invoker;
SELECT incident_clock_state('2026-03-02 10:00+00', '1 hour'),
       incident_clock_state('2026-03-02 10:00+00', '1 hour', '2026-03-02 09:30+00');
SELECT incident_calendar_add('office', '2026-03-02 15:00+00', '4 hours'),
       incident_calendar_working_time('office', '2026-03-02 00:00+00', '2026-03-09 00:00+00'),
       incident_sla_deadline('P3', '2026-03-02 15:00+00'),
       incident_sla_deadline('P3', '2026-03-02 15:00+00', 'office');
SELECT * FROM incident_oncall('on-call', '2026-03-10 12:00+00');
SELECT count(*) AS shifts FROM incident_oncall_schedule('on-call', '2026-03-02 00:00+00', '2026-03-16 00:00+00');
SELECT incident_declare('P1', 'Payment API down') AS code \gset
SELECT incident_declare('auto', 'database is down') AS auto_code \gset
SELECT count(*) AS steps FROM incident_escalation_schedule(:'code');
SELECT incident_escalate(:'code');
SELECT incident_acknowledge(:'code', 'erin');
SELECT incident_update(:'code', 'investigating', 'looking at the gateway');
SELECT incident_set_severity(:'code', 'P2', 'only one gateway is down');
SELECT incident_assign(:'code', 'technical_lead', 'frank');
SELECT incident_note(:'code', 'gateway vendor paged');
SELECT incident_checklist_tick(:'code', 'initial_assessment', 1);
SELECT count(*) AS items FROM incident_checklist(:'code');
SELECT count(*) FROM incident_dashboard;
SELECT count(*) FROM incident_timeline;
SELECT count(*) FROM incident_checklist_items;
SELECT count(*) FROM incident_escalations;
SELECT count(*) FROM incident_sla;
SELECT count(*) FROM incident_sla_compliance;
SELECT incident_resolve(:'code', 'gateway certificate expired');
SELECT incident_close(:'code');
DELETE FROM incident_classify_rule WHERE name OPERATOR(pg_catalog.=) 'newsletter';
DELETE FROM incident_rotation_override;
RESET search_path;
SELECT count(*) AS hijacked_calls, array_agg(DISTINCT op ORDER BY op) AS operators FROM evil.hits;
DROP SCHEMA evil CASCADE;

------------------------------------------------------------------------------
-- Errors quote a bounded prefix of the bad value
------------------------------------------------------------------------------

DO $$
BEGIN
    PERFORM incident_acknowledge('INC-' || repeat('9', 1000000));
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'error of % characters: %', length(SQLERRM), left(SQLERRM, 40);
END
$$;
DO $$
BEGIN
    PERFORM incident_declare(repeat('P', 100000), 'Checkout errors');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'error of % characters', length(SQLERRM);
END
$$;
SELECT incident_declare('P3', 'x', NULL, NULL) IS NOT NULL AS short_ok;
SELECT incident_acknowledge(repeat('a', 70));

-- roles below the superuser get the same errors, not a permission error
CREATE ROLE regress_trust_viewer IN ROLE incident_viewer;
CREATE ROLE regress_trust_admin2 IN ROLE incident_admin;
SET ROLE regress_trust_viewer;
SELECT incident_severity_normalize('P9');
SELECT incident_checklist('INC-bad');
SELECT * FROM incident_oncall('nowhere');
SET ROLE regress_trust_admin2;
INSERT INTO incident_classify_rule (name, priority, pattern, severity, category) VALUES ('Bad Name', 1, 'x', 'P1', 'outage');
INSERT INTO incident_classify_rule (name, priority, pattern, severity, category) VALUES ('bad_severity', 1, 'x', 'P9', 'outage');
RESET ROLE;
DROP ROLE regress_trust_viewer;
DROP ROLE regress_trust_admin2;

------------------------------------------------------------------------------
-- Admin input that would break other features later is refused now
------------------------------------------------------------------------------

UPDATE incident_severity SET response_time = '178000000 years' WHERE severity = 'P4';
\echo :LAST_ERROR_SQLSTATE
UPDATE incident_severity SET pir_due = '-1 day' WHERE severity = 'P4';
UPDATE incident_severity SET name = 'auto' WHERE severity = 'P4';
UPDATE incident_severity SET name = 'P1' WHERE severity = 'P4';
UPDATE incident_severity SET name = ' Minor ' WHERE severity = 'P4';
SELECT severity, name FROM incident_severity WHERE severity = 'P4';
SELECT incident_declare('minor', 'still declarable') IS NOT NULL AS declared_by_new_name;
UPDATE incident_rotation SET shift = '178000000 years' WHERE name = 'on-call';
UPDATE incident_escalation_level SET delay = '178000000 years' WHERE policy = 'page-on-call' AND level = 3;
UPDATE incident_escalation_policy SET repeat_every = '1000 years' WHERE name = 'page-on-call';
INSERT INTO incident_classify_rule (name, priority, pattern, severity, category)
VALUES ('everything', 1, '', 'P1', 'outage');
\echo :LAST_ERROR_SQLSTATE
-- created_by records who wrote an override; only a superuser (a restore) writes another name
CREATE ROLE regress_trust_admin IN ROLE incident_admin;
SET ROLE regress_trust_admin;
INSERT INTO incident_rotation_override (rotation, responder, starts_at, ends_at, created_by)
VALUES ('on-call', 'frank', '2026-04-01 00:00+00', '2026-04-02 00:00+00', 'erin');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_rotation_override (rotation, responder, starts_at, ends_at)
VALUES ('on-call', 'frank', '2026-04-01 00:00+00', '2026-04-02 00:00+00');
UPDATE incident_rotation_override SET created_by = 'erin';
SELECT responder, created_by FROM incident_rotation_override;
RESET ROLE;
INSERT INTO incident_rotation_override (rotation, responder, starts_at, ends_at, created_by)
VALUES ('on-call', 'erin', '2026-05-01 00:00+00', '2026-05-02 00:00+00', 'restored_admin');
SELECT responder, created_by FROM incident_rotation_override ORDER BY starts_at;
DELETE FROM incident_rotation_override;
DROP ROLE regress_trust_admin;

------------------------------------------------------------------------------
-- Smaller bad inputs
------------------------------------------------------------------------------

SELECT incident_declare('P3', E'\u200B');
SELECT incident_declare('P3', E' \u200B\u00A0\uFEFF ');
SELECT incident_declare('P3', E'Checkout errors\nsince the deploy');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_declare('P3', 'Old impact', NULL, '4713-01-01 00:00+00 BC');
SELECT incident_declare('P3', 'Old impact', NULL, '2024-01-01 00:00+00');
SELECT incident_clock_state('2026-03-02 10:00+00', NULL);
SELECT incident_clock_state('2026-03-02 10:00+00', '-1 hour');
SELECT incident_clock_state(NULL, '1 hour') IS NULL AS no_clock;
SELECT * FROM incident_oncall('on-call', 'infinity');
SELECT * FROM incident_oncall('on-call', '-infinity');
SELECT count(*) FROM incident_escalation_schedule(:'auto_code', 2147483647);
SELECT count(*) FROM incident_escalation_schedule(:'auto_code', 1000);

DROP EXTENSION pg_incident;
