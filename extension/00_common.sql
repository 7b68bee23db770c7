/* extension/00_common.sql: what every feature of pg_incident builds on.
 *
 * The C helpers that tell pg_incident's time zone, its notion of now and who
 * called; the three roles through which users reach everything; the time
 * zone check of calendars and rotations; the trigger through which a cached
 * configuration table tells backends that it changed; and the machinery that
 * lets pg_dump keep users' edits to seeded configuration, which a feature
 * attaches to each of its seeded tables with incident__seeded_table().
 *
 * make joins extension/[0-9][0-9]_*.sql, in name order, into the install
 * script of the current version; each file holds the current definitions of
 * its feature's objects.
 */

------------------------------------------------------------------------------
-- Roles
------------------------------------------------------------------------------

-- Users reach pg_incident through three roles; nothing of it is callable by
-- PUBLIC (incident__revoke_public() at the end of every script sees to that).
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['incident_viewer', 'incident_responder', 'incident_admin'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;

GRANT incident_viewer TO incident_responder;
GRANT incident_responder TO incident_admin;

GRANT USAGE ON SCHEMA @extschema@ TO incident_viewer;

------------------------------------------------------------------------------
-- C helpers (src/pg_incident.c)
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident_timezone()
RETURNS text
AS 'MODULE_PATHNAME', 'incident_timezone'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_timezone() IS
'The time zone in which incident codes take their day: pg_incident.timezone, or the server''s own zone (log_timezone) when that is empty.';

CREATE FUNCTION @extschema@.incident_now()
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'incident_now'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_now() IS
'pg_incident''s notion of now: the transaction start time, or the test clock pg_incident.clock when a superuser has set it.';

CREATE FUNCTION @extschema@.incident__act_now()
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'incident__act_now'
LANGUAGE C VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident__act_now() IS
'Internal: the time of an act: the clock time, or the test clock pg_incident.clock when a superuser has set it.';

CREATE FUNCTION @extschema@.incident_invoker()
RETURNS text
AS 'MODULE_PATHNAME', 'incident_invoker'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_invoker() IS
'The role that called into pg_incident (the session''s current role), also from inside SECURITY DEFINER functions; recorded as the actor of timeline events.';

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
        RAISE EXCEPTION 'invalid time zone "%" for %', @extschema@.incident__quote(time_zone), what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a name from pg_timezone_names, such as "Europe/Berlin" or "UTC".';
    END IF;
    RETURN time_zone;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__require_timezone(text, text) IS
'Internal: the time zone name, or an error naming it and what it was given for (a calendar, a rotation).';

GRANT EXECUTE ON FUNCTION @extschema@.incident_timezone(), @extschema@.incident_now(), @extschema@.incident_invoker(),
                          @extschema@.incident_timezone_valid(text)
   TO incident_viewer;

-- Modules that compile a configuration table once per backend (the
-- classifier's rules, the calendars) learn of its changes through this
-- statement trigger.

CREATE FUNCTION @extschema@.incident__config_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'incident__config_changed'
LANGUAGE C;

COMMENT ON FUNCTION @extschema@.incident__config_changed() IS
'Internal trigger: after a change to a configuration table that backends cache (classification rules, calendars), tells every backend (this one at the end of the command, the others when the change commits) to read it again.';

------------------------------------------------------------------------------
-- Seeded configuration and the triggers that let pg_dump keep users' edits
------------------------------------------------------------------------------

-- Rows seeded by this script carry is_default = true. Editing a row clears the
-- flag; pg_dump keeps only rows whose flag is false, and when such a row is
-- restored over a pristine seeded row with the same key, it replaces it.

CREATE FUNCTION @extschema@.incident__mark_edited()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (pg_catalog.to_jsonb(NEW) - 'is_default') IS DISTINCT FROM (pg_catalog.to_jsonb(OLD) - 'is_default') THEN
        NEW.is_default := false;
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__mark_edited() IS
'Internal trigger: a seeded configuration row that is edited stops being a default, so pg_dump keeps it.';

CREATE FUNCTION @extschema@.incident__replace_default()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key_match text;
    assignments text;
    existing_default boolean;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format('t.%1$I = ($1).%1$I', k), ' AND ')
      INTO key_match
      FROM pg_catalog.unnest(TG_ARGV) AS k;
    EXECUTE pg_catalog.format('SELECT t.is_default FROM %I.%I t WHERE %s FOR UPDATE',
                              TG_TABLE_SCHEMA, TG_TABLE_NAME, key_match)
       INTO existing_default USING NEW;
    IF existing_default IS NOT TRUE THEN
        RETURN NEW;             -- a new key, or an edited row: an ordinary insert
    END IF;

    SELECT pg_catalog.string_agg(pg_catalog.format('%1$I = ($1).%1$I', a.attname), ', ')
      INTO assignments
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE pg_catalog.format('UPDATE %I.%I t SET %s WHERE %s',
                              TG_TABLE_SCHEMA, TG_TABLE_NAME, assignments, key_match)
      USING NEW;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__replace_default() IS
'Internal trigger: inserting a row whose key matches a pristine seeded row replaces that row, which is how pg_dump restores edited defaults.';

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

SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_deleted_default', '');

GRANT SELECT ON @extschema@.incident_deleted_default TO incident_viewer;

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
-- Privileges
------------------------------------------------------------------------------

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
