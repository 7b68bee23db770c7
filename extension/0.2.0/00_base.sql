/* extension/0.2.0/00_base.sql: what the other parts of 0.2.0 build on.
 *
 * 0.2.0 brings severity classification, SLA clocks on business calendars,
 * on-call rotations and escalation policies. Their timeline events need new
 * kinds.
 */

ALTER TABLE @extschema@.incident_event DROP CONSTRAINT incident_event_kind_check;
ALTER TABLE @extschema@.incident_event ADD CONSTRAINT incident_event_kind_check
    CHECK (kind IN ('declared', 'acknowledged', 'status_update', 'severity_changed', 'assigned', 'note',
                    'checklist', 'resolved', 'closed', 'escalated', 'reminder'));

COMMENT ON COLUMN @extschema@.incident_event.kind IS
'declared, acknowledged, status_update, severity_changed, assigned, note, checklist, resolved, closed, escalated or reminder.';
COMMENT ON COLUMN @extschema@.incident_timeline.kind IS
'declared, acknowledged, status_update, severity_changed, assigned, note, checklist, resolved, closed, escalated or reminder.';

-- Calendars and rotations name time zones; both check them here.

CREATE FUNCTION @extschema@.incident_timezone_valid(time_zone text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'incident_timezone_valid'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_timezone_valid(text) IS
'Whether PostgreSQL knows the time zone name (as in pg_timezone_names, e.g. Europe/Berlin).';

CREATE FUNCTION @extschema@.incident__require_timezone(time_zone text, what text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF time_zone IS NULL THEN
        RAISE EXCEPTION 'time zone of % must not be null', what
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a name from pg_timezone_names, such as "Europe/Berlin" or "UTC".';
    END IF;
    IF NOT @extschema@.incident_timezone_valid(time_zone) THEN
        RAISE EXCEPTION 'invalid time zone "%" for %', time_zone, what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a name from pg_timezone_names, such as "Europe/Berlin" or "UTC".';
    END IF;
    RETURN time_zone;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__require_timezone(text, text) IS
'Internal: the time zone name, or an error naming it and what it was given for (a calendar, a rotation).';

REVOKE ALL ON FUNCTION @extschema@.incident__require_timezone(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.incident_timezone_valid(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.incident_timezone_valid(text) TO incident_viewer;

-- Modules that compile a configuration table once per backend (the
-- classifier's rules, the calendars) learn of its changes through this
-- statement trigger.

CREATE FUNCTION @extschema@.incident__config_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'incident__config_changed'
LANGUAGE C;

COMMENT ON FUNCTION @extschema@.incident__config_changed() IS
'Internal trigger: after a change to a configuration table that backends cache (classification rules, calendars), tells every backend (this one at the end of the command, the others when the change commits) to read it again.';

REVOKE ALL ON FUNCTION @extschema@.incident__config_changed() FROM PUBLIC;
