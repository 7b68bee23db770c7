-- test/bench/classify.sql: the classifier benchmark of `make bench`.
--
-- 100,000 phrases made of the playbook's wording, paraphrases, filler and
-- text no rule knows (bench_phrase), and bench_classify(rounds), which
-- classifies all of them with incident_classify() (the compiled rules, C)
-- and with the same rules as one plain SQL CASE WHEN phrase ~* '...' THEN
-- ... expression built from incident_classify_rule, the two in turn, rounds
-- times each, on one core (no parallel workers). It fails if the two ever
-- disagree.
SET max_parallel_workers_per_gather = 0;

CREATE TABLE bench_phrase (id int PRIMARY KEY, phrase text NOT NULL);

SELECT setseed(0.42);
WITH core(phrase) AS (
    SELECT unnest(ARRAY[
        'Complete website outage', 'Database unavailable', 'Security breach or data leak',
        'Payment system failure', 'Admin panel completely inaccessible',
        'Major functionality broken (lead submission fails)', 'Significant performance degradation (>10 second load times)',
        'Admin panel partially accessible', 'Email/WhatsApp integration failures', 'Availability status not updating',
        'Minor functionality issues', 'Moderate performance issues (3-5 second load times)',
        'Non-critical features not working', 'Cosmetic display issues', 'Individual user account issues',
        'Cosmetic issues', 'Documentation errors', 'Minor UI inconsistencies', 'Non-urgent feature requests',
        'db down', 'site is returning 500 for everyone', 'customer data exposed', 'checkout payments failing',
        'typo on the about page', 'the whole site is down', 'production database is not responding',
        'we got hacked', 'API keys leaked on GitHub', 'customers cannot pay at checkout',
        'nobody can log into the admin panel', '502 bad gateway on every page', 'SSL certificate expired',
        'contact form submissions are failing', 'leads are not being saved', 'pages take 15 seconds to load',
        'site is extremely slow', 'some admin pages return 403', 'emails are not being sent',
        'WhatsApp messages not delivered', 'stock status stuck since this morning', 'users cannot log in',
        'pages load in 4 seconds', 'the site feels a bit slow', 'one customer cannot reset their password',
        'images not showing on the gallery page', 'layout broken on mobile safari', 'PDF export is broken',
        'wrong font in the footer', 'README is out of date', 'feature request: dark mode',
        'misaligned icon in the header', 'spelling mistake in the FAQ',
        'something weird is going on with the servers', 'deploy of release 4.2 finished',
        'customer asked about delivery times', 'weekly report attached', 'on-call handover notes'])
), c AS (SELECT array_agg(phrase) AS a FROM core)
INSERT INTO bench_phrase
SELECT g,
       (ARRAY['', 'urgent: ', 'FYI ', 'reported by a customer: ', 'alert: ', 'ticket #' || (g % 9973) || ' '])[1 + (random() * 5)::int]
       || c.a[1 + (random() * (array_length(c.a, 1) - 1))::int]
       || (ARRAY['', ' since 10:00', ' again', ' (see logs)', ' in production', ' after the last deploy', ' per monitoring'])[1 + (random() * 6)::int]
  FROM generate_series(1, 100000) g, c;
ANALYZE bench_phrase;

-- The rules as one CASE expression over column "phrase", in the classifier's order.
CREATE FUNCTION bench_case_expression() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT 'CASE ' || string_agg(format('WHEN phrase ~* %L THEN %L', r.pattern, r.severity), ' '
                                 ORDER BY r.priority, r.name COLLATE "C") || ' END'
      FROM incident_classify_rule r WHERE r.enabled
$$;

-- bench_classify(rounds): one row per method with the median time of its
-- rounds and the classifications per second that gives.
CREATE FUNCTION bench_classify(rounds int)
RETURNS TABLE (method text, phrases bigint, result text, median_s float8, fastest_s float8, slowest_s float8, per_second float8)
LANGUAGE plpgsql AS $$
DECLARE
    -- both count the phrases of each severity, so both do the same work;
    -- OFFSET 0 keeps the subquery, so that each phrase is classified once
    counting text := 'SELECT format(''%%s P1, %%s P2, %%s P3, %%s P4, %%s none'', count(*) FILTER (WHERE s = ''P1''),
                             count(*) FILTER (WHERE s = ''P2''), count(*) FILTER (WHERE s = ''P3''),
                             count(*) FILTER (WHERE s = ''P4''), count(*) FILTER (WHERE s IS NULL))
                        FROM (SELECT %s AS s FROM bench_phrase OFFSET 0) x';
    c_query text := format(counting, 'incident_classify(phrase)');
    sql_query text := format(counting, bench_case_expression());
    c_times float8[] := '{}';
    sql_times float8[] := '{}';
    c_counts text;
    sql_counts text;
    t0 timestamptz;
    n bigint;
    disagree bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM bench_phrase WHERE incident_classify(phrase) IS DISTINCT FROM (%s)',
                   bench_case_expression()) INTO disagree;
    IF disagree > 0 THEN
        RAISE EXCEPTION 'incident_classify() and the CASE expression disagree on % phrases', disagree;
    END IF;
    SELECT count(*) INTO n FROM bench_phrase;
    FOR i IN 1 .. rounds LOOP
        t0 := clock_timestamp();
        EXECUTE c_query INTO c_counts;
        c_times := c_times || extract(epoch FROM clock_timestamp() - t0)::float8;
        t0 := clock_timestamp();
        EXECUTE sql_query INTO sql_counts;
        sql_times := sql_times || extract(epoch FROM clock_timestamp() - t0)::float8;
        IF c_counts IS DISTINCT FROM sql_counts THEN
            RAISE EXCEPTION 'incident_classify() counted % and the CASE expression %', c_counts, sql_counts;
        END IF;
    END LOOP;
    RETURN QUERY
    SELECT m.method, n, c_counts, m.med, m.lo, m.hi, n / m.med
      FROM (SELECT 'C' AS method, (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY t) FROM unnest(c_times) t) AS med,
                   (SELECT min(t) FROM unnest(c_times) t) AS lo, (SELECT max(t) FROM unnest(c_times) t) AS hi
            UNION ALL
            SELECT 'SQL CASE', (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY t) FROM unnest(sql_times) t),
                   (SELECT min(t) FROM unnest(sql_times) t), (SELECT max(t) FROM unnest(sql_times) t)) m;
END
$$;

-- bench_classify_compile(rounds): median milliseconds of the first
-- classification after the rules changed (loading and compiling them).
CREATE FUNCTION bench_classify_compile(rounds int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    times float8[] := '{}';
    t0 timestamptz;
BEGIN
    FOR i IN 1 .. rounds LOOP
        UPDATE incident_classify_rule SET enabled = enabled WHERE name = 'unclassified';
        t0 := clock_timestamp();
        PERFORM incident_classify('db down');
        times := times || 1000 * extract(epoch FROM clock_timestamp() - t0)::float8;
    END LOOP;
    RETURN (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY t) FROM unnest(times) t);
END
$$;
