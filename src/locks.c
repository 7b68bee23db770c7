/*-------------------------------------------------------------------------
 *
 * locks.c
 *		Who waits for whom: the lock wait-for graph from one look at the
 *		lock manager.
 *
 * incident__lock_waits() returns one row per process waiting for a
 * heavyweight lock, with what it waits for, who blocks it and the root of
 * its chain. The views incident_blocking_locks and incident_lock_roots
 * join these rows with pg_stat_activity and pg_prepared_xacts.
 *
 * The look: every lock partition is locked in shared mode, in order (as
 * pg_locks does), so that the lock manager cannot change meanwhile. Then
 * only the locks that somebody waits for are read: for each process with a
 * waitLock, that lock's holders (its PROCLOCKs, with the modes each holds)
 * and its wait queue, in queue order. The partition locks are released
 * before anything else is done. Fast-path locks need no look: they are
 * weak relation locks, and a process that asks for a conflicting lock moves
 * them into the main table before it waits, so every holder that can block
 * a waiter is there.
 *
 * The graph: waiter W, wanting mode M on a lock, is blocked
 *	- hard, by each holder of a mode that conflicts with M;
 *	- soft, by each process ahead of it in the lock's wait queue that wants
 *	  a mode conflicting with M (it will be granted first, so W waits for it
 *	  too), as pg_blocking_pids() counts it.
 * Members of one lock group (a parallel query's leader and its workers)
 * never block each other, and a blocker is named by its group's leader, so
 * a parallel query shows as the one session a user can cancel. A prepared
 * transaction, which holds its locks without a process, is a node of its
 * own, named by its transaction id. The root of a chain is a blocker that
 * waits for nothing; a waiter's roots are every root it reaches, its
 * chain_depth the number of steps to the nearest one. Waiters that reach no
 * root wait in a cycle: a deadlock that the deadlock detector has not yet
 * broken.
 *
 * The cost is one pass over the processes and, for each lock waited for,
 * its holders and queue: with 25,000 locks held and a few waited for, the
 * held locks that nobody waits for are never read.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "pg_incident.h"

/* the columns of incident__lock_waits() */
#define LOCKS_COLUMNS 24

/* ------------------------------------------------------------------------
 * Forward declarations
 * ------------------------------------------------------------------------
 */

/* a process on a lock: a holder (hold_mask) or a waiter (want_mode) */
typedef struct LocksMember
{
	int			pid;			/* 0: a prepared transaction */
	int			leader_pid;		/* its lock group's leader, or itself */
	TransactionId prepared_xid; /* of a prepared transaction */
	LOCKMASK	hold_mask;
	LOCKMODE	want_mode;
	TimestampTz wait_start;		/* 0: not known yet */
} LocksMember;

/* a lock that somebody waits for, as read under the partition locks */
typedef struct LocksLock
{
	LOCK	   *lock;			/* hash key: the shared lock object */
	LOCKTAG		tag;
	const LOCKMASK *conflicts;
	LOCKMETHODID method;
	int			nholders;
	LocksMember *holders;
	int			nwaiters;
	LocksMember *waiters;		/* in queue order */
} LocksLock;

/* a node of the graph: a session (a lock group's leader) or a prepared xact */
typedef struct LocksNode
{
	int64		key;			/* hash key: see locks_node_key */
	int			index;
	int			pid;			/* 0: a prepared transaction */
	TransactionId prepared_xid;
	int			nedges;
	int			maxedges;
	int		   *edges;			/* indexes of the nodes that block it */
	bool		waiting;
} LocksNode;

/* one waiting process and the edges of its own wait */
typedef struct LocksWait
{
	LocksLock  *lock;
	LocksMember *me;
	int			node;			/* its session's node */
	int			nhard;
	int		   *hard;			/* node indexes */
	int			nsoft;
	int		   *soft;
} LocksWait;

typedef struct LocksGraph
{
	HTAB	   *node_hash;
	LocksNode **nodes;
	int			nnodes;
	int			maxnodes;
	LocksWait  *waits;
	int			nwaits;
	int		   *stamp;			/* per node: the last wait that listed it */
	/* per root node (indexed like nodes): the waits that reach it */
	bool	  **reaches;		/* reaches[root][wait] */
	int		   *depth;			/* per node: steps to the nearest root, -1 none */
} LocksGraph;

static LocksLock *locks_read(int *nlocks);
static void locks_read_member(LocksMember *m, PGPROC *proc);
static LocksGraph *locks_build(LocksLock *locks, int nlocks);
static int	locks_node(LocksGraph *g, const LocksMember *m);
static int64 locks_node_key(const LocksMember *m);
static void locks_add_edge(LocksNode *n, int to);
static int	locks_add_once(LocksGraph *g, int *list, int n, int node, int stamp);
static void locks_find_roots(LocksGraph *g);
static Datum locks_int_array(LocksGraph *g, const int *nodes, int n, bool prepared);
static void locks_tag_columns(const LOCKTAG *tag, Datum *values, bool *nulls);
static char *locks_object_text(const LOCKTAG *tag);
static char *locks_relation_text(Oid dbid, Oid relid);
static HeapTuple locks_tuple(LocksGraph *g, LocksWait *w, TupleDesc tupdesc);

PG_FUNCTION_INFO_V1(incident_lock_waits);

/* ------------------------------------------------------------------------
 * The look at the lock manager
 * ------------------------------------------------------------------------
 */

/*
 * Copy out every lock that some process waits for, with its holders and
 * its wait queue, under all lock partition locks at once.
 */
static LocksLock *
locks_read(int *nlocks)
{
	HASHCTL		ctl;
	HTAB	   *seen;
	LocksLock  *locks;
	int			n = 0;
	int			max = 16;

	ctl.keysize = sizeof(LOCK *);
	ctl.entrysize = sizeof(LOCK *);
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("pg_incident locks read", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	locks = palloc(max * sizeof(LocksLock));

	/* in partition order, as every taker of several partition locks does */
	for (int i = 0; i < NUM_LOCK_PARTITIONS; i++)
		LWLockAcquire(LockHashPartitionLockByIndex(i), LW_SHARED);

	for (uint32 p = 0; p < ProcGlobal->allProcCount; p++)
	{
		PGPROC	   *proc = &ProcGlobal->allProcs[p];
		LOCK	   *lock = proc->waitLock;
		LocksLock  *l;
		bool		found;
		int			k;

		if (lock == NULL || proc->pid == 0)
			continue;
		hash_search(seen, &lock, HASH_ENTER, &found);
		if (found)
			continue;

		if (n == max)
		{
			max *= 2;
			locks = repalloc(locks, max * sizeof(LocksLock));
		}
		l = &locks[n++];
		l->lock = lock;
		l->tag = lock->tag;
		l->method = (LOCKMETHODID) lock->tag.locktag_lockmethodid;
		l->conflicts = GetLocksMethodTable(lock)->conflictTab;

		/* the holders: every PROCLOCK of the lock that holds a mode */
		l->nholders = 0;
		l->holders = palloc(Max(lock->nGranted, 1) * sizeof(LocksMember));
		k = 0;
#if PG_VERSION_NUM >= 160000
		{
			dlist_iter	iter;

			dlist_foreach(iter, &lock->procLocks)
			{
				PROCLOCK   *pl = dlist_container(PROCLOCK, lockLink, iter.cur);

				if (pl->holdMask == 0)
					continue;
				if (k == Max(lock->nGranted, 1))
					break;		/* cannot be: nGranted counts them */
				locks_read_member(&l->holders[k], pl->tag.myProc);
				l->holders[k].hold_mask = pl->holdMask;
				k++;
			}
		}
#else
		{
			SHM_QUEUE  *head = &lock->procLocks;
			PROCLOCK   *pl = (PROCLOCK *) SHMQueueNext(head, head, offsetof(PROCLOCK, lockLink));

			while (pl != NULL)
			{
				if (pl->holdMask != 0)
				{
					if (k == Max(lock->nGranted, 1))
						break;	/* cannot be: nGranted counts them */
					locks_read_member(&l->holders[k], pl->tag.myProc);
					l->holders[k].hold_mask = pl->holdMask;
					k++;
				}
				pl = (PROCLOCK *) SHMQueueNext(head, &pl->lockLink, offsetof(PROCLOCK, lockLink));
			}
		}
#endif
		l->nholders = k;

		/* the wait queue, in its order */
#if PG_VERSION_NUM >= 160000
		{
			dlist_iter	iter;

			l->waiters = palloc(Max(dclist_count(&lock->waitProcs), 1) * sizeof(LocksMember));
			k = 0;
			dclist_foreach(iter, &lock->waitProcs)
			{
				PGPROC	   *w = dlist_container(PGPROC, links, iter.cur);

				locks_read_member(&l->waiters[k], w);
				l->waiters[k].want_mode = w->waitLockMode;
				k++;
			}
		}
#else
		{
			PROC_QUEUE *queue = &lock->waitProcs;
			PGPROC	   *w = (PGPROC *) queue->links.next;

			l->waiters = palloc(Max(queue->size, 1) * sizeof(LocksMember));
			for (k = 0; k < queue->size; k++)
			{
				locks_read_member(&l->waiters[k], w);
				l->waiters[k].want_mode = w->waitLockMode;
				w = (PGPROC *) w->links.next;
			}
		}
#endif
		l->nwaiters = k;
	}

	for (int i = NUM_LOCK_PARTITIONS; --i >= 0;)
		LWLockRelease(LockHashPartitionLockByIndex(i));

	hash_destroy(seen);
	*nlocks = n;
	return locks;
}

/*
 * Who a process is, for the graph: its pid, its lock group's leader, and
 * for a prepared transaction its transaction id.
 */
static void
locks_read_member(LocksMember *m, PGPROC *proc)
{
	uint64		start = pg_atomic_read_u64(&proc->waitStart);

	m->pid = proc->pid;
	m->leader_pid = proc->lockGroupLeader != NULL ? proc->lockGroupLeader->pid : proc->pid;
	/* a prepared transaction's dummy PGPROC keeps its top-level xid */
	m->prepared_xid = proc->pid == 0 ? proc->xid : InvalidTransactionId;
	m->hold_mask = 0;
	m->want_mode = NoLock;
	m->wait_start = (TimestampTz) start;
}

/* ------------------------------------------------------------------------
 * The graph
 * ------------------------------------------------------------------------
 */

/*
 * The wait-for graph of what locks_read found: a node per session and per
 * prepared transaction, the edges of each wait, and the roots.
 */
static LocksGraph *
locks_build(LocksLock *locks, int nlocks)
{
	LocksGraph *g = palloc0(sizeof(LocksGraph));
	HASHCTL		ctl;
	int			total = 0;

	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(LocksNode);
	ctl.hcxt = CurrentMemoryContext;
	g->node_hash = hash_create("pg_incident lock graph", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	g->maxnodes = 16;
	g->nodes = palloc(g->maxnodes * sizeof(LocksNode *));
	g->stamp = palloc(g->maxnodes * sizeof(int));

	for (int i = 0; i < nlocks; i++)
		total += locks[i].nwaiters;
	g->waits = palloc0(Max(total, 1) * sizeof(LocksWait));

	for (int i = 0; i < nlocks; i++)
	{
		LocksLock  *l = &locks[i];
		int		   *holder_node = palloc(Max(l->nholders, 1) * sizeof(int));
		int		   *waiter_node = palloc(Max(l->nwaiters, 1) * sizeof(int));

		/* each member's node, looked up once: a queue of n compares n^2 pairs */
		for (int h = 0; h < l->nholders; h++)
			holder_node[h] = locks_node(g, &l->holders[h]);
		for (int k = 0; k < l->nwaiters; k++)
			waiter_node[k] = locks_node(g, &l->waiters[k]);

		for (int k = 0; k < l->nwaiters; k++)
		{
			LocksMember *me = &l->waiters[k];
			LOCKMASK	conflicts = l->conflicts[me->want_mode];
			LocksWait  *w = &g->waits[g->nwaits++];
			LocksNode  *node;

			CHECK_FOR_INTERRUPTS();
			w->lock = l;
			w->me = me;
			w->node = waiter_node[k];
			node = g->nodes[w->node];
			node->waiting = true;
			w->hard = palloc(Max(l->nholders, 1) * sizeof(int));
			w->soft = palloc(Max(k, 1) * sizeof(int));

			/* each blocker once per list: stamps 2n+1 (hard) and 2n+2 (soft) */
			for (int h = 0; h < l->nholders; h++)
			{
				LocksMember *holder = &l->holders[h];

				if ((holder->hold_mask & conflicts) == 0 ||
					(holder->pid != 0 && holder->leader_pid == me->leader_pid))
					continue;
				w->nhard = locks_add_once(g, w->hard, w->nhard, holder_node[h], 2 * g->nwaits + 1);
			}
			for (int a = 0; a < k; a++)
			{
				LocksMember *ahead = &l->waiters[a];

				if ((LOCKBIT_ON(ahead->want_mode) & conflicts) == 0 ||
					ahead->leader_pid == me->leader_pid)
					continue;
				w->nsoft = locks_add_once(g, w->soft, w->nsoft, waiter_node[a], 2 * g->nwaits + 2);
			}
			for (int e = 0; e < w->nhard; e++)
				locks_add_edge(node, w->hard[e]);
			for (int e = 0; e < w->nsoft; e++)
				locks_add_edge(node, w->soft[e]);
		}
		pfree(holder_node);
		pfree(waiter_node);
	}

	locks_find_roots(g);
	return g;
}

/* The hash key of a member's node: its leader's pid, or its prepared xid. */
static int64
locks_node_key(const LocksMember *m)
{
	if (m->pid == 0)
		return ((int64) 1 << 32) | (int64) m->prepared_xid;
	return (int64) m->leader_pid;
}

/* The index of a member's node, made on first sight. */
static int
locks_node(LocksGraph *g, const LocksMember *m)
{
	int64		key = locks_node_key(m);
	bool		found;
	LocksNode  *n = hash_search(g->node_hash, &key, HASH_ENTER, &found);

	if (found)
		return n->index;
	if (g->nnodes == g->maxnodes)
	{
		g->maxnodes *= 2;
		g->nodes = repalloc(g->nodes, g->maxnodes * sizeof(LocksNode *));
		g->stamp = repalloc(g->stamp, g->maxnodes * sizeof(int));
	}
	g->stamp[g->nnodes] = 0;
	n->index = g->nnodes;
	n->pid = m->pid == 0 ? 0 : m->leader_pid;
	n->prepared_xid = m->prepared_xid;
	n->nedges = 0;
	n->maxedges = 0;
	n->edges = NULL;
	n->waiting = false;
	g->nodes[g->nnodes++] = n;
	return n->index;
}

/*
 * Add an edge "n is blocked by node to". A node with several waits (a
 * parallel query's processes) may get one twice, which the searches over
 * the edges do not mind.
 */
static void
locks_add_edge(LocksNode *n, int to)
{
	if (n->nedges == n->maxedges)
	{
		n->maxedges = Max(4, n->maxedges * 2);
		n->edges = n->edges == NULL ? palloc(n->maxedges * sizeof(int))
			: repalloc(n->edges, n->maxedges * sizeof(int));
	}
	n->edges[n->nedges++] = to;
}

/*
 * Append node to list (room for it assumed) unless this stamp has listed it
 * already; the new length.
 */
static int
locks_add_once(LocksGraph *g, int *list, int n, int node, int stamp)
{
	if (g->stamp[node] == stamp)
		return n;
	g->stamp[node] = stamp;
	list[n] = node;
	return n + 1;
}

/*
 * The roots (nodes blocked by nothing that block someone), which waits
 * reach each of them, and each node's distance to its nearest root: one
 * breadth-first search over the reversed edges from all roots together,
 * and one per root for what it reaches.
 */
static void
locks_find_roots(LocksGraph *g)
{
	int			n = g->nnodes;
	int		   *rev_count = palloc0((n + 1) * sizeof(int));
	int		   *rev_start;
	int		   *rev;
	int		   *queue = palloc(Max(n, 1) * sizeof(int));
	bool	   *seen = palloc(Max(n, 1) * sizeof(bool));
	int			nedges = 0;

	g->depth = palloc(Max(n, 1) * sizeof(int));
	g->reaches = palloc0(Max(n, 1) * sizeof(bool *));

	/* the reversed edges, as one array of blocked nodes per blocker */
	for (int i = 0; i < n; i++)
		for (int e = 0; e < g->nodes[i]->nedges; e++)
		{
			rev_count[g->nodes[i]->edges[e] + 1]++;
			nedges++;
		}
	rev_start = rev_count;
	for (int i = 0; i < n; i++)
		rev_start[i + 1] += rev_start[i];
	rev = palloc(Max(nedges, 1) * sizeof(int));
	{
		int		   *fill = palloc(Max(n, 1) * sizeof(int));

		memcpy(fill, rev_start, n * sizeof(int));
		for (int i = 0; i < n; i++)
			for (int e = 0; e < g->nodes[i]->nedges; e++)
				rev[fill[g->nodes[i]->edges[e]]++] = i;
		pfree(fill);
	}

	/* distances to the nearest root, from all roots at once */
	{
		int			head = 0,
					tail = 0;

		for (int i = 0; i < n; i++)
		{
			g->depth[i] = -1;
			if (g->nodes[i]->nedges == 0)
			{
				g->depth[i] = 0;
				queue[tail++] = i;
			}
		}
		while (head < tail)
		{
			int			v = queue[head++];

			CHECK_FOR_INTERRUPTS();
			for (int e = rev_start[v]; e < rev_start[v + 1]; e++)
				if (g->depth[rev[e]] < 0)
				{
					g->depth[rev[e]] = g->depth[v] + 1;
					queue[tail++] = rev[e];
				}
		}
	}

	/* what each root reaches, as a flag per wait */
	for (int r = 0; r < n; r++)
	{
		int			head = 0,
					tail = 0;

		if (g->nodes[r]->nedges != 0 || rev_start[r] == rev_start[r + 1])
			continue;
		memset(seen, 0, n * sizeof(bool));
		seen[r] = true;
		queue[tail++] = r;
		while (head < tail)
		{
			int			v = queue[head++];

			CHECK_FOR_INTERRUPTS();
			for (int e = rev_start[v]; e < rev_start[v + 1]; e++)
				if (!seen[rev[e]])
				{
					seen[rev[e]] = true;
					queue[tail++] = rev[e];
				}
		}
		g->reaches[r] = palloc0(Max(g->nwaits, 1) * sizeof(bool));
		for (int w = 0; w < g->nwaits; w++)
		{
			LocksWait  *wait = &g->waits[w];
			bool		hit = false;

			/* a wait reaches r when one of its own blockers does */
			for (int e = 0; e < wait->nhard && !hit; e++)
				hit = seen[wait->hard[e]];
			for (int e = 0; e < wait->nsoft && !hit; e++)
				hit = seen[wait->soft[e]];
			g->reaches[r][w] = hit;
		}
	}

	pfree(rev);
	pfree(rev_count);
	pfree(queue);
	pfree(seen);
}

/* ------------------------------------------------------------------------
 * The SQL function
 * ------------------------------------------------------------------------
 */

/*
 * An int4[] of the sessions' pids among nodes, or (prepared) an xid[] of
 * the prepared transactions among them; NULL when there are none.
 */
static Datum
locks_int_array(LocksGraph *g, const int *nodes, int n, bool prepared)
{
	Datum	   *elems = palloc(Max(n, 1) * sizeof(Datum));
	int			k = 0;

	for (int i = 0; i < n; i++)
	{
		LocksNode  *node = g->nodes[nodes[i]];

		if (prepared && node->pid == 0)
			elems[k++] = TransactionIdGetDatum(node->prepared_xid);
		else if (!prepared && node->pid != 0)
			elems[k++] = Int32GetDatum(node->pid);
	}
	if (prepared)
		return PointerGetDatum(construct_array(elems, k, XIDOID, sizeof(TransactionId), true, TYPALIGN_INT));
	return PointerGetDatum(construct_array(elems, k, INT4OID, sizeof(int32), true, TYPALIGN_INT));
}

/*
 * The columns of pg_locks that name the locked object, from its tag:
 * database, relation, page, tuple, virtualxid, transactionid, classid,
 * objid, objsubid (values and nulls of nine columns).
 */
static void
locks_tag_columns(const LOCKTAG *tag, Datum *values, bool *nulls)
{
	for (int i = 0; i < 9; i++)
		nulls[i] = true;
	switch ((LockTagType) tag->locktag_type)
	{
		case LOCKTAG_RELATION:
		case LOCKTAG_RELATION_EXTEND:
		case LOCKTAG_PAGE:
		case LOCKTAG_TUPLE:
			values[0] = ObjectIdGetDatum(tag->locktag_field1);
			values[1] = ObjectIdGetDatum(tag->locktag_field2);
			nulls[0] = nulls[1] = false;
			if (tag->locktag_type == LOCKTAG_PAGE || tag->locktag_type == LOCKTAG_TUPLE)
			{
				values[2] = UInt32GetDatum(tag->locktag_field3);
				nulls[2] = false;
			}
			if (tag->locktag_type == LOCKTAG_TUPLE)
			{
				values[3] = UInt16GetDatum(tag->locktag_field4);
				nulls[3] = false;
			}
			break;
		case LOCKTAG_DATABASE_FROZEN_IDS:
			values[0] = ObjectIdGetDatum(tag->locktag_field1);
			nulls[0] = false;
			break;
		case LOCKTAG_TRANSACTION:
			values[5] = TransactionIdGetDatum(tag->locktag_field1);
			nulls[5] = false;
			break;
		case LOCKTAG_VIRTUALTRANSACTION:
			values[4] = CStringGetTextDatum(psprintf("%u/%u", tag->locktag_field1, tag->locktag_field2));
			nulls[4] = false;
			break;
		case LOCKTAG_SPECULATIVE_TOKEN:
			values[5] = TransactionIdGetDatum(tag->locktag_field1);
			values[7] = ObjectIdGetDatum(tag->locktag_field2);
			nulls[5] = nulls[7] = false;
			break;
		case LOCKTAG_OBJECT:
		case LOCKTAG_USERLOCK:
		case LOCKTAG_ADVISORY:
		default:
			/* an advisory lock: classid, objid are the key, objsubid 1 or 2 */
			values[0] = ObjectIdGetDatum(tag->locktag_field1);
			values[6] = ObjectIdGetDatum(tag->locktag_field2);
			values[7] = ObjectIdGetDatum(tag->locktag_field3);
			values[8] = Int16GetDatum((int16) tag->locktag_field4);
			nulls[0] = nulls[6] = nulls[7] = nulls[8] = false;
			break;
	}
}

/*
 * A locked relation by its qualified name when it is in this database (or
 * shared), else by its oid and database.
 */
static char *
locks_relation_text(Oid dbid, Oid relid)
{
	if (dbid == MyDatabaseId || dbid == InvalidOid)
	{
		char	   *name = get_rel_name(relid);
		char	   *nsp = name != NULL ? get_namespace_name(get_rel_namespace(relid)) : NULL;

		if (name != NULL && nsp != NULL)
			return quote_qualified_identifier(nsp, name);
		return psprintf("relation %u", relid);
	}
	else
	{
		char	   *db = get_database_name(dbid);

		return db != NULL ? psprintf("relation %u in database %s", relid, quote_identifier(db))
			: psprintf("relation %u in database %u", relid, dbid);
	}
}

/*
 * The locked object in words, as a DBA names it: a table, a row of it, a
 * transaction, an advisory lock by the key pg_advisory_lock() took.
 */
static char *
locks_object_text(const LOCKTAG *tag)
{
	switch ((LockTagType) tag->locktag_type)
	{
		case LOCKTAG_RELATION:
			return locks_relation_text(tag->locktag_field1, tag->locktag_field2);
		case LOCKTAG_RELATION_EXTEND:
			return psprintf("extension of %s", locks_relation_text(tag->locktag_field1, tag->locktag_field2));
		case LOCKTAG_PAGE:
			return psprintf("page %u of %s", tag->locktag_field3,
							locks_relation_text(tag->locktag_field1, tag->locktag_field2));
		case LOCKTAG_TUPLE:
			return psprintf("row (%u,%u) of %s", tag->locktag_field3, (unsigned) tag->locktag_field4,
							locks_relation_text(tag->locktag_field1, tag->locktag_field2));
		case LOCKTAG_TRANSACTION:
			return psprintf("transaction %u", tag->locktag_field1);
		case LOCKTAG_VIRTUALTRANSACTION:
			return psprintf("virtual transaction %u/%u", tag->locktag_field1, tag->locktag_field2);
		case LOCKTAG_SPECULATIVE_TOKEN:
			return psprintf("speculative insertion of transaction %u", tag->locktag_field1);
		case LOCKTAG_ADVISORY:
		case LOCKTAG_USERLOCK:
			if (tag->locktag_field4 == 1)
				return psprintf("advisory lock " INT64_FORMAT,
								(int64) (((uint64) tag->locktag_field2 << 32) | (uint64) tag->locktag_field3));
			return psprintf("advisory lock (%d, %d)", (int32) tag->locktag_field2, (int32) tag->locktag_field3);
		case LOCKTAG_OBJECT:
			if (tag->locktag_field1 == MyDatabaseId || tag->locktag_field1 == InvalidOid)
			{
				ObjectAddress addr = {tag->locktag_field2, tag->locktag_field3, (int32) tag->locktag_field4};
				char	   *d = getObjectDescription(&addr, true);

				if (d != NULL)
					return d;
			}
			return psprintf("object %u of catalog %u", tag->locktag_field3, tag->locktag_field2);
		case LOCKTAG_DATABASE_FROZEN_IDS:
			return psprintf("frozen ids of database %u", tag->locktag_field1);
		default:
			return pstrdup(LockTagTypeNames[tag->locktag_type]);
	}
}

/* The row of one waiting process. */
static HeapTuple
locks_tuple(LocksGraph *g, LocksWait *w, TupleDesc tupdesc)
{
	Datum		values[LOCKS_COLUMNS];
	bool		nulls[LOCKS_COLUMNS] = {0};
	int		   *roots = palloc(Max(g->nnodes, 1) * sizeof(int));
	int			nroots = 0;
	int		   *blockers = palloc((w->nhard + w->nsoft + 1) * sizeof(int));
	int			nblockers = 0;
	int			nearest = -1;
	int			depth = -1;
	int			i = 0;
	HeapTuple	tuple;

	for (int e = 0; e < w->nhard; e++)
		nblockers = locks_add_once(g, blockers, nblockers, w->hard[e], -1 - (int) (w - g->waits));
	for (int e = 0; e < w->nsoft; e++)
		nblockers = locks_add_once(g, blockers, nblockers, w->soft[e], -1 - (int) (w - g->waits));

	/* its roots, and the nearest one, through its own blockers */
	for (int r = 0; r < g->nnodes; r++)
		if (g->reaches[r] != NULL && g->reaches[r][w - g->waits])
			roots[nroots++] = r;
	for (int b = 0; b < nblockers; b++)
	{
		int			d = g->depth[blockers[b]];

		if (d >= 0 && (depth < 0 || d + 1 < depth))
		{
			depth = d + 1;
			nearest = blockers[b];
		}
	}
	while (nearest >= 0 && g->depth[nearest] > 0)
	{
		LocksNode  *n = g->nodes[nearest];
		int			next = -1;

		for (int e = 0; e < n->nedges; e++)
			if (g->depth[n->edges[e]] == g->depth[nearest] - 1)
			{
				next = n->edges[e];
				break;
			}
		nearest = next;
	}

	values[i++] = Int32GetDatum(w->me->pid);
	if (w->me->leader_pid != w->me->pid)
		values[i++] = Int32GetDatum(w->me->leader_pid);
	else
		nulls[i++] = true;
	values[i++] = CStringGetTextDatum(LockTagTypeNames[w->lock->tag.locktag_type]);
	locks_tag_columns(&w->lock->tag, &values[i], &nulls[i]);
	i += 9;
	values[i++] = CStringGetTextDatum(locks_object_text(&w->lock->tag));
	values[i++] = CStringGetTextDatum(GetLockmodeName(w->lock->method, w->me->want_mode));
	if (w->me->wait_start != 0)
		values[i++] = TimestampTzGetDatum(w->me->wait_start);
	else
		nulls[i++] = true;
	values[i++] = locks_int_array(g, blockers, nblockers, false);
	values[i++] = locks_int_array(g, w->hard, w->nhard, false);
	values[i++] = locks_int_array(g, blockers, nblockers, true);
	values[i++] = locks_int_array(g, roots, nroots, false);
	values[i++] = locks_int_array(g, roots, nroots, true);
	if (nearest >= 0 && g->nodes[nearest]->pid != 0)
		values[i++] = Int32GetDatum(g->nodes[nearest]->pid);
	else
		nulls[i++] = true;
	if (nearest >= 0 && g->nodes[nearest]->pid == 0)
		values[i++] = TransactionIdGetDatum(g->nodes[nearest]->prepared_xid);
	else
		nulls[i++] = true;
	if (depth > 0)
		values[i++] = Int32GetDatum(depth);
	else
		nulls[i++] = true;
	/* blocked, yet no root: a cycle the deadlock detector has not broken yet */
	values[i++] = BoolGetDatum(nblockers > 0 && depth < 0);
	Assert(i == LOCKS_COLUMNS);
	if (tupdesc->natts != LOCKS_COLUMNS)
		elog(ERROR, "incident__lock_waits() returns %d columns, not %d", LOCKS_COLUMNS, tupdesc->natts);

	tuple = heap_form_tuple(tupdesc, values, nulls);
	pfree(roots);
	pfree(blockers);
	return tuple;
}

/*
 * incident__lock_waits(): one row per process waiting for a heavyweight
 * lock, with its blockers and roots (see the banner).
 */
Datum
incident_lock_waits(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	LocksLock  *locks;
	LocksGraph *g;
	int			nlocks;

	InitMaterializedSRF(fcinfo, 0);
	locks = locks_read(&nlocks);
	g = locks_build(locks, nlocks);
	for (int w = 0; w < g->nwaits; w++)
	{
		CHECK_FOR_INTERRUPTS();
		tuplestore_puttuple(rsinfo->setResult, locks_tuple(g, &g->waits[w], rsinfo->setDesc));
	}
	PG_RETURN_VOID();
}
