/* extension/0.2.0/40_deleted_defaults.sql: pg_dump keeps the deletion of a seeded row.
 *
 * Seeded configuration rows (severities, checklists, classification rules,
 * the 24x7 calendar, team roles, the escalation policy) are made again by
 * CREATE EXTENSION when a dump is restored, so a row an admin deleted would
 * come back. Each deletion of such a table's row is remembered in
 * incident_deleted_default, which pg_dump keeps; restoring that table
 * deletes the seeded rows named there again.
 */

CREATE TABLE @extschema@.incident_deleted_default (
    table_name  text NOT NULL,
    key         jsonb NOT NULL CHECK (pg_catalog.jsonb_typeof(key) = 'object'),
    deleted_at  timestamptz NOT NULL DEFAULT @extschema@.incident_now(),
    deleted_by  text NOT NULL DEFAULT @extschema@.incident_invoker(),
    PRIMARY KEY (table_name, key)
);

COMMENT ON TABLE @extschema@.incident_deleted_default IS
'Configuration rows that were deleted, by table and key, so that a pg_dump restore, whose CREATE EXTENSION seeds the defaults again, deletes the seeded ones again. Written by triggers; admins do not edit it.';
COMMENT ON COLUMN @extschema@.incident_deleted_default.key IS 'The deleted row''s key columns as JSON, e.g. {"policy": "page-on-call", "level": 2}.';

CREATE FUNCTION @extschema@.incident__remember_deleted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO @extschema@.incident_deleted_default (table_name, key)
    SELECT TG_TABLE_NAME, pg_catalog.jsonb_object_agg(k, pg_catalog.to_jsonb(OLD) -> k)
      FROM pg_catalog.unnest(TG_ARGV) AS k
    ON CONFLICT (table_name, key) DO NOTHING;     -- the first deletion stays on record
    RETURN OLD;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__remember_deleted() IS
'Internal trigger: remembers the key of a deleted configuration row (the trigger''s arguments name the key columns) in incident_deleted_default.';

CREATE FUNCTION @extschema@.incident__delete_again()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gone record;
    key_match text;
BEGIN
    -- Rows remembered by a deletion that is happening now need nothing more.
    -- Rows restored by pg_dump (or written by hand) delete the seeded row of
    -- their key if it is still as seeded: children before parents, so that
    -- the items of a deleted checklist go before the checklist.
    IF pg_catalog.pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    FOR gone IN
        SELECT n.table_name, n.key
          FROM new_rows n
          JOIN pg_catalog.pg_class c
            ON c.relname = n.table_name AND c.relnamespace = '@extschema@'::regnamespace
         ORDER BY pg_catalog.array_position(ARRAY['incident_checklist_template_item', 'incident_checklist_template',
                                                  'incident_escalation_level', 'incident_escalation_policy',
                                                  'incident_team_role', 'incident_calendar_hours', 'incident_calendar',
                                                  'incident_classify_rule', 'incident_severity'], n.table_name::text),
                  n.key::text
    LOOP
        SELECT pg_catalog.string_agg(pg_catalog.format('pg_catalog.to_jsonb(t.%I) = ($1 -> %L)', k, k), ' AND ')
          INTO key_match
          FROM pg_catalog.jsonb_object_keys(gone.key) AS k;
        BEGIN
            EXECUTE pg_catalog.format('DELETE FROM @extschema@.%I t WHERE t.is_default AND %s', gone.table_name, key_match)
              USING gone.key;
        EXCEPTION WHEN foreign_key_violation THEN
            RAISE WARNING 'could not delete the seeded row % of % again', gone.key, gone.table_name
                USING DETAIL = SQLERRM,
                      HINT = 'Delete it by hand once what refers to it is gone.';
        END;
    END LOOP;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__delete_again() IS
'Internal trigger: when incident_deleted_default gets rows from outside a deletion (a pg_dump restore), deletes the pristine seeded rows with those keys, children before parents.';

CREATE TRIGGER incident_deleted_default_apply
    AFTER INSERT ON @extschema@.incident_deleted_default
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__delete_again();

CREATE TRIGGER incident_severity_deleted
    BEFORE DELETE ON @extschema@.incident_severity
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('severity');
CREATE TRIGGER incident_checklist_template_deleted
    BEFORE DELETE ON @extschema@.incident_checklist_template
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('checklist');
CREATE TRIGGER incident_checklist_template_item_deleted
    BEFORE DELETE ON @extschema@.incident_checklist_template_item
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('checklist', 'item_no');
CREATE TRIGGER incident_classify_rule_deleted
    BEFORE DELETE ON @extschema@.incident_classify_rule
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('name');
CREATE TRIGGER incident_calendar_deleted
    BEFORE DELETE ON @extschema@.incident_calendar
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('name');
CREATE TRIGGER incident_calendar_hours_deleted
    BEFORE DELETE ON @extschema@.incident_calendar_hours
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('calendar', 'dow', 'starts');
CREATE TRIGGER incident_team_role_deleted
    BEFORE DELETE ON @extschema@.incident_team_role
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('role');
CREATE TRIGGER incident_escalation_policy_deleted
    BEFORE DELETE ON @extschema@.incident_escalation_policy
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('name');
CREATE TRIGGER incident_escalation_level_deleted
    BEFORE DELETE ON @extschema@.incident_escalation_level
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('policy', 'level');

SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_deleted_default', '');

REVOKE ALL ON FUNCTION @extschema@.incident__remember_deleted() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.incident__delete_again() FROM PUBLIC;
GRANT SELECT ON @extschema@.incident_deleted_default TO incident_viewer;
