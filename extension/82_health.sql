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
