-- Notifications: channels, routing and the outbox rows an event writes in
-- its own transaction, the bodies (json envelope, slack text, escaping), and
-- the worker's side driven by hand: claiming in order per incident and
-- channel, back-off after a failure, Retry-After, dead letters and retry.
-- Delivery itself, through the worker, is test/t/024_notifications.pl.
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET TimeZone = 'UTC';
DROP EXTENSION IF EXISTS pg_incident;
CREATE EXTENSION pg_incident;
SET pg_incident.timezone = 'UTC';
SET pg_incident.clock = '2026-05-04 08:00:00+00';

SELECT incident_channel_webhook('all', 'https://hooks.example/all') AS all_id \gset
SELECT :all_id AS all_id;
SELECT incident_channel_webhook('p2', 'https://hooks.example/p2', format => 'slack', min_severity => 'p2');
SELECT incident_channel_webhook('web', 'https://hooks.example/web', components => '{website}',
                                events => '{declared,resolved}');
SELECT incident_channel_webhook('off', 'https://hooks.example/off', enabled => false);
-- replacing keeps the id
SELECT incident_channel_webhook('all', 'https://hooks.example/all2', link_template => 'https://status.example/i/{code}') AS same_id;
SELECT name, format, min_severity, components, enabled, signed FROM incident_channels;

-- routing: severity, events, components, enabled
SELECT incident_declare('P3', 'Reports are slow') AS p3 \gset
SELECT incident_declare('P1', E'Title with "quotes", a \\ backslash, a tab\there & <!channel> <@U123>') AS p1 \gset
SELECT channel, incident = :'p3' AS is_p3, event_kind, state FROM incident_notifications ORDER BY id;
-- a rolled-back event writes nothing
BEGIN;
SELECT incident_acknowledge(:'p1', 'Jane') IS NOT NULL AS acknowledged;
SELECT count(*) AS rows_in_transaction FROM incident_notification;
ROLLBACK;
SELECT count(*) AS rows_after_rollback FROM incident_notification;

-- the bodies: valid JSON whatever was typed, Slack's markup escaped
SELECT n.body::jsonb -> 'incident' ->> 'title' AS json_title,
       n.body::jsonb -> 'incident' ->> 'link' AS link,
       n.body::jsonb ->> 'version' AS version
  FROM incident_notification n JOIN incident_channel c ON c.id = n.channel_id
 WHERE c.name = 'all' AND n.incident_id = (SELECT id FROM incident WHERE code = :'p1');
SELECT n.body::jsonb ->> 'text' AS slack_text
  FROM incident_notification n JOIN incident_channel c ON c.id = n.channel_id
 WHERE c.name = 'p2';
SELECT count(*) AS stray_mentions FROM incident_notification n JOIN incident_channel c ON c.id = n.channel_id
 WHERE c.format = 'slack' AND n.body::jsonb ->> 'text' ~ '<[!@]';

-- components: only incidents of the channel's components
UPDATE incident SET component = 'website' WHERE code = :'p3';
SELECT incident_acknowledge(:'p3', 'Ann') IS NOT NULL AS acknowledged;
SELECT incident_update(:'p3', 'investigating', 'Looking') IS NOT NULL AS updated;
SELECT incident_resolve(:'p3', 'Index rebuilt') IS NOT NULL AS resolved;
SELECT channel, event_kind FROM incident_notifications WHERE incident = :'p3' ORDER BY id;

-- the worker's side: one claim per channel and incident, oldest first
SELECT incident_acknowledge(:'p1', 'Jane') IS NOT NULL AS acknowledged;
-- per channel at most per_channel in flight: with 1, one of the two incidents of channel all
BEGIN;
SELECT c.name, count(*) FROM incident__notification_claim(100, 1, 100) x
  JOIN incident_notification n ON n.id = x.id JOIN incident_channel c ON c.id = n.channel_id GROUP BY 1 ORDER BY 1;
ROLLBACK;
-- at most max_in_flight in flight in all: with 2, two now and none after them
BEGIN;
SELECT count(*) AS claimed FROM incident__notification_claim(100, 100, 2);
SELECT count(*) AS claimed_beyond_the_cap FROM incident__notification_claim(100, 100, 2);
ROLLBACK;
SELECT c.name, n.event_kind
  FROM incident__notification_claim(100, 100, 100) AS x
  JOIN incident_notification n ON n.id = x.id JOIN incident_channel c ON c.id = n.channel_id
 ORDER BY x.id;
-- claimed ones are in flight and not claimed twice
SELECT count(*) AS claimed_again FROM incident__notification_claim(100, 100, 100);
SELECT count(*) FILTER (WHERE in_flight) AS in_flight FROM incident_notifications;

-- a failure: pending again after about a second (jitter: half to all of it)
SELECT n.id AS first_id FROM incident_notification n JOIN incident_channel c ON c.id = n.channel_id
 WHERE c.name = 'all' AND n.event_kind = 'declared' AND n.incident_id = (SELECT id FROM incident WHERE code = :'p1') \gset
SELECT incident__notification_done(:first_id, false, 503, 'HTTP 503: busy', 0, 600000, 86400);
SELECT state, attempts, last_status, last_error, NOT in_flight AS released,
       next_attempt_at - last_attempt_at BETWEEN interval '0.5 s' AND interval '1 s' AS backed_off
  FROM incident_notifications WHERE id = :first_id;
-- the acknowledgement of the same incident waits behind it
SELECT count(*) AS next_of_that_incident FROM incident__notification_claim(100, 100, 100) x
  JOIN incident_notification n ON n.id = x.id WHERE n.channel_id = :all_id;
-- Retry-After asks for longer; the cap keeps doubling in check
UPDATE incident_notification SET next_attempt_at = clock_timestamp() WHERE id = :first_id;
SELECT count(*) AS claimed FROM incident__notification_claim(100, 100, 100) x WHERE x.id = :first_id;
SELECT incident__notification_done(:first_id, false, 429, 'HTTP 429', 30, 600000, 86400);
SELECT next_attempt_at - last_attempt_at >= interval '30 s' AS retry_after_honoured FROM incident_notifications WHERE id = :first_id;
UPDATE incident_notification SET next_attempt_at = clock_timestamp(), attempts = 40 WHERE id = :first_id;
SELECT count(*) AS claimed FROM incident__notification_claim(100, 100, 100) x WHERE x.id = :first_id;
SELECT incident__notification_done(:first_id, false, 500, 'HTTP 500', 0, 2000, 86400);
SELECT next_attempt_at - last_attempt_at <= interval '2 s' AS capped FROM incident_notifications WHERE id = :first_id;
-- too old: dead, shown in incident_notification_dead; the next of the incident goes on
UPDATE incident_notification SET next_attempt_at = clock_timestamp(), queued_at = clock_timestamp() - interval '2 days'
 WHERE id = :first_id;
SELECT count(*) AS claimed FROM incident__notification_claim(100, 100, 100) x WHERE x.id = :first_id;
SELECT incident__notification_done(:first_id, false, 0, 'connect: Connection refused', 0, 600000, 86400);
SELECT channel, event_kind, attempts, last_error FROM incident_notification_dead;
SELECT c.name, n.event_kind FROM incident__notification_claim(100, 100, 100) x
  JOIN incident_notification n ON n.id = x.id JOIN incident_channel c ON c.id = n.channel_id;
-- retry queues it again; delivered ones are refused
SELECT incident_notification_retry(:first_id);
SELECT state, next_attempt_at <= clock_timestamp() AS due_now FROM incident_notifications WHERE id = :first_id;
SELECT count(*) AS claimed FROM incident__notification_claim(100, 100, 100) x WHERE x.id = :first_id;
SELECT incident__notification_done(:first_id, true, 200, NULL, 0, 600000, 86400);
SELECT state, last_error IS NULL AS cleared, delivered_at IS NOT NULL AS delivered FROM incident_notifications WHERE id = :first_id;
SELECT incident_notification_retry(:first_id);
SELECT incident_notification_retry(-1);
-- a result for a row no longer pending changes nothing
SELECT incident__notification_done(:first_id, false, 500, 'late', 0, 600000, 86400) AS late_result;
-- a crashed worker's claims are released
SELECT incident__notification_release();
SELECT count(*) FILTER (WHERE in_flight) AS in_flight FROM incident_notifications;

-- errors, with nothing written
SELECT incident_channel_webhook(NULL, 'https://hooks.example/x');
SELECT incident_channel_webhook('bad', NULL);
SELECT incident_channel_webhook('bad', 'ftp://hooks.example/x');
SELECT incident_channel_webhook('bad', 'https://u:secret-pw@hooks.example/x');
SELECT incident_channel_webhook('bad', 'https://hooks.example/a b');
SELECT incident_channel_webhook('bad', 'https://hooks.example/' || repeat('x', 3000));
SELECT incident_channel_email('bad', 'smtp://mail.example:587', 'incidents@example.com', '{oncall@example.com}',
                              smtp_password => 'no-user-for-me');
SELECT incident_channel_webhook('bad', 'https://hooks.example/x', min_severity => 'P9');
SELECT incident_channel_webhook('bad', 'https://hooks.example/x', events => '{declared,exploded}');
SELECT incident_channel_webhook('bad', 'https://hooks.example/x', secret => 'short-secret');
SELECT incident_channel_webhook('bad', 'https://hooks.example/x', timeout => '5 minutes');
SELECT incident_channel_webhook('bad', 'https://hooks.example/x', components => '{}');
SELECT count(*) AS written FROM incident_channel WHERE name = 'bad';
SELECT incident_channel_drop('nope');

-- who may do what: viewers see the views, not url, secret or body; admins write channels
CREATE ROLE regress_notify_viewer IN ROLE incident_viewer;
CREATE ROLE regress_notify_admin IN ROLE incident_admin;
SET ROLE regress_notify_viewer;
SELECT count(*) > 0 AS sees_deliveries FROM incident_notifications;
SELECT name FROM incident_channel ORDER BY name LIMIT 1;
SELECT url FROM incident_channel;
SELECT secret FROM incident_channel;
SELECT body FROM incident_notification;
SELECT incident_channel_webhook('mine', 'https://hooks.example/mine');
SELECT incident_notification_retry(1);
SET ROLE regress_notify_admin;
SELECT incident_channel_webhook('mine', 'https://hooks.example/mine', secret => 'a-secret-of-some-length') > 0 AS created;
SELECT count(*) AS urls FROM incident_channel WHERE url LIKE 'https://%';
SELECT incident_channel_drop('mine');
-- an admin reads the outbox's bodies and deletes dead letters (none here), but writes no row
SELECT count(body) > 0 AS reads_bodies FROM incident_notification;
DELETE FROM incident_notification WHERE state = 'dead';
UPDATE incident_notification SET state = 'delivered';
RESET ROLE;
DROP ROLE regress_notify_viewer, regress_notify_admin;

-- dropping a channel drops its deliveries
SELECT count(*) AS before FROM incident_notification WHERE channel_id = :all_id;
SELECT incident_channel_drop('all');
SELECT count(*) AS after FROM incident_notification WHERE channel_id = :all_id;

-- the worker's sweep, on the test clock: escalation levels fire when due,
-- once each, missed ones one after the other; acknowledging stops them
SELECT incident_channel_webhook('all', 'https://hooks.example/all');
INSERT INTO incident_responder (name, email, chat) VALUES ('Omar', 'omar@example.com', '@omar');
INSERT INTO incident_escalation_policy (name, description) VALUES ('regress', 'three levels');
INSERT INTO incident_escalation_level (policy, level, delay, target_type, target)
VALUES ('regress', 1, '0 minutes', 'responder', 'Omar'), ('regress', 2, '10 minutes', 'responder', 'Omar'),
       ('regress', 3, '20 minutes', 'responder', 'Omar');
UPDATE incident_severity SET escalation_policy = 'regress' WHERE severity = 'P1';
UPDATE incident_severity SET escalation_policy = NULL WHERE severity <> 'P1';
-- the open incidents of before are out of the way
SELECT count(incident_resolve(code, 'regress')) AS resolved_before FROM incident WHERE status NOT IN ('resolved', 'closed');
SET pg_incident.clock = '2026-05-05 09:00:00+00';
SELECT incident_declare('P1', 'Orders fail') AS esc \gset
SELECT * FROM incident__sweep();
SELECT * FROM incident__sweep();
SET pg_incident.clock = '2026-05-05 09:25:00+00';
SELECT * FROM incident__sweep();
SELECT at, actor, message, details->>'by_hand' AS by_hand, details->>'email' AS email
  FROM incident_timeline WHERE code = :'esc' AND kind = 'escalated' ORDER BY at, message;
SELECT channel, event_kind, count(*) FROM incident_notifications WHERE incident = :'esc' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT n.body::jsonb ->> 'text' LIKE '%To: Omar @omar%' AS slack_names_the_person
  FROM incident_notification n JOIN incident_channel c ON c.id = n.channel_id
 WHERE c.name = 'p2' AND n.event_kind = 'escalated' LIMIT 1;
-- a chat handle that would ping everyone is named, not pinged
SELECT substring(replace(incident__status_update_text(i, jsonb_populate_record(e, jsonb_build_object(
                     'details', e.details || jsonb_build_object('chat', h))), NULL, true), U&'\200B', '[zwsp]')
                 FROM 'To: [^\n]*') AS to_line
  FROM incident i JOIN incident_event e ON e.incident_id = i.id AND e.kind = 'escalated',
       unnest(ARRAY['@channel', '@Here', '@omar', '<@U024BE7LH>']) AS h
 WHERE i.code = :'esc' AND e.id = (SELECT min(id) FROM incident_event x WHERE x.incident_id = i.id AND x.kind = 'escalated');
-- the response deadline (15 minutes) passed unacknowledged: one breach reminder
SELECT message, details->>'reminder' AS reminder FROM incident_timeline WHERE code = :'esc' AND kind = 'reminder';
-- acknowledged: no more escalation; status updates overdue raise one reminder per 15 minutes
SELECT incident_acknowledge(:'esc', 'Omar');
SELECT incident_assign(:'esc', 'communications_lead', 'Omar');
SELECT incident_update(:'esc', 'investigating', 'Checking the payment gateway');
SELECT next_update_due FROM incident WHERE code = :'esc';
SELECT * FROM incident__sweep();
SET pg_incident.clock = '2026-05-05 09:41:00+00';
SELECT * FROM incident__sweep();
SELECT * FROM incident__sweep();
SET pg_incident.clock = '2026-05-05 09:50:00+00';
SELECT * FROM incident__sweep();
SET pg_incident.clock = '2026-05-05 09:56:00+00';
SELECT * FROM incident__sweep();
SELECT at, message, details->>'period' AS period, details->>'responder' AS responder
  FROM incident_timeline WHERE code = :'esc' AND kind = 'reminder' AND details->>'reminder' = 'update_overdue' ORDER BY at;
-- an update ends them
SELECT incident_update(:'esc', 'identified', 'The gateway rejects our certificate');
SELECT * FROM incident__sweep();
SELECT count(*) AS escalations FROM incident_timeline WHERE code = :'esc' AND kind = 'escalated';
-- an incident locked by another session's open transaction is skipped, not waited for
-- (isolation spec: test/specs/sweep_locked.spec)
SELECT incident_resolve(:'esc', 'Certificate renewed');
RESET pg_incident.clock;

-- email channels: the mail of an event, its envelope, no header from typed text
SET pg_incident.clock = '2026-05-06 10:00:00+00';
SELECT incident_channel_email('mail', 'smtp://mail.example:587', 'incidents@example.com',
                              '{oncall@example.com, cto@example.com}', min_severity => 'P1',
                              smtp_user => 'pg', smtp_password => 'mail-s3cret') > 0 AS created;
SELECT v.name, v.kind, v.format, v.min_severity, c.mail_from, c.mail_to, v.signed FROM incident_channels v
  JOIN incident_channel c USING (name) WHERE v.name = 'mail';
SELECT incident_declare('P1', 'Mail déjà vu: the relay rejects everything') AS m \gset
SELECT n.content_type, n.recipients, replace(n.body, E'\r\n', E'\n') AS mail
  FROM incident_notification n JOIN incident_channel c ON c.id = n.channel_id
 WHERE c.name = 'mail' AND n.incident_id = (SELECT id FROM incident WHERE code = :'m');
SELECT incident__mail_header(E'Title\r\nBcc: everyone@example.com') AS one_line,
       incident__mail_header('Ünïcode') AS encoded;
SELECT incident_channel_email('bad', 'https://mail.example', 'a@example.com', '{b@example.com}');
SELECT incident_channel_email('bad', 'smtp://mail.example', E'a@example.com\r\nBcc: x@example.com', '{b@example.com}');
SELECT incident_channel_email('bad', 'smtp://mail.example', 'a@example.com', '{"b@example.com, c@example.com"}');
SELECT incident_channel_email('bad', 'smtp://mail.example', 'a@example.com', '{}');
SELECT incident_channel_email('bad', 'smtp://mail.example', NULL, '{b@example.com}');
SELECT incident_channel_email('bad', 'smtp://u:p@mail.example', 'a@example.com', '{b@example.com}');
SELECT incident_channel_email('bad', 'smtp://mail.example', 'a@example.com', '{b@example.com}', smtp_password => E'pw\nRCPT TO:<x@y>');
SELECT count(*) AS written FROM incident_channel WHERE name = 'bad';
-- a webhook of the same name replaces the mail settings
SELECT incident_channel_webhook('mail', 'https://hooks.example/mail') > 0 AS replaced;
SELECT kind, format, mail_from, mail_to, smtp_user, smtp_password FROM incident_channel WHERE name = 'mail';
-- and what it had not sent is rendered again for it: json, no mail text, no recipients
SELECT n.content_type, n.recipients IS NULL AS no_recipients, (n.body::json)->>'event' AS event,
       (n.body::json)->'incident'->>'status' AS status, (n.body::json)->>'recorded_by' = current_user AS recorded_by
  FROM incident_notification n JOIN incident_channel c ON c.id = n.channel_id
 WHERE c.name = 'mail' AND n.state = 'pending' ORDER BY n.id;
SELECT incident_resolve(:'m', 'relay restarted');
RESET pg_incident.clock;

-- a mail's lines: CRLF whatever ended them, none over 200 characters
SELECT incident__mail_lines(E'a\rb\nc\r\nd') = E'a\r\nb\r\nc\r\nd' AS crlf;
SELECT max(length(l)) AS longest, count(*) AS lines, bool_and(l !~ '^ | $') AS broken_at_spaces
  FROM regexp_split_to_table(incident__mail_lines(repeat('word ', 100) || repeat('x', 450)), E'\r\n') AS l;
-- a long subject that is not ASCII: encoded words of at most 75 characters,
-- folded, every line under 78 with the header's name
SELECT max(length(l)) <= 78 AS short, count(*) > 1 AS folded,
       bool_and(length(substring(l FROM '=\?UTF-8\?B\?[^?]*\?=')) <= 75) AS words_short
  FROM regexp_split_to_table('Subject: ' || incident__mail_header(repeat('Ünïcode ', 30)), E'\r\n') AS l;

-- no ping of a whole channel from typed text, in Slack or in Mattermost and Rocket.Chat
SELECT replace(incident__slack_escape('DB down @channel @here @All @everyone <!channel> ops@allies.example'),
               U&'\200B', '[zwsp]') AS escaped;

-- an update typed on several lines cannot fake a line of the template
SELECT l.line
  FROM incident i JOIN incident_event e ON e.incident_id = i.id AND e.kind = 'declared',
       regexp_split_to_table(incident__status_update_text(i,
           jsonb_populate_record(e, jsonb_build_object('kind', 'status_update', 'message', E'done\nStatus: Resolved\r\nNext Update: never')),
           NULL, false), E'\n') WITH ORDINALITY AS l(line, n)
 WHERE i.code = :'esc' AND l.line ~ '^ *(Status|Next Update|Actions):' ORDER BY l.n;

-- a delivery in flight is not queued again: it would go twice
SELECT incident_channel_webhook('inflight', 'https://hooks.example/inflight') > 0 AS created;
SELECT incident_declare('P3', 'Retried while in flight') AS r \gset
SELECT count(*) AS claimed FROM incident__notification_claim(1000, 1000, 1000) WHERE url = 'https://hooks.example/inflight';
SELECT incident_notification_retry((SELECT n.id FROM incident_notification n JOIN incident_channel c ON c.id = n.channel_id
                                     WHERE c.name = 'inflight'));
-- a stale claim (a crashed worker's) may be
UPDATE incident_notification n SET claimed_at = claimed_at - interval '2 minutes'
  FROM incident_channel c WHERE c.id = n.channel_id AND c.name = 'inflight';
SELECT incident_notification_retry((SELECT n.id FROM incident_notification n JOIN incident_channel c ON c.id = n.channel_id
                                     WHERE c.name = 'inflight')) AS retried;

-- a channel replaced while a delivery is in flight: the failed attempt is
-- rendered again for the new channel, so the retry does not post the old kind
SELECT incident_channel_webhook('swap', 'https://hooks.example/swap', format => 'slack', events => '{declared}') > 0 AS created;
SELECT incident_declare('P3', 'Swapped while in flight') AS sw \gset
SELECT id AS swap_id FROM incident__notification_claim(1000, 1000, 1000) WHERE url = 'https://hooks.example/swap' \gset
SELECT incident_channel_webhook('swap', 'https://hooks.example/swap', format => 'json', events => '{declared}') > 0 AS replaced;
SELECT content_type, body::jsonb ? 'text' AS still_slack FROM incident_notification WHERE id = :swap_id;
SELECT incident__notification_done(:swap_id, false, 500, 'HTTP 500', NULL, 60000, 86400) AS state;
SELECT content_type, (body::json)->>'event' AS event, body::jsonb ? 'text' AS still_slack
  FROM incident_notification WHERE id = :swap_id;
SELECT incident_channel_drop('swap');
SELECT incident_resolve(:'sw', 'done');

-- rows of a channel that is gone (written alongside its drop) are pruned
INSERT INTO incident_notification (channel_id, event_id, incident_id, event_kind, body, content_type, created_at,
                                   queued_at, next_attempt_at)
SELECT -1, e.id, e.incident_id, e.kind, '{}', 'application/json', e.at, e.at, e.at
  FROM incident_event e WHERE e.incident_id = (SELECT id FROM incident WHERE code = :'r');
SELECT incident__notification_prune(interval '1 day') >= 1 AS pruned;
SELECT NOT EXISTS (SELECT FROM incident_notification WHERE channel_id = -1) AS none_left;
SELECT incident_resolve(:'r', 'done');

-- the envelope's times are UTC whatever the TimeZone of the session that queued it
SET TimeZone = 'Asia/Riyadh';
SELECT incident_declare('P1', 'envelope time zone') AS tz \gset
SELECT n.body::jsonb ->> 'at' LIKE '2026-%+00:00' AS at_utc,
       n.body::jsonb -> 'incident' ->> 'declared_at' LIKE '%+00:00' AS declared_utc,
       n.body::jsonb -> 'incident' -> 'clocks' ->> 'response_due' LIKE '%+00:00' AS clock_utc
  FROM incident_notification n JOIN incident_channel c ON c.id = n.channel_id
 WHERE c.format = 'json' AND n.incident_id = (SELECT id FROM incident WHERE code = :'tz') AND n.event_kind = 'declared'
 LIMIT 1;
SELECT incident_resolve(:'tz', 'done');
RESET TimeZone;
