-- Incident codes: INC-YYYY-MMDD-NNN, the day taken in pg_incident.timezone,
-- numbered per day from 001 without gaps.
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
-- a fixed role, so that actors in the output do not depend on the OS user
SET ROLE regress_incident_dba;
SET TimeZone = 'UTC';
SET pg_incident.timezone = 'UTC';

-- the day in UTC vs in Riyadh (UTC+3) vs in New York (UTC-5 in winter)
SET pg_incident.clock = '2026-04-10 22:30:00+00';
SELECT incident_declare('P3', 'Late evening in UTC') AS utc_code \gset
SET pg_incident.timezone = 'Asia/Riyadh';
SHOW pg_incident.timezone;
SELECT incident_timezone();
SELECT incident_declare('P3', 'Already tomorrow in Riyadh') AS riyadh_code \gset
SET pg_incident.timezone = 'America/New_York';
SET pg_incident.clock = '2026-01-11 03:30:00+00';
SELECT incident_declare('P3', 'Still yesterday in New York') AS ny_code \gset
SELECT :'utc_code' AS utc, :'riyadh_code' AS riyadh, :'ny_code' AS new_york;

-- empty means the server's zone (log_timezone), whatever the session's TimeZone
SET pg_incident.timezone = '';
SET TimeZone = 'Pacific/Kiritimati';
SELECT incident_timezone() = current_setting('log_timezone') AS server_zone,
       incident_timezone() <> current_setting('TimeZone') AS not_the_session_zone;
SET TimeZone = 'UTC';
SET pg_incident.timezone = 'UTC';

-- a new day starts at 001; numbers continue within a day
SET pg_incident.clock = '2026-06-01 00:00:00+00';
SELECT incident_declare('P4', 'first of June') AS a \gset
SET pg_incident.clock = '2026-06-01 23:59:59+00';
SELECT incident_declare('P4', 'second of June') AS b \gset
SET pg_incident.clock = '2026-06-02 00:00:00+00';
SELECT incident_declare('P4', 'first of the 2nd') AS c \gset
SELECT :'a' AS a, :'b' AS b, :'c' AS c;

-- a rolled-back declaration gives its number back: no gaps
SET pg_incident.clock = '2026-06-03 12:00:00+00';
SELECT incident_declare('P4', 'kept') AS kept1 \gset
BEGIN;
SELECT incident_declare('P4', 'rolled back');
ROLLBACK;
SELECT incident_declare('P4', 'kept too') AS kept2 \gset
SELECT :'kept1' AS kept1, :'kept2' AS kept2;
SELECT day, last_seq FROM incident_day_counter WHERE day = '2026-06-03';

-- a failed declaration gives nothing away either
SELECT incident_declare('P4', repeat('z', 500));
SELECT incident_declare('P4', 'after the failure') AS kept3 \gset
SELECT :'kept3' AS kept3;

-- past 999 a day's number grows a digit; codes stay unique and in order
SET pg_incident.clock = '2026-07-01 08:00:00+00';
SELECT count(DISTINCT incident_declare('P4', 'load ' || g)) FROM generate_series(1, 1001) g;
SELECT code FROM incident WHERE day = '2026-07-01' AND day_seq IN (1, 999, 1000, 1001) ORDER BY day_seq;
SELECT count(*) = max(day_seq) AS gap_free, count(DISTINCT code) = count(*) AS unique_codes
  FROM incident WHERE day = '2026-07-01';

-- the test clock and the day's zone belong to superusers: a responder cannot
-- move an incident to another day
CREATE ROLE regress_incident_codes_tester LOGIN IN ROLE incident_responder;
SET ROLE regress_incident_codes_tester;
SET pg_incident.clock = '2030-01-01 00:00:00+00';
\echo :LAST_ERROR_SQLSTATE
SET pg_incident.timezone = 'Pacific/Pago_Pago';
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_incident_dba;
DROP ROLE regress_incident_codes_tester;
SET pg_incident.clock = '';
SELECT incident_now() = now() AS real_time_again;
