-- Upgrades: install the oldest version, put data in, and walk the update
-- path step by step, checking the objects at each step. (The other files use
-- a fresh CREATE EXTENSION of the default version.)
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET TimeZone = 'UTC';

CREATE EXTENSION pg_incident VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'pg_incident';

CREATE TEMP TABLE objects_at AS
SELECT '0.1.0'::text AS version, pg_describe_object(classid, objid, objsubid) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_incident');
SELECT count(*) AS objects_in_0_1_0 FROM objects_at;

-- data written by 0.1.0
SET pg_incident.timezone = 'UTC';
SET pg_incident.clock = '2026-01-10 09:00:00+00';
SELECT incident_declare('P2', 'Declared before the upgrade') AS before_code \gset
SELECT incident_acknowledge(:'before_code', 'jane');
-- a severity edited under 0.1.0
UPDATE incident_severity SET response_time = '10 minutes' WHERE severity = 'P1';

ALTER EXTENSION pg_incident UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'pg_incident';

INSERT INTO objects_at
SELECT '0.2.0', pg_describe_object(classid, objid, objsubid)
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_incident');

-- what 0.2.0 adds, and that it removes nothing
SELECT object AS added_in_0_2_0 FROM objects_at WHERE version = '0.2.0'
EXCEPT SELECT object FROM objects_at WHERE version = '0.1.0' ORDER BY 1;
SELECT object AS removed_in_0_2_0 FROM objects_at WHERE version = '0.1.0'
EXCEPT SELECT object FROM objects_at WHERE version = '0.2.0' ORDER BY 1;

-- the incident of 0.1.0 lives on, and takes the new event kinds
SELECT code, status, acknowledged_by FROM incident WHERE code = :'before_code';
SELECT count(*) AS events FROM incident_timeline WHERE code = :'before_code';
SELECT incident_resolve(:'before_code', 'fixed after the upgrade');
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'incident_event_kind_check';
-- P1 and P2 escalate with the seeded policy, the edited P1 too; the seeded
-- rows stay pristine, so pg_dump still leaves them out
SELECT severity, response_time, escalation_policy, is_default FROM incident_severity ORDER BY severity;

-- 0.2.0 to 0.3.0, the version in the making; test/t/006_upgrade.pl compares
-- the result with a fresh install, member by member
SELECT incident_declare('P3', 'Declared under 0.2.0') AS between_code \gset
ALTER EXTENSION pg_incident UPDATE TO '0.3.0';
SELECT extversion FROM pg_extension WHERE extname = 'pg_incident';

INSERT INTO objects_at
SELECT '0.3.0', pg_describe_object(classid, objid, objsubid)
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_incident');

SELECT object AS added_in_0_3_0 FROM objects_at WHERE version = '0.3.0'
EXCEPT SELECT object FROM objects_at WHERE version = '0.2.0' ORDER BY 1;
SELECT object AS removed_in_0_3_0 FROM objects_at WHERE version = '0.2.0'
EXCEPT SELECT object FROM objects_at WHERE version = '0.3.0' ORDER BY 1;

-- the incidents of 0.1.0 and 0.2.0 live on
SELECT code, status FROM incident ORDER BY id;
SELECT incident_acknowledge(:'between_code', 'jane');

DROP EXTENSION pg_incident;
SELECT count(*) AS tables_left FROM pg_class WHERE relname LIKE 'incident%' AND relkind IN ('r', 'v');
