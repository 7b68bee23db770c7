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

CREATE FUNCTION @extschema@.incident__row_label(rel regclass, r jsonb)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- 'rotation "on-call"', 'rotation member (rotation "on-call", position "2")',
    -- or just 'rotation' while the key is not known; r holds the row's values as text
    SELECT pg_catalog.replace(pg_catalog.regexp_replace(c.relname, '^incident_', ''), '_', ' ')
           || CASE WHEN pg_catalog.count(a.attname) = 0 OR pg_catalog.bool_or(coalesce(r ->> a.attname, '') = '') THEN ''
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
            SELECT pg_catalog.string_agg(pg_catalog.format('%s "%s"', col, @extschema@.incident__quote(r ->> col)), ' and ')
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
            SELECT pg_catalog.string_agg(@extschema@.incident__quote(r ->> col), ', ') INTO given
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
'Internal trigger (<table>_validate): refuses a configuration row that breaks a NOT NULL, CHECK or FOREIGN KEY constraint of its table with an error naming the table, column and value, the rule as detail and the constraint''s comment as hint.';

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

------------------------------------------------------------------------------
-- Last: nothing is callable by PUBLIC (99_finish.sql)
------------------------------------------------------------------------------

SELECT @extschema@.incident__revoke_public();
