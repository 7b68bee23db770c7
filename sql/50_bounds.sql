-- Bounds: every range the C code walks is bounded or refused with an error
-- that names the value; what remains long but legal is interrupted by
-- statement_timeout; errors quote a bounded prefix of a long value; exact
-- signal numbers; pg_incident.timezone takes what incident_timezone_valid
-- accepts.
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET ROLE regress_incident_dba;
SET TimeZone = 'UTC';

------------------------------------------------------------------------------
-- Working time: at most 100 years (36525 days) on a business calendar
------------------------------------------------------------------------------

-- a DST office calendar: Monday to Friday 09:00-17:00 in Berlin
INSERT INTO incident_calendar (name, time_zone) VALUES ('bounds-office', 'Europe/Berlin');
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends)
SELECT 'bounds-office', d, '09:00', '17:00' FROM generate_series(1, 5) AS d;

-- the call of the issue, which never returned: refused at once
SELECT incident_calendar_working_time('bounds-office', '2026-01-01', '294276-12-01');
\echo :LAST_ERROR_SQLSTATE
-- backwards too
SELECT incident_calendar_working_time('bounds-office', '294276-12-01', '2026-01-01');
\echo :LAST_ERROR_SQLSTATE
-- 36525 days is the limit: allowed; one second more is refused
SELECT incident_calendar_working_time('bounds-office', '2026-01-01', timestamptz '2026-01-01' + interval '36525 days') AS hundred_years;
SELECT incident_calendar_working_time('bounds-office', '2026-01-01', timestamptz '2026-01-01' + interval '36525 days 1 second');
\echo :LAST_ERROR_SQLSTATE
-- the last months of the timestamp range, where the zone library's
-- extrapolated transitions made the walk stand still (it never returned)
SELECT incident_calendar_working_time('bounds-office', '294276-06-01', '294276-12-01') AS end_of_range;
SELECT incident_calendar_working_time('bounds-office', '294177-01-01', '294276-12-01') AS last_century;
-- around the clock without holidays: plain elapsed time, no walk, no limit
SELECT incident_calendar_working_time('24x7', '2026-01-01', '294276-12-01') AS all_of_it;
-- except that the answer must be an interval
SELECT incident_calendar_working_time('24x7', '4713-01-01 BC', '294276-12-01');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_calendar_working_time('bounds-office', '-infinity', '2026-01-01');
\echo :LAST_ERROR_SQLSTATE

------------------------------------------------------------------------------
-- Deadlines: at most 100 years ahead on a business calendar
------------------------------------------------------------------------------

SELECT incident_calendar_add('bounds-office', '2026-01-01', '20 years') AS twenty_years_of_office_hours;
-- a span longer than 36525 days is refused before any walk
SELECT incident_calendar_add('bounds-office', '2026-01-01', '200 years');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_calendar_add('bounds-office', '2026-01-01', '100000000 years');
\echo :LAST_ERROR_SQLSTATE
-- 30 years of office hours take some 126 years of calendar: refused
SELECT incident_calendar_add('bounds-office', '2026-01-01', '30 years');
\echo :LAST_ERROR_SQLSTATE
-- beyond the range of timestamps
SELECT incident_calendar_add('bounds-office', '294276-06-01', '1 year');
\echo :LAST_ERROR_SQLSTATE
-- around the clock: plain arithmetic, as before
SELECT incident_calendar_add('24x7', '2026-01-01', '200 years') AS plain;
SELECT incident_calendar_add('24x7', '294276-06-01', '1 year');
\echo :LAST_ERROR_SQLSTATE
-- a negative span
SELECT incident_calendar_add('bounds-office', '2026-01-01', '-1 hour');
\echo :LAST_ERROR_SQLSTATE

------------------------------------------------------------------------------
-- A calendar with no working time: every day of the year is a holiday
------------------------------------------------------------------------------

INSERT INTO incident_calendar (name, time_zone) VALUES ('bounds-never', 'UTC');
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends)
SELECT 'bounds-never', d, '09:00', '17:00' FROM generate_series(0, 6) AS d;
INSERT INTO incident_calendar_holiday (calendar, day, yearly, name)
SELECT 'bounds-never', d, true, 'closed' FROM generate_series(date '2024-01-01', date '2024-12-31', interval '1 day') AS d;
SELECT incident_calendar_add('bounds-never', '2026-01-01', '1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_calendar_add('bounds-never', '2026-01-01', '0 hours') AS no_time_needed;
SELECT incident_calendar_working_time('bounds-never', '2026-01-01', '2125-01-01') AS none;
-- open on 29 February only: found three years on, well within the limit
DELETE FROM incident_calendar_holiday WHERE calendar = 'bounds-never' AND day = '2024-02-29';
SELECT incident_calendar_add('bounds-never', '2025-03-01', '1 hour') AS leap_day;

------------------------------------------------------------------------------
-- What stays long but legal is interrupted: a calendar with 500 spans a day
------------------------------------------------------------------------------

INSERT INTO incident_calendar (name, time_zone) VALUES ('bounds-dense', 'Europe/Berlin');
INSERT INTO incident_calendar_hours (calendar, dow, starts, ends)
SELECT 'bounds-dense', d, time '00:00' + i * interval '2 minutes', time '00:01' + i * interval '2 minutes'
  FROM generate_series(0, 6) AS d, generate_series(0, 499) AS i;
-- a week is quick
SELECT incident_calendar_working_time('bounds-dense', '2026-01-05', '2026-01-12') AS dense_week;
-- a century of 500 spans a day is some 18 million stretches (about a second)
SET statement_timeout = '200ms';
SELECT incident_calendar_working_time('bounds-dense', '2026-01-01', '2125-12-01');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_calendar_add('bounds-dense', '2026-01-01', '30 years');
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;

------------------------------------------------------------------------------
-- Signals: exact numbers
------------------------------------------------------------------------------

-- 1e-400 is a tiny positive number, not a float error
SELECT incident_classify('{"users_affected_pct": 1e-400}'::jsonb) AS tiny_pct,
       incident_classify('{"page_load_s": 1e-400}'::jsonb) AS tiny_load;
-- 100.0001 is out of range, and the message says 100.0001
SELECT incident_classify('{"users_affected_pct": 100.0001}'::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_classify('{"users_affected_pct": 100.0000}'::jsonb) AS hundred,
       incident_classify('{"page_load_s": 10.0000000000000000000001}'::jsonb) AS just_over_ten,
       incident_classify('{"users_affected_pct": 9.99999999999999999999}'::jsonb) AS just_under_ten;
SELECT incident_classify('{"page_load_s": 86400.000001}'::jsonb);
\echo :LAST_ERROR_SQLSTATE
-- a huge number: its first 64 characters
SELECT incident_classify('{"users_affected_pct": 1e400}'::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT incident_classify('{"page_load_s": -1e-400}'::jsonb);
\echo :LAST_ERROR_SQLSTATE
-- an unknown key is refused even with a null value
SELECT incident_classify('{"outage": null, "uptime": null}'::jsonb);
\echo :LAST_ERROR_SQLSTATE

------------------------------------------------------------------------------
-- Errors quote at most 64 characters of a value
------------------------------------------------------------------------------

-- an unknown signal named with 100 000 characters
SELECT incident_classify(jsonb_build_object(repeat('k', 100000), 1));
\echo :LAST_ERROR_SQLSTATE
-- signals that are a 1 MB array
SELECT incident_classify(to_jsonb(ARRAY[repeat('x', 1000000)]));
\echo :LAST_ERROR_SQLSTATE
-- a calendar named with 1 MB of multibyte characters
SELECT incident_calendar_add(repeat('ä', 1000000), '2026-01-01', '1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT incident_calendar_working_time(repeat('€', 65), '2026-01-01', '2026-01-02');
\echo :LAST_ERROR_SQLSTATE
-- settings
SELECT repeat('Mars/', 1000) AS x \gset
SET pg_incident.timezone = :'x';
SET pg_incident.clock = :'x';

-- the helper, incident__quote_prefix(text), as the SQL side will declare it
CREATE SCHEMA bounds;
CREATE FUNCTION bounds.quote_prefix(value text) RETURNS text
AS '$libdir/pg_incident', 'incident__quote_prefix' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
SELECT v AS value, bounds.quote_prefix(v) AS quoted
  FROM unnest(ARRAY['', 'short', repeat('a', 64)]) AS v;
SELECT length(v) AS value_chars, bounds.quote_prefix(v) AS quoted, length(bounds.quote_prefix(v)) AS quoted_chars
  FROM unnest(ARRAY[repeat('a', 65), repeat('ä', 64), repeat('ä', 65), repeat('€x', 40), repeat(chr(119070), 100), repeat('z', 1000000)]) AS v;
-- a long value stored compressed (toasted) is detoasted only as far as needed
CREATE TABLE bounds.big (v text);
INSERT INTO bounds.big VALUES (repeat('0123456789', 200000));
SELECT length(v), bounds.quote_prefix(v) FROM bounds.big;
DROP SCHEMA bounds CASCADE;

------------------------------------------------------------------------------
-- pg_incident.timezone takes what incident_timezone_valid accepts
------------------------------------------------------------------------------

SELECT z AS zone, incident_timezone_valid(z) AS valid
  FROM unnest(ARRAY['localtime', 'LocalTime', '+05', '-03', '5', 'UTC', 'Europe/Berlin', 'Mars/Olympus_Mons']) AS z;
SET pg_incident.timezone = 'localtime';
\echo :LAST_ERROR_SQLSTATE
SET pg_incident.timezone = 'LocalTime';
SET pg_incident.timezone = '+05';
SET pg_incident.timezone = '-03';
SET pg_incident.timezone = '5';
SET pg_incident.timezone = 'Mars/Olympus_Mons';
SET pg_incident.timezone = 'Europe/Berlin';
SHOW pg_incident.timezone;
SET pg_incident.timezone = '';
SHOW pg_incident.timezone;
RESET pg_incident.timezone;

DELETE FROM incident_calendar WHERE name LIKE 'bounds-%';
