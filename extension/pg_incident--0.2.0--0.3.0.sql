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
-- Last: nothing is callable by PUBLIC (99_finish.sql)
------------------------------------------------------------------------------

SELECT @extschema@.incident__revoke_public();
