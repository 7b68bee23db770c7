-- Health (extension/82_health.sql): incident_health and its thresholds, the
-- views one session can set up (sizes, sequences, wraparound, vacuum
-- recency, connections, a prepared transaction holding the xmin horizon),
-- the change log with its redaction and the note on a new incident, and
-- incident_top_queries without pg_stat_statements. Sessions that block,
-- sit idle in transaction or hold locks are test/t/032_health.pl.
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET TimeZone = 'UTC';
DROP EXTENSION IF EXISTS pg_incident;
CREATE EXTENSION pg_incident;
CREATE ROLE regress_h_viewer IN ROLE incident_viewer;
CREATE ROLE regress_h_admin IN ROLE incident_admin;

-- the checks, seeded from common practice
SELECT check_name, warning, critical, unit, enabled, is_default FROM incident_health_threshold ORDER BY check_name;

-- with nothing going on, every check runs and is ok
SELECT check_name, status, unit, value IS NOT NULL AS measured FROM incident_health ORDER BY check_name;
SELECT detail FROM incident_health WHERE check_name IN ('idle_in_transaction', 'lock_blocked', 'prepared_transaction', 'replication_lag', 'slot_retained_wal') ORDER BY check_name;

-- thresholds are checked as they are written
SET ROLE regress_h_admin;
UPDATE incident_health_threshold SET warning = 95 WHERE check_name = 'connections';
UPDATE incident_health_threshold SET critical = -1 WHERE check_name = 'lock_wait';
UPDATE incident_health_threshold SET unit = 'furlongs' WHERE check_name = 'lock_wait';
INSERT INTO incident_health_threshold (check_name, warning, critical, unit, description) VALUES ('disk_full', 80, 90, 'percent', 'disk');
UPDATE incident_health_threshold SET warning = NULL WHERE check_name = 'lock_wait';
-- an edit takes effect at once and is kept by pg_dump (is_default cleared)
UPDATE incident_health_threshold SET warning = 0 WHERE check_name = 'connections';
SELECT status, value > 0 AS counted, detail ~ '^[0-9]+ of [0-9]+ connections in use \([0-9]+ active, 0 idle in transaction\)$' AS detail_ok,
       evidence -> 0 ->> 'user' = session_user AS evidence_names_role
  FROM incident_health WHERE check_name = 'connections';
SELECT is_default FROM incident_health_threshold WHERE check_name = 'connections';
UPDATE incident_health_threshold SET enabled = false WHERE check_name = 'replication_lag';
RESET ROLE;
SELECT count(*) AS replication_lag_rows FROM incident_health WHERE check_name = 'replication_lag';
SELECT incident_health_level('connections') AS connections, incident_health_level('replication_lag') AS disabled_still_runs,
       incident_health_level('lock_blocked') AS lock_blocked;
SELECT incident_health_level('disk_full');
SELECT incident_health_level(NULL);

-- connections: against max_connections less the reserved slots
SELECT DISTINCT total_connections >= 1 AS counted,
       connection_limit = current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int AS limit_ok,
       total_pct = round(100.0 * total_connections / connection_limit, 1) AS pct_ok
  FROM incident_connections;

-- sequences: a bigint sequence filling an integer column ends at 2^31 - 1
CREATE TABLE h_orders (id int);
CREATE SEQUENCE h_orders_seq OWNED BY h_orders.id;
SELECT setval('h_orders_seq', 2000000000) IS NOT NULL AS set;
CREATE SEQUENCE h_down INCREMENT -1 MINVALUE -100 MAXVALUE -1 START -1;
SELECT nextval('h_down') + nextval('h_down') AS sum;
CREATE SEQUENCE h_unused;
-- not OWNED BY, only in a column's DEFAULT: the column still bounds it
CREATE SEQUENCE h_default_seq;
CREATE TABLE h_defaulted (n smallint DEFAULT nextval('h_default_seq'), m bigint DEFAULT nextval('h_default_seq'));
SELECT sequence_name, data_type, owned_by, column_type, last_value, increment_by, limit_value, remaining, used_pct
  FROM incident_sequences WHERE sequence_name LIKE 'h\_%' ORDER BY sequence_name;
SELECT status, value, detail FROM incident_health WHERE check_name = 'sequence_usage';
-- a viewer without rights on a sequence sees no figures and takes no lock;
-- incident_health still judges it
SET ROLE regress_h_viewer;
BEGIN;
SELECT last_value, used_pct FROM incident_sequences WHERE sequence_name = 'h_orders_seq';
SELECT incident__sequence_last_value('h_orders_seq'::regclass) AS direct;
SELECT count(*) AS locks_taken FROM pg_locks WHERE relation = 'h_orders_seq'::regclass AND pid = pg_backend_pid();
SELECT status FROM incident_health WHERE check_name = 'sequence_usage';
COMMIT;
RESET ROLE;

-- sizes: as pg_total_relation_size, and a partitioned table counts every partition
CREATE TABLE h_big (id int PRIMARY KEY, t text);
INSERT INTO h_big SELECT g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 100) i) FROM generate_series(1, 200) g;
CREATE INDEX ON h_big (left(t, 50));
CREATE TABLE "H Part" (k int, v text) PARTITION BY RANGE (k);
CREATE TABLE h_part_1 PARTITION OF "H Part" FOR VALUES FROM (0) TO (100);
CREATE TABLE h_part_2 PARTITION OF "H Part" FOR VALUES FROM (100) TO (200) PARTITION BY RANGE (k);
CREATE TABLE h_part_2a PARTITION OF h_part_2 FOR VALUES FROM (100) TO (150);
CREATE TABLE h_part_2b PARTITION OF h_part_2 FOR VALUES FROM (150) TO (200);
INSERT INTO "H Part" SELECT g, repeat('x', 100) FROM generate_series(0, 199) g;
CREATE INDEX ON "H Part" (k);
SELECT relid, kind, partition_of, partitions,
       table_bytes = pg_relation_size(relid) + pg_relation_size(relid, 'fsm') + pg_relation_size(relid, 'vm') AS heap_ok,
       toast_bytes > 0 AS has_toast, index_bytes = pg_indexes_size(relid) AS index_ok,
       total_bytes = pg_total_relation_size(relid) AS total_ok, total_size = pg_size_pretty(total_bytes) AS pretty_ok
  FROM incident_table_sizes WHERE relid IN ('h_big'::regclass, 'h_part_1'::regclass, 'h_part_2a'::regclass) ORDER BY relid::text;
SELECT relid, kind, partition_of, partitions,
       total_bytes = (SELECT sum(pg_total_relation_size(c)) FROM (VALUES ('h_part_1'::regclass), ('h_part_2a'), ('h_part_2b')) v(c)
                       WHERE relid = '"H Part"'::regclass OR c::text LIKE 'h\_part\_2_') AS sums_leaves,
       estimated_rows IS NULL OR estimated_rows >= 0 AS rows_ok
  FROM incident_table_sizes WHERE relid IN ('"H Part"'::regclass, 'h_part_2'::regclass) ORDER BY relid::text;

-- wraparound: every database, and every table of this one
SELECT level, count(*) > 0 AS rows, bool_and(xid_age >= 0 AND xid_wraparound_pct = round(100.0 * xid_age / 2147483648, 2)) AS pct_ok,
       bool_and(NOT forced_vacuum_due) AS none_due
  FROM incident_wraparound GROUP BY level ORDER BY level;
SELECT count(*) = (SELECT count(*) FROM pg_database) AS every_database FROM incident_wraparound WHERE level = 'database';
CREATE TABLE h_frozen (a int) WITH (autovacuum_freeze_max_age = 100000);
SELECT xid_freeze_max_age, mxid_freeze_max_age = current_setting('autovacuum_multixact_freeze_max_age')::bigint AS server_mxid
  FROM incident_wraparound WHERE relid = 'h_frozen'::regclass;

-- a prepared transaction holds the xmin horizon
BEGIN;
INSERT INTO h_orders VALUES (1);
PREPARE TRANSACTION 'h-deploy';
SELECT kind, name, xmin_age >= 0 AS aged, action FROM incident_xmin_horizon WHERE kind = 'prepared transaction';
UPDATE incident_health_threshold SET warning = 0 WHERE check_name = 'prepared_transaction';
SELECT status, detail ~ '^prepared transaction h-deploy \(' AS names_it, evidence -> 0 ->> 'gid' AS gid
  FROM incident_health WHERE check_name = 'prepared_transaction';
ROLLBACK PREPARED 'h-deploy';
SELECT count(*) AS after_rollback FROM incident_xmin_horizon WHERE kind = 'prepared transaction';

-- vacuum recency: the table's own storage parameters decide its thresholds
CREATE TABLE h_vac (a int) WITH (autovacuum_vacuum_threshold = 10, autovacuum_vacuum_scale_factor = 0,
                                 autovacuum_analyze_threshold = 7, autovacuum_enabled = false);
SELECT vacuum_threshold, analyze_threshold, autovacuum_enabled, last_vacuum IS NULL AS never_vacuumed, vacuum_running
  FROM incident_vacuum_recency WHERE relid = 'h_vac'::regclass;
SELECT count(*) AS catalogs_listed FROM incident_vacuum_recency WHERE schema_name IN ('pg_catalog', 'information_schema');

-- the change log: DDL, drops and privileges, as who
CREATE TABLE h_gone (a int);
CREATE VIEW h_gone_v AS SELECT a FROM h_gone;
DROP TABLE h_gone CASCADE;
GRANT SELECT ON h_big TO regress_h_viewer;
SELECT kind, command, object_type, object, role_name = current_user AS by_me, session_role = session_user AS login
  FROM incident_recent_changes WHERE object LIKE 'public.h\_gone%' OR command = 'GRANT' ORDER BY at, command, object;
SELECT statement FROM incident_change WHERE command_tag = 'GRANT' ORDER BY id DESC LIMIT 1;
-- role changes (pg_incident is preloaded here): rebuilt from the parse
-- tree, so no password survives however the client wrote it
ALTER ROLE regress_h_viewer PASSWORD 'secret' VALID UNTIL 'infinity';
ALTER ROLE regress_h_viewer PASSWORD $q$pw1 don't$q$ /* it's 'pw2' */;
ALTER ROLE "regress_h_viewer" PASSWORD E'pw3\' x';
GRANT SELECT ON h_big TO "regress_h_viewer" /* pw4 ' */; ALTER ROLE regress_h_viewer PASSWORD 'pw5';
ALTER ROLE regress_h_viewer SET work_mem = '8MB';
ALTER ROLE regress_h_viewer SET h.api_key = 'pw6';
SELECT kind, command_tag, object_identity, statement FROM incident_change
 WHERE kind IN ('role', 'privilege') AND command_tag <> 'GRANT' OR statement ~ 'regress_h_viewer' ORDER BY id;
SELECT count(*) AS leaked FROM incident_change WHERE statement ~ 'pw[0-9]|secret';
-- nobody rewrites it or writes it by hand
UPDATE incident_change SET role_name = 'someone_else';
SET ROLE regress_h_admin;
INSERT INTO incident_change (kind, command_tag, role_name, session_role) VALUES ('ddl', 'DROP TABLE', 'x', 'x');
SELECT incident__record_change('ddl', 'DROP TABLE', NULL, NULL, NULL, NULL);
RESET ROLE;
SET ROLE regress_h_viewer;
SELECT count(*) > 0 AS viewer_reads FROM incident_recent_changes;
RESET ROLE;
-- temporary objects are not changes of the database
CREATE TEMP TABLE h_scratch (a int);
DROP TABLE h_scratch;
SELECT count(*) AS temp_rows FROM incident_change WHERE object_identity LIKE '%h_scratch%';

-- a new incident's timeline notes what changed in the hours before
SELECT incident_declare('P3', 'reports are slow') AS code \gset
SELECT kind, actor, message ~ '^[0-9]+ change\(s\) in the 6 hour\(s\) before the declaration; the latest: ' AS message_ok,
       details ->> 'hours' AS hours, (details ->> 'count')::int > 5 AS counted,
       jsonb_array_length(details -> 'recent_changes') <= 20 AS capped
  FROM incident_event e JOIN incident i ON i.id = e.incident_id WHERE i.code = :'code' ORDER BY e.id;
SET ROLE regress_h_viewer;
SET pg_incident.recent_changes_hours = 0;
RESET ROLE;
SET pg_incident.recent_changes_hours = 0;
SELECT incident_declare('P3', 'reports are slow again') AS code \gset
SELECT count(*) AS events FROM incident_event e JOIN incident i ON i.id = e.incident_id WHERE i.code = :'code';
RESET pg_incident.recent_changes_hours;

-- the built-in database probes: one per check, seeded, editable in place
SELECT id, name, every, failures, severity, component, query, warn, crit, run_as, enabled, is_default
  FROM incident_probe WHERE health_check IS NOT NULL ORDER BY id DESC;
SELECT count(*) AS scheduled FROM incident_probe_status WHERE name LIKE 'db-%' AND state = 'unknown';
SET ROLE regress_h_admin;
UPDATE incident_probe SET enabled = false, failures = 5 WHERE name = 'db-long-query';
UPDATE incident_probe SET query = 'SELECT 1' WHERE name = 'db-connections';
RESET ROLE;
SET ROLE regress_h_viewer;
UPDATE incident_probe SET enabled = false WHERE name = 'db-connections';
RESET ROLE;
SELECT name, enabled, failures, is_default FROM incident_probe WHERE name IN ('db-long-query', 'db-connections') ORDER BY name;
-- a critical check declares an incident of the probe's severity, with the check's account as evidence
SELECT ok, state, failure, value FROM incident_probe_run('db-sequence-usage', record => true);
SELECT i.severity, i.title, i.source, i.component, e.details -> 'health' ->> 'check' AS check_name,
       e.details -> 'health' ->> 'status' AS status, e.details -> 'health' ->> 'detail' AS detail,
       e.details -> 'health' -> 'evidence' -> 0 ->> 'sequence' AS worst
  FROM incident i JOIN incident_event e ON e.incident_id = i.id AND e.kind = 'probe'
 WHERE i.source = 'probe';
SELECT ok, state FROM incident_probe_run('db-prepared-transaction', record => true);
-- dropping one is remembered, so that a restore does not bring it back
SELECT incident_probe_drop('db-vacuum-overdue');
SELECT table_name, key FROM incident_deleted_default WHERE table_name = 'incident_probe';

-- incident_top_queries needs pg_stat_statements
SELECT * FROM incident_top_queries();
SELECT * FROM incident_top_queries('slowest');
SELECT * FROM incident_top_queries(top => 0);
SELECT * FROM incident_top_queries(NULL);

DROP EXTENSION pg_incident;
DROP TABLE h_orders, h_big, "H Part", h_frozen, h_vac;
DROP TABLE h_defaulted;
DROP SEQUENCE h_down, h_unused, h_default_seq;
DROP ROLE regress_h_viewer, regress_h_admin;
