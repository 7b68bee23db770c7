/* extension/60_worker.sql: what the background worker is doing.
 *
 * The worker (src/worker/, only while pg_incident is in
 * shared_preload_libraries) keeps its status in shared memory;
 * incident__worker_state() reads it, and incident_worker_status adds what
 * the probes' tables say about its work: probes due now, checks in flight,
 * failing checks of the last hour.
 */

CREATE FUNCTION @extschema@.incident__worker_state(OUT pid int, OUT started_at timestamptz, OUT state text,
                                                   OUT database text, OUT last_activity text,
                                                   OUT last_activity_at timestamptz, OUT loops bigint,
                                                   OUT errors bigint, OUT last_error text,
                                                   OUT last_error_at timestamptz, OUT process text,
                                                   OUT checks_claimed bigint, OUT lateness_p50_ms double precision,
                                                   OUT lateness_p99_ms double precision,
                                                   OUT lateness_buckets bigint[], OUT checks_done bigint,
                                                   OUT probes_due int, OUT checks_in_flight int)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'incident__worker_state'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION @extschema@.incident__worker_state() IS
'Internal: the background worker''s status from shared memory, one row per database worker (process worker for HTTP probes, sql worker for SQL probes): the worker''s while it runs, else the launcher''s, else stopped; no row when the library is not preloaded. checks_claimed and the lateness (how long after its next_run_at each check was claimed: bucket upper edges 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000 ms and beyond) count since that worker started, and so does checks_done (checks whose result came back). probes_due and checks_in_flight are the HTTP worker''s own, from its schedule in memory (published every second), NULL for a process that keeps none.';

CREATE VIEW @extschema@.incident_worker_status AS
SELECT w.process,
       w.pid,
       w.started_at,
       w.state,
       w.database,
       w.last_activity,
       w.last_activity_at,
       w.loops,
       w.errors,
       w.last_error,
       w.last_error_at,
       w.checks_claimed,
       w.lateness_p50_ms,
       w.lateness_p99_ms,
       coalesce(w.probes_due,
                (SELECT pg_catalog.count(*) FROM @extschema@.incident_probe_state s
                   JOIN @extschema@.incident_probe p ON p.id = s.probe_id
                  WHERE p.enabled AND p.kind = k.kind AND s.claimed_at IS NULL
                    AND s.next_run_at <= pg_catalog.clock_timestamp())) AS probes_due,
       coalesce(w.checks_in_flight,
                (SELECT pg_catalog.count(*) FROM @extschema@.incident_probe_state s
                   JOIN @extschema@.incident_probe p ON p.id = s.probe_id
                  WHERE p.kind = k.kind AND s.claimed_at IS NOT NULL)) AS checks_in_flight,
       w.checks_done,
       (SELECT pg_catalog.count(*) FROM @extschema@.incident_probe_result r
          JOIN @extschema@.incident_probe p ON p.id = r.probe_id
         WHERE p.kind = k.kind AND NOT r.ok
           AND r.at > pg_catalog.clock_timestamp() - interval '1 hour') AS failed_checks_1h
  FROM @extschema@.incident__worker_state() AS w,
       LATERAL (SELECT CASE w.process WHEN 'sql worker' THEN 'sql' ELSE 'http' END AS kind) AS k;

COMMENT ON VIEW @extschema@.incident_worker_status IS
'The background worker, one row per database worker (process worker runs the HTTP probes, sql worker the SQL probes): its pid, state (waiting for the database or the extension, idle, disabled, idle on a standby, stopped), what it did last and when, its turns and errors, and from the probe tables the probes of its kind due now, their checks in flight and their failed checks of the last hour. Empty when pg_incident is not preloaded.';
COMMENT ON COLUMN @extschema@.incident_worker_status.process IS 'worker (the HTTP probes, the notifications, the escalations and reminders) or sql worker (the SQL probes, one at a time).';
COMMENT ON COLUMN @extschema@.incident_worker_status.probes_due IS 'Enabled probes of this process''s kind whose next check is due and not yet claimed (for the HTTP worker, from its schedule in memory, at most a second old): a growing number means the worker is not keeping up, or not running.';
COMMENT ON COLUMN @extschema@.incident_worker_status.checks_done IS 'Checks whose result this worker process has recorded or counted since it started.';
COMMENT ON COLUMN @extschema@.incident_worker_status.checks_claimed IS 'Checks this worker process has claimed since it started.';
COMMENT ON COLUMN @extschema@.incident_worker_status.lateness_p50_ms IS 'Median lateness of those checks (claimed after they were due), as the upper edge of its histogram bucket (1, 2, 5, 10, 20, 50, 100 ... ms); a high value means the worker does not keep up.';
COMMENT ON COLUMN @extschema@.incident_worker_status.lateness_p99_ms IS '99th percentile of the lateness, likewise.';
COMMENT ON COLUMN @extschema@.incident_worker_status.checks_in_flight IS 'Checks of this process''s kind claimed and not yet recorded (for the HTTP worker, its requests in flight).';

GRANT SELECT ON @extschema@.incident_worker_status TO incident_viewer;
-- the view reads the worker's status through it
GRANT EXECUTE ON FUNCTION @extschema@.incident__worker_state() TO incident_viewer;
