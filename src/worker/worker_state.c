/*-------------------------------------------------------------------------
 *
 * worker_state.c
 *		The status of pg_incident's worker processes in shared memory, and
 *		incident__worker_state(), the SQL function that reads it.
 *
 * The launcher and the two database workers (worker.c) each own a slot: its
 * pid, when it started, its state ("waiting for the database", "waiting
 * for the extension", "idle on a standby", "disabled", "idle"), what it
 * did last and when, how many turns it made, how many phases failed and
 * the last error. A slot is written only by its process, under a
 * spinlock, and cleared when that process exits. The space is requested
 * only when the library is preloaded; without it the function returns no
 * row.
 *
 * incident__worker_state() returns one row per database worker, process
 * "worker" (HTTP probes) then "sql worker" (SQL probes): the worker's slot
 * when that process is running, else the launcher's (so that "waiting for
 * the database" shows, with the launcher's pid and turns), else a row with
 * state "stopped". The HTTP worker, which keeps its schedule in memory,
 * also publishes how many probes are due and how many checks are in flight.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/timestamp.h"

#include "worker.h"

#define WORKER_STATE_LEN 64
#define WORKER_ACTIVITY_LEN 128
#define WORKER_ERROR_LEN 512

/* one process's status */
typedef struct WorkerSlot
{
	pid_t		pid;			/* 0 when the process is not running */
	TimestampTz started_at;
	char		database[NAMEDATALEN];
	char		state[WORKER_STATE_LEN];
	char		activity[WORKER_ACTIVITY_LEN];
	TimestampTz activity_at;
	int64		loops;
	int64		errors;
	char		last_error[WORKER_ERROR_LEN];
	TimestampTz last_error_at;
	int64		claimed;		/* checks claimed since the start */
	int64		late[WORKER_LATE_BUCKETS];	/* their lateness, by bucket */
	int64		done;			/* checks whose result came back */
	int32		due;			/* probes due now, -1 when not kept in memory */
	int32		in_flight;		/* checks in flight, -1 likewise */
} WorkerSlot;

/*
 * Upper edges, in ms, of the lateness buckets: bucket i counts the checks
 * claimed less than worker_late_edges[i] ms after they were due (and at
 * least the edge before); the last bucket has no upper edge.
 */
static const double worker_late_edges[WORKER_LATE_BUCKETS - 1] = {
	1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000
};

static double worker_late_percentile(const WorkerSlot *slot, double fraction);

typedef struct WorkerShared
{
	slock_t		mutex;
	WorkerSlot	slots[WORKER_NROLES];	/* indexed by WorkerRole */
	pg_atomic_uint32 notifications_waiting; /* set at the commit of outbox rows */
} WorkerShared;

static WorkerShared *worker_shared = NULL;
static WorkerSlot *worker_my_slot = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type worker_prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type worker_prev_shmem_startup_hook = NULL;

static void worker_state_shmem_request(void);
static void worker_state_shmem_startup(void);
static void worker_state_exit(int code, Datum arg);

PG_FUNCTION_INFO_V1(incident__worker_state);

/*
 * Ask for the shared status at server start (from _PG_init while preloaded).
 */
void
incident_worker_state_init(void)
{
#if PG_VERSION_NUM >= 150000
	worker_prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = worker_state_shmem_request;
#else
	worker_state_shmem_request();
#endif
	worker_prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = worker_state_shmem_startup;
}

/*
 * Request the space of the shared status.
 */
static void
worker_state_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (worker_prev_shmem_request_hook)
		worker_prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(MAXALIGN(sizeof(WorkerShared)));
}

/*
 * Create or attach to the shared status.
 */
static void
worker_state_shmem_startup(void)
{
	bool		found;

	if (worker_prev_shmem_startup_hook)
		worker_prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	worker_shared = ShmemInitStruct("pg_incident worker state", sizeof(WorkerShared), &found);
	if (!found)
	{
		memset(worker_shared, 0, sizeof(WorkerShared));
		SpinLockInit(&worker_shared->mutex);
		pg_atomic_init_u32(&worker_shared->notifications_waiting, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Take the slot of this process's role; it is cleared when the process
 * exits. False if another live process holds it (a database worker whose
 * launcher was restarted before it had exited), which then goes on alone.
 */
bool
incident_worker_state_start(WorkerRole role, const char *database)
{
	WorkerSlot *slot;
	pid_t		holder;

	if (worker_shared == NULL)
		return true;
	slot = &worker_shared->slots[role];
	SpinLockAcquire(&worker_shared->mutex);
	holder = slot->pid;
	if (holder != 0 && holder != MyProcPid && kill(holder, 0) == 0)
	{
		SpinLockRelease(&worker_shared->mutex);
		return false;
	}
	memset(slot, 0, sizeof(WorkerSlot));
	slot->pid = MyProcPid;
	slot->started_at = GetCurrentTimestamp();
	strlcpy(slot->database, database ? database : "", NAMEDATALEN);
	strlcpy(slot->state, "starting", WORKER_STATE_LEN);
	slot->due = -1;
	slot->in_flight = -1;
	SpinLockRelease(&worker_shared->mutex);
	worker_my_slot = slot;
	on_shmem_exit(worker_state_exit, (Datum) 0);
	return true;
}

/*
 * Clear this process's slot.
 */
static void
worker_state_exit(int code, Datum arg)
{
	if (worker_my_slot == NULL)
		return;
	SpinLockAcquire(&worker_shared->mutex);
	if (worker_my_slot->pid == MyProcPid)
		worker_my_slot->pid = 0;
	SpinLockRelease(&worker_shared->mutex);
	worker_my_slot = NULL;
}

/*
 * Record the state of this process; role says which slot when the process
 * has not taken one (it has, after incident_worker_state_start).
 */
void
incident_worker_state_set(WorkerRole role, const char *state)
{
	if (worker_my_slot == NULL)
		return;
	SpinLockAcquire(&worker_shared->mutex);
	strlcpy(worker_my_slot->state, state, WORKER_STATE_LEN);
	SpinLockRelease(&worker_shared->mutex);
}

/*
 * Record what this process just did.
 */
void
incident_worker_state_activity(const char *activity)
{
	TimestampTz now = GetCurrentTimestamp();

	if (worker_my_slot == NULL)
		return;
	SpinLockAcquire(&worker_shared->mutex);
	strlcpy(worker_my_slot->activity, activity, WORKER_ACTIVITY_LEN);
	worker_my_slot->activity_at = now;
	SpinLockRelease(&worker_shared->mutex);
}

/*
 * Count one turn of the loop.
 */
void
incident_worker_state_loop(void)
{
	if (worker_my_slot == NULL)
		return;
	SpinLockAcquire(&worker_shared->mutex);
	worker_my_slot->loops++;
	SpinLockRelease(&worker_shared->mutex);
}

/*
 * Count a failed phase and keep its error message.
 */
void
incident_worker_state_error(const char *message)
{
	TimestampTz now = GetCurrentTimestamp();

	if (worker_my_slot == NULL)
		return;
	SpinLockAcquire(&worker_shared->mutex);
	worker_my_slot->errors++;
	strlcpy(worker_my_slot->last_error, message ? message : "", WORKER_ERROR_LEN);
	worker_my_slot->last_error_at = now;
	SpinLockRelease(&worker_shared->mutex);
}

/*
 * Count a claimed check, late_ms after it was due (this process's slot).
 */
void
incident_worker_state_claimed(double late_ms)
{
	int			b = 0;

	if (worker_my_slot == NULL)
		return;
	while (b < WORKER_LATE_BUCKETS - 1 && late_ms >= worker_late_edges[b])
		b++;
	SpinLockAcquire(&worker_shared->mutex);
	worker_my_slot->claimed++;
	worker_my_slot->late[b]++;
	SpinLockRelease(&worker_shared->mutex);
}

/*
 * Count checks whose result came back (this process's slot).
 */
void
incident_worker_state_done(int n)
{
	if (worker_my_slot == NULL || n <= 0)
		return;
	SpinLockAcquire(&worker_shared->mutex);
	worker_my_slot->done += n;
	SpinLockRelease(&worker_shared->mutex);
}

/*
 * Publish how many probes are due now and how many checks are in flight,
 * for a worker that keeps its schedule in memory; -1 for unknown.
 */
void
incident_worker_state_counts(int due, int in_flight)
{
	if (worker_my_slot == NULL)
		return;
	SpinLockAcquire(&worker_shared->mutex);
	worker_my_slot->due = due;
	worker_my_slot->in_flight = in_flight;
	SpinLockRelease(&worker_shared->mutex);
}

/*
 * At the commit of outbox rows (outbox.c): tell the HTTP worker, and set
 * its latch so that it delivers them now. Nothing when the library is not
 * preloaded.
 */
void
incident_worker_wake_notifications(void)
{
	pid_t		pid;
	PGPROC	   *proc;

	if (worker_shared == NULL)
		return;
	pg_atomic_write_u32(&worker_shared->notifications_waiting, 1);
	SpinLockAcquire(&worker_shared->mutex);
	pid = worker_shared->slots[WORKER_ROLE_DATABASE].pid;
	SpinLockRelease(&worker_shared->mutex);
	if (pid == 0)
		return;
	if (pid == MyProcPid)
	{
		SetLatch(MyLatch);
		return;
	}
	proc = BackendPidGetProc(pid);
	if (proc != NULL)
		SetLatch(&proc->procLatch);
}

/*
 * Whether outbox rows were committed since the flag was last cleared;
 * clear clears it (the HTTP worker, about to claim).
 */
bool
incident_worker_notifications_woken(bool clear)
{
	if (worker_shared == NULL)
		return false;
	if (clear)
		return pg_atomic_exchange_u32(&worker_shared->notifications_waiting, 0) != 0;
	return pg_atomic_read_u32(&worker_shared->notifications_waiting) != 0;
}

/*
 * Whether this process is one of pg_incident's worker processes.
 */
bool
incident_worker_is_worker(void)
{
	return worker_my_slot != NULL;
}

/*
 * The upper edge of the bucket that holds the given fraction of the
 * slot's claimed checks; -1 when there are none, infinity past the last
 * edge.
 */
static double
worker_late_percentile(const WorkerSlot *slot, double fraction)
{
	int64		seen = 0;

	if (slot->claimed <= 0)
		return -1;
	for (int b = 0; b < WORKER_LATE_BUCKETS; b++)
	{
		seen += slot->late[b];
		if ((double) seen >= fraction * (double) slot->claimed)
			return b < WORKER_LATE_BUCKETS - 1 ? worker_late_edges[b] : get_float8_infinity();
	}
	return get_float8_infinity();
}

/*
 * incident__worker_state() returns one row per database worker, none when
 * the library is not preloaded.
 */
Datum
incident__worker_state(PG_FUNCTION_ARGS)
{
	static const struct
	{
		WorkerRole	role;
		const char *process;
	}			rows[] = {
		{WORKER_ROLE_DATABASE, "worker"},
		{WORKER_ROLE_SQL, "sql worker"},
	};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WorkerSlot	slots[WORKER_NROLES];

	InitMaterializedSRF(fcinfo, 0);
	if (worker_shared == NULL)
		PG_RETURN_VOID();

	SpinLockAcquire(&worker_shared->mutex);
	memcpy(slots, worker_shared->slots, sizeof(slots));
	SpinLockRelease(&worker_shared->mutex);

	for (int r = 0; r < (int) lengthof(rows); r++)
	{
		WorkerSlot	slot = slots[rows[r].role];
		Datum		values[18];
		bool		nulls[18];
		Datum		late[WORKER_LATE_BUCKETS];
		double		p;

		if (slot.pid == 0)
		{
			if (slots[WORKER_ROLE_LAUNCHER].pid != 0)
				slot = slots[WORKER_ROLE_LAUNCHER]; /* what the launcher waits for */
			else
			{
				memset(&slot, 0, sizeof(slot));
				strlcpy(slot.state, "stopped", WORKER_STATE_LEN);
			}
		}

		memset(nulls, 0, sizeof(nulls));
		values[0] = Int32GetDatum(slot.pid);
		nulls[0] = slot.pid == 0;
		values[1] = TimestampTzGetDatum(slot.started_at);
		nulls[1] = slot.started_at == 0;
		values[2] = CStringGetTextDatum(slot.state);
		values[3] = CStringGetTextDatum(slot.database[0] ? slot.database : incident_worker_database);
		values[4] = CStringGetTextDatum(slot.activity);
		nulls[4] = slot.activity[0] == '\0';
		values[5] = TimestampTzGetDatum(slot.activity_at);
		nulls[5] = slot.activity_at == 0;
		values[6] = Int64GetDatum(slot.loops);
		values[7] = Int64GetDatum(slot.errors);
		values[8] = CStringGetTextDatum(slot.last_error);
		nulls[8] = slot.last_error[0] == '\0';
		values[9] = TimestampTzGetDatum(slot.last_error_at);
		nulls[9] = slot.last_error_at == 0;
		values[10] = CStringGetTextDatum(rows[r].process);
		/* the lateness is the database worker's own, never the launcher's */
		if (slot.pid != slots[rows[r].role].pid)
		{
			slot.claimed = 0;
			memset(slot.late, 0, sizeof(slot.late));
			slot.done = 0;
			slot.due = -1;
			slot.in_flight = -1;
		}
		values[11] = Int64GetDatum(slot.claimed);
		p = worker_late_percentile(&slot, 0.5);
		values[12] = Float8GetDatum(p);
		nulls[12] = p < 0;
		p = worker_late_percentile(&slot, 0.99);
		values[13] = Float8GetDatum(p);
		nulls[13] = p < 0;
		for (int b = 0; b < WORKER_LATE_BUCKETS; b++)
			late[b] = Int64GetDatum(slot.late[b]);
		values[14] = PointerGetDatum(construct_array(late, WORKER_LATE_BUCKETS, INT8OID, 8,
													 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[15] = Int64GetDatum(slot.done);
		values[16] = Int32GetDatum(slot.due);
		nulls[16] = slot.due < 0;
		values[17] = Int32GetDatum(slot.in_flight);
		nulls[17] = slot.in_flight < 0;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
