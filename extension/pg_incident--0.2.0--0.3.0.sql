/* extension/pg_incident--0.2.0--0.3.0.sql: the upgrade from 0.2.0 to 0.3.0.
 *
 * 0.3.0 is being written: each change to an object of the feature sources
 * (extension/[0-9][0-9]_*.sql) comes here too, so that an upgraded
 * installation equals a fresh one (test/t/006_upgrade.pl compares them).
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_incident UPDATE TO '0.3.0'" to load this file. \quit

------------------------------------------------------------------------------
-- Helpers of the install and upgrade scripts (00_common.sql)
------------------------------------------------------------------------------

-- incident__seeded_table(table, key columns...): what every table of seeded
-- configuration needs, in one place: an edit clears is_default, a restored
-- edited row replaces the pristine seed, a deleted seed is remembered, and
-- pg_dump keeps the rows that are not pristine seeds.
CREATE FUNCTION @extschema@.incident__seeded_table(seeded regclass, VARIADIC key_columns text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl text;
    tname name;
    args text;
BEGIN
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), c.relname INTO tbl, tname
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = seeded;
    SELECT pg_catalog.string_agg(pg_catalog.quote_literal(k), ', ') INTO args
      FROM pg_catalog.unnest(key_columns) AS k;
    EXECUTE pg_catalog.format('CREATE TRIGGER %I BEFORE UPDATE ON %s FOR EACH ROW '
                              'EXECUTE FUNCTION @extschema@.incident__mark_edited()', tname || '_edited', tbl);
    EXECUTE pg_catalog.format('CREATE TRIGGER %I BEFORE INSERT ON %s FOR EACH ROW '
                              'EXECUTE FUNCTION @extschema@.incident__replace_default(%s)', tname || '_restore', tbl, args);
    EXECUTE pg_catalog.format('CREATE TRIGGER %I BEFORE DELETE ON %s FOR EACH ROW '
                              'EXECUTE FUNCTION @extschema@.incident__remember_deleted(%s)', tname || '_deleted', tbl, args);
    PERFORM pg_catalog.pg_extension_config_dump(seeded, 'WHERE NOT is_default');
END
$$;

COMMENT ON FUNCTION @extschema@.incident__seeded_table(regclass, text[]) IS
'Internal, for install and upgrade scripts: gives a table of seeded configuration (with an is_default column and the given key columns) its edited, restore and deleted triggers and registers it with pg_dump for the rows that are not pristine seeds.';

-- incident__revoke_public(): nothing of pg_incident is callable by PUBLIC;
-- every install and upgrade script ends with it, and the features grant to
-- the three roles what each may call.
CREATE FUNCTION @extschema@.incident__revoke_public()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT d.objid::regprocedure
               FROM pg_catalog.pg_depend d
              WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass
                AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_incident')
                AND d.classid = 'pg_catalog.pg_proc'::regclass
                AND d.deptype = 'e'
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__revoke_public() IS
'Internal, for install and upgrade scripts: revokes from PUBLIC the right to call any function of the extension.';

------------------------------------------------------------------------------
-- Checks of configuration rows: clear errors from the constraints themselves
------------------------------------------------------------------------------

-- A configuration table states what a valid row is once, as its NOT NULL,
-- CHECK and FOREIGN KEY constraints, each CHECK and FOREIGN KEY with a
-- COMMENT that says how to fix a violation. incident__validate_row(), a
-- BEFORE INSERT OR UPDATE trigger named <table>_validate, tests a new row
-- against those constraints first and refuses the first one it breaks with an
-- error that names the table, the column and the (bounded) value, states the
-- rule and gives the constraint's comment as the hint. The constraints stay
-- the last line of defence.

CREATE FUNCTION @extschema@.incident__quote(value text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- a bounded prefix of what a user gave, for error messages: at most 64 characters
    SELECT CASE WHEN value IS NULL THEN 'NULL'
                WHEN pg_catalog.length(value) <= 64 THEN value
                ELSE pg_catalog.left(value, 61) || '...' END
$$;

COMMENT ON FUNCTION @extschema@.incident__quote(text) IS
'Internal: the value as error messages quote it: NULL for NULL, else at most 64 characters (61 and "..." when longer).';

-- the error paths of functions that run as their caller quote with it
GRANT EXECUTE ON FUNCTION @extschema@.incident__quote(text) TO incident_viewer;

CREATE FUNCTION @extschema@.incident__row_label(rel regclass, r jsonb)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- 'rotation "on-call"', 'rotation member (rotation "on-call", position "2")',
    -- or just 'rotation' while the key is not known; r holds the row's values as text
    -- a table with a serial key id and a name column is named by its name
    SELECT pg_catalog.replace(pg_catalog.regexp_replace(c.relname, '^incident_', ''), '_', ' ')
           || CASE WHEN coalesce(r ->> 'name', '') <> '' AND pg_catalog.bool_and(a.attname = 'id')
                   THEN pg_catalog.format(' "%s"', @extschema@.incident__quote(r ->> 'name'))
                   WHEN pg_catalog.count(a.attname) = 0 OR pg_catalog.bool_or(coalesce(r ->> a.attname, '') = '') THEN ''
                   WHEN pg_catalog.count(a.attname) = 1
                   THEN pg_catalog.format(' "%s"', @extschema@.incident__quote(pg_catalog.min(r ->> a.attname)))
                   ELSE ' (' || pg_catalog.string_agg(pg_catalog.format('%s "%s"', a.attname,
                                    @extschema@.incident__quote(r ->> a.attname)), ', ' ORDER BY k.n) || ')' END
      FROM pg_catalog.pg_class c
      LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
      LEFT JOIN LATERAL pg_catalog.unnest(pk.conkey) WITH ORDINALITY AS k(attnum, n) ON true
      LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
     WHERE c.oid = rel
     GROUP BY c.relname
$$;

COMMENT ON FUNCTION @extschema@.incident__row_label(regclass, jsonb) IS
'Internal: how error messages name a configuration row: the table''s name without its incident_ prefix and the row''s primary key (r holds the row''s columns as text), such as rotation "on-call".';

CREATE FUNCTION @extschema@.incident__validate_row()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;            -- the new row, each column as its text output
    hidden text[];      -- columns whose values no message shows
    what text;
    c record;
    holds boolean;
    given text;
BEGIN
    EXECUTE pg_catalog.format('SELECT pg_catalog.jsonb_build_object(%s)',
                (SELECT pg_catalog.string_agg(pg_catalog.format('%L, ($1).%I::text', a.attname, a.attname), ', ')
                   FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped))
       INTO r USING NEW;
    -- what a viewer may not read (a probe's headers, a channel's secret) may
    -- be a credential: no message quotes it, so neither does the server log
    hidden := ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                     WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
                       AND NOT pg_catalog.has_column_privilege('incident_viewer', TG_RELID, a.attnum, 'SELECT'));
    what := @extschema@.incident__row_label(TG_RELID, r);

    -- columns that must have a value
    FOR c IN SELECT a.attname, pg_catalog.col_description(a.attrelid, a.attnum) AS note
               FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull
              ORDER BY a.attnum
    LOOP
        IF r ->> c.attname IS NULL THEN
            RAISE EXCEPTION '% of % must not be null', c.attname, what
                USING ERRCODE = 'null_value_not_allowed',
                      DETAIL = pg_catalog.format('Column %s of %s is NOT NULL.', c.attname, TG_TABLE_NAME),
                      HINT = CASE WHEN c.note IS NULL THEN pg_catalog.format('Give the %s.', c.attname)
                                  ELSE pg_catalog.format('Give the %s: %s', c.attname, c.note) END;
        END IF;
    END LOOP;

    -- CHECK constraints, in name order, evaluated on the new row
    FOR c IN SELECT k.conname, pg_catalog.pg_get_expr(k.conbin, k.conrelid) AS rule,
                    pg_catalog.obj_description(k.oid, 'pg_constraint') AS hint,
                    ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                           WHERE a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey) ORDER BY a.attnum) AS cols
               FROM pg_catalog.pg_constraint k
              WHERE k.conrelid = TG_RELID AND k.contype = 'c'
              ORDER BY k.conname
    LOOP
        EXECUTE pg_catalog.format('SELECT %s FROM (SELECT ($1).*) AS t', c.rule) INTO holds USING NEW;
        IF holds IS FALSE THEN
            SELECT pg_catalog.string_agg(CASE WHEN col = ANY (hidden) THEN pg_catalog.format('%s (value not shown)', col)
                                              ELSE pg_catalog.format('%s "%s"', col, @extschema@.incident__quote(r ->> col)) END,
                                         ' and ')
              INTO given FROM pg_catalog.unnest(c.cols) AS col;
            RAISE EXCEPTION 'invalid % for %', given, what
                USING ERRCODE = 'check_violation',
                      DETAIL = pg_catalog.format('%s requires %s (constraint %s).', TG_TABLE_NAME, c.rule, c.conname),
                      HINT = coalesce(c.hint, 'Give a value that satisfies the constraint.');
        END IF;
    END LOOP;

    -- FOREIGN KEY constraints: the row referred to must exist
    FOR c IN SELECT k.conname, k.confrelid::regclass AS target,
                    pg_catalog.obj_description(k.oid, 'pg_constraint') AS hint,
                    ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY AS x(attnum, n)
                            JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = x.attnum
                           ORDER BY x.n) AS cols,
                    ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY AS x(attnum, n)
                            JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = x.attnum
                           ORDER BY x.n) AS refcols
               FROM pg_catalog.pg_constraint k
              WHERE k.conrelid = TG_RELID AND k.contype = 'f'
              ORDER BY k.conname
    LOOP
        CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.unnest(c.cols) AS col WHERE r ->> col IS NULL);
        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT FROM %s t WHERE %s)', c.target,
                    (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I = ($1).%I', rc, col), ' AND ')
                       FROM ROWS FROM (pg_catalog.unnest(c.refcols), pg_catalog.unnest(c.cols)) AS x(rc, col)))
           INTO holds USING NEW;
        IF NOT holds THEN
            SELECT pg_catalog.string_agg(CASE WHEN col = ANY (hidden) THEN '(value not shown)'
                                              ELSE @extschema@.incident__quote(r ->> col) END, ', ') INTO given
              FROM pg_catalog.unnest(c.cols) AS col;
            RAISE EXCEPTION '% "%" does not exist',
                            pg_catalog.replace(pg_catalog.regexp_replace(c.target::text, '^(.*\.)?incident_', ''), '_', ' '), given
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = pg_catalog.format('It was given as %s of %s.', pg_catalog.array_to_string(c.cols, ', '), what),
                      HINT = coalesce(c.hint, pg_catalog.format('Add it to %s first.', c.target));
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__validate_row() IS
'Internal trigger (<table>_validate): refuses a configuration row that breaks a NOT NULL, CHECK or FOREIGN KEY constraint of its table with an error naming the table, column and value (not the value of a column incident_viewer may not read, which may be a credential), the rule as detail and the constraint''s comment as hint.';

-- incident__tidy_row('col', 'col:lower', ...): trims the named text columns
-- (lower-casing those marked :lower) and turns empty ones into NULL where the
-- column allows it, before the row is validated.
CREATE FUNCTION @extschema@.incident__tidy_row()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb := pg_catalog.to_jsonb(NEW);
    arg text;
    col text;
    v text;
BEGIN
    FOREACH arg IN ARRAY TG_ARGV LOOP
        col := pg_catalog.split_part(arg, ':', 1);
        v := pg_catalog.regexp_replace(r ->> col, '^\s+|\s+$', '', 'g');
        IF pg_catalog.split_part(arg, ':', 2) = 'lower' THEN
            v := pg_catalog.lower(v);
        END IF;
        IF v = '' AND NOT (SELECT a.attnotnull FROM pg_catalog.pg_attribute a
                            WHERE a.attrelid = TG_RELID AND a.attname = col) THEN
            v := NULL;
        END IF;
        r := pg_catalog.jsonb_set(r, ARRAY[col], coalesce(pg_catalog.to_jsonb(v), 'null'));
    END LOOP;
    NEW := pg_catalog.jsonb_populate_record(NEW, r);
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__tidy_row() IS
'Internal trigger (<table>_tidy): trims the text columns named as its arguments (lower-casing those written col:lower) and makes empty ones NULL where NULL is allowed, so that the row is validated as the user meant it.';

-- incident__checked_table(table, tidy columns...): gives a configuration
-- table its tidy (when columns are named) and validate triggers.
CREATE FUNCTION @extschema@.incident__checked_table(checked regclass, VARIADIC tidy text[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl text;
    tname name;
BEGIN
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), c.relname INTO tbl, tname
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = checked;
    IF pg_catalog.cardinality(tidy) > 0 THEN
        EXECUTE pg_catalog.format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE ON %s FOR EACH ROW '
                                  'EXECUTE FUNCTION @extschema@.incident__tidy_row(%s)', tname || '_tidy', tbl,
                                  (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(t), ', ') FROM pg_catalog.unnest(tidy) AS t));
    END IF;
    EXECUTE pg_catalog.format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE ON %s FOR EACH ROW '
                              'EXECUTE FUNCTION @extschema@.incident__validate_row()', tname || '_validate', tbl);
END
$$;

COMMENT ON FUNCTION @extschema@.incident__checked_table(regclass, text[]) IS
'Internal, for install and upgrade scripts: gives a configuration table its <table>_tidy trigger (when columns to tidy are named) and its <table>_validate trigger.';

------------------------------------------------------------------------------
-- On-call configuration (40_oncall.sql): the constraints say what is valid,
-- incident__validate_row() says it; the per-table check triggers go
------------------------------------------------------------------------------

DROP TRIGGER incident_responder_check ON @extschema@.incident_responder;
DROP TRIGGER incident_rotation_check ON @extschema@.incident_rotation;
DROP TRIGGER incident_rotation_member_check ON @extschema@.incident_rotation_member;
DROP TRIGGER incident_rotation_override_check ON @extschema@.incident_rotation_override;
DROP TRIGGER incident_team_role_check ON @extschema@.incident_team_role;
DROP TRIGGER incident_escalation_policy_check ON @extschema@.incident_escalation_policy;
DROP TRIGGER incident_escalation_level_check ON @extschema@.incident_escalation_level;
DROP FUNCTION @extschema@.incident__check_responder();
DROP FUNCTION @extschema@.incident__check_rotation();
DROP FUNCTION @extschema@.incident__check_rotation_member();
DROP FUNCTION @extschema@.incident__check_team_role();
DROP FUNCTION @extschema@.incident__check_escalation_policy();
DROP FUNCTION @extschema@.incident__check_escalation_level();
DROP FUNCTION @extschema@.incident__require_responder(text, text);

-- bounds that keep other features working (a shift or delay of millions of
-- years made incident_oncall and incident_escalations fail); an upgrade stops
-- here if a row is outside them
ALTER TABLE @extschema@.incident_rotation
    DROP CONSTRAINT incident_rotation_shift_check,
    ADD CONSTRAINT incident_rotation_shift_check
        CHECK (shift > interval '0' AND shift <= interval '366 days'
               AND pg_catalog.date_part('year', shift) * 12 + pg_catalog.date_part('month', shift) >= 0
               AND pg_catalog.date_part('day', shift) >= 0
               AND shift - pg_catalog.date_trunc('day', shift) >= interval '0'),
    ADD CONSTRAINT incident_rotation_starts_at_check CHECK (pg_catalog.isfinite(starts_at)),
    ADD CONSTRAINT incident_rotation_time_zone_check CHECK (@extschema@.incident_timezone_valid(time_zone));
ALTER TABLE @extschema@.incident_escalation_policy
    DROP CONSTRAINT incident_escalation_policy_repeat_every_check,
    ADD CONSTRAINT incident_escalation_policy_repeat_every_check
        CHECK (repeat_every > interval '0' AND repeat_every <= interval '30 days');
ALTER TABLE @extschema@.incident_escalation_level
    DROP CONSTRAINT incident_escalation_level_delay_check,
    ADD CONSTRAINT incident_escalation_level_delay_check
        CHECK (delay >= interval '0' AND delay <= interval '30 days'),
    ADD CONSTRAINT incident_escalation_level_role_target_check
        CHECK (target_type NOT IN ('role_primary', 'role_backup')
               OR target IN ('incident_commander', 'technical_lead', 'communications_lead'));

COMMENT ON CONSTRAINT incident_responder_name_check ON @extschema@.incident_responder IS
'A responder''s name has 1 to 200 characters; use the same name as in incident_acknowledge(code, responder).';
COMMENT ON CONSTRAINT incident_responder_email_check ON @extschema@.incident_responder IS
'Give an address such as jane@example.com, or NULL.';
COMMENT ON CONSTRAINT incident_rotation_name_check ON @extschema@.incident_rotation IS
'A rotation''s name has 1 to 100 characters, such as "on-call".';
COMMENT ON CONSTRAINT incident_rotation_shift_check ON @extschema@.incident_rotation IS
'Give a shift length such as ''1 week'' (the default), ''1 day'' or ''12 hours'': longer than zero, at most 366 days, with no negative part.';
COMMENT ON CONSTRAINT incident_rotation_starts_at_check ON @extschema@.incident_rotation IS
'Give the first handoff with its time zone, such as ''2026-03-02 09:00 Europe/Berlin''.';
COMMENT ON CONSTRAINT incident_rotation_time_zone_check ON @extschema@.incident_rotation IS
'Give a name from pg_timezone_names, such as "Europe/Berlin" or "UTC".';
COMMENT ON CONSTRAINT incident_rotation_member_rotation_fkey ON @extschema@.incident_rotation_member IS
'Create the rotation in incident_rotation first.';
COMMENT ON CONSTRAINT incident_rotation_member_position_check ON @extschema@.incident_rotation_member IS
'Positions are whole numbers from 1 up, in turn order.';
COMMENT ON CONSTRAINT incident_rotation_member_responder_fkey ON @extschema@.incident_rotation_member IS
'Add the responder to incident_responder first (name, phone, email, chat).';
COMMENT ON CONSTRAINT incident_rotation_member_backup_fkey ON @extschema@.incident_rotation_member IS
'Add the responder to incident_responder first (name, phone, email, chat).';
COMMENT ON CONSTRAINT incident_rotation_member_check ON @extschema@.incident_rotation_member IS
'Name someone else as backup, or leave it NULL so that the next member backs up.';
COMMENT ON CONSTRAINT incident_rotation_override_rotation_fkey ON @extschema@.incident_rotation_override IS
'Create the rotation in incident_rotation first.';
COMMENT ON CONSTRAINT incident_rotation_override_slot_check ON @extschema@.incident_rotation_override IS
'Valid slots are primary and backup.';
COMMENT ON CONSTRAINT incident_rotation_override_responder_fkey ON @extschema@.incident_rotation_override IS
'Add the responder to incident_responder first (name, phone, email, chat).';
COMMENT ON CONSTRAINT incident_rotation_override_check ON @extschema@.incident_rotation_override IS
'ends_at must be after starts_at, such as starts_at ''2026-03-05 09:00 Asia/Riyadh'' and ends_at ''2026-03-06 09:00 Asia/Riyadh''.';
COMMENT ON CONSTRAINT incident_team_role_primary_responder_fkey ON @extschema@.incident_team_role IS
'Add the responder to incident_responder first (name, phone, email, chat).';
COMMENT ON CONSTRAINT incident_team_role_backup_responder_fkey ON @extschema@.incident_team_role IS
'Add the responder to incident_responder first (name, phone, email, chat).';
COMMENT ON CONSTRAINT incident_escalation_policy_name_check ON @extschema@.incident_escalation_policy IS
'A policy''s name has 1 to 100 characters, such as "page-on-call".';
COMMENT ON CONSTRAINT incident_escalation_policy_repeat_every_check ON @extschema@.incident_escalation_policy IS
'Give a positive interval of at most 30 days such as ''30 minutes'', or NULL to run the levels once.';
COMMENT ON CONSTRAINT incident_escalation_policy_repeat_limit_check ON @extschema@.incident_escalation_policy IS
'repeat_limit counts repeats after the first run: 1 or more; NULL repeats until acknowledged.';
COMMENT ON CONSTRAINT incident_escalation_policy_check ON @extschema@.incident_escalation_policy IS
'A repeat_limit needs repeat_every: set both, or leave repeat_limit NULL.';
COMMENT ON CONSTRAINT incident_escalation_level_policy_fkey ON @extschema@.incident_escalation_level IS
'Create the policy in incident_escalation_policy first.';
COMMENT ON CONSTRAINT incident_escalation_level_level_check ON @extschema@.incident_escalation_level IS
'Levels are whole numbers from 1 up, in escalation order.';
COMMENT ON CONSTRAINT incident_escalation_level_delay_check ON @extschema@.incident_escalation_level IS
'Give the time after the declaration when the level is due, from ''0'' (at once) to ''30 days'', such as ''10 minutes''.';
COMMENT ON CONSTRAINT incident_escalation_level_target_type_check ON @extschema@.incident_escalation_level IS
'Valid target types are rotation_primary, rotation_backup, responder, role_primary and role_backup.';
COMMENT ON CONSTRAINT incident_escalation_level_role_target_check ON @extschema@.incident_escalation_level IS
'Valid roles are incident_commander, technical_lead and communications_lead.';

SELECT @extschema@.incident__checked_table('@extschema@.incident_responder', 'name', 'phone', 'email', 'chat');
SELECT @extschema@.incident__checked_table('@extschema@.incident_rotation', 'name', 'time_zone');
SELECT @extschema@.incident__checked_table('@extschema@.incident_rotation_member', 'rotation', 'responder', 'backup');
SELECT @extschema@.incident__checked_table('@extschema@.incident_rotation_override', 'slot:lower', 'responder');
SELECT @extschema@.incident__checked_table('@extschema@.incident_team_role', 'primary_responder', 'backup_responder');
SELECT @extschema@.incident__checked_table('@extschema@.incident_escalation_policy', 'name');
SELECT @extschema@.incident__checked_table('@extschema@.incident_escalation_level', 'target_type:lower', 'target');

CREATE OR REPLACE FUNCTION @extschema@.incident__check_rotation_override()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    clash @extschema@.incident_rotation_override;
    invoker text := @extschema@.incident_invoker();
    writer text := invoker;
BEGIN
    -- created_by is who wrote the override; only a superuser (a restore)
    -- writes another name
    IF TG_OP = 'UPDATE' THEN
        writer := OLD.created_by;
    END IF;
    IF NEW.created_by IS DISTINCT FROM writer
       AND NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = invoker), false) THEN
        RAISE EXCEPTION 'invalid created_by "%" for override % of rotation "%"',
                        @extschema@.incident__quote(NEW.created_by), NEW.id, NEW.rotation
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = pg_catalog.format('incident_rotation_override.created_by records who wrote the override: %s.', writer),
                  HINT = 'Leave created_by out; it is filled in for you.';
    END IF;

    -- Serialize overrides of one rotation, so that two sessions cannot each
    -- add one half of an overlap; this runs after the row is written, so the
    -- other override is looked for beside it.
    PERFORM FROM @extschema@.incident_rotation r WHERE r.name = NEW.rotation FOR UPDATE;
    SELECT * INTO clash FROM @extschema@.incident_rotation_override o
     WHERE o.rotation = NEW.rotation AND o.slot = NEW.slot
       AND o.starts_at < NEW.ends_at AND NEW.starts_at < o.ends_at
       AND o.id <> NEW.id
     ORDER BY o.starts_at LIMIT 1;
    IF clash.id IS NOT NULL THEN
        RAISE EXCEPTION 'override of the % of rotation "%" from "%" to "%" overlaps override %',
                        NEW.slot, NEW.rotation, NEW.starts_at, NEW.ends_at, clash.id
            USING ERRCODE = 'exclusion_violation',
                  DETAIL = pg_catalog.format('Override %s has %s cover the %s from %s to %s.',
                                             clash.id, clash.responder, clash.slot, clash.starts_at, clash.ends_at),
                  HINT = 'Overrides of one slot may not overlap: shorten or delete the other one first.';
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__check_rotation_override() IS
'Internal trigger: after an override is written, refuses it if it overlaps another override of the same rotation and slot, or if a role other than a superuser wrote a created_by that is not itself.';

CREATE TRIGGER incident_rotation_override_check
    AFTER INSERT OR UPDATE ON @extschema@.incident_rotation_override
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__check_rotation_override();

-- the time of an act, read in C once the library and its settings are loaded (00_common.sql)
CREATE FUNCTION @extschema@.incident__act_now()
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'incident__act_now'
LANGUAGE C VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident__act_now() IS
'Internal: the time of an act: the clock time, or the test clock pg_incident.clock when a superuser has set it.';

------------------------------------------------------------------------------
-- The timeline is evidence (10_lifecycle.sql): the time of the act, the
-- accountable login in its own column, a NOTIFY payload without names
------------------------------------------------------------------------------

-- Events recorded so far keep what they said; their recorded_by comes from
-- details.recorded_by (written when someone was named) or the actor.
ALTER TABLE @extschema@.incident_event ADD COLUMN recorded_by text;
ALTER TABLE @extschema@.incident_event DISABLE TRIGGER incident_event_append_only;
UPDATE @extschema@.incident_event SET recorded_by = coalesce(details ->> 'recorded_by', actor);
ALTER TABLE @extschema@.incident_event ENABLE ALWAYS TRIGGER incident_event_append_only;
ALTER TABLE @extschema@.incident_event ALTER COLUMN recorded_by SET NOT NULL;

COMMENT ON COLUMN @extschema@.incident_event.actor IS 'Who the event is about: the responder named in the call (acknowledge and tick may name someone else), else the role that made it.';
COMMENT ON COLUMN @extschema@.incident_event.recorded_by IS 'The role that made the call, whoever it named as actor: the login that is accountable for the record.';
COMMENT ON COLUMN @extschema@.incident_event.at IS 'When the act happened: the clock time of the call (not the start of its transaction), never before the incident''s previous event.';

DROP FUNCTION @extschema@.incident__event(@extschema@.incident, text, text, text, jsonb);

CREATE OR REPLACE VIEW @extschema@.incident_timeline AS
SELECT i.code,
       e.id AS event_id,
       e.at,
       e.kind,
       e.actor,
       e.status,
       e.message,
       e.details,
       i.severity,
       i.title,
       e.recorded_by
  FROM @extschema@.incident_event e
  JOIN @extschema@.incident i ON i.id = e.incident_id
 ORDER BY i.id, e.id;

COMMENT ON COLUMN @extschema@.incident_timeline.actor IS 'Who the event is about: the responder named in the call, else the role that made it.';
COMMENT ON COLUMN @extschema@.incident_timeline.recorded_by IS 'The role that made the call (the accountable login), also when it named someone else as actor.';

------------------------------------------------------------------------------
-- Severities that other features can live with (10_lifecycle.sql)
------------------------------------------------------------------------------

ALTER TABLE @extschema@.incident_severity
    DROP CONSTRAINT incident_severity_name_check,
    ADD CONSTRAINT incident_severity_name_check
        CHECK (name = pg_catalog.lower(name) AND name <> '' AND name <> 'auto' AND name !~ '^p[0-9]'),
    DROP CONSTRAINT incident_severity_response_time_check,
    ADD CONSTRAINT incident_severity_response_time_check
        CHECK (response_time > interval '0' AND response_time <= interval '366 days'),
    DROP CONSTRAINT incident_severity_update_every_check,
    ADD CONSTRAINT incident_severity_update_every_check
        CHECK (update_every > interval '0' AND update_every <= interval '366 days'),
    DROP CONSTRAINT incident_severity_pir_due_check,
    ADD CONSTRAINT incident_severity_pir_due_check
        CHECK (pir_due > interval '0' AND pir_due <= interval '366 days');

SELECT @extschema@.incident__checked_table('@extschema@.incident_severity', 'name:lower');

COMMENT ON CONSTRAINT incident_severity_severity_check ON @extschema@.incident_severity IS
'The levels are P1, P2, P3 and P4.';
COMMENT ON CONSTRAINT incident_severity_name_check ON @extschema@.incident_severity IS
'A name is a lower-case word such as critical; it may not be "auto" or look like a level (p1), which incident_declare reads otherwise.';
COMMENT ON CONSTRAINT incident_severity_response_time_check ON @extschema@.incident_severity IS
'Give a positive interval of at most 366 days, such as ''15 minutes'' or ''4 hours''.';
COMMENT ON CONSTRAINT incident_severity_update_every_check ON @extschema@.incident_severity IS
'Give a positive interval of at most 366 days, such as ''30 minutes'' or ''1 day''.';
COMMENT ON CONSTRAINT incident_severity_pir_due_check ON @extschema@.incident_severity IS
'Give a positive interval of at most 366 days, such as ''48 hours'' or ''7 days''.';

------------------------------------------------------------------------------
-- Functions whose definitions changed: bounded values in errors, pinned
-- search_path, bounded ranges, the time of the act
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@.incident__require_timezone(time_zone text, what text)
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
        RAISE EXCEPTION 'invalid time zone "%" for %', @extschema@.incident__quote(time_zone), what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a name from pg_timezone_names, such as "Europe/Berlin" or "UTC".';
    END IF;
    RETURN time_zone;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__require_timezone(text, text) IS
'Internal: the time zone name, or an error naming it and what it was given for (a calendar, a rotation).';

CREATE OR REPLACE FUNCTION @extschema@.incident_severity_normalize(severity text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result text;
    valid text;
BEGIN
    IF severity IS NULL THEN
        RAISE EXCEPTION 'severity must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a severity: P1, P2, P3 or P4, or its name (see incident_severity).';
    END IF;
    SELECT s.severity INTO result
      FROM @extschema@.incident_severity s
     WHERE s.severity = pg_catalog.upper(pg_catalog.btrim($1))
        OR s.name = pg_catalog.lower(pg_catalog.btrim($1));
    IF result IS NULL THEN
        SELECT pg_catalog.format('Valid severities are %s, or %s.',
                                 pg_catalog.string_agg(s.severity, ', ' ORDER BY s.severity),
                                 pg_catalog.string_agg(s.name, ', ' ORDER BY s.severity))
          INTO valid FROM @extschema@.incident_severity s;
        RAISE EXCEPTION 'invalid severity "%"', @extschema@.incident__quote(severity)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = valid;
    END IF;
    RETURN result;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_severity_normalize(text) IS
'Turns a severity as a user types it (P1..P4 or critical/high/medium/low, any letter case) into P1..P4; an error for anything else.';

CREATE OR REPLACE FUNCTION @extschema@.incident__template_items(severity text, OUT checklists jsonb, OUT items jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH applicable AS (
        SELECT t.checklist, t.title, t.phase, t.sort_order, i.item_no, i.item
          FROM @extschema@.incident_checklist_template t
          JOIN @extschema@.incident_checklist_template_item i USING (checklist)
         WHERE t.enabled AND i.enabled
           AND incident__template_items.severity = ANY (t.severities)
           AND (i.severities IS NULL OR incident__template_items.severity = ANY (i.severities))
    )
    SELECT (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                'checklist', c.checklist, 'title', c.title, 'phase', c.phase, 'sort_order', c.sort_order)
                ORDER BY c.sort_order, c.checklist), '[]')
              FROM (SELECT DISTINCT a.checklist, a.title, a.phase, a.sort_order FROM applicable a) c),
           (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                'checklist', a.checklist, 'item_no', a.item_no, 'item', a.item)
                ORDER BY a.sort_order, a.checklist, a.item_no), '[]')
              FROM applicable a)
$$;

COMMENT ON FUNCTION @extschema@.incident__template_items(text) IS
'Internal: the enabled checklist templates and items that apply to a severity, as the JSON arrays of a checklist set.';

CREATE OR REPLACE FUNCTION @extschema@.incident__require_text(value text, what text, max_length int)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    trimmed text := pg_catalog.regexp_replace(value, '^\s+|\s+$', '', 'g');
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '% must not be null', what
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = pg_catalog.format('Give a %s.', what);
    END IF;
    -- spaces, zero-width and other invisible format characters do not count
    IF pg_catalog.regexp_replace(trimmed, '[\s\u00a0\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufeff\uffa0]', '', 'g') = '' THEN
        RAISE EXCEPTION '% must not be empty', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = pg_catalog.format('Give a %s with at least one visible character.', what);
    END IF;
    IF pg_catalog.length(trimmed) > max_length THEN
        RAISE EXCEPTION '% is too long (% characters)', what, pg_catalog.length(trimmed)
            USING ERRCODE = 'string_data_right_truncation',
                  DETAIL = pg_catalog.format('A %s has at most %s characters.', what, max_length),
                  HINT = 'Shorten it; put the rest in the description or a note.';
    END IF;
    RETURN trimmed;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__require_text(text, text, int) IS
'Internal: the trimmed text, or an error if it is null, has no visible character (spaces and zero-width characters do not count) or is longer than max_length.';

CREATE OR REPLACE FUNCTION @extschema@.incident__find(code text, for_update boolean)
RETURNS @extschema@.incident
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wanted text := pg_catalog.upper(pg_catalog.btrim(code));
    found @extschema@.incident;
BEGIN
    IF code IS NULL THEN
        RAISE EXCEPTION 'incident code must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a code such as INC-2026-0115-001, as returned by incident_declare().';
    END IF;
    IF wanted !~ '^INC-[0-9]{4}-[0-9]{4}-[0-9]{3,}$' THEN
        RAISE EXCEPTION 'invalid incident code "%"', @extschema@.incident__quote(code)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Incident codes have the form INC-YYYY-MMDD-NNN.',
                  HINT = 'Give a code such as INC-2026-0115-001, as returned by incident_declare().';
    END IF;
    IF for_update THEN
        IF pg_catalog.pg_is_in_recovery() THEN
            RAISE EXCEPTION 'cannot change incident "%" on a standby server', @extschema@.incident__quote(wanted)
                USING ERRCODE = 'read_only_sql_transaction',
                      HINT = 'Run lifecycle functions on the primary; standbys can read the views.';
        END IF;
        SELECT * INTO found FROM @extschema@.incident i WHERE i.code = wanted FOR UPDATE;
    ELSE
        SELECT * INTO found FROM @extschema@.incident i WHERE i.code = wanted;
    END IF;
    IF found.id IS NULL THEN
        RAISE EXCEPTION 'incident "%" does not exist', @extschema@.incident__quote(wanted)
            USING ERRCODE = 'no_data_found',
                  HINT = 'See incident_dashboard for open incidents or the incident table for all of them.';
    END IF;
    RETURN found;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__find(text, boolean) IS
'Internal: the incident with this code (any letter case), locked against concurrent changes if for_update; an error if the code is malformed or unknown.';

CREATE OR REPLACE FUNCTION @extschema@.incident__act_time(inc @extschema@.incident)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t timestamptz;
BEGIN
    -- the real time of the act, not the start of a transaction that may have
    -- been open for minutes; the superuser-only test clock aside
    t := @extschema@.incident__act_now();
    -- the caller holds the incident's row lock, so its events are written one
    -- after the other; they stay in order even if the system clock steps back
    IF inc.id IS NOT NULL THEN
        t := greatest(t, (SELECT pg_catalog.max(e.at) FROM @extschema@.incident_event e WHERE e.incident_id = inc.id));
    END IF;
    RETURN t;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__act_time(@extschema@.incident) IS
'Internal: the time a lifecycle call records for its act: the clock time (pg_incident.clock when a superuser set the test clock), never before the incident''s last event. The caller has locked the incident.';

CREATE OR REPLACE FUNCTION @extschema@.incident__event(inc @extschema@.incident, kind text, actor text,
                                            message text DEFAULT NULL, details jsonb DEFAULT '{}',
                                            at timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    event_at timestamptz := coalesce(incident__event.at, @extschema@.incident__act_time(inc));
    event_id bigint;
BEGIN
    INSERT INTO @extschema@.incident_event AS e (incident_id, at, kind, actor, status, message, details, recorded_by)
    VALUES (inc.id, event_at, incident__event.kind, incident__event.actor, inc.status,
            incident__event.message, coalesce(incident__event.details, '{}'), @extschema@.incident_invoker())
    RETURNING e.id INTO event_id;

    -- Any login may LISTEN: the payload carries no names and no text users
    -- typed, only what identifies the event; listeners read the rest through
    -- the views their role may read.
    PERFORM pg_catalog.pg_notify('pg_incident', pg_catalog.json_build_object(
        'event_id', event_id, 'incident_id', inc.id, 'code', inc.code, 'event', incident__event.kind)::text);
END
$$;

COMMENT ON FUNCTION @extschema@.incident__event(@extschema@.incident, text, text, text, jsonb, timestamptz) IS
'Internal: appends a timeline event for the incident as it now stands, at the time of the act (at, or incident__act_time()), with the calling role as recorded_by, and sends NOTIFY pg_incident with {"event_id", "incident_id", "code", "event"}, in the caller''s transaction.';

CREATE OR REPLACE FUNCTION @extschema@.incident_declare(severity text, title text, description text DEFAULT NULL,
                                             started_at timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sev @extschema@.incident_severity;
    inc @extschema@.incident;
    now_ timestamptz := @extschema@.incident__act_time(NULL);
    actor text := @extschema@.incident_invoker();
    code_day date;
    seq int;
    checklist_set_id text;
    choice record;
    response_due timestamptz;
    update_due timestamptz;
BEGIN
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE EXCEPTION 'cannot declare an incident on a standby server'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Run lifecycle functions on the primary; standbys can read the views.';
    END IF;
    title := @extschema@.incident__require_text(title, 'title', 200);
    IF title ~ '[\n\r\u2028\u2029]' THEN
        RAISE EXCEPTION 'invalid title "%"', @extschema@.incident__quote(title)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A title is one line: it is shown in lists, subjects and chat messages.',
                  HINT = 'Put the title on one line and the rest in the description.';
    END IF;
    SELECT * INTO choice FROM @extschema@.incident__choose_severity(incident_declare.severity, title, description);
    SELECT * INTO sev FROM @extschema@.incident_severity s WHERE s.severity = choice.chosen;
    SELECT c.set_id INTO checklist_set_id FROM @extschema@.incident_checklist_cache c WHERE c.severity = choice.chosen;
    IF started_at IN ('infinity', '-infinity') THEN
        RAISE EXCEPTION 'invalid start time "%"', started_at
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The start of an incident is a definite time.',
                  HINT = 'Give the time the impact began, or leave started_at out.';
    END IF;
    IF started_at > now_ THEN
        RAISE EXCEPTION 'invalid start time "%"', started_at
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('The incident is being declared at %s; it cannot have started later.', now_),
                  HINT = 'Give the time the impact began, or leave started_at out.';
    END IF;
    IF started_at < now_ - interval '366 days' THEN
        RAISE EXCEPTION 'invalid start time "%"', started_at
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('The incident is being declared at %s; an impact that began more than 366 days earlier is not an incident to respond to.', now_),
                  HINT = 'Give the time the impact began, or leave started_at out.';
    END IF;

    -- everything that needs no number is worked out before taking one
    response_due := @extschema@.incident__deadline(sev.severity, 'response', now_);
    update_due := @extschema@.incident__deadline(sev.severity, 'update', now_);
    code_day := (now_ AT TIME ZONE @extschema@.incident_timezone())::date;
    -- Same-day declarations queue here until this transaction ends; a rollback
    -- gives the number back, so codes stay gap-free.
    INSERT INTO @extschema@.incident_day_counter AS c (day, last_seq) VALUES (code_day, 1)
    ON CONFLICT (day) DO UPDATE SET last_seq = c.last_seq + 1
    RETURNING c.last_seq INTO seq;

    INSERT INTO @extschema@.incident
        (code, day, day_seq, severity, status, title, description, declared_by,
         started_at, declared_at, response_due, next_update_due, checklist_set)
    VALUES
        ('INC-' || pg_catalog.to_char(code_day, 'YYYY-MMDD') || '-'
               || CASE WHEN seq < 1000 THEN pg_catalog.lpad(seq::text, 3, '0') ELSE seq::text END,
         code_day, seq, sev.severity, 'declared', title, nullif(pg_catalog.regexp_replace(description, '^\s+|\s+$', '', 'g'), ''), actor,
         coalesce(started_at, now_), now_, response_due, update_due, checklist_set_id)
    RETURNING * INTO inc;

    PERFORM @extschema@.incident__event(inc, 'declared', actor, title,
        pg_catalog.jsonb_build_object('severity', inc.severity, 'response_due', inc.response_due,
                                      'next_update_due', inc.next_update_due)
        || CASE WHEN choice.why IS NULL THEN '{}' ELSE pg_catalog.jsonb_build_object('classified', choice.why) END,
        now_);
    -- what changed in the hours before: the first lead for the root cause (82_health.sql)
    PERFORM @extschema@.incident__note_recent_changes(inc, now_);
    RETURN inc.code;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_declare(text, text, text, timestamptz) IS
'Declares an incident and returns its code INC-YYYY-MMDD-NNN. severity: P1..P4 or critical/high/medium/low; title: up to 200 characters; started_at: when the impact began, if earlier. Starts the response and update clocks, copies the checklists for the severity, writes the "declared" event and notifies pg_incident.';

CREATE OR REPLACE FUNCTION @extschema@.incident_acknowledge(code text, responder text DEFAULT current_user)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    now_ timestamptz := @extschema@.incident__act_time(inc);
BEGIN
    responder := @extschema@.incident__require_text(responder, 'responder', 200);
    IF inc.status <> 'declared' THEN
        PERFORM @extschema@.incident__refuse(inc, 'acknowledge',
            CASE WHEN inc.status IN ('resolved', 'closed')
                 THEN 'Add a note with incident_note() instead.'
                 ELSE 'Post progress with incident_update() instead.' END);
    END IF;

    UPDATE @extschema@.incident i
       SET status = 'acknowledged', acknowledged_at = now_, acknowledged_by = responder
     WHERE i.id = inc.id
    RETURNING * INTO inc;

    PERFORM @extschema@.incident__event(inc, 'acknowledged', responder, NULL,
        pg_catalog.jsonb_build_object('response_due', inc.response_due,
                                      'on_time', now_ <= inc.response_due),
        now_);
    RETURN inc.status;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_acknowledge(text, text) IS
'Acknowledges a declared incident on behalf of responder (default: the calling role), which stops its response clock. Returns the new status.';

CREATE OR REPLACE FUNCTION @extschema@.incident_update(code text, status text, message text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    now_ timestamptz := @extschema@.incident__act_time(inc);
    new_status text := pg_catalog.lower(@extschema@.incident__require_text(incident_update.status, 'status', 100));
BEGIN
    IF new_status NOT IN ('investigating', 'identified', 'mitigating', 'monitoring') THEN
        RAISE EXCEPTION 'invalid status "%"', @extschema@.incident__quote(incident_update.status)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid statuses are investigating, identified, mitigating and monitoring; use incident_resolve() to resolve and incident_acknowledge() to acknowledge.';
    END IF;
    message := @extschema@.incident__require_text(message, 'message', 10000);
    IF inc.status = 'declared' THEN
        PERFORM @extschema@.incident__refuse(inc, 'update', 'Acknowledge it first with incident_acknowledge().');
    ELSIF inc.status IN ('resolved', 'closed') THEN
        PERFORM @extschema@.incident__refuse(inc, 'update', 'Add a note with incident_note() instead.');
    END IF;

    UPDATE @extschema@.incident i
       SET status = new_status, last_update_at = now_,
           next_update_due = @extschema@.incident__deadline(i.severity, 'update', now_)
     WHERE i.id = inc.id
    RETURNING * INTO inc;

    PERFORM @extschema@.incident__event(inc, 'status_update', @extschema@.incident_invoker(), message,
        pg_catalog.jsonb_build_object('next_update_due', inc.next_update_due), now_);
    RETURN inc.status;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_update(text, text, text) IS
'Posts a status update on an acknowledged, open incident: status is investigating, identified, mitigating or monitoring; message says what is happening. Restarts the update clock. Returns the new status.';

CREATE OR REPLACE FUNCTION @extschema@.incident_assign(code text, role text, responder text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    wanted_role text := pg_catalog.lower(@extschema@.incident__require_text(incident_assign.role, 'role', 100));
    previous text;
BEGIN
    IF wanted_role NOT IN ('incident_commander', 'technical_lead', 'communications_lead') THEN
        RAISE EXCEPTION 'invalid incident role "%"', @extschema@.incident__quote(incident_assign.role)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid roles are incident_commander, technical_lead and communications_lead.';
    END IF;
    responder := @extschema@.incident__require_text(responder, 'responder', 200);
    IF inc.status = 'closed' THEN
        PERFORM @extschema@.incident__refuse(inc, 'assign roles on', 'A closed incident is final; add a note with incident_note() to correct the record.');
    END IF;

    previous := CASE wanted_role WHEN 'incident_commander' THEN inc.incident_commander
                                 WHEN 'technical_lead' THEN inc.technical_lead
                                 ELSE inc.communications_lead END;
    IF previous IS NOT DISTINCT FROM responder THEN
        RAISE EXCEPTION '% is already the % of incident "%"', @extschema@.incident__quote(responder), pg_catalog.replace(wanted_role, '_', ' '), inc.code
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Nothing to change: every assignment is an event, so give someone else.';
    END IF;

    UPDATE @extschema@.incident i
       SET incident_commander = CASE WHEN wanted_role = 'incident_commander' THEN responder ELSE i.incident_commander END,
           technical_lead = CASE WHEN wanted_role = 'technical_lead' THEN responder ELSE i.technical_lead END,
           communications_lead = CASE WHEN wanted_role = 'communications_lead' THEN responder ELSE i.communications_lead END
     WHERE i.id = inc.id
    RETURNING * INTO inc;

    PERFORM @extschema@.incident__event(inc, 'assigned', @extschema@.incident_invoker(),
        pg_catalog.format('%s is %s', responder, pg_catalog.replace(wanted_role, '_', ' ')),
        pg_catalog.jsonb_build_object('role', wanted_role, 'from', previous, 'to', responder));
    RETURN inc.status;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_assign(text, text, text) IS
'Gives one of the playbook''s roles (incident_commander, technical_lead, communications_lead) on an incident that is not closed to a responder; records who held it before. Returns the status.';

CREATE OR REPLACE FUNCTION @extschema@.incident_resolve(code text, root_cause text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    now_ timestamptz := @extschema@.incident__act_time(inc);
    actor text := @extschema@.incident_invoker();
BEGIN
    IF root_cause IS NOT NULL THEN
        root_cause := @extschema@.incident__require_text(root_cause, 'root cause', 10000);
    END IF;
    IF inc.status IN ('resolved', 'closed') THEN
        PERFORM @extschema@.incident__refuse(inc, 'resolve',
            CASE WHEN inc.status = 'resolved'
                 THEN 'Add a note with incident_note(), or close it with incident_close().'
                 ELSE 'Add a note with incident_note() instead.' END);
    END IF;

    UPDATE @extschema@.incident i
       SET status = 'resolved', resolved_at = now_, resolved_by = actor,
           root_cause = coalesce(incident_resolve.root_cause, i.root_cause),
           next_update_due = NULL, pir_due = @extschema@.incident__deadline(i.severity, 'pir', now_)
     WHERE i.id = inc.id
    RETURNING * INTO inc;

    PERFORM @extschema@.incident__event(inc, 'resolved', actor, inc.root_cause,
        pg_catalog.jsonb_build_object('pir_due', inc.pir_due,
                                      'duration_seconds', pg_catalog.date_part('epoch', inc.resolved_at - inc.declared_at)::bigint),
        now_);
    RETURN inc.status;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_resolve(text, text) IS
'Resolves an open incident (from any state before resolved, so a false alarm can be resolved unacknowledged), with an optional root cause. Stops the update clock and starts the post-incident review clock. Returns the new status.';

CREATE OR REPLACE FUNCTION @extschema@.incident_close(code text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    actor text := @extschema@.incident_invoker();
    now_ timestamptz := @extschema@.incident__act_time(inc);
BEGIN
    IF inc.status <> 'resolved' THEN
        PERFORM @extschema@.incident__refuse(inc, 'close',
            CASE WHEN inc.status = 'closed'
                 THEN 'A closed incident is final; add a note with incident_note() to correct the record.'
                 ELSE 'Resolve it first with incident_resolve().' END);
    END IF;

    UPDATE @extschema@.incident i
       SET status = 'closed', closed_at = now_, closed_by = actor
     WHERE i.id = inc.id
    RETURNING * INTO inc;

    PERFORM @extschema@.incident__event(inc, 'closed', actor, NULL, '{}', now_);
    RETURN inc.status;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_close(text) IS
'Closes a resolved incident; a closed incident is final. Returns the new status.';

CREATE OR REPLACE FUNCTION @extschema@.incident_checklist(code text)
RETURNS TABLE (checklist text, checklist_title text, phase text, item_no int, item text,
               done boolean, done_at timestamptz, done_by text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.checklist, c.checklist_title, c.phase, c.item_no, c.item, c.done, c.done_at, c.done_by
      FROM @extschema@.incident_checklist_items c
     -- a scalar subquery, so that the lookup runs once and the filter uses the index on code
     WHERE c.code = (SELECT (@extschema@.incident__find(incident_checklist.code, false)).code)
     ORDER BY c.sort_order, c.checklist, c.item_no
$$;

COMMENT ON FUNCTION @extschema@.incident_checklist(text) IS
'The checklist items of an incident in playbook order, with whether, when and by whom each was ticked.';

CREATE OR REPLACE FUNCTION @extschema@.incident_checklist_tick(code text, checklist text, item int,
                                                    responder text DEFAULT current_user)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    wanted text := pg_catalog.lower(@extschema@.incident__require_text(incident_checklist_tick.checklist, 'checklist', 100));
    item_text text;
    tick @extschema@.incident_checklist_tick;
    now_ timestamptz := @extschema@.incident__act_time(inc);
BEGIN
    responder := @extschema@.incident__require_text(responder, 'responder', 200);
    IF inc.status = 'closed' THEN
        PERFORM @extschema@.incident__refuse(inc, 'tick checklist items of', 'A closed incident is final; add a note with incident_note() to correct the record.');
    END IF;
    SELECT x.item INTO item_text
      FROM @extschema@.incident_checklist_set s,
           pg_catalog.jsonb_to_recordset(s.items) AS x(checklist text, item_no int, item text)
     WHERE s.id = inc.checklist_set AND x.checklist = wanted AND x.item_no = incident_checklist_tick.item;
    IF item_text IS NULL THEN
        RAISE EXCEPTION 'incident "%" has no item % in checklist "%"', inc.code, coalesce(incident_checklist_tick.item::text, 'NULL'), @extschema@.incident__quote(wanted)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = pg_catalog.format('See SELECT * FROM incident_checklist(%L) for its checklists and item numbers.', inc.code);
    END IF;
    SELECT * INTO tick FROM @extschema@.incident_checklist_tick t
     WHERE t.incident_id = inc.id AND t.checklist = wanted AND t.item_no = incident_checklist_tick.item;
    IF tick.incident_id IS NOT NULL THEN
        RAISE EXCEPTION 'item % in checklist "%" of incident "%" is already ticked', incident_checklist_tick.item, @extschema@.incident__quote(wanted), inc.code
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('%s ticked it at %s.', tick.done_by, tick.done_at);
    END IF;

    INSERT INTO @extschema@.incident_checklist_tick (incident_id, checklist, item_no, done_at, done_by)
    VALUES (inc.id, wanted, incident_checklist_tick.item, now_, responder);

    PERFORM @extschema@.incident__event(inc, 'checklist', responder, item_text,
        pg_catalog.jsonb_build_object('checklist', wanted, 'item_no', incident_checklist_tick.item), now_);
    RETURN inc.status;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_checklist_tick(text, text, int, text) IS
'Ticks item number item of a checklist of an incident, as done by responder (default: the calling role) now, and records it in the timeline. Returns the status.';

CREATE OR REPLACE FUNCTION @extschema@.incident_clock_state(due timestamptz, span interval, met_at timestamptz DEFAULT NULL,
                                                 at timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    now_ timestamptz := coalesce(at, @extschema@.incident_now());
BEGIN
    IF due IS NULL THEN
        RETURN NULL;
    END IF;
    IF span IS NULL OR span < interval '0' THEN
        RAISE EXCEPTION 'invalid span "%" of a clock due at %', coalesce(span::text, 'NULL'), due
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The span is the clock''s length, from its start to its due time; due_soon is its last quarter.',
                  HINT = 'Give the length of the clock as a positive interval, such as response_due - declared_at.';
    END IF;
    IF met_at IS NOT NULL THEN
        RETURN CASE WHEN met_at <= due THEN 'ok' ELSE 'breached' END;
    END IF;
    RETURN CASE WHEN now_ > due THEN 'breached'
                WHEN due - now_ <= span / 4 THEN 'due_soon'
                ELSE 'ok' END;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_clock_state(timestamptz, interval, timestamptz, timestamptz) IS
'State of a deadline: ok, due_soon (the last quarter of span remains) or breached; a clock met (met_at) is ok if met in time and breached if late. at defaults to incident_now(); a NULL due gives NULL, a NULL or negative span an error.';

CREATE OR REPLACE FUNCTION @extschema@.incident__classify_rule_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text;
BEGIN
    IF NEW.name IS NULL OR NEW.name !~ '^[a-z][a-z0-9_]*$' THEN
        RAISE EXCEPTION 'invalid classification rule name "%"', @extschema@.incident__quote(NEW.name)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A rule name has lower-case letters, digits and underscores and starts with a letter, such as "database_down".';
    END IF;
    IF NEW.severity IS NULL THEN
        RAISE EXCEPTION 'severity of classification rule "%" must not be null', @extschema@.incident__quote(NEW.name)
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a severity: P1, P2, P3 or P4, or its name (see incident_severity).';
    END IF;
    BEGIN
        NEW.severity := @extschema@.incident_severity_normalize(NEW.severity);
    EXCEPTION WHEN invalid_parameter_value THEN
        GET STACKED DIAGNOSTICS problem = PG_EXCEPTION_HINT;
        RAISE EXCEPTION 'invalid severity "%" in classification rule "%"', @extschema@.incident__quote(NEW.severity), @extschema@.incident__quote(NEW.name)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = problem;
    END;
    IF NEW.category IS NOT NULL THEN
        NEW.category := pg_catalog.lower(pg_catalog.btrim(NEW.category));
        IF NEW.category !~ '^[a-z][a-z0-9_]*$' THEN
            RAISE EXCEPTION 'invalid category "%" in classification rule "%"', @extschema@.incident__quote(NEW.category), @extschema@.incident__quote(NEW.name)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A category has lower-case letters, digits and underscores and starts with a letter, such as "database" or "feature_request".';
        END IF;
    END IF;
    IF NEW.pattern IS NULL THEN
        RAISE EXCEPTION 'pattern of classification rule "%" must not be null', @extschema@.incident__quote(NEW.name)
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a regular expression; ''^'' matches every text.';
    END IF;
    IF NEW.pattern = '' THEN
        RAISE EXCEPTION 'invalid pattern "" in classification rule "%"', @extschema@.incident__quote(NEW.name)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'An empty pattern matches every text, so the rule would decide every classification it reaches.',
                  HINT = 'Give a regular expression for what the rule recognises; a catch-all rule uses ''^'' on purpose.';
    END IF;
    BEGIN
        PERFORM '' OPERATOR(pg_catalog.~*) NEW.pattern;
    EXCEPTION WHEN invalid_regular_expression THEN
        GET STACKED DIAGNOSTICS problem = MESSAGE_TEXT;
        RAISE EXCEPTION 'invalid pattern "%" in classification rule "%"', @extschema@.incident__quote(NEW.pattern), @extschema@.incident__quote(NEW.name)
            USING ERRCODE = 'invalid_regular_expression',
                  DETAIL = pg_catalog.format('PostgreSQL says: %s.', problem),
                  HINT = 'The pattern is a PostgreSQL advanced regular expression, matched case-insensitively; test it with SELECT ''some text'' ~* ''pattern''.';
    END;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__classify_rule_check() IS
'Internal trigger: refuses a classification rule with an invalid name, pattern, severity or category, naming the rule; stores severities as P1..P4 and categories in lower case.';

CREATE OR REPLACE FUNCTION @extschema@.incident__choose_severity(severity text, title text, description text,
                                                      OUT chosen text, OUT why jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    phrase text;
    winner record;
    runner_up record;
    classified boolean := false;
BEGIN
    IF severity IS NOT NULL AND pg_catalog.lower(pg_catalog.btrim(severity)) <> 'auto' THEN
        chosen := @extschema@.incident_severity_normalize(severity);
        why := NULL;
        RETURN;
    END IF;

    phrase := pg_catalog.concat_ws(E'\n', title, description);
    -- one pass of the classifier gives both the winner and the runner-up
    FOR runner_up IN SELECT * FROM @extschema@.incident_classify_explain(phrase) e WHERE e.rank <= 2 ORDER BY e.rank LOOP
        IF runner_up.rank = 1 THEN
            winner := runner_up;
            classified := true;
        END IF;
    END LOOP;
    IF NOT classified THEN
        RAISE EXCEPTION 'could not classify incident "%"', @extschema@.incident__quote(title)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'No enabled rule of incident_classify_rule matches its title or description.',
                  HINT = 'Give a severity (P1, P2, P3 or P4), or enable the catch-all rule "unclassified".';
    END IF;
    chosen := winner.severity;
    why := pg_catalog.jsonb_build_object(
        'severity', winner.severity,
        'rule', winner.rule,
        'category', winner.category,
        'matched', winner.matched,
        'runner_up', CASE WHEN runner_up.rank <> 2 THEN NULL
                          ELSE pg_catalog.jsonb_build_object('rule', runner_up.rule, 'severity', runner_up.severity,
                                                             'category', runner_up.category) END,
        'asked', coalesce(severity, 'NULL'));
END
$$;

COMMENT ON FUNCTION @extschema@.incident__choose_severity(text, text, text) IS
'Internal: the severity a declaration gets from what the caller gave, and why when it was not given outright: for NULL or ''auto'', the classification of title and description by incident_classify_explain() (rule, category, the text matched, the runner-up).';

CREATE OR REPLACE FUNCTION @extschema@.incident__span_text(starts time, ends time)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.regexp_replace(starts::text, ':00$', '') || '-'
        || pg_catalog.regexp_replace(ends::text, ':00$', '')
$$;

COMMENT ON FUNCTION @extschema@.incident__span_text(time, time) IS
'Internal: a working span as people write it, such as 09:00-17:00.';

CREATE OR REPLACE FUNCTION @extschema@.incident__calendar_check()
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

CREATE OR REPLACE FUNCTION @extschema@.incident__calendar_hours_check()
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

CREATE OR REPLACE FUNCTION @extschema@.incident__calendar_holiday_check()
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

CREATE OR REPLACE FUNCTION @extschema@.incident__severity_calendar_check()
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

CREATE OR REPLACE FUNCTION @extschema@.incident__require_rotation(name text)
RETURNS @extschema@.incident_rotation
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.incident_rotation;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'rotation must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the name of a rotation from incident_rotation.';
    END IF;
    SELECT * INTO r FROM @extschema@.incident_rotation x WHERE x.name = incident__require_rotation.name;
    IF r.name IS NULL THEN
        RAISE EXCEPTION 'rotation "%" does not exist', @extschema@.incident__quote(name)
            USING ERRCODE = 'no_data_found',
                  HINT = 'See incident_rotation for the rotations.';
    END IF;
    RETURN r;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__require_rotation(text) IS
'Internal: the rotation of this name, or an error if the name is null or unknown.';

CREATE OR REPLACE FUNCTION @extschema@.incident_oncall(rotation text, at timestamptz DEFAULT @extschema@.incident_now(),
                                            OUT primary_responder text, OUT backup_responder text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.incident_rotation := @extschema@.incident__require_rotation(incident_oncall.rotation);
    found_ record;
BEGIN
    IF incident_oncall.at IS NULL THEN
        RAISE EXCEPTION 'time must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a time, or leave it out for now (incident_now()).';
    END IF;
    IF NOT pg_catalog.isfinite(incident_oncall.at) THEN
        RAISE EXCEPTION 'invalid time "%" for rotation "%"', incident_oncall.at, r.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Who is on call is asked of a definite time.',
                  HINT = 'Give a time such as ''2026-03-04 12:00 Europe/Berlin'', or leave it out for now (incident_now()).';
    END IF;
    IF NOT EXISTS (SELECT FROM @extschema@.incident_rotation_member m WHERE m.rotation = r.name) THEN
        RAISE EXCEPTION 'rotation "%" has no members', r.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Add responders to it: INSERT INTO incident_rotation_member (rotation, position, responder) VALUES (%L, 1, ...).', r.name);
    END IF;
    SELECT * INTO found_ FROM @extschema@.incident__oncall(r.name, incident_oncall.at);
    primary_responder := found_.primary_responder;
    backup_responder := found_.backup_responder;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_oncall(text, timestamptz) IS
'Who is on call in a rotation at a time (default: incident_now()): the primary and the backup, overrides applied. Both are NULL before the rotation''s first handoff; the backup is NULL in a one-member rotation without a backup. An error for an unknown rotation or one without members.';

CREATE OR REPLACE FUNCTION @extschema@.incident_escalation_schedule(code text, max_steps int DEFAULT 100)
RETURNS TABLE (step int, repeat int, level int, due_at timestamptz, target_type text, target text,
               responder text, reason text, state text, escalated_at timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, false);
    policy_ text;
    now_ timestamptz := @extschema@.incident_now();
BEGIN
    IF max_steps IS NULL OR max_steps < 1 OR max_steps > 1000 THEN
        RAISE EXCEPTION 'invalid max_steps "%"', coalesce(max_steps::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A schedule lists from 1 to 1000 steps.',
                  HINT = 'Give the number of steps to list, from 1 to 1000 (default 100).';
    END IF;
    SELECT s.escalation_policy INTO policy_ FROM @extschema@.incident_severity s WHERE s.severity = inc.severity;
    RETURN QUERY
    SELECT x.step, x.repeat, x.level, x.due_at, x.target_type, x.target,
           CASE WHEN e.id IS NOT NULL THEN e.details->>'responder' ELSE t.responder END,
           CASE WHEN e.id IS NOT NULL THEN e.details->>'reason' ELSE t.reason END,
           CASE WHEN e.id IS NOT NULL THEN 'escalated'
                WHEN x.due_at <= now_ THEN 'due'
                ELSE 'scheduled' END,
           e.at
      FROM pg_catalog.generate_series(0, max_steps - 1) AS g(n)
     CROSS JOIN LATERAL @extschema@.incident__escalation_step(policy_, inc.declared_at, g.n) x
      LEFT JOIN @extschema@.incident_event e
             ON e.incident_id = inc.id AND e.kind = 'escalated'
            AND e.details->>'policy' = policy_ AND (e.details->>'step')::int = g.n
      LEFT JOIN LATERAL @extschema@.incident__escalation_target(x.target_type, x.target, x.due_at) t
             ON e.id IS NULL
     WHERE x.step IS NOT NULL                   -- no row once the policy is exhausted
       AND (e.id IS NOT NULL OR inc.status = 'declared')
     ORDER BY g.n;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_escalation_schedule(text, int) IS
'The escalation plan of an incident under its severity''s policy, step by step (at most max_steps): each level of each run with its due time, whom it pages (as recorded for steps escalated; resolved at the due time for the others) or why nobody, and its state: escalated, due or scheduled. Once the incident is acknowledged only the escalated steps remain.';

CREATE FUNCTION @extschema@.incident__escalate(code text, by_hand boolean)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    now_ timestamptz := @extschema@.incident__act_time(inc);
    policy_ text;
    last_step int;
    done int;
    last_at timestamptz;
    nx record;
    t record;
    r @extschema@.incident_responder;
    target_text text;
BEGIN
    IF inc.status <> 'declared' THEN
        PERFORM @extschema@.incident__refuse(inc, 'escalate',
            CASE WHEN inc.status IN ('resolved', 'closed')
                 THEN 'Only open, unacknowledged incidents escalate.'
                 ELSE 'Escalation stops once an incident is acknowledged; bring people in with incident_assign().' END);
    END IF;
    SELECT s.escalation_policy INTO policy_ FROM @extschema@.incident_severity s WHERE s.severity = inc.severity;
    IF policy_ IS NULL THEN
        RAISE EXCEPTION 'incident "%" has no escalation policy', inc.code
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Its severity %s has none.', inc.severity),
                  HINT = pg_catalog.format('Set one with UPDATE incident_severity SET escalation_policy = ... WHERE severity = %L.', inc.severity);
    END IF;
    SELECT pg_catalog.max((e.details->>'step')::int), pg_catalog.count(*), pg_catalog.max(e.at)
      INTO last_step, done, last_at
      FROM @extschema@.incident_event e
     WHERE e.incident_id = inc.id AND e.kind = 'escalated' AND e.details->>'policy' = policy_;
    SELECT * INTO nx FROM @extschema@.incident__escalation_step(policy_, inc.declared_at, coalesce(last_step + 1, 0));
    IF nx.step IS NULL THEN
        RAISE EXCEPTION 'incident "%" has no escalation level left', inc.code
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = CASE WHEN done = 0
                                THEN pg_catalog.format('Escalation policy "%s" has no levels.', policy_)
                                ELSE pg_catalog.format('All %s escalations of policy "%s" are done; the last was at %s.', done, policy_, last_at) END,
                  HINT = 'Acknowledge it with incident_acknowledge(), or page someone directly.';
    END IF;

    -- whoever the target stands for now, which is when the page goes out
    SELECT * INTO t FROM @extschema@.incident__escalation_target(nx.target_type, nx.target, now_);
    SELECT * INTO r FROM @extschema@.incident_responder x WHERE x.name = t.responder;
    target_text := @extschema@.incident__escalation_target_text(nx.target_type, nx.target);
    IF t.responder IS NULL THEN
        RAISE WARNING 'level % of escalation policy "%" pages nobody: %', nx.level, policy_, t.reason
            USING HINT = 'The escalation is recorded and the next level follows; fix the rotation, role or policy so that the level reaches someone.';
    END IF;

    PERFORM @extschema@.incident__event(inc, 'escalated',
        CASE WHEN by_hand THEN @extschema@.incident_invoker() ELSE 'pg_incident' END,
        pg_catalog.format('level %s of policy "%s"%s: %s (%s)', nx.level, policy_,
                          CASE WHEN nx.repeat > 0 THEN pg_catalog.format(', repeat %s', nx.repeat) ELSE '' END,
                          coalesce(t.responder, 'nobody'), coalesce(t.reason, target_text)),
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'policy', policy_, 'step', nx.step, 'repeat', nx.repeat, 'level', nx.level,
            'target_type', nx.target_type, 'target', nx.target, 'responder', t.responder,
            'reason', t.reason, 'phone', r.phone, 'email', r.email, 'chat', r.chat,
            'due_at', nx.due_at, 'early', now_ < nx.due_at, 'by_hand', by_hand)),
        now_);
    RETURN t.responder;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__escalate(text, boolean) IS
'Internal: what incident_escalate() does, by hand (by_hand true, the caller the actor) or by the worker when a level falls due (by_hand false, actor pg_incident): escalates the unacknowledged incident to the next level of its severity''s policy, resolving the target now, with one escalated timeline event; returns the person paged.';

CREATE OR REPLACE FUNCTION @extschema@.incident_escalate(code text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@.incident__escalate(code, true);
END
$$;

COMMENT ON FUNCTION @extschema@.incident_escalate(text) IS
'Escalates an unacknowledged incident by hand to the next level of its severity''s escalation policy, due or not: resolves the level''s target now, writes an "escalated" timeline event naming the level and the person (with their contacts), and returns the person (NULL, with a warning, when the level pages nobody). incident_escalations then shows the level after it.';


------------------------------------------------------------------------------
-- Probes (50_probes.sql), new in 0.3.0; their events are of kind probe
------------------------------------------------------------------------------

ALTER TABLE @extschema@.incident_event
    DROP CONSTRAINT incident_event_kind_check,
    ADD CONSTRAINT incident_event_kind_check
        CHECK (kind IN ('declared', 'acknowledged', 'status_update', 'severity_changed', 'assigned', 'note',
                        'checklist', 'resolved', 'closed', 'escalated', 'reminder', 'probe'));
COMMENT ON COLUMN @extschema@.incident_event.kind IS
'declared, acknowledged, status_update, severity_changed, assigned, note, checklist, resolved, closed, escalated, reminder or probe (a probe went down, changed its failure or recovered).';
COMMENT ON COLUMN @extschema@.incident_timeline.kind IS
'declared, acknowledged, status_update, severity_changed, assigned, note, checklist, resolved, closed, escalated, reminder or probe (a probe went down, changed its failure or recovered).';

------------------------------------------------------------------------------
-- Probes
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_probe (
    id                  bigserial PRIMARY KEY,
    name                text NOT NULL UNIQUE
                        CONSTRAINT incident_probe_name_check
                        CHECK (name = pg_catalog.btrim(name) AND name <> '' AND pg_catalog.length(name) <= 100),
    kind                text NOT NULL CHECK (kind IN ('http', 'sql')),
    every               interval NOT NULL DEFAULT '30 seconds'
                        CONSTRAINT incident_probe_every_check
                        CHECK (every >= interval '1 second' AND every <= interval '1 day'),
    timeout             interval NOT NULL DEFAULT '10 seconds'
                        CONSTRAINT incident_probe_timeout_check
                        CHECK (timeout >= interval '100 milliseconds' AND timeout <= interval '5 minutes'),
    failures            int NOT NULL DEFAULT 3
                        CONSTRAINT incident_probe_failures_check CHECK (failures BETWEEN 1 AND 100),
    recoveries          int NOT NULL DEFAULT 2
                        CONSTRAINT incident_probe_recoveries_check CHECK (recoveries BETWEEN 1 AND 100),
    severity            text NOT NULL DEFAULT 'auto'
                        CONSTRAINT incident_probe_severity_check CHECK (severity IN ('auto', 'P1', 'P2', 'P3', 'P4')),
    component           text CONSTRAINT incident_probe_component_check
                        CHECK (component = pg_catalog.btrim(component) AND component <> '' AND pg_catalog.length(component) <= 100),
    enabled             boolean NOT NULL DEFAULT true,
    resolve_on_recovery boolean NOT NULL DEFAULT false,
    -- http
    url                 text CONSTRAINT incident_probe_url_check CHECK (url ~* '^https?://[^/?#@\s]+([/?#]|$)'),
    method              text NOT NULL DEFAULT 'GET'
                        CONSTRAINT incident_probe_method_check CHECK (method IN ('GET', 'HEAD', 'POST')),
    headers             text[] NOT NULL DEFAULT '{}'
                        CONSTRAINT incident_probe_headers_check
                        CHECK (pg_catalog.array_position(headers, NULL) IS NULL
                               AND pg_catalog.array_to_string(headers, '') !~ '[\r\n]'),
    body                text,
    expect_status       int[] CONSTRAINT incident_probe_expect_status_check
                        CHECK (100 <= ALL (expect_status) AND 599 >= ALL (expect_status) AND expect_status <> '{}'),
    expect_body         text,
    expect_body_regex   text,
    degraded_after      interval NOT NULL DEFAULT '3 seconds'
                        CONSTRAINT incident_probe_degraded_after_check CHECK (degraded_after > interval '0'),
    verify_tls          boolean NOT NULL DEFAULT true,
    -- sql
    query               text,
    warn                numeric,
    crit                numeric,
    run_as              name,
    created_by          text NOT NULL DEFAULT current_user,
    CONSTRAINT incident_probe_target_check
        CHECK ((kind = 'http') = (url IS NOT NULL AND query IS NULL AND run_as IS NULL)
               AND (kind = 'sql') = (query IS NOT NULL AND run_as IS NOT NULL AND url IS NULL)),
    CONSTRAINT incident_probe_thresholds_check
        CHECK (warn IS NULL OR crit IS NULL OR warn <> crit)
);

COMMENT ON TABLE @extschema@.incident_probe IS
'Probes the background worker runs: an HTTP check of a URL (kind http) or a SQL check of a number or boolean (kind sql), every so often, with the hysteresis (failures, recoveries) and the severity of the incident it declares. Written by incident_probe_http(), incident_probe_sql() and incident_probe_drop(); readable by incident_viewer except headers and body, which may hold credentials (incident_admin reads all).';
COMMENT ON COLUMN @extschema@.incident_probe.every IS 'How often the probe runs (1 second to 1 day).';
COMMENT ON COLUMN @extschema@.incident_probe.timeout IS 'How long one check may take before it counts as a timeout.';
COMMENT ON COLUMN @extschema@.incident_probe.failures IS 'Consecutive failing checks before the probe is down and alerts.';
COMMENT ON COLUMN @extschema@.incident_probe.recoveries IS 'Consecutive passing checks before a down probe is up again.';
COMMENT ON COLUMN @extschema@.incident_probe.severity IS 'Severity of the incident the probe declares, or auto: classified from the failure (a slow page by its load time, anything else P1 for a whole service).';
COMMENT ON COLUMN @extschema@.incident_probe.component IS 'What the probe watches, such as website or checkout: probes of one component failing together open one incident, and maintenance windows are per component.';
COMMENT ON COLUMN @extschema@.incident_probe.resolve_on_recovery IS 'Whether recovery resolves the incident the probe declared or joined, once no probe of that incident is still down.';
COMMENT ON COLUMN @extschema@.incident_probe.expect_status IS 'HTTP status codes that pass; NULL: 200 to 399.';
COMMENT ON COLUMN @extschema@.incident_probe.expect_body IS 'A text the response body must contain; NULL: any body.';
COMMENT ON COLUMN @extschema@.incident_probe.expect_body_regex IS 'A regular expression (as for ~, case-sensitive unless it starts with (?i)) the response body must match; NULL: any body.';
COMMENT ON COLUMN @extschema@.incident_probe.degraded_after IS 'A passing HTTP check slower than this makes the probe degraded (the playbook: 3-5 s load times are P3, over 10 s P2).';
COMMENT ON COLUMN @extschema@.incident_probe.query IS 'SQL probe: a query returning one number or boolean, run read-only as run_as with statement_timeout = timeout.';
COMMENT ON COLUMN @extschema@.incident_probe.warn IS 'SQL probe: the value from which the probe is degraded (above it when crit is above warn, below it otherwise).';
COMMENT ON COLUMN @extschema@.incident_probe.crit IS 'SQL probe: the value from which the check fails; a boolean result fails when false.';
COMMENT ON COLUMN @extschema@.incident_probe.run_as IS 'SQL probe: the role the query runs as; never a superuser.';

CREATE TABLE @extschema@.incident_probe_state (
    probe_id            bigint PRIMARY KEY REFERENCES @extschema@.incident_probe ON DELETE CASCADE,
    state               text NOT NULL DEFAULT 'unknown'
                        CHECK (state IN ('unknown', 'up', 'degraded', 'down', 'flapping')),
    since               timestamptz NOT NULL,
    next_run_at         timestamptz NOT NULL,
    claimed_at          timestamptz,
    consecutive_failures int NOT NULL DEFAULT 0,
    consecutive_successes int NOT NULL DEFAULT 0,
    first_failure_at    timestamptz,
    last_result_id      bigint,
    last_failure        text,
    incident_id         bigint REFERENCES @extschema@.incident,
    last_ok             boolean,
    flips               timestamptz[] NOT NULL DEFAULT '{}',
    alerted             boolean NOT NULL DEFAULT false
);

-- the worker claims and looks for the next due check in next_run_at order
CREATE INDEX incident_probe_state_next_run_idx ON @extschema@.incident_probe_state (next_run_at);

COMMENT ON TABLE @extschema@.incident_probe_state IS
'Where each probe stands, written by incident__probe_record(): its state, since when, its run of failures or successes, when it runs next (claimed_at while a SQL probe''s check is in flight), and the open incident it declared or joined. For a steady HTTP probe (up, no failure, no flip in 30 minutes) the worker counts passing checks in memory and writes consecutive_successes and next_run_at with them, at most pg_incident.probe_flush_interval late.';
COMMENT ON COLUMN @extschema@.incident_probe_state.claimed_at IS 'Set while the SQL worker has a check of the SQL probe in flight; a check claimed long ago (a crashed worker) counts as not done. The HTTP worker keeps its claims in memory.';
COMMENT ON COLUMN @extschema@.incident_probe_state.flips IS 'Times of the checks of the last 30 minutes whose outcome (pass or fail) differed from the check before: 6 or more make the probe flapping, and 30 minutes without one end it.';
COMMENT ON COLUMN @extschema@.incident_probe_state.alerted IS 'Whether the probe has alerted (declared or joined an incident) in its current run of failures: a run that began in a maintenance window alerts once the window ends, and a run whose incident a person resolved does not alert again.';
COMMENT ON COLUMN @extschema@.incident_probe_state.first_failure_at IS 'Time of the first failing check of the current run of failures: the impact start of the incident it declares.';

-- Probes of one component decide about their shared incident one at a
-- time, under a lock on the component's row here: a row lock only the
-- extension's own functions can take (an advisory lock on a key anyone can
-- compute, any login could take and hold, stopping the worker).
CREATE TABLE @extschema@.incident_probe_component_lock (
    component           text PRIMARY KEY
);

COMMENT ON TABLE @extschema@.incident_probe_component_lock IS
'Internal: one row per component that HTTP or SQL probes have named, locked by incident__probe_record() so that probes of one component decide about their shared incident one at a time.';

CREATE TABLE @extschema@.incident_probe_result (
    id              bigserial PRIMARY KEY,
    probe_id        bigint NOT NULL REFERENCES @extschema@.incident_probe ON DELETE CASCADE,
    at              timestamptz NOT NULL,
    ok              boolean NOT NULL,
    failure         text CHECK (failure IN ('dns', 'connect', 'tls', 'timeout', 'status', 'body', 'too_large',
                                            'protocol', 'redirects', 'other', 'sql_error', 'threshold', 'slow',
                                            'config')),
    status          int,
    value           numeric,
    latency_ms      double precision,
    timings         jsonb NOT NULL DEFAULT '{}',
    error           text,
    state           text NOT NULL,
    state_changed   boolean NOT NULL DEFAULT false
);

CREATE INDEX incident_probe_result_probe_idx ON @extschema@.incident_probe_result (probe_id, at);

COMMENT ON TABLE @extschema@.incident_probe_result IS
'Checks worth keeping: every failing or slow check and every check that changed the probe''s state, with what failed (failure), the HTTP status or SQL value, the latency and libcurl''s phase timings. Passing checks that change nothing are counted in incident_probe_rollup instead.';
COMMENT ON COLUMN @extschema@.incident_probe_result.failure IS 'What failed: dns, connect, tls, timeout, status, body, too_large, protocol, redirects or other for HTTP; sql_error, timeout or threshold (past crit, or past warn on a passing check) for SQL; slow for a passing HTTP check over degraded_after; config for a check that could not run (its run_as role is gone or a superuser), which leaves the probe unknown; NULL when it passed.';
COMMENT ON COLUMN @extschema@.incident_probe_result.timings IS 'Phase timings in milliseconds: dns, connect, tls, first_byte, total.';
COMMENT ON COLUMN @extschema@.incident_probe_result.state IS 'The probe''s state after this check.';

CREATE TABLE @extschema@.incident_probe_rollup (
    probe_id        bigint NOT NULL REFERENCES @extschema@.incident_probe ON DELETE CASCADE,
    hour            timestamptz NOT NULL,
    checks          int NOT NULL DEFAULT 0,
    passed          int NOT NULL DEFAULT 0,
    latency_ms_sum  double precision NOT NULL DEFAULT 0,
    latency_ms_max  double precision,
    latency_buckets int[] NOT NULL DEFAULT pg_catalog.array_fill(0, ARRAY[16]),
    PRIMARY KEY (probe_id, hour)
);

COMMENT ON TABLE @extschema@.incident_probe_rollup IS
'Every check of each probe counted per hour: checks, passed, latency sum and maximum, and a latency histogram (bucket k, 1 to 16, counts latencies below 2^(k-1) ms, the last one the rest) from which incident_probe_status reads percentiles.';

CREATE TABLE @extschema@.incident_maintenance (
    id          bigserial PRIMARY KEY,
    component   text,
    probe       text,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    reason      text,
    created_by  text NOT NULL DEFAULT current_user,
    CONSTRAINT incident_maintenance_target_check CHECK (component IS NOT NULL OR probe IS NOT NULL),
    CONSTRAINT incident_maintenance_period_check CHECK (ends_at > starts_at)
);

COMMENT ON TABLE @extschema@.incident_maintenance IS
'Maintenance windows: from starts_at until ends_at, probes of the component (or the probe named) raise no incident; their results are still recorded. Editable by incident_admin.';

COMMENT ON CONSTRAINT incident_probe_name_check ON @extschema@.incident_probe IS 'A probe''s name has 1 to 100 characters, such as "website".';
COMMENT ON CONSTRAINT incident_probe_every_check ON @extschema@.incident_probe IS 'Give an interval from ''1 second'' to ''1 day'', such as ''30 seconds''.';
COMMENT ON CONSTRAINT incident_probe_timeout_check ON @extschema@.incident_probe IS 'Give a timeout from ''100 milliseconds'' to ''5 minutes'', such as ''10 seconds''.';
COMMENT ON CONSTRAINT incident_probe_failures_check ON @extschema@.incident_probe IS 'Give the number of failing checks before an alert, from 1 to 100.';
COMMENT ON CONSTRAINT incident_probe_recoveries_check ON @extschema@.incident_probe IS 'Give the number of passing checks before recovery, from 1 to 100.';
COMMENT ON CONSTRAINT incident_probe_severity_check ON @extschema@.incident_probe IS 'Give P1, P2, P3, P4 or auto.';
COMMENT ON CONSTRAINT incident_probe_url_check ON @extschema@.incident_probe IS 'Give an http:// or https:// URL with a host and without a user name or password (pass those as a header), such as ''https://shop.example/health''.';
COMMENT ON CONSTRAINT incident_probe_method_check ON @extschema@.incident_probe IS 'Give GET, HEAD or POST.';
COMMENT ON CONSTRAINT incident_probe_degraded_after_check ON @extschema@.incident_probe IS 'Give the latency from which a passing check counts as degraded, more than 0, such as ''3 seconds''.';
COMMENT ON CONSTRAINT incident_probe_headers_check ON @extschema@.incident_probe IS 'Give headers as ''Name: value'' texts without line breaks (CR or LF), one header each.';
COMMENT ON CONSTRAINT incident_probe_expect_status_check ON @extschema@.incident_probe IS 'Give HTTP status codes from 100 to 599, such as ''{200,204}''.';
COMMENT ON CONSTRAINT incident_probe_target_check ON @extschema@.incident_probe IS 'An http probe has a url and no query; a sql probe has a query and run_as and no url.';
COMMENT ON CONSTRAINT incident_probe_thresholds_check ON @extschema@.incident_probe IS 'warn and crit must differ: the side of crit says whether high or low values are bad.';
COMMENT ON CONSTRAINT incident_maintenance_target_check ON @extschema@.incident_maintenance IS 'Name a component or a probe.';
COMMENT ON CONSTRAINT incident_maintenance_period_check ON @extschema@.incident_maintenance IS 'ends_at must be after starts_at.';

SELECT @extschema@.incident__checked_table('@extschema@.incident_probe', 'name', 'component');
SELECT @extschema@.incident__checked_table('@extschema@.incident_maintenance', 'component', 'probe');

-- the HTTP worker keeps its probes' schedule in memory: a change by anyone
-- but the worker makes it read the schedule again
CREATE FUNCTION @extschema@.incident__probe_state_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'incident__probe_state_changed'
LANGUAGE C;

COMMENT ON FUNCTION @extschema@.incident__probe_state_changed() IS
'Internal: statement trigger on incident_probe and incident_probe_state; a change made outside the worker processes makes the HTTP worker read its schedule again (at its next turn).';

CREATE TRIGGER incident_probe_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.incident_probe
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__probe_state_changed();
CREATE TRIGGER incident_probe_state_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.incident_probe_state
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__probe_state_changed();

------------------------------------------------------------------------------
-- Writing probes
------------------------------------------------------------------------------

-- incident__probe_save(row): inserts or replaces the probe of that name
-- (keeping its id and history) and schedules it to run now.
CREATE FUNCTION @extschema@.incident__probe_save(p @extschema@.incident_probe)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    saved_id bigint;
    now_ timestamptz := @extschema@.incident__act_time(NULL);
BEGIN
    p.name := @extschema@.incident__require_text(p.name, 'probe name', 100);
    p.created_by := @extschema@.incident_invoker();
    IF p.kind = 'sql' AND p.run_as IS NOT NULL THEN
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = p.run_as) THEN
            RAISE EXCEPTION 'role "%" does not exist', @extschema@.incident__quote(p.run_as)
                USING ERRCODE = 'undefined_object',
                      HINT = 'Give run_as a role that may read what the query reads, such as pg_monitor members.';
        END IF;
        IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = p.run_as)
           AND coalesce(pg_catalog.current_setting('pg_incident.sql_probe_allow_superuser', true), 'off')
               NOT IN ('on', 'true', 'yes', '1') THEN
            RAISE EXCEPTION 'cannot run SQL probe "%" as superuser "%"', p.name, p.run_as
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'A probe''s query runs unattended, every few seconds; as a superuser it could do anything.',
                      HINT = 'Create a role for probes, grant it pg_monitor or what the query reads, and give it as run_as (or, as a last resort, set pg_incident.sql_probe_allow_superuser).';
        END IF;
        -- the probe acts as run_as: only someone who may act as that role may say so
        IF NOT pg_catalog.pg_has_role(p.created_by, p.run_as, 'USAGE') THEN
            RAISE EXCEPTION 'role "%" may not run SQL probe "%" as role "%"', @extschema@.incident__quote(p.created_by),
                  p.name, @extschema@.incident__quote(p.run_as)
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'A SQL probe''s query runs with run_as''s privileges, so its author must hold them.',
                      HINT = pg_catalog.format('GRANT %I TO %I, or give a run_as role you are a member of.', p.run_as, p.created_by);
        END IF;
    END IF;
    IF p.expect_body_regex IS NOT NULL THEN
        BEGIN
            PERFORM '' COLLATE "C" ~ p.expect_body_regex;
        EXCEPTION WHEN invalid_regular_expression THEN
            RAISE EXCEPTION 'invalid expect_body_regex "%"', pg_catalog.left(p.expect_body_regex, 100)
                USING ERRCODE = 'invalid_regular_expression',
                      DETAIL = pg_catalog.format('The expression does not compile: %s.', SQLERRM),
                      HINT = 'Give a regular expression as for the ~ operator, such as ''"status": *"ok"''.';
        END;
    END IF;
    INSERT INTO @extschema@.incident_probe AS t
        (name, kind, every, timeout, failures, recoveries, severity, component, enabled, resolve_on_recovery,
         url, method, headers, body, expect_status, expect_body, expect_body_regex, degraded_after, verify_tls,
         query, warn, crit, run_as, created_by)
    VALUES (p.name, p.kind, p.every, p.timeout, p.failures, p.recoveries, p.severity, p.component, p.enabled,
            p.resolve_on_recovery, p.url, p.method, p.headers, p.body, p.expect_status, p.expect_body,
            p.expect_body_regex, p.degraded_after, p.verify_tls, p.query, p.warn, p.crit, p.run_as, p.created_by)
    ON CONFLICT (name) DO UPDATE
       SET kind = excluded.kind, every = excluded.every, timeout = excluded.timeout,
           failures = excluded.failures, recoveries = excluded.recoveries, severity = excluded.severity,
           component = excluded.component, enabled = excluded.enabled,
           resolve_on_recovery = excluded.resolve_on_recovery, url = excluded.url, method = excluded.method,
           headers = excluded.headers, body = excluded.body, expect_status = excluded.expect_status,
           expect_body = excluded.expect_body, expect_body_regex = excluded.expect_body_regex,
           degraded_after = excluded.degraded_after,
           verify_tls = excluded.verify_tls, query = excluded.query, warn = excluded.warn, crit = excluded.crit,
           run_as = excluded.run_as, created_by = excluded.created_by
    RETURNING t.id INTO saved_id;
    INSERT INTO @extschema@.incident_probe_state AS s (probe_id, since, next_run_at)
    VALUES (saved_id, now_, now_)
    ON CONFLICT (probe_id) DO UPDATE SET next_run_at = excluded.next_run_at, claimed_at = NULL;
    RETURN saved_id;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__probe_save(@extschema@.incident_probe) IS
'Internal: inserts the probe, or replaces the one of the same name keeping its id, state and history, refuses an unknown run_as, a superuser one (unless pg_incident.sql_probe_allow_superuser is on) and one the caller is not a member of, and schedules it to run now; returns its id.';

CREATE FUNCTION @extschema@.incident_probe_http(name text, url text, every interval DEFAULT '30 seconds',
                                                timeout interval DEFAULT '10 seconds', failures int DEFAULT 3,
                                                recoveries int DEFAULT 2, severity text DEFAULT 'auto',
                                                component text DEFAULT NULL, method text DEFAULT 'GET',
                                                headers text[] DEFAULT '{}', body text DEFAULT NULL,
                                                expect_status int[] DEFAULT NULL, expect_body text DEFAULT NULL,
                                                degraded_after interval DEFAULT '3 seconds',
                                                verify_tls boolean DEFAULT true,
                                                resolve_on_recovery boolean DEFAULT false,
                                                enabled boolean DEFAULT true,
                                                expect_body_regex text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p @extschema@.incident_probe;
    authority text;
    port text;
BEGIN
    -- the URL is shown to incident_viewer and written into the incidents it
    -- declares: credentials go in headers, which only incident_admin reads
    IF coalesce(pg_catalog.btrim(url), '') = '' THEN
        RAISE EXCEPTION 'the url of HTTP probe "%" is empty', @extschema@.incident__quote(name)
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give an http:// or https:// URL with a host, such as ''https://shop.example/health''.';
    END IF;
    authority := pg_catalog.substring(pg_catalog.btrim(url), '^[A-Za-z]+://([^/?#]*)');
    IF authority LIKE '%@%' THEN
        RAISE EXCEPTION 'the url of HTTP probe "%" holds a user name or password', @extschema@.incident__quote(name)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('It was given as %s.',
                               @extschema@.incident__quote(pg_catalog.regexp_replace(pg_catalog.btrim(url), '^([A-Za-z]+://)[^/?#]*@', '\1...@'))),
                  HINT = 'Incident viewers read a probe''s url, and the incidents it declares quote it: pass credentials as a header, such as headers => ARRAY[''Authorization: Basic ...''], which only incident_admin reads.';
    END IF;
    port := pg_catalog.substring(authority, '^(?:\[[^]]*\]|[^\[:]*):(.*)$');
    IF port IS NOT NULL AND (port !~ '^[0-9]{1,5}$' OR port::int NOT BETWEEN 1 AND 65535) THEN
        RAISE EXCEPTION 'invalid port "%" in the url of HTTP probe "%"', @extschema@.incident__quote(port),
                        @extschema@.incident__quote(name)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a port from 1 to 65535, such as ''https://shop.example:8443/health'', or none for the scheme''s own.';
    END IF;
    IF pg_catalog.upper(pg_catalog.btrim(method)) = 'HEAD' AND (expect_body IS NOT NULL OR expect_body_regex IS NOT NULL) THEN
        RAISE EXCEPTION 'HTTP probe "%" expects a body from a HEAD request', @extschema@.incident__quote(name)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A response to HEAD has no body, so every check would fail.',
                  HINT = 'Use method => ''GET'' to check the body, or drop expect_body and expect_body_regex.';
    END IF;
    p.name := name; p.kind := 'http'; p.url := pg_catalog.btrim(url); p.every := every; p.timeout := timeout;
    p.failures := failures; p.recoveries := recoveries;
    p.severity := CASE WHEN pg_catalog.lower(pg_catalog.btrim(severity)) = 'auto' THEN 'auto'
                       ELSE @extschema@.incident_severity_normalize(severity) END;
    p.component := component; p.method := pg_catalog.upper(pg_catalog.btrim(method)); p.headers := headers;
    p.body := body; p.expect_status := expect_status; p.expect_body := expect_body;
    p.expect_body_regex := expect_body_regex;
    p.degraded_after := degraded_after; p.verify_tls := verify_tls;
    p.resolve_on_recovery := resolve_on_recovery; p.enabled := enabled;
    RETURN @extschema@.incident__probe_save(p);
END
$$;

COMMENT ON FUNCTION @extschema@.incident_probe_http(text, text, interval, interval, int, int, text, text, text, text[], text, int[], text, interval, boolean, boolean, boolean, text) IS
'Creates or replaces the HTTP probe of this name: the worker requests url every so often (method, headers, body), and a check fails on a transport error, an unexpected status (default: 200-399), a body without expect_body or not matching expect_body_regex; a passing check slower than degraded_after makes it degraded. failures failing checks in a row declare an incident of the given severity (auto: classified from the failure); recoveries passing ones record the recovery. Returns the probe''s id.';

CREATE FUNCTION @extschema@.incident_probe_sql(name text, query text, every interval DEFAULT '30 seconds',
                                               timeout interval DEFAULT '10 seconds', failures int DEFAULT 3,
                                               recoveries int DEFAULT 2, severity text DEFAULT 'auto',
                                               component text DEFAULT NULL, warn numeric DEFAULT NULL,
                                               crit numeric DEFAULT NULL, run_as name DEFAULT NULL,
                                               resolve_on_recovery boolean DEFAULT false,
                                               enabled boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p @extschema@.incident_probe;
BEGIN
    IF run_as IS NULL THEN
        RAISE EXCEPTION 'run_as of SQL probe "%" must not be null', @extschema@.incident__quote(name)
            USING ERRCODE = 'null_value_not_allowed',
                  DETAIL = 'A SQL probe never runs silently as the worker''s superuser.',
                  HINT = 'Give the role the query runs as, such as a member of pg_monitor.';
    END IF;
    p.name := name; p.kind := 'sql'; p.query := query; p.every := every; p.timeout := timeout;
    p.failures := failures; p.recoveries := recoveries;
    p.severity := CASE WHEN pg_catalog.lower(pg_catalog.btrim(severity)) = 'auto' THEN 'auto'
                       ELSE @extschema@.incident_severity_normalize(severity) END;
    p.component := component; p.warn := warn; p.crit := crit; p.run_as := run_as;
    p.resolve_on_recovery := resolve_on_recovery; p.enabled := enabled;
    p.method := 'GET'; p.headers := '{}'; p.degraded_after := '3 seconds'; p.verify_tls := true;
    RETURN @extschema@.incident__probe_save(p);
END
$$;

COMMENT ON FUNCTION @extschema@.incident_probe_sql(text, text, interval, interval, int, int, text, text, numeric, numeric, name, boolean, boolean) IS
'Creates or replaces the SQL probe of this name: the worker runs query (one number or boolean) read-only as run_as with statement_timeout = timeout; the check fails on an error, a false boolean or a value past crit, and a value past warn makes it degraded. Returns the probe''s id.';

CREATE FUNCTION @extschema@.incident_probe_drop(name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM @extschema@.incident_probe p WHERE p.name = incident_probe_drop.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'probe "%" does not exist', @extschema@.incident__quote(name)
            USING ERRCODE = 'no_data_found',
                  HINT = 'See incident_probe_status for the probes.';
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_probe_drop(text) IS
'Drops the probe of this name with its state and history; incidents it declared stay.';

-- One check now, in this backend, the worker's way (src/worker/probe_run.c).
CREATE FUNCTION @extschema@.incident__probe_check(probe_id bigint)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'incident__probe_check'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION @extschema@.incident__probe_check(bigint) IS
'Internal, superuser only: runs one check of the probe now in the calling backend, with the worker''s code (an HTTP request through an engine of its own, or the SQL query read-only as run_as under the probe''s timeout), and returns the result incident__probe_record() takes.';

CREATE FUNCTION @extschema@.incident_probe_run(name text, record boolean DEFAULT false,
                                               OUT ok boolean, OUT state text, OUT failure text,
                                               OUT status int, OUT value numeric, OUT latency_ms double precision,
                                               OUT error text, OUT timings jsonb, OUT result jsonb)
RETURNS record
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    probe_id_ bigint;
BEGIN
    SELECT p.id INTO probe_id_ FROM @extschema@.incident_probe p WHERE p.name = incident_probe_run.name;
    IF probe_id_ IS NULL THEN
        RAISE EXCEPTION 'probe "%" does not exist', @extschema@.incident__quote(name)
            USING ERRCODE = 'no_data_found',
                  HINT = 'See incident_probe_status for the probes.';
    END IF;
    result := @extschema@.incident__probe_check(probe_id_);
    ok := (result ->> 'ok')::boolean;
    failure := result ->> 'failure';
    status := (result ->> 'status')::int;
    value := (result ->> 'value')::numeric;
    latency_ms := (result ->> 'latency_ms')::double precision;
    -- the query's own message, which the recorded error may leave out
    error := coalesce(result ->> 'message', result ->> 'error');
    timings := result -> 'timings';
    IF record THEN
        state := @extschema@.incident__probe_record(probe_id_, result);
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_probe_run(text, boolean) IS
'Runs one check of the probe now, in this session, the way the worker would (works without the worker), and returns what it found: ok, failure, HTTP status or SQL value, latency, error (for a SQL probe the query''s own error message, which the recorded result, read by incident_viewer, replaces by its SQLSTATE where it may quote data), phase timings and the raw result. Nothing is recorded unless record is true; then the result goes through the same rules as the worker''s checks and state is the probe''s new state. For incident_admin, while writing a probe.';

------------------------------------------------------------------------------
-- What a result means: the one place that decides
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__probe_in_maintenance(p @extschema@.incident_probe, at timestamptz)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM @extschema@.incident_maintenance m
                    WHERE (m.probe = p.name OR m.component = p.component)
                      AND m.starts_at <= at AND at < m.ends_at)
$$;

COMMENT ON FUNCTION @extschema@.incident__probe_in_maintenance(@extschema@.incident_probe, timestamptz) IS
'Internal: whether a maintenance window of the probe or its component covers the time.';

-- incident__probe_record(probe, result): records one check of a probe and
-- acts on it. result is {"ok": bool, "failure": text, "status": int,
-- "value": numeric, "latency_ms": number, "timings": {...}, "error": text,
-- "at": timestamptz}; the worker builds it from what it got.
CREATE FUNCTION @extschema@.incident__probe_record(probe_id bigint, result jsonb)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p @extschema@.incident_probe;
    s @extschema@.incident_probe_state;
    at_ timestamptz := coalesce((result ->> 'at')::timestamptz, @extschema@.incident__act_time(NULL));
    ok_ boolean := coalesce((result ->> 'ok')::boolean, false);
    failure_ text := result ->> 'failure';
    latency double precision := (result ->> 'latency_ms')::double precision;
    slow boolean;
    old_state text;
    new_state text;
    inc @extschema@.incident;
    result_id bigint;
    bucket int;
    code_ text;
    down_count int;
    joined boolean := false;
    previous_failure text;
BEGIN
    SELECT * INTO p FROM @extschema@.incident_probe x WHERE x.id = probe_id;
    IF p.id IS NULL THEN
        RETURN NULL;                    -- dropped while its check was in flight
    END IF;
    SELECT * INTO s FROM @extschema@.incident_probe_state x WHERE x.probe_id = p.id FOR UPDATE;
    -- probes of one component decide about their shared incident one at a time
    IF p.component IS NOT NULL THEN
        INSERT INTO @extschema@.incident_probe_component_lock (component) VALUES (p.component)
            ON CONFLICT (component) DO NOTHING;
        PERFORM 1 FROM @extschema@.incident_probe_component_lock l WHERE l.component = p.component FOR UPDATE;
    END IF;
    old_state := s.state;

    -- a check that could not run for its configuration (its run_as role was
    -- dropped): the service may be fine, so the probe is unknown, nothing
    -- counts toward down or up and nothing alerts; the result is kept
    IF failure_ = 'config' THEN
        INSERT INTO @extschema@.incident_probe_result AS r (probe_id, at, ok, failure, error, state, state_changed)
        VALUES (p.id, at_, false, 'config', pg_catalog.left(result ->> 'error', 1000), 'unknown',
                old_state IS DISTINCT FROM 'unknown')
        RETURNING r.id INTO result_id;
        UPDATE @extschema@.incident_probe_state x
           SET state = 'unknown', since = CASE WHEN x.state = 'unknown' THEN x.since ELSE at_ END,
               last_result_id = result_id, last_failure = 'config', claimed_at = NULL, next_run_at = at_ + p.every
         WHERE x.probe_id = p.id;
        RETURN 'unknown';
    END IF;

    -- degraded: a passing HTTP check slower than degraded_after, or a SQL
    -- value past warn
    slow := coalesce(ok_ AND ((p.kind = 'http' AND latency > pg_catalog.date_part('epoch', p.degraded_after) * 1000)
                              OR (p.kind = 'sql' AND failure_ = 'threshold')), false);
    previous_failure := s.last_failure;
    IF slow AND p.kind = 'http' THEN
        failure_ := 'slow';
    END IF;
    IF NOT ok_ AND failure_ IS NULL THEN
        failure_ := 'other';
    END IF;

    -- flips: checks whose outcome differs from the one before, over 30 minutes
    IF s.last_ok IS NOT NULL AND s.last_ok <> ok_ THEN
        s.flips := s.flips || at_;
    END IF;
    s.flips := ARRAY(SELECT f FROM pg_catalog.unnest(s.flips) AS f WHERE f > at_ - interval '30 minutes' ORDER BY f);
    s.last_ok := ok_;

    -- hysteresis: failures in a row make it down, recoveries in a row up;
    -- 6 flips in 30 minutes make it flapping until 30 minutes pass without one
    IF ok_ THEN
        s.consecutive_successes := s.consecutive_successes + 1;
        s.consecutive_failures := 0;
        s.first_failure_at := NULL;
    ELSE
        s.consecutive_failures := s.consecutive_failures + 1;
        s.consecutive_successes := 0;
        s.first_failure_at := coalesce(s.first_failure_at, at_);
    END IF;
    IF old_state = 'flapping' THEN
        new_state := CASE WHEN pg_catalog.cardinality(s.flips) > 0 THEN 'flapping'
                          WHEN ok_ THEN 'up' ELSE 'down' END;
    ELSIF pg_catalog.cardinality(s.flips) >= 6 AND (NOT ok_ OR old_state = 'down') THEN
        new_state := 'flapping';
    ELSIF NOT ok_ THEN
        new_state := CASE WHEN s.consecutive_failures >= p.failures THEN 'down' ELSE old_state END;
    ELSIF old_state = 'down' AND s.consecutive_successes < p.recoveries THEN
        new_state := 'down';
    ELSIF slow THEN
        new_state := 'degraded';
    ELSE
        new_state := 'up';
    END IF;

    -- record: every failure, every slow check and every change; the rest is counted
    IF NOT ok_ OR slow OR new_state IS DISTINCT FROM old_state THEN
        INSERT INTO @extschema@.incident_probe_result AS r
            (probe_id, at, ok, failure, status, value, latency_ms, timings, error, state, state_changed)
        VALUES (p.id, at_, ok_, CASE WHEN ok_ AND NOT slow THEN NULL ELSE failure_ END,
                (result ->> 'status')::int, (result ->> 'value')::numeric, latency,
                coalesce(result -> 'timings', '{}'), pg_catalog.left(result ->> 'error', 1000),
                new_state, new_state IS DISTINCT FROM old_state)
        RETURNING r.id INTO result_id;
        s.last_result_id := result_id;
    END IF;
    -- latency histogram bucket k (1..16) holds latencies below 2^(k-1) ms
    bucket := CASE WHEN latency IS NULL OR latency < 1 THEN 1
                   ELSE least(16, 2 + pg_catalog.floor(pg_catalog.log(2, latency::numeric))::int) END;
    INSERT INTO @extschema@.incident_probe_rollup AS u (probe_id, hour, checks, passed, latency_ms_sum, latency_ms_max, latency_buckets)
    VALUES (p.id, pg_catalog.date_trunc('hour', at_), 1, ok_::int, coalesce(latency, 0), latency,
            (SELECT pg_catalog.array_agg(CASE WHEN k = bucket AND latency IS NOT NULL THEN 1 ELSE 0 END ORDER BY k)
               FROM pg_catalog.generate_series(1, 16) AS k))
    ON CONFLICT (probe_id, hour) DO UPDATE
       SET checks = u.checks + 1, passed = u.passed + excluded.passed,
           latency_ms_sum = u.latency_ms_sum + excluded.latency_ms_sum,
           latency_ms_max = greatest(u.latency_ms_max, excluded.latency_ms_max),
           latency_buckets[bucket] = u.latency_buckets[bucket] + (latency IS NOT NULL)::int;

    IF new_state IS DISTINCT FROM old_state THEN
        s.since := at_;
    END IF;
    s.state := new_state;
    s.last_failure := CASE WHEN ok_ AND NOT slow THEN NULL ELSE failure_ END;
    s.claimed_at := NULL;
    s.next_run_at := at_ + p.every;

    -- the incident: a person's resolve wins; a new failure after it is a new incident
    IF s.incident_id IS NOT NULL THEN
        SELECT * INTO inc FROM @extschema@.incident i WHERE i.id = s.incident_id;
        IF inc.status IN ('resolved', 'closed') THEN
            s.incident_id := NULL;
            inc := NULL;
        END IF;
    END IF;

    -- going down or flapping: one incident per probe while it stays open (the
    -- probe's own, or its component's, or a new one), one event per change
    IF new_state IN ('down', 'flapping') AND (new_state IS DISTINCT FROM old_state OR NOT s.alerted)
       AND NOT @extschema@.incident__probe_in_maintenance(p, at_) THEN
      IF NOT s.alerted THEN
        s.alerted := true;
        IF s.incident_id IS NULL AND p.component IS NOT NULL THEN
            -- storms: a probe of a component with an open probe incident joins it
            SELECT i.* INTO inc FROM @extschema@.incident i
             WHERE i.component = p.component AND i.source = 'probe' AND i.status NOT IN ('resolved', 'closed')
             ORDER BY i.id DESC LIMIT 1;
            s.incident_id := inc.id;
            joined := inc.id IS NOT NULL;
        END IF;
        IF s.incident_id IS NULL THEN
            code_ := @extschema@.incident_declare(
                CASE WHEN p.severity <> 'auto' THEN p.severity
                     WHEN failure_ = 'slow' OR failure_ = 'timeout'
                     THEN @extschema@.incident_classify(pg_catalog.jsonb_build_object('page_load_s', coalesce(latency, 0) / 1000))
                     ELSE 'P1' END,
                pg_catalog.format('%s is %s', p.name, CASE WHEN new_state = 'flapping' THEN 'flapping' ELSE 'down' END),
                pg_catalog.format('Probe %s (%s) failed %s checks in a row: %s.', p.name,
                                  coalesce(p.url, 'health check ' || p.health_check, 'SQL'),
                                  s.consecutive_failures, failure_),
                least(s.first_failure_at, at_));
            SELECT * INTO inc FROM @extschema@.incident i WHERE i.code = code_;
            UPDATE @extschema@.incident i SET source = 'probe', component = p.component WHERE i.id = inc.id
            RETURNING * INTO inc;
            s.incident_id := inc.id;
        ELSIF joined THEN
            SELECT pg_catalog.count(*) + 1 INTO down_count FROM @extschema@.incident_probe_state x
             WHERE x.incident_id = s.incident_id AND x.probe_id <> p.id AND x.state IN ('down', 'flapping');
            IF down_count > 1 THEN
                UPDATE @extschema@.incident i
                   SET title = pg_catalog.format('%s probes of %s are down', down_count, p.component)
                 WHERE i.id = inc.id RETURNING * INTO inc;
            END IF;
        END IF;
      END IF;
      IF inc.id IS NOT NULL THEN
        PERFORM @extschema@.incident__event(inc, 'probe', pg_catalog.format('probe:%s', p.name),
            pg_catalog.format('%s is %s', p.name, new_state) || coalesce(': ' || failure_, ''),
            pg_catalog.jsonb_build_object('probe', p.name, 'change', new_state, 'failure', failure_,
                                          'result_id', result_id, 'status', result -> 'status',
                                          'error', pg_catalog.left(result ->> 'error', 200),
                                          'first_failure_at', s.first_failure_at)
            -- a built-in database probe brings the check's own account as evidence (82_health.sql)
            || CASE WHEN p.health_check IS NULL THEN '{}'
                    ELSE pg_catalog.jsonb_build_object('health', (
                             SELECT pg_catalog.jsonb_build_object('check', h.check_name, 'status', h.status,
                                                                  'value', h.value, 'unit', h.unit,
                                                                  'detail', h.detail, 'evidence', h.evidence)
                               FROM @extschema@.incident__health(p.health_check) h)) END,
            at_);
      END IF;
    ELSIF inc.id IS NOT NULL AND NOT ok_ AND previous_failure IS NOT NULL AND failure_ IS DISTINCT FROM previous_failure THEN
        -- the failure changed while the incident is open: one event per change, not per check
        PERFORM @extschema@.incident__event(inc, 'probe', pg_catalog.format('probe:%s', p.name),
            pg_catalog.format('%s still failing: now %s', p.name, failure_),
            pg_catalog.jsonb_build_object('probe', p.name, 'change', 'failure', 'failure', failure_,
                                          'result_id', result_id), at_);
    ELSIF inc.id IS NOT NULL AND new_state IN ('up', 'degraded') AND old_state IN ('down', 'flapping') THEN
        PERFORM @extschema@.incident__event(inc, 'probe', pg_catalog.format('probe:%s', p.name),
            pg_catalog.format('%s recovered', p.name),
            pg_catalog.jsonb_build_object('probe', p.name, 'change', 'recovered', 'result_id', result_id), at_);
        -- resolved when its last probe down recovers, if one of its probes says so
        IF NOT EXISTS (SELECT FROM @extschema@.incident_probe_state x
                        WHERE x.incident_id = inc.id AND x.probe_id <> p.id AND x.state IN ('down', 'flapping'))
           AND EXISTS (SELECT FROM @extschema@.incident_event e
                         JOIN @extschema@.incident_probe q ON q.name = e.details ->> 'probe'
                        WHERE e.incident_id = inc.id AND e.kind = 'probe' AND q.resolve_on_recovery) THEN
            PERFORM @extschema@.incident_resolve(inc.code, pg_catalog.format('Probe %s recovered.', p.name));
        END IF;
    END IF;

    IF new_state IN ('up', 'degraded') THEN
        s.alerted := false;             -- the run of failures is over
    END IF;

    UPDATE @extschema@.incident_probe_state x
       SET state = s.state, since = s.since, next_run_at = s.next_run_at, claimed_at = NULL,
           consecutive_failures = s.consecutive_failures, consecutive_successes = s.consecutive_successes,
           first_failure_at = s.first_failure_at, last_result_id = s.last_result_id,
           last_failure = s.last_failure, incident_id = s.incident_id, last_ok = s.last_ok, flips = s.flips,
           alerted = s.alerted
     WHERE x.probe_id = p.id;
    RETURN s.state;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__probe_record(bigint, jsonb) IS
'Internal, called by the worker for every check (and by tests): records the result (failures and changes as rows, everything in the hourly roll-up), moves the probe''s state with its hysteresis and flapping rule, declares an incident through incident_declare (or joins the open one of the probe or its component) when it goes down outside a maintenance window, adds an event when the failure changes, and records the recovery (resolving when the probe says so). Returns the new state.';

-- incident__probe_record_passes(...): the worker's batch of passing checks
-- of steady HTTP probes, one element per probe, counted in memory since
-- first_at (all within one hour). Adds them to the hourly roll-up and to
-- the run of successes, and stores when the probe runs next; a probe that
-- is no longer steady (a person recorded a check meanwhile) gets the counts
-- only.
CREATE FUNCTION @extschema@.incident__probe_record_passes(
    probe_ids bigint[], first_at timestamptz[], last_at timestamptz[], checks int[],
    latency_ms_sum double precision[], latency_ms_max double precision[],
    latency_buckets int[], next_run_at timestamptz[])
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int := pg_catalog.cardinality(probe_ids);
BEGIN
    IF pg_catalog.cardinality(first_at) IS DISTINCT FROM n OR pg_catalog.cardinality(last_at) IS DISTINCT FROM n
       OR pg_catalog.cardinality(checks) IS DISTINCT FROM n OR pg_catalog.cardinality(latency_ms_sum) IS DISTINCT FROM n
       OR pg_catalog.cardinality(latency_ms_max) IS DISTINCT FROM n
       OR pg_catalog.cardinality(next_run_at) IS DISTINCT FROM n
       OR pg_catalog.cardinality(latency_buckets) IS DISTINCT FROM 16 * n THEN
        RAISE EXCEPTION 'invalid passes: % probe ids, % first_at, % last_at, % checks, % latency_ms_sum, % latency_ms_max, % next_run_at, % latency_buckets',
                        n, pg_catalog.cardinality(first_at), pg_catalog.cardinality(last_at),
                        pg_catalog.cardinality(checks), pg_catalog.cardinality(latency_ms_sum),
                        pg_catalog.cardinality(latency_ms_max), pg_catalog.cardinality(next_run_at),
                        pg_catalog.cardinality(latency_buckets)
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'Give one element per probe in each array, and 16 latency buckets per probe.';
    END IF;
    IF 1 > ANY (checks) OR checks @> ARRAY[NULL::int] THEN
        RAISE EXCEPTION 'invalid checks "%"', pg_catalog.left(checks::text, 64)
              USING ERRCODE = 'invalid_parameter_value', HINT = 'Each probe''s count of passing checks is 1 or more.';
    END IF;
    -- one probe's counts of one hour may come twice (before and after it was
    -- disabled and enabled again): they are added up first
    WITH d AS (
        SELECT d.* FROM ROWS FROM (pg_catalog.unnest(probe_ids), pg_catalog.unnest(first_at),
                                   pg_catalog.unnest(last_at), pg_catalog.unnest(checks),
                                   pg_catalog.unnest(latency_ms_sum), pg_catalog.unnest(latency_ms_max),
                                   pg_catalog.unnest(next_run_at))
                   WITH ORDINALITY AS d(probe_id, first_at, last_at, checks, lsum, lmax, next_run_at, i)
          JOIN @extschema@.incident_probe p ON p.id = d.probe_id
    ), b AS (
        SELECT b.probe_id, b.hour, pg_catalog.array_agg(b.n ORDER BY b.k) AS buckets
          FROM (SELECT d.probe_id, pg_catalog.date_trunc('hour', d.first_at) AS hour, k,
                       pg_catalog.sum(latency_buckets[(d.i - 1) * 16 + k])::int AS n
                  FROM d, pg_catalog.generate_series(1, 16) AS k
                 GROUP BY 1, 2, 3) b
         GROUP BY 1, 2
    ), h AS (
        SELECT d.probe_id, pg_catalog.date_trunc('hour', d.first_at) AS hour,
               pg_catalog.sum(d.checks)::int AS checks, pg_catalog.sum(d.lsum) AS lsum,
               pg_catalog.max(d.lmax) AS lmax
          FROM d
         GROUP BY 1, 2
    ), counted AS (
        INSERT INTO @extschema@.incident_probe_rollup AS u
               (probe_id, hour, checks, passed, latency_ms_sum, latency_ms_max, latency_buckets)
        SELECT h.probe_id, h.hour, h.checks, h.checks, h.lsum, h.lmax, b.buckets
          FROM h JOIN b ON b.probe_id = h.probe_id AND b.hour = h.hour
        ON CONFLICT (probe_id, hour) DO UPDATE
           SET checks = u.checks + excluded.checks, passed = u.passed + excluded.passed,
               latency_ms_sum = u.latency_ms_sum + excluded.latency_ms_sum,
               latency_ms_max = greatest(u.latency_ms_max, excluded.latency_ms_max),
               latency_buckets = (SELECT pg_catalog.array_agg(a + b ORDER BY k)
                                    FROM ROWS FROM (pg_catalog.unnest(u.latency_buckets),
                                                    pg_catalog.unnest(excluded.latency_buckets))
                                         WITH ORDINALITY AS t(a, b, k))
    )
    UPDATE @extschema@.incident_probe_state s
       SET consecutive_successes = s.consecutive_successes + t.checks,
           next_run_at = coalesce(t.next_run_at, s.next_run_at)
      FROM (SELECT d.probe_id, pg_catalog.sum(d.checks)::int AS checks, pg_catalog.max(d.next_run_at) AS next_run_at
              FROM d GROUP BY d.probe_id) t
     WHERE s.probe_id = t.probe_id AND s.state = 'up' AND s.consecutive_failures = 0;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__probe_record_passes(bigint[], timestamptz[], timestamptz[], int[], double precision[], double precision[], int[], timestamptz[]) IS
'Internal, called by the HTTP worker: records a batch of passing checks of steady HTTP probes counted in memory (one element per probe, latency_buckets 16 per probe), as incident__probe_record would have, one by one: into the hourly roll-up and the run of successes, with the next run time. Returns how many probes'' states it updated.';

------------------------------------------------------------------------------
-- Incidents a probe declared
------------------------------------------------------------------------------

ALTER TABLE @extschema@.incident
    ADD COLUMN source text NOT NULL DEFAULT 'person' CHECK (source IN ('person', 'probe')),
    ADD COLUMN component text;

COMMENT ON COLUMN @extschema@.incident.source IS 'Who declared the incident: person (through incident_declare) or probe (the worker, for a probe that went down).';
COMMENT ON COLUMN @extschema@.incident.component IS 'The component of the probes that declared or joined the incident.';

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------

CREATE VIEW @extschema@.incident_probe_status AS
SELECT p.name,
       p.kind,
       p.component,
       p.enabled,
       s.state,
       s.since,
       s.next_run_at,
       CASE WHEN p.kind = 'sql' THEN s.claimed_at IS NOT NULL END AS in_flight,
       s.consecutive_failures,
       s.consecutive_successes,
       s.last_failure,
       r.at AS last_result_at,
       r.status AS last_status,
       r.latency_ms AS last_latency_ms,
       r.timings AS last_timings,
       r.error AS last_error,
       i.code AS incident,
       d.uptime_pct_24h,
       d.p50_ms_24h,
       d.p95_ms_24h,
       m.uptime_pct_30d
  FROM @extschema@.incident_probe p
  JOIN @extschema@.incident_probe_state s ON s.probe_id = p.id
  LEFT JOIN @extschema@.incident_probe_result r ON r.id = s.last_result_id
  LEFT JOIN @extschema@.incident i ON i.id = s.incident_id
  LEFT JOIN LATERAL (
      SELECT pg_catalog.round(100.0 * pg_catalog.sum(u.passed) / nullif(pg_catalog.sum(u.checks), 0), 3) AS uptime_pct_24h,
             (SELECT pg_catalog.power(2, b.k - 1)
                FROM (SELECT k, pg_catalog.sum(u2.latency_buckets[k]) OVER (ORDER BY k) AS cum,
                             pg_catalog.sum(u2.latency_buckets[k]) OVER () AS total
                        FROM @extschema@.incident_probe_rollup u2, pg_catalog.generate_series(1, 16) AS k
                       WHERE u2.probe_id = p.id AND u2.hour >= @extschema@.incident_now() - interval '24 hours') b
               WHERE b.cum >= 0.5 * b.total ORDER BY b.k LIMIT 1) AS p50_ms_24h,
             (SELECT pg_catalog.power(2, b.k - 1)
                FROM (SELECT k, pg_catalog.sum(u2.latency_buckets[k]) OVER (ORDER BY k) AS cum,
                             pg_catalog.sum(u2.latency_buckets[k]) OVER () AS total
                        FROM @extschema@.incident_probe_rollup u2, pg_catalog.generate_series(1, 16) AS k
                       WHERE u2.probe_id = p.id AND u2.hour >= @extschema@.incident_now() - interval '24 hours') b
               WHERE b.cum >= 0.95 * b.total ORDER BY b.k LIMIT 1) AS p95_ms_24h
        FROM @extschema@.incident_probe_rollup u
       WHERE u.probe_id = p.id AND u.hour >= @extschema@.incident_now() - interval '24 hours') d ON true
  LEFT JOIN LATERAL (
      SELECT pg_catalog.round(100.0 * pg_catalog.sum(u.passed) / nullif(pg_catalog.sum(u.checks), 0), 3) AS uptime_pct_30d
        FROM @extschema@.incident_probe_rollup u
       WHERE u.probe_id = p.id AND u.hour >= @extschema@.incident_now() - interval '30 days') m ON true
 ORDER BY p.name;

COMMENT ON VIEW @extschema@.incident_probe_status IS
'One row per probe: its state (unknown, up, degraded, down, flapping) and since when, when it runs next (for a steady HTTP probe, written with its passing checks, at most pg_incident.probe_flush_interval late), whether a SQL probe''s check is in flight (NULL for HTTP probes, whose claims the worker keeps in memory: see incident_worker_status.checks_in_flight), its run of failures or successes, the last kept result (status, latency, phase timings, error), the open incident''s code, and uptime and latency percentiles (upper bounds of power-of-two buckets) over the last 24 hours and 30 days.';

------------------------------------------------------------------------------
-- pg_dump and privileges
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_probe', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_probe_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_probe_state', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_probe_result', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_probe_result_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_probe_rollup', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_maintenance', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_maintenance_id_seq', '');

GRANT SELECT ON @extschema@.incident_probe_state, @extschema@.incident_probe_result,
                @extschema@.incident_probe_rollup, @extschema@.incident_maintenance, @extschema@.incident_probe_status
   TO incident_viewer;
-- a probe's headers and body may carry credentials (Authorization: Bearer ...)
GRANT SELECT (id, name, kind, every, timeout, failures, recoveries, severity, component, enabled,
              resolve_on_recovery, url, method, expect_status, expect_body, expect_body_regex, degraded_after, verify_tls,
              query, warn, crit, run_as, created_by)
   ON @extschema@.incident_probe TO incident_viewer;
GRANT SELECT ON @extschema@.incident_probe TO incident_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.incident_probe_http(text, text, interval, interval, int, int, text, text, text, text[], text, int[], text, interval, boolean, boolean, boolean, text),
    @extschema@.incident_probe_sql(text, text, interval, interval, int, int, text, text, numeric, numeric, name, boolean, boolean),
    @extschema@.incident_probe_drop(text),
    @extschema@.incident_probe_run(text, boolean)
   TO incident_admin;
GRANT INSERT, UPDATE, DELETE ON @extschema@.incident_maintenance TO incident_admin;
GRANT USAGE ON SEQUENCE @extschema@.incident_maintenance_id_seq TO incident_admin;

------------------------------------------------------------------------------
-- The worker's status (60_worker.sql), new in 0.3.0
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__worker_state(OUT pid int, OUT started_at timestamptz, OUT state text,
                                                   OUT database text, OUT last_activity text,
                                                   OUT last_activity_at timestamptz, OUT loops bigint,
                                                   OUT errors bigint, OUT last_error text,
                                                   OUT last_error_at timestamptz, OUT process text,
                                                   OUT checks_claimed bigint, OUT lateness_p50_ms double precision,
                                                   OUT lateness_p99_ms double precision,
                                                   OUT lateness_buckets bigint[], OUT checks_done bigint,
                                                   OUT probes_due int, OUT checks_in_flight int)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'incident__worker_state'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION @extschema@.incident__worker_state() IS
'Internal: the background worker''s status from shared memory, one row per database worker (process worker for HTTP probes, sql worker for SQL probes): the worker''s while it runs, else the launcher''s, else stopped; no row when the library is not preloaded. checks_claimed and the lateness (how long after its next_run_at each check was claimed: bucket upper edges 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000 ms and beyond) count since that worker started, and so does checks_done (checks whose result came back). probes_due and checks_in_flight are the HTTP worker''s own, from its schedule in memory (published every second), NULL for a process that keeps none.';

CREATE VIEW @extschema@.incident_worker_status AS
SELECT w.process,
       w.pid,
       w.started_at,
       w.state,
       w.database,
       w.last_activity,
       w.last_activity_at,
       w.loops,
       w.errors,
       w.last_error,
       w.last_error_at,
       w.checks_claimed,
       w.lateness_p50_ms,
       w.lateness_p99_ms,
       coalesce(w.probes_due,
                (SELECT pg_catalog.count(*) FROM @extschema@.incident_probe_state s
                   JOIN @extschema@.incident_probe p ON p.id = s.probe_id
                  WHERE p.enabled AND p.kind = k.kind AND s.claimed_at IS NULL
                    AND s.next_run_at <= pg_catalog.clock_timestamp())) AS probes_due,
       coalesce(w.checks_in_flight,
                (SELECT pg_catalog.count(*) FROM @extschema@.incident_probe_state s
                   JOIN @extschema@.incident_probe p ON p.id = s.probe_id
                  WHERE p.kind = k.kind AND s.claimed_at IS NOT NULL)) AS checks_in_flight,
       w.checks_done,
       (SELECT pg_catalog.count(*) FROM @extschema@.incident_probe_result r
          JOIN @extschema@.incident_probe p ON p.id = r.probe_id
         WHERE p.kind = k.kind AND NOT r.ok
           AND r.at > pg_catalog.clock_timestamp() - interval '1 hour') AS failed_checks_1h
  FROM @extschema@.incident__worker_state() AS w,
       LATERAL (SELECT CASE w.process WHEN 'sql worker' THEN 'sql' ELSE 'http' END AS kind) AS k;

COMMENT ON VIEW @extschema@.incident_worker_status IS
'The background worker, one row per database worker (process worker runs the HTTP probes, sql worker the SQL probes): its pid, state (waiting for the database or the extension, idle, disabled, idle on a standby, stopped), what it did last and when, its turns and errors, and from the probe tables the probes of its kind due now, their checks in flight and their failed checks of the last hour. Empty when pg_incident is not preloaded.';
COMMENT ON COLUMN @extschema@.incident_worker_status.process IS 'worker (the HTTP probes, the notifications, the escalations and reminders) or sql worker (the SQL probes, one at a time).';
COMMENT ON COLUMN @extschema@.incident_worker_status.probes_due IS 'Enabled probes of this process''s kind whose next check is due and not yet claimed (for the HTTP worker, from its schedule in memory, at most a second old): a growing number means the worker is not keeping up, or not running.';
COMMENT ON COLUMN @extschema@.incident_worker_status.checks_done IS 'Checks whose result this worker process has recorded or counted since it started.';
COMMENT ON COLUMN @extschema@.incident_worker_status.checks_claimed IS 'Checks this worker process has claimed since it started.';
COMMENT ON COLUMN @extschema@.incident_worker_status.lateness_p50_ms IS 'Median lateness of those checks (claimed after they were due), as the upper edge of its histogram bucket (1, 2, 5, 10, 20, 50, 100 ... ms); a high value means the worker does not keep up.';
COMMENT ON COLUMN @extschema@.incident_worker_status.lateness_p99_ms IS '99th percentile of the lateness, likewise.';
COMMENT ON COLUMN @extschema@.incident_worker_status.checks_in_flight IS 'Checks of this process''s kind claimed and not yet recorded (for the HTTP worker, its requests in flight).';

GRANT SELECT ON @extschema@.incident_worker_status TO incident_viewer;
-- the view reads the worker's status through it
GRANT EXECUTE ON FUNCTION @extschema@.incident__worker_state() TO incident_viewer;

------------------------------------------------------------------------------
-- Notifications (70_notify.sql), new in 0.3.0
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__mail_address_ok(address text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT address ~ '^[^@\s<>(),;:"\[\]\\]{1,64}@[A-Za-z0-9.-]{1,253}$'
$$;

COMMENT ON FUNCTION @extschema@.incident__mail_address_ok(text) IS
'Internal: whether the text is a plain mail address, such as incidents@example.com (no display name, no comment, nothing an SMTP envelope would misread).';

-- every element a plain address (none NULL)
CREATE FUNCTION @extschema@.incident__mail_addresses_ok(addresses text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(pg_catalog.bool_and(coalesce(@extschema@.incident__mail_address_ok(a), false)), true)
      FROM pg_catalog.unnest(addresses) AS a
$$;

COMMENT ON FUNCTION @extschema@.incident__mail_addresses_ok(text[]) IS
'Internal: whether every element is a plain mail address (incident__mail_address_ok), none NULL.';

-- the events a channel hears of when its creator names none
CREATE FUNCTION @extschema@.incident__channel_default_events()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '{declared,acknowledged,status_update,severity_changed,escalated,reminder,resolved,closed,probe}'::text[]
$$;

COMMENT ON FUNCTION @extschema@.incident__channel_default_events() IS
'Internal: the timeline events a channel hears of by default: all but assignments, notes and checklist ticks.';

CREATE TABLE @extschema@.incident_channel (
    id            serial PRIMARY KEY,
    name          text NOT NULL UNIQUE
                  CONSTRAINT incident_channel_name_check
                  CHECK (name = pg_catalog.btrim(name) AND name <> '' AND pg_catalog.length(name) <= 100),
    kind          text NOT NULL DEFAULT 'webhook'
                  CONSTRAINT incident_channel_kind_check CHECK (kind IN ('webhook', 'email')),
    url           text NOT NULL,
    format        text NOT NULL DEFAULT 'json'
                  CONSTRAINT incident_channel_format_check CHECK (format IN ('json', 'slack', 'text')),
    min_severity  text NOT NULL DEFAULT 'P4'
                  CONSTRAINT incident_channel_min_severity_check CHECK (min_severity IN ('P1', 'P2', 'P3', 'P4')),
    secret        text CONSTRAINT incident_channel_secret_check
                  CHECK (pg_catalog.length(secret) BETWEEN 16 AND 512),
    events        text[] NOT NULL
                  DEFAULT @extschema@.incident__channel_default_events()
                  CONSTRAINT incident_channel_events_check
                  CHECK (events <@ '{declared,acknowledged,status_update,severity_changed,assigned,note,checklist,resolved,closed,escalated,reminder,probe}'::text[]
                         AND events <> '{}'),
    components    text[] CONSTRAINT incident_channel_components_check
                  CHECK (pg_catalog.array_position(components, NULL) IS NULL AND components <> '{}'),
    link_template text CONSTRAINT incident_channel_link_template_check
                  CHECK (link_template ~* '^https?://' AND pg_catalog.length(link_template) <= 500),
    timeout       interval NOT NULL DEFAULT '10 seconds'
                  CONSTRAINT incident_channel_timeout_check
                  CHECK (timeout >= interval '100 milliseconds' AND timeout <= interval '1 minute'),
    enabled       boolean NOT NULL DEFAULT true,
    created_by    text NOT NULL DEFAULT current_user,
    changed_at    timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    -- email
    mail_from     text CONSTRAINT incident_channel_mail_from_check
                  CHECK (@extschema@.incident__mail_address_ok(mail_from)),
    mail_to       text[] CONSTRAINT incident_channel_mail_to_check
                  CHECK (mail_to <> '{}' AND pg_catalog.cardinality(mail_to) <= 100
                         AND @extschema@.incident__mail_addresses_ok(mail_to)),
    smtp_user     text CONSTRAINT incident_channel_smtp_user_check CHECK (smtp_user !~ '[\r\n]' AND pg_catalog.length(smtp_user) <= 256),
    smtp_password text CONSTRAINT incident_channel_smtp_password_check CHECK (smtp_password !~ '[\r\n]' AND pg_catalog.length(smtp_password) <= 512),
    CONSTRAINT incident_channel_url_check
        CHECK (CASE kind WHEN 'email' THEN url ~* '^smtps?://[^/?#@\s]+([/?#]|$)'
                         ELSE url ~* '^https?://[^/?#@\s]+([/?#]|$)' END
               AND url !~ '[[:space:][:cntrl:]]' AND pg_catalog.length(url) <= 2048),
    CONSTRAINT incident_channel_kind_format_check
        CHECK ((kind = 'email') = (format = 'text')),
    CONSTRAINT incident_channel_email_check
        CHECK (CASE kind WHEN 'email' THEN mail_from IS NOT NULL AND mail_to IS NOT NULL AND secret IS NULL
                                           AND (smtp_password IS NULL OR smtp_user IS NOT NULL)
                         ELSE mail_from IS NULL AND mail_to IS NULL AND smtp_user IS NULL AND smtp_password IS NULL END)
);

COMMENT ON TABLE @extschema@.incident_channel IS
'Where notifications go: webhooks in the json or slack format, and mail over SMTP (kind email, format text). Routing: the timeline events listed in events, of incidents of min_severity or worse, of the components listed (NULL: all). Written by incident_channel_webhook(), incident_channel_email() and incident_channel_drop(); url, secret, smtp_user and smtp_password are readable by incident_admin only.';
COMMENT ON COLUMN @extschema@.incident_channel.url IS 'The webhook''s URL (a Slack incoming webhook''s URL is its credential: incident_admin only reads it).';
COMMENT ON COLUMN @extschema@.incident_channel.format IS 'json: the versioned envelope of docs/notifications.md; slack: {"text": ...} in the playbook''s status-update shape.';
COMMENT ON COLUMN @extschema@.incident_channel.min_severity IS 'The least severe incidents it hears of: P4 all, P1 only P1.';
COMMENT ON COLUMN @extschema@.incident_channel.secret IS 'Signs each body (HMAC-SHA256 with a timestamp, header X-Incident-Signature); NULL: unsigned. incident_admin only reads it.';
COMMENT ON COLUMN @extschema@.incident_channel.events IS 'The kinds of timeline event it hears of.';
COMMENT ON COLUMN @extschema@.incident_channel.components IS 'Only incidents of these components; NULL: all incidents.';
COMMENT ON COLUMN @extschema@.incident_channel.link_template IS 'A link to the incident for the body, {code} replaced by its code, such as ''https://status.example/incidents/{code}''.';
COMMENT ON COLUMN @extschema@.incident_channel.timeout IS 'How long one delivery may take.';
COMMENT ON COLUMN @extschema@.incident_channel.kind IS 'webhook (url, format, secret) or email (url is the smtp:// or smtps:// relay; mail_from, mail_to, smtp_user, smtp_password).';
COMMENT ON COLUMN @extschema@.incident_channel.enabled IS 'False: no new notifications are queued for it, and its pending ones wait.';
COMMENT ON COLUMN @extschema@.incident_channel.changed_at IS 'When the channel was last created or replaced; notifications rendered before it are rendered again before their next attempt.';
COMMENT ON COLUMN @extschema@.incident_channel.mail_from IS 'An email channel''s sender address (the envelope''s and the From header''s).';
COMMENT ON COLUMN @extschema@.incident_channel.mail_to IS 'An email channel''s recipients; an escalation or reminder also goes to the email of the person it is for.';
COMMENT ON COLUMN @extschema@.incident_channel.smtp_user IS 'The SMTP login of an email channel, or NULL for none.';
COMMENT ON COLUMN @extschema@.incident_channel.smtp_password IS 'The SMTP password (sent over TLS only); incident_admin only reads it.';

COMMENT ON CONSTRAINT incident_channel_name_check ON @extschema@.incident_channel IS 'A channel''s name has 1 to 100 characters, such as "ops-slack".';
COMMENT ON CONSTRAINT incident_channel_kind_check ON @extschema@.incident_channel IS 'A channel is a webhook or an email channel.';
COMMENT ON CONSTRAINT incident_channel_url_check ON @extschema@.incident_channel IS 'Give a webhook an http:// or https:// URL, an email channel an smtp:// or smtps:// URL, with a host, without a user name or password, spaces or control characters, and at most 2048 characters long, such as ''https://hooks.example/incidents'' or ''smtp://mail.example:587''.';
COMMENT ON CONSTRAINT incident_channel_format_check ON @extschema@.incident_channel IS 'Give json or slack (an email channel''s format is text).';
COMMENT ON CONSTRAINT incident_channel_kind_format_check ON @extschema@.incident_channel IS 'An email channel sends text; a webhook json or slack.';
COMMENT ON CONSTRAINT incident_channel_email_check ON @extschema@.incident_channel IS 'An email channel has mail_from and mail_to (and no secret), and a smtp_password only with its smtp_user; a webhook has none of the mail settings.';
COMMENT ON CONSTRAINT incident_channel_mail_from_check ON @extschema@.incident_channel IS 'Give a plain address, such as ''incidents@example.com''.';
COMMENT ON CONSTRAINT incident_channel_mail_to_check ON @extschema@.incident_channel IS 'Give 1 to 100 plain addresses, such as ''{oncall@example.com,cto@example.com}''.';
COMMENT ON CONSTRAINT incident_channel_smtp_user_check ON @extschema@.incident_channel IS 'Give a login of at most 256 characters, on one line.';
COMMENT ON CONSTRAINT incident_channel_smtp_password_check ON @extschema@.incident_channel IS 'Give a password of at most 512 characters, on one line.';
COMMENT ON CONSTRAINT incident_channel_min_severity_check ON @extschema@.incident_channel IS 'Give P1, P2, P3 or P4: the least severe incidents the channel hears of.';
COMMENT ON CONSTRAINT incident_channel_secret_check ON @extschema@.incident_channel IS 'Give a secret of 16 to 512 characters (the receiver keeps the same), or NULL for unsigned bodies.';
COMMENT ON CONSTRAINT incident_channel_events_check ON @extschema@.incident_channel IS 'Give timeline event kinds: declared, acknowledged, status_update, severity_changed, assigned, note, checklist, resolved, closed, escalated, reminder, probe.';
COMMENT ON CONSTRAINT incident_channel_components_check ON @extschema@.incident_channel IS 'Give component names, or NULL for all incidents.';
COMMENT ON CONSTRAINT incident_channel_link_template_check ON @extschema@.incident_channel IS 'Give an http:// or https:// URL of at most 500 characters, with {code} where the incident''s code goes.';
COMMENT ON CONSTRAINT incident_channel_timeout_check ON @extschema@.incident_channel IS 'Give a timeout from ''100 milliseconds'' to ''1 minute'', such as ''10 seconds''.';

SELECT @extschema@.incident__checked_table('@extschema@.incident_channel', 'name');

------------------------------------------------------------------------------
-- The outbox
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_notification (
    id              bigserial PRIMARY KEY,
    -- no foreign key either to the channel: every declaration would lock its
    -- row (FOR KEY SHARE, a multixact under concurrency) to check it;
    -- incident_channel_drop() deletes a channel's notifications with it
    channel_id      int NOT NULL,
    -- no foreign keys to the timeline and the incidents: they are never
    -- deleted, and a reference would change TRUNCATE's refusal of them
    event_id        bigint NOT NULL,
    incident_id     bigint NOT NULL,
    event_kind      text NOT NULL,
    body            text NOT NULL,
    content_type    text NOT NULL,
    recipients      text[],
    created_at      timestamptz NOT NULL,
    queued_at       timestamptz NOT NULL,
    rendered_at     timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    claimed_at      timestamptz,
    last_attempt_at timestamptz,
    last_status     int,
    last_error      text,
    delivered_at    timestamptz,
    UNIQUE (channel_id, event_id)
);

CREATE INDEX incident_notification_due_idx ON @extschema@.incident_notification (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX incident_notification_order_idx ON @extschema@.incident_notification (channel_id, incident_id, id)
    WHERE state = 'pending';
CREATE INDEX incident_notification_event_idx ON @extschema@.incident_notification (event_id);

COMMENT ON TABLE @extschema@.incident_notification IS
'The outbox: one row per event and channel, written in the event''s transaction with the body rendered then; the worker delivers it (state pending, then delivered or dead). Deliveries of one incident to one channel go in order.';
COMMENT ON COLUMN @extschema@.incident_notification.created_at IS 'When the event happened.';
COMMENT ON COLUMN @extschema@.incident_notification.body IS 'What is posted or mailed: the json envelope, the slack text, or the whole mail (headers and text), rendered for the channel.';
COMMENT ON COLUMN @extschema@.incident_notification.content_type IS 'The body''s type: application/json for webhooks, message/rfc822 for mail.';
COMMENT ON COLUMN @extschema@.incident_notification.state IS 'pending (waiting, retrying or in flight), delivered or dead.';
COMMENT ON COLUMN @extschema@.incident_notification.attempts IS 'Attempts whose outcome was recorded.';
COMMENT ON COLUMN @extschema@.incident_notification.last_status IS 'The HTTP status or SMTP reply code of the last attempt; NULL when no answer came.';
COMMENT ON COLUMN @extschema@.incident_notification.last_error IS 'Why the last attempt failed, at most 1,000 characters; never a secret.';
COMMENT ON COLUMN @extschema@.incident_notification.recipients IS 'A mail''s envelope recipients: the channel''s mail_to, and the email of the person an escalation or reminder is for.';
COMMENT ON COLUMN @extschema@.incident_notification.queued_at IS 'When it was queued: at the event, or by incident_notification_retry(); the age after which a failing delivery is dead counts from here.';
COMMENT ON COLUMN @extschema@.incident_notification.next_attempt_at IS 'When the worker tries next (after a failure: exponential back-off with jitter, or the receiver''s Retry-After).';
COMMENT ON COLUMN @extschema@.incident_notification.rendered_at IS 'When body, content_type and recipients were rendered: at the event, or again after the channel changed (incident_channel.changed_at).';
COMMENT ON COLUMN @extschema@.incident_notification.claimed_at IS 'Set while the worker has the delivery in flight; a claim older than the channel''s timeout and a minute is a crashed worker''s, and is tried again.';

------------------------------------------------------------------------------
-- Rendering
------------------------------------------------------------------------------

-- the json envelope, version 1 (docs/notifications.md)
CREATE FUNCTION @extschema@.incident__notification_json(inc @extschema@.incident, e @extschema@.incident_event,
                                                        link_template text)
RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
BEGIN
    -- json, not jsonb: the keys in this order, and no binary form to build;
    -- every time in UTC, whatever the TimeZone of the session that queued it
    RETURN pg_catalog.json_build_object(
        'version', 1,
        'event_id', e.id,
        'event', e.kind,
        'at', e.at,
        'actor', e.actor,
        'recorded_by', e.recorded_by,
        'message', e.message,
        'details', e.details,
        'incident', pg_catalog.json_build_object(
            'code', inc.code,
            'severity', inc.severity,
            'status', e.status,
            'title', inc.title,
            'component', inc.component,
            'declared_at', inc.declared_at,
            'acknowledged_at', inc.acknowledged_at,
            'resolved_at', inc.resolved_at,
            'roles', pg_catalog.json_build_object('incident_commander', inc.incident_commander,
                                                   'technical_lead', inc.technical_lead,
                                                   'communications_lead', inc.communications_lead),
            'clocks', pg_catalog.json_build_object('response_due', inc.response_due,
                                                    'next_update_due', inc.next_update_due,
                                                    'pir_due', inc.pir_due),
            'link', pg_catalog.replace(link_template, '{code}', inc.code)));
END
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_json(@extschema@.incident, @extschema@.incident_event, text) IS
'Internal: the json envelope (version 1) of an event: event id, kind, time, actor, the role that recorded it, message, details, and the incident''s code, severity, status, title, component, times, roles, clocks and link; every time in UTC (+00:00), whatever the session''s TimeZone.';

-- what Slack would read as markup stays text: & < > escaped (no <!channel>
-- from a title); and the plain @channel, @here, @all and @everyone that
-- Slack-compatible chats (Mattermost, Rocket.Chat) read as mentions get a
-- zero-width space after the @
CREATE FUNCTION @extschema@.incident__slack_escape(t text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.regexp_replace(
               pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(t, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
               '@(channel|here|all|everyone)\M', E'@\u200B\\1', 'gi')
$$;

COMMENT ON FUNCTION @extschema@.incident__slack_escape(text) IS
'Internal: text for a Slack message, with &, < and > escaped as Slack asks, and a zero-width space after the @ of @channel, @here, @all and @everyone (mentions in Mattermost and Rocket.Chat), so that no title or update pings a whole channel or becomes a link.';

-- the playbook's status-update template, the one text both the slack and
-- the mail bodies show; for_slack escapes what users typed and links
CREATE FUNCTION @extschema@.incident__status_update_text(inc @extschema@.incident, e @extschema@.incident_event,
                                                         link_template text, for_slack boolean)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH t AS (
        SELECT CASE WHEN for_slack THEN @extschema@.incident__slack_escape(inc.title) ELSE inc.title END AS impact,
               CASE WHEN e.kind = 'declared'
                    THEN 'declared; response due '
                         || pg_catalog.to_char(inc.response_due AT TIME ZONE @extschema@.incident_timezone(), 'YYYY-MM-DD HH24:MI')
                    WHEN for_slack THEN @extschema@.incident__slack_escape(coalesce(e.message, pg_catalog.replace(e.kind, '_', ' ')))
                    ELSE coalesce(e.message, pg_catalog.replace(e.kind, '_', ' ')) END AS action,
               CASE WHEN for_slack THEN @extschema@.incident__slack_escape(e.details->>'responder')
                         -- a chat handle Slack links: @name or <@U...>, but not one
                         -- that pings everyone (a responder named @channel)
                         || coalesce(' ' || pg_catalog.regexp_replace(
                                pg_catalog.substring(e.details->>'chat', '^(@[A-Za-z0-9._-]{1,80}|<@[A-Z0-9]{1,30}>)$'),
                                '^@(channel|here|all|everyone)$', E'@\u200B\\1', 'i'), '')
                    ELSE e.details->>'responder' END AS person,
               pg_catalog.replace(link_template, '{code}', inc.code) AS link)
    SELECT pg_catalog.concat_ws(E'\n',
        pg_catalog.format('%sINCIDENT %s - %s', CASE WHEN inc.severity = 'P1' THEN '🚨 ' END,
                          pg_catalog.upper(pg_catalog.replace(e.kind, '_', ' ')),
                          pg_catalog.to_char(e.at AT TIME ZONE @extschema@.incident_timezone(), 'YYYY-MM-DD HH24:MI')
                          || ' ' || @extschema@.incident_timezone()),
        pg_catalog.format('Incident ID: %s (%s)', inc.code, inc.severity),
        'Status: ' || pg_catalog.initcap(e.status),
        -- what users typed keeps its line breaks, but every line after its
        -- first is indented: no "Status: resolved" line of its own can look
        -- like the template's
        'Impact: ' || pg_catalog.regexp_replace(t.impact, '\r\n?|\n', E'\n    ', 'g'),
        'Actions: ' || pg_catalog.regexp_replace(t.action, '\r\n?|\n', E'\n    ', 'g'),
        -- an escalation or reminder names its person
        'To: ' || pg_catalog.regexp_replace(t.person, '\r\n?|\n', ' ', 'g'),
        'Next Update: ' || pg_catalog.to_char(inc.next_update_due AT TIME ZONE @extschema@.incident_timezone(),
                                              'YYYY-MM-DD HH24:MI'),
        CASE WHEN for_slack THEN '<' || @extschema@.incident__slack_escape(t.link) || '|' || inc.code || '>' ELSE t.link END)
      FROM t
$$;

COMMENT ON FUNCTION @extschema@.incident__status_update_text(@extschema@.incident, @extschema@.incident_event, text, boolean) IS
'Internal: an event in the shape of the playbook''s status-update template (a siren for P1; Incident ID, Status, Impact, Actions, the person an escalation or reminder is for, Next Update, the link); what users typed keeps its line breaks with the lines after the first indented, so that it cannot fake a line of the template; for Slack, it is escaped, the chat handle and the link are Slack''s.';

CREATE FUNCTION @extschema@.incident__notification_slack(inc @extschema@.incident, e @extschema@.incident_event,
                                                         link_template text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.jsonb_build_object('text', @extschema@.incident__status_update_text(inc, e, link_template, true))
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_slack(@extschema@.incident, @extschema@.incident_event, text) IS
'Internal: the slack body {"text": ...} of an event: incident__status_update_text() for Slack.';

-- a header's text: one line of printable text (no header from a title with
-- CR or LF); when it is not ASCII, RFC 2047 encoded words of at most 45
-- octets of text (72 characters, under the limit of 75), folded one a line
CREATE FUNCTION @extschema@.incident__mail_header(t text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    x text := pg_catalog.btrim(pg_catalog.regexp_replace(t, '[[:cntrl:]]+', ' ', 'g'));
    words text[] := '{}';
    word text := '';
    ch text;
BEGIN
    IF x ~ '^[ -~]*$' THEN
        RETURN x;
    END IF;
    FOREACH ch IN ARRAY pg_catalog.regexp_split_to_array(x, '') LOOP
        -- 39 octets: 52 characters of base64, a 64-character word, a first line of 73 with "Subject: "
        IF pg_catalog.octet_length(pg_catalog.convert_to(word || ch, 'UTF8')) > 39 THEN
            words := words || word;
            word := '';
        END IF;
        word := word || ch;
    END LOOP;
    words := words || word;
    RETURN (SELECT pg_catalog.string_agg('=?UTF-8?B?' || pg_catalog.encode(pg_catalog.convert_to(w, 'UTF8'), 'base64') || '?=',
                                         E'\r\n ' ORDER BY k)
              FROM pg_catalog.unnest(words) WITH ORDINALITY AS u(w, k));
END
$$;

COMMENT ON FUNCTION @extschema@.incident__mail_header(text) IS
'Internal: text for a mail header: control characters (CR, LF, tabs) made spaces, so that nothing typed adds a header; when it is not ASCII, RFC 2047 encoded words of at most 64 characters, folded one a line, so that every line of the header, its name included, stays under 78 characters.';

-- a mail's text on lines SMTP carries: CRLF line ends, whatever ended them
-- before, and no line over 200 characters (800 octets, under SMTP's 998),
-- broken at its last space before that when it has one
CREATE FUNCTION @extschema@.incident__mail_lines(t text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    line text;
    lines text[] := '{}';
    cut int;
BEGIN
    FOREACH line IN ARRAY pg_catalog.regexp_split_to_array(t, E'\r\n|\r|\n') LOOP
        WHILE pg_catalog.length(line) > 200 LOOP
            -- the last space among the first 201 characters, if not too early
            cut := 202 - pg_catalog.strpos(pg_catalog.reverse(pg_catalog.left(line, 201)), ' ');
            IF cut > 201 OR cut < 100 THEN
                lines := lines || pg_catalog.left(line, 200);
                line := pg_catalog.substr(line, 201);
            ELSE
                lines := lines || pg_catalog.left(line, cut - 1);
                line := pg_catalog.substr(line, cut + 1);
            END IF;
        END LOOP;
        lines := lines || line;
    END LOOP;
    RETURN pg_catalog.array_to_string(lines, E'\r\n');
END
$$;

COMMENT ON FUNCTION @extschema@.incident__mail_lines(text) IS
'Internal: a mail body''s text with CRLF line ends and no line over 200 characters (SMTP refuses lines over 998 octets): a longer line is broken at its last space before that, or else at 200 characters.';

-- the mail of an event: the playbook's status-update template, or for a
-- resolution its executive-summary template; CRLF line ends
CREATE FUNCTION @extschema@.incident__notification_mail(inc @extschema@.incident, e @extschema@.incident_event,
                                                        c @extschema@.incident_channel, recipients text[])
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.concat_ws(E'\r\n',
        'From: ' || c.mail_from,
        -- one address a line: a hundred of them stay within SMTP's line length
        'To: ' || pg_catalog.array_to_string(recipients, E',\r\n '),
        'Subject: ' || @extschema@.incident__mail_header(
            CASE WHEN e.kind = 'resolved'
                 THEN pg_catalog.format('[%s] Incident Summary - %s', inc.severity, inc.title)
                 ELSE pg_catalog.format('[%s] %s %s: %s', inc.severity, inc.code,
                                        pg_catalog.replace(e.kind, '_', ' '), inc.title) END),
        'Date: ' || pg_catalog.to_char(e.at AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS') || ' +0000',
        pg_catalog.format('Message-ID: <incident-event-%s.%s@pg_incident>', e.id, c.id),
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        'X-Incident-Event: ' || e.id,
        '',
        -- (libcurl doubles a dot that starts a line, as SMTP asks)
        @extschema@.incident__mail_lines(
            CASE WHEN e.kind = 'resolved' THEN pg_catalog.concat_ws(E'\n',
                pg_catalog.format('Incident: %s - %s', inc.code, inc.title),
                'Start Time: ' || pg_catalog.to_char(inc.started_at AT TIME ZONE @extschema@.incident_timezone(), 'YYYY-MM-DD HH24:MI')
                    || ' ' || @extschema@.incident_timezone(),
                'Resolution Time: ' || pg_catalog.to_char(inc.resolved_at AT TIME ZONE @extschema@.incident_timezone(), 'YYYY-MM-DD HH24:MI')
                    || ' ' || @extschema@.incident_timezone(),
                'Duration: ' || pg_catalog.justify_interval(pg_catalog.date_trunc('minute', inc.resolved_at - inc.started_at)),
                'Impact: ' || coalesce(inc.description, inc.title),
                'Root Cause: ' || coalesce(inc.root_cause, 'to be found in the post-incident review'),
                -- the last ten updates, each cut to 500 characters: a mail of bounded size
                'Actions Taken: ' || coalesce((SELECT pg_catalog.string_agg(
                                                          CASE WHEN pg_catalog.length(u.message) > 500
                                                               THEN pg_catalog.left(u.message, 500) || '...' ELSE u.message END,
                                                          '; ' ORDER BY u.id)
                                                 FROM (SELECT x.id, x.message FROM @extschema@.incident_event x
                                                        WHERE x.incident_id = inc.id AND x.kind = 'status_update'
                                                        ORDER BY x.id DESC LIMIT 10) AS u)
                                              || coalesce((SELECT pg_catalog.format(' (and %s earlier updates)', pg_catalog.count(*) - 10)
                                                             FROM @extschema@.incident_event x
                                                            WHERE x.incident_id = inc.id AND x.kind = 'status_update'
                                                           HAVING pg_catalog.count(*) > 10), ''),
                                              'none recorded'),
                'Prevention: to be agreed in the post-incident review',
                '',
                'Next Steps:',
                '- Post-incident review scheduled for ' || coalesce(pg_catalog.to_char(inc.pir_due AT TIME ZONE @extschema@.incident_timezone(), 'YYYY-MM-DD'), 'a date to be set'),
                '- Action items will be tracked and reported',
                pg_catalog.replace(c.link_template, '{code}', inc.code))
            ELSE @extschema@.incident__status_update_text(inc, e, c.link_template, false) END),
        '')
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_mail(@extschema@.incident, @extschema@.incident_event, @extschema@.incident_channel, text[]) IS
'Internal: the mail (headers and plain-text body, CRLF line ends, lines of at most 200 characters, the last ten updates at most) of an event for an email channel: the playbook''s status-update template, or for a resolution its executive-summary template (start, resolution, duration, impact, root cause, actions taken, prevention, the review date). The subject cannot carry a header: control characters become spaces.';

------------------------------------------------------------------------------
-- Writing the outbox, in the event's transaction
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__notification_wake()
RETURNS void
AS 'MODULE_PATHNAME', 'incident__notification_wake'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION @extschema@.incident__notification_wake() IS
'Internal: when the current transaction commits, wakes the background worker to deliver what it wrote to the outbox and to look again at what falls due (nothing when the library is not preloaded).';

-- an event as a channel gets it: the body in the channel's format, its
-- content type, and a mail's envelope recipients
CREATE FUNCTION @extschema@.incident__notification_render(inc @extschema@.incident, e @extschema@.incident_event,
                                                          c @extschema@.incident_channel,
                                                          OUT body text, OUT content_type text, OUT recipients text[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF c.kind = 'email' THEN
        -- the channel's addresses in their order, then the person an
        -- escalation or reminder is for; each once
        recipients := ARRAY(SELECT r.a
                              FROM (SELECT DISTINCT ON (pg_catalog.lower(x.a)) x.a, x.o
                                      FROM pg_catalog.unnest(c.mail_to || (e.details->>'email')) WITH ORDINALITY AS x(a, o)
                                     WHERE @extschema@.incident__mail_address_ok(x.a)
                                     ORDER BY pg_catalog.lower(x.a), x.o) AS r
                             ORDER BY r.o);
        body := @extschema@.incident__notification_mail(inc, e, c, recipients);
        content_type := 'message/rfc822';
    ELSE
        body := CASE c.format WHEN 'slack' THEN @extschema@.incident__notification_slack(inc, e, c.link_template)::text
                              ELSE @extschema@.incident__notification_json(inc, e, c.link_template)::text END;
        content_type := 'application/json';
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_render(@extschema@.incident, @extschema@.incident_event, @extschema@.incident_channel) IS
'Internal: an event as the channel gets it: the json envelope, the slack text or the mail; its content type; and for a mail the envelope recipients (the channel''s mail_to in order, then the email of the person an escalation or reminder is for, each once).';

CREATE FUNCTION @extschema@.incident__notification_enqueue()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident;
    c @extschema@.incident_channel;
    r record;
BEGIN
    SELECT * INTO inc FROM @extschema@.incident i WHERE i.id = NEW.incident_id;
    FOR c IN SELECT * FROM @extschema@.incident_channel ch
              WHERE ch.enabled AND NEW.kind = ANY (ch.events) AND inc.severity <= ch.min_severity
                AND (ch.components IS NULL OR inc.component = ANY (ch.components))
              ORDER BY ch.id
                FOR SHARE OF ch    -- a channel saved meanwhile waits, and then renders these rows again
    LOOP
        r := @extschema@.incident__notification_render(inc, NEW, c);
        INSERT INTO @extschema@.incident_notification
            (channel_id, event_id, incident_id, event_kind, body, content_type, recipients, created_at, queued_at,
             next_attempt_at)
        VALUES (c.id, NEW.id, NEW.incident_id, NEW.kind, r.body, r.content_type, r.recipients,
                NEW.at, pg_catalog.clock_timestamp(), pg_catalog.clock_timestamp());
    END LOOP;
    -- the worker delivers, and looks again at what falls due (an
    -- acknowledgement stops escalation, an update moves its reminder)
    PERFORM @extschema@.incident__notification_wake();
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_enqueue() IS
'Internal trigger on incident_event: writes an outbox row, rendered in the channel''s format, for every enabled channel whose routing takes the event (its kind, min_severity, components), and wakes the worker at commit (to deliver them, and to look again at the escalations and reminders due).';

CREATE TRIGGER incident_event_notify
    AFTER INSERT ON @extschema@.incident_event
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__notification_enqueue();

------------------------------------------------------------------------------
-- The worker's side: claiming, and recording what became of a delivery
------------------------------------------------------------------------------

-- renders undelivered notifications again for their channel as it is now,
-- where it changed after they were rendered
CREATE FUNCTION @extschema@.incident__notification_rerender(ids bigint[])
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE @extschema@.incident_notification n
       SET body = r.body, content_type = r.content_type, recipients = r.recipients,
           rendered_at = pg_catalog.clock_timestamp()
      FROM @extschema@.incident_channel c, @extschema@.incident i, @extschema@.incident_event e,
           LATERAL @extschema@.incident__notification_render(i, e, c) AS r
     WHERE n.id = ANY (ids) AND n.state <> 'delivered' AND c.id = n.channel_id AND c.changed_at >= n.rendered_at
       AND i.id = n.incident_id AND e.id = n.event_id
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_rerender(bigint[]) IS
'Internal: renders these undelivered notifications again (body, content type, recipients) for their channel as it is now, where the channel changed after they were rendered: a replaced channel never gets a body in its old kind or format.';

-- the due deliveries, at most max_rows: for each channel and incident only
-- the oldest pending one, so that they arrive in order; per channel at most
-- per_channel in flight, so that a receiver that hangs holds only its share
-- of the worker's requests; and at most max_in_flight in all, so that the
-- probes keep the rest
CREATE FUNCTION @extschema@.incident__notification_claim(max_rows int, per_channel int, max_in_flight int,
                                                         OUT id bigint, OUT url text, OUT body text,
                                                         OUT content_type text, OUT secret text, OUT event_id bigint,
                                                         OUT timeout_ms int, OUT kind text, OUT mail_from text,
                                                         OUT recipients text[], OUT smtp_user text,
                                                         OUT smtp_password text)
RETURNS SETOF record
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH busy AS (
        SELECT f.channel_id, pg_catalog.count(*) AS n
          FROM @extschema@.incident_notification f
         WHERE f.state = 'pending' AND f.claimed_at IS NOT NULL
         GROUP BY f.channel_id),
    candidate AS (
        SELECT n.id, n.channel_id, n.next_attempt_at
          FROM @extschema@.incident_notification n
          JOIN @extschema@.incident_channel c ON c.id = n.channel_id
         WHERE n.state = 'pending' AND c.enabled
           AND n.next_attempt_at <= pg_catalog.clock_timestamp()
           AND (n.claimed_at IS NULL
                OR n.claimed_at < pg_catalog.clock_timestamp() - c.timeout - interval '1 minute')
           AND NOT EXISTS (SELECT FROM @extschema@.incident_notification b
                            WHERE b.channel_id = n.channel_id AND b.incident_id = n.incident_id
                              AND b.state = 'pending' AND b.id < n.id)
         ORDER BY n.next_attempt_at, n.id
         LIMIT max_rows * 4
           FOR UPDATE OF n SKIP LOCKED),
    due AS (
        SELECT r.id
          FROM (SELECT x.id, x.next_attempt_at,
                       pg_catalog.row_number() OVER (PARTITION BY x.channel_id ORDER BY x.next_attempt_at, x.id)
                       + coalesce(b.n, 0) AS place
                  FROM candidate x LEFT JOIN busy b ON b.channel_id = x.channel_id) r
         WHERE r.place <= per_channel
         ORDER BY r.next_attempt_at, r.id
         LIMIT GREATEST(LEAST(max_rows, max_in_flight - coalesce((SELECT pg_catalog.sum(b.n) FROM busy b), 0)::int), 0))
    UPDATE @extschema@.incident_notification n
       SET claimed_at = pg_catalog.clock_timestamp()
      FROM due, @extschema@.incident_channel c
     WHERE n.id = due.id AND c.id = n.channel_id
    RETURNING n.id, c.url, n.body, n.content_type, c.secret, n.event_id,
              (pg_catalog.date_part('epoch', c.timeout) * 1000)::int, c.kind, c.mail_from, n.recipients,
              c.smtp_user, c.smtp_password
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_claim(int, int, int) IS
'Internal, for the worker: claims at most max_rows due deliveries (the oldest pending one of each channel and incident, not in flight; at most per_channel of a channel and max_in_flight of all channels in flight) and returns what posting them takes.';

-- when the worker should look again: the earliest pending delivery not in flight
CREATE FUNCTION @extschema@.incident__notification_next()
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- the rows the claim could take: of an enabled channel, first of their
    -- incident's queue, not in flight (a row behind one that backs off, or
    -- of a disabled channel, is not due, however old)
    SELECT pg_catalog.min(n.next_attempt_at)
      FROM @extschema@.incident_notification n
      JOIN @extschema@.incident_channel c ON c.id = n.channel_id AND c.enabled
     WHERE n.state = 'pending' AND n.claimed_at IS NULL
       AND NOT EXISTS (SELECT FROM @extschema@.incident_notification b
                        WHERE b.channel_id = n.channel_id AND b.incident_id = n.incident_id
                          AND b.state = 'pending' AND b.id < n.id)
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_next() IS
'Internal, for the worker: the earliest next_attempt_at of a pending delivery the claim could take (an enabled channel''s, first of its incident''s queue, not in flight), or NULL.';

CREATE FUNCTION @extschema@.incident__notification_done(id bigint, ok boolean, status int, error text,
                                                        retry_after_s int, retry_max_ms int, dead_after_s int)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n @extschema@.incident_notification;
    now_ timestamptz := pg_catalog.clock_timestamp();
    delay double precision;
BEGIN
    SELECT * INTO n FROM @extschema@.incident_notification x WHERE x.id = incident__notification_done.id FOR UPDATE;
    IF NOT FOUND OR n.state <> 'pending' THEN
        RETURN NULL;
    END IF;
    n.attempts := n.attempts + 1;
    n.last_attempt_at := now_;
    n.last_status := nullif(status, 0);
    n.claimed_at := NULL;
    IF ok THEN
        n.state := 'delivered';
        n.delivered_at := now_;
        n.last_error := NULL;
    ELSE
        n.last_error := pg_catalog.left(error, 1000);
        -- 1 s, 2 s, 4 s ... up to retry_max, each between half and all of it
        delay := least(pg_catalog.power(2, least(n.attempts - 1, 30)) * 1000.0, retry_max_ms)
                 * (0.5 + pg_catalog.random() / 2);
        delay := greatest(delay, coalesce(retry_after_s, 0) * 1000.0);
        n.next_attempt_at := now_ + delay * interval '1 millisecond';
        IF dead_after_s > 0 AND n.next_attempt_at > n.queued_at + dead_after_s * interval '1 second' THEN
            n.state := 'dead';
        END IF;
    END IF;
    UPDATE @extschema@.incident_notification x
       SET state = n.state, attempts = n.attempts, last_attempt_at = n.last_attempt_at,
           last_status = n.last_status, last_error = n.last_error, claimed_at = NULL,
           delivered_at = n.delivered_at, next_attempt_at = n.next_attempt_at
     WHERE x.id = n.id;
    -- its channel was replaced while it was in flight: the next attempt is the new channel's
    IF NOT ok THEN
        PERFORM @extschema@.incident__notification_rerender(ARRAY[n.id]);
    END IF;
    RETURN n.state;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_done(bigint, boolean, int, text, int, int, int) IS
'Internal, for the worker: records one delivery attempt: delivered, or pending again after exponential back-off with jitter (1 s doubling up to retry_max_ms, at least retry_after_s), or dead once the next attempt would come more than dead_after_s after it was queued. Returns the new state.';

-- a crashed worker's claims: tried again at once
CREATE FUNCTION @extschema@.incident__notification_release()
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH released AS (
        UPDATE @extschema@.incident_notification SET claimed_at = NULL
         WHERE state = 'pending' AND claimed_at IS NOT NULL
        RETURNING id)
    SELECT @extschema@.incident__notification_rerender(pg_catalog.array_agg(id)) FROM released
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_release() IS
'Internal, for the worker when it starts: deliveries a predecessor left in flight count as not done (rendered again if their channel changed since).';

-- delivered rows older than the retention, in small batches; and the rows
-- of a dropped channel that a transaction running alongside the drop wrote
CREATE FUNCTION @extschema@.incident__notification_prune(older_than interval)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM @extschema@.incident_notification n
         WHERE n.id IN (SELECT x.id FROM @extschema@.incident_notification x
                         WHERE x.state = 'delivered' AND x.delivered_at < pg_catalog.clock_timestamp() - older_than
                         LIMIT 1000)
            OR n.id IN (SELECT x.id FROM @extschema@.incident_notification x
                         WHERE NOT EXISTS (SELECT FROM @extschema@.incident_channel c WHERE c.id = x.channel_id)
                         LIMIT 1000)
        RETURNING 1)
    SELECT pg_catalog.count(*) FROM gone
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_prune(interval) IS
'Internal, for the worker: deletes up to 1000 delivered notifications delivered longer ago than older_than, and up to 1000 of channels that are gone (written by a transaction that ran alongside incident_channel_drop()); dead ones stay until retried or deleted by an admin.';

-- from 40_oncall.sql: the sweep reads every incident's next escalation at once
-- The next step of every unacknowledged incident at once: the arithmetic of
-- incident__escalation_step, set-based, with each policy's levels read once;
-- for the worker's sweep, which looks at all of them every time it runs
-- (sql/30_oncall.sql checks that both agree).
CREATE FUNCTION @extschema@.incident__escalations_due(OUT incident_id bigint, OUT code text, OUT step int,
                                                      OUT due_at timestamptz)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH levels AS (
        SELECT l.policy, l.delay, p.repeat_every, p.repeat_limit,
               (pg_catalog.row_number() OVER (PARTITION BY l.policy ORDER BY l.level) - 1)::int AS idx,
               (pg_catalog.count(*) OVER (PARTITION BY l.policy))::int AS n,
               pg_catalog.max(pg_catalog.date_part('epoch', l.delay)) OVER (PARTITION BY l.policy) AS last_delay_s
          FROM @extschema@.incident_escalation_level l
          JOIN @extschema@.incident_escalation_policy p ON p.name = l.policy
    ), open AS MATERIALIZED (
        SELECT i.id, i.code, i.declared_at, s.escalation_policy AS policy,
               coalesce((SELECT pg_catalog.max((e.details->>'step')::int) + 1
                           FROM @extschema@.incident_event e
                          WHERE e.incident_id = i.id AND e.kind = 'escalated'
                            AND e.details->>'policy' = s.escalation_policy), 0) AS step
          FROM @extschema@.incident i
          JOIN @extschema@.incident_severity s ON s.severity = i.severity AND s.escalation_policy IS NOT NULL
         WHERE i.status = 'declared'
    )
    SELECT o.id, o.code, o.step,
           o.declared_at + pg_catalog.make_interval(secs => (o.step / l.n) * (l.last_delay_s + coalesce(pg_catalog.date_part('epoch', l.repeat_every), 0))
                                                           + pg_catalog.date_part('epoch', l.delay))
      FROM open o
      JOIN levels l ON l.policy = o.policy AND l.idx = o.step % l.n
     WHERE o.step / l.n = 0 OR (l.repeat_every IS NOT NULL AND (l.repeat_limit IS NULL OR o.step / l.n <= l.repeat_limit))
$$;

COMMENT ON FUNCTION @extschema@.incident__escalations_due() IS
'Internal, for the worker''s sweep: every unacknowledged open incident whose severity''s escalation policy has a step left, with that step''s number and due time, as incident__escalation_step computes them, in one pass.';

-- the sweep and incident_escalate() look up an incident's last escalation
-- step among its timeline events
CREATE INDEX incident_event_escalated_idx ON @extschema@.incident_event
    (incident_id, (details->>'policy'), ((details->>'step')::int)) WHERE kind = 'escalated';

------------------------------------------------------------------------------
-- Escalations and reminders on time: the worker's sweep
------------------------------------------------------------------------------

-- whom a reminder of the incident is for: its communications lead, else its
-- commander, else whoever acknowledged it
CREATE FUNCTION @extschema@.incident__reminder_for(inc @extschema@.incident)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(inc.communications_lead, inc.incident_commander, inc.acknowledged_by)
$$;

COMMENT ON FUNCTION @extschema@.incident__reminder_for(@extschema@.incident) IS
'Internal: whom a reminder of the incident goes to: its communications lead, else its incident commander, else whoever acknowledged it (NULL: nobody named).';

-- one reminder event; the caller holds the incident's row lock
CREATE FUNCTION @extschema@.incident__remind(inc @extschema@.incident, reminder text, message text, due timestamptz,
                                             period int)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    who text := @extschema@.incident__reminder_for(inc);
    r @extschema@.incident_responder;
BEGIN
    SELECT * INTO r FROM @extschema@.incident_responder x WHERE x.name = who;
    PERFORM @extschema@.incident__event(inc, 'reminder', 'pg_incident',
        message || CASE WHEN who IS NOT NULL THEN pg_catalog.format(': reminding %s', who) ELSE '' END,
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'reminder', reminder, 'due', due, 'period', period, 'responder', who,
            'phone', r.phone, 'email', r.email, 'chat', r.chat)));
END
$$;

COMMENT ON FUNCTION @extschema@.incident__remind(@extschema@.incident, text, text, timestamptz, int) IS
'Internal: writes a reminder timeline event (details: reminder update_overdue or response_breached, the due time, the overdue period, the person reminded and their contacts); the caller holds the incident''s row lock.';

CREATE FUNCTION @extschema@.incident__sweep(OUT fired int, OUT next_at timestamptz, OUT held text[])
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- an incident locked by someone else's open transaction is skipped (and
-- named in held, which the worker logs), and no other lock may hold the
-- worker longer than this
SET lock_timeout = '2s'
AS $$
DECLARE
    now_ timestamptz := @extschema@.incident_now();
    x record;
    inc @extschema@.incident;
    every_ interval;
    period_ int;
    n int;
BEGIN
    fired := 0;
    held := '{}';

    -- escalation levels due: each fired once, through incident_escalate's code
    -- (the view only for the unacknowledged incidents whose severity escalates)
    FOR x IN SELECT d.code FROM @extschema@.incident__escalations_due() d WHERE d.due_at <= now_ LOOP
        BEGIN
            FOR n IN 1 .. 100 LOOP
                SELECT * INTO inc FROM @extschema@.incident i WHERE i.code = x.code FOR UPDATE SKIP LOCKED;
                IF NOT FOUND THEN
                    held := held || x.code;
                    EXIT;
                END IF;
                -- again under the lock: an acknowledgement or a person's escalation may have come first
                EXIT WHEN NOT EXISTS (SELECT FROM @extschema@.incident_escalations e
                                       WHERE e.code = x.code AND e.due_at <= now_ AND e.level IS NOT NULL);
                PERFORM @extschema@.incident__escalate(x.code, false);
                fired := fired + 1;
            END LOOP;
        EXCEPTION WHEN lock_not_available THEN
            held := held || x.code;     -- next time
        WHEN OTHERS THEN
            RAISE WARNING 'pg_incident: could not escalate incident "%": %', x.code, SQLERRM;
        END;
    END LOOP;

    -- response deadlines breached: once per incident
    FOR x IN SELECT i.id, i.code FROM @extschema@.incident i
              WHERE i.status = 'declared' AND i.response_due <= now_
                AND NOT EXISTS (SELECT FROM @extschema@.incident_event e
                                 WHERE e.incident_id = i.id AND e.kind = 'reminder'
                                   AND e.details->>'reminder' = 'response_breached') LOOP
        BEGIN
            SELECT * INTO inc FROM @extschema@.incident i WHERE i.id = x.id FOR UPDATE SKIP LOCKED;
            IF NOT FOUND THEN
                held := held || x.code;
                CONTINUE;
            END IF;
            CONTINUE WHEN inc.status <> 'declared' OR inc.response_due > now_
                OR EXISTS (SELECT FROM @extschema@.incident_event e
                            WHERE e.incident_id = inc.id AND e.kind = 'reminder'
                              AND e.details->>'reminder' = 'response_breached');
            PERFORM @extschema@.incident__remind(inc, 'response_breached',
                pg_catalog.format('response deadline breached: not acknowledged by %s',
                                  pg_catalog.to_char(inc.response_due AT TIME ZONE @extschema@.incident_timezone(), 'YYYY-MM-DD HH24:MI')),
                inc.response_due, 0);
            fired := fired + 1;
        EXCEPTION WHEN lock_not_available THEN
            held := held || x.code;
        WHEN OTHERS THEN
            RAISE WARNING 'pg_incident: could not record the breach of incident "%": %', x.code, SQLERRM;
        END;
    END LOOP;

    -- status updates overdue: one reminder per overdue period of the severity's cadence
    FOR x IN SELECT i.id, i.code FROM @extschema@.incident i
              WHERE i.status NOT IN ('declared', 'resolved', 'closed') AND i.next_update_due <= now_ LOOP
        BEGIN
            SELECT * INTO inc FROM @extschema@.incident i WHERE i.id = x.id FOR UPDATE SKIP LOCKED;
            IF NOT FOUND THEN
                held := held || x.code;
                CONTINUE;
            END IF;
            CONTINUE WHEN inc.status IN ('declared', 'resolved', 'closed') OR inc.next_update_due > now_;
            SELECT s.update_every INTO every_ FROM @extschema@.incident_severity s WHERE s.severity = inc.severity;
            period_ := pg_catalog.floor(pg_catalog.date_part('epoch', now_ - inc.next_update_due)
                                        / pg_catalog.date_part('epoch', every_))::int;
            CONTINUE WHEN EXISTS (SELECT FROM @extschema@.incident_event e
                                   WHERE e.incident_id = inc.id AND e.kind = 'reminder'
                                     AND e.details->>'reminder' = 'update_overdue'
                                     AND (e.details->>'due')::timestamptz = inc.next_update_due
                                     AND (e.details->>'period')::int = period_);
            PERFORM @extschema@.incident__remind(inc, 'update_overdue',
                pg_catalog.format('status update overdue since %s (every %s)',
                                  pg_catalog.to_char(inc.next_update_due AT TIME ZONE @extschema@.incident_timezone(), 'YYYY-MM-DD HH24:MI'),
                                  every_),
                inc.next_update_due, period_);
            fired := fired + 1;
        EXCEPTION WHEN lock_not_available THEN
            held := held || x.code;
        WHEN OTHERS THEN
            RAISE WARNING 'pg_incident: could not remind incident "%": %', x.code, SQLERRM;
        END;
    END LOOP;

    -- when to look again
    now_ := @extschema@.incident_now();
    SELECT pg_catalog.min(t) INTO next_at FROM (
        SELECT d.due_at AS t FROM @extschema@.incident__escalations_due() d
        UNION ALL
        -- a breach not yet due (one due now was reminded above, or is retried within 5 s)
        (SELECT i.response_due FROM @extschema@.incident i
          WHERE i.status = 'declared' AND i.response_due > now_
          ORDER BY i.response_due LIMIT 1)
        UNION ALL
        SELECT CASE WHEN i.next_update_due > now_ THEN i.next_update_due
                    ELSE i.next_update_due + s.update_every
                         * (pg_catalog.floor(pg_catalog.date_part('epoch', now_ - i.next_update_due)
                                             / pg_catalog.date_part('epoch', s.update_every)) + 1) END
          FROM @extschema@.incident i JOIN @extschema@.incident_severity s USING (severity)
         WHERE i.status NOT IN ('declared', 'resolved', 'closed') AND i.next_update_due IS NOT NULL) d;
END
$$;

-- what the sweep looks for among many incidents, without reading them all
CREATE INDEX incident_declared_response_idx ON @extschema@.incident (response_due) WHERE status = 'declared';
CREATE INDEX incident_update_due_idx ON @extschema@.incident (next_update_due)
    WHERE status NOT IN ('declared', 'resolved', 'closed');

COMMENT ON FUNCTION @extschema@.incident__sweep() IS
'Internal, for the worker: fires what is due by incident_now(): each escalation level of an unacknowledged incident (through the code of incident_escalate, once per step), a reminder when an incident''s response deadline passes unacknowledged (once), and a reminder when a status update is overdue (once per period of the severity''s cadence) to its communications lead, commander or acknowledger. Skips an incident someone holds locked, and names it in held. Returns how many it fired, when the next is due and the incidents it had to skip.';

------------------------------------------------------------------------------
-- What users call
------------------------------------------------------------------------------

-- writes a channel, new or replacing the one of its name; what it has not
-- sent yet is rendered again for it as it is now (its format, its link, its
-- recipients), so that no mail goes to a webhook or json to Slack
CREATE FUNCTION @extschema@.incident__channel_save(c @extschema@.incident_channel)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    saved @extschema@.incident_channel;
BEGIN
    INSERT INTO @extschema@.incident_channel AS t
        (name, kind, url, format, min_severity, secret, events, components, link_template, timeout, enabled,
         created_by, mail_from, mail_to, smtp_user, smtp_password)
    VALUES (c.name, c.kind, c.url, c.format, c.min_severity, c.secret,
            coalesce(c.events, @extschema@.incident__channel_default_events()), c.components, c.link_template,
            c.timeout, c.enabled, @extschema@.incident_invoker(), c.mail_from, c.mail_to, c.smtp_user, c.smtp_password)
    ON CONFLICT ON CONSTRAINT incident_channel_name_key DO UPDATE
       SET kind = excluded.kind, url = excluded.url, format = excluded.format, min_severity = excluded.min_severity,
           secret = excluded.secret, events = excluded.events, components = excluded.components,
           link_template = excluded.link_template, timeout = excluded.timeout, enabled = excluded.enabled,
           created_by = excluded.created_by, mail_from = excluded.mail_from, mail_to = excluded.mail_to,
           smtp_user = excluded.smtp_user, smtp_password = excluded.smtp_password,
           changed_at = pg_catalog.clock_timestamp()
    RETURNING t.* INTO saved;
    -- not the ones in flight: the worker has them as they were, and renders
    -- them again if the attempt fails (incident__notification_done)
    PERFORM @extschema@.incident__notification_rerender(pg_catalog.array_agg(n.id))
       FROM @extschema@.incident_notification n
      WHERE n.channel_id = saved.id AND n.state IN ('pending', 'dead') AND n.claimed_at IS NULL;
    RETURN saved.id;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__channel_save(@extschema@.incident_channel) IS
'Internal: writes the channel (new, or replacing the one of its name), events defaulting to incident__channel_default_events(), and renders its undelivered notifications again for it as it now is. Returns its id.';

CREATE FUNCTION @extschema@.incident_channel_webhook(name text, url text, format text DEFAULT 'json',
                                                     min_severity text DEFAULT 'P4', secret text DEFAULT NULL,
                                                     events text[] DEFAULT NULL, components text[] DEFAULT NULL,
                                                     link_template text DEFAULT NULL,
                                                     timeout interval DEFAULT '10 seconds',
                                                     enabled boolean DEFAULT true)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c @extschema@.incident_channel;
BEGIN
    c.name := @extschema@.incident__require_text(name, 'channel name', 100);
    IF coalesce(pg_catalog.btrim(url), '') = '' THEN
        RAISE EXCEPTION 'the url of channel "%" is empty', @extschema@.incident__quote(c.name)
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the webhook''s http:// or https:// URL, such as ''https://hooks.example/incidents''.';
    END IF;
    IF pg_catalog.substring(pg_catalog.btrim(url), '^[A-Za-z]+://([^/?#]*)') LIKE '%@%' THEN
        RAISE EXCEPTION 'the url of channel "%" holds a user name or password', @extschema@.incident__quote(c.name)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the webhook''s URL without credentials; to prove the sender to the receiver, give a secret, which signs each body.';
    END IF;
    c.kind := 'webhook';
    c.url := pg_catalog.btrim(url);
    c.format := pg_catalog.lower(pg_catalog.btrim(format));
    c.min_severity := @extschema@.incident_severity_normalize(min_severity);
    c.secret := secret;
    c.events := events;
    c.components := components;
    c.link_template := link_template;
    c.timeout := timeout;
    c.enabled := enabled;
    RETURN @extschema@.incident__channel_save(c);
END
$$;

COMMENT ON FUNCTION @extschema@.incident_channel_webhook(text, text, text, text, text, text[], text[], text, interval, boolean) IS
'Creates or replaces the webhook channel of this name: the worker posts each timeline event it routes (events, of incidents of min_severity or worse, of components) to url, as the json envelope or a slack text, signed with secret when given. Returns the channel''s id.';

CREATE FUNCTION @extschema@.incident_channel_email(name text, smtp_url text, mail_from text, mail_to text[],
                                                   min_severity text DEFAULT 'P2', events text[] DEFAULT NULL,
                                                   components text[] DEFAULT NULL, link_template text DEFAULT NULL,
                                                   smtp_user text DEFAULT NULL, smtp_password text DEFAULT NULL,
                                                   timeout interval DEFAULT '30 seconds',
                                                   enabled boolean DEFAULT true)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c @extschema@.incident_channel;
BEGIN
    c.name := @extschema@.incident__require_text(name, 'channel name', 100);
    IF coalesce(pg_catalog.btrim(smtp_url), '') = '' THEN
        RAISE EXCEPTION 'the smtp_url of channel "%" is empty', @extschema@.incident__quote(c.name)
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the mail relay''s smtp:// or smtps:// URL, such as ''smtp://mail.example:587''.';
    END IF;
    IF pg_catalog.substring(pg_catalog.btrim(smtp_url), '^[A-Za-z]+://([^/?#]*)') LIKE '%@%' THEN
        RAISE EXCEPTION 'the smtp_url of channel "%" holds a user name or password', @extschema@.incident__quote(c.name)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the login as smtp_user and smtp_password, which only incident_admin reads.';
    END IF;
    IF mail_from IS NULL OR mail_to IS NULL THEN
        RAISE EXCEPTION 'channel "%" needs mail_from and mail_to', @extschema@.incident__quote(c.name)
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the sender, such as ''incidents@example.com'', and the recipients, such as ''{oncall@example.com}''.';
    END IF;
    c.kind := 'email';
    c.url := pg_catalog.btrim(smtp_url);
    c.format := 'text';
    c.min_severity := @extschema@.incident_severity_normalize(min_severity);
    c.events := events;
    c.components := components;
    c.link_template := link_template;
    c.timeout := timeout;
    c.enabled := enabled;
    c.mail_from := pg_catalog.btrim(mail_from);
    c.mail_to := ARRAY(SELECT pg_catalog.btrim(a) FROM pg_catalog.unnest(mail_to) WITH ORDINALITY AS m(a, o) ORDER BY o);
    c.smtp_user := smtp_user;
    c.smtp_password := smtp_password;
    RETURN @extschema@.incident__channel_save(c);
END
$$;

COMMENT ON FUNCTION @extschema@.incident_channel_email(text, text, text, text[], text, text[], text[], text, text, text, interval, boolean) IS
'Creates or replaces the email channel of this name: the worker mails each timeline event it routes (events, of incidents of min_severity or worse, default P2, of components) from mail_from to mail_to (and to the person an escalation or reminder is for) through the SMTP relay at smtp_url (smtps:// for TLS, or STARTTLS, required when a password is given), logging in as smtp_user when given. Plain text in the playbook''s status-update shape; a resolution in its executive-summary shape. Returns the channel''s id.';

CREATE FUNCTION @extschema@.incident_channel_drop(name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gone_id int;
BEGIN
    DELETE FROM @extschema@.incident_channel c WHERE c.name = incident_channel_drop.name RETURNING c.id INTO gone_id;
    IF gone_id IS NULL THEN
        RAISE EXCEPTION 'channel "%" does not exist', @extschema@.incident__quote(name)
            USING ERRCODE = 'no_data_found',
                  HINT = 'See incident_channels for the channels.';
    END IF;
    DELETE FROM @extschema@.incident_notification n WHERE n.channel_id = gone_id;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_channel_drop(text) IS
'Drops the channel with its notifications, delivered or not.';

CREATE FUNCTION @extschema@.incident_notification_retry(id bigint)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n @extschema@.incident_notification;
BEGIN
    SELECT * INTO n FROM @extschema@.incident_notification x WHERE x.id = incident_notification_retry.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'notification % does not exist', coalesce(id::text, 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = 'See incident_notification_dead for the deliveries that failed.';
    END IF;
    IF n.state = 'delivered' THEN
        RAISE EXCEPTION 'notification % was delivered already', n.id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Only a dead or pending notification is retried.';
    END IF;
    -- in flight: queued again now, it would go twice (a stale claim, a
    -- crashed worker's, is the worker's to take again, and may be retried)
    IF n.claimed_at IS NOT NULL AND n.claimed_at >= pg_catalog.clock_timestamp()
           - coalesce((SELECT c.timeout FROM @extschema@.incident_channel c WHERE c.id = n.channel_id), interval '0')
           - interval '1 minute' THEN
        RAISE EXCEPTION 'notification % is being delivered', n.id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Wait for its outcome in incident_notifications; the worker retries a failed delivery by itself.';
    END IF;
    UPDATE @extschema@.incident_notification x
       SET state = 'pending', next_attempt_at = pg_catalog.clock_timestamp(), claimed_at = NULL,
           queued_at = pg_catalog.clock_timestamp()
     WHERE x.id = n.id;
    PERFORM @extschema@.incident__notification_wake();
    RETURN 'pending';
END
$$;

COMMENT ON FUNCTION @extschema@.incident_notification_retry(bigint) IS
'Queues a dead (or pending) notification again, due now; the age after which it is dead again counts from now.';

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------

CREATE VIEW @extschema@.incident_channels AS
SELECT c.name, c.kind, c.format, c.min_severity, c.events, c.components, c.enabled,
       c.secret IS NOT NULL AS signed,
       (SELECT pg_catalog.count(*) FROM @extschema@.incident_notification n
         WHERE n.channel_id = c.id AND n.state = 'pending') AS pending,
       (SELECT pg_catalog.count(*) FROM @extschema@.incident_notification n
         WHERE n.channel_id = c.id AND n.state = 'dead') AS dead
  FROM @extschema@.incident_channel c
 ORDER BY c.name;

COMMENT ON VIEW @extschema@.incident_channels IS
'One row per channel, without its url and secret: kind, format, routing, whether it signs, and how many deliveries are pending and dead.';
COMMENT ON COLUMN @extschema@.incident_channels.kind IS 'webhook (posted over HTTP) or email (sent over SMTP).';
COMMENT ON COLUMN @extschema@.incident_channels.signed IS 'True when the channel has a secret, which signs each webhook body (X-Incident-Signature).';
COMMENT ON COLUMN @extschema@.incident_channels.pending IS 'Deliveries waiting for their first attempt or a retry, or in flight.';
COMMENT ON COLUMN @extschema@.incident_channels.dead IS 'Deliveries that kept failing past pg_incident.notification_dead_after (see incident_notification_dead).';

CREATE VIEW @extschema@.incident_notifications AS
SELECT n.id,
       c.name AS channel,
       i.code AS incident,
       n.event_id,
       n.event_kind,
       n.state,
       n.attempts,
       n.created_at,
       n.next_attempt_at,
       n.claimed_at IS NOT NULL AS in_flight,
       n.last_attempt_at,
       n.last_status,
       n.last_error,
       n.delivered_at,
       n.delivered_at - n.created_at AS latency
  FROM @extschema@.incident_notification n
  JOIN @extschema@.incident_channel c ON c.id = n.channel_id
  JOIN @extschema@.incident i ON i.id = n.incident_id
 ORDER BY n.id;

COMMENT ON VIEW @extschema@.incident_notifications IS
'Every delivery: channel, incident, event, state (pending, delivered, dead), attempts, when it is tried next, whether it is in flight, the last HTTP status and error, and the latency from the event to delivery.';
COMMENT ON COLUMN @extschema@.incident_notifications.event_id IS 'The timeline event delivered, also the Idempotency-Key header a receiver dedups on.';
COMMENT ON COLUMN @extschema@.incident_notifications.state IS 'pending (waiting, retrying or in flight), delivered (a 2xx answer or the relay''s 250) or dead (failing past pg_incident.notification_dead_after).';
COMMENT ON COLUMN @extschema@.incident_notifications.attempts IS 'Attempts whose outcome was recorded; a post in flight is not counted yet.';
COMMENT ON COLUMN @extschema@.incident_notifications.created_at IS 'When the event happened.';
COMMENT ON COLUMN @extschema@.incident_notifications.next_attempt_at IS 'When the worker tries next: at once for a new one, after back-off with jitter (or the receiver''s Retry-After) for a retry.';
COMMENT ON COLUMN @extschema@.incident_notifications.in_flight IS 'True while the worker has it claimed: posted or mailed, the outcome not recorded yet.';
COMMENT ON COLUMN @extschema@.incident_notifications.last_status IS 'The HTTP status (or SMTP reply code) of the last attempt; NULL when no answer came.';
COMMENT ON COLUMN @extschema@.incident_notifications.last_error IS 'Why the last attempt failed: the failure kind (dns, connect, tls, timeout, ...) and its message, or the HTTP status and the start of the answer; never a secret.';
COMMENT ON COLUMN @extschema@.incident_notifications.latency IS 'From the event to its delivery.';

CREATE VIEW @extschema@.incident_notification_dead AS
SELECT id, channel, incident, event_id, event_kind, attempts, created_at, last_attempt_at, last_status, last_error
  FROM @extschema@.incident_notifications
 WHERE state = 'dead';

COMMENT ON VIEW @extschema@.incident_notification_dead IS
'The deliveries that kept failing until pg_incident.notification_dead_after passed, with their last error; incident_notification_retry(id) queues one again.';
COMMENT ON COLUMN @extschema@.incident_notification_dead.last_error IS 'Why the last attempt failed (see incident_notifications.last_error).';

------------------------------------------------------------------------------
-- pg_dump and privileges
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_channel', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_channel_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_notification', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_notification_id_seq', '');

-- a channel's url (a Slack webhook's is its token), secret and SMTP login are credentials
GRANT SELECT (id, name, kind, format, min_severity, events, components, link_template, timeout, enabled, created_by,
              mail_from, mail_to)
   ON @extschema@.incident_channel TO incident_viewer;
GRANT SELECT ON @extschema@.incident_channel TO incident_admin;
-- the outbox: an admin reads the rendered bodies and deletes the dead letters it gives up on
GRANT SELECT, DELETE ON @extschema@.incident_notification TO incident_admin;
GRANT SELECT ON @extschema@.incident_channels, @extschema@.incident_notifications,
                @extschema@.incident_notification_dead
   TO incident_viewer;
GRANT EXECUTE ON FUNCTION
    @extschema@.incident_channel_webhook(text, text, text, text, text, text[], text[], text, interval, boolean),
    @extschema@.incident_channel_email(text, text, text, text[], text, text[], text[], text, text, text, interval, boolean),
    @extschema@.incident_channel_drop(text),
    @extschema@.incident_notification_retry(bigint)
   TO incident_admin;

-- >>> extension/80_diagnostics.sql
/* extension/80_diagnostics.sql: what is wrong with the database itself,
 * for the playbook's "Database Issues" runbook.
 *
 * Locks: incident__lock_waits() (src/locks.c) takes one look at the lock
 * manager and returns the wait-for graph: one row per waiting process, its
 * hard blockers (holders of a conflicting mode) and soft blockers (waiters
 * ahead of it in the queue wanting a conflicting mode), parallel workers
 * folded into their leader, prepared transactions as blockers of their own,
 * and the roots of its chain. incident_blocking_locks and
 * incident_lock_roots add who each process is (pg_stat_activity,
 * pg_prepared_xacts), as the caller may see it: a role without
 * pg_read_all_stats sees other roles' queries as pg_stat_activity shows
 * them to it.
 */

------------------------------------------------------------------------------
-- Locks
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__lock_waits(
    OUT pid int, OUT parallel_leader_pid int, OUT locktype text,
    OUT database oid, OUT relation oid, OUT page int, OUT tuple smallint,
    OUT virtualxid text, OUT transactionid xid, OUT classid oid, OUT objid oid, OUT objsubid smallint,
    OUT object text, OUT mode text, OUT wait_start timestamptz,
    OUT blocking_pids int[], OUT hard_blocking_pids int[],
    OUT blocking_prepared_xids xid[], OUT root_pids int[], OUT root_prepared_xids xid[],
    OUT root_pid int, OUT root_prepared_xid xid, OUT chain_depth int, OUT deadlocked boolean)
RETURNS SETOF record
LANGUAGE C VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'incident_lock_waits';

COMMENT ON FUNCTION @extschema@.incident__lock_waits() IS
'Internal: the lock wait-for graph from one look at the lock manager (all lock partitions at once): one row per process waiting for a heavyweight lock, with the locked object as pg_locks names it and in words, the mode wanted, when the wait began, its blockers (holders of a conflicting mode, and waiters ahead in the queue wanting one; hard_blocking_pids the holders alone), parallel workers named by their leader and prepared transactions by their xid, every root its chain reaches, the nearest root and the steps to it; deadlocked when it reaches no root.';

CREATE VIEW @extschema@.incident_blocking_locks AS
WITH a AS MATERIALIZED (
    SELECT s.pid, s.datname, s.usename, s.application_name, s.client_addr, s.state, s.xact_start, s.query
      FROM pg_catalog.pg_stat_activity s
)
SELECT w.pid,
       w.parallel_leader_pid,
       wa.datname AS database,
       wa.usename AS user_name,
       wa.application_name,
       wa.client_addr,
       w.locktype,
       w.mode,
       w.object,
       w.relation AS relation_oid,
       CASE WHEN w.locktype = 'advisory' AND w.objsubid = 1
            THEN (w.classid::pg_catalog.int8 << 32) | w.objid::pg_catalog.int8 END AS advisory_key,
       w.wait_start,
       pg_catalog.statement_timestamp() - w.wait_start AS wait_duration,
       pg_catalog.statement_timestamp() - wa.xact_start AS xact_age,
       w.blocking_pids,
       w.hard_blocking_pids,
       CASE WHEN pg_catalog.cardinality(w.blocking_prepared_xids) > 0 THEN
           (SELECT pg_catalog.array_agg(p.gid ORDER BY p.gid) FROM pg_catalog.pg_prepared_xacts p
             WHERE p.transaction = ANY (w.blocking_prepared_xids)) END AS blocking_prepared,
       w.root_pid AS root_blocker_pid,
       CASE WHEN w.root_prepared_xid IS NOT NULL THEN
           (SELECT p.gid FROM pg_catalog.pg_prepared_xacts p WHERE p.transaction = w.root_prepared_xid) END
           AS root_blocker_prepared,
       w.root_pids AS root_blocker_pids,
       w.chain_depth,
       w.deadlocked,
       CASE WHEN w.root_pid IS NOT NULL THEN ra.state
            WHEN w.root_prepared_xid IS NOT NULL THEN 'prepared' END AS root_state,
       pg_catalog.statement_timestamp() -
           CASE WHEN w.root_pid IS NOT NULL THEN ra.xact_start
                WHEN w.root_prepared_xid IS NOT NULL THEN
                    (SELECT p.prepared FROM pg_catalog.pg_prepared_xacts p WHERE p.transaction = w.root_prepared_xid)
           END AS root_xact_age,
       ra.query AS root_query,
       ra.application_name AS root_application_name,
       wa.query AS blocked_query
  FROM @extschema@.incident__lock_waits() w
  LEFT JOIN a wa ON wa.pid = w.pid
  LEFT JOIN a ra ON ra.pid = w.root_pid;

COMMENT ON VIEW @extschema@.incident_blocking_locks IS
'One row per process waiting for a lock, from one look at the lock manager: who it is, what it waits for (object, mode), since when (the lock manager''s own wait start, not query_start), its blockers (hard: holding a conflicting mode; soft: queued ahead of it for a conflicting mode; parallel workers named by their leader, prepared transactions by their gid), the root of its chain (the nearest blocker that waits for nothing), the steps to it, and the root''s state, transaction age and query. Queries show as pg_stat_activity shows them to the caller.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.pid IS 'The waiting process; a parallel worker has its own row, with its leader in parallel_leader_pid.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.parallel_leader_pid IS 'The leader of the parallel query whose worker this is; NULL for a session''s own process.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.locktype IS 'As in pg_locks: relation, tuple, transactionid, advisory, object, virtualxid ...';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.mode IS 'The lock mode it waits for, such as ShareLock or AccessExclusiveLock.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.object IS 'What it waits for, in words: a table, a row (page,tuple) of a table, a transaction, an advisory lock''s key.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.advisory_key IS 'The bigint key of an advisory lock taken as pg_advisory_lock(bigint); NULL otherwise.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.wait_start IS 'When the process began to wait for this lock (pg_locks.waitstart); NULL for a wait that began a moment ago.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.wait_duration IS 'How long it has waited, at the start of the statement reading the view.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.xact_age IS 'How long its transaction has been open.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.blocking_pids IS 'Every session blocking it, each once, by the pid of its leader for a parallel query: those holding a conflicting mode (hard_blocking_pids) and those queued ahead of it for one (a soft block: they get the lock first).';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.hard_blocking_pids IS 'The sessions holding a mode that conflicts with the one it wants.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.blocking_prepared IS 'The gids of prepared transactions holding a conflicting lock (COMMIT PREPARED or ROLLBACK PREPARED ends them).';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.root_blocker_pid IS 'The nearest session at the end of its chain: blocking, waiting for nothing. NULL when the root is a prepared transaction or in a deadlock.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.root_blocker_prepared IS 'The gid of the prepared transaction at the end of its chain, when the root is one.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.root_blocker_pids IS 'Every session at the end of a chain from it (more than one when independent sessions block it).';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.chain_depth IS 'Steps from it to root_blocker_pid: 1 when the root blocks it directly.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.deadlocked IS 'True when its chain ends in no root but in a cycle: a deadlock the deadlock detector has not broken yet.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.root_state IS 'The root''s pg_stat_activity.state (idle in transaction is the usual culprit), or prepared.';
COMMENT ON COLUMN @extschema@.incident_blocking_locks.root_xact_age IS 'How long the root''s transaction has been open (for a prepared one, since PREPARE TRANSACTION).';

CREATE VIEW @extschema@.incident_lock_roots AS
WITH w AS MATERIALIZED (
    SELECT x.*, coalesce(x.parallel_leader_pid, x.pid) AS session_pid
      FROM @extschema@.incident__lock_waits() x
), r AS (
    SELECT rp AS r_pid, NULL::pg_catalog.text AS r_xid, w.session_pid, w.wait_start, rp = ANY (w.blocking_pids) AS direct
      FROM w, pg_catalog.unnest(w.root_pids) AS rp
    UNION ALL
    SELECT NULL, rx::pg_catalog.text, w.session_pid, w.wait_start, rx = ANY (w.blocking_prepared_xids)
      FROM w, pg_catalog.unnest(w.root_prepared_xids) AS rx
), g AS (
    SELECT r.r_pid AS root_pid, r.r_xid AS root_xid,
           pg_catalog.count(DISTINCT r.session_pid) FILTER (WHERE r.direct) AS blocked_directly,
           pg_catalog.count(DISTINCT r.session_pid) AS blocked_count,
           pg_catalog.max(pg_catalog.statement_timestamp() - r.wait_start) AS longest_wait
      FROM r GROUP BY r.r_pid, r.r_xid
)
SELECT g.root_pid,
       p.gid AS root_prepared,
       g.blocked_directly,
       g.blocked_count,
       g.longest_wait,
       CASE WHEN g.root_pid IS NOT NULL THEN a.state ELSE 'prepared' END AS state,
       pg_catalog.statement_timestamp() - coalesce(a.xact_start, p.prepared) AS xact_age,
       CASE WHEN a.state IS DISTINCT FROM 'active' THEN pg_catalog.statement_timestamp() - a.state_change END AS idle_for,
       a.query,
       coalesce(a.usename, p.owner) AS user_name,
       coalesce(a.datname, p.database) AS database,
       a.application_name,
       a.client_addr,
       a.backend_type
  FROM g
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = g.root_pid
  LEFT JOIN pg_catalog.pg_prepared_xacts p ON p.transaction::pg_catalog.text = g.root_xid;

COMMENT ON VIEW @extschema@.incident_lock_roots IS
'One row per root blocker (a session or prepared transaction that blocks others and waits for nothing), from the same one look at the lock manager: how many sessions it blocks directly and in all (through chains), the longest wait among them, and who it is: state, transaction age, how long idle, query, user, database, application, client. The session to end first, with pg_terminate_backend(root_pid) or COMMIT/ROLLBACK PREPARED.';
COMMENT ON COLUMN @extschema@.incident_lock_roots.root_pid IS 'The blocking session''s pid (a parallel query''s leader); NULL for a prepared transaction.';
COMMENT ON COLUMN @extschema@.incident_lock_roots.root_prepared IS 'The gid of the blocking prepared transaction; NULL for a session.';
COMMENT ON COLUMN @extschema@.incident_lock_roots.blocked_directly IS 'Sessions waiting for a lock it holds, or queued right behind its own request.';
COMMENT ON COLUMN @extschema@.incident_lock_roots.blocked_count IS 'Sessions whose chain of waits ends at it, directly or through other waiters.';
COMMENT ON COLUMN @extschema@.incident_lock_roots.longest_wait IS 'The longest wait among the sessions it blocks.';
COMMENT ON COLUMN @extschema@.incident_lock_roots.idle_for IS 'For a root that is not running a query: since when it has been in its state (idle in transaction, for one).';

------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------

GRANT EXECUTE ON FUNCTION @extschema@.incident__lock_waits() TO incident_viewer;
GRANT SELECT ON @extschema@.incident_blocking_locks, @extschema@.incident_lock_roots TO incident_viewer;
-- <<< extension/80_diagnostics.sql

-- >>> extension/81_bloat.sql
/* extension/81_bloat.sql: how much of each table and btree index is space
 * that VACUUM FULL or REINDEX would give back, for the playbook's "Database
 * Issues" runbook (a disk filling up, scans slowing down after mass deletes
 * or updates).
 *
 * incident_table_bloat and incident_index_bloat estimate it from the
 * catalogs alone, without reading a page: the rows and pages of the last
 * VACUUM or ANALYZE (pg_class.reltuples, relpages), each row's length
 * as PostgreSQL lays it out (the aggregate incident__row_width() in
 * src/bloat.c: columns in attnum order, each aligned to its typalign, with
 * its average width and null fraction from pg_statistic; the tuple header and
 * null bitmap; item pointers), the pages those rows fill at the relation's
 * fillfactor, and for a deduplicated btree index its posting lists. An
 * estimate the catalogs cannot support (no statistics, a column with
 * statistics target 0, a relation of a few pages, statistics older than many
 * changes, ...) is flagged with reliable = false and a reason rather than
 * shown as a number to believe. The statistics are read through the
 * SECURITY DEFINER helper incident__bloat_stats(), which returns only null
 * fractions, average widths and distinct counts (never a value), so that
 * incident_viewer sees every relation's estimate.
 *
 * incident_bloat_verify(rel) measures one relation with pgstattuple
 * (pgstattuple_approx for a table and its TOAST table, pgstatindex for a
 * btree index) and returns the measured and the estimated figures side by
 * side.
 *
 * The catalogs read (pg_class, pg_attribute, pg_index, pg_statistic,
 * pg_opclass, pg_amproc, pg_collation) have the same columns in PostgreSQL
 * 15, 16 and 17 except pg_attribute.attstattarget, an int4 with -1 for "the
 * default" before 17 and a nullable int2 from 17 on: coalesce(attstattarget,
 * -1) = 0 reads "target 0" in all three, so no branch on server_version_num
 * is needed.
 */

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__bloat_stats(
    OUT relid oid, OUT attnum smallint, OUT null_frac real, OUT avg_width integer, OUT n_distinct real)
RETURNS SETOF record
LANGUAGE sql STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT s.starelid, s.staattnum, s.stanullfrac, s.stawidth, s.stadistinct
  FROM pg_catalog.pg_statistic s
 WHERE NOT s.stainherit
$$;

COMMENT ON FUNCTION @extschema@.incident__bloat_stats() IS
'Internal: for every column ANALYZE has described (pg_statistic, not the rows of inheritance trees), its null fraction, average stored width in bytes and distinct count (negative: a fraction of the rows). SECURITY DEFINER so that the bloat views give incident_viewer the estimate of every table; it returns no value of any column.';

CREATE FUNCTION @extschema@.incident__row_width_step(internal, smallint, "char", float8, float8)
RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'incident_row_width_step';

COMMENT ON FUNCTION @extschema@.incident__row_width_step(internal, smallint, "char", float8, float8) IS
'Internal: the step of incident__row_width(): lays out one more column (attlen, attalign, average width, null fraction) after the previous ones.';

CREATE FUNCTION @extschema@.incident__row_width_final(internal)
RETURNS float8
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'incident_row_width_final';

COMMENT ON FUNCTION @extschema@.incident__row_width_final(internal) IS
'Internal: the result of incident__row_width(): the expected data length, padded to MAXALIGN; NULL when a column''s width is unknown.';

CREATE AGGREGATE @extschema@.incident__row_width(smallint, "char", float8, float8) (
    SFUNC = @extschema@.incident__row_width_step,
    STYPE = internal,
    FINALFUNC = @extschema@.incident__row_width_final
);

COMMENT ON AGGREGATE @extschema@.incident__row_width(smallint, "char", float8, float8) IS
'Internal: incident__row_width(attlen, attalign, avg_width, null_frac ORDER BY attnum): the expected length in bytes of the data part of a heap or index tuple with these columns, each aligned to its typalign after the previous ones (a NULL takes no space, a varlena of at most 127 bytes has an unaligned one-byte header), padded to MAXALIGN. NULL when a variable-width column has no width, or a column no null fraction.';

CREATE FUNCTION @extschema@.incident__btree_pages(rows float8, keys float8, key_bytes float8, fillfactor int, deduplicated boolean)
RETURNS float8
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'incident_btree_pages';

COMMENT ON FUNCTION @extschema@.incident__btree_pages(float8, float8, float8, int, boolean) IS
'Internal: the pages CREATE INDEX or REINDEX gives a btree of this many entries with key tuples of key_bytes (MAXALIGNed, header included): leaf pages filled to the fillfactor less one slot for the high key, internal pages to 70 % up to a root, the metapage; when deduplicated, the keys'' entries in posting lists of at most a tenth of a page, each key with the whole numbers of entries around rows / keys.';

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

CREATE VIEW @extschema@.incident_table_bloat AS
WITH st AS MATERIALIZED (
    SELECT s.relid, s.attnum, s.null_frac, s.avg_width FROM @extschema@.incident__bloat_stats() s
), t AS MATERIALIZED (
    SELECT c.oid, c.relnamespace, c.relname, c.relpages, c.reltuples, c.relnatts, c.reltoastrelid,
           coalesce((SELECT pg_catalog.substr(o, 12)::pg_catalog.int4 FROM pg_catalog.unnest(c.reloptions) o
                      WHERE o LIKE 'fillfactor=%'), 100) AS fillfactor,
           c.relpages::pg_catalog.int8 * pg_catalog.current_setting('block_size')::pg_catalog.int4 AS size,
           tt.relpages::pg_catalog.int8 * pg_catalog.current_setting('block_size')::pg_catalog.int4 AS toast_size
      FROM pg_catalog.pg_class c
      LEFT JOIN pg_catalog.pg_class tt ON tt.oid = c.reltoastrelid
     WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
), col AS (
    SELECT a.attrelid, a.attnum, a.attname, a.attlen, a.attalign, a.attisdropped, s.avg_width + CASE WHEN a.attlen < 0 THEN 0.5 ELSE 0 END AS width,
           CASE WHEN a.attisdropped THEN 1
                ELSE coalesce(s.null_frac, CASE WHEN a.attnotnull THEN 0 END) END::pg_catalog.float8 AS null_frac,
           s.relid IS NULL AND NOT a.attisdropped AND (a.attlen <= 0 OR NOT a.attnotnull) AS unknown
      FROM t
      JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0
      LEFT JOIN st s ON s.relid = a.attrelid AND s.attnum = a.attnum
                    AND coalesce(a.attstattarget, -1) <> 0 AND NOT a.attisdropped
), w AS (
    SELECT col.attrelid,
           @extschema@.incident__row_width(col.attlen, col.attalign, col.width, col.null_frac ORDER BY col.attnum) AS data_width,
           -- (the exponent bounded: forty all-NULL columns would underflow exp())
           1 - pg_catalog.exp(greatest(pg_catalog.sum(pg_catalog.ln(greatest(1 - coalesce(col.null_frac, 0), 1e-9))), -700)) AS p_null,
           pg_catalog.string_agg(pg_catalog.quote_ident(col.attname), ', ' ORDER BY col.attnum) FILTER (WHERE col.unknown) AS unknown_columns
      FROM col
     GROUP BY col.attrelid
), e AS (
    SELECT t.*, w.unknown_columns, b.bs,
           greatest(t.reltuples, 0) AS rows_now,
           -- tuple header (23 bytes, null bitmap in rows with a NULL, MAXALIGN), data, item pointer
           24 + w.p_null * (((23 + (t.relnatts + 7) / 8) + 7) / 8 * 8 - 24) + w.data_width + 4 AS row_bytes,
           b.bs - 24 - b.bs * (100 - t.fillfactor) / 100 AS page_room,
           (b.bs - 24) / 28 AS max_rows_per_page,
           pg_catalog.pg_stat_get_mod_since_analyze(t.oid) AS mod_since_analyze,
           pg_catalog.pg_stat_get_dead_tuples(t.oid) + pg_catalog.pg_stat_get_ins_since_vacuum(t.oid) AS since_vacuum
      FROM t
      JOIN w ON w.attrelid = t.oid
      CROSS JOIN (SELECT pg_catalog.current_setting('block_size')::pg_catalog.int4 AS bs) b
), x AS MATERIALIZED (
    SELECT e.*,
           CASE WHEN e.row_bytes IS NOT NULL
                THEN (pg_catalog.ceil(e.rows_now / least(e.max_rows_per_page,
                                                         greatest(pg_catalog.floor(e.page_room / e.row_bytes), 1)))
                      * e.bs)::pg_catalog.int8 END AS expected_size
      FROM e
)
SELECT n.nspname AS schema_name,
       x.relname AS table_name,
       x.size AS real_size,
       x.expected_size,
       x.size - x.expected_size AS bloat_bytes,
       CASE WHEN x.size > 0 THEN pg_catalog.round(100.0 * (x.size - x.expected_size) / x.size, 1) END AS bloat_pct,
       x.fillfactor,
       pg_catalog.round(x.rows_now) AS rows,
       pg_catalog.round(x.row_bytes::pg_catalog.numeric, 1) AS row_bytes,
       x.toast_size,
       r.reason IS NULL AS reliable,
       r.reason
  FROM x
  JOIN pg_catalog.pg_namespace n ON n.oid = x.relnamespace
  CROSS JOIN LATERAL (
      SELECT nullif(pg_catalog.concat_ws('; ',
          CASE WHEN x.reltuples < 0 THEN 'never vacuumed or analyzed' END,
          CASE WHEN x.reltuples >= 0 AND x.unknown_columns IS NOT NULL
               THEN 'no statistics for ' || x.unknown_columns || ' (not analyzed, or statistics target 0)' END,
          CASE WHEN x.size < 16 * x.bs THEN 'under 16 pages: a page is more than 6 % of it' END,
          CASE WHEN x.reltuples >= 0 AND x.mod_since_analyze > 0.2 * x.reltuples + 50
                AND x.since_vacuum > 0.2 * x.reltuples + 50
               THEN 'statistics are stale: ' || x.mod_since_analyze || ' rows changed since the last ANALYZE and '
                    || x.since_vacuum || ' since the last VACUUM' END,
          -- updates may fill the room fillfactor keeps free, not more
          CASE WHEN x.size >= 16 * x.bs AND x.expected_size > (1.05 + (100 - x.fillfactor) / 100.0) * x.size
               THEN 'the estimate exceeds the real size by more than fillfactor explains: the statistics do not describe the rows' END), '') AS reason
  ) r;

COMMENT ON VIEW @extschema@.incident_table_bloat IS
'One row per table and materialized view (not TOAST tables, nor other sessions'' temporary tables): its size, the size its rows would take after VACUUM FULL (estimated from pg_class and pg_statistic, alignment padding, tuple headers, item pointers and fillfactor taken into account), the difference, and whether the estimate can be trusted. Reads no page: cheap enough for every table of a database. incident_bloat_verify(table) measures one.';
COMMENT ON COLUMN @extschema@.incident_table_bloat.schema_name IS 'The schema of the table.';
COMMENT ON COLUMN @extschema@.incident_table_bloat.table_name IS 'The table or materialized view.';
COMMENT ON COLUMN @extschema@.incident_table_bloat.real_size IS 'Bytes of its main fork at the last VACUUM or ANALYZE (pg_class.relpages, the moment reltuples describes too; pg_relation_size() of every relation would cost more than the whole estimate): the in-line part of its rows; TOAST, indexes, free space and visibility maps are not in it.';
COMMENT ON COLUMN @extschema@.incident_table_bloat.expected_size IS 'Estimated bytes of the main fork after VACUUM FULL: whole pages of rows at the table''s fillfactor.';
COMMENT ON COLUMN @extschema@.incident_table_bloat.bloat_bytes IS 'real_size - expected_size: about what VACUUM FULL (or pg_repack) would give back to the file system. Negative when the estimate exceeds the size.';
COMMENT ON COLUMN @extschema@.incident_table_bloat.bloat_pct IS 'bloat_bytes as a percentage of real_size.';
COMMENT ON COLUMN @extschema@.incident_table_bloat.fillfactor IS 'The table''s fillfactor (100 unless set): the share of each page that inserts and VACUUM FULL fill, the rest kept for updates.';
COMMENT ON COLUMN @extschema@.incident_table_bloat.rows IS 'Estimated live rows: pg_class.reltuples, from the last VACUUM or ANALYZE.';
COMMENT ON COLUMN @extschema@.incident_table_bloat.row_bytes IS 'Estimated bytes a row takes in a page: tuple header and null bitmap, its columns'' in-line data with alignment padding (a TOASTed value counts as its 18-byte pointer), padding to MAXALIGN, and the 4-byte item pointer.';
COMMENT ON COLUMN @extschema@.incident_table_bloat.toast_size IS 'Bytes of its TOAST table (pg_class.relpages of the TOAST table), not part of size and not estimated: TOAST tables have no statistics. incident_bloat_verify() measures it. NULL for a table without one.';
COMMENT ON COLUMN @extschema@.incident_table_bloat.reliable IS 'False when the catalogs cannot support the estimate; reason says why. Only then is the number not to be believed.';
COMMENT ON COLUMN @extschema@.incident_table_bloat.reason IS 'Why the estimate is not to be trusted, each reason once, separated by "; ": never vacuumed or analyzed; no statistics for a column; under 16 pages; statistics stale; the estimate exceeds the real size. NULL when reliable.';

------------------------------------------------------------------------------
-- Btree indexes
------------------------------------------------------------------------------

CREATE VIEW @extschema@.incident_index_bloat AS
WITH st AS MATERIALIZED (
    SELECT s.relid, s.attnum, s.null_frac, s.avg_width, s.n_distinct FROM @extschema@.incident__bloat_stats() s
), equalimage AS MATERIALIZED (
    -- operator classes whose equal values are equal images: btree may deduplicate them
    SELECT oc.oid
      FROM pg_catalog.pg_opclass oc
      JOIN pg_catalog.pg_am am ON am.oid = oc.opcmethod AND am.amname = 'btree'
     WHERE EXISTS (SELECT FROM pg_catalog.pg_amproc ap
                    WHERE ap.amprocfamily = oc.opcfamily AND ap.amproclefttype = oc.opcintype
                      AND ap.amprocrighttype = oc.opcintype AND ap.amprocnum = 4)
), ix AS MATERIALIZED (
    SELECT i.indexrelid, i.indrelid, i.indkey, i.indclass, i.indcollation, i.indisunique, i.indisvalid,
           i.indnatts, i.indnkeyatts,
           c.relnamespace, c.relname, c.relpages, c.reltuples, tc.relname AS table_name, tc.reltuples AS table_rows,
           coalesce((SELECT pg_catalog.substr(o, 12)::pg_catalog.int4 FROM pg_catalog.unnest(c.reloptions) o
                      WHERE o LIKE 'fillfactor=%'), 90) AS fillfactor,
           coalesce((SELECT pg_catalog.substr(o, 19)::pg_catalog.bool FROM pg_catalog.unnest(c.reloptions) o
                      WHERE o LIKE 'deduplicate_items=%'), true) AS deduplicate_items,
           c.relpages::pg_catalog.int8 * pg_catalog.current_setting('block_size')::pg_catalog.int4 AS size
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
      JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
     WHERE c.relkind = 'i' AND c.relpersistence <> 't' AND tc.relkind <> 't'
       AND c.relam = (SELECT am.oid FROM pg_catalog.pg_am am WHERE am.amname = 'btree')
), col AS (
    SELECT ix.indexrelid, ia.attnum, ia.attname, ia.attlen, ia.attalign,
           ia.attnum <= ix.indnkeyatts AS is_key,
           k.tab_attnum,
           s.avg_width + CASE WHEN ia.attlen < 0 THEN 0.5 ELSE 0 END AS width,
           coalesce(s.null_frac, CASE WHEN ta.attnotnull THEN 0 END)::pg_catalog.float8 AS null_frac,
           s.relid IS NULL AND (ia.attlen <= 0 OR NOT coalesce(ta.attnotnull, false)) AS unknown,
           CASE WHEN s.n_distinct >= 0 THEN s.n_distinct::pg_catalog.float8
                ELSE -s.n_distinct * greatest(ix.table_rows, 0) END
               + CASE WHEN s.null_frac > 0 THEN 1 ELSE 0 END AS n_distinct,
           ia.attnum > ix.indnkeyatts OR (eq.oid IS NOT NULL AND coalesce(coll.collisdeterministic, true)) AS equal_image
      FROM ix
      JOIN pg_catalog.pg_attribute ia ON ia.attrelid = ix.indexrelid AND ia.attnum > 0
      CROSS JOIN LATERAL (SELECT ix.indkey[ia.attnum - 1] AS tab_attnum) k
      -- the indexed column, looked up by its key (cheaper than joining all of pg_attribute)
      LEFT JOIN LATERAL (
          SELECT a.attnotnull, a.attstattarget FROM pg_catalog.pg_attribute a
           WHERE a.attrelid = ix.indrelid AND a.attnum = k.tab_attnum AND k.tab_attnum > 0
          OFFSET 0
      ) ta ON true
      -- a column's statistics are the table's; an expression's, the index's own
      CROSS JOIN LATERAL (
          SELECT CASE WHEN k.tab_attnum = 0 THEN ix.indexrelid
                      WHEN coalesce(ta.attstattarget, -1) <> 0 THEN ix.indrelid END AS relid,
                 CASE WHEN k.tab_attnum = 0 THEN ia.attnum ELSE k.tab_attnum END AS attnum
      ) sk
      LEFT JOIN st s ON s.relid = sk.relid AND s.attnum = sk.attnum
      LEFT JOIN equalimage eq ON eq.oid = ix.indclass[ia.attnum - 1]
      LEFT JOIN pg_catalog.pg_collation coll ON coll.oid = ix.indcollation[ia.attnum - 1]
), w AS (
    SELECT col.indexrelid,
           @extschema@.incident__row_width(col.attlen, col.attalign, col.width, col.null_frac ORDER BY col.attnum) AS data_width,
           1 - pg_catalog.exp(greatest(pg_catalog.sum(pg_catalog.ln(greatest(1 - coalesce(col.null_frac, 0), 1e-9))), -700)) AS p_null,
           pg_catalog.string_agg(pg_catalog.quote_ident(col.attname), ', ' ORDER BY col.attnum) FILTER (WHERE col.unknown) AS unknown_columns,
           pg_catalog.bool_and(col.equal_image) AS equal_image,
           pg_catalog.max(col.n_distinct) FILTER (WHERE col.is_key) AS max_distinct,
           pg_catalog.exp(least(pg_catalog.sum(pg_catalog.ln(greatest(col.n_distinct, 1))) FILTER (WHERE col.is_key), 700)) AS product_distinct
      FROM col
     GROUP BY col.indexrelid
), e AS (
    SELECT ix.*, w.unknown_columns, w.max_distinct, b.bs,
           greatest(ix.reltuples, 0) AS rows_now,
           -- the key tuple: 8-byte header (16 with a null bitmap), data, MAXALIGN
           8 + 8 * w.p_null + w.data_width AS key_bytes,
           -- CREATE INDEX and REINDEX deduplicate equal keys into posting lists (PostgreSQL 13 on)
           NOT ix.indisunique AND ix.indnatts = ix.indnkeyatts AND ix.indexrelid >= 16384
               AND ix.deduplicate_items AND coalesce(w.equal_image, false) AS deduplicated,
           least(w.product_distinct, greatest(ix.reltuples, 1)) AS keys,
           pg_catalog.pg_stat_get_mod_since_analyze(ix.indrelid) AS mod_since_analyze,
           pg_catalog.pg_stat_get_dead_tuples(ix.indrelid) + pg_catalog.pg_stat_get_ins_since_vacuum(ix.indrelid) AS since_vacuum
      FROM ix
      JOIN w ON w.indexrelid = ix.indexrelid
      CROSS JOIN (SELECT pg_catalog.current_setting('block_size')::pg_catalog.int4 AS bs) b
), x AS MATERIALIZED (
    SELECT e.*,
           (@extschema@.incident__btree_pages(e.rows_now, e.keys, e.key_bytes, e.fillfactor, e.deduplicated)
            * e.bs)::pg_catalog.int8 AS expected_size
      FROM e
)
SELECT n.nspname AS schema_name,
       x.table_name,
       x.relname AS index_name,
       x.size AS real_size,
       x.expected_size,
       x.size - x.expected_size AS bloat_bytes,
       CASE WHEN x.size > 0 THEN pg_catalog.round(100.0 * (x.size - x.expected_size) / x.size, 1) END AS bloat_pct,
       x.fillfactor,
       pg_catalog.round(x.rows_now) AS rows,
       x.deduplicated,
       CASE WHEN x.deduplicated THEN pg_catalog.round(x.keys) END AS distinct_keys,
       r.reason IS NULL AS reliable,
       r.reason
  FROM x
  JOIN pg_catalog.pg_namespace n ON n.oid = x.relnamespace
  CROSS JOIN LATERAL (
      SELECT nullif(pg_catalog.concat_ws('; ',
          CASE WHEN NOT x.indisvalid THEN 'invalid index (a CREATE INDEX CONCURRENTLY that failed)' END,
          CASE WHEN x.reltuples < 0 THEN 'never vacuumed or analyzed' END,
          CASE WHEN x.reltuples >= 0 AND x.unknown_columns IS NOT NULL
               THEN 'no statistics for ' || x.unknown_columns || ' (not analyzed, or statistics target 0)' END,
          CASE WHEN x.size < 16 * x.bs THEN 'under 16 pages: a page is more than 6 % of it' END,
          CASE WHEN x.reltuples >= 0 AND x.mod_since_analyze > 0.2 * x.reltuples + 50
                AND x.since_vacuum > 0.2 * x.reltuples + 50
               THEN 'statistics are stale: ' || x.mod_since_analyze || ' rows of the table changed since the last ANALYZE and '
                    || x.since_vacuum || ' since the last VACUUM' END,
          CASE WHEN x.deduplicated AND x.indnkeyatts > 1 AND x.unknown_columns IS NULL
                AND x.max_distinct < 0.5 * x.rows_now
               THEN 'deduplicated index on several columns none of which is nearly unique: the number of distinct keys is a guess' END,
          -- inserts (and their deduplication) may fill the room fillfactor keeps free, not more
          CASE WHEN x.size >= 16 * x.bs AND x.expected_size > (1.05 + (100 - x.fillfactor) / 100.0) * x.size
               THEN 'the estimate exceeds the real size by more than fillfactor explains: the statistics do not describe the keys' END), '') AS reason
  ) r;

COMMENT ON VIEW @extschema@.incident_index_bloat IS
'One row per btree index (not those of TOAST tables, nor other sessions'' temporary indexes): its size, the size it would have after REINDEX (estimated from pg_class and pg_statistic: key tuples with alignment padding, item pointers, leaf pages at the fillfactor, internal pages, the metapage, and posting lists where btree deduplicates equal keys), the difference, and whether the estimate can be trusted. Reads no page. incident_bloat_verify(index) measures one.';
COMMENT ON COLUMN @extschema@.incident_index_bloat.schema_name IS 'The schema of the index.';
COMMENT ON COLUMN @extschema@.incident_index_bloat.table_name IS 'The table it indexes.';
COMMENT ON COLUMN @extschema@.incident_index_bloat.index_name IS 'The index.';
COMMENT ON COLUMN @extschema@.incident_index_bloat.real_size IS 'Bytes of the index at the last VACUUM, ANALYZE or CREATE INDEX (pg_class.relpages, the moment reltuples describes too).';
COMMENT ON COLUMN @extschema@.incident_index_bloat.expected_size IS 'Estimated bytes after REINDEX: the metapage, leaf pages filled to the fillfactor, and internal pages (filled to 70 %).';
COMMENT ON COLUMN @extschema@.incident_index_bloat.bloat_bytes IS 'real_size - expected_size: about what REINDEX (CONCURRENTLY) would give back. Negative when the estimate exceeds the size.';
COMMENT ON COLUMN @extschema@.incident_index_bloat.bloat_pct IS 'bloat_bytes as a percentage of real_size.';
COMMENT ON COLUMN @extschema@.incident_index_bloat.fillfactor IS 'The index''s fillfactor (90 unless set): how full REINDEX fills its leaf pages.';
COMMENT ON COLUMN @extschema@.incident_index_bloat.rows IS 'Estimated entries (heap row pointers): pg_class.reltuples of the index, from the last VACUUM, ANALYZE or CREATE INDEX.';
COMMENT ON COLUMN @extschema@.incident_index_bloat.deduplicated IS 'True when REINDEX would merge equal keys into posting lists (not unique, no INCLUDE columns, deduplicate_items on, and every key''s operator class has equal images, as for integers and text with a deterministic collation); the estimate then counts posting lists.';
COMMENT ON COLUMN @extschema@.incident_index_bloat.distinct_keys IS 'For a deduplicated index: the distinct keys the estimate assumes (from pg_statistic.stadistinct; for several columns, the product of theirs, at most rows), each with rows / distinct_keys entries.';
COMMENT ON COLUMN @extschema@.incident_index_bloat.reliable IS 'False when the catalogs cannot support the estimate; reason says why.';
COMMENT ON COLUMN @extschema@.incident_index_bloat.reason IS 'Why the estimate is not to be trusted, each reason once, separated by "; ": invalid index; never vacuumed or analyzed; no statistics for a key; under 16 pages; statistics stale; a deduplicated index on several columns with an unknown number of distinct keys; the estimate exceeds the real size. NULL when reliable.';

------------------------------------------------------------------------------
-- Measuring one relation
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident_bloat_verify(rel regclass,
    OUT relation regclass, OUT kind text, OUT real_size bigint,
    OUT measured_bloat_bytes bigint, OUT measured_bloat_pct numeric,
    OUT estimated_bloat_bytes bigint, OUT estimated_bloat_pct numeric,
    OUT reliable boolean, OUT reason text, OUT measured_with text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '3s'
AS $$
DECLARE
    c record;
    ext_schema name;
    bs int := pg_catalog.current_setting('block_size')::int;
    m record;
    target regclass;
    ff int;
BEGIN
    IF rel IS NULL THEN
        RAISE EXCEPTION 'relation must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass a table or a btree index, such as incident_bloat_verify(''public.orders'').';
    END IF;
    SELECT k.oid, k.relkind, k.reltoastrelid, k.reloptions, am.amname INTO c
      FROM pg_catalog.pg_class k LEFT JOIN pg_catalog.pg_am am ON am.oid = k.relam
     WHERE k.oid = rel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', rel::oid
            USING ERRCODE = 'undefined_table',
                  HINT = 'Pass a table or a btree index by name, such as incident_bloat_verify(''public.orders'').';
    END IF;
    IF NOT (c.relkind IN ('r', 'm', 't') OR (c.relkind = 'i' AND c.amname = 'btree')) THEN
        RAISE EXCEPTION 'cannot verify "%": it is not a table, a materialized view or a btree index', rel
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = pg_catalog.format('"%s" is %s.', rel,
                               CASE c.relkind WHEN 'v' THEN 'a view' WHEN 'p' THEN 'a partitioned table, which has no storage of its own'
                                              WHEN 'I' THEN 'a partitioned index, which has no storage of its own'
                                              WHEN 'S' THEN 'a sequence' WHEN 'f' THEN 'a foreign table' WHEN 'c' THEN 'a composite type'
                                              WHEN 'i' THEN 'an index of access method ' || c.amname ELSE 'of relkind ' || c.relkind::text END),
                  HINT = 'Pass a table, a materialized view or a btree index; for a partitioned table, each of its partitions.';
    END IF;
    ff := (SELECT pg_catalog.substr(o, 12)::int FROM pg_catalog.unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%');
    SELECT e.extnamespace::regnamespace::name INTO ext_schema FROM pg_catalog.pg_extension e WHERE e.extname = 'pgstattuple';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the extension pgstattuple is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'incident_bloat_verify() measures with pgstattuple_approx() and pgstatindex().',
                  HINT = 'Install it with CREATE EXTENSION pgstattuple (it is part of PostgreSQL''s contrib).';
    END IF;

    BEGIN
        IF c.relkind = 'i' THEN
            EXECUTE pg_catalog.format('SELECT * FROM %I.pgstatindex($1)', ext_schema) INTO m USING rel;
            relation := rel;
            kind := 'index';
            real_size := m.index_size;
            -- after REINDEX: the metapage, and the pages in use at the fillfactor's density
            measured_bloat_bytes := m.index_size - bs * (1 + pg_catalog.ceil(
                (m.leaf_pages + m.internal_pages) * m.avg_leaf_density
                / coalesce(ff, 90)));
            measured_with := 'pgstatindex';
            SELECT b.bloat_bytes, b.bloat_pct, b.reliable, b.reason
              INTO estimated_bloat_bytes, estimated_bloat_pct, reliable, reason
              FROM @extschema@.incident_index_bloat b
             WHERE b.schema_name = (SELECT k.relnamespace::regnamespace::name FROM pg_catalog.pg_class k WHERE k.oid = rel)
               AND b.index_name = (SELECT k.relname FROM pg_catalog.pg_class k WHERE k.oid = rel);
            measured_bloat_pct := CASE WHEN real_size > 0 THEN pg_catalog.round(100.0 * measured_bloat_bytes / real_size, 1) END;
            RETURN NEXT;
            RETURN;
        END IF;

        FOREACH target IN ARRAY ARRAY[rel, CASE WHEN c.reltoastrelid <> 0 THEN c.reltoastrelid::regclass END] LOOP
            CONTINUE WHEN target IS NULL;
            EXECUTE pg_catalog.format('SELECT * FROM %I.pgstattuple_approx($1)', ext_schema) INTO m USING target;
            relation := target;
            kind := CASE WHEN target = rel AND c.relkind <> 't' THEN 'table' ELSE 'toast' END;
            real_size := m.table_len;
            -- free and dead space beyond what the fillfactor keeps free in each page
            measured_bloat_bytes := greatest(0, m.approx_free_space + m.dead_tuple_len
                - (m.table_len / bs) * (bs * (100 - CASE WHEN target = rel THEN coalesce(ff, 100) ELSE 100 END) / 100));
            measured_bloat_pct := CASE WHEN real_size > 0 THEN pg_catalog.round(100.0 * measured_bloat_bytes / real_size, 1) END;
            measured_with := pg_catalog.format('pgstattuple_approx (%s %% of pages scanned)', pg_catalog.round(m.scanned_percent::numeric));
            estimated_bloat_bytes := NULL; estimated_bloat_pct := NULL; reliable := NULL; reason := NULL;
            IF kind = 'table' THEN
                SELECT b.bloat_bytes, b.bloat_pct, b.reliable, b.reason
                  INTO estimated_bloat_bytes, estimated_bloat_pct, reliable, reason
                  FROM @extschema@.incident_table_bloat b
                 WHERE b.schema_name = (SELECT k.relnamespace::regnamespace::name FROM pg_catalog.pg_class k WHERE k.oid = rel)
                   AND b.table_name = (SELECT k.relname FROM pg_catalog.pg_class k WHERE k.oid = rel);
            ELSE
                reliable := false;
                reason := 'TOAST tables have no statistics: not estimated';
            END IF;
            RETURN NEXT;
        END LOOP;
    EXCEPTION WHEN lock_not_available THEN
        RAISE EXCEPTION 'could not lock "%" to measure it within %', rel, pg_catalog.current_setting('lock_timeout')
            USING ERRCODE = 'lock_not_available',
                  DETAIL = 'Another session holds or waits for a lock that conflicts with reading it, such as one of ALTER TABLE, VACUUM FULL, CLUSTER or REINDEX.',
                  HINT = 'Try again when it is done; incident_blocking_locks shows who holds the lock.';
    END;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_bloat_verify(regclass) IS
'Measures one table (and its TOAST table) with pgstattuple_approx(), or one btree index with pgstatindex(), and returns the measured bloat beside the estimate of incident_table_bloat or incident_index_bloat: for a table, the free and dead space beyond what its fillfactor keeps free; for an index, what REINDEX would give back at its density and fillfactor. Needs the extension pgstattuple in the database (any schema). It reads every page of an index and the pages of a table that are not all-visible: granted to incident_admin only, not to viewers, because of that I/O; SECURITY DEFINER, so that incident_admin needs no pg_stat_scan_tables; it waits at most 3 s (lock_timeout) for its lock, so that it never queues behind ALTER TABLE or VACUUM FULL and holds up the sessions behind it.';

------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------

GRANT EXECUTE ON FUNCTION @extschema@.incident__bloat_stats() TO incident_viewer;
GRANT EXECUTE ON FUNCTION @extschema@.incident__row_width(smallint, "char", float8, float8) TO incident_viewer;
GRANT EXECUTE ON FUNCTION @extschema@.incident__btree_pages(float8, float8, float8, int, boolean) TO incident_viewer;
GRANT SELECT ON @extschema@.incident_table_bloat, @extschema@.incident_index_bloat TO incident_viewer;
GRANT EXECUTE ON FUNCTION @extschema@.incident_bloat_verify(regclass) TO incident_admin;
-- <<< extension/81_bloat.sql

-- >>> extension/82_health.sql
/* extension/82_health.sql: how the database is doing, for the playbook's
 * "Database Issues" runbook: sizes, connections, long transactions,
 * wraparound and what holds the xmin horizon, replication, vacuum and
 * analyze recency, sequences near their end, and incident_health, one row
 * per check against editable thresholds.
 *
 * The views read the statistics views as the caller may see them (a role
 * without pg_read_all_stats sees only its own sessions' state and times, as
 * pg_stat_activity shows them). incident_connections counts and
 * incident_health judges every session whoever asks: they run as the
 * extension's owner and show counts, ages, pids, roles and applications,
 * never a query's text.
 *
 * Nothing here waits for a lock: sizes come from the files
 * (incident__relation_bytes) and sequences are read only when their lock
 * is free (incident__sequence_last_value), so the views answer while an
 * ALTER TABLE queues behind a long transaction.
 */

------------------------------------------------------------------------------
-- C helpers (src/health.c)
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__relation_bytes(rel oid)
RETURNS bigint
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'incident_relation_bytes';

COMMENT ON FUNCTION @extschema@.incident__relation_bytes(oid) IS
'Internal: the bytes of every fork of the relation on disk (as pg_relation_size summed over its forks), read from its files without taking its lock; NULL for a relation without storage or one that is gone.';

CREATE FUNCTION @extschema@.incident__sequence_last_value(seq oid)
RETURNS bigint
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'incident_sequence_last_value';

COMMENT ON FUNCTION @extschema@.incident__sequence_last_value(oid) IS
'Internal: the sequence''s last value as pg_sequence_last_value gives it (the caller needs SELECT or USAGE on it), or NULL when it was never called, its lock is not free at once, it is another session''s temporary sequence, or it is gone.';

------------------------------------------------------------------------------
-- Sizes
------------------------------------------------------------------------------

CREATE VIEW @extschema@.incident_table_sizes AS
WITH RECURSIVE rel AS MATERIALIZED (
    SELECT c.oid, c.relnamespace, c.relname, c.relkind, c.relispartition, c.reltuples,
           coalesce(@extschema@.incident__relation_bytes(c.oid), 0) AS table_bytes,
           coalesce(@extschema@.incident__relation_bytes(c.reltoastrelid), 0)
           + coalesce((SELECT pg_catalog.sum(@extschema@.incident__relation_bytes(ti.indexrelid))
                         FROM pg_catalog.pg_index ti
                        WHERE c.reltoastrelid <> 0 AND ti.indrelid = c.reltoastrelid), 0) AS toast_bytes,
           coalesce((SELECT pg_catalog.sum(@extschema@.incident__relation_bytes(i.indexrelid))
                       FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid), 0) AS index_bytes
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'm', 'p')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname !~ '^pg_toast'
),
-- each relation with itself and, for a partitioned table, every partition below it
tree (top, member, member_kind) AS (
    SELECT r.oid, r.oid, r.relkind FROM rel r
    UNION ALL
    SELECT t.top, i.inhrelid, p.relkind
      FROM tree t
      JOIN pg_catalog.pg_inherits i ON i.inhparent = t.member
      JOIN rel p ON p.oid = i.inhrelid
     WHERE t.member_kind = 'p'
),
sums AS (
    SELECT t.top,
           pg_catalog.sum(m.table_bytes)::bigint AS table_bytes,
           pg_catalog.sum(m.toast_bytes)::bigint AS toast_bytes,
           pg_catalog.sum(m.index_bytes)::bigint AS index_bytes,
           pg_catalog.count(*) FILTER (WHERE t.member <> t.top AND t.member_kind <> 'p') AS partitions,
           pg_catalog.sum(m.reltuples) FILTER (WHERE m.reltuples >= 0 AND m.relkind <> 'p') AS estimated_rows
      FROM tree t JOIN rel m ON m.oid = t.member
     GROUP BY t.top
)
SELECT r.oid::regclass AS relid,
       n.nspname AS schema_name,
       r.relname AS table_name,
       CASE r.relkind WHEN 'r' THEN 'table' WHEN 'm' THEN 'materialized view' ELSE 'partitioned table' END AS kind,
       (SELECT i.inhparent::regclass FROM pg_catalog.pg_inherits i
         WHERE r.relispartition AND i.inhrelid = r.oid) AS partition_of,
       s.partitions::int AS partitions,
       s.estimated_rows::bigint AS estimated_rows,
       s.table_bytes,
       s.toast_bytes,
       s.index_bytes,
       s.table_bytes + s.toast_bytes + s.index_bytes AS total_bytes,
       pg_catalog.pg_size_pretty(s.table_bytes + s.toast_bytes + s.index_bytes) AS total_size
  FROM rel r
  JOIN sums s ON s.top = r.oid
  JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace;

COMMENT ON VIEW @extschema@.incident_table_sizes IS
'One row per table, materialized view and partitioned table of the database (outside pg_catalog and information_schema), with its heap, TOAST and index bytes read from its files without waiting for its lock; a partitioned table counts every partition below it. ORDER BY total_bytes DESC for the largest.';
COMMENT ON COLUMN @extschema@.incident_table_sizes.relid IS 'The table, as a regclass (quoted and schema-qualified when needed).';
COMMENT ON COLUMN @extschema@.incident_table_sizes.kind IS 'table, materialized view or partitioned table.';
COMMENT ON COLUMN @extschema@.incident_table_sizes.partition_of IS 'For a partition, the partitioned table it belongs to (whose row counts it too); NULL for a top-level table.';
COMMENT ON COLUMN @extschema@.incident_table_sizes.partitions IS 'For a partitioned table, how many partitions with storage it has at every level; 0 otherwise.';
COMMENT ON COLUMN @extschema@.incident_table_sizes.estimated_rows IS 'Rows as the planner estimates them (pg_class.reltuples, summed over partitions); NULL before the first VACUUM or ANALYZE.';
COMMENT ON COLUMN @extschema@.incident_table_sizes.table_bytes IS 'The heap with its free space and visibility maps.';
COMMENT ON COLUMN @extschema@.incident_table_sizes.toast_bytes IS 'The TOAST table and its index: values stored out of line.';
COMMENT ON COLUMN @extschema@.incident_table_sizes.index_bytes IS 'Every index of the table (not those of its TOAST table).';
COMMENT ON COLUMN @extschema@.incident_table_sizes.total_bytes IS 'table_bytes + toast_bytes + index_bytes: what pg_total_relation_size() gives, for a partitioned table over all its partitions.';
COMMENT ON COLUMN @extschema@.incident_table_sizes.total_size IS 'total_bytes as pg_size_pretty() writes it; sort by total_bytes.';

------------------------------------------------------------------------------
-- Connections
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__connection_limit()
RETURNS int
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- the slots ordinary roles may use: reserved_connections exists from PostgreSQL 16
    SELECT pg_catalog.current_setting('max_connections')::int
           - pg_catalog.current_setting('superuser_reserved_connections')::int
           - coalesce(nullif(pg_catalog.current_setting('reserved_connections', true), '')::int, 0)
$$;

COMMENT ON FUNCTION @extschema@.incident__connection_limit() IS
'Internal: the connections ordinary roles may open: max_connections less superuser_reserved_connections and (PostgreSQL 16 and later) reserved_connections.';

CREATE FUNCTION @extschema@.incident__connection_counts(
    OUT database name, OUT user_name name, OUT state text, OUT connections bigint,
    OUT waiting_on_lock bigint, OUT longest_in_state interval)
RETURNS SETOF record
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.datname, s.usename, coalesce(s.state, 'unknown'), pg_catalog.count(*),
           pg_catalog.count(*) FILTER (WHERE s.wait_event_type = 'Lock'),
           pg_catalog.max(pg_catalog.clock_timestamp() - s.state_change)
      FROM pg_catalog.pg_stat_activity s
     WHERE s.backend_type = 'client backend'
     GROUP BY 1, 2, 3
$$;

COMMENT ON FUNCTION @extschema@.incident__connection_counts() IS
'Internal: client connections counted by database, role and state, with those waiting for a lock and the longest time one has been in its state, over every session whoever calls (counts and times only, no query text).';

CREATE VIEW @extschema@.incident_connections AS
SELECT c.database, c.user_name, c.state, c.connections, c.waiting_on_lock, c.longest_in_state,
       pg_catalog.sum(c.connections) OVER ()::bigint AS total_connections,
       @extschema@.incident__connection_limit() AS connection_limit,
       pg_catalog.round(100.0 * pg_catalog.sum(c.connections) OVER ()
                        / greatest(@extschema@.incident__connection_limit(), 1), 1) AS total_pct
  FROM @extschema@.incident__connection_counts() c;

COMMENT ON VIEW @extschema@.incident_connections IS
'Client connections by database, role and state (active, idle, idle in transaction ...), counted over every session whoever reads it, against the connections ordinary roles may open (max_connections less the reserved ones).';
COMMENT ON COLUMN @extschema@.incident_connections.state IS 'pg_stat_activity.state: active, idle, idle in transaction, idle in transaction (aborted), fastpath function call, disabled; unknown for a session still starting.';
COMMENT ON COLUMN @extschema@.incident_connections.connections IS 'Sessions of this database, role and state.';
COMMENT ON COLUMN @extschema@.incident_connections.waiting_on_lock IS 'Of those, how many wait for a heavyweight lock (incident_blocking_locks says for whom).';
COMMENT ON COLUMN @extschema@.incident_connections.longest_in_state IS 'The longest time one of them has been in this state.';
COMMENT ON COLUMN @extschema@.incident_connections.total_connections IS 'Client connections of the whole server.';
COMMENT ON COLUMN @extschema@.incident_connections.connection_limit IS 'max_connections less superuser_reserved_connections and reserved_connections (PostgreSQL 16 and later): what ordinary roles may open before "too many clients".';
COMMENT ON COLUMN @extschema@.incident_connections.total_pct IS 'total_connections as a percentage of connection_limit.';

------------------------------------------------------------------------------
-- Long queries and transactions
------------------------------------------------------------------------------

CREATE VIEW @extschema@.incident_long_transactions AS
SELECT s.pid,
       s.leader_pid AS parallel_leader_pid,
       s.backend_type,
       s.datname AS database,
       s.usename AS user_name,
       s.application_name,
       s.client_addr,
       s.state,
       CASE WHEN s.state LIKE 'idle in transaction%' THEN 'idle in transaction'
            WHEN s.state = 'active' AND s.query_start <= s.xact_start + interval '1 second' THEN 'long query'
            WHEN s.state = 'active' THEN 'long transaction'
            ELSE 'long transaction' END AS kind,
       s.xact_start,
       pg_catalog.clock_timestamp() - s.xact_start AS xact_age,
       CASE WHEN s.state = 'active' THEN pg_catalog.clock_timestamp() - s.query_start END AS query_age,
       CASE WHEN s.state <> 'active' THEN pg_catalog.clock_timestamp() - s.state_change END AS idle_for,
       pg_catalog.age(s.backend_xmin) AS xmin_age,
       s.backend_xid IS NOT NULL AS has_xid,
       s.wait_event_type,
       s.wait_event,
       s.query
  FROM pg_catalog.pg_stat_activity s
 WHERE s.xact_start IS NOT NULL
   AND s.pid <> pg_catalog.pg_backend_pid();

COMMENT ON VIEW @extschema@.incident_long_transactions IS
'One row per session with a transaction open (other than the reader''s own), for ORDER BY xact_age DESC: long queries, long transactions and sessions idle in transaction, with how old their snapshot is (they hold back VACUUM). Shows what pg_stat_activity shows the reader: a role without pg_read_all_stats sees only its own sessions.';
COMMENT ON COLUMN @extschema@.incident_long_transactions.parallel_leader_pid IS 'For a parallel worker, its leader''s pid (cancel that one); NULL otherwise.';
COMMENT ON COLUMN @extschema@.incident_long_transactions.kind IS 'idle in transaction (open, doing nothing: usually a client that forgot to commit), long query (one statement running since the transaction began), or long transaction (several statements).';
COMMENT ON COLUMN @extschema@.incident_long_transactions.xact_age IS 'How long its transaction has been open.';
COMMENT ON COLUMN @extschema@.incident_long_transactions.query_age IS 'For an active session, how long its current statement has run.';
COMMENT ON COLUMN @extschema@.incident_long_transactions.idle_for IS 'For a session that is not running a statement, how long it has been in its state.';
COMMENT ON COLUMN @extschema@.incident_long_transactions.xmin_age IS 'Transactions since its snapshot''s xmin: rows deleted since then cannot be vacuumed while it lasts.';
COMMENT ON COLUMN @extschema@.incident_long_transactions.has_xid IS 'Whether it has written (taken a transaction id): ending it rolls work back.';

------------------------------------------------------------------------------
-- Wraparound and the xmin horizon
------------------------------------------------------------------------------

CREATE VIEW @extschema@.incident_wraparound AS
WITH settings AS (
    SELECT pg_catalog.current_setting('autovacuum_freeze_max_age')::bigint AS xid_max,
           pg_catalog.current_setting('autovacuum_multixact_freeze_max_age')::bigint AS mxid_max
),
tables AS (
    SELECT c.oid, c.relnamespace, c.relname,
           greatest(pg_catalog.age(c.relfrozenxid), coalesce(pg_catalog.age(t.relfrozenxid), 0)) AS xid_age,
           greatest(pg_catalog.mxid_age(c.relminmxid), coalesce(pg_catalog.mxid_age(t.relminmxid), 0)) AS mxid_age,
           (SELECT o.option_value::bigint FROM pg_catalog.pg_options_to_table(c.reloptions) o
             WHERE o.option_name = 'autovacuum_freeze_max_age') AS xid_max,
           (SELECT o.option_value::bigint FROM pg_catalog.pg_options_to_table(c.reloptions) o
             WHERE o.option_name = 'autovacuum_multixact_freeze_max_age') AS mxid_max
      FROM pg_catalog.pg_class c
      LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
     WHERE c.relkind IN ('r', 'm')
)
SELECT 'database' AS level,
       d.datname AS database,
       NULL::regclass AS relid,
       NULL::name AS schema_name,
       NULL::name AS table_name,
       pg_catalog.age(d.datfrozenxid)::bigint AS xid_age,
       pg_catalog.mxid_age(d.datminmxid)::bigint AS mxid_age,
       s.xid_max AS xid_freeze_max_age,
       s.mxid_max AS mxid_freeze_max_age,
       pg_catalog.round(100.0 * pg_catalog.age(d.datfrozenxid) / 2147483648, 2) AS xid_wraparound_pct,
       pg_catalog.round(100.0 * pg_catalog.mxid_age(d.datminmxid) / 2147483648, 2) AS mxid_wraparound_pct,
       pg_catalog.age(d.datfrozenxid) > s.xid_max OR pg_catalog.mxid_age(d.datminmxid) > s.mxid_max AS forced_vacuum_due
  FROM pg_catalog.pg_database d, settings s
UNION ALL
SELECT 'table',
       pg_catalog.current_database(),
       t.oid::regclass,
       n.nspname,
       t.relname,
       t.xid_age,
       t.mxid_age,
       least(coalesce(t.xid_max, s.xid_max), s.xid_max),
       least(coalesce(t.mxid_max, s.mxid_max), s.mxid_max),
       pg_catalog.round(100.0 * t.xid_age / 2147483648, 2),
       pg_catalog.round(100.0 * t.mxid_age / 2147483648, 2),
       t.xid_age > least(coalesce(t.xid_max, s.xid_max), s.xid_max)
       OR t.mxid_age > least(coalesce(t.mxid_max, s.mxid_max), s.mxid_max)
  FROM tables t
  JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace, settings s;

COMMENT ON VIEW @extschema@.incident_wraparound IS
'Transaction ID and multixact age of every database (level database) and of every table of this one (level table, its TOAST table included), against autovacuum_freeze_max_age (past it, autovacuum forces a freezing vacuum) and against the 2^31 at which PostgreSQL stops assigning IDs. ORDER BY xid_age DESC; incident_xmin_horizon shows what keeps VACUUM from freezing.';
COMMENT ON COLUMN @extschema@.incident_wraparound.level IS 'database (pg_database.datfrozenxid: its oldest table) or table.';
COMMENT ON COLUMN @extschema@.incident_wraparound.xid_age IS 'Transactions since the oldest unfrozen transaction ID (age of datfrozenxid or relfrozenxid).';
COMMENT ON COLUMN @extschema@.incident_wraparound.mxid_age IS 'Multixacts since the oldest unfrozen multixact ID (mxid_age of datminmxid or relminmxid).';
COMMENT ON COLUMN @extschema@.incident_wraparound.xid_freeze_max_age IS 'autovacuum_freeze_max_age, or the table''s own lower setting.';
COMMENT ON COLUMN @extschema@.incident_wraparound.mxid_freeze_max_age IS 'autovacuum_multixact_freeze_max_age, or the table''s own lower setting.';
COMMENT ON COLUMN @extschema@.incident_wraparound.xid_wraparound_pct IS 'xid_age as a percentage of 2^31: at 100 % (less a safety margin) the server refuses new transaction IDs.';
COMMENT ON COLUMN @extschema@.incident_wraparound.mxid_wraparound_pct IS 'mxid_age as a percentage of 2^31.';
COMMENT ON COLUMN @extschema@.incident_wraparound.forced_vacuum_due IS 'Past its freeze max age: autovacuum runs an aggressive (anti-wraparound) vacuum of it, which cancels nothing and cannot be skipped.';

CREATE FUNCTION @extschema@.incident__xmin_holders(
    OUT kind text, OUT pid int, OUT name text, OUT database name, OUT user_name name,
    OUT xmin xid, OUT xmin_age bigint, OUT since timestamptz, OUT action text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN a.backend_type = 'walsender' THEN 'standby feedback' ELSE 'session' END,
           a.pid, a.application_name, a.datname, a.usename,
           CASE WHEN a.backend_xid IS NOT NULL AND pg_catalog.age(a.backend_xid) >= coalesce(pg_catalog.age(a.backend_xmin), 0)
                THEN a.backend_xid ELSE a.backend_xmin END,
           greatest(pg_catalog.age(a.backend_xid), pg_catalog.age(a.backend_xmin))::bigint,
           coalesce(a.xact_start, a.backend_start),
           CASE WHEN a.backend_type = 'walsender' THEN 'a standby''s query, kept by hot_standby_feedback'
                ELSE pg_catalog.format('end the transaction, or SELECT pg_terminate_backend(%s)', a.pid) END
      FROM pg_catalog.pg_stat_activity a
     WHERE (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL)
       AND a.pid <> pg_catalog.pg_backend_pid()
    UNION ALL
    SELECT 'prepared transaction', NULL, p.gid, p.database, p.owner,
           p.transaction, pg_catalog.age(p.transaction)::bigint, p.prepared,
           pg_catalog.format('COMMIT PREPARED %L or ROLLBACK PREPARED %L', p.gid, p.gid)
      FROM pg_catalog.pg_prepared_xacts p
    UNION ALL
    SELECT 'replication slot', r.active_pid, r.slot_name, r.database, NULL,
           CASE WHEN r.xmin IS NOT NULL AND pg_catalog.age(r.xmin) >= coalesce(pg_catalog.age(r.catalog_xmin), 0)
                THEN r.xmin ELSE r.catalog_xmin END,
           greatest(pg_catalog.age(r.xmin), pg_catalog.age(r.catalog_xmin))::bigint, NULL,
           CASE WHEN r.active THEN 'the slot''s consumer is connected: let it catch up'
                ELSE pg_catalog.format('SELECT pg_drop_replication_slot(%L) if nobody will use it again', r.slot_name) END
      FROM pg_catalog.pg_replication_slots r
     WHERE r.xmin IS NOT NULL OR r.catalog_xmin IS NOT NULL
$$;

COMMENT ON FUNCTION @extschema@.incident__xmin_holders() IS
'Internal: every session, prepared transaction and replication slot that holds back the xmin horizon, with the age of what it holds, as the caller may see the sessions.';

CREATE VIEW @extschema@.incident_xmin_horizon AS
SELECT h.kind, h.pid, h.name, h.database, h.user_name, h.xmin, h.xmin_age, h.since,
       pg_catalog.clock_timestamp() - h.since AS held_for, h.action
  FROM @extschema@.incident__xmin_holders() h;

COMMENT ON VIEW @extschema@.incident_xmin_horizon IS
'What keeps VACUUM from removing dead rows and freezing: sessions with an old snapshot or transaction ID (including a standby''s, through hot_standby_feedback), prepared transactions and replication slots, each with the age of what it holds; ORDER BY xmin_age DESC. A role without pg_read_all_stats sees only its own sessions.';
COMMENT ON COLUMN @extschema@.incident_xmin_horizon.kind IS 'session, standby feedback, prepared transaction or replication slot.';
COMMENT ON COLUMN @extschema@.incident_xmin_horizon.name IS 'The session''s application_name, the prepared transaction''s gid or the slot''s name.';
COMMENT ON COLUMN @extschema@.incident_xmin_horizon.xmin IS 'The oldest transaction ID it holds back (a session''s own ID or its snapshot''s xmin; a slot''s xmin or catalog_xmin).';
COMMENT ON COLUMN @extschema@.incident_xmin_horizon.xmin_age IS 'Transactions since xmin: VACUUM keeps every row deleted since then.';
COMMENT ON COLUMN @extschema@.incident_xmin_horizon.since IS 'When the session''s transaction began or the transaction was prepared; NULL for a slot.';
COMMENT ON COLUMN @extschema@.incident_xmin_horizon.action IS 'What ends the hold.';

------------------------------------------------------------------------------
-- Replication
------------------------------------------------------------------------------

CREATE VIEW @extschema@.incident_replication AS
WITH here AS (
    SELECT pg_catalog.pg_is_in_recovery() AS standby,
           CASE WHEN pg_catalog.pg_is_in_recovery()
                THEN coalesce(pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn())
                ELSE pg_catalog.pg_current_wal_lsn() END AS lsn
)
SELECT 'standby' AS kind,
       r.application_name AS name,
       r.pid,
       true AS active,
       r.state,
       r.sync_state,
       r.client_addr,
       pg_catalog.pg_wal_lsn_diff(h.lsn, r.replay_lsn)::bigint AS lag_bytes,
       r.write_lag,
       r.flush_lag,
       r.replay_lag,
       NULL::text AS slot_type,
       NULL::text AS wal_status,
       NULL::bigint AS retained_bytes,
       NULL::bigint AS safe_wal_size
  FROM pg_catalog.pg_stat_replication r, here h
UNION ALL
SELECT 'slot', s.slot_name, s.active_pid, s.active, NULL, NULL, NULL,
       pg_catalog.pg_wal_lsn_diff(h.lsn, coalesce(s.confirmed_flush_lsn, s.restart_lsn))::bigint,
       NULL, NULL, NULL,
       s.slot_type, s.wal_status,
       pg_catalog.pg_wal_lsn_diff(h.lsn, s.restart_lsn)::bigint,
       s.safe_wal_size
  FROM pg_catalog.pg_replication_slots s, here h
UNION ALL
SELECT 'upstream', w.sender_host, w.pid, w.status = 'streaming', w.status, NULL, NULL,
       pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn())::bigint,
       NULL, NULL,
       CASE WHEN pg_catalog.pg_last_wal_receive_lsn() = pg_catalog.pg_last_wal_replay_lsn() THEN interval '0'
            ELSE pg_catalog.clock_timestamp() - pg_catalog.pg_last_xact_replay_timestamp() END,
       NULL, NULL, NULL, NULL
  FROM pg_catalog.pg_stat_wal_receiver w, here h
 WHERE h.standby;

COMMENT ON VIEW @extschema@.incident_replication IS
'Replication as this server sees it: on a primary one row per connected standby (kind standby: how far behind it is, in bytes and in time) and per replication slot (kind slot: whether anything uses it and how much WAL it keeps); on a standby also its own upstream (kind upstream: how far replay lags what was received). A role without pg_read_all_stats sees NULL for a standby''s state and positions.';
COMMENT ON COLUMN @extschema@.incident_replication.kind IS 'standby (a walsender to a standby or a logical subscriber), slot (a replication slot) or upstream (this standby''s WAL receiver).';
COMMENT ON COLUMN @extschema@.incident_replication.name IS 'The standby''s application_name, the slot''s name, or the upstream''s host.';
COMMENT ON COLUMN @extschema@.incident_replication.active IS 'Whether something is connected: a slot nobody uses keeps WAL (and, with an xmin, dead rows) for ever.';
COMMENT ON COLUMN @extschema@.incident_replication.state IS 'The walsender''s state (streaming, catchup, backup ...) or the receiver''s status.';
COMMENT ON COLUMN @extschema@.incident_replication.sync_state IS 'async, potential, sync or quorum.';
COMMENT ON COLUMN @extschema@.incident_replication.lag_bytes IS 'WAL not yet replayed by the standby; for a slot, not yet confirmed by its consumer; for the upstream, received but not yet replayed here.';
COMMENT ON COLUMN @extschema@.incident_replication.write_lag IS 'As pg_stat_replication.write_lag: time until recent WAL was written on the standby.';
COMMENT ON COLUMN @extschema@.incident_replication.flush_lag IS 'As pg_stat_replication.flush_lag.';
COMMENT ON COLUMN @extschema@.incident_replication.replay_lag IS 'As pg_stat_replication.replay_lag (NULL once an idle standby has caught up); for the upstream, since the last replayed transaction while replay is behind.';
COMMENT ON COLUMN @extschema@.incident_replication.slot_type IS 'physical or logical.';
COMMENT ON COLUMN @extschema@.incident_replication.wal_status IS 'As pg_replication_slots.wal_status: reserved, extended, unreserved (WAL it needs is about to go) or lost.';
COMMENT ON COLUMN @extschema@.incident_replication.retained_bytes IS 'WAL the slot keeps on disk: from its restart_lsn to the current position.';
COMMENT ON COLUMN @extschema@.incident_replication.safe_wal_size IS 'As pg_replication_slots.safe_wal_size: WAL that can still be written before the slot is lost (NULL when max_slot_wal_keep_size is unlimited).';

------------------------------------------------------------------------------
-- Vacuum and analyze recency
------------------------------------------------------------------------------

CREATE VIEW @extschema@.incident_vacuum_recency AS
WITH t AS (
    SELECT s.relid, s.schemaname, s.relname, c.reltuples, c.reloptions,
           s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze, s.n_ins_since_vacuum,
           greatest(s.last_vacuum, s.last_autovacuum) AS last_vacuum,
           greatest(s.last_analyze, s.last_autoanalyze) AS last_analyze,
           s.vacuum_count + s.autovacuum_count AS vacuums,
           s.analyze_count + s.autoanalyze_count AS analyzes,
           greatest(c.reltuples, 0) AS tuples
      FROM pg_catalog.pg_stat_all_tables s
      JOIN pg_catalog.pg_class c ON c.oid = s.relid
     WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')
       AND s.schemaname !~ '^pg_toast'
       AND c.relkind IN ('r', 'm')
),
o AS (
    SELECT t.*,
           (SELECT pg_catalog.array_agg(x.option_name || '=' || x.option_value)
              FROM pg_catalog.pg_options_to_table(t.reloptions) x) AS opts
      FROM t
),
th AS (
    SELECT o.*,
           coalesce((SELECT x.option_value::bool FROM pg_catalog.pg_options_to_table(o.reloptions) x
                      WHERE x.option_name = 'autovacuum_enabled'), true)
               AND pg_catalog.current_setting('autovacuum')::bool AS autovacuum_on,
           coalesce((SELECT x.option_value::float8 FROM pg_catalog.pg_options_to_table(o.reloptions) x
                      WHERE x.option_name = 'autovacuum_vacuum_threshold'),
                    pg_catalog.current_setting('autovacuum_vacuum_threshold')::float8)
           + coalesce((SELECT x.option_value::float8 FROM pg_catalog.pg_options_to_table(o.reloptions) x
                        WHERE x.option_name = 'autovacuum_vacuum_scale_factor'),
                      pg_catalog.current_setting('autovacuum_vacuum_scale_factor')::float8) * o.tuples AS vac_threshold,
           coalesce((SELECT x.option_value::float8 FROM pg_catalog.pg_options_to_table(o.reloptions) x
                      WHERE x.option_name = 'autovacuum_vacuum_insert_threshold'),
                    pg_catalog.current_setting('autovacuum_vacuum_insert_threshold')::float8) AS ins_base,
           coalesce((SELECT x.option_value::float8 FROM pg_catalog.pg_options_to_table(o.reloptions) x
                      WHERE x.option_name = 'autovacuum_vacuum_insert_scale_factor'),
                    pg_catalog.current_setting('autovacuum_vacuum_insert_scale_factor')::float8) AS ins_scale,
           coalesce((SELECT x.option_value::float8 FROM pg_catalog.pg_options_to_table(o.reloptions) x
                      WHERE x.option_name = 'autovacuum_analyze_threshold'),
                    pg_catalog.current_setting('autovacuum_analyze_threshold')::float8)
           + coalesce((SELECT x.option_value::float8 FROM pg_catalog.pg_options_to_table(o.reloptions) x
                        WHERE x.option_name = 'autovacuum_analyze_scale_factor'),
                      pg_catalog.current_setting('autovacuum_analyze_scale_factor')::float8) * o.tuples AS an_threshold
      FROM o
)
SELECT th.relid::regclass AS relid,
       th.schemaname AS schema_name,
       th.relname AS table_name,
       th.n_live_tup AS live_rows,
       th.n_dead_tup AS dead_rows,
       pg_catalog.round(100.0 * th.n_dead_tup / nullif(th.n_live_tup + th.n_dead_tup, 0), 1) AS dead_pct,
       th.n_mod_since_analyze AS modified_since_analyze,
       th.n_ins_since_vacuum AS inserted_since_vacuum,
       th.last_vacuum,
       th.last_analyze,
       pg_catalog.clock_timestamp() - th.last_vacuum AS since_vacuum,
       pg_catalog.clock_timestamp() - th.last_analyze AS since_analyze,
       th.vacuums,
       th.analyzes,
       pg_catalog.ceil(th.vac_threshold)::bigint AS vacuum_threshold,
       pg_catalog.ceil(th.an_threshold)::bigint AS analyze_threshold,
       th.n_dead_tup > th.vac_threshold
       OR (th.ins_base >= 0 AND th.n_ins_since_vacuum > th.ins_base + th.ins_scale * th.tuples) AS needs_vacuum,
       th.n_mod_since_analyze > th.an_threshold AS needs_analyze,
       th.autovacuum_on AS autovacuum_enabled,
       EXISTS (SELECT FROM pg_catalog.pg_stat_progress_vacuum p WHERE p.relid = th.relid) AS vacuum_running
  FROM th;

COMMENT ON VIEW @extschema@.incident_vacuum_recency IS
'One row per table of the database (outside the catalogs): its live and dead rows, when it was last vacuumed and analyzed (by hand or by autovacuum), the thresholds at which autovacuum takes it up (its own storage parameters, else the server''s settings) and whether it is past them now. A table past its threshold that autovacuum does not reach points at a held xmin horizon (incident_xmin_horizon), too few autovacuum workers or autovacuum turned off.';
COMMENT ON COLUMN @extschema@.incident_vacuum_recency.dead_rows IS 'Dead row versions VACUUM has not removed yet (pg_stat_all_tables.n_dead_tup, an estimate).';
COMMENT ON COLUMN @extschema@.incident_vacuum_recency.dead_pct IS 'dead_rows as a percentage of live and dead rows.';
COMMENT ON COLUMN @extschema@.incident_vacuum_recency.last_vacuum IS 'The later of the last manual VACUUM and the last autovacuum; NULL if never since the statistics were reset.';
COMMENT ON COLUMN @extschema@.incident_vacuum_recency.last_analyze IS 'The later of the last manual ANALYZE and the last autoanalyze.';
COMMENT ON COLUMN @extschema@.incident_vacuum_recency.vacuum_threshold IS 'Dead rows past which autovacuum vacuums it: autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor x rows, the table''s own settings first.';
COMMENT ON COLUMN @extschema@.incident_vacuum_recency.analyze_threshold IS 'Changed rows past which autovacuum analyzes it.';
COMMENT ON COLUMN @extschema@.incident_vacuum_recency.needs_vacuum IS 'Past its dead-row threshold or its insert threshold (autovacuum_vacuum_insert_threshold; -1 turns that off).';
COMMENT ON COLUMN @extschema@.incident_vacuum_recency.needs_analyze IS 'Past its analyze threshold: the planner''s statistics of it are stale.';
COMMENT ON COLUMN @extschema@.incident_vacuum_recency.autovacuum_enabled IS 'Whether autovacuum may take it up (the autovacuum setting and the table''s autovacuum_enabled); it still runs to prevent wraparound when off.';
COMMENT ON COLUMN @extschema@.incident_vacuum_recency.vacuum_running IS 'Whether a VACUUM of it is running now (pg_stat_progress_vacuum).';

------------------------------------------------------------------------------
-- Sequences
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__sequence_usage(
    OUT relid regclass, OUT schema_name name, OUT sequence_name name, OUT data_type regtype,
    OUT owned_by text, OUT column_type regtype, OUT last_value bigint, OUT increment_by bigint,
    OUT limit_value bigint, OUT remaining numeric, OUT used_pct numeric, OUT cycles boolean)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH s AS (
        SELECT c.oid, n.nspname, c.relname, q.seqtypid, q.seqincrement, q.seqmin, q.seqmax, q.seqstart, q.seqcycle,
               col.owned_by, col.atttypid,
               CASE WHEN pg_catalog.has_sequence_privilege(c.oid, 'SELECT,USAGE')
                    THEN @extschema@.incident__sequence_last_value(c.oid) END AS last_value
          FROM pg_catalog.pg_sequence q
          JOIN pg_catalog.pg_class c ON c.oid = q.seqrelid
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN LATERAL (
              -- the column it is OWNED BY (serial, identity) or, failing
              -- that, the narrowest column whose DEFAULT calls nextval() on it
              SELECT x.owned_by, x.atttypid
                FROM (SELECT pg_catalog.format('%s.%I', d.refobjid::regclass, a.attname) AS owned_by, a.atttypid,
                             0 AS pref
                        FROM pg_catalog.pg_depend d
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                       WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                         AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0
                         AND d.deptype IN ('a', 'i')
                      UNION ALL
                      SELECT pg_catalog.format('%s.%I', ad.adrelid::regclass, a.attname), a.atttypid,
                             CASE a.atttypid WHEN 'int2'::regtype THEN 1 WHEN 'int4'::regtype THEN 2 ELSE 3 END
                        FROM pg_catalog.pg_depend d
                        JOIN pg_catalog.pg_attrdef ad ON ad.oid = d.objid
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
                       WHERE d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.refobjid = c.oid
                         AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'n') x
               ORDER BY x.pref, x.owned_by
               LIMIT 1) col ON true
    ),
    l AS (
        -- the end is the sequence's own limit or, sooner, what the column it fills can hold
        SELECT s.*,
               CASE WHEN s.seqincrement > 0
                    THEN least(s.seqmax, CASE s.atttypid WHEN 'int2'::regtype THEN 32767
                                                          WHEN 'int4'::regtype THEN 2147483647
                                                          ELSE s.seqmax END)
                    ELSE greatest(s.seqmin, CASE s.atttypid WHEN 'int2'::regtype THEN -32768
                                                             WHEN 'int4'::regtype THEN -2147483648
                                                             ELSE s.seqmin END) END AS limit_value
          FROM s
    )
    SELECT l.oid::regclass, l.nspname, l.relname, l.seqtypid::regtype, l.owned_by, l.atttypid::regtype,
           l.last_value, l.seqincrement, l.limit_value,
           pg_catalog.floor((l.limit_value::numeric - l.last_value) / l.seqincrement),
           pg_catalog.round(100.0 * (l.last_value::numeric - l.seqstart) / nullif(l.limit_value::numeric - l.seqstart, 0), 2),
           l.seqcycle
      FROM l
$$;

COMMENT ON FUNCTION @extschema@.incident__sequence_usage() IS
'Internal: every sequence with how far it has gone toward its end, which is its maximum (minimum, for a descending one) or, sooner, the largest value of the integer column it fills; last_value is read only where the caller may read the sequence and its lock is free.';

CREATE VIEW @extschema@.incident_sequences AS
SELECT u.relid, u.schema_name, u.sequence_name, u.data_type, u.owned_by, u.column_type,
       u.last_value, u.increment_by, u.limit_value, u.remaining, u.used_pct, u.cycles
  FROM @extschema@.incident__sequence_usage() u;

COMMENT ON VIEW @extschema@.incident_sequences IS
'Every sequence of the database with how much of its range is used, for ORDER BY used_pct DESC: the classic trap is a bigint sequence filling an integer column, which fails at 2,147,483,647 whatever the sequence allows, so the end is the sooner of the two. A sequence the reader may not read, or whose lock is taken, shows NULL figures.';
COMMENT ON COLUMN @extschema@.incident_sequences.owned_by IS 'The column it fills (OWNED BY, serial or identity, or else the narrowest column whose DEFAULT calls nextval() on it), as table.column; NULL for a free-standing sequence.';
COMMENT ON COLUMN @extschema@.incident_sequences.column_type IS 'The type of that column.';
COMMENT ON COLUMN @extschema@.incident_sequences.last_value IS 'The last value handed out; NULL if never called, not readable by the reader, or locked at the moment.';
COMMENT ON COLUMN @extschema@.incident_sequences.limit_value IS 'The last value it can hand out that its column can hold: its maximum (minimum when descending) or the column type''s.';
COMMENT ON COLUMN @extschema@.incident_sequences.remaining IS 'Values it can still hand out before limit_value.';
COMMENT ON COLUMN @extschema@.incident_sequences.used_pct IS 'The share of its range from its start to limit_value already used.';
COMMENT ON COLUMN @extschema@.incident_sequences.cycles IS 'Whether it starts again at the other end (CYCLE): no error then, but the values repeat.';

------------------------------------------------------------------------------
-- incident_health: one row per check
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_health_threshold (
    check_name  text PRIMARY KEY
                CONSTRAINT incident_health_threshold_check_name_check
                CHECK (check_name IN ('connections', 'xid_age', 'mxid_age', 'long_query', 'long_transaction',
                                      'idle_in_transaction', 'lock_wait', 'lock_blocked', 'prepared_transaction',
                                      'replication_lag', 'slot_retained_wal', 'sequence_usage', 'vacuum_overdue')),
    warning     numeric NOT NULL
                CONSTRAINT incident_health_threshold_warning_check CHECK (warning >= 0),
    critical    numeric NOT NULL
                CONSTRAINT incident_health_threshold_critical_check CHECK (critical >= 0),
    unit        text NOT NULL
                CONSTRAINT incident_health_threshold_unit_check CHECK (unit IN ('percent', 'seconds', 'sessions', 'bytes')),
    enabled     boolean NOT NULL DEFAULT true,
    description text NOT NULL,
    is_default  boolean NOT NULL DEFAULT false,
    CONSTRAINT incident_health_threshold_order_check CHECK (warning <= critical)
);

COMMENT ON TABLE @extschema@.incident_health_threshold IS
'The thresholds of incident_health''s checks: a value at or past warning is a warning, at or past critical is critical. Seeded from common practice; editable by incident_admin (set enabled to false to leave a check out; pg_dump keeps edits).';
COMMENT ON COLUMN @extschema@.incident_health_threshold.check_name IS 'The check, as incident_health names it.';
COMMENT ON COLUMN @extschema@.incident_health_threshold.warning IS 'The value from which the check is a warning, in unit.';
COMMENT ON COLUMN @extschema@.incident_health_threshold.critical IS 'The value from which the check is critical, in unit; at least warning.';
COMMENT ON COLUMN @extschema@.incident_health_threshold.unit IS 'What the value measures: percent, seconds, sessions or bytes (fixed per check).';
COMMENT ON COLUMN @extschema@.incident_health_threshold.enabled IS 'Whether incident_health runs the check.';
COMMENT ON COLUMN @extschema@.incident_health_threshold.description IS 'What the check measures.';
COMMENT ON COLUMN @extschema@.incident_health_threshold.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';

COMMENT ON CONSTRAINT incident_health_threshold_check_name_check ON @extschema@.incident_health_threshold IS
'The checks are connections, xid_age, mxid_age, long_query, long_transaction, idle_in_transaction, lock_wait, lock_blocked, prepared_transaction, replication_lag, slot_retained_wal, sequence_usage and vacuum_overdue; edit their rows rather than adding new ones.';
COMMENT ON CONSTRAINT incident_health_threshold_warning_check ON @extschema@.incident_health_threshold IS
'A threshold is a value of zero or more, in the check''s unit.';
COMMENT ON CONSTRAINT incident_health_threshold_critical_check ON @extschema@.incident_health_threshold IS
'A threshold is a value of zero or more, in the check''s unit.';
COMMENT ON CONSTRAINT incident_health_threshold_unit_check ON @extschema@.incident_health_threshold IS
'The units are percent, seconds, sessions and bytes; keep the one the check was seeded with.';
COMMENT ON CONSTRAINT incident_health_threshold_order_check ON @extschema@.incident_health_threshold IS
'Give a critical threshold at least as high as the warning one: a value gets worse as it grows.';

INSERT INTO @extschema@.incident_health_threshold (check_name, warning, critical, unit, description, is_default)
VALUES
    ('connections', 75, 90, 'percent',
     'Client connections in use, as a percentage of max_connections less the reserved ones.', true),
    ('xid_age', 50, 75, 'percent',
     'The oldest database''s transaction ID age, as a percentage of the 2^31 at which the server stops assigning IDs.', true),
    ('mxid_age', 50, 75, 'percent',
     'The oldest database''s multixact ID age, as a percentage of 2^31.', true),
    ('long_query', 300, 1800, 'seconds',
     'The longest-running statement of a client session.', true),
    ('long_transaction', 900, 3600, 'seconds',
     'The oldest open transaction of a client session.', true),
    ('idle_in_transaction', 300, 900, 'seconds',
     'The longest a session has sat idle in an open transaction.', true),
    ('lock_wait', 60, 120, 'seconds',
     'The longest wait for a heavyweight lock.', true),
    ('lock_blocked', 5, 10, 'sessions',
     'The most sessions one root blocker holds up, directly or through other waiters.', true),
    ('prepared_transaction', 600, 3600, 'seconds',
     'The oldest prepared transaction (two-phase commit) not yet committed or rolled back.', true),
    ('replication_lag', 60, 300, 'seconds',
     'The largest replay lag of a connected standby.', true),
    ('slot_retained_wal', 1073741824, 10737418240, 'bytes',
     'The most WAL a replication slot keeps on disk (a lost or unreserved slot is critical).', true),
    ('sequence_usage', 75, 90, 'percent',
     'The most used sequence''s share of its range, up to what its column can hold.', true),
    ('vacuum_overdue', 86400, 604800, 'seconds',
     'The longest a table past its autovacuum threshold has gone since its last vacuum (tables never vacuumed since the statistics were reset are left out).', true);

SELECT @extschema@.incident__seeded_table('@extschema@.incident_health_threshold', 'check_name');
SELECT @extschema@.incident__checked_table('@extschema@.incident_health_threshold', 'check_name:lower');

-- incident__health_check(check, value, detail, evidence): one row of
-- incident_health, judged against the check's thresholds.
CREATE FUNCTION @extschema@.incident__health_row(t @extschema@.incident_health_threshold, value numeric, detail text,
                                                 evidence jsonb DEFAULT '[]', forced_status text DEFAULT NULL,
                                                 OUT check_name text, OUT status text, OUT value numeric, OUT unit text,
                                                 OUT warning numeric, OUT critical numeric, OUT detail text, OUT evidence jsonb)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.check_name,
           coalesce(forced_status,
                    CASE WHEN incident__health_row.value >= t.critical THEN 'critical'
                         WHEN incident__health_row.value >= t.warning THEN 'warning'
                         ELSE 'ok' END),
           incident__health_row.value, t.unit, t.warning, t.critical,
           incident__health_row.detail, coalesce(incident__health_row.evidence, '[]')
$$;

COMMENT ON FUNCTION @extschema@.incident__health_row(@extschema@.incident_health_threshold, numeric, text, jsonb, text) IS
'Internal: a row of incident_health: the value judged against the check''s thresholds (at or past critical is critical, at or past warning a warning), or forced_status when the check decides by itself.';

CREATE FUNCTION @extschema@.incident__health(only_check text DEFAULT NULL,
    OUT check_name text, OUT status text, OUT value numeric, OUT unit text,
    OUT warning numeric, OUT critical numeric, OUT detail text, OUT evidence jsonb)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t @extschema@.incident_health_threshold;
    r record;
    v numeric;
    d text;
    ev jsonb;
    forced text;
    problem text;
BEGIN
    -- every enabled check, or the one asked for whether enabled or not
    FOR t IN SELECT * FROM @extschema@.incident_health_threshold h
              WHERE CASE WHEN only_check IS NULL THEN h.enabled ELSE h.check_name = only_check END
              ORDER BY h.check_name LOOP
        v := NULL; d := NULL; ev := '[]'; forced := NULL;
        BEGIN
            CASE t.check_name
            WHEN 'connections' THEN
                SELECT coalesce(pg_catalog.sum(c.connections), 0) AS n,
                       coalesce(pg_catalog.sum(c.connections) FILTER (WHERE c.state = 'active'), 0) AS active,
                       coalesce(pg_catalog.sum(c.connections) FILTER (WHERE c.state LIKE 'idle in transaction%'), 0) AS iit,
                       pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('database', c.database, 'user', c.user_name,
                                                                          'state', c.state, 'connections', c.connections)
                                            ORDER BY c.connections DESC) AS top
                  INTO r FROM @extschema@.incident__connection_counts() c;
                v := pg_catalog.round(100.0 * r.n / greatest(@extschema@.incident__connection_limit(), 1), 1);
                d := pg_catalog.format('%s of %s connections in use (%s active, %s idle in transaction)',
                                       r.n, @extschema@.incident__connection_limit(), r.active, r.iit);
                ev := coalesce((SELECT pg_catalog.jsonb_agg(e) FROM (SELECT e FROM pg_catalog.jsonb_array_elements(r.top) e LIMIT 10) x), '[]');
            WHEN 'xid_age', 'mxid_age' THEN
                SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('database', w.database, 'age', w.age,
                                                                          'pct', w.pct) ORDER BY w.age DESC) AS top,
                       pg_catalog.max(w.pct) AS pct
                  INTO r
                  FROM (SELECT x.datname AS database,
                               CASE WHEN t.check_name = 'xid_age' THEN pg_catalog.age(x.datfrozenxid)
                                    ELSE pg_catalog.mxid_age(x.datminmxid) END AS age,
                               pg_catalog.round(100.0 * CASE WHEN t.check_name = 'xid_age' THEN pg_catalog.age(x.datfrozenxid)
                                                             ELSE pg_catalog.mxid_age(x.datminmxid) END / 2147483648, 2) AS pct
                          FROM pg_catalog.pg_database x) w;
                v := r.pct;
                d := pg_catalog.format('database %s is %s %s old (%s %% of 2^31; %s is %s)',
                                       r.top -> 0 ->> 'database', r.top -> 0 ->> 'age',
                                       CASE WHEN t.check_name = 'xid_age' THEN 'transaction IDs' ELSE 'multixacts' END,
                                       r.pct,
                                       CASE WHEN t.check_name = 'xid_age' THEN 'autovacuum_freeze_max_age'
                                            ELSE 'autovacuum_multixact_freeze_max_age' END,
                                       pg_catalog.current_setting(CASE WHEN t.check_name = 'xid_age' THEN 'autovacuum_freeze_max_age'
                                                                       ELSE 'autovacuum_multixact_freeze_max_age' END));
                ev := coalesce((SELECT pg_catalog.jsonb_agg(e) FROM (SELECT e FROM pg_catalog.jsonb_array_elements(r.top) e LIMIT 5) x), '[]')
                      || coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                       'holds_xmin', h.kind, 'pid', h.pid, 'name', h.name, 'user', h.user_name, 'xmin_age', h.xmin_age))
                                     FROM (SELECT * FROM @extschema@.incident__xmin_holders() h
                                            ORDER BY h.xmin_age DESC NULLS LAST LIMIT 5) h), '[]');
            WHEN 'long_query', 'long_transaction', 'idle_in_transaction' THEN
                SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('pid', a.pid, 'user', a.usename,
                                                'application', a.application_name, 'database', a.datname,
                                                'state', a.state, 'seconds', a.secs, 'wait_event', a.wait_event)
                                            ORDER BY a.secs DESC) AS top,
                       pg_catalog.max(a.secs) AS secs
                  INTO r
                  FROM (SELECT s.pid, s.usename, s.application_name, s.datname, s.state, s.wait_event,
                               pg_catalog.round(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()
                                   - CASE t.check_name WHEN 'long_query' THEN s.query_start
                                                       WHEN 'long_transaction' THEN s.xact_start
                                                       ELSE s.state_change END)::numeric, 1) AS secs
                          FROM pg_catalog.pg_stat_activity s
                         WHERE s.backend_type = 'client backend'
                           AND s.pid <> pg_catalog.pg_backend_pid()
                           AND CASE t.check_name WHEN 'long_query' THEN s.state = 'active'
                                                 WHEN 'long_transaction' THEN s.xact_start IS NOT NULL
                                                 ELSE s.state LIKE 'idle in transaction%' END
                         ORDER BY 7 DESC LIMIT 5) a;
                v := coalesce(r.secs, 0);
                d := CASE WHEN r.secs IS NULL
                          THEN CASE t.check_name WHEN 'long_query' THEN 'no statement running'
                                                 WHEN 'long_transaction' THEN 'no transaction open'
                                                 ELSE 'no session idle in transaction' END
                          ELSE pg_catalog.format('pid %s (%s, %s) %s for %s',
                                                 r.top -> 0 ->> 'pid', r.top -> 0 ->> 'user',
                                                 coalesce(nullif(r.top -> 0 ->> 'application', ''), 'no application name'),
                                                 CASE t.check_name WHEN 'long_query' THEN 'has run one statement'
                                                                   WHEN 'long_transaction' THEN 'has had a transaction open'
                                                                   ELSE 'has sat idle in transaction' END,
                                                 pg_catalog.justify_interval(pg_catalog.make_interval(secs => pg_catalog.round(r.secs)::float8))) END;
                ev := coalesce(r.top, '[]');
            WHEN 'lock_wait' THEN
                SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('pid', b.pid, 'mode', b.mode, 'object', b.object,
                                                'seconds', b.secs, 'blocked_by', b.blocking_pids,
                                                'root_blocker_pid', b.root_blocker_pid) ORDER BY b.secs DESC) AS top,
                       pg_catalog.max(b.secs) AS secs, pg_catalog.count(*) AS n
                  INTO r
                  FROM (SELECT l.pid, l.mode, l.object, l.blocking_pids, l.root_blocker_pid,
                               pg_catalog.round(pg_catalog.date_part('epoch', l.wait_duration)::numeric, 1) AS secs
                          FROM @extschema@.incident_blocking_locks l
                         ORDER BY l.wait_duration DESC NULLS LAST LIMIT 5) b;
                v := coalesce(r.secs, 0);
                d := CASE WHEN r.secs IS NULL THEN 'no session waits for a lock'
                          ELSE pg_catalog.format('pid %s has waited %s s for %s on %s',
                                                 r.top -> 0 ->> 'pid', r.secs, r.top -> 0 ->> 'mode', r.top -> 0 ->> 'object') END;
                ev := coalesce(r.top, '[]');
            WHEN 'lock_blocked' THEN
                SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('root_pid', x.root_pid, 'root_prepared', x.root_prepared,
                                                'blocked_count', x.blocked_count, 'state', x.state, 'user', x.user_name,
                                                'application', x.application_name,
                                                'longest_wait_s', pg_catalog.round(pg_catalog.date_part('epoch', x.longest_wait)::numeric, 1))
                                            ORDER BY x.blocked_count DESC) AS top,
                       pg_catalog.max(x.blocked_count) AS n
                  INTO r
                  FROM (SELECT * FROM @extschema@.incident_lock_roots l ORDER BY l.blocked_count DESC LIMIT 5) x;
                v := coalesce(r.n, 0);
                d := CASE WHEN r.n IS NULL THEN 'no session blocks another'
                          ELSE pg_catalog.format('%s %s blocks %s session(s) (%s)',
                                                 CASE WHEN r.top -> 0 ->> 'root_pid' IS NULL THEN 'prepared transaction' ELSE 'pid' END,
                                                 coalesce(r.top -> 0 ->> 'root_pid', r.top -> 0 ->> 'root_prepared'),
                                                 r.n, coalesce(r.top -> 0 ->> 'state', 'state not known')) END;
                ev := coalesce(r.top, '[]');
            WHEN 'prepared_transaction' THEN
                SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('gid', p.gid, 'owner', p.owner, 'database', p.database,
                                                'seconds', p.secs) ORDER BY p.secs DESC) AS top,
                       pg_catalog.max(p.secs) AS secs
                  INTO r
                  FROM (SELECT x.gid, x.owner, x.database,
                               pg_catalog.round(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - x.prepared)::numeric, 1) AS secs
                          FROM pg_catalog.pg_prepared_xacts x ORDER BY x.prepared LIMIT 5) p;
                v := coalesce(r.secs, 0);
                d := CASE WHEN r.secs IS NULL THEN 'no prepared transaction'
                          ELSE pg_catalog.format('prepared transaction %s (%s) has waited %s s for COMMIT PREPARED or ROLLBACK PREPARED',
                                                 r.top -> 0 ->> 'gid', r.top -> 0 ->> 'owner', r.secs) END;
                ev := coalesce(r.top, '[]');
            WHEN 'replication_lag' THEN
                SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('standby', x.application_name, 'state', x.state,
                                                'client_addr', x.client_addr, 'replay_lag_s', x.secs) ORDER BY x.secs DESC NULLS LAST) AS top,
                       pg_catalog.max(x.secs) AS secs, pg_catalog.count(*) AS n
                  INTO r
                  FROM (SELECT s.application_name, s.state, s.client_addr,
                               pg_catalog.round(coalesce(pg_catalog.date_part('epoch', s.replay_lag), 0)::numeric, 1) AS secs
                          FROM pg_catalog.pg_stat_replication s) x;
                v := coalesce(r.secs, 0);
                d := CASE WHEN r.n = 0 THEN 'no standby connected'
                          ELSE pg_catalog.format('%s standby(s); %s replays %s s behind', r.n,
                                                 r.top -> 0 ->> 'standby', r.secs) END;
                ev := coalesce(r.top, '[]');
            WHEN 'slot_retained_wal' THEN
                SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('slot', x.slot_name, 'active', x.active,
                                                'wal_status', x.wal_status, 'retained_bytes', x.bytes) ORDER BY x.bytes DESC NULLS LAST) AS top,
                       pg_catalog.max(x.bytes) AS bytes, pg_catalog.count(*) AS n,
                       pg_catalog.bool_or(x.wal_status IN ('lost', 'unreserved')) AS lost
                  INTO r
                  FROM (SELECT s.slot_name, s.active, s.wal_status,
                               pg_catalog.pg_wal_lsn_diff(CASE WHEN pg_catalog.pg_is_in_recovery()
                                                               THEN pg_catalog.pg_last_wal_replay_lsn()
                                                               ELSE pg_catalog.pg_current_wal_lsn() END, s.restart_lsn) AS bytes
                          FROM pg_catalog.pg_replication_slots s) x;
                v := coalesce(r.bytes, 0);
                IF r.lost THEN
                    forced := 'critical';
                END IF;
                d := CASE WHEN r.n = 0 THEN 'no replication slot'
                          ELSE pg_catalog.format('slot %s (%s, wal_status %s) keeps %s of WAL',
                                                 r.top -> 0 ->> 'slot',
                                                 CASE WHEN (r.top -> 0 ->> 'active')::bool THEN 'active' ELSE 'inactive' END,
                                                 coalesce(r.top -> 0 ->> 'wal_status', 'unknown'),
                                                 pg_catalog.pg_size_pretty(coalesce(r.bytes, 0))) END;
                ev := coalesce(r.top, '[]');
            WHEN 'sequence_usage' THEN
                -- every sequence counts; only those the reader may read are named
                SELECT pg_catalog.jsonb_agg(CASE WHEN x.readable
                                                 THEN pg_catalog.jsonb_build_object('sequence', x.relid::text, 'owned_by', x.owned_by,
                                                                                    'used_pct', x.used_pct, 'remaining', x.remaining)
                                                 ELSE pg_catalog.jsonb_build_object('sequence', NULL, 'readable', false,
                                                                                    'used_pct', x.used_pct) END
                                            ORDER BY x.used_pct DESC) AS top,
                       pg_catalog.max(x.used_pct) AS pct
                  INTO r
                  FROM (SELECT u.*, pg_catalog.has_sequence_privilege(@extschema@.incident_invoker(), u.relid, 'SELECT,USAGE') AS readable
                          FROM @extschema@.incident__sequence_usage() u
                         WHERE u.used_pct IS NOT NULL ORDER BY u.used_pct DESC LIMIT 5) x;
                v := coalesce(r.pct, 0);
                d := CASE WHEN r.pct IS NULL THEN 'no sequence in use'
                          WHEN r.top -> 0 ->> 'sequence' IS NULL
                          THEN pg_catalog.format('a sequence you may not read has used %s %% of its range', r.pct)
                          ELSE pg_catalog.format('sequence %s%s has used %s %% of its range (%s values left)',
                                                 r.top -> 0 ->> 'sequence',
                                                 coalesce(' (' || (r.top -> 0 ->> 'owned_by') || ')', ''),
                                                 r.pct, r.top -> 0 ->> 'remaining') END;
                ev := coalesce(r.top, '[]');
            WHEN 'vacuum_overdue' THEN
                SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('table', x.relid::text, 'dead_rows', x.dead_rows,
                                                'vacuum_threshold', x.vacuum_threshold, 'last_vacuum', x.last_vacuum,
                                                'autovacuum_enabled', x.autovacuum_enabled, 'seconds', x.secs) ORDER BY x.secs DESC) AS top,
                       pg_catalog.max(x.secs) AS secs, pg_catalog.count(*) AS n
                  INTO r
                  FROM (SELECT vr.relid, vr.dead_rows, vr.vacuum_threshold, vr.last_vacuum, vr.autovacuum_enabled,
                               pg_catalog.round(pg_catalog.date_part('epoch', vr.since_vacuum)::numeric) AS secs
                          FROM @extschema@.incident_vacuum_recency vr
                         WHERE vr.needs_vacuum AND NOT vr.vacuum_running AND vr.last_vacuum IS NOT NULL
                         ORDER BY vr.since_vacuum DESC LIMIT 5) x;
                v := coalesce(r.secs, 0);
                d := CASE WHEN r.secs IS NULL THEN 'no table waits for a vacuum it needs'
                          ELSE pg_catalog.format('table %s is past its autovacuum threshold (%s dead rows) and was last vacuumed %s ago',
                                                 r.top -> 0 ->> 'table', r.top -> 0 ->> 'dead_rows',
                                                 pg_catalog.justify_interval(pg_catalog.make_interval(secs => r.secs::float8))) END;
                ev := coalesce(r.top, '[]');
            END CASE;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS problem = MESSAGE_TEXT;
            v := NULL;
            forced := 'warning';
            d := pg_catalog.format('could not check: %s', problem);
            ev := '[]';
        END;
        SELECT * INTO check_name, status, value, unit, warning, critical, detail, evidence
          FROM @extschema@.incident__health_row(t, v, d, ev, forced);
        RETURN NEXT;
    END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__health(text) IS
'Internal: runs every enabled check of incident_health_threshold (or only the one named, enabled or not) over every session, whoever calls, and judges it; a check that fails to run is a warning that says why. Its evidence names pids, roles, applications, databases, relations and ages, never a query''s text.';

CREATE VIEW @extschema@.incident_health AS
SELECT h.check_name, h.status, h.value, h.unit, h.warning, h.critical, h.detail, h.evidence
  FROM @extschema@.incident__health(NULL) h;

COMMENT ON VIEW @extschema@.incident_health IS
'One row per health check of the database: connections, transaction ID and multixact age, long queries and transactions, idle in transaction, lock waits and blockers, prepared transactions, replication lag and slots, sequences and overdue vacuums, each ok, warning or critical against incident_health_threshold. It sees every session whoever reads it, and shows no query text.';
COMMENT ON COLUMN @extschema@.incident_health.check_name IS 'The check (a row of incident_health_threshold).';
COMMENT ON COLUMN @extschema@.incident_health.status IS 'ok, warning (value at or past warning, or the check could not run) or critical (at or past critical; also a replication slot whose WAL is lost or about to be).';
COMMENT ON COLUMN @extschema@.incident_health.value IS 'What the check measured, in unit; NULL when it could not run.';
COMMENT ON COLUMN @extschema@.incident_health.unit IS 'percent, seconds, sessions or bytes.';
COMMENT ON COLUMN @extschema@.incident_health.warning IS 'The threshold of a warning, from incident_health_threshold.';
COMMENT ON COLUMN @extschema@.incident_health.critical IS 'The threshold of critical.';
COMMENT ON COLUMN @extschema@.incident_health.detail IS 'One line on the worst case, such as "pid 4242 (app, shop) has sat idle in transaction for 00:20:00".';
COMMENT ON COLUMN @extschema@.incident_health.evidence IS 'The worst cases as a JSON array (up to 5 or 10 objects: pids, roles, applications, relations, ages), for the timeline of an incident.';

CREATE FUNCTION @extschema@.incident_health_level(check_name text)
RETURNS int
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text;
BEGIN
    IF check_name IS NULL THEN
        RAISE EXCEPTION 'check_name must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Name a check of incident_health_threshold, such as connections or lock_blocked.';
    END IF;
    IF NOT EXISTS (SELECT FROM @extschema@.incident_health_threshold t WHERE t.check_name = incident_health_level.check_name) THEN
        RAISE EXCEPTION 'unrecognized health check "%"', @extschema@.incident__quote(check_name)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The checks are the rows of incident_health_threshold, such as connections or lock_blocked.';
    END IF;
    SELECT h.status INTO s FROM @extschema@.incident__health(incident_health_level.check_name) h;
    RETURN CASE s WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 WHEN 'ok' THEN 0 END;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_health_level(text) IS
'The status of one incident_health check as a number, for a SQL probe: 0 ok, 1 warning, 2 critical (a check disabled in incident_health_threshold still runs here). The built-in probes db-<check> call it with warn 0 and crit 1: degraded at a warning, failing when critical.';

------------------------------------------------------------------------------
-- What changed: DDL, privileges, roles and settings
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_change (
    id               bigserial PRIMARY KEY,
    at               timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    kind             text NOT NULL CHECK (kind IN ('ddl', 'drop', 'privilege', 'role', 'setting')),
    command_tag      text NOT NULL,
    object_type      text,
    object_identity  text,
    schema_name      name,
    role_name        name NOT NULL,
    session_role     name NOT NULL,
    application_name text,
    client_addr      inet,
    statement        text
);

CREATE INDEX incident_change_at_idx ON @extschema@.incident_change (at);

COMMENT ON TABLE @extschema@.incident_change IS
'What was changed in this database and when, for the playbook''s "change analysis": DDL and drops (recorded by the event triggers incident_ddl_end and incident_sql_drop), GRANT and REVOKE on objects and default privileges, and, while pg_incident is in shared_preload_libraries, role changes and ALTER SYSTEM made from this database. Rows cannot be updated; incident_admin may delete old ones.';
COMMENT ON COLUMN @extschema@.incident_change.at IS 'When the command completed (the clock time, not the start of its transaction).';
COMMENT ON COLUMN @extschema@.incident_change.kind IS 'ddl (create or alter), drop, privilege (GRANT, REVOKE, ALTER DEFAULT PRIVILEGES), role (CREATE, ALTER, DROP ROLE, GRANT role) or setting (ALTER SYSTEM).';
COMMENT ON COLUMN @extschema@.incident_change.command_tag IS 'The command, as its completion tag: CREATE INDEX, ALTER TABLE, DROP TABLE, GRANT ...';
COMMENT ON COLUMN @extschema@.incident_change.object_type IS 'The kind of object, as pg_event_trigger_ddl_commands() names it: table, index, function, TABLE (for GRANT) ...';
COMMENT ON COLUMN @extschema@.incident_change.object_identity IS 'The object, schema-qualified; for role changes the role(s), for ALTER SYSTEM the setting; NULL for GRANT and REVOKE, whose objects statement shows.';
COMMENT ON COLUMN @extschema@.incident_change.role_name IS 'The role the command ran as (current_user).';
COMMENT ON COLUMN @extschema@.incident_change.session_role IS 'The role that logged in (session_user): who to ask.';
COMMENT ON COLUMN @extschema@.incident_change.statement IS 'For privilege, role and setting changes, the command rebuilt from its parse tree (at most 1000 characters): roles, options, privileges and objects by name, never a password, and a setting''s value only for a built-in setting every role may SHOW; never the text the client sent. NULL for DDL, whose object says what changed.';

CREATE FUNCTION @extschema@.incident__refuse_change_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'cannot UPDATE %: the change log is a record of what happened', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Delete rows that are past keeping, as incident_admin; nothing else edits them.';
END
$$;

COMMENT ON FUNCTION @extschema@.incident__refuse_change_update() IS
'Internal trigger: refuses UPDATE of incident_change.';

CREATE TRIGGER incident_change_no_update
    BEFORE UPDATE ON @extschema@.incident_change
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__refuse_change_update();
ALTER TABLE @extschema@.incident_change ENABLE ALWAYS TRIGGER incident_change_no_update;

CREATE FUNCTION @extschema@.incident__grant_text(command pg_catalog.pg_ddl_command)
RETURNS text
AS 'MODULE_PATHNAME', 'incident_grant_text'
LANGUAGE C STABLE STRICT;

COMMENT ON FUNCTION @extschema@.incident__grant_text(pg_catalog.pg_ddl_command) IS
'Internal, for incident_ddl_end: a GRANT, REVOKE or ALTER DEFAULT PRIVILEGES rebuilt from the collected command (privileges, objects by identity, the first 10 named, grantees), never from the client''s text; NULL for other commands.';

CREATE FUNCTION @extschema@.incident__record_change(kind text, command_tag text, object_type text,
                                                    object_identity text, schema_name name, statement text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.pg_is_in_recovery() OR pg_catalog.current_setting('transaction_read_only')::bool THEN
        RETURN;
    END IF;
    INSERT INTO @extschema@.incident_change
        (kind, command_tag, object_type, object_identity, schema_name, role_name, session_role,
         application_name, client_addr, statement)
    VALUES (kind, command_tag, object_type, object_identity, schema_name,
            @extschema@.incident_invoker(), session_user,
            nullif(pg_catalog.current_setting('application_name'), ''), pg_catalog.inet_client_addr(),
            pg_catalog.left(statement, 1000));
END
$$;

COMMENT ON FUNCTION @extschema@.incident__record_change(text, text, text, text, name, text) IS
'Internal: appends a row to incident_change for the calling role and session (nothing on a standby or in a read-only transaction); statement is what the caller rebuilt from the parsed command, never client text.';

CREATE FUNCTION @extschema@.incident__ddl_end()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    problem text;
BEGIN
    -- A change log never stands in the way of the change: any failure here
    -- is a WARNING, and the command goes through.
    BEGIN
        FOR r IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() c
                  WHERE NOT c.in_extension AND c.schema_name IS DISTINCT FROM 'pg_temp' LOOP
            PERFORM @extschema@.incident__record_change(
                CASE WHEN r.command_tag IN ('GRANT', 'REVOKE', 'ALTER DEFAULT PRIVILEGES') THEN 'privilege' ELSE 'ddl' END,
                r.command_tag, r.object_type, r.object_identity, r.schema_name,
                CASE WHEN r.command_tag IN ('GRANT', 'REVOKE', 'ALTER DEFAULT PRIVILEGES') THEN @extschema@.incident__grant_text(r.command) END);
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS problem = MESSAGE_TEXT;
        RAISE WARNING 'pg_incident could not record the change in incident_change: %', problem;
    END;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__ddl_end() IS
'Internal event trigger function (incident_ddl_end): records each command of a DDL statement, outside extension scripts, in incident_change; a failure to record is a WARNING and never stops the command.';

CREATE FUNCTION @extschema@.incident__sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    problem text;
BEGIN
    BEGIN
        -- dropping pg_incident itself leaves nothing to record into
        IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger_dropped_objects() d
                    WHERE d.object_type = 'extension' AND d.object_name = 'pg_incident') THEN
            RETURN;
        END IF;
        FOR r IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects() d
                  WHERE NOT d.is_temporary
                    AND (d.original OR (d.normal AND d.object_type IN ('table', 'view', 'materialized view', 'foreign table',
                                                                         'sequence', 'function', 'procedure', 'index')))
                  ORDER BY d.original DESC LOOP
            PERFORM @extschema@.incident__record_change('drop', TG_TAG, r.object_type, r.object_identity,
                                                        r.schema_name, NULL);
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS problem = MESSAGE_TEXT;
        RAISE WARNING 'pg_incident could not record the change in incident_change: %', problem;
    END;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__sql_drop() IS
'Internal event trigger function (incident_sql_drop): records each object a DROP removed (the one named, and the tables, views, sequences, functions and indexes dropped with it by CASCADE, not its own indexes, types and rules), except temporary ones, in incident_change.';

CREATE EVENT TRIGGER incident_ddl_end ON ddl_command_end
    EXECUTE FUNCTION @extschema@.incident__ddl_end();
CREATE EVENT TRIGGER incident_sql_drop ON sql_drop
    EXECUTE FUNCTION @extschema@.incident__sql_drop();

CREATE FUNCTION @extschema@.incident__setting_pending(name text, vartype text, running text, file_value text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'incident_setting_pending'
LANGUAGE C STABLE STRICT;

COMMENT ON FUNCTION @extschema@.incident__setting_pending(text, text, text, text) IS
'Internal: whether a value of the configuration files, read as the setting reads values (units, on/off), differs from the running one (pg_settings.setting).';

CREATE FUNCTION @extschema@.incident__setting_secret(name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'incident_setting_secret'
LANGUAGE C STABLE STRICT;

COMMENT ON FUNCTION @extschema@.incident__setting_secret(text) IS
'Internal: whether a setting''s value is for superusers alone (primary_conninfo and the like), hidden from SHOW ALL, or the setting is unknown.';

CREATE FUNCTION @extschema@.incident__pending_settings(
    OUT name text, OUT setting text, OUT pending text, OUT sourcefile text, OUT sourceline int,
    OUT pending_restart boolean, OUT changed_at timestamptz)
RETURNS SETOF record
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- the last line of the configuration files for each setting, where it
    -- differs from what the server runs with: a reload or restart is
    -- pending. A postmaster setting the running server cannot take says
    -- "setting could not be applied"; a setting a session, role or
    -- database overrides cannot be compared, and is left out.
    SELECT f.name,
           CASE WHEN NOT f.secret THEN s.setting || coalesce(s.unit, '') END, CASE WHEN NOT f.secret THEN f.setting END,
           f.sourcefile, f.sourceline, s.context = 'postmaster',
           (SELECT m.modification FROM pg_catalog.pg_stat_file(f.sourcefile, true) m)
      FROM (SELECT DISTINCT ON (x.name) x.*, @extschema@.incident__setting_secret(x.name) AS secret
              FROM pg_catalog.pg_file_settings x
             ORDER BY x.name, x.seqno DESC) f
      JOIN pg_catalog.pg_settings s ON s.name = f.name
     WHERE (f.error IS NULL OR (s.context = 'postmaster' AND f.error = 'setting could not be applied'))
       AND s.context <> 'internal'
       AND (s.context IN ('postmaster', 'sighup') OR s.source IN ('default', 'configuration file'))
       AND @extschema@.incident__setting_pending(s.name, s.vartype, s.setting, f.setting)
$$;

COMMENT ON FUNCTION @extschema@.incident__pending_settings() IS
'Internal: settings whose configuration files say something the server does not run with yet (a reload or a restart is pending), whoever calls, dated by the file''s modification; names, and values except those of superuser-only settings.';

CREATE VIEW @extschema@.incident_recent_changes AS
SELECT c.at, c.kind, c.command_tag AS command, c.object_type, c.object_identity AS object,
       c.role_name, c.session_role, c.application_name, c.client_addr, c.statement
  FROM @extschema@.incident_change c
UNION ALL
SELECT pg_catalog.pg_postmaster_start_time(), 'server', 'server started', NULL, NULL,
       NULL, NULL, NULL, NULL, NULL
UNION ALL
SELECT pg_catalog.pg_conf_load_time(), 'server', 'configuration reloaded', NULL, NULL,
       NULL, NULL, NULL, NULL, NULL
 WHERE pg_catalog.pg_conf_load_time() > pg_catalog.pg_postmaster_start_time() + interval '1 second'
UNION ALL
SELECT coalesce(p.changed_at, pg_catalog.pg_conf_load_time()), 'setting',
       CASE WHEN p.pending_restart THEN 'pending restart' ELSE 'pending reload' END,
       'setting', p.name, NULL, NULL, NULL, NULL,
       CASE WHEN p.pending IS NULL
            THEN pg_catalog.format('%s changed in %s line %s (its value is for superusers only)', p.name,
                                   p.sourcefile, p.sourceline)
            ELSE pg_catalog.format('%s = %s in %s line %s; the server runs with %s', p.name, p.pending,
                                   p.sourcefile, p.sourceline, p.setting) END
  FROM @extschema@.incident__pending_settings() p;

COMMENT ON VIEW @extschema@.incident_recent_changes IS
'What changed, for ORDER BY at DESC: the change log (DDL, drops, privileges, roles and ALTER SYSTEM), when the server started and last reloaded its configuration, and settings changed in the configuration files that wait for a reload or a restart (dated by the file''s modification). WHERE at > now() - interval ''6 hours'' for the playbook''s "review recent deployments".';
COMMENT ON COLUMN @extschema@.incident_recent_changes.kind IS 'ddl, drop, privilege, role, setting or server.';
COMMENT ON COLUMN @extschema@.incident_recent_changes.command IS 'The command tag (CREATE INDEX, ALTER SYSTEM ...), or server started, configuration reloaded, pending reload, pending restart.';
COMMENT ON COLUMN @extschema@.incident_recent_changes.object IS 'The object changed, or the setting''s name.';
COMMENT ON COLUMN @extschema@.incident_recent_changes.statement IS 'For privilege, role and setting rows, the statement (literals redacted) or what the configuration file says.';

-- The changes of the hours before a declaration go on its timeline, as the
-- first lead of the root-cause analysis.
CREATE FUNCTION @extschema@.incident__note_recent_changes(inc @extschema@.incident, at timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hours int := coalesce(pg_catalog.current_setting('pg_incident.recent_changes_hours', true), '6')::int;
    n bigint;
    recent jsonb;
BEGIN
    IF hours = 0 THEN
        RETURN;
    END IF;
    SELECT pg_catalog.count(*),
           pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('at', x.at, 'kind', x.kind, 'command', x.command,
                                                              'object', x.object, 'role', x.session_role)
                                ORDER BY x.at DESC) FILTER (WHERE x.rn <= 20)
      INTO n, recent
      -- roles, settings and privileges first: twenty cheap CREATE INDEX
      -- must not push the ALTER SYSTEM that matters out of the note
      FROM (SELECT r.*, pg_catalog.row_number() OVER (ORDER BY r.kind IN ('role', 'setting', 'privilege', 'server') DESC,
                                                               r.at DESC) AS rn
              FROM @extschema@.incident_recent_changes r
             WHERE r.at > incident__note_recent_changes.at - pg_catalog.make_interval(hours => hours)
               AND r.at <= incident__note_recent_changes.at) x;
    IF n = 0 THEN
        RETURN;
    END IF;
    PERFORM @extschema@.incident__event(inc, 'note', 'pg_incident',
        pg_catalog.format('%s change(s) in the %s hour(s) before the declaration; the latest: %s%s%s (see incident_recent_changes)',
                          n, hours, recent -> 0 ->> 'command',
                          coalesce(' ' || (recent -> 0 ->> 'object'), ''),
                          coalesce(' by ' || (recent -> 0 ->> 'role'), '')),
        pg_catalog.jsonb_build_object('recent_changes', recent, 'count', n, 'hours', hours),
        at);
END
$$;

COMMENT ON FUNCTION @extschema@.incident__note_recent_changes(@extschema@.incident, timestamptz) IS
'Internal, for incident_declare(): when anything changed in the pg_incident.recent_changes_hours before the declaration (DDL, privileges, roles, settings, a restart or reload), adds a note to the new incident with the count and 20 changes (role, setting, privilege and server ones first, then the latest).';

------------------------------------------------------------------------------
-- Built-in database probes
------------------------------------------------------------------------------

-- Each check is also a SQL probe the background worker runs, with the probe
-- machinery (hysteresis, one incident per component, maintenance windows,
-- incident_probe_status): db-<check> returns incident_health_level(check),
-- so that a warning makes it degraded and critical failing. The seeded
-- probes have fixed negative ids, the same in every installation, so that
-- a dump restored into a new one finds them where they were.
ALTER TABLE @extschema@.incident_probe
    ADD COLUMN health_check text
        REFERENCES @extschema@.incident_health_threshold (check_name) ON DELETE CASCADE,
    ADD COLUMN is_default boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN @extschema@.incident_probe.health_check IS 'For a built-in database probe, the incident_health check it runs: the incidents it declares get the check''s detail and evidence on their timeline.';
COMMENT ON COLUMN @extschema@.incident_probe.is_default IS 'True while a built-in probe is as seeded; editing it clears the flag so that pg_dump keeps the edit.';

INSERT INTO @extschema@.incident_probe
    (id, name, kind, every, timeout, failures, recoveries, severity, component, query, warn, crit, run_as,
     health_check, created_by, is_default)
SELECT v.id, 'db-' || pg_catalog.replace(v.check_name, '_', '-'), 'sql', v.every::interval, '20 seconds', v.failures, 2,
       v.severity, 'database',
       pg_catalog.format('SELECT @extschema@.incident_health_level(%L)', v.check_name), 0, 1, 'incident_viewer',
       v.check_name, 'pg_incident', true
  FROM (VALUES (-1, 'connections', '30 seconds', 3, 'P1'),
               (-2, 'xid_age', '1 minute', 2, 'P1'),
               (-3, 'mxid_age', '1 minute', 2, 'P1'),
               (-4, 'lock_blocked', '30 seconds', 3, 'P2'),
               (-5, 'lock_wait', '30 seconds', 3, 'P2'),
               (-6, 'idle_in_transaction', '1 minute', 2, 'P3'),
               (-7, 'long_query', '1 minute', 2, 'P3'),
               (-8, 'long_transaction', '1 minute', 2, 'P3'),
               (-9, 'prepared_transaction', '1 minute', 2, 'P3'),
               (-10, 'replication_lag', '30 seconds', 3, 'P2'),
               (-11, 'slot_retained_wal', '1 minute', 2, 'P2'),
               (-12, 'sequence_usage', '5 minutes', 1, 'P2'),
               (-13, 'vacuum_overdue', '5 minutes', 1, 'P3')) v(id, check_name, every, failures, severity);

INSERT INTO @extschema@.incident_probe_state (probe_id, since, next_run_at)
SELECT p.id, pg_catalog.clock_timestamp(), pg_catalog.clock_timestamp()
  FROM @extschema@.incident_probe p WHERE p.health_check IS NOT NULL;

SELECT @extschema@.incident__seeded_table('@extschema@.incident_probe', 'name');
-- a pristine built-in probe is not dumped, and no built-in probe's state is:
-- the restore's CREATE EXTENSION makes both anew
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_probe_state', 'WHERE probe_id > 0');

-- how often, how many failures, how severe and whether at all are the
-- admin's to change in place; the rest through incident_probe_sql()
GRANT SELECT (health_check, is_default) ON @extschema@.incident_probe TO incident_viewer;
GRANT UPDATE (every, timeout, failures, recoveries, severity, component, enabled, resolve_on_recovery)
   ON @extschema@.incident_probe TO incident_admin;

GRANT EXECUTE ON FUNCTION @extschema@.incident__relation_bytes(oid), @extschema@.incident__sequence_last_value(oid),
                          @extschema@.incident__connection_limit(), @extschema@.incident__connection_counts(),
                          @extschema@.incident__xmin_holders(), @extschema@.incident__sequence_usage(),
                          @extschema@.incident__health(text), @extschema@.incident_health_level(text),
                          @extschema@.incident__pending_settings()
   TO incident_viewer;
GRANT SELECT ON @extschema@.incident_table_sizes, @extschema@.incident_connections, @extschema@.incident_long_transactions,
                @extschema@.incident_wraparound, @extschema@.incident_xmin_horizon, @extschema@.incident_replication,
                @extschema@.incident_vacuum_recency, @extschema@.incident_sequences,
                @extschema@.incident_health_threshold, @extschema@.incident_health,
                @extschema@.incident_change, @extschema@.incident_recent_changes
   TO incident_viewer;
GRANT DELETE ON @extschema@.incident_change TO incident_admin;
GRANT INSERT, UPDATE, DELETE ON @extschema@.incident_health_threshold TO incident_admin;

------------------------------------------------------------------------------
-- Top queries (pg_stat_statements)
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident_top_queries(order_by text DEFAULT 'total_time', top int DEFAULT 20,
    OUT rank int, OUT user_name name, OUT database name, OUT calls bigint, OUT total_time_ms numeric,
    OUT mean_time_ms numeric, OUT max_time_ms numeric, OUT rows bigint, OUT time_pct numeric,
    OUT shared_blks_hit bigint, OUT shared_blks_read bigint, OUT hit_pct numeric,
    OUT temp_blks_written bigint, OUT queryid bigint, OUT query text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pss text;
    problem text;
    sort text;
BEGIN
    sort := CASE pg_catalog.lower(pg_catalog.btrim(order_by))
                WHEN 'total_time' THEN 's.total_exec_time'
                WHEN 'mean_time' THEN 's.mean_exec_time'
                WHEN 'calls' THEN 's.calls'
                WHEN 'rows' THEN 's.rows'
                WHEN 'io' THEN 's.shared_blks_read'
                WHEN 'temp' THEN 's.temp_blks_written' END;
    IF order_by IS NULL OR top IS NULL THEN
        RAISE EXCEPTION '% must not be null', CASE WHEN order_by IS NULL THEN 'order_by' ELSE 'top' END
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Leave it out for the default: total_time, 20 queries.';
    END IF;
    IF sort IS NULL THEN
        RAISE EXCEPTION 'invalid order_by "%"', @extschema@.incident__quote(order_by)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Order by total_time, mean_time, calls, rows, io (blocks read) or temp (temporary blocks written).';
    END IF;
    IF top < 1 OR top > 1000 THEN
        RAISE EXCEPTION 'invalid top "%"', top
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Ask for 1 to 1000 queries.';
    END IF;
    SELECT pg_catalog.quote_ident(n.nspname) INTO pss
      FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_stat_statements';
    IF pss IS NULL THEN
        RAISE EXCEPTION 'pg_stat_statements is not installed in this database'
            USING ERRCODE = 'undefined_object',
                  DETAIL = 'incident_top_queries() reads the statistics of the pg_stat_statements extension.',
                  HINT = 'Add pg_stat_statements to shared_preload_libraries, restart, then CREATE EXTENSION pg_stat_statements.';
    END IF;
    BEGIN
        RETURN QUERY EXECUTE pg_catalog.format(
            'SELECT (pg_catalog.row_number() OVER (ORDER BY %1$s DESC))::int,'
            '       r.rolname, d.datname, s.calls,'
            '       pg_catalog.round(s.total_exec_time::numeric, 1), pg_catalog.round(s.mean_exec_time::numeric, 2),'
            '       pg_catalog.round(s.max_exec_time::numeric, 1), s.rows,'
            '       pg_catalog.round((100 * s.total_exec_time / nullif(pg_catalog.sum(s.total_exec_time) OVER (), 0))::numeric, 1),'
            '       s.shared_blks_hit, s.shared_blks_read,'
            '       pg_catalog.round(100.0 * s.shared_blks_hit / nullif(s.shared_blks_hit + s.shared_blks_read, 0), 1),'
            '       s.temp_blks_written, s.queryid, s.query'
            '  FROM %2$s.pg_stat_statements s'
            '  LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid'
            '  LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid'
            ' WHERE s.toplevel'
            ' ORDER BY %1$s DESC LIMIT %3$s', sort, pss, top);
    EXCEPTION WHEN undefined_column THEN
        GET STACKED DIAGNOSTICS problem = MESSAGE_TEXT;
        RAISE EXCEPTION 'pg_stat_statements is too old here'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = pg_catalog.format('PostgreSQL says: %s.', problem),
                  HINT = 'ALTER EXTENSION pg_stat_statements UPDATE (pg_incident reads version 1.9 or later).';
    WHEN object_not_in_prerequisite_state THEN
        GET STACKED DIAGNOSTICS problem = MESSAGE_TEXT;
        RAISE EXCEPTION 'pg_stat_statements is installed but not loaded'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('PostgreSQL says: %s.', problem),
                  HINT = 'Add pg_stat_statements to shared_preload_libraries and restart the server.';
    END;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_top_queries(text, int) IS
'The performance runbook''s "review slow query log": the top statements of pg_stat_statements (top-level ones, all databases) ordered by total_time (default), mean_time, calls, rows, io or temp, with their share of all execution time and their cache hit ratio. Runs as its caller, so a role without pg_read_all_stats sees other roles'' query text as <insufficient privilege>. Says so, with what to do, when pg_stat_statements is not installed or not loaded.';

GRANT EXECUTE ON FUNCTION @extschema@.incident_top_queries(text, int) TO incident_viewer;
-- <<< extension/82_health.sql

------------------------------------------------------------------------------
-- Last: nothing is callable by PUBLIC (99_finish.sql)
------------------------------------------------------------------------------

SELECT @extschema@.incident__revoke_public();
