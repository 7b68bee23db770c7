-- Classification: the playbook's severity table and paraphrases of it, the
-- explanation, signals, declaring with NULL or 'auto', editing rules, and
-- bad rules.
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
-- a fixed role, so that actors in the output do not depend on the OS user
SET ROLE regress_incident_dba;
SET pg_incident.timezone = 'UTC';
SET pg_incident.clock = '2026-08-03 09:00:00+00';
SET TimeZone = 'UTC';

-- the seeded rules, in the order they are tried
SELECT priority, name, severity, category, enabled, is_default FROM incident_classify_rule ORDER BY priority, name;

-- every example of the playbook's severity table classifies to its level
CREATE TEMP TABLE playbook (phrase text, want text);
INSERT INTO playbook
SELECT e, s.severity FROM incident_severity s, unnest(s.examples) AS e;
INSERT INTO playbook VALUES ('Website completely down - 500 errors', 'P1');
SELECT p.want, p.phrase, incident_classify(p.phrase) AS got, e.rule
  FROM playbook p LEFT JOIN incident_classify_explain(p.phrase) e ON e.rank = 1
 ORDER BY p.want, p.phrase;
SELECT count(*) AS playbook_examples, count(*) FILTER (WHERE incident_classify(phrase) = want) AS right
  FROM playbook;

-- what people type instead (none of it the playbook's wording)
CREATE TEMP TABLE paraphrase (phrase text, want text);
INSERT INTO paraphrase VALUES
    ('db down', 'P1'),
    ('site is returning 500 for everyone', 'P1'),
    ('customer data exposed', 'P1'),
    ('checkout payments failing', 'P1'),
    ('the whole site is down', 'P1'),
    ('production database is not responding', 'P1'),
    ('postgres primary crashed', 'P1'),
    ('cannot connect to the database', 'P1'),
    ('we got hacked', 'P1'),
    ('API keys leaked on GitHub', 'P1'),
    ('unauthorized access to customer records', 'P1'),
    ('Stripe payments are declining for all cards', 'P1'),
    ('customers cannot pay at checkout', 'P1'),
    ('nobody can log into the admin panel', 'P1'),
    ('admin dashboard is down', 'P1'),
    ('502 bad gateway on every page', 'P1'),
    ('SSL certificate expired', 'P1'),
    ('too many connections on the db', 'P1'),
    ('homepage not loading for anyone', 'P1'),
    ('ransomware on the file server', 'P1'),
    ('contact form submissions are failing', 'P2'),
    ('leads are not being saved', 'P2'),
    ('pages take 15 seconds to load', 'P2'),
    ('site is extremely slow', 'P2'),
    ('some admin pages return 403', 'P2'),
    ('emails are not being sent', 'P2'),
    ('WhatsApp messages not delivered', 'P2'),
    ('stock status stuck since this morning', 'P2'),
    ('quote requests failing with an error', 'P2'),
    ('users cannot log in', 'P2'),
    ('api requests timing out', 'P2'),
    ('SMTP bounces for every notification', 'P2'),
    ('pages load in 4 seconds', 'P3'),
    ('product pages take 7 seconds to load', 'P3'),
    ('the site feels a bit slow', 'P3'),
    ('one customer cannot reset their password', 'P3'),
    ('a user is locked out of their account', 'P3'),
    ('images not showing on the gallery page', 'P3'),
    ('layout broken on mobile safari', 'P3'),
    ('small bug in the newsletter signup widget', 'P3'),
    ('PDF export is broken', 'P3'),
    ('something weird is going on with the servers', 'P3'),
    ('typo on the about page', 'P4'),
    ('wrong font in the footer', 'P4'),
    ('button colour slightly off on the pricing page', 'P4'),
    ('README is out of date', 'P4'),
    ('broken link in the docs', 'P4'),
    ('feature request: dark mode', 'P4'),
    ('would be nice to export leads to CSV', 'P4'),
    ('misaligned icon in the header', 'P4'),
    ('spelling mistake in the FAQ', 'P4'),
    ('inconsistent button styles between pages', 'P4');
SELECT p.want, p.phrase, incident_classify(p.phrase) AS got, e.rule, e.matched
  FROM paraphrase p LEFT JOIN incident_classify_explain(p.phrase) e ON e.rank = 1
 ORDER BY p.want, p.phrase;
SELECT want, count(*) AS phrases, count(*) FILTER (WHERE incident_classify(phrase) = want) AS right
  FROM paraphrase GROUP BY ROLLUP (want) ORDER BY want;

-- the compiled rules (with their prefilter) give what the same rules give
-- when each pattern is matched by ~* in plain SQL
SELECT count(*) AS phrases,
       count(*) FILTER (WHERE incident_classify(p.phrase) IS NOT DISTINCT FROM
           (SELECT r.severity FROM incident_classify_rule r
             WHERE r.enabled AND p.phrase ~* r.pattern
             ORDER BY r.priority, r.name COLLATE "C" LIMIT 1)) AS same_as_sql
  FROM (SELECT phrase FROM playbook UNION ALL SELECT phrase FROM paraphrase
        UNION ALL SELECT upper(phrase) FROM paraphrase
        UNION ALL VALUES ('Ünïcode: DATABASE DOWN ✓'), (''), ('   ')) p(phrase);

-- an unknown literal resolves to the text version; NULL in, NULL out
SELECT incident_classify('db down') AS literal, incident_classify(NULL::text) AS null_text;
SELECT pg_typeof(incident_classify('db down'));

-- the explanation: the rule that decides, then the runners-up
SELECT rank, rule, severity, category, priority, matched
  FROM incident_classify_explain('checkout payments failing, the database is down too');
SELECT rank, rule, severity, matched FROM incident_classify_explain('typo on the about page');
-- text no rule knows is P3 by the catch-all rule
SELECT rank, rule, severity, category, pattern, matched FROM incident_classify_explain('something odd happened');

-- signals
SELECT s AS signals, incident_classify(s::jsonb) AS severity
  FROM unnest(ARRAY[
    '{"outage": true}', '{"security": true}', '{"payment": true}', '{"database_down": true}',
    '{"outage": false}', '{}', '{"outage": null}',
    '{"page_load_s": 12}', '{"page_load_s": 10.01}', '{"page_load_s": 10}', '{"page_load_s": 7.5}',
    '{"page_load_s": 5}', '{"page_load_s": 3}', '{"page_load_s": 2.9}',
    '{"users_affected_pct": 60}', '{"users_affected_pct": 50}', '{"users_affected_pct": 10}',
    '{"users_affected_pct": 0.5}', '{"users_affected_pct": 0}',
    '{"page_load_s": 12, "users_affected_pct": 60}', '{"page_load_s": 4, "security": true}'
  ]) AS s;
SELECT * FROM incident_classify_explain('{"page_load_s": 7, "users_affected_pct": 15, "outage": false}'::jsonb);
-- bad signals
SELECT incident_classify('{"page_load": 12}'::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_classify('{"page_load_s": "12"}'::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_classify('{"page_load_s": -1}'::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_classify('{"users_affected_pct": 120}'::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_classify('{"outage": "yes"}'::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_classify('[{"outage": true}]'::jsonb);
\echo :LAST_ERROR_SQLSTATE

-- declaring with NULL or 'auto' classifies the title and description
SELECT incident_declare(NULL, 'db down') AS auto1 \gset
SELECT incident_declare('auto', 'Checkout broken', 'customers cannot pay since the deploy') AS auto2 \gset
SELECT incident_declare('AUTO', 'typo on the about page') AS auto3 \gset
SELECT incident_declare(NULL, 'Something odd in the logs') AS auto4 \gset
-- an explicit severity is taken as given, also against the rules
SELECT incident_declare('P4', 'db down') AS explicit \gset
SELECT code, severity, response_due FROM incident
 WHERE code IN (:'auto1', :'auto2', :'auto3', :'auto4', :'explicit') ORDER BY code;
SELECT code, details->'severity' AS severity, jsonb_pretty(details->'classified') AS classified
  FROM incident_timeline
 WHERE kind = 'declared' AND code IN (:'auto1', :'auto2', :'auto3', :'auto4', :'explicit') ORDER BY code;

-- editing a rule changes the classifier at once in this session
SELECT incident_classify('newsletter signup widget is broken') AS before;
INSERT INTO incident_classify_rule (name, priority, pattern, severity, category, note)
VALUES ('newsletter', 205, '\mnewsletter\M', 'low', 'functionality', 'The newsletter can wait.');
SELECT name, severity, is_default FROM incident_classify_rule WHERE name = 'newsletter';
SELECT incident_classify('newsletter signup widget is broken') AS after_insert;
UPDATE incident_classify_rule SET severity = 'P3' WHERE name = 'newsletter';
SELECT incident_classify('newsletter signup widget is broken') AS after_update;
-- a rolled-back change is forgotten
BEGIN;
DELETE FROM incident_classify_rule WHERE name = 'newsletter';
SELECT incident_classify('newsletter signup widget is broken') AS deleted_in_transaction;
ROLLBACK;
SELECT incident_classify('newsletter signup widget is broken') AS after_rollback;
DELETE FROM incident_classify_rule WHERE name = 'newsletter';
SELECT incident_classify('newsletter signup widget is broken') AS after_delete;
-- editing a seeded rule clears is_default, so that pg_dump keeps the edit
UPDATE incident_classify_rule SET enabled = false WHERE name = 'unclassified';
SELECT name, enabled, is_default FROM incident_classify_rule WHERE name = 'unclassified';
SELECT incident_classify('something odd happened') AS without_catch_all;
SELECT incident_declare('auto', 'Something odd happened');
\echo :LAST_ERROR_SQLSTATE
UPDATE incident_classify_rule SET enabled = true WHERE name = 'unclassified';
SELECT incident_classify('something odd happened') AS with_catch_all;

-- bad rules are refused, naming the rule, and nothing changes
INSERT INTO incident_classify_rule (name, priority, pattern, severity, category)
VALUES ('bad_regex', 1, 'database (down', 'P1', 'database');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_classify_rule (name, priority, pattern, severity, category)
VALUES ('bad_severity', 1, 'db', 'P5', 'database');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_classify_rule (name, priority, pattern, severity, category)
VALUES ('no_severity', 1, 'db', NULL, 'database');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_classify_rule (name, priority, pattern, severity, category)
VALUES ('Bad Name', 1, 'db', 'P1', 'database');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_classify_rule (name, priority, pattern, severity, category)
VALUES ('bad_category', 1, 'db', 'P1', 'data base');
\echo :LAST_ERROR_SQLSTATE
UPDATE incident_classify_rule SET pattern = '[unclosed' WHERE name = 'database_down';
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS rules, count(*) FILTER (WHERE NOT is_default) AS edited FROM incident_classify_rule;
SELECT incident_classify('db down') AS still;

-- who may do what
SET ROLE incident_viewer;
SELECT incident_classify('db down') AS viewer_classifies;
UPDATE incident_classify_rule SET severity = 'P4' WHERE name = 'database_down';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_incident_dba;
SELECT has_table_privilege('incident_admin', 'incident_classify_rule', 'UPDATE') AS admin_update,
       has_table_privilege('incident_responder', 'incident_classify_rule', 'UPDATE') AS responder_update,
       has_function_privilege('public', 'incident_classify(text)', 'EXECUTE') AS public_execute;
