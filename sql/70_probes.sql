-- Probes: what a result means. incident__probe_record() is driven here with
-- results as the worker would write them, on the test clock, so that every
-- rule shows: hysteresis, one incident per probe, one event per change of
-- the failure, storms of one component joining one incident, recovery and
-- resolution, a person's resolve winning, maintenance windows, flapping
-- flagged once; the errors of writing probes; and incident_probe_run(), which
-- runs one check now in this session (SQL read-only as run_as under its
-- timeout, HTTP through an engine of its own).
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET TimeZone = 'UTC';
DROP EXTENSION IF EXISTS pg_incident;
CREATE EXTENSION pg_incident;
SET pg_incident.timezone = 'UTC';
SET pg_incident.clock = '2026-03-02 09:00:00+00';
-- the built-in database probes are sql/90_health.sql's
DELETE FROM incident_probe WHERE health_check IS NOT NULL;

-- check(probe, seconds after 09:00, result): one check at that time
-- (the test clock follows, as the worker's real clock would)
CREATE FUNCTION pg_temp.check(probe text, s int, result jsonb) RETURNS text
LANGUAGE sql AS $$
    SELECT set_config('pg_incident.clock', ('2026-03-02 09:00:00+00'::timestamptz + s * interval '1 second')::text, false);
    SELECT incident__probe_record((SELECT id FROM incident_probe WHERE name = probe),
                                  result || jsonb_build_object('at', '2026-03-02 09:00:00+00'::timestamptz + s * interval '1 second'))
$$;
CREATE VIEW pg_temp.events AS
SELECT code, kind, actor, message, details ->> 'change' AS change, details ->> 'failure' AS failure
  FROM incident_timeline WHERE kind IN ('declared', 'probe', 'resolved') ORDER BY event_id;

SELECT incident_probe_http('website', 'https://shop.example/', every => '10 seconds', component => 'shop',
                           resolve_on_recovery => true) AS website_id;
SELECT incident_probe_http('api', 'https://shop.example/api/health', every => '10 seconds', component => 'shop',
                           failures => 2, severity => 'P2');
SELECT name, kind, every, failures, recoveries, severity, component, method, expect_status, degraded_after
  FROM incident_probe ORDER BY id;
SELECT name, state, next_run_at FROM incident_probe_status;

-- up, then two failures: still up (3 are needed), no incident
SELECT pg_temp.check('website', 0, '{"ok": true, "status": 200, "latency_ms": 120}');
SELECT pg_temp.check('website', 10, '{"ok": false, "failure": "status", "status": 500, "latency_ms": 80}');
SELECT pg_temp.check('website', 20, '{"ok": false, "failure": "status", "status": 500, "latency_ms": 80}');
SELECT count(*) AS incidents FROM incident;
-- the third: down, one incident, its impact start the first failing check
SELECT pg_temp.check('website', 30, '{"ok": false, "failure": "status", "status": 500, "latency_ms": 80}');
SELECT code, severity, status, title, source, component, started_at, declared_at FROM incident;
-- more of the same failure: no new incident, no new event
SELECT pg_temp.check('website', 40, '{"ok": false, "failure": "status", "status": 500}');
SELECT pg_temp.check('website', 50, '{"ok": false, "failure": "status", "status": 503}');
-- the failure changes: one event
SELECT pg_temp.check('website', 60, '{"ok": false, "failure": "timeout", "latency_ms": 10000, "error": "Operation timed out after 10000 milliseconds"}');
SELECT pg_temp.check('website', 70, '{"ok": false, "failure": "timeout", "latency_ms": 10000}');
-- another probe of the same component joins the incident: the title says how many
SELECT pg_temp.check('api', 60, '{"ok": false, "failure": "connect", "error": "Connection refused"}');
SELECT pg_temp.check('api', 70, '{"ok": false, "failure": "connect", "error": "Connection refused"}');
SELECT count(*) AS incidents, min(title) AS title FROM incident;
SELECT * FROM pg_temp.events;
-- recovery needs two passing checks; the incident resolves when no probe of it is down
SELECT pg_temp.check('website', 80, '{"ok": true, "status": 200, "latency_ms": 90}');
SELECT pg_temp.check('website', 90, '{"ok": true, "status": 200, "latency_ms": 90}');
SELECT status FROM incident;
SELECT pg_temp.check('api', 80, '{"ok": true, "status": 200, "latency_ms": 40}');
SELECT pg_temp.check('api', 90, '{"ok": true, "status": 200, "latency_ms": 40}');
SELECT status FROM incident;
SELECT * FROM pg_temp.events;
SELECT name, state, since, consecutive_successes, incident, uptime_pct_24h, p50_ms_24h FROM incident_probe_status;
-- healthy checks are counted, not kept row by row
SELECT p.name, count(r.*) AS kept, (SELECT sum(checks) FROM incident_probe_rollup u WHERE u.probe_id = p.id) AS counted
  FROM incident_probe p LEFT JOIN incident_probe_result r ON r.probe_id = p.id GROUP BY p.id, p.name ORDER BY p.name;

-- passing checks the worker counted in memory and wrote as one batch
-- (incident__probe_record_passes) leave what one check at a time leaves
SELECT incident_probe_http('one-by-one', 'https://shop.example/a') IS NOT NULL AS created,
       incident_probe_http('batched', 'https://shop.example/b') IS NOT NULL AS created;
SELECT pg_temp.check('one-by-one', 100, '{"ok": true, "status": 200, "latency_ms": 20}');
SELECT pg_temp.check('batched', 100, '{"ok": true, "status": 200, "latency_ms": 20}');
SELECT pg_temp.check('one-by-one', 101, '{"ok": true, "status": 200, "latency_ms": 0.5}');
SELECT pg_temp.check('one-by-one', 102, '{"ok": true, "status": 200, "latency_ms": 90}');
SELECT pg_temp.check('one-by-one', 103, '{"ok": true, "status": 200, "latency_ms": 1500}');
-- (in two parts of one hour, as when the probe was disabled and enabled again
-- between them: they add up)
SELECT incident__probe_record_passes(ARRAY[(SELECT id FROM incident_probe WHERE name = 'batched'),
                                           (SELECT id FROM incident_probe WHERE name = 'batched')],
           ARRAY['2026-03-02 09:01:41+00', '2026-03-02 09:01:43+00']::timestamptz[],
           ARRAY['2026-03-02 09:01:42+00', '2026-03-02 09:01:43+00']::timestamptz[],
           ARRAY[2, 1], ARRAY[90.5, 1500]::float8[], ARRAY[90, 1500]::float8[],
           ARRAY[1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0,
                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
           ARRAY[NULL, '2026-03-02 09:02:13+00']::timestamptz[]) AS states_updated;
SELECT p.name, u.hour, u.checks, u.passed, u.latency_ms_sum, u.latency_ms_max, u.latency_buckets,
       s.state, s.consecutive_successes, (SELECT count(*) FROM incident_probe_result r WHERE r.probe_id = p.id) AS kept
  FROM incident_probe p JOIN incident_probe_rollup u ON u.probe_id = p.id JOIN incident_probe_state s ON s.probe_id = p.id
 WHERE p.name IN ('one-by-one', 'batched') ORDER BY p.name;
SELECT next_run_at FROM incident_probe_status WHERE name = 'batched';
-- a probe that went down meanwhile gets the counts, not the run of successes
SELECT pg_temp.check('batched', 104, '{"ok": false, "failure": "connect"}');
SELECT incident__probe_record_passes(ARRAY[(SELECT id FROM incident_probe WHERE name = 'batched')],
           ARRAY['2026-03-02 09:01:44+00'::timestamptz], ARRAY['2026-03-02 09:01:44+00'::timestamptz],
           ARRAY[1], ARRAY[10::float8], ARRAY[10::float8], array_fill(0, ARRAY[16]), ARRAY[NULL::timestamptz]) AS states_updated;
SELECT u.checks, u.passed, s.consecutive_failures, s.consecutive_successes
  FROM incident_probe p JOIN incident_probe_rollup u ON u.probe_id = p.id JOIN incident_probe_state s ON s.probe_id = p.id
 WHERE p.name = 'batched';
-- one element per probe in each array, 16 buckets per probe, at least one check
SELECT incident__probe_record_passes(ARRAY[1::bigint], ARRAY[now()], ARRAY[now()], ARRAY[1], ARRAY[1::float8],
                                     ARRAY[1::float8], ARRAY[1, 2, 3], ARRAY[NULL::timestamptz]);
SELECT incident__probe_record_passes(ARRAY[1, 2]::bigint[], ARRAY[now()], ARRAY[now()], ARRAY[1], ARRAY[1::float8],
                                     ARRAY[1::float8], array_fill(0, ARRAY[16]), ARRAY[NULL::timestamptz]);
SELECT incident__probe_record_passes(ARRAY[1::bigint], ARRAY[now()], ARRAY[now()], ARRAY[0], ARRAY[1::float8],
                                     ARRAY[1::float8], array_fill(0, ARRAY[16]), ARRAY[NULL::timestamptz]);
SELECT incident_probe_drop('one-by-one'), incident_probe_drop('batched');

-- a slow page is degraded, and with severity auto a slow outage is classified by its load time
SELECT incident_probe_http('search', 'https://shop.example/search', failures => 1, degraded_after => '3 seconds');
SELECT pg_temp.check('search', 100, '{"ok": true, "status": 200, "latency_ms": 4200}');
SELECT pg_temp.check('search', 110, '{"ok": false, "failure": "timeout", "latency_ms": 12000}');
SELECT code, severity, title FROM incident WHERE title LIKE 'search%';

-- a person's resolve wins: the probe does not reopen it; a new failure run is a new incident
SELECT incident_resolve((SELECT code FROM incident WHERE title LIKE 'search%'), 'index rebuilt');
SELECT pg_temp.check('search', 120, '{"ok": false, "failure": "timeout", "latency_ms": 12000}');
SELECT count(*) AS search_incidents FROM incident WHERE title LIKE 'search%';
SELECT pg_temp.check('search', 130, '{"ok": true, "status": 200, "latency_ms": 100}');
SELECT pg_temp.check('search', 140, '{"ok": true, "status": 200, "latency_ms": 100}');
SELECT pg_temp.check('search', 150, '{"ok": false, "failure": "dns", "error": "Could not resolve host"}');
SELECT count(*) AS search_incidents, max(severity) FILTER (WHERE status = 'declared') AS new_severity
  FROM incident WHERE title LIKE 'search%';

-- a maintenance window: results recorded, no incident
INSERT INTO incident_maintenance (component, starts_at, ends_at, reason)
VALUES ('billing', '2026-03-02 09:00+00', '2026-03-02 10:00+00', 'database upgrade');
SELECT incident_probe_http('invoices', 'https://billing.example/', failures => 1, component => 'billing');
SELECT pg_temp.check('invoices', 200, '{"ok": false, "failure": "connect"}');
SELECT pg_temp.check('invoices', 210, '{"ok": false, "failure": "connect"}');
SELECT count(*) AS billing_incidents FROM incident WHERE component = 'billing';
SELECT state, consecutive_failures FROM incident_probe_status WHERE name = 'invoices';
SELECT count(*) AS kept_results FROM incident_probe_result r JOIN incident_probe p ON p.id = r.probe_id WHERE p.name = 'invoices';
-- still down when the window ends: it alerts then
SELECT pg_temp.check('invoices', 3610, '{"ok": false, "failure": "connect"}');
SELECT title, started_at FROM incident WHERE component = 'billing';

-- flapping: up and down and up again is flagged once, not on every flip
SELECT incident_probe_http('cdn', 'https://cdn.example/', failures => 1, recoveries => 1);
SELECT pg_temp.check('cdn', 300 + 10 * n, CASE WHEN n % 2 = 0 THEN '{"ok": true, "status": 200, "latency_ms": 10}'::jsonb
                                               ELSE '{"ok": false, "failure": "connect"}'::jsonb END) AS state
  FROM generate_series(0, 13) AS n;
SELECT count(*) AS cdn_incidents FROM incident WHERE title LIKE 'cdn%';
SELECT message FROM incident_timeline WHERE kind = 'probe' AND message LIKE 'cdn%' ORDER BY event_id;

-- writing probes: clear errors
SELECT incident_probe_http('files', 'file:///etc/passwd');
SELECT incident_probe_http('ftp', 'ftp://example.com/');
SELECT incident_probe_http('loop', 'https://example.com/', every => '0 seconds');
SELECT incident_probe_http('hdr', 'https://example.com/', headers => ARRAY[E'X-A: 1\r\nX-B: 2']);
SELECT incident_probe_http('hdr', 'https://example.com/', headers => ARRAY[E'X-A: 1\nX-B: 2']);
SELECT incident_probe_http('codes', 'https://example.com/', expect_status => '{200,700}');
SELECT incident_probe_http('regex', 'https://example.com/', expect_body_regex => '"status": *(ok');
SELECT incident_probe_http('sev', 'https://example.com/', severity => 'P7');
SELECT incident_probe_http('nourl', NULL);
SELECT incident_probe_http('nourl', '  ');
-- credentials in a URL would be read by viewers: refused, and not quoted
SELECT incident_probe_http('cred', 'https://monitor:s3cret@example.com/health');
SELECT incident_probe_http('cred', 'https://token@example.com/');
SELECT incident_probe_http('port', 'https://example.com:99999/');
SELECT incident_probe_http('port', 'https://example.com:0/');
SELECT incident_probe_http('port', 'http://[::1]:8080/health') > 0 AS ipv6_with_port;
SELECT incident_probe_http('port', 'http://[::1]/health') > 0 AS ipv6_without_port;
SELECT incident_probe_drop('port');
SELECT incident_probe_http('head', 'https://example.com/', method => 'HEAD', expect_body => 'ok');
SELECT incident_probe_http('head', 'https://example.com/', method => 'PUT');
SELECT incident_probe_http('head', 'https://example.com/', degraded_after => '-1 second');
-- nothing of those was written
SELECT count(*) AS written FROM incident_probe WHERE name IN ('nourl', 'cred', 'head');
SELECT incident_probe_sql('conns', 'SELECT count(*) FROM pg_stat_activity');
SELECT incident_probe_sql('conns', 'SELECT count(*) FROM pg_stat_activity', run_as => 'nobody_here');
SELECT incident_probe_sql('conns', 'SELECT count(*) FROM pg_stat_activity', run_as => current_user);
CREATE ROLE regress_probe_runner IN ROLE pg_monitor;
SELECT incident_probe_sql('conns', 'SELECT count(*) FROM pg_stat_activity', warn => 80, crit => 95,
                          run_as => 'regress_probe_runner', component => 'database') > 0 AS created;
SELECT name, kind, query, warn, crit, run_as FROM incident_probe WHERE kind = 'sql';
-- replacing keeps the id
SELECT incident_probe_http('cdn', 'https://cdn2.example/', failures => 2) = (SELECT id FROM incident_probe WHERE name = 'cdn') AS same_id;
SELECT url, failures FROM incident_probe WHERE name = 'cdn';
SELECT incident_probe_drop('cdn');
SELECT incident_probe_drop('cdn');
SELECT count(*) AS incidents_kept FROM incident WHERE title LIKE 'cdn%';

-- incident_probe_run: one check now, in this session, without the worker
SELECT incident_probe_sql('lag', 'SELECT 42', warn => 10, crit => 40, run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, state, failure, value, error FROM incident_probe_run('lag');
-- lower is worse when crit < warn
SELECT incident_probe_sql('replicas', 'SELECT count(*) FROM pg_stat_replication', warn => 1.5, crit => 0.5,
                          run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, failure, value, error FROM incident_probe_run('replicas');
SELECT incident_probe_sql('replicas', 'SELECT 1', warn => 1.5, crit => 0.5, run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, failure, value, error FROM incident_probe_run('replicas');
-- what a query cannot do: write, take too long, return no number
SELECT incident_probe_sql('writes', 'CREATE TABLE regress_probe_scratch (a int)', run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, failure, error FROM incident_probe_run('writes');
SELECT incident_probe_sql('writes', 'SELECT nextval(''incident_probe_id_seq'')', run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, failure, error FROM incident_probe_run('writes');
SELECT incident_probe_sql('writes', 'SELECT count(*) FROM incident', run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, failure, error FROM incident_probe_run('writes');
SELECT incident_probe_sql('sleepy', 'SELECT pg_sleep(10) IS NULL', timeout => '200 ms', run_as => 'regress_probe_runner') > 0 AS created;
SET statement_timeout = '1min';
SELECT ok, failure, error, latency_ms BETWEEN 150 AND 5000 AS about_the_timeout FROM incident_probe_run('sleepy');
SHOW statement_timeout;
-- the caller's own, shorter statement timeout still ends the call
SELECT incident_probe_sql('sleepy', 'SELECT pg_sleep(10) IS NULL', timeout => '5 min', run_as => 'regress_probe_runner') > 0 AS created;
SET statement_timeout = '300ms';
SELECT ok FROM incident_probe_run('sleepy');
RESET statement_timeout;
SELECT incident_probe_sql('odd', 'SELECT ''abc''::text', run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, failure, error FROM incident_probe_run('odd');
SELECT incident_probe_sql('odd', 'SELECT NULL::int', run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, failure, error FROM incident_probe_run('odd');
SELECT incident_probe_sql('odd', 'SELECT 1 WHERE false', run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, failure, error FROM incident_probe_run('odd');
SELECT incident_probe_sql('odd', 'SELECT pg_is_in_recovery()', run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, failure, value, error FROM incident_probe_run('odd');
-- an error message that may quote data is recorded by its SQLSTATE only;
-- the admin running the probe sees the message
SELECT incident_probe_sql('odd', 'SELECT ''p4ssw0rd''::int', run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, failure, error, result ->> 'error' AS recorded FROM incident_probe_run('odd', record => true);
SELECT last_error FROM incident_probe_status WHERE name = 'odd';
SELECT count(*) AS leaks FROM incident_probe_result WHERE error LIKE '%p4ssw0rd%';
SELECT incident_probe_sql('odd', 'SELECT count(*) FROM no_such_table', run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, failure, error, result ->> 'error' AS recorded FROM incident_probe_run('odd');
-- the query runs as run_as, restricted: no SET ROLE, search_path pinned
SELECT incident_probe_sql('who', 'SELECT (current_user = ''regress_probe_runner'' AND current_setting(''search_path'') = ''pg_catalog, public, pg_temp'')::int', run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, value FROM incident_probe_run('who');
-- the caller's temporary view does not stand in for the catalog the query reads
CREATE TEMP VIEW pg_database AS SELECT 'hijacked'::name AS datname;
GRANT SELECT ON pg_temp.pg_database TO PUBLIC;
SELECT incident_probe_sql('temp', 'SELECT count(*) FROM pg_database WHERE datname = ''hijacked''', run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, value FROM incident_probe_run('temp');
DROP VIEW pg_temp.pg_database;
SELECT incident_probe_drop('temp');
SELECT incident_probe_sql('who', 'SELECT set_config(''role'', ''postgres'', true) IS NOT NULL', run_as => 'regress_probe_runner') > 0 AS created;
SELECT ok, failure, error FROM incident_probe_run('who');
SELECT current_user AS back_to;
-- record => true goes through incident__probe_record; a dropped run_as role is unknown, not down
CREATE ROLE regress_probe_gone;
SELECT incident_probe_sql('gone', 'SELECT true', failures => 1, run_as => 'regress_probe_gone') > 0 AS created;
SELECT ok, state FROM incident_probe_run('gone', record => true);
DROP ROLE regress_probe_gone;
SELECT ok, state, failure, error FROM incident_probe_run('gone', record => true);
SELECT state, last_failure FROM incident_probe_status WHERE name = 'gone';
SELECT count(*) AS incidents FROM incident WHERE title LIKE 'gone%';
-- an HTTP probe against a closed port
SELECT incident_probe_http('closed', 'http://127.0.0.1:1/', timeout => '2 seconds') > 0 AS created;
SELECT ok, failure, status, timings ? 'connect' AS has_timings FROM incident_probe_run('closed');
SELECT incident_probe_run('no such probe');
-- who may do what: an admin must be a member of run_as; a viewer reads no headers and runs nothing
CREATE ROLE regress_probe_admin IN ROLE incident_admin;
CREATE ROLE regress_probe_viewer IN ROLE incident_viewer;
SET ROLE regress_probe_admin;
SELECT incident_probe_sql('mine', 'SELECT 1', run_as => 'regress_probe_runner');
SELECT ok FROM incident_probe_run('lag');
SET ROLE regress_probe_viewer;
SELECT name, url, run_as FROM incident_probe WHERE name = 'closed';
SELECT headers FROM incident_probe;
SELECT ok FROM incident_probe_run('lag');
RESET ROLE;
DROP ROLE regress_probe_admin, regress_probe_viewer;

DROP VIEW pg_temp.events;
DROP FUNCTION pg_temp.check(text, int, jsonb);
DROP EXTENSION pg_incident;
DROP ROLE regress_probe_runner;
