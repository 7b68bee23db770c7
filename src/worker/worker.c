/*-------------------------------------------------------------------------
 *
 * worker.c
 *		pg_incident's background worker: the launcher that watches for its
 *		database, and the database worker's loop of short transactions.
 *
 * The launcher is a static background worker, registered from _PG_init
 * while the library is preloaded, started once the server is consistent
 * (so also on a hot standby), connected to no database. Every few seconds
 * it looks pg_incident.database up in pg_database (a shared catalog) and,
 * when the database exists, starts the two database workers, dynamic
 * background workers that are never restarted by the postmaster itself:
 * "pg_incident worker" runs the HTTP probes, delivers notifications and
 * fires escalations and reminders through one HTTP engine, and
 * "pg_incident sql worker" runs the SQL probes one at a time, so that a
 * slow query never delays an HTTP check. When either exits for any reason (pg_terminate_backend, DROP
 * DATABASE ... WITH (FORCE), an error), the launcher starts it again after
 * INCIDENT_WORKER_RESTART_SECONDS if the database still exists, and
 * otherwise logs once that it waits for the database. A dropped database
 * therefore costs one LOG line, not a FATAL line every few seconds from a
 * worker that the postmaster restarts forever.
 *
 * A database worker connects to pg_incident.database and turns: it
 * reloads the configuration after SIGHUP, then decides what it can do:
 *
 *	- "disabled" while pg_incident.enabled is off;
 *	- "idle on a standby" while the server is in recovery (it writes
 *	  nothing; RecoveryInProgress() is asked every turn, so a promotion
 *	  takes effect at the next turn without a restart);
 *	- "waiting for the extension" while pg_incident is not installed in
 *	  its database, logged once per wait;
 *	- otherwise it runs the phases of a turn, each in its own short
 *	  transaction. The HTTP worker records the deliveries and the results
 *	  the engine finished, fires the escalations and reminders that fell
 *	  due, claims the due notifications and probes and hands them to the
 *	  engine (which runs them during the wait between turns), prunes old
 *	  results, and asks when the next is due. The SQL worker claims one
 *	  due SQL probe in one transaction and runs and records it in the next,
 *	  until none is due. An error in a phase is logged, counted in the
 *	  shared status, and the transaction aborted; the loop goes on with the
 *	  next phase. Each phase holds a share lock on the extension, so
 *	  that DROP EXTENSION waits for the phase to end, and a phase that
 *	  finds the extension dropped ends the turn quietly.
 *
 * Neither keeps a transaction open across its wait. The wait
 * (incident_worker_wait) is WaitLatch, or for the HTTP worker the engine's
 * wait over the latch and curl's sockets, which the engine keeps in one
 * epoll set. Signals are the standard ones (SIGHUP reloads, SIGTERM asks
 * to stop, SIGUSR1 is procsignal_sigusr1_handler); CHECK_FOR_INTERRUPTS()
 * after every wake-up absorbs ProcSignalBarriers, so DROP DATABASE of
 * another database never waits for the worker. While the SQL worker runs a
 * probe's query, SIGTERM is die(), so that a shutdown cancels the query at
 * once instead of waiting for its statement timeout.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "http.h"
#include "outbox.h"
#include "probe.h"
#include "probe_sql.h"
#include "schedule.h"
#include "worker.h"

/* a phase of a turn; runs inside its own transaction with a snapshot */
typedef void (*WorkerPhaseFn) (void *arg);

/* what the database worker did last turn, so that it logs changes once */
typedef enum WorkerMode
{
	WORKER_MODE_STARTING,
	WORKER_MODE_DISABLED,
	WORKER_MODE_STANDBY,
	WORKER_MODE_NO_EXTENSION,
	WORKER_MODE_WORKING
} WorkerMode;

/* a database worker the launcher starts, and what it knows of it */
typedef struct WorkerChild
{
	WorkerRole	role;
	const char *name;			/* bgw_name and bgw_type */
	BackgroundWorkerHandle *handle;
	TimestampTz last_exit;
} WorkerChild;

/* ---- forward declarations ---- */

static void worker_launcher_turn(WorkerChild *children, int nchildren, bool *missing_logged);
static bool worker_database_exists(void);
static BackgroundWorkerHandle *worker_launch(const WorkerChild *child);
static void worker_launcher_exit(int code, Datum arg);
static const char *worker_name(void);
static long worker_turn(WorkerMode *mode);
static long worker_turn_http(void);
static bool worker_http_record_due(TimestampTz now);
static bool worker_http_claim_due(TimestampTz now);
static bool worker_http_write_due(TimestampTz now);
static void worker_http_start(void);
static void worker_http_write_all(WorkerMode mode);
static long worker_http_wait_ms(void);
static long worker_turn_sql(void);
static void worker_set_mode(WorkerMode *mode, WorkerMode next, const char *state);
static bool worker_run_phase(const char *name, WorkerPhaseFn fn, void *arg);
static bool worker_lock_extension(void);
static void worker_phase_context(void *arg);
static void worker_phase_check_extension(void *arg);
static void worker_phase_release_claims(void *arg);
static void worker_phase_deliver(void *arg);

/* the longest the HTTP worker waits for a lock */
#define WORKER_LOCK_TIMEOUT "2s"
static void worker_phase_sweep(void *arg);
static void worker_phase_record_deliveries(void *arg);
static bool worker_notify_due(TimestampTz now);
static void worker_phase_record(void *arg);
static void worker_phase_claim(void *arg);
static void worker_phase_write_passes(void *arg);
static void worker_phase_prune(void *arg);
static void worker_phase_claim_sql(void *arg);
static void worker_phase_run_sql(void *arg);
static void worker_phase_next_due_sql(void *arg);

/* the database workers, as the launcher knows them (also for its exit callback) */
static WorkerChild worker_children[] = {
	{WORKER_ROLE_DATABASE, "pg_incident worker", NULL, 0},
	{WORKER_ROLE_SQL, "pg_incident sql worker", NULL, 0},
};

/* which database worker this process is */
static WorkerRole worker_role = WORKER_ROLE_DATABASE;

/* the one HTTP engine of the HTTP worker */
static HttpEngine *worker_http = NULL;

/* a phase of this turn found the extension dropped: skip the rest */
static bool worker_extension_gone = false;

/*
 * The pg_incident extension that this worker's claims, checks in flight
 * and schedule belong to; InvalidOid while it has found none. A DROP and
 * CREATE EXTENSION between two turns gives a new one, whose ids may name
 * other rows: it is treated as the old one gone.
 */
static Oid	worker_extension_oid = InvalidOid;

/*
 * The HTTP worker claims when the first probe of its schedule is due, at
 * once after a claim that filled the engine (more may be due), and at least
 * every pg_incident.naptime, so that a probe written since is seen. A turn
 * that a finished request woke therefore records it and claims only when
 * something is due.
 */
static TimestampTz worker_last_claim = 0;
static bool worker_claim_filled = false;
static TimestampTz worker_last_record = 0;

/* how often the HTTP worker publishes its probes due and checks in flight */
#define WORKER_COUNTS_INTERVAL_MS 1000
static TimestampTz worker_last_counts = 0;

/*
 * Claims are at least this far apart, and so are the transactions that
 * record results (unless the engine is full), so that the checks falling
 * due in between go in one claim and their results in one transaction,
 * instead of a claim, a look for the next due probe and a transaction for
 * each. This is the lateness a check may get from batching, and the delay
 * before its result is recorded.
 */
#define WORKER_CLAIM_BATCH_MS 20

/* SQL probes run per turn at most, so that a reload or shutdown is seen */
#define WORKER_SQL_PER_TURN 20

/* when the worker last pruned old probe results, and how often it does */
#define WORKER_PRUNE_INTERVAL_MS 10000
static TimestampTz worker_last_prune = 0;

/* a failed write of the passing checks is tried again after this */
#define WORKER_WRITE_RETRY_MS 10000
static TimestampTz worker_write_failed_at = 0;

/* writing all the passes counted: the worker stops or is disabled */
static bool worker_writing_all = false;

/* the memory context of the phase that is running, for errors */
static MemoryContext worker_turn_context = NULL;

/*
 * Register the launcher (from _PG_init, while preloaded).
 */
void
incident_worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = INCIDENT_WORKER_RESTART_SECONDS;
	strlcpy(worker.bgw_library_name, "pg_incident", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "incident_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "pg_incident launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "pg_incident launcher", BGW_MAXLEN);
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

/* ---------------------------------------------------------------------
 * The wait
 * ---------------------------------------------------------------------
 */

/*
 * Wait until the latch is set, timeout_ms passes (-1: no limit) or the
 * postmaster dies (the process exits); with an HTTP engine, also until one
 * of curl's sockets is ready or curl's timer is due, whose work is then
 * done. The latch is reset.
 */
void
incident_worker_wait(Latch *latch, long timeout_ms, HttpEngine *engine)
{
	if (engine != NULL)
		http_engine_wait(engine, latch, timeout_ms);
	else
		(void) WaitLatch(latch,
						 WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (timeout_ms >= 0 ? WL_TIMEOUT : 0),
						 timeout_ms, PG_WAIT_EXTENSION);
	ResetLatch(latch);
}

/* ---------------------------------------------------------------------
 * The launcher
 * ---------------------------------------------------------------------
 */

/*
 * Main of the launcher: start the database worker whenever its database
 * exists and it is not running.
 */
void
incident_launcher_main(Datum arg)
{
	bool		missing_logged = false;
	MemoryContext turn_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	/* shared catalogs only: pg_database */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	if (!incident_worker_state_start(WORKER_ROLE_LAUNCHER, incident_worker_database))
	{
		ereport(LOG, (errmsg("pg_incident launcher: another launcher is running; exiting")));
		proc_exit(0);
	}
	before_shmem_exit(worker_launcher_exit, (Datum) 0);

	turn_cxt = AllocSetContextCreate(TopMemoryContext, "pg_incident launcher turn",
									 ALLOCSET_DEFAULT_SIZES);

	while (!ShutdownRequestPending)
	{
		MemoryContext old;
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextReset(turn_cxt);
		old = MemoryContextSwitchTo(turn_cxt);
		worker_launcher_turn(worker_children, lengthof(worker_children), &missing_logged);
		incident_worker_state_loop();
		/* woken at once by the postmaster when a worker starts or stops */
		timeout = -1;
		for (int i = 0; i < (int) lengthof(worker_children); i++)
			if (worker_children[i].handle == NULL)
				timeout = INCIDENT_WORKER_RECHECK_MS;
		incident_worker_wait(MyLatch, timeout, NULL);
		MemoryContextSwitchTo(old);
	}

	/* exit code 1: a launcher that was told to stop is restarted */
	proc_exit(1);
}

/*
 * One turn of the launcher: notice the workers' exits, start each when due.
 */
static void
worker_launcher_turn(WorkerChild *children, int nchildren, bool *missing_logged)
{
	bool		checked = false;
	bool		exists = false;
	bool		all_running = true;

	for (int i = 0; i < nchildren; i++)
	{
		WorkerChild *child = &children[i];
		pid_t		pid;

		if (child->handle != NULL)
		{
			if (GetBackgroundWorkerPid(child->handle, &pid) != BGWH_STOPPED)
				continue;
			pfree(child->handle);
			child->handle = NULL;
			child->last_exit = GetCurrentTimestamp();
		}

		if (child->last_exit != 0 &&
			!TimestampDifferenceExceeds(child->last_exit, GetCurrentTimestamp(),
										INCIDENT_WORKER_RESTART_SECONDS * 1000))
		{
			all_running = false;
			incident_worker_state_set(WORKER_ROLE_LAUNCHER, "restarting");
			continue;
		}

		if (!checked)
		{
			exists = worker_database_exists();
			checked = true;
		}
		if (!exists)
		{
			all_running = false;
			continue;
		}

		child->handle = worker_launch(child);
		if (child->handle == NULL)
		{
			/* no free background worker slot: retry after the restart time */
			child->last_exit = GetCurrentTimestamp();
			all_running = false;
			incident_worker_state_set(WORKER_ROLE_LAUNCHER, "no free worker slot");
		}
		/* the start, and later the exit, of the worker set our latch */
	}

	if (checked && !exists)
	{
		if (!*missing_logged)
			ereport(LOG,
					(errmsg("pg_incident launcher: database \"%s\" does not exist; waiting",
							incident_worker_database),
					 errhint("Create the database, or set pg_incident.database and restart the server.")));
		*missing_logged = true;
		incident_worker_state_set(WORKER_ROLE_LAUNCHER, "waiting for the database");
		pgstat_report_activity(STATE_IDLE, "waiting for the database");
		return;
	}
	if (checked)
		*missing_logged = false;
	if (all_running)
	{
		incident_worker_state_set(WORKER_ROLE_LAUNCHER, "running");
		pgstat_report_activity(STATE_IDLE, "watching the database workers");
	}
}

/*
 * Whether pg_incident.database exists, in a short read-only transaction.
 * Connected to no database, the launcher can read only shared catalogs
 * that need no index of its own: a heap scan of pg_database, as the
 * autovacuum launcher does.
 */
static bool
worker_database_exists(void)
{
	bool		exists = false;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, "looking for the database");
	PushActiveSnapshot(GetTransactionSnapshot());

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (strcmp(NameStr(db->datname), incident_worker_database) == 0)
		{
			exists = true;
			break;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	return exists;
}

/*
 * Start a database worker; NULL if there is no free worker slot (logged).
 */
static BackgroundWorkerHandle *
worker_launch(const WorkerChild *child)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle = NULL;
	MemoryContext old;
	bool		ok;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "pg_incident", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "incident_worker_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, child->name, BGW_MAXLEN);
	strlcpy(worker.bgw_type, child->name, BGW_MAXLEN);
	worker.bgw_main_arg = Int32GetDatum((int32) child->role);
	worker.bgw_notify_pid = MyProcPid;

	/* the handle lives beyond the turn's memory context */
	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&worker, &handle);
	MemoryContextSwitchTo(old);
	if (!ok)
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("pg_incident launcher: could not start \"%s\"", child->name),
				 errdetail("All background worker slots are in use."),
				 errhint("Raise max_worker_processes; the launcher tries again in %d seconds.",
						 INCIDENT_WORKER_RESTART_SECONDS)));
		return NULL;
	}
	return handle;
}

/*
 * When the launcher exits, the database workers go too, so that a new
 * launcher never starts a second of either.
 */
static void
worker_launcher_exit(int code, Datum arg)
{
	for (int i = 0; i < (int) lengthof(worker_children); i++)
		if (worker_children[i].handle != NULL)
			TerminateBackgroundWorker(worker_children[i].handle);
}

/* ---------------------------------------------------------------------
 * The database worker
 * ---------------------------------------------------------------------
 */

/*
 * Main of a database worker; arg is its WorkerRole.
 */
void
incident_worker_main(Datum arg)
{
	WorkerMode	mode = WORKER_MODE_STARTING;

	worker_role = (WorkerRole) DatumGetInt32(arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(incident_worker_database, NULL, 0);
	if (!incident_worker_state_start(worker_role, incident_worker_database))
	{
		ereport(LOG, (errmsg("%s: another one is running; exiting", worker_name())));
		proc_exit(0);
	}
	ereport(LOG,
			(errmsg("%s: started in database \"%s\"", worker_name(), incident_worker_database)));

	worker_turn_context = AllocSetContextCreate(TopMemoryContext, "pg_incident worker turn",
												ALLOCSET_DEFAULT_SIZES);
	if (worker_role == WORKER_ROLE_DATABASE)
	{
		worker_http_start();

		/*
		 * The HTTP worker records probes, delivers and sweeps for everyone:
		 * a row a session keeps locked in an open transaction (an incident
		 * being noted, a declaration not committed) must not hold it. A
		 * phase that waits longer fails (logged), and its work is done again
		 * at a later turn.
		 */
		SetConfigOption("lock_timeout", WORKER_LOCK_TIMEOUT, PGC_SUSET, PGC_S_OVERRIDE);
	}

	while (!ShutdownRequestPending)
	{
		MemoryContext old;
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextReset(worker_turn_context);
		old = MemoryContextSwitchTo(worker_turn_context);
		timeout = worker_turn(&mode);
		incident_worker_state_loop();

		/* curl's sockets join the wait: a finished request wakes the worker */
		incident_worker_wait(MyLatch, timeout, worker_http);
		MemoryContextSwitchTo(old);
	}

	if (worker_role == WORKER_ROLE_DATABASE)
		worker_http_write_all(mode);

	/* the launcher decides whether to start the worker again */
	proc_exit(0);
}

/*
 * The name of this database worker, for its log lines.
 */
static const char *
worker_name(void)
{
	return worker_role == WORKER_ROLE_SQL ? "pg_incident sql worker" : "pg_incident worker";
}

/*
 * Log a change of what the worker does, once, and show the new state.
 */
static void
worker_set_mode(WorkerMode *mode, WorkerMode next, const char *state)
{
	if (*mode != next)
	{
		switch (next)
		{
			case WORKER_MODE_DISABLED:
				ereport(LOG, (errmsg("%s: disabled by pg_incident.enabled; waiting", worker_name())));
				break;
			case WORKER_MODE_STANDBY:
				ereport(LOG, (errmsg("%s: the server is a standby; waiting for promotion", worker_name())));
				break;
			case WORKER_MODE_NO_EXTENSION:
				ereport(LOG,
						(errmsg("%s: extension pg_incident is not installed in database \"%s\"; waiting",
								worker_name(), incident_worker_database)));
				break;
			case WORKER_MODE_WORKING:
				ereport(LOG,
						(errmsg("%s: working in database \"%s\"",
								worker_name(), incident_worker_database)));
				break;
			case WORKER_MODE_STARTING:
				break;
		}
		*mode = next;
	}
	incident_worker_state_set(worker_role, state);
	pgstat_report_activity(STATE_IDLE, state);
}

/*
 * One turn of a database worker; returns how long to wait, in ms.
 */
static long
worker_turn(WorkerMode *mode)
{
	bool		installed = false;
	long		timeout;

	if (!incident_worker_enabled)
	{
		worker_http_write_all(*mode);
		worker_set_mode(mode, WORKER_MODE_DISABLED, "disabled");
		return incident_worker_naptime;
	}

	if (RecoveryInProgress())
	{
		worker_set_mode(mode, WORKER_MODE_STANDBY, "idle on a standby");
		return incident_worker_naptime;
	}

	/*
	 * Woken by one of curl's sockets with nothing to record or claim yet:
	 * no transaction at all (this is most wake-ups under load). At least
	 * every naptime a claim is due, and the extension is looked for again.
	 */
	if (*mode == WORKER_MODE_WORKING && worker_http != NULL)
	{
		TimestampTz now = GetCurrentTimestamp();

		/* a commit's wake-up sets when to claim and sweep, without a transaction */
		(void) outbox_take_wakeup();
		if (!worker_http_record_due(now) && !worker_http_claim_due(now) && !worker_http_write_due(now) &&
			!worker_notify_due(now) &&
			!TimestampDifferenceExceeds(worker_last_prune, now, WORKER_PRUNE_INTERVAL_MS))
			return worker_http_wait_ms();
	}

	worker_extension_gone = false;
	if (!worker_run_phase("checking for the extension", worker_phase_check_extension, &installed) &&
		!worker_extension_gone)
		return INCIDENT_WORKER_RECHECK_MS;
	if (!installed)
	{
		if (worker_http != NULL && *mode != WORKER_MODE_NO_EXTENSION)
		{
			/*
			 * The requests still running are of probes that are gone, whose
			 * ids a new CREATE EXTENSION may give to other probes: they go
			 * with the engine.
			 */
			http_engine_destroy(worker_http);
			worker_http_start();
			probe_forget_checks();
			probe_schedule_forget();
			outbox_forget();
			incident_worker_state_counts(-1, -1);
		}
		worker_extension_oid = InvalidOid;
		worker_set_mode(mode, WORKER_MODE_NO_EXTENSION, "waiting for the extension");
		return Max(incident_worker_naptime, INCIDENT_WORKER_RECHECK_MS);
	}
	if (*mode != WORKER_MODE_WORKING)
	{
		/* a check left in flight by a crashed predecessor counts as not done */
		if (worker_http == NULL || http_engine_in_flight(worker_http) == 0)
			worker_run_phase("releasing claims", worker_phase_release_claims, NULL);
		worker_set_mode(mode, WORKER_MODE_WORKING, "idle");
	}

	timeout = worker_role == WORKER_ROLE_SQL ? worker_turn_sql() : worker_turn_http();

	incident_worker_state_set(worker_role, "idle");
	pgstat_report_activity(STATE_IDLE, "idle");
	return timeout;
}

/*
 * The phases of the HTTP worker's turn, each in its own transaction; a
 * failed phase does not stop the ones after it. None waits on the network:
 * the HTTP engine runs the requests during the wait between turns.
 */
static long
worker_turn_http(void)
{
	TimestampTz now = GetCurrentTimestamp();

	/* deliveries first: a finished one may let the next of its incident go */
	(void) outbox_take_wakeup();
	if (http_engine_results_waiting(worker_http, HTTP_OWNER_NOTIFICATIONS) > 0)
	{
		worker_run_phase("recording deliveries", worker_phase_record_deliveries, NULL);
		now = GetCurrentTimestamp();
	}
	if (outbox_sweep_due(now))
	{
		if (!worker_run_phase("firing escalations and reminders", worker_phase_sweep, NULL))
			outbox_sweep_failed();
		/* what it fired is delivered in this turn */
		(void) outbox_take_wakeup();
		now = GetCurrentTimestamp();
	}
	if (http_engine_capacity_left(worker_http) > 0 && outbox_due(now))
	{
		bool		claimed = worker_run_phase("delivering notifications", worker_phase_deliver, NULL);

		/* the posts leave only once their claim has committed, or never */
		http_engine_release(worker_http, claimed);
		if (!claimed)
			outbox_claim_failed();
		now = GetCurrentTimestamp();
	}

	if (worker_http_record_due(now))
	{
		worker_last_record = now;
		worker_run_phase("recording results", worker_phase_record, NULL);
		now = GetCurrentTimestamp();
	}

	if (worker_http_write_due(now))
	{
		if (!worker_run_phase("writing passing checks", worker_phase_write_passes, NULL))
			worker_write_failed_at = GetCurrentTimestamp();
		now = GetCurrentTimestamp();
	}

	if (worker_http_claim_due(now))
	{
		int			room = http_engine_capacity_left(worker_http);
		int			claimed = 0;

		worker_last_claim = now;
		worker_run_phase("claiming due probes", worker_phase_claim, &claimed);
		worker_claim_filled = claimed >= room;
	}

	/* old results go in small batches, every PRUNE_INTERVAL_MS */
	if (TimestampDifferenceExceeds(worker_last_prune, GetCurrentTimestamp(), WORKER_PRUNE_INTERVAL_MS))
	{
		worker_last_prune = GetCurrentTimestamp();
		worker_run_phase("pruning old results", worker_phase_prune, NULL);
	}

	now = GetCurrentTimestamp();
	if (TimestampDifferenceExceeds(worker_last_counts, now, WORKER_COUNTS_INTERVAL_MS))
	{
		worker_last_counts = now;
		incident_worker_state_counts(schedule_count_due(probe_schedule_current(), now),
									 http_engine_in_flight(worker_http));
	}
	return worker_http_wait_ms();
}

/*
 * Whether the results waiting are to be recorded now: the engine is full,
 * or the last recording was WORKER_CLAIM_BATCH_MS ago.
 */
static bool
worker_http_record_due(TimestampTz now)
{
	return http_engine_results_waiting(worker_http, HTTP_OWNER_PROBES) > 0 &&
		(http_engine_capacity_left(worker_http) == 0 ||
		 TimestampDifferenceExceeds(worker_last_record, now, WORKER_CLAIM_BATCH_MS));
}

/*
 * Whether to claim now: there is room, and a probe is due (and the last
 * claim filled the engine or was WORKER_CLAIM_BATCH_MS ago), or naptime
 * has passed since the last claim.
 */
static bool
worker_http_claim_due(TimestampTz now)
{
	if (http_engine_capacity_left(worker_http) <= 0)
		return false;
	if (TimestampDifferenceExceeds(worker_last_claim, now, incident_worker_naptime))
		return true;
	return schedule_next_due(probe_schedule_current()) <= now &&
		(worker_claim_filled || TimestampDifferenceExceeds(worker_last_claim, now, WORKER_CLAIM_BATCH_MS));
}

/*
 * When the counted passes are to be written (DT_NOEND: none are counted):
 * once they are pg_incident.probe_flush_interval old, and after a failed
 * write not before WORKER_WRITE_RETRY_MS has passed.
 */
static TimestampTz
worker_http_write_at(void)
{
	TimestampTz since = probe_passes_since();

	if (since == DT_NOEND)
		return DT_NOEND;
	return Max(TimestampTzPlusMilliseconds(since, incident_probe_flush_interval),
			   TimestampTzPlusMilliseconds(worker_write_failed_at, WORKER_WRITE_RETRY_MS));
}

/*
 * Whether the counted passes are to be written now.
 */
static bool
worker_http_write_due(TimestampTz now)
{
	return worker_http_write_at() <= now;
}

/*
 * Whether the HTTP worker has notifications to deliver or record now.
 */
static bool
worker_notify_due(TimestampTz now)
{
	return http_engine_results_waiting(worker_http, HTTP_OWNER_NOTIFICATIONS) > 0 || outbox_sweep_due(now) ||
		(http_engine_capacity_left(worker_http) > 0 && outbox_due(now));
}

/*
 * How long the HTTP worker may wait before its next turn has work.
 */
static long
worker_http_wait_ms(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake_at = TimestampTzPlusMilliseconds(worker_last_claim, incident_worker_naptime);
	TimestampTz write_at = worker_http_write_at();
	long		wait_ms;

	/*
	 * Wake for the next claim (with every slot busy, only a finished request
	 * or curl's timer can help), to record the results waiting, or to write
	 * the passes counted.
	 */
	if (http_engine_capacity_left(worker_http) > 0)
	{
		TimestampTz next = schedule_next_due(probe_schedule_current());

		if (!worker_claim_filled)
			next = Max(next, TimestampTzPlusMilliseconds(worker_last_claim, WORKER_CLAIM_BATCH_MS));
		wake_at = Min(wake_at, next);
	}
	if (http_engine_results_waiting(worker_http, HTTP_OWNER_PROBES) > 0)
		wake_at = Min(wake_at, TimestampTzPlusMilliseconds(worker_last_record, WORKER_CLAIM_BATCH_MS));
	/* a notification is due, or its outcome is to be recorded, at once */
	if (http_engine_capacity_left(worker_http) > 0)
		wake_at = Min(wake_at, outbox_next_due());
	wake_at = Min(wake_at, outbox_sweep_next_due());
	if (http_engine_results_waiting(worker_http, HTTP_OWNER_NOTIFICATIONS) > 0)
		wake_at = now;
	wake_at = Min(wake_at, write_at);
	if (wake_at <= now)
		return 0;
	wait_ms = (long) ((wake_at - now + 999) / 1000);
	return Min(wait_ms, (long) incident_worker_naptime);
}

/*
 * Start the HTTP worker's engine; without one it cannot work, and exits
 * (the launcher starts it again).
 */
static void
worker_http_start(void)
{
	worker_http = http_engine_create(Max(incident_max_concurrent_requests, 1));
	if (worker_http == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("%s: could not start the HTTP engine", worker_name())));
}

/*
 * On the way out, and when pg_incident.enabled is turned off: write all
 * the HTTP worker counted and did not write yet. Its checks in flight are
 * not recorded here; after a stop they run again at the next start.
 */
static void
worker_http_write_all(WorkerMode mode)
{
	if (mode != WORKER_MODE_WORKING || worker_http == NULL)
		return;
	worker_extension_gone = false;
	worker_writing_all = true;
	while (probe_passes_since() != DT_NOEND && !worker_extension_gone)
	{
		int			written = 0;

		if (!worker_run_phase("writing passing checks", worker_phase_write_passes, &written) ||
			written == 0)
			break;
	}
	worker_writing_all = false;
}

/*
 * The SQL worker's turn: claim a due SQL probe (committed, so that its
 * check is seen as in flight), then run and record it in the next
 * transaction; again until none is due or WORKER_SQL_PER_TURN ran.
 */
static long
worker_turn_sql(void)
{
	long		next_due = -1;

	for (int i = 0; i < WORKER_SQL_PER_TURN && !ShutdownRequestPending; i++)
	{
		ProbeSqlCheck *check = NULL;

		CHECK_FOR_INTERRUPTS();
		if (!worker_run_phase("claiming a due SQL probe", worker_phase_claim_sql, &check) ||
			check == NULL)
			break;
		worker_run_phase("running a SQL probe", worker_phase_run_sql, check);
	}
	worker_run_phase("finding the next due SQL probe", worker_phase_next_due_sql, &next_due);
	return next_due >= 0 ? Min((long) incident_worker_naptime, next_due) : incident_worker_naptime;
}

/*
 * Run one phase in its own transaction, with a snapshot, SPI and a share
 * lock on the extension; an error is logged and counted, the transaction
 * aborted, and false returned. With the extension dropped the phase does
 * not run, and the rest of the turn is skipped (false, nothing logged).
 */
static bool
worker_run_phase(const char *name, WorkerPhaseFn fn, void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ErrorContextCallback errcallback;
	volatile bool ok = true;

	if (worker_extension_gone)
		return false;
	incident_worker_state_activity(name);
	pgstat_report_activity(STATE_RUNNING, name);

	PG_TRY();
	{
		errcallback.callback = worker_phase_context;
		errcallback.arg = (void *) name;
		errcallback.previous = error_context_stack;
		error_context_stack = &errcallback;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());

		/* a test hook: pg_incident.worker_fail_phase names a phase to fail */
		if (incident_worker_fail_phase != NULL && incident_worker_fail_phase[0] != '\0' &&
			strcmp(incident_worker_fail_phase, name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("phase \"%s\" failed as pg_incident.worker_fail_phase asks", name)));

		if (!worker_lock_extension())
		{
			worker_extension_gone = true;
			ok = false;
		}
		else
		{
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "could not connect to SPI");
			fn(arg);
			SPI_finish();
		}

		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_stat(false);
		error_context_stack = errcallback.previous;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		error_context_stack = errcallback.previous;
		HOLD_INTERRUPTS();
		/* log it (with the phase as CONTEXT) before leaving the error state */
		EmitErrorReport();
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		incident_worker_state_error(edata->message);
		FreeErrorData(edata);
		RESUME_INTERRUPTS();
		ok = false;
	}
	PG_END_TRY();

	/* the transaction's end left us in TopMemoryContext */
	MemoryContextSwitchTo(cxt);
	pgstat_report_stat(false);
	return ok;
}

/*
 * Take a share lock on the pg_incident extension for this transaction,
 * and tell whether it still exists. DROP EXTENSION locks the extension
 * exclusively before anything it drops, so it either committed before the
 * lock was granted (the lookup after it, with the invalidations the lock
 * brought in, misses) or waits for this transaction to end. An extension
 * created again since the worker last saw it counts as gone, once: the
 * worker forgets what it held, and takes the new one up at its next turn.
 */
static bool
worker_lock_extension(void)
{
	Oid			extension = get_extension_oid("pg_incident", true);
	char	   *name;

	if (!OidIsValid(extension))
		return false;
	LockDatabaseObject(ExtensionRelationId, extension, 0, AccessShareLock);
	name = get_extension_name(extension);
	if (name == NULL)
		return false;
	pfree(name);
	if (OidIsValid(worker_extension_oid) && extension != worker_extension_oid)
		return false;
	worker_extension_oid = extension;
	return true;
}

/*
 * Error context of a phase: which phase failed.
 */
static void
worker_phase_context(void *arg)
{
	errcontext("pg_incident worker phase \"%s\"", (const char *) arg);
}

/*
 * Phase: pg_incident is installed in this database (worker_run_phase runs
 * a phase only then).
 */
static void
worker_phase_check_extension(void *arg)
{
	*(bool *) arg = true;
}

/*
 * Phase: clear the claims of this worker's kind of checks: at its start,
 * none is in flight.
 */
static void
worker_phase_release_claims(void *arg)
{
	probe_release_claims(worker_role == WORKER_ROLE_SQL ? "sql" : "http");
	if (worker_role != WORKER_ROLE_SQL)
		outbox_release_claims();
}

/*
 * Phase: claim the due notifications and hand them to the engine, ahead of
 * the probes (outbox.c).
 */
static void
worker_phase_deliver(void *arg)
{
	(void) outbox_claim(worker_http, http_engine_capacity_left(worker_http), incident_max_response_bytes);
}

/*
 * Phase: fire the escalation levels and reminders that are due.
 */
static void
worker_phase_sweep(void *arg)
{
	(void) outbox_sweep();
}

/*
 * Phase: record what became of the deliveries the engine finished.
 */
static void
worker_phase_record_deliveries(void *arg)
{
	(void) outbox_record_results(worker_http, incident_notification_retry_max,
								 incident_notification_dead_after);
}

/*
 * Phase: record the results the HTTP engine finished (probe.c judges them,
 * counts a steady probe's passes, and has incident__probe_record decide
 * what the rest mean).
 */
static void
worker_phase_record(void *arg)
{
	incident_worker_state_done(probe_record_results(worker_http, incident_probe_flush_interval));
}

/*
 * Phase: write the passes counted pg_incident.probe_flush_interval ago (or
 * all, when the worker stops); *arg, if given, gets how many probes.
 */
static void
worker_phase_write_passes(void *arg)
{
	TimestampTz older_than = worker_writing_all ? DT_NOEND :
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), -incident_probe_flush_interval);
	int			n = probe_write_passes(older_than, INT_MAX);

	if (arg != NULL)
		*(int *) arg = n;
}

/*
 * Phase: read the schedule again if a probe changed, then hand the due
 * HTTP probes to the engine, as many as it has room for.
 */
static void
worker_phase_claim(void *arg)
{
	probe_schedule_refresh();
	*(int *) arg = probe_claim_http(worker_http, GetCurrentTimestamp(),
									incident_max_response_bytes, incident_http_timeout);
}

/*
 * Phase: delete a batch of probe results older than pg_incident.result_retention.
 */
static void
worker_phase_prune(void *arg)
{
	probe_prune(incident_result_retention);
	outbox_prune(incident_result_retention);
}

/*
 * Phase: claim the SQL probe that is due first; *arg gets its check, in
 * the turn's memory context, or NULL.
 */
static void
worker_phase_claim_sql(void *arg)
{
	*(ProbeSqlCheck **) arg = probe_sql_claim(worker_turn_context);
}

/*
 * Phase: run a claimed SQL probe's query, read-only as its run_as role,
 * and record the result. SIGTERM cancels the query at once meanwhile.
 */
static void
worker_phase_run_sql(void *arg)
{
	ProbeSqlCheck *check = (ProbeSqlCheck *) arg;
	char	   *volatile result = NULL;
	char		activity[NAMEDATALEN + 128];

	snprintf(activity, sizeof(activity), "running SQL probe %s", check->name);
	pgstat_report_activity(STATE_RUNNING, activity);

	/*
	 * A shutdown asked for before the switch leaves the claim, which the
	 * next worker releases.
	 */
	pqsignal(SIGTERM, die);
	if (ShutdownRequestPending)
	{
		pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
		return;
	}
	PG_TRY();
	{
		result = probe_sql_run(check);
	}
	PG_FINALLY();
	{
		pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	}
	PG_END_TRY();

	probe_record_result(check->probe_id, result);
}

/*
 * Phase: in how many ms the next SQL probe is due.
 */
static void
worker_phase_next_due_sql(void *arg)
{
	*(long *) arg = probe_next_due_ms("sql");
}
