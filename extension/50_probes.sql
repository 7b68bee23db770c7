/* extension/50_probes.sql: probes that watch services and the database.
 *
 * A probe is a row of incident_probe: an HTTP check of a URL or a SQL check
 * of a number, run every so often by the background worker (src/worker/).
 * Each result goes through incident__probe_record(), the one place that
 * decides what a result means: it keeps every failure and every change of
 * state (successes are rolled up per hour), moves the probe between up,
 * degraded, down and flapping with hysteresis, and, past a probe's
 * threshold, declares an incident through incident_declare() (or joins the
 * open incident of the probe or of its component), adds an event when the
 * failure changes, and records the recovery, resolving the incident where
 * the probe says so. Maintenance windows silence alerts, not records.
 * Nothing here depends on the worker running: the tests drive
 * incident__probe_record() with the test clock.
 */

------------------------------------------------------------------------------
-- Probes
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_probe (
    id                  bigserial PRIMARY KEY,
    name                text NOT NULL UNIQUE
                        CONSTRAINT incident_probe_name_check
                        CHECK (name = pg_catalog.btrim(name) AND name <> '' AND pg_catalog.length(name) <= 100),
    kind                text NOT NULL CHECK (kind IN ('http', 'sql')),
    every               interval NOT NULL DEFAULT '30 seconds'
                        CONSTRAINT incident_probe_every_check
                        CHECK (every >= interval '1 second' AND every <= interval '1 day'),
    timeout             interval NOT NULL DEFAULT '10 seconds'
                        CONSTRAINT incident_probe_timeout_check
                        CHECK (timeout >= interval '100 milliseconds' AND timeout <= interval '5 minutes'),
    failures            int NOT NULL DEFAULT 3
                        CONSTRAINT incident_probe_failures_check CHECK (failures BETWEEN 1 AND 100),
    recoveries          int NOT NULL DEFAULT 2
                        CONSTRAINT incident_probe_recoveries_check CHECK (recoveries BETWEEN 1 AND 100),
    severity            text NOT NULL DEFAULT 'auto'
                        CONSTRAINT incident_probe_severity_check CHECK (severity IN ('auto', 'P1', 'P2', 'P3', 'P4')),
    component           text CONSTRAINT incident_probe_component_check
                        CHECK (component = pg_catalog.btrim(component) AND component <> '' AND pg_catalog.length(component) <= 100),
    enabled             boolean NOT NULL DEFAULT true,
    resolve_on_recovery boolean NOT NULL DEFAULT false,
    -- http
    url                 text CONSTRAINT incident_probe_url_check CHECK (url ~* '^https?://[^/?#@\s]+([/?#]|$)'),
    method              text NOT NULL DEFAULT 'GET'
                        CONSTRAINT incident_probe_method_check CHECK (method IN ('GET', 'HEAD', 'POST')),
    headers             text[] NOT NULL DEFAULT '{}'
                        CONSTRAINT incident_probe_headers_check
                        CHECK (pg_catalog.array_position(headers, NULL) IS NULL
                               AND pg_catalog.array_to_string(headers, '') !~ '[\r\n]'),
    body                text,
    expect_status       int[] CONSTRAINT incident_probe_expect_status_check
                        CHECK (100 <= ALL (expect_status) AND 599 >= ALL (expect_status) AND expect_status <> '{}'),
    expect_body         text,
    expect_body_regex   text,
    degraded_after      interval NOT NULL DEFAULT '3 seconds'
                        CONSTRAINT incident_probe_degraded_after_check CHECK (degraded_after > interval '0'),
    verify_tls          boolean NOT NULL DEFAULT true,
    -- sql
    query               text,
    warn                numeric,
    crit                numeric,
    run_as              name,
    created_by          text NOT NULL DEFAULT current_user,
    CONSTRAINT incident_probe_target_check
        CHECK ((kind = 'http') = (url IS NOT NULL AND query IS NULL AND run_as IS NULL)
               AND (kind = 'sql') = (query IS NOT NULL AND run_as IS NOT NULL AND url IS NULL)),
    CONSTRAINT incident_probe_thresholds_check
        CHECK (warn IS NULL OR crit IS NULL OR warn <> crit)
);

COMMENT ON TABLE @extschema@.incident_probe IS
'Probes the background worker runs: an HTTP check of a URL (kind http) or a SQL check of a number or boolean (kind sql), every so often, with the hysteresis (failures, recoveries) and the severity of the incident it declares. Written by incident_probe_http(), incident_probe_sql() and incident_probe_drop(); readable by incident_viewer except headers and body, which may hold credentials (incident_admin reads all).';
COMMENT ON COLUMN @extschema@.incident_probe.every IS 'How often the probe runs (1 second to 1 day).';
COMMENT ON COLUMN @extschema@.incident_probe.timeout IS 'How long one check may take before it counts as a timeout.';
COMMENT ON COLUMN @extschema@.incident_probe.failures IS 'Consecutive failing checks before the probe is down and alerts.';
COMMENT ON COLUMN @extschema@.incident_probe.recoveries IS 'Consecutive passing checks before a down probe is up again.';
COMMENT ON COLUMN @extschema@.incident_probe.severity IS 'Severity of the incident the probe declares, or auto: classified from the failure (a slow page by its load time, anything else P1 for a whole service).';
COMMENT ON COLUMN @extschema@.incident_probe.component IS 'What the probe watches, such as website or checkout: probes of one component failing together open one incident, and maintenance windows are per component.';
COMMENT ON COLUMN @extschema@.incident_probe.resolve_on_recovery IS 'Whether recovery resolves the incident the probe declared or joined, once no probe of that incident is still down.';
COMMENT ON COLUMN @extschema@.incident_probe.expect_status IS 'HTTP status codes that pass; NULL: 200 to 399.';
COMMENT ON COLUMN @extschema@.incident_probe.expect_body IS 'A text the response body must contain; NULL: any body.';
COMMENT ON COLUMN @extschema@.incident_probe.expect_body_regex IS 'A regular expression (as for ~, case-sensitive unless it starts with (?i)) the response body must match; NULL: any body.';
COMMENT ON COLUMN @extschema@.incident_probe.degraded_after IS 'A passing HTTP check slower than this makes the probe degraded (the playbook: 3-5 s load times are P3, over 10 s P2).';
COMMENT ON COLUMN @extschema@.incident_probe.query IS 'SQL probe: a query returning one number or boolean, run read-only as run_as with statement_timeout = timeout.';
COMMENT ON COLUMN @extschema@.incident_probe.warn IS 'SQL probe: the value from which the probe is degraded (above it when crit is above warn, below it otherwise).';
COMMENT ON COLUMN @extschema@.incident_probe.crit IS 'SQL probe: the value from which the check fails; a boolean result fails when false.';
COMMENT ON COLUMN @extschema@.incident_probe.run_as IS 'SQL probe: the role the query runs as; never a superuser.';

CREATE TABLE @extschema@.incident_probe_state (
    probe_id            bigint PRIMARY KEY REFERENCES @extschema@.incident_probe ON DELETE CASCADE,
    state               text NOT NULL DEFAULT 'unknown'
                        CHECK (state IN ('unknown', 'up', 'degraded', 'down', 'flapping')),
    since               timestamptz NOT NULL,
    next_run_at         timestamptz NOT NULL,
    claimed_at          timestamptz,
    consecutive_failures int NOT NULL DEFAULT 0,
    consecutive_successes int NOT NULL DEFAULT 0,
    first_failure_at    timestamptz,
    last_result_id      bigint,
    last_failure        text,
    incident_id         bigint REFERENCES @extschema@.incident,
    last_ok             boolean,
    flips               timestamptz[] NOT NULL DEFAULT '{}',
    alerted             boolean NOT NULL DEFAULT false
);

-- the worker claims and looks for the next due check in next_run_at order
CREATE INDEX incident_probe_state_next_run_idx ON @extschema@.incident_probe_state (next_run_at);

COMMENT ON TABLE @extschema@.incident_probe_state IS
'Where each probe stands, written by incident__probe_record(): its state, since when, its run of failures or successes, when it runs next (claimed_at while a SQL probe''s check is in flight), and the open incident it declared or joined. For a steady HTTP probe (up, no failure, no flip in 30 minutes) the worker counts passing checks in memory and writes consecutive_successes and next_run_at with them, at most pg_incident.probe_flush_interval late.';
COMMENT ON COLUMN @extschema@.incident_probe_state.claimed_at IS 'Set while the SQL worker has a check of the SQL probe in flight; a check claimed long ago (a crashed worker) counts as not done. The HTTP worker keeps its claims in memory.';
COMMENT ON COLUMN @extschema@.incident_probe_state.flips IS 'Times of the checks of the last 30 minutes whose outcome (pass or fail) differed from the check before: 6 or more make the probe flapping, and 30 minutes without one end it.';
COMMENT ON COLUMN @extschema@.incident_probe_state.alerted IS 'Whether the probe has alerted (declared or joined an incident) in its current run of failures: a run that began in a maintenance window alerts once the window ends, and a run whose incident a person resolved does not alert again.';
COMMENT ON COLUMN @extschema@.incident_probe_state.first_failure_at IS 'Time of the first failing check of the current run of failures: the impact start of the incident it declares.';

-- Probes of one component decide about their shared incident one at a
-- time, under a lock on the component's row here: a row lock only the
-- extension's own functions can take (an advisory lock on a key anyone can
-- compute, any login could take and hold, stopping the worker).
CREATE TABLE @extschema@.incident_probe_component_lock (
    component           text PRIMARY KEY
);

COMMENT ON TABLE @extschema@.incident_probe_component_lock IS
'Internal: one row per component that HTTP or SQL probes have named, locked by incident__probe_record() so that probes of one component decide about their shared incident one at a time.';

CREATE TABLE @extschema@.incident_probe_result (
    id              bigserial PRIMARY KEY,
    probe_id        bigint NOT NULL REFERENCES @extschema@.incident_probe ON DELETE CASCADE,
    at              timestamptz NOT NULL,
    ok              boolean NOT NULL,
    failure         text CHECK (failure IN ('dns', 'connect', 'tls', 'timeout', 'status', 'body', 'too_large',
                                            'protocol', 'redirects', 'other', 'sql_error', 'threshold', 'slow',
                                            'config')),
    status          int,
    value           numeric,
    latency_ms      double precision,
    timings         jsonb NOT NULL DEFAULT '{}',
    error           text,
    state           text NOT NULL,
    state_changed   boolean NOT NULL DEFAULT false
);

CREATE INDEX incident_probe_result_probe_idx ON @extschema@.incident_probe_result (probe_id, at);

COMMENT ON TABLE @extschema@.incident_probe_result IS
'Checks worth keeping: every failing or slow check and every check that changed the probe''s state, with what failed (failure), the HTTP status or SQL value, the latency and libcurl''s phase timings. Passing checks that change nothing are counted in incident_probe_rollup instead.';
COMMENT ON COLUMN @extschema@.incident_probe_result.failure IS 'What failed: dns, connect, tls, timeout, status, body, too_large, protocol, redirects or other for HTTP; sql_error, timeout or threshold (past crit, or past warn on a passing check) for SQL; slow for a passing HTTP check over degraded_after; config for a check that could not run (its run_as role is gone or a superuser), which leaves the probe unknown; NULL when it passed.';
COMMENT ON COLUMN @extschema@.incident_probe_result.timings IS 'Phase timings in milliseconds: dns, connect, tls, first_byte, total.';
COMMENT ON COLUMN @extschema@.incident_probe_result.state IS 'The probe''s state after this check.';

CREATE TABLE @extschema@.incident_probe_rollup (
    probe_id        bigint NOT NULL REFERENCES @extschema@.incident_probe ON DELETE CASCADE,
    hour            timestamptz NOT NULL,
    checks          int NOT NULL DEFAULT 0,
    passed          int NOT NULL DEFAULT 0,
    latency_ms_sum  double precision NOT NULL DEFAULT 0,
    latency_ms_max  double precision,
    latency_buckets int[] NOT NULL DEFAULT pg_catalog.array_fill(0, ARRAY[16]),
    PRIMARY KEY (probe_id, hour)
);

COMMENT ON TABLE @extschema@.incident_probe_rollup IS
'Every check of each probe counted per hour: checks, passed, latency sum and maximum, and a latency histogram (bucket k, 1 to 16, counts latencies below 2^(k-1) ms, the last one the rest) from which incident_probe_status reads percentiles.';

CREATE TABLE @extschema@.incident_maintenance (
    id          bigserial PRIMARY KEY,
    component   text,
    probe       text,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    reason      text,
    created_by  text NOT NULL DEFAULT current_user,
    CONSTRAINT incident_maintenance_target_check CHECK (component IS NOT NULL OR probe IS NOT NULL),
    CONSTRAINT incident_maintenance_period_check CHECK (ends_at > starts_at)
);

COMMENT ON TABLE @extschema@.incident_maintenance IS
'Maintenance windows: from starts_at until ends_at, probes of the component (or the probe named) raise no incident; their results are still recorded. Editable by incident_admin.';

COMMENT ON CONSTRAINT incident_probe_name_check ON @extschema@.incident_probe IS 'A probe''s name has 1 to 100 characters, such as "website".';
COMMENT ON CONSTRAINT incident_probe_every_check ON @extschema@.incident_probe IS 'Give an interval from ''1 second'' to ''1 day'', such as ''30 seconds''.';
COMMENT ON CONSTRAINT incident_probe_timeout_check ON @extschema@.incident_probe IS 'Give a timeout from ''100 milliseconds'' to ''5 minutes'', such as ''10 seconds''.';
COMMENT ON CONSTRAINT incident_probe_failures_check ON @extschema@.incident_probe IS 'Give the number of failing checks before an alert, from 1 to 100.';
COMMENT ON CONSTRAINT incident_probe_recoveries_check ON @extschema@.incident_probe IS 'Give the number of passing checks before recovery, from 1 to 100.';
COMMENT ON CONSTRAINT incident_probe_severity_check ON @extschema@.incident_probe IS 'Give P1, P2, P3, P4 or auto.';
COMMENT ON CONSTRAINT incident_probe_url_check ON @extschema@.incident_probe IS 'Give an http:// or https:// URL with a host and without a user name or password (pass those as a header), such as ''https://shop.example/health''.';
COMMENT ON CONSTRAINT incident_probe_method_check ON @extschema@.incident_probe IS 'Give GET, HEAD or POST.';
COMMENT ON CONSTRAINT incident_probe_degraded_after_check ON @extschema@.incident_probe IS 'Give the latency from which a passing check counts as degraded, more than 0, such as ''3 seconds''.';
COMMENT ON CONSTRAINT incident_probe_headers_check ON @extschema@.incident_probe IS 'Give headers as ''Name: value'' texts without line breaks (CR or LF), one header each.';
COMMENT ON CONSTRAINT incident_probe_expect_status_check ON @extschema@.incident_probe IS 'Give HTTP status codes from 100 to 599, such as ''{200,204}''.';
COMMENT ON CONSTRAINT incident_probe_target_check ON @extschema@.incident_probe IS 'An http probe has a url and no query; a sql probe has a query and run_as and no url.';
COMMENT ON CONSTRAINT incident_probe_thresholds_check ON @extschema@.incident_probe IS 'warn and crit must differ: the side of crit says whether high or low values are bad.';
COMMENT ON CONSTRAINT incident_maintenance_target_check ON @extschema@.incident_maintenance IS 'Name a component or a probe.';
COMMENT ON CONSTRAINT incident_maintenance_period_check ON @extschema@.incident_maintenance IS 'ends_at must be after starts_at.';

SELECT @extschema@.incident__checked_table('@extschema@.incident_probe', 'name', 'component');
SELECT @extschema@.incident__checked_table('@extschema@.incident_maintenance', 'component', 'probe');

-- the HTTP worker keeps its probes' schedule in memory: a change by anyone
-- but the worker makes it read the schedule again
CREATE FUNCTION @extschema@.incident__probe_state_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'incident__probe_state_changed'
LANGUAGE C;

COMMENT ON FUNCTION @extschema@.incident__probe_state_changed() IS
'Internal: statement trigger on incident_probe and incident_probe_state; a change made outside the worker processes makes the HTTP worker read its schedule again (at its next turn).';

CREATE TRIGGER incident_probe_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.incident_probe
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__probe_state_changed();
CREATE TRIGGER incident_probe_state_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.incident_probe_state
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__probe_state_changed();

------------------------------------------------------------------------------
-- Writing probes
------------------------------------------------------------------------------

-- incident__probe_save(row): inserts or replaces the probe of that name
-- (keeping its id and history) and schedules it to run now.
CREATE FUNCTION @extschema@.incident__probe_save(p @extschema@.incident_probe)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    saved_id bigint;
    now_ timestamptz := @extschema@.incident__act_time(NULL);
BEGIN
    p.name := @extschema@.incident__require_text(p.name, 'probe name', 100);
    p.created_by := @extschema@.incident_invoker();
    IF p.kind = 'sql' AND p.run_as IS NOT NULL THEN
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = p.run_as) THEN
            RAISE EXCEPTION 'role "%" does not exist', @extschema@.incident__quote(p.run_as)
                USING ERRCODE = 'undefined_object',
                      HINT = 'Give run_as a role that may read what the query reads, such as pg_monitor members.';
        END IF;
        IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = p.run_as)
           AND coalesce(pg_catalog.current_setting('pg_incident.sql_probe_allow_superuser', true), 'off')
               NOT IN ('on', 'true', 'yes', '1') THEN
            RAISE EXCEPTION 'cannot run SQL probe "%" as superuser "%"', p.name, p.run_as
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'A probe''s query runs unattended, every few seconds; as a superuser it could do anything.',
                      HINT = 'Create a role for probes, grant it pg_monitor or what the query reads, and give it as run_as (or, as a last resort, set pg_incident.sql_probe_allow_superuser).';
        END IF;
        -- the probe acts as run_as: only someone who may act as that role may say so
        IF NOT pg_catalog.pg_has_role(p.created_by, p.run_as, 'USAGE') THEN
            RAISE EXCEPTION 'role "%" may not run SQL probe "%" as role "%"', @extschema@.incident__quote(p.created_by),
                  p.name, @extschema@.incident__quote(p.run_as)
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'A SQL probe''s query runs with run_as''s privileges, so its author must hold them.',
                      HINT = pg_catalog.format('GRANT %I TO %I, or give a run_as role you are a member of.', p.run_as, p.created_by);
        END IF;
    END IF;
    IF p.expect_body_regex IS NOT NULL THEN
        BEGIN
            PERFORM '' COLLATE "C" ~ p.expect_body_regex;
        EXCEPTION WHEN invalid_regular_expression THEN
            RAISE EXCEPTION 'invalid expect_body_regex "%"', pg_catalog.left(p.expect_body_regex, 100)
                USING ERRCODE = 'invalid_regular_expression',
                      DETAIL = pg_catalog.format('The expression does not compile: %s.', SQLERRM),
                      HINT = 'Give a regular expression as for the ~ operator, such as ''"status": *"ok"''.';
        END;
    END IF;
    INSERT INTO @extschema@.incident_probe AS t
        (name, kind, every, timeout, failures, recoveries, severity, component, enabled, resolve_on_recovery,
         url, method, headers, body, expect_status, expect_body, expect_body_regex, degraded_after, verify_tls,
         query, warn, crit, run_as, created_by)
    VALUES (p.name, p.kind, p.every, p.timeout, p.failures, p.recoveries, p.severity, p.component, p.enabled,
            p.resolve_on_recovery, p.url, p.method, p.headers, p.body, p.expect_status, p.expect_body,
            p.expect_body_regex, p.degraded_after, p.verify_tls, p.query, p.warn, p.crit, p.run_as, p.created_by)
    ON CONFLICT (name) DO UPDATE
       SET kind = excluded.kind, every = excluded.every, timeout = excluded.timeout,
           failures = excluded.failures, recoveries = excluded.recoveries, severity = excluded.severity,
           component = excluded.component, enabled = excluded.enabled,
           resolve_on_recovery = excluded.resolve_on_recovery, url = excluded.url, method = excluded.method,
           headers = excluded.headers, body = excluded.body, expect_status = excluded.expect_status,
           expect_body = excluded.expect_body, expect_body_regex = excluded.expect_body_regex,
           degraded_after = excluded.degraded_after,
           verify_tls = excluded.verify_tls, query = excluded.query, warn = excluded.warn, crit = excluded.crit,
           run_as = excluded.run_as, created_by = excluded.created_by
    RETURNING t.id INTO saved_id;
    INSERT INTO @extschema@.incident_probe_state AS s (probe_id, since, next_run_at)
    VALUES (saved_id, now_, now_)
    ON CONFLICT (probe_id) DO UPDATE SET next_run_at = excluded.next_run_at, claimed_at = NULL;
    RETURN saved_id;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__probe_save(@extschema@.incident_probe) IS
'Internal: inserts the probe, or replaces the one of the same name keeping its id, state and history, refuses an unknown run_as, a superuser one (unless pg_incident.sql_probe_allow_superuser is on) and one the caller is not a member of, and schedules it to run now; returns its id.';

CREATE FUNCTION @extschema@.incident_probe_http(name text, url text, every interval DEFAULT '30 seconds',
                                                timeout interval DEFAULT '10 seconds', failures int DEFAULT 3,
                                                recoveries int DEFAULT 2, severity text DEFAULT 'auto',
                                                component text DEFAULT NULL, method text DEFAULT 'GET',
                                                headers text[] DEFAULT '{}', body text DEFAULT NULL,
                                                expect_status int[] DEFAULT NULL, expect_body text DEFAULT NULL,
                                                degraded_after interval DEFAULT '3 seconds',
                                                verify_tls boolean DEFAULT true,
                                                resolve_on_recovery boolean DEFAULT false,
                                                enabled boolean DEFAULT true,
                                                expect_body_regex text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p @extschema@.incident_probe;
    authority text;
    port text;
BEGIN
    -- the URL is shown to incident_viewer and written into the incidents it
    -- declares: credentials go in headers, which only incident_admin reads
    IF coalesce(pg_catalog.btrim(url), '') = '' THEN
        RAISE EXCEPTION 'the url of HTTP probe "%" is empty', @extschema@.incident__quote(name)
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give an http:// or https:// URL with a host, such as ''https://shop.example/health''.';
    END IF;
    authority := pg_catalog.substring(pg_catalog.btrim(url), '^[A-Za-z]+://([^/?#]*)');
    IF authority LIKE '%@%' THEN
        RAISE EXCEPTION 'the url of HTTP probe "%" holds a user name or password', @extschema@.incident__quote(name)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('It was given as %s.',
                               @extschema@.incident__quote(pg_catalog.regexp_replace(pg_catalog.btrim(url), '^([A-Za-z]+://)[^/?#]*@', '\1...@'))),
                  HINT = 'Incident viewers read a probe''s url, and the incidents it declares quote it: pass credentials as a header, such as headers => ARRAY[''Authorization: Basic ...''], which only incident_admin reads.';
    END IF;
    port := pg_catalog.substring(authority, '^(?:\[[^]]*\]|[^\[:]*):(.*)$');
    IF port IS NOT NULL AND (port !~ '^[0-9]{1,5}$' OR port::int NOT BETWEEN 1 AND 65535) THEN
        RAISE EXCEPTION 'invalid port "%" in the url of HTTP probe "%"', @extschema@.incident__quote(port),
                        @extschema@.incident__quote(name)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a port from 1 to 65535, such as ''https://shop.example:8443/health'', or none for the scheme''s own.';
    END IF;
    IF pg_catalog.upper(pg_catalog.btrim(method)) = 'HEAD' AND (expect_body IS NOT NULL OR expect_body_regex IS NOT NULL) THEN
        RAISE EXCEPTION 'HTTP probe "%" expects a body from a HEAD request', @extschema@.incident__quote(name)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A response to HEAD has no body, so every check would fail.',
                  HINT = 'Use method => ''GET'' to check the body, or drop expect_body and expect_body_regex.';
    END IF;
    p.name := name; p.kind := 'http'; p.url := pg_catalog.btrim(url); p.every := every; p.timeout := timeout;
    p.failures := failures; p.recoveries := recoveries;
    p.severity := CASE WHEN pg_catalog.lower(pg_catalog.btrim(severity)) = 'auto' THEN 'auto'
                       ELSE @extschema@.incident_severity_normalize(severity) END;
    p.component := component; p.method := pg_catalog.upper(pg_catalog.btrim(method)); p.headers := headers;
    p.body := body; p.expect_status := expect_status; p.expect_body := expect_body;
    p.expect_body_regex := expect_body_regex;
    p.degraded_after := degraded_after; p.verify_tls := verify_tls;
    p.resolve_on_recovery := resolve_on_recovery; p.enabled := enabled;
    RETURN @extschema@.incident__probe_save(p);
END
$$;

COMMENT ON FUNCTION @extschema@.incident_probe_http(text, text, interval, interval, int, int, text, text, text, text[], text, int[], text, interval, boolean, boolean, boolean, text) IS
'Creates or replaces the HTTP probe of this name: the worker requests url every so often (method, headers, body), and a check fails on a transport error, an unexpected status (default: 200-399), a body without expect_body or not matching expect_body_regex; a passing check slower than degraded_after makes it degraded. failures failing checks in a row declare an incident of the given severity (auto: classified from the failure); recoveries passing ones record the recovery. Returns the probe''s id.';

CREATE FUNCTION @extschema@.incident_probe_sql(name text, query text, every interval DEFAULT '30 seconds',
                                               timeout interval DEFAULT '10 seconds', failures int DEFAULT 3,
                                               recoveries int DEFAULT 2, severity text DEFAULT 'auto',
                                               component text DEFAULT NULL, warn numeric DEFAULT NULL,
                                               crit numeric DEFAULT NULL, run_as name DEFAULT NULL,
                                               resolve_on_recovery boolean DEFAULT false,
                                               enabled boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p @extschema@.incident_probe;
BEGIN
    IF run_as IS NULL THEN
        RAISE EXCEPTION 'run_as of SQL probe "%" must not be null', @extschema@.incident__quote(name)
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'A SQL probe never runs silently as the worker''s superuser.',
                  HINT = 'Give the role the query runs as, such as a member of pg_monitor.';
    END IF;
    p.name := name; p.kind := 'sql'; p.query := query; p.every := every; p.timeout := timeout;
    p.failures := failures; p.recoveries := recoveries;
    p.severity := CASE WHEN pg_catalog.lower(pg_catalog.btrim(severity)) = 'auto' THEN 'auto'
                       ELSE @extschema@.incident_severity_normalize(severity) END;
    p.component := component; p.warn := warn; p.crit := crit; p.run_as := run_as;
    p.resolve_on_recovery := resolve_on_recovery; p.enabled := enabled;
    p.method := 'GET'; p.headers := '{}'; p.degraded_after := '3 seconds'; p.verify_tls := true;
    RETURN @extschema@.incident__probe_save(p);
END
$$;

COMMENT ON FUNCTION @extschema@.incident_probe_sql(text, text, interval, interval, int, int, text, text, numeric, numeric, name, boolean, boolean) IS
'Creates or replaces the SQL probe of this name: the worker runs query (one number or boolean) read-only as run_as with statement_timeout = timeout; the check fails on an error, a false boolean or a value past crit, and a value past warn makes it degraded. Returns the probe''s id.';

CREATE FUNCTION @extschema@.incident_probe_drop(name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM @extschema@.incident_probe p WHERE p.name = incident_probe_drop.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'probe "%" does not exist', @extschema@.incident__quote(name)
            USING ERRCODE = 'no_data_found',
                  HINT = 'See incident_probe_status for the probes.';
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_probe_drop(text) IS
'Drops the probe of this name with its state and history; incidents it declared stay.';

-- One check now, in this backend, the worker's way (src/worker/probe_run.c).
CREATE FUNCTION @extschema@.incident__probe_check(probe_id bigint)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'incident__probe_check'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION @extschema@.incident__probe_check(bigint) IS
'Internal, superuser only: runs one check of the probe now in the calling backend, with the worker''s code (an HTTP request through an engine of its own, or the SQL query read-only as run_as under the probe''s timeout), and returns the result incident__probe_record() takes.';

CREATE FUNCTION @extschema@.incident_probe_run(name text, record boolean DEFAULT false,
                                               OUT ok boolean, OUT state text, OUT failure text,
                                               OUT status int, OUT value numeric, OUT latency_ms double precision,
                                               OUT error text, OUT timings jsonb, OUT result jsonb)
RETURNS record
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    probe_id_ bigint;
BEGIN
    SELECT p.id INTO probe_id_ FROM @extschema@.incident_probe p WHERE p.name = incident_probe_run.name;
    IF probe_id_ IS NULL THEN
        RAISE EXCEPTION 'probe "%" does not exist', @extschema@.incident__quote(name)
            USING ERRCODE = 'no_data_found',
                  HINT = 'See incident_probe_status for the probes.';
    END IF;
    result := @extschema@.incident__probe_check(probe_id_);
    ok := (result ->> 'ok')::boolean;
    failure := result ->> 'failure';
    status := (result ->> 'status')::int;
    value := (result ->> 'value')::numeric;
    latency_ms := (result ->> 'latency_ms')::double precision;
    -- the query's own message, which the recorded error may leave out
    error := coalesce(result ->> 'message', result ->> 'error');
    timings := result -> 'timings';
    IF record THEN
        state := @extschema@.incident__probe_record(probe_id_, result);
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_probe_run(text, boolean) IS
'Runs one check of the probe now, in this session, the way the worker would (works without the worker), and returns what it found: ok, failure, HTTP status or SQL value, latency, error (for a SQL probe the query''s own error message, which the recorded result, read by incident_viewer, replaces by its SQLSTATE where it may quote data), phase timings and the raw result. Nothing is recorded unless record is true; then the result goes through the same rules as the worker''s checks and state is the probe''s new state. For incident_admin, while writing a probe.';

------------------------------------------------------------------------------
-- What a result means: the one place that decides
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__probe_in_maintenance(p @extschema@.incident_probe, at timestamptz)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM @extschema@.incident_maintenance m
                    WHERE (m.probe = p.name OR m.component = p.component)
                      AND m.starts_at <= at AND at < m.ends_at)
$$;

COMMENT ON FUNCTION @extschema@.incident__probe_in_maintenance(@extschema@.incident_probe, timestamptz) IS
'Internal: whether a maintenance window of the probe or its component covers the time.';

-- incident__probe_record(probe, result): records one check of a probe and
-- acts on it. result is {"ok": bool, "failure": text, "status": int,
-- "value": numeric, "latency_ms": number, "timings": {...}, "error": text,
-- "at": timestamptz}; the worker builds it from what it got.
CREATE FUNCTION @extschema@.incident__probe_record(probe_id bigint, result jsonb)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p @extschema@.incident_probe;
    s @extschema@.incident_probe_state;
    at_ timestamptz := coalesce((result ->> 'at')::timestamptz, @extschema@.incident__act_time(NULL));
    ok_ boolean := coalesce((result ->> 'ok')::boolean, false);
    failure_ text := result ->> 'failure';
    latency double precision := (result ->> 'latency_ms')::double precision;
    slow boolean;
    old_state text;
    new_state text;
    inc @extschema@.incident;
    result_id bigint;
    bucket int;
    code_ text;
    down_count int;
    joined boolean := false;
    previous_failure text;
BEGIN
    SELECT * INTO p FROM @extschema@.incident_probe x WHERE x.id = probe_id;
    IF p.id IS NULL THEN
        RETURN NULL;                    -- dropped while its check was in flight
    END IF;
    SELECT * INTO s FROM @extschema@.incident_probe_state x WHERE x.probe_id = p.id FOR UPDATE;
    -- probes of one component decide about their shared incident one at a time
    IF p.component IS NOT NULL THEN
        INSERT INTO @extschema@.incident_probe_component_lock (component) VALUES (p.component)
            ON CONFLICT (component) DO NOTHING;
        PERFORM 1 FROM @extschema@.incident_probe_component_lock l WHERE l.component = p.component FOR UPDATE;
    END IF;
    old_state := s.state;

    -- a check that could not run for its configuration (its run_as role was
    -- dropped): the service may be fine, so the probe is unknown, nothing
    -- counts toward down or up and nothing alerts; the result is kept
    IF failure_ = 'config' THEN
        INSERT INTO @extschema@.incident_probe_result AS r (probe_id, at, ok, failure, error, state, state_changed)
        VALUES (p.id, at_, false, 'config', pg_catalog.left(result ->> 'error', 1000), 'unknown',
                old_state IS DISTINCT FROM 'unknown')
        RETURNING r.id INTO result_id;
        UPDATE @extschema@.incident_probe_state x
           SET state = 'unknown', since = CASE WHEN x.state = 'unknown' THEN x.since ELSE at_ END,
               last_result_id = result_id, last_failure = 'config', claimed_at = NULL, next_run_at = at_ + p.every
         WHERE x.probe_id = p.id;
        RETURN 'unknown';
    END IF;

    -- degraded: a passing HTTP check slower than degraded_after, or a SQL
    -- value past warn
    slow := coalesce(ok_ AND ((p.kind = 'http' AND latency > pg_catalog.date_part('epoch', p.degraded_after) * 1000)
                              OR (p.kind = 'sql' AND failure_ = 'threshold')), false);
    previous_failure := s.last_failure;
    IF slow AND p.kind = 'http' THEN
        failure_ := 'slow';
    END IF;
    IF NOT ok_ AND failure_ IS NULL THEN
        failure_ := 'other';
    END IF;

    -- flips: checks whose outcome differs from the one before, over 30 minutes
    IF s.last_ok IS NOT NULL AND s.last_ok <> ok_ THEN
        s.flips := s.flips || at_;
    END IF;
    s.flips := ARRAY(SELECT f FROM pg_catalog.unnest(s.flips) AS f WHERE f > at_ - interval '30 minutes' ORDER BY f);
    s.last_ok := ok_;

    -- hysteresis: failures in a row make it down, recoveries in a row up;
    -- 6 flips in 30 minutes make it flapping until 30 minutes pass without one
    IF ok_ THEN
        s.consecutive_successes := s.consecutive_successes + 1;
        s.consecutive_failures := 0;
        s.first_failure_at := NULL;
    ELSE
        s.consecutive_failures := s.consecutive_failures + 1;
        s.consecutive_successes := 0;
        s.first_failure_at := coalesce(s.first_failure_at, at_);
    END IF;
    IF old_state = 'flapping' THEN
        new_state := CASE WHEN pg_catalog.cardinality(s.flips) > 0 THEN 'flapping'
                          WHEN ok_ THEN 'up' ELSE 'down' END;
    ELSIF pg_catalog.cardinality(s.flips) >= 6 AND (NOT ok_ OR old_state = 'down') THEN
        new_state := 'flapping';
    ELSIF NOT ok_ THEN
        new_state := CASE WHEN s.consecutive_failures >= p.failures THEN 'down' ELSE old_state END;
    ELSIF old_state = 'down' AND s.consecutive_successes < p.recoveries THEN
        new_state := 'down';
    ELSIF slow THEN
        new_state := 'degraded';
    ELSE
        new_state := 'up';
    END IF;

    -- record: every failure, every slow check and every change; the rest is counted
    IF NOT ok_ OR slow OR new_state IS DISTINCT FROM old_state THEN
        INSERT INTO @extschema@.incident_probe_result AS r
            (probe_id, at, ok, failure, status, value, latency_ms, timings, error, state, state_changed)
        VALUES (p.id, at_, ok_, CASE WHEN ok_ AND NOT slow THEN NULL ELSE failure_ END,
                (result ->> 'status')::int, (result ->> 'value')::numeric, latency,
                coalesce(result -> 'timings', '{}'), pg_catalog.left(result ->> 'error', 1000),
                new_state, new_state IS DISTINCT FROM old_state)
        RETURNING r.id INTO result_id;
        s.last_result_id := result_id;
    END IF;
    -- latency histogram bucket k (1..16) holds latencies below 2^(k-1) ms
    bucket := CASE WHEN latency IS NULL OR latency < 1 THEN 1
                   ELSE least(16, 2 + pg_catalog.floor(pg_catalog.log(2, latency::numeric))::int) END;
    INSERT INTO @extschema@.incident_probe_rollup AS u (probe_id, hour, checks, passed, latency_ms_sum, latency_ms_max, latency_buckets)
    VALUES (p.id, pg_catalog.date_trunc('hour', at_), 1, ok_::int, coalesce(latency, 0), latency,
            (SELECT pg_catalog.array_agg(CASE WHEN k = bucket AND latency IS NOT NULL THEN 1 ELSE 0 END ORDER BY k)
               FROM pg_catalog.generate_series(1, 16) AS k))
    ON CONFLICT (probe_id, hour) DO UPDATE
       SET checks = u.checks + 1, passed = u.passed + excluded.passed,
           latency_ms_sum = u.latency_ms_sum + excluded.latency_ms_sum,
           latency_ms_max = greatest(u.latency_ms_max, excluded.latency_ms_max),
           latency_buckets[bucket] = u.latency_buckets[bucket] + (latency IS NOT NULL)::int;

    IF new_state IS DISTINCT FROM old_state THEN
        s.since := at_;
    END IF;
    s.state := new_state;
    s.last_failure := CASE WHEN ok_ AND NOT slow THEN NULL ELSE failure_ END;
    s.claimed_at := NULL;
    s.next_run_at := at_ + p.every;

    -- the incident: a person's resolve wins; a new failure after it is a new incident
    IF s.incident_id IS NOT NULL THEN
        SELECT * INTO inc FROM @extschema@.incident i WHERE i.id = s.incident_id;
        IF inc.status IN ('resolved', 'closed') THEN
            s.incident_id := NULL;
            inc := NULL;
        END IF;
    END IF;

    -- going down or flapping: one incident per probe while it stays open (the
    -- probe's own, or its component's, or a new one), one event per change
    IF new_state IN ('down', 'flapping') AND (new_state IS DISTINCT FROM old_state OR NOT s.alerted)
       AND NOT @extschema@.incident__probe_in_maintenance(p, at_) THEN
      IF NOT s.alerted THEN
        s.alerted := true;
        IF s.incident_id IS NULL AND p.component IS NOT NULL THEN
            -- storms: a probe of a component with an open probe incident joins it
            SELECT i.* INTO inc FROM @extschema@.incident i
             WHERE i.component = p.component AND i.source = 'probe' AND i.status NOT IN ('resolved', 'closed')
             ORDER BY i.id DESC LIMIT 1;
            s.incident_id := inc.id;
            joined := inc.id IS NOT NULL;
        END IF;
        IF s.incident_id IS NULL THEN
            code_ := @extschema@.incident_declare(
                CASE WHEN p.severity <> 'auto' THEN p.severity
                     WHEN failure_ = 'slow' OR failure_ = 'timeout'
                     THEN @extschema@.incident_classify(pg_catalog.jsonb_build_object('page_load_s', coalesce(latency, 0) / 1000))
                     ELSE 'P1' END,
                pg_catalog.format('%s is %s', p.name, CASE WHEN new_state = 'flapping' THEN 'flapping' ELSE 'down' END),
                pg_catalog.format('Probe %s (%s) failed %s checks in a row: %s.', p.name,
                                  coalesce(p.url, 'health check ' || p.health_check, 'SQL'),
                                  s.consecutive_failures, failure_),
                least(s.first_failure_at, at_));
            SELECT * INTO inc FROM @extschema@.incident i WHERE i.code = code_;
            UPDATE @extschema@.incident i SET source = 'probe', component = p.component WHERE i.id = inc.id
            RETURNING * INTO inc;
            s.incident_id := inc.id;
        ELSIF joined THEN
            SELECT pg_catalog.count(*) + 1 INTO down_count FROM @extschema@.incident_probe_state x
             WHERE x.incident_id = s.incident_id AND x.probe_id <> p.id AND x.state IN ('down', 'flapping');
            IF down_count > 1 THEN
                UPDATE @extschema@.incident i
                   SET title = pg_catalog.format('%s probes of %s are down', down_count, p.component)
                 WHERE i.id = inc.id RETURNING * INTO inc;
            END IF;
        END IF;
      END IF;
      IF inc.id IS NOT NULL THEN
        PERFORM @extschema@.incident__event(inc, 'probe', pg_catalog.format('probe:%s', p.name),
            pg_catalog.format('%s is %s', p.name, new_state) || coalesce(': ' || failure_, ''),
            pg_catalog.jsonb_build_object('probe', p.name, 'change', new_state, 'failure', failure_,
                                          'result_id', result_id, 'status', result -> 'status',
                                          'error', pg_catalog.left(result ->> 'error', 200),
                                          'first_failure_at', s.first_failure_at)
            -- a built-in database probe brings the check's own account as evidence (82_health.sql)
            || CASE WHEN p.health_check IS NULL THEN '{}'
                    ELSE pg_catalog.jsonb_build_object('health', (
                             SELECT pg_catalog.jsonb_build_object('check', h.check_name, 'status', h.status,
                                                                  'value', h.value, 'unit', h.unit,
                                                                  'detail', h.detail, 'evidence', h.evidence)
                               FROM @extschema@.incident__health(p.health_check) h)) END,
            at_);
      END IF;
    ELSIF inc.id IS NOT NULL AND NOT ok_ AND previous_failure IS NOT NULL AND failure_ IS DISTINCT FROM previous_failure THEN
        -- the failure changed while the incident is open: one event per change, not per check
        PERFORM @extschema@.incident__event(inc, 'probe', pg_catalog.format('probe:%s', p.name),
            pg_catalog.format('%s still failing: now %s', p.name, failure_),
            pg_catalog.jsonb_build_object('probe', p.name, 'change', 'failure', 'failure', failure_,
                                          'result_id', result_id), at_);
    ELSIF inc.id IS NOT NULL AND new_state IN ('up', 'degraded') AND old_state IN ('down', 'flapping') THEN
        PERFORM @extschema@.incident__event(inc, 'probe', pg_catalog.format('probe:%s', p.name),
            pg_catalog.format('%s recovered', p.name),
            pg_catalog.jsonb_build_object('probe', p.name, 'change', 'recovered', 'result_id', result_id), at_);
        -- resolved when its last probe down recovers, if one of its probes says so
        IF NOT EXISTS (SELECT FROM @extschema@.incident_probe_state x
                        WHERE x.incident_id = inc.id AND x.probe_id <> p.id AND x.state IN ('down', 'flapping'))
           AND EXISTS (SELECT FROM @extschema@.incident_event e
                         JOIN @extschema@.incident_probe q ON q.name = e.details ->> 'probe'
                        WHERE e.incident_id = inc.id AND e.kind = 'probe' AND q.resolve_on_recovery) THEN
            PERFORM @extschema@.incident_resolve(inc.code, pg_catalog.format('Probe %s recovered.', p.name));
        END IF;
    END IF;

    IF new_state IN ('up', 'degraded') THEN
        s.alerted := false;             -- the run of failures is over
    END IF;

    UPDATE @extschema@.incident_probe_state x
       SET state = s.state, since = s.since, next_run_at = s.next_run_at, claimed_at = NULL,
           consecutive_failures = s.consecutive_failures, consecutive_successes = s.consecutive_successes,
           first_failure_at = s.first_failure_at, last_result_id = s.last_result_id,
           last_failure = s.last_failure, incident_id = s.incident_id, last_ok = s.last_ok, flips = s.flips,
           alerted = s.alerted
     WHERE x.probe_id = p.id;
    RETURN s.state;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__probe_record(bigint, jsonb) IS
'Internal, called by the worker for every check (and by tests): records the result (failures and changes as rows, everything in the hourly roll-up), moves the probe''s state with its hysteresis and flapping rule, declares an incident through incident_declare (or joins the open one of the probe or its component) when it goes down outside a maintenance window, adds an event when the failure changes, and records the recovery (resolving when the probe says so). Returns the new state.';

-- incident__probe_record_passes(...): the worker's batch of passing checks
-- of steady HTTP probes, one element per probe, counted in memory since
-- first_at (all within one hour). Adds them to the hourly roll-up and to
-- the run of successes, and stores when the probe runs next; a probe that
-- is no longer steady (a person recorded a check meanwhile) gets the counts
-- only.
CREATE FUNCTION @extschema@.incident__probe_record_passes(
    probe_ids bigint[], first_at timestamptz[], last_at timestamptz[], checks int[],
    latency_ms_sum double precision[], latency_ms_max double precision[],
    latency_buckets int[], next_run_at timestamptz[])
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int := pg_catalog.cardinality(probe_ids);
BEGIN
    IF pg_catalog.cardinality(first_at) IS DISTINCT FROM n OR pg_catalog.cardinality(last_at) IS DISTINCT FROM n
       OR pg_catalog.cardinality(checks) IS DISTINCT FROM n OR pg_catalog.cardinality(latency_ms_sum) IS DISTINCT FROM n
       OR pg_catalog.cardinality(latency_ms_max) IS DISTINCT FROM n
       OR pg_catalog.cardinality(next_run_at) IS DISTINCT FROM n
       OR pg_catalog.cardinality(latency_buckets) IS DISTINCT FROM 16 * n THEN
        RAISE EXCEPTION 'invalid passes: % probe ids, % first_at, % last_at, % checks, % latency_ms_sum, % latency_ms_max, % next_run_at, % latency_buckets',
                        n, pg_catalog.cardinality(first_at), pg_catalog.cardinality(last_at),
                        pg_catalog.cardinality(checks), pg_catalog.cardinality(latency_ms_sum),
                        pg_catalog.cardinality(latency_ms_max), pg_catalog.cardinality(next_run_at),
                        pg_catalog.cardinality(latency_buckets)
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'Give one element per probe in each array, and 16 latency buckets per probe.';
    END IF;
    IF 1 > ANY (checks) OR checks @> ARRAY[NULL::int] THEN
        RAISE EXCEPTION 'invalid checks "%"', pg_catalog.left(checks::text, 64)
              USING ERRCODE = 'invalid_parameter_value', HINT = 'Each probe''s count of passing checks is 1 or more.';
    END IF;
    -- one probe's counts of one hour may come twice (before and after it was
    -- disabled and enabled again): they are added up first
    WITH d AS (
        SELECT d.* FROM ROWS FROM (pg_catalog.unnest(probe_ids), pg_catalog.unnest(first_at),
                                   pg_catalog.unnest(last_at), pg_catalog.unnest(checks),
                                   pg_catalog.unnest(latency_ms_sum), pg_catalog.unnest(latency_ms_max),
                                   pg_catalog.unnest(next_run_at))
                   WITH ORDINALITY AS d(probe_id, first_at, last_at, checks, lsum, lmax, next_run_at, i)
          JOIN @extschema@.incident_probe p ON p.id = d.probe_id
    ), b AS (
        SELECT b.probe_id, b.hour, pg_catalog.array_agg(b.n ORDER BY b.k) AS buckets
          FROM (SELECT d.probe_id, pg_catalog.date_trunc('hour', d.first_at) AS hour, k,
                       pg_catalog.sum(latency_buckets[(d.i - 1) * 16 + k])::int AS n
                  FROM d, pg_catalog.generate_series(1, 16) AS k
                 GROUP BY 1, 2, 3) b
         GROUP BY 1, 2
    ), h AS (
        SELECT d.probe_id, pg_catalog.date_trunc('hour', d.first_at) AS hour,
               pg_catalog.sum(d.checks)::int AS checks, pg_catalog.sum(d.lsum) AS lsum,
               pg_catalog.max(d.lmax) AS lmax
          FROM d
         GROUP BY 1, 2
    ), counted AS (
        INSERT INTO @extschema@.incident_probe_rollup AS u
               (probe_id, hour, checks, passed, latency_ms_sum, latency_ms_max, latency_buckets)
        SELECT h.probe_id, h.hour, h.checks, h.checks, h.lsum, h.lmax, b.buckets
          FROM h JOIN b ON b.probe_id = h.probe_id AND b.hour = h.hour
        ON CONFLICT (probe_id, hour) DO UPDATE
           SET checks = u.checks + excluded.checks, passed = u.passed + excluded.passed,
               latency_ms_sum = u.latency_ms_sum + excluded.latency_ms_sum,
               latency_ms_max = greatest(u.latency_ms_max, excluded.latency_ms_max),
               latency_buckets = (SELECT pg_catalog.array_agg(a + b ORDER BY k)
                                    FROM ROWS FROM (pg_catalog.unnest(u.latency_buckets),
                                                    pg_catalog.unnest(excluded.latency_buckets))
                                         WITH ORDINALITY AS t(a, b, k))
    )
    UPDATE @extschema@.incident_probe_state s
       SET consecutive_successes = s.consecutive_successes + t.checks,
           next_run_at = coalesce(t.next_run_at, s.next_run_at)
      FROM (SELECT d.probe_id, pg_catalog.sum(d.checks)::int AS checks, pg_catalog.max(d.next_run_at) AS next_run_at
              FROM d GROUP BY d.probe_id) t
     WHERE s.probe_id = t.probe_id AND s.state = 'up' AND s.consecutive_failures = 0;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__probe_record_passes(bigint[], timestamptz[], timestamptz[], int[], double precision[], double precision[], int[], timestamptz[]) IS
'Internal, called by the HTTP worker: records a batch of passing checks of steady HTTP probes counted in memory (one element per probe, latency_buckets 16 per probe), as incident__probe_record would have, one by one: into the hourly roll-up and the run of successes, with the next run time. Returns how many probes'' states it updated.';

------------------------------------------------------------------------------
-- Incidents a probe declared
------------------------------------------------------------------------------

ALTER TABLE @extschema@.incident
    ADD COLUMN source text NOT NULL DEFAULT 'person' CHECK (source IN ('person', 'probe')),
    ADD COLUMN component text;

COMMENT ON COLUMN @extschema@.incident.source IS 'Who declared the incident: person (through incident_declare) or probe (the worker, for a probe that went down).';
COMMENT ON COLUMN @extschema@.incident.component IS 'The component of the probes that declared or joined the incident.';

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------

CREATE VIEW @extschema@.incident_probe_status AS
SELECT p.name,
       p.kind,
       p.component,
       p.enabled,
       s.state,
       s.since,
       s.next_run_at,
       CASE WHEN p.kind = 'sql' THEN s.claimed_at IS NOT NULL END AS in_flight,
       s.consecutive_failures,
       s.consecutive_successes,
       s.last_failure,
       r.at AS last_result_at,
       r.status AS last_status,
       r.latency_ms AS last_latency_ms,
       r.timings AS last_timings,
       r.error AS last_error,
       i.code AS incident,
       d.uptime_pct_24h,
       d.p50_ms_24h,
       d.p95_ms_24h,
       m.uptime_pct_30d
  FROM @extschema@.incident_probe p
  JOIN @extschema@.incident_probe_state s ON s.probe_id = p.id
  LEFT JOIN @extschema@.incident_probe_result r ON r.id = s.last_result_id
  LEFT JOIN @extschema@.incident i ON i.id = s.incident_id
  LEFT JOIN LATERAL (
      SELECT pg_catalog.round(100.0 * pg_catalog.sum(u.passed) / nullif(pg_catalog.sum(u.checks), 0), 3) AS uptime_pct_24h,
             (SELECT pg_catalog.power(2, b.k - 1)
                FROM (SELECT k, pg_catalog.sum(u2.latency_buckets[k]) OVER (ORDER BY k) AS cum,
                             pg_catalog.sum(u2.latency_buckets[k]) OVER () AS total
                        FROM @extschema@.incident_probe_rollup u2, pg_catalog.generate_series(1, 16) AS k
                       WHERE u2.probe_id = p.id AND u2.hour >= @extschema@.incident_now() - interval '24 hours') b
               WHERE b.cum >= 0.5 * b.total ORDER BY b.k LIMIT 1) AS p50_ms_24h,
             (SELECT pg_catalog.power(2, b.k - 1)
                FROM (SELECT k, pg_catalog.sum(u2.latency_buckets[k]) OVER (ORDER BY k) AS cum,
                             pg_catalog.sum(u2.latency_buckets[k]) OVER () AS total
                        FROM @extschema@.incident_probe_rollup u2, pg_catalog.generate_series(1, 16) AS k
                       WHERE u2.probe_id = p.id AND u2.hour >= @extschema@.incident_now() - interval '24 hours') b
               WHERE b.cum >= 0.95 * b.total ORDER BY b.k LIMIT 1) AS p95_ms_24h
        FROM @extschema@.incident_probe_rollup u
       WHERE u.probe_id = p.id AND u.hour >= @extschema@.incident_now() - interval '24 hours') d ON true
  LEFT JOIN LATERAL (
      SELECT pg_catalog.round(100.0 * pg_catalog.sum(u.passed) / nullif(pg_catalog.sum(u.checks), 0), 3) AS uptime_pct_30d
        FROM @extschema@.incident_probe_rollup u
       WHERE u.probe_id = p.id AND u.hour >= @extschema@.incident_now() - interval '30 days') m ON true
 ORDER BY p.name;

COMMENT ON VIEW @extschema@.incident_probe_status IS
'One row per probe: its state (unknown, up, degraded, down, flapping) and since when, when it runs next (for a steady HTTP probe, written with its passing checks, at most pg_incident.probe_flush_interval late), whether a SQL probe''s check is in flight (NULL for HTTP probes, whose claims the worker keeps in memory: see incident_worker_status.checks_in_flight), its run of failures or successes, the last kept result (status, latency, phase timings, error), the open incident''s code, and uptime and latency percentiles (upper bounds of power-of-two buckets) over the last 24 hours and 30 days.';

------------------------------------------------------------------------------
-- pg_dump and privileges
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_probe', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_probe_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_probe_state', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_probe_result', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_probe_result_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_probe_rollup', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_maintenance', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_maintenance_id_seq', '');

GRANT SELECT ON @extschema@.incident_probe_state, @extschema@.incident_probe_result,
                @extschema@.incident_probe_rollup, @extschema@.incident_maintenance, @extschema@.incident_probe_status
   TO incident_viewer;
-- a probe's headers and body may carry credentials (Authorization: Bearer ...)
GRANT SELECT (id, name, kind, every, timeout, failures, recoveries, severity, component, enabled,
              resolve_on_recovery, url, method, expect_status, expect_body, expect_body_regex, degraded_after, verify_tls,
              query, warn, crit, run_as, created_by)
   ON @extschema@.incident_probe TO incident_viewer;
GRANT SELECT ON @extschema@.incident_probe TO incident_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.incident_probe_http(text, text, interval, interval, int, int, text, text, text, text[], text, int[], text, interval, boolean, boolean, boolean, text),
    @extschema@.incident_probe_sql(text, text, interval, interval, int, int, text, text, numeric, numeric, name, boolean, boolean),
    @extschema@.incident_probe_drop(text),
    @extschema@.incident_probe_run(text, boolean)
   TO incident_admin;
GRANT INSERT, UPDATE, DELETE ON @extschema@.incident_maintenance TO incident_admin;
GRANT USAGE ON SEQUENCE @extschema@.incident_maintenance_id_seq TO incident_admin;
