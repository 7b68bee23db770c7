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
