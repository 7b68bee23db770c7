-- test/bench/setup.sql: the database of `make bench`: pg_incident, and the
-- plain table of the baselines (test/bench/insert, test/bench/insert_notify).
CREATE EXTENSION pg_incident;
CREATE SEQUENCE bench_plain_seq;
CREATE TABLE bench_plain (
    id            bigserial PRIMARY KEY,
    code          text NOT NULL UNIQUE,
    severity      text NOT NULL,
    status        text NOT NULL,
    title         text NOT NULL,
    declared_by   text NOT NULL,
    declared_at   timestamptz NOT NULL,
    response_due  timestamptz NOT NULL
);

-- bench_sample_waits(seconds, every): what the pgbench sessions are doing,
-- sampled from pg_stat_activity every "every" seconds for "seconds" seconds:
-- one row per wait event ("CPU" when a session waits for nothing), with how
-- many session-samples saw it.
CREATE FUNCTION bench_sample_waits(seconds float8, every float8)
RETURNS TABLE (wait text, samples bigint)
LANGUAGE plpgsql AS $$
DECLARE
    stop timestamptz := clock_timestamp() + seconds * interval '1 second';
    seen text[] := '{}';
BEGIN
    WHILE clock_timestamp() < stop LOOP
        PERFORM pg_stat_clear_snapshot();    -- else the transaction sees one snapshot
        seen := seen || ARRAY(SELECT coalesce(a.wait_event_type || ':' || a.wait_event, 'CPU')
                                FROM pg_stat_activity a
                               WHERE a.application_name = 'pgbench' AND a.pid <> pg_backend_pid());
        PERFORM pg_sleep(every);
    END LOOP;
    RETURN QUERY SELECT w, count(*) FROM unnest(seen) AS w GROUP BY w ORDER BY count(*) DESC, w;
END
$$;
