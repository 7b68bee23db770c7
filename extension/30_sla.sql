/* extension/30_sla.sql: SLA clocks counted in business calendars.
 *
 * Calendars (a time zone, weekly working spans in local wall-clock time,
 * holidays) are rows an incident_admin inserts; "24x7" is seeded and is every
 * severity's calendar until one is set to another. Deadline arithmetic is in
 * C (src/sla.c): incident_calendar_add, incident_calendar_working_time and
 * incident_sla_deadline. incident__deadline, through which every lifecycle
 * function computes its clocks, counts them in the severity's calendar.
 * incident_sla shows every clock of every incident and incident_sla_compliance
 * the share of clocks met per month, severity and clock.
 */

------------------------------------------------------------------------------
-- Calendars
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_calendar (
    name        text PRIMARY KEY,
    time_zone   text NOT NULL,
    description text,
    is_default  boolean NOT NULL DEFAULT false
);

COMMENT ON TABLE @extschema@.incident_calendar IS
'Business calendars in which SLA clocks are counted: a name and an IANA time zone; working hours in incident_calendar_hours, holidays in incident_calendar_holiday. "24x7" is seeded. Editable by incident_admin.';
COMMENT ON COLUMN @extschema@.incident_calendar.name IS 'The calendar''s name, as incident_severity.calendar and incident_sla_deadline() take it.';
COMMENT ON COLUMN @extschema@.incident_calendar.time_zone IS 'IANA time zone (a name from pg_timezone_names) in which the working hours and holidays are local times and days.';
COMMENT ON COLUMN @extschema@.incident_calendar.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';

CREATE TABLE @extschema@.incident_calendar_hours (
    calendar    text NOT NULL REFERENCES @extschema@.incident_calendar ON UPDATE CASCADE ON DELETE CASCADE,
    dow         int NOT NULL CHECK (dow BETWEEN 0 AND 6),
    starts      time NOT NULL,
    ends        time NOT NULL,
    is_default  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (calendar, dow, starts),
    CHECK (starts < ends)
);

COMMENT ON TABLE @extschema@.incident_calendar_hours IS
'Weekly working hours of each calendar: spans [starts, ends) of local wall-clock time on a day of the week; several spans a day, none overlapping; a span ends at the latest at 24:00. Editable by incident_admin.';
COMMENT ON COLUMN @extschema@.incident_calendar_hours.dow IS 'Day of the week, 0 = Sunday .. 6 = Saturday, as EXTRACT(dow FROM ...).';
COMMENT ON COLUMN @extschema@.incident_calendar_hours.starts IS 'Local time at which the span starts (inclusive).';
COMMENT ON COLUMN @extschema@.incident_calendar_hours.ends IS 'Local time at which the span ends (exclusive); 24:00 for the end of the day. A span across midnight is two rows: one to 24:00, one from 00:00 of the next day.';
COMMENT ON COLUMN @extschema@.incident_calendar_hours.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';

CREATE TABLE @extschema@.incident_calendar_holiday (
    calendar    text NOT NULL REFERENCES @extschema@.incident_calendar ON UPDATE CASCADE ON DELETE CASCADE,
    day         date NOT NULL CHECK (pg_catalog.isfinite(day)),
    yearly      boolean NOT NULL DEFAULT false,
    name        text,
    PRIMARY KEY (calendar, day)
);

COMMENT ON TABLE @extschema@.incident_calendar_holiday IS
'Holidays of each calendar: local days with no working time. Editable by incident_admin.';
COMMENT ON COLUMN @extschema@.incident_calendar_holiday.day IS 'The holiday''s date; with yearly, only its month and day count.';
COMMENT ON COLUMN @extschema@.incident_calendar_holiday.yearly IS 'True: a holiday on this month and day every year (29 February: only in leap years); false: on this date only.';
COMMENT ON COLUMN @extschema@.incident_calendar_holiday.name IS 'What the holiday is, for people.';

INSERT INTO @extschema@.incident_calendar (name, time_zone, description, is_default)
VALUES ('24x7', 'UTC', 'Around the clock, every day: deadlines are plain timestamptz + interval.', true);
INSERT INTO @extschema@.incident_calendar_hours (calendar, dow, starts, ends, is_default)
SELECT '24x7', d, '00:00', '24:00', true FROM pg_catalog.generate_series(0, 6) AS d;

------------------------------------------------------------------------------
-- Validation: clear errors, nothing written
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__span_text(starts time, ends time)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.regexp_replace(starts::text, ':00$', '') || '-'
        || pg_catalog.regexp_replace(ends::text, ':00$', '')
$$;

COMMENT ON FUNCTION @extschema@.incident__span_text(time, time) IS
'Internal: a working span as people write it, such as 09:00-17:00.';

CREATE FUNCTION @extschema@.incident__calendar_check()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.name IS NULL OR NEW.name !~ '^[^[:space:]](.*[^[:space:]])?$' OR pg_catalog.length(NEW.name) > 63 THEN
        RAISE EXCEPTION 'invalid calendar name "%"', @extschema@.incident__quote(NEW.name)
            USING ERRCODE = 'check_violation',
                  DETAIL = 'A calendar name has 1 to 63 characters and does not start or end with a blank.',
                  HINT = 'Give a name such as "office-berlin".';
    END IF;
    PERFORM @extschema@.incident__require_timezone(NEW.time_zone, pg_catalog.format('calendar "%s"', NEW.name));
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__calendar_check() IS
'Internal trigger: a calendar needs a sensible name and a time zone PostgreSQL knows.';

CREATE FUNCTION @extschema@.incident__calendar_hours_check()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    days constant text[] := ARRAY['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
    other @extschema@.incident_calendar_hours;
BEGIN
    -- serializes changes to one calendar's hours, so that the overlap check holds
    PERFORM FROM @extschema@.incident_calendar c WHERE c.name = NEW.calendar FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'calendar "%" does not exist', @extschema@.incident__quote(NEW.calendar)
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Insert the calendar into incident_calendar first.';
    END IF;
    IF NEW.dow IS NULL OR NEW.dow NOT BETWEEN 0 AND 6 THEN
        RAISE EXCEPTION 'invalid day of week % for calendar "%"', coalesce(NEW.dow::text, 'NULL'), NEW.calendar
            USING ERRCODE = 'check_violation',
                  HINT = 'Days of the week are 0 (Sunday) to 6 (Saturday).';
    END IF;
    IF NEW.starts IS NULL OR NEW.ends IS NULL THEN
        RAISE EXCEPTION 'working hours of calendar "%" on % need a start and an end', NEW.calendar, days[NEW.dow + 1]
            USING ERRCODE = 'not_null_violation',
                  HINT = 'Give both, such as starts => ''09:00'', ends => ''17:00''.';
    END IF;
    IF NEW.starts >= NEW.ends THEN
        RAISE EXCEPTION 'invalid working hours % for calendar "%" on %',
                        @extschema@.incident__span_text(NEW.starts, NEW.ends), NEW.calendar, days[NEW.dow + 1]
            USING ERRCODE = 'check_violation',
                  DETAIL = 'A span starts before it ends, within one day; it may end at 24:00.',
                  HINT = 'For hours across midnight, enter two spans: one ending at 24:00 and one starting at 00:00 on the next day.';
    END IF;
    SELECT * INTO other FROM @extschema@.incident_calendar_hours h
     WHERE h.calendar = NEW.calendar AND h.dow = NEW.dow
       AND h.starts < NEW.ends AND NEW.starts < h.ends
       AND (TG_OP = 'INSERT' OR (h.calendar, h.dow, h.starts) <> (OLD.calendar, OLD.dow, OLD.starts))
     ORDER BY h.starts LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'working hours % overlap % of calendar "%" on %',
                        @extschema@.incident__span_text(NEW.starts, NEW.ends),
                        @extschema@.incident__span_text(other.starts, other.ends), NEW.calendar, days[NEW.dow + 1]
            USING ERRCODE = 'exclusion_violation',
                  DETAIL = 'The spans of a day must not overlap; they may touch, one ending when the next starts.',
                  HINT = 'Change or delete the existing span first, or enter the hours not covered yet.';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__calendar_hours_check() IS
'Internal trigger: a working span belongs to a calendar that exists, lies within one day (starts < ends <= 24:00) and overlaps no other span of its day.';

CREATE FUNCTION @extschema@.incident__calendar_hours_keep()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    users text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.calendar = OLD.calendar THEN
        RETURN NULL;
    END IF;
    -- the calendar itself was renamed or deleted: its foreign keys decide
    IF NOT EXISTS (SELECT FROM @extschema@.incident_calendar c WHERE c.name = OLD.calendar) THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT FROM @extschema@.incident_calendar_hours h WHERE h.calendar = OLD.calendar) THEN
        RETURN NULL;
    END IF;
    SELECT pg_catalog.string_agg(s.severity, ', ' ORDER BY s.severity) INTO users
      FROM @extschema@.incident_severity s WHERE s.calendar = OLD.calendar;
    IF users IS NOT NULL THEN
        RAISE EXCEPTION 'calendar "%" would have no working hours', OLD.calendar
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format(CASE WHEN users LIKE '%,%' THEN 'Severities %s count their deadlines in it.'
                                                  ELSE 'Severity %s counts its deadlines in it.' END, users),
                  HINT = 'Give those severities another calendar first (UPDATE incident_severity SET calendar = ...), or keep at least one span.';
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__calendar_hours_keep() IS
'Internal trigger: refuses to take the last working span away from a calendar that a severity uses.';

CREATE FUNCTION @extschema@.incident__calendar_holiday_check()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM @extschema@.incident_calendar c WHERE c.name = NEW.calendar) THEN
        RAISE EXCEPTION 'calendar "%" does not exist', @extschema@.incident__quote(NEW.calendar)
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Insert the calendar into incident_calendar first.';
    END IF;
    IF NEW.day IS NULL OR NOT pg_catalog.isfinite(NEW.day) THEN
        RAISE EXCEPTION 'invalid holiday "%" for calendar "%"', coalesce(NEW.day::text, 'NULL'), NEW.calendar
            USING ERRCODE = 'check_violation',
                  HINT = 'Give a date such as ''2026-12-25''; set yearly to repeat it every year.';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__calendar_holiday_check() IS
'Internal trigger: a holiday belongs to a calendar that exists and falls on a finite date.';

CREATE FUNCTION @extschema@.incident__severity_calendar_check()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM @extschema@.incident_calendar c WHERE c.name = NEW.calendar) THEN
        RAISE EXCEPTION 'calendar "%" does not exist', @extschema@.incident__quote(NEW.calendar)
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = pg_catalog.format('Severity %s was to count its deadlines in it.', NEW.severity),
                  HINT = 'See incident_calendar for the calendars; "24x7" is open around the clock.';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__severity_calendar_check() IS
'Internal trigger: a severity''s calendar must exist.';


-- "restore" sorts before "validate": a pg_dump restore of an edited seeded
-- row replaces the seeded one before it could be taken for an overlap.
SELECT @extschema@.incident__seeded_table('@extschema@.incident_calendar', 'name');
CREATE TRIGGER incident_calendar_validate
    BEFORE INSERT OR UPDATE ON @extschema@.incident_calendar
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__calendar_check();
CREATE TRIGGER incident_calendar_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.incident_calendar
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__config_changed();

SELECT @extschema@.incident__seeded_table('@extschema@.incident_calendar_hours', 'calendar', 'dow', 'starts');
CREATE TRIGGER incident_calendar_hours_validate
    BEFORE INSERT OR UPDATE ON @extschema@.incident_calendar_hours
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__calendar_hours_check();
CREATE TRIGGER incident_calendar_hours_keep
    AFTER UPDATE OR DELETE ON @extschema@.incident_calendar_hours
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__calendar_hours_keep();
CREATE TRIGGER incident_calendar_hours_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.incident_calendar_hours
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__config_changed();

CREATE TRIGGER incident_calendar_holiday_validate
    BEFORE INSERT OR UPDATE ON @extschema@.incident_calendar_holiday
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__calendar_holiday_check();
CREATE TRIGGER incident_calendar_holiday_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.incident_calendar_holiday
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__config_changed();

------------------------------------------------------------------------------
-- Each severity counts its clocks in a calendar
------------------------------------------------------------------------------

ALTER TABLE @extschema@.incident_severity
    ADD COLUMN calendar text NOT NULL DEFAULT '24x7'
        REFERENCES @extschema@.incident_calendar ON UPDATE CASCADE;

COMMENT ON COLUMN @extschema@.incident_severity.calendar IS
'Calendar in whose working time the response, update and review clocks of incidents of this severity run; 24x7 (plain elapsed time) unless set to a business calendar.';

CREATE TRIGGER incident_severity_calendar
    BEFORE INSERT OR UPDATE OF calendar ON @extschema@.incident_severity
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__severity_calendar_check();

------------------------------------------------------------------------------
-- Working-time arithmetic (src/sla.c)
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident_calendar_add(calendar text, start timestamptz, span interval)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'incident_calendar_add'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_calendar_add(text, timestamptz, interval) IS
'The instant at which span of the calendar''s working time has passed since start (a day of span is 24 working hours, a month 30 days); a calendar open around the clock without holidays gives start + span.';

CREATE FUNCTION @extschema@.incident_calendar_working_time(calendar text, from_time timestamptz, to_time timestamptz)
RETURNS interval
AS 'MODULE_PATHNAME', 'incident_calendar_working_time'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_calendar_working_time(text, timestamptz, timestamptz) IS
'The calendar''s working time between from_time (inclusive) and to_time (exclusive), in hours; negative if to_time is earlier.';

CREATE FUNCTION @extschema@.incident_sla_deadline(severity text, start timestamptz)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'incident_sla_deadline'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_sla_deadline(text, timestamptz) IS
'The response deadline of an incident of this severity (P1..P4 or critical/high/medium/low) declared at start: start plus the severity''s response_time, counted in the severity''s calendar. NULL if start is NULL.';

CREATE FUNCTION @extschema@.incident_sla_deadline(severity text, start timestamptz, calendar text)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'incident_sla_deadline'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_sla_deadline(text, timestamptz, text) IS
'The response deadline of an incident of this severity declared at start, counted in the working time of the given calendar (the severity''s when calendar is NULL). NULL if start is NULL.';

CREATE FUNCTION @extschema@.incident__deadline(severity text, clock text, start timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sev @extschema@.incident_severity;
    span interval;
BEGIN
    IF start IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO sev FROM @extschema@.incident_severity s WHERE s.severity = incident__deadline.severity;
    span := CASE clock WHEN 'response' THEN sev.response_time
                       WHEN 'update' THEN sev.update_every
                       WHEN 'pir' THEN sev.pir_due END;
    IF sev.calendar = '24x7' THEN
        RETURN @extschema@.incident_calendar_add('24x7', start, span);
    END IF;
    -- A declaration must not fail in the middle of an outage because a
    -- calendar has no working time (no hours yet, or holidays all year):
    -- count around the clock instead, and say so.
    BEGIN
        RETURN @extschema@.incident_calendar_add(sev.calendar, start, span);
    EXCEPTION WHEN object_not_in_prerequisite_state OR datetime_field_overflow THEN
        RAISE WARNING 'calendar "%" of severity % has no working time; the % clock is counted around the clock',
                      sev.calendar, sev.severity, clock
            USING DETAIL = SQLERRM,
                  HINT = 'Add working hours to the calendar, or set the severity''s calendar to "24x7".';
        RETURN @extschema@.incident_calendar_add('24x7', start, span);
    END;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__deadline(text, text, timestamptz) IS
'Internal: when a clock (response, update or pir) of an incident of this severity started at start falls due, counted in the working time of the severity''s calendar (around the clock, with a WARNING, when that calendar has no working time). Every lifecycle function computes its deadlines here.';

------------------------------------------------------------------------------
-- Every clock of every incident, and monthly compliance
------------------------------------------------------------------------------

CREATE VIEW @extschema@.incident_sla AS
WITH clocks AS (
    SELECT i.id, i.code, i.severity, 'response'::text AS clock, 1 AS clock_no, 1::bigint AS seq,
           i.declared_at AS started_at, i.response_due AS due,
           coalesce(i.acknowledged_at, i.resolved_at) AS met_at
      FROM @extschema@.incident i
    UNION ALL
    SELECT i.id, i.code, i.severity, 'update', 2, u.seq, u.started_at, u.due, u.met_at
      FROM @extschema@.incident i
     CROSS JOIN LATERAL (
        SELECT pg_catalog.row_number() OVER (ORDER BY s.id) AS seq,
               s.at AS started_at,
               CASE WHEN s.next_id IS NULL AND i.resolved_at IS NULL THEN i.next_update_due
                    ELSE coalesce(
                        -- a severity change during the interval moved its deadline
                        (SELECT (c.details->>'next_update_due')::timestamptz
                           FROM @extschema@.incident_event c
                          WHERE c.incident_id = i.id AND c.kind = 'severity_changed'
                            AND c.id > s.id AND c.id < coalesce(s.next_id, r.id, 9223372036854775807)
                          ORDER BY c.id DESC LIMIT 1),
                        -- as recorded by the update that started it
                        (s.details->>'next_update_due')::timestamptz,
                        -- the declaration records none: as the severity's settings say now
                        (SELECT @extschema@.incident_calendar_add(sv.calendar, s.at, sv.update_every)
                           FROM @extschema@.incident_severity sv
                          WHERE sv.severity = coalesce(s.details->>'severity', i.severity)))
               END AS due,
               coalesce(s.next_at, i.resolved_at) AS met_at
          FROM (SELECT e.id, e.at, e.details,
                       pg_catalog.lead(e.id) OVER w AS next_id,
                       pg_catalog.lead(e.at) OVER w AS next_at
                  FROM @extschema@.incident_event e
                 WHERE e.incident_id = i.id AND e.kind IN ('declared', 'status_update')
                WINDOW w AS (ORDER BY e.id)) s
          LEFT JOIN LATERAL (SELECT min(e.id) AS id FROM @extschema@.incident_event e
                              WHERE e.incident_id = i.id AND e.kind = 'resolved') r ON true
     ) u
    UNION ALL
    SELECT i.id, i.code, i.severity, 'pir', 3, 1, i.resolved_at, i.pir_due, i.closed_at
      FROM @extschema@.incident i
     WHERE i.resolved_at IS NOT NULL
)
SELECT c.code,
       c.severity,
       c.clock,
       c.seq,
       c.started_at,
       c.due,
       c.met_at,
       c.due - coalesce(c.met_at, @extschema@.incident_now()) AS remaining,
       CASE WHEN coalesce(c.met_at, @extschema@.incident_now()) > c.due
            THEN coalesce(c.met_at, @extschema@.incident_now()) - c.due END AS overdue,
       @extschema@.incident_clock_state(c.due, c.due - c.started_at, c.met_at) AS state
  FROM clocks c
 ORDER BY c.id, c.clock_no, c.seq;

COMMENT ON VIEW @extschema@.incident_sla IS
'Every SLA clock of every incident, one row each: the response clock, one update clock per interval between status updates (from the declaration or an update to the next update or the resolution), and the post-incident review clock once resolved; with due time, met time, time remaining or overdue, and state ok, due_soon or breached.';
COMMENT ON COLUMN @extschema@.incident_sla.severity IS 'The incident''s current severity.';
COMMENT ON COLUMN @extschema@.incident_sla.clock IS 'response (acknowledge in time), update (post a status update in time) or pir (hold the post-incident review in time).';
COMMENT ON COLUMN @extschema@.incident_sla.seq IS 'Number of the interval for update clocks (1 from the declaration, 2 from the first update, ...); 1 for the other clocks.';
COMMENT ON COLUMN @extschema@.incident_sla.started_at IS 'When the clock started: the declaration (response, first update interval), the status update that began the interval, or the resolution (pir).';
COMMENT ON COLUMN @extschema@.incident_sla.due IS 'When the clock falls due, counted in the severity''s calendar; as stored on the incident and recorded in its timeline.';
COMMENT ON COLUMN @extschema@.incident_sla.met_at IS 'When the clock stopped: acknowledgement (or resolution without one) for response, the next status update (or the resolution) for update, closing the incident for pir; NULL while running.';
COMMENT ON COLUMN @extschema@.incident_sla.remaining IS 'due minus met_at, or minus incident_now() while running: time left, negative when late.';
COMMENT ON COLUMN @extschema@.incident_sla.overdue IS 'How late: met_at (or incident_now() while running) minus due when that is past due; NULL otherwise.';
COMMENT ON COLUMN @extschema@.incident_sla.state IS 'ok, due_soon (running, in the last quarter of the time between start and due) or breached (past due, or met late), from incident_clock_state().';

CREATE VIEW @extschema@.incident_sla_compliance AS
SELECT pg_catalog.date_trunc('month', s.started_at AT TIME ZONE @extschema@.incident_timezone())::date AS month,
       s.severity,
       s.clock,
       pg_catalog.count(*) AS total,
       pg_catalog.count(*) FILTER (WHERE s.met_at IS NOT NULL AND s.state = 'ok') AS met,
       pg_catalog.count(*) FILTER (WHERE s.state = 'breached') AS breached,
       pg_catalog.count(*) FILTER (WHERE s.met_at IS NULL AND s.state <> 'breached') AS running,
       pg_catalog.round(100.0 * pg_catalog.count(*) FILTER (WHERE s.met_at IS NOT NULL AND s.state = 'ok')
                        / nullif(pg_catalog.count(*) FILTER (WHERE s.state = 'breached' OR s.met_at IS NOT NULL), 0), 1)
           AS compliance_pct
  FROM @extschema@.incident_sla s
 GROUP BY 1, 2, 3
 ORDER BY 1, 2, pg_catalog.array_position(ARRAY['response', 'update', 'pir'], s.clock);

COMMENT ON VIEW @extschema@.incident_sla_compliance IS
'SLA compliance per month, severity and clock: how many clocks were met in time and how many breached, from incident_sla.';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.month IS 'First day of the month in which the clocks started, in pg_incident.timezone (as incident codes).';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.severity IS 'The incidents'' current severity.';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.clock IS 'response, update or pir.';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.total IS 'Clocks that started in the month: met + breached + running.';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.met IS 'Clocks stopped by their due time.';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.breached IS 'Clocks stopped late, or running past their due time.';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.running IS 'Clocks still running and not yet due: not counted in compliance_pct.';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.compliance_pct IS 'met / (met + breached) in percent, one decimal; NULL when nothing is decided yet.';

------------------------------------------------------------------------------
-- pg_dump and privileges
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_calendar_holiday', '');

GRANT SELECT ON @extschema@.incident_calendar, @extschema@.incident_calendar_hours,
                @extschema@.incident_calendar_holiday,
                @extschema@.incident_sla, @extschema@.incident_sla_compliance
   TO incident_viewer;
GRANT EXECUTE ON FUNCTION @extschema@.incident_calendar_add(text, timestamptz, interval),
                          @extschema@.incident_calendar_working_time(text, timestamptz, timestamptz),
                          @extschema@.incident_sla_deadline(text, timestamptz),
                          @extschema@.incident_sla_deadline(text, timestamptz, text)
   TO incident_viewer;
GRANT INSERT, UPDATE, DELETE ON @extschema@.incident_calendar, @extschema@.incident_calendar_hours,
                                @extschema@.incident_calendar_holiday
   TO incident_admin;
