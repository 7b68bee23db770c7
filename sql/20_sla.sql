-- SLA clocks on business calendars: working-time deadlines across days off,
-- holidays, DST changes and a Friday-Saturday weekend, checked by hand and
-- against a minute-by-minute reference in plain SQL; incident clocks on a
-- business calendar; incident_sla and compliance; bad calendar input.
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
-- a fixed role, so that actors in the output do not depend on the OS user
SET ROLE regress_incident_dba;
SET pg_incident.timezone = 'UTC';
SET pg_incident.clock = '2026-03-06 20:00:00+00';
SET TimeZone = 'UTC';

-- seeded: 24x7, every severity on it
SELECT name, time_zone, is_default FROM incident_calendar ORDER BY name;
SELECT dow, starts, ends, is_default FROM incident_calendar_hours WHERE calendar = '24x7' ORDER BY dow;
SELECT severity, calendar FROM incident_severity ORDER BY severity;

------------------------------------------------------------------------------
-- Calendars of the tests
------------------------------------------------------------------------------

-- New York office: Monday to Friday 09:00-12:00 and 13:00-17:00
INSERT INTO incident_calendar (name, time_zone, description) VALUES ('ny-office', 'America/New_York', 'NYC office hours');
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends)
SELECT 'ny-office', d, s, e FROM generate_series(1, 5) AS d, (VALUES ('09:00'::time, '12:00'::time), ('13:00', '17:00')) AS v(s, e);
INSERT INTO incident_calendar_holiday (calendar, day, yearly, name) VALUES
    ('ny-office', '2026-01-19', false, 'Martin Luther King Jr. Day'),
    ('ny-office', '2026-11-26', false, 'Thanksgiving'),
    ('ny-office', '2020-07-03', true, 'Day before Independence Day'),
    ('ny-office', '2020-12-25', true, 'Christmas Day');

-- New York night watch, every day 00:00-03:00 and 22:00-24:00: it spans the
-- hour the clocks skip in March and repeat in November (at 02:00)
INSERT INTO incident_calendar (name, time_zone) VALUES ('ny-night', 'America/New_York');
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends)
SELECT 'ny-night', d, s, e FROM generate_series(0, 6) AS d, (VALUES ('00:00'::time, '03:00'::time), ('22:00', '24:00')) AS v(s, e);
INSERT INTO incident_calendar_holiday (calendar, day, yearly) VALUES ('ny-night', '2000-01-01', true);

-- Berlin operations: Monday to Friday 08:00-18:00, and Sunday 00:00-04:00
-- (Berlin changes at 02:00 in March and 03:00 in October, on Sundays)
INSERT INTO incident_calendar (name, time_zone) VALUES ('berlin-ops', 'Europe/Berlin');
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends)
SELECT 'berlin-ops', d, time '08:00', time '18:00' FROM generate_series(1, 5) AS d
UNION ALL SELECT 'berlin-ops', 0, '00:00', '04:00';
INSERT INTO incident_calendar_holiday (calendar, day, yearly, name) VALUES
    ('berlin-ops', '2000-01-01', true, 'Neujahr'),
    ('berlin-ops', '2000-05-01', true, 'Tag der Arbeit'),
    ('berlin-ops', '2000-10-03', true, 'Tag der Deutschen Einheit'),
    ('berlin-ops', '2000-12-25', true, '1. Weihnachtstag'),
    ('berlin-ops', '2000-12-26', true, '2. Weihnachtstag'),
    ('berlin-ops', '2026-04-03', false, 'Karfreitag'),
    ('berlin-ops', '2026-04-06', false, 'Ostermontag');

-- Riyadh: Sunday to Thursday 08:00-16:00, the weekend is Friday and Saturday
INSERT INTO incident_calendar (name, time_zone) VALUES ('riyadh', 'Asia/Riyadh');
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends)
SELECT 'riyadh', d, '08:00', '16:00' FROM generate_series(0, 4) AS d;
INSERT INTO incident_calendar_holiday (calendar, day, yearly, name) VALUES ('riyadh', '2000-09-23', true, 'Saudi National Day');

-- 24x7 with one holiday: open around the clock otherwise, so not plain addition
INSERT INTO incident_calendar (name, time_zone) VALUES ('utc-but-new-year', 'UTC');
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends)
SELECT 'utc-but-new-year', d, '00:00', '24:00' FROM generate_series(0, 6) AS d;
INSERT INTO incident_calendar_holiday (calendar, day, yearly) VALUES ('utc-but-new-year', '2000-01-01', true);

------------------------------------------------------------------------------
-- Deadlines by hand (times in UTC; the comment says the local time)
------------------------------------------------------------------------------

-- 24x7 is plain addition
SELECT incident_calendar_add('24x7', '2026-03-06 20:00+00', '4 hours') AS plus_4h,
       incident_calendar_add('24x7', '2026-03-06 20:00+00', '7 days') AS plus_7d,
       incident_sla_deadline('P3', '2026-03-06 20:00+00') AS p3_default_calendar,
       incident_sla_deadline('critical', '2026-03-06 20:00:30.5+00') AS p1_with_fractions;

SELECT label, start, span, incident_calendar_add('ny-office', start, span) AS due,
       incident_calendar_add('ny-office', start, span) AT TIME ZONE 'America/New_York' AS due_local
  FROM (VALUES
    ('Tue 10:00 + 1h: same morning', '2026-03-03 15:00+00'::timestamptz, '1 hour'::interval),
    ('Tue 11:30 + 1h: over lunch', '2026-03-03 16:30+00', '1 hour'),
    ('Tue 12:15 (lunch) + 30min', '2026-03-03 17:15+00', '30 minutes'),
    ('Tue 15:00 + 2h: ends at 17:00 sharp', '2026-03-03 20:00+00', '2 hours'),
    ('Tue 17:00 (closing) + 1min', '2026-03-03 22:00+00', '1 minute'),
    ('Tue 07:00 (before opening) + 1h', '2026-03-03 12:00+00', '1 hour'),
    ('Fri 15:00 + 4h: over the weekend', '2026-01-09 20:00+00', '4 hours'),
    ('Sat 10:00 + 1h', '2026-01-10 15:00+00', '1 hour'),
    ('Fri 16:00 + 2h: MLK Monday is a holiday', '2026-01-16 21:00+00', '2 hours'),
    ('Thu 16:00 + 2h: yearly Christmas, Friday', '2026-12-24 21:00+00', '2 hours'),
    ('Thu 16:30 + 1h: yearly 3 July, Friday', '2026-07-02 20:30+00', '1 hour'),
    ('Wed 10:00 + 24 hours = 24 working hours', '2026-03-04 15:00+00', '24 hours'),
    ('Wed 10:00 + 1 day = 24 working hours too', '2026-03-04 15:00+00', '1 day'),
    ('zero working time is the start itself', '2026-03-07 15:00+00', '0')
  ) AS t(label, start, span);

-- DST in New York (2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST):
-- office hours keep their wall-clock times, so a weekend over a change is
-- an hour shorter or longer in UTC
SELECT label, start, incident_calendar_add('ny-office', start, '4 hours') AS due,
       incident_calendar_add('ny-office', start, '4 hours') AT TIME ZONE 'America/New_York' AS due_local,
       incident_calendar_add('ny-office', start, '4 hours') - start AS elapsed
  FROM (VALUES
    ('Fri 15:00 EST, spring weekend', '2026-03-06 20:00+00'::timestamptz),
    ('Fri 15:00 EST, the weekend before', '2026-02-27 20:00+00'),
    ('Fri 15:00 EDT, autumn weekend', '2026-10-30 19:00+00'),
    ('Fri 15:00 EDT, the weekend before', '2026-10-23 19:00+00')
  ) AS t(label, start);

-- the night watch over the changes: the skipped hour has no working time, the
-- repeated one counts twice (the wall clock shows it twice)
SELECT day, incident_calendar_working_time('ny-night', (day + time '00:00') AT TIME ZONE 'America/New_York',
                                           (day + time '03:00') AT TIME ZONE 'America/New_York') AS from_0_to_3,
       incident_calendar_working_time('ny-night', (day + time '00:00') AT TIME ZONE 'America/New_York',
                                      (day + 1 + time '00:00') AT TIME ZONE 'America/New_York') AS whole_day
  FROM (VALUES ('2026-03-07'::date), ('2026-03-08'), ('2026-10-31'), ('2026-11-01')) AS t(day);
SELECT label, start, incident_calendar_add('ny-night', start, span) AS due,
       incident_calendar_add('ny-night', start, span) AT TIME ZONE 'America/New_York' AS due_local
  FROM (VALUES
    ('spring Sun 00:00 EST + 2h30: 03:00 comes after 01:59', '2026-03-08 05:00+00'::timestamptz, '2 hours 30 minutes'::interval),
    ('spring Sun 00:00 EST + 3h: on to 22:00', '2026-03-08 05:00+00', '3 hours'),
    ('spring Sun 01:30 EST + 30min: the jump', '2026-03-08 06:30+00', '30 minutes'),
    ('autumn Sun 00:30 EDT + 1h', '2026-11-01 04:30+00', '1 hour'),
    ('autumn Sun 00:30 EDT + 2h: 01:30 for the second time', '2026-11-01 04:30+00', '2 hours'),
    ('autumn Sun 01:30 EST (second pass) + 1h', '2026-11-01 06:30+00', '1 hour'),
    ('Dec 31 23:30 + 1h: New Year''s Day is off', '2027-01-01 04:30+00', '1 hour')
  ) AS t(label, start, span);

-- DST in Berlin (2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET):
-- the Sunday span 00:00-04:00 has 3 working hours in spring and 5 in autumn
SELECT day, incident_calendar_working_time('berlin-ops', (day + time '00:00') AT TIME ZONE 'Europe/Berlin',
                                           (day + 1 + time '00:00') AT TIME ZONE 'Europe/Berlin') AS sunday_hours
  FROM (VALUES ('2026-03-22'::date), ('2026-03-29'), ('2026-10-25'), ('2026-11-01')) AS t(day);
SELECT label, start, incident_calendar_add('berlin-ops', start, span) AS due,
       incident_calendar_add('berlin-ops', start, span) AT TIME ZONE 'Europe/Berlin' AS due_local
  FROM (VALUES
    ('spring Sun 01:00 CET + 1h30: 01:00-02:00, then 03:00-03:30', '2026-03-29 00:00+00'::timestamptz, '1 hour 30 minutes'::interval),
    ('spring Sun 01:00 CET + 4h: on to Monday 08:00', '2026-03-29 00:00+00', '4 hours'),
    ('autumn Sun 02:30 CEST + 1h: 02:30 CET', '2026-10-25 00:30+00', '1 hour'),
    ('autumn Sun 02:30 CEST + 2h30: 04:00 CET', '2026-10-25 00:30+00', '2 hours 30 minutes'),
    ('Fri 17:00 + 4h: holidays over Easter', '2026-04-02 15:00+00', '4 hours'),
    ('Thu 17:00 + 2h: 1 May (yearly) is a Friday', '2026-04-30 15:00+00', '2 hours')
  ) AS t(label, start, span);

-- Riyadh: the weekend is Friday and Saturday
SELECT label, start, incident_calendar_add('riyadh', start, span) AS due,
       to_char(incident_calendar_add('riyadh', start, span) AT TIME ZONE 'Asia/Riyadh', 'Dy YYYY-MM-DD HH24:MI') AS due_local
  FROM (VALUES
    ('Thu 15:00 + 2h', '2026-03-05 12:00+00'::timestamptz, '2 hours'::interval),
    ('Fri 10:00 + 1h', '2026-03-06 07:00+00', '1 hour'),
    ('Sat 23:00 + 8h: all of Sunday', '2026-03-07 20:00+00', '8 hours'),
    ('Sun 09:00 + 40h: one working week', '2026-03-08 06:00+00', '40 hours'),
    ('Tue 15:00 + 2h: National Day (yearly) is a Wednesday', '2026-09-22 12:00+00', '2 hours')
  ) AS t(label, start, span);

-- incident_sla_deadline: the severity's response time in a calendar
SELECT s.severity, s.response_time,
       incident_sla_deadline(s.severity, '2026-03-05 12:00+00') AS on_24x7,
       incident_sla_deadline(s.severity, '2026-03-05 12:00+00', 'riyadh') AS in_riyadh,
       incident_sla_deadline(lower(s.name), '2026-03-05 12:00+00', 'ny-office') AS in_new_york
  FROM incident_severity s ORDER BY s.severity;
SELECT incident_sla_deadline('P1', NULL) AS no_start,
       incident_sla_deadline('P1', '2026-03-05 12:00+00', NULL) AS null_calendar_is_the_severitys,
       incident_sla_deadline('P4', 'infinity') AS infinite_start;

-- working time between two instants, either way round
SELECT incident_calendar_working_time('ny-office', '2026-03-02 00:00+00', '2026-03-09 00:00+00') AS week,
       incident_calendar_working_time('ny-office', '2026-03-09 00:00+00', '2026-03-02 00:00+00') AS backwards,
       incident_calendar_working_time('riyadh', '2026-03-05 12:00+00', '2026-03-08 06:30+00') AS thu_to_sun,
       incident_calendar_working_time('24x7', '2026-03-05 12:00+00', '2026-03-08 06:30+00') AS around_the_clock;

------------------------------------------------------------------------------
-- Minute by minute: a reference in plain SQL for many random starts
------------------------------------------------------------------------------

-- A minute is working time when, on the calendar's wall clock, its day is no
-- holiday and its time lies in a span of its weekday. The deadline for W
-- minutes is right when C says iff exactly W of the minutes from the start up
-- to the deadline are working and the last of them is.
-- Working minutes of the week (minute of the local day, per weekday) and the
-- days off, yearly ones spelled out for 2025 to 2027:
CREATE TEMP TABLE ref_week AS
SELECT h.calendar, h.dow, mi AS minute_of_day
  FROM incident_calendar_hours h,
       generate_series((extract(epoch FROM h.starts) / 60)::int, (extract(epoch FROM h.ends) / 60)::int - 1) AS mi;
CREATE TEMP TABLE ref_off AS
SELECT d.calendar, d.day FROM incident_calendar_holiday d WHERE NOT d.yearly
UNION
SELECT d.calendar, make_date(y, extract(month FROM d.day)::int, extract(day FROM d.day)::int)
  FROM incident_calendar_holiday d, generate_series(2025, 2027) AS y
 WHERE d.yearly AND (extract(month FROM d.day), extract(day FROM d.day)) <> (2, 29);
ANALYZE ref_week;
ANALYZE ref_off;
CREATE FUNCTION pg_temp.works(cal text, m timestamptz) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT FROM ref_week w
                    WHERE w.calendar = cal AND w.dow = extract(dow FROM l)
                      AND w.minute_of_day = extract(hour FROM l) * 60 + extract(minute FROM l))
       AND NOT EXISTS (SELECT FROM ref_off o WHERE o.calendar = cal AND o.day = l::date)
      FROM (SELECT m AT TIME ZONE (SELECT c.time_zone FROM incident_calendar c WHERE c.name = cal) AS l) AS local
$$;

SELECT setseed(0.2026);
-- 300 starts per calendar, every other one within three days of a DST change
CREATE TEMP TABLE ref_case AS
SELECT c.calendar, g AS n,
       CASE WHEN g % 2 = 0
            THEN date_trunc('minute', c.changes[1 + (g / 2) % 2] + (random() * 6 - 3) * interval '1 day')
            ELSE date_trunc('minute', timestamptz '2026-01-01 00:00+00' + random() * interval '365 days') END AS start,
       (1 + floor(random() * 720))::int AS minutes
  FROM (VALUES ('ny-office', ARRAY['2026-03-08 07:00+00', '2026-11-01 06:00+00']::timestamptz[]),
               ('ny-night', ARRAY['2026-03-08 07:00+00', '2026-11-01 06:00+00']::timestamptz[]),
               ('berlin-ops', ARRAY['2026-03-29 01:00+00', '2026-10-25 01:00+00']::timestamptz[]),
               ('riyadh', ARRAY['2026-03-05 12:00+00', '2026-09-23 12:00+00']::timestamptz[]),
               ('utc-but-new-year', ARRAY['2026-12-31 12:00+00', '2026-01-01 00:00+00']::timestamptz[])) AS c(calendar, changes),
       generate_series(1, 300) AS g;
ALTER TABLE ref_case ADD COLUMN due timestamptz;
UPDATE ref_case SET due = incident_calendar_add(calendar, start, minutes * interval '1 minute');

CREATE TEMP TABLE ref_check AS
SELECT r.calendar, r.n, r.start, r.minutes, r.due,
       date_trunc('minute', r.due) = r.due AS on_a_minute,
       (SELECT count(*) FILTER (WHERE w.calendar IS NOT NULL AND o.calendar IS NULL)
          FROM generate_series(r.start, r.due - interval '1 minute', interval '1 minute') AS m
         CROSS JOIN LATERAL (SELECT m AT TIME ZONE c.time_zone AS l FROM incident_calendar c WHERE c.name = r.calendar) AS local
          LEFT JOIN ref_week w ON w.calendar = r.calendar AND w.dow = extract(dow FROM local.l)
                              AND w.minute_of_day = extract(hour FROM local.l) * 60 + extract(minute FROM local.l)
          LEFT JOIN ref_off o ON o.calendar = r.calendar AND o.day = local.l::date) AS working_minutes,
       pg_temp.works(r.calendar, r.due - interval '1 minute') AS last_minute_works,
       incident_calendar_working_time(r.calendar, r.start, r.due) AS measured
  FROM ref_case r;

SELECT calendar, count(*) AS starts,
       min(minutes) AS min_minutes, max(minutes) AS max_minutes,
       count(*) FILTER (WHERE NOT (on_a_minute AND working_minutes = minutes AND last_minute_works
                                   AND measured = minutes * interval '1 minute')) AS mismatches
  FROM ref_check GROUP BY calendar ORDER BY calendar;
-- a few of them, to see what was compared
SELECT calendar, start, minutes, due, working_minutes, last_minute_works
  FROM ref_check WHERE n IN (1, 2) ORDER BY calendar, n;
-- the mismatches themselves, if any
SELECT calendar, start, minutes, due, working_minutes, last_minute_works, measured
  FROM ref_check
 WHERE NOT (on_a_minute AND working_minutes = minutes AND last_minute_works AND measured = minutes * interval '1 minute')
 ORDER BY calendar, n LIMIT 5;

------------------------------------------------------------------------------
-- The cache follows changes to the calendar tables
------------------------------------------------------------------------------

SELECT incident_calendar_add('riyadh', '2026-03-05 12:00+00', '2 hours') AS before_holiday;
BEGIN;
INSERT INTO incident_calendar_holiday (calendar, day) VALUES ('riyadh', '2026-03-08');
SELECT incident_calendar_add('riyadh', '2026-03-05 12:00+00', '2 hours') AS sunday_off;
UPDATE incident_calendar SET time_zone = 'Europe/London' WHERE name = 'riyadh';
SELECT incident_calendar_add('riyadh', '2026-03-05 12:00+00', '2 hours') AS in_london_time;
ROLLBACK;
SELECT incident_calendar_add('riyadh', '2026-03-05 12:00+00', '2 hours') AS after_rollback;

------------------------------------------------------------------------------
-- Incident clocks on a business calendar
------------------------------------------------------------------------------

-- P3 counts in New York office hours; P1 stays around the clock
UPDATE incident_severity SET calendar = 'ny-office', pir_due = '35 hours' WHERE severity = 'P3';
SELECT severity, calendar, is_default FROM incident_severity ORDER BY severity;

-- Friday 2026-03-06 15:00 EST
SELECT incident_declare('P3', 'Cosmetic display issue on the lead form') AS p3 \gset
SELECT incident_declare('P1', 'Database unavailable') AS p1 \gset
SELECT code, severity, declared_at, response_due, next_update_due FROM incident WHERE code IN (:'p3', :'p1') ORDER BY code;

-- acknowledged on Monday 09:30 EDT (13:30 UTC), in time
SET pg_incident.clock = '2026-03-09 13:30:00+00';
SELECT incident_acknowledge(:'p3', 'jane');
SELECT incident_acknowledge(:'p1', 'john');
-- updates on Monday 10:00 EDT (late: the first was due Friday 17:00 EST) and
-- 14:30 EDT (late too: 10:00 plus 2 working hours is 12:00, the end of the
-- morning span)
SET pg_incident.clock = '2026-03-09 14:00:00+00';
SELECT incident_update(:'p3', 'investigating', 'Looking at the CSS');
SELECT next_update_due, next_update_due AT TIME ZONE 'America/New_York' AS local FROM incident WHERE code = :'p3';
SET pg_incident.clock = '2026-03-09 18:30:00+00';
SELECT incident_update(:'p3', 'identified', 'A stale stylesheet');

-- raised to P1: every clock is recomputed around the clock, and the event
-- says why and the new due times
SET pg_incident.clock = '2026-03-09 19:00:00+00';
SELECT incident_set_severity(:'p3', 'P1', 'The form does not submit at all');
SELECT severity, response_due, next_update_due FROM incident WHERE code = :'p3';
-- and back to P3: office hours again
SET pg_incident.clock = '2026-03-09 19:05:00+00';
SELECT incident_set_severity(:'p3', 'P3', 'Submission works; only the styling is off');
SELECT severity, response_due, next_update_due, next_update_due AT TIME ZONE 'America/New_York' AS local
  FROM incident WHERE code = :'p3';
SELECT kind, message, details FROM incident_timeline WHERE code = :'p3' AND kind = 'severity_changed' ORDER BY event_id;

-- resolved on Tuesday 10:00 EDT: the review is due 35 working hours later,
-- the Tuesday of the next week; P1 resolved at once (48 hours around the clock)
SET pg_incident.clock = '2026-03-10 14:00:00+00';
SELECT incident_resolve(:'p3', 'Stylesheet cache purged');
SELECT incident_update(:'p1', 'monitoring', 'Failover done');
SET pg_incident.clock = '2026-03-10 14:30:00+00';
SELECT incident_resolve(:'p1', 'Disk full');
SELECT code, pir_due, pir_due AT TIME ZONE 'America/New_York' AS local FROM incident WHERE code IN (:'p3', :'p1') ORDER BY code;
SET pg_incident.clock = '2026-03-13 15:00:00+00';
SELECT incident_close(:'p1');

-- a P3 declared on Monday 16:00 EDT, not acknowledged by Tuesday noon, when it falls due
SET pg_incident.clock = '2026-03-16 20:00:00+00';
SELECT incident_declare('P3', 'Individual user account issue') AS p3b \gset

SET pg_incident.clock = '2026-03-17 16:00:00+00';
SELECT code, severity, clock, seq, started_at, due, met_at, remaining, overdue, state
  FROM incident_sla WHERE code IN (:'p3', :'p1', :'p3b');

-- compliance per month, severity and clock (only these three incidents are in March 2026)
SELECT * FROM incident_sla_compliance WHERE month = '2026-03-01';

------------------------------------------------------------------------------
-- Bad input: clear errors, nothing written
------------------------------------------------------------------------------

CREATE TEMP TABLE written AS
SELECT (SELECT md5(string_agg(c::text, ',' ORDER BY name)) FROM incident_calendar c) AS calendars,
       (SELECT md5(string_agg(h::text, ',' ORDER BY calendar, dow, starts)) FROM incident_calendar_hours h) AS hours,
       (SELECT md5(string_agg(d::text, ',' ORDER BY calendar, day)) FROM incident_calendar_holiday d) AS holidays,
       (SELECT md5(string_agg(s::text, ',' ORDER BY severity)) FROM incident_severity s) AS severities,
       (SELECT count(*) FROM incident) AS incidents,
       (SELECT count(*) FROM incident_event) AS events;

-- unknown calendars
SELECT incident_calendar_add('nowhere', '2026-03-05 12:00+00', '1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_sla_deadline('P3', '2026-03-05 12:00+00', 'nowhere');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_calendar_working_time('nowhere', '2026-03-05 12:00+00', '2026-03-06 12:00+00');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends) VALUES ('nowhere', 1, '09:00', '17:00');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_calendar_holiday (calendar, day) VALUES ('nowhere', '2026-12-25');
\echo :LAST_ERROR_SQLSTATE
UPDATE incident_severity SET calendar = 'nowhere' WHERE severity = 'P4';
\echo :LAST_ERROR_SQLSTATE

-- time zones and names
INSERT INTO incident_calendar (name, time_zone) VALUES ('mars', 'Mars/Olympus_Mons');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_calendar (name, time_zone) VALUES ('nozone', NULL);
\echo :LAST_ERROR_SQLSTATE
UPDATE incident_calendar SET time_zone = 'Europe/Atlantis' WHERE name = 'berlin-ops';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_calendar (name, time_zone) VALUES ('  ', 'UTC');
\echo :LAST_ERROR_SQLSTATE

-- working hours: overlapping, empty, inverted, a bad day
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends) VALUES ('ny-office', 1, '11:00', '14:00');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends) VALUES ('ny-office', 2, '08:00', '09:30');
\echo :LAST_ERROR_SQLSTATE
UPDATE incident_calendar_hours SET ends = '13:30' WHERE calendar = 'ny-office' AND dow = 3 AND starts = '09:00';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends) VALUES ('ny-office', 6, '10:00', '10:00');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends) VALUES ('ny-office', 6, '22:00', '06:00');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends) VALUES ('ny-office', 7, '09:00', '17:00');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends) VALUES ('ny-office', 6, NULL, '17:00');
\echo :LAST_ERROR_SQLSTATE
-- two new spans that overlap each other, in one statement
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends) VALUES ('ny-office', 6, '09:00', '12:00'), ('ny-office', 6, '11:00', '13:00');
\echo :LAST_ERROR_SQLSTATE

-- a calendar without working hours: refused when used, and a severity's
-- calendar cannot lose its last span
INSERT INTO incident_calendar (name, time_zone) VALUES ('no-hours', 'Europe/Berlin');
SELECT incident_calendar_add('no-hours', '2026-03-05 12:00+00', '1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_sla_deadline('P2', '2026-03-05 12:00+00', 'no-hours');
\echo :LAST_ERROR_SQLSTATE
-- around the clock a day is 24 hours, whatever the session's TimeZone: across
-- New York's spring change (2026-03-08) as in UTC
SET TimeZone = 'America/New_York';
SELECT incident_calendar_add('24x7', '2026-03-07 17:00+00', '1 day') AT TIME ZONE 'UTC' AS new_york_session;
SET TimeZone = 'UTC';
SELECT incident_calendar_add('24x7', '2026-03-07 17:00+00', '1 day') AT TIME ZONE 'UTC' AS utc_session;

-- a severity on such a calendar can still be declared in the middle of an
-- outage: its clocks are counted around the clock, with a warning
BEGIN;
UPDATE incident_severity SET calendar = 'no-hours' WHERE severity = 'P4';
SELECT incident_declare('P4', 'Documentation error') AS no_hours_code \gset
SELECT severity, response_due - declared_at AS response_in, next_update_due - declared_at AS update_in
  FROM incident WHERE code = :'no_hours_code';
ROLLBACK;
DELETE FROM incident_calendar_hours WHERE calendar = 'ny-office';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM incident_calendar WHERE name = 'ny-office';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM incident_calendar WHERE name = 'no-hours';

-- a calendar whose every working day is a holiday runs out of working time
INSERT INTO incident_calendar (name, time_zone) VALUES ('always-off', 'UTC');
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends) VALUES ('always-off', 1, '09:00', '17:00');
INSERT INTO incident_calendar_holiday (calendar, day, yearly)
SELECT 'always-off', d::date, true FROM generate_series(date '2024-01-01', '2024-12-31', '1 day') AS d;
SELECT incident_calendar_add('always-off', '2026-03-05 12:00+00', '1 hour');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM incident_calendar WHERE name = 'always-off';

-- working time to add, and severities
SELECT incident_calendar_add('ny-office', '2026-03-05 12:00+00', '-1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_calendar_working_time('ny-office', '-infinity', '2026-03-06 12:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_sla_deadline('P7', '2026-03-05 12:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_sla_deadline(NULL, '2026-03-05 12:00+00');
\echo :LAST_ERROR_SQLSTATE

-- nothing of the failed statements was written
SELECT w.calendars = (SELECT md5(string_agg(c::text, ',' ORDER BY name)) FROM incident_calendar c) AS calendars_unchanged,
       w.hours = (SELECT md5(string_agg(h::text, ',' ORDER BY calendar, dow, starts)) FROM incident_calendar_hours h) AS hours_unchanged,
       w.holidays = (SELECT md5(string_agg(d::text, ',' ORDER BY calendar, day)) FROM incident_calendar_holiday d) AS holidays_unchanged,
       w.severities = (SELECT md5(string_agg(s::text, ',' ORDER BY severity)) FROM incident_severity s) AS severities_unchanged,
       (SELECT count(*) FROM incident) - w.incidents AS new_incidents,
       (SELECT count(*) FROM incident_event) - w.events AS new_events
  FROM written w;

-- spans may touch: 12:00-13:00 fills the New York lunch break
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends) VALUES ('ny-office', 1, '12:00', '13:00');
SELECT incident_calendar_working_time('ny-office', '2026-03-09 00:00+00', '2026-03-10 00:00+00') AS monday;

-- renaming a calendar carries its hours, holidays and severities along
UPDATE incident_calendar SET name = 'nyc-office' WHERE name = 'ny-office';
SELECT (SELECT count(*) FROM incident_calendar_hours WHERE calendar = 'nyc-office') AS hours,
       (SELECT count(*) FROM incident_calendar_holiday WHERE calendar = 'nyc-office') AS holidays,
       (SELECT calendar FROM incident_severity WHERE severity = 'P3') AS p3_calendar;

-- leave the severities as seeded for the files that follow
UPDATE incident_severity SET calendar = '24x7', pir_due = '7 days' WHERE severity = 'P3';
-- back to the seeded values: the row may count as a default again (changing
-- only is_default does not clear it)
UPDATE incident_severity SET is_default = true WHERE severity = 'P3';
SELECT severity, calendar, pir_due, is_default FROM incident_severity ORDER BY severity;
