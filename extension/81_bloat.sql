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
