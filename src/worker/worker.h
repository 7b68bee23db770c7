/*-------------------------------------------------------------------------
 *
 * worker.h
 *		The background worker of pg_incident: its settings, its start from
 *		_PG_init, its shared status, and the wait that the HTTP engine
 *		joins (src/worker/worker.c, src/worker/worker_state.c).
 *
 * Two processes make up the worker. The launcher (connected to no
 * database) watches pg_database and starts the database worker when
 * pg_incident.database exists; the database worker connects there, waits
 * for CREATE EXTENSION pg_incident, and runs the playbook's turns, each
 * phase in its own short transaction. docs/worker.md says why.
 *
 * The wait. Each turn of the database worker ends in incident_worker_wait(),
 * one WaitEventSet over the process latch, postmaster death and, when a
 * WorkerWaitSource is given, that source's sockets. The HTTP engine is meant
 * to be such a source: it adds curl's sockets to the set in prepare() and
 * returns curl's next timeout; the wait calls ready() for each socket that
 * became readable or writable and timeout() when that timeout has passed.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INCIDENT_WORKER_H
#define PG_INCIDENT_WORKER_H

#include "datatype/timestamp.h"
#include "storage/latch.h"

/*
 * Something with sockets that the worker's wait watches as well as its
 * latch (the HTTP engine's curl sockets). Every member but arg is optional.
 *
 *	max_sockets(arg)   how many sockets prepare() may add at most; called
 *	                   first, to size the WaitEventSet
 *	prepare(arg, set)  adds the sockets with AddWaitEventToSet(set,
 *	                   WL_SOCKET_READABLE and/or WL_SOCKET_WRITEABLE, fd,
 *	                   NULL, NULL) and returns in how many ms the source
 *	                   next wants timeout() called, or -1 for never
 *	ready(arg, fd, readable, writable)
 *	                   a socket that prepare() added is ready
 *	timeout(arg)       the time that prepare() returned has passed
 *
 * The callbacks run outside any transaction, in the worker's per-turn
 * memory context; they must not throw for a single failed request.
 */
typedef struct WorkerWaitSource
{
	int			(*max_sockets) (void *arg);
	long		(*prepare) (void *arg, WaitEventSet *set);
	void		(*ready) (void *arg, pgsocket fd, bool readable, bool writable);
	void		(*timeout) (void *arg);
	void	   *arg;
} WorkerWaitSource;

/* ---- settings (defined in pg_incident.c) ---- */
extern bool incident_worker_enabled;
extern char *incident_worker_database;
extern int	incident_worker_naptime;
extern int	incident_max_concurrent_requests;
extern int	incident_http_timeout;
extern int	incident_max_response_bytes;
extern int	incident_result_retention;
extern char *incident_worker_fail_phase;

/* seconds after which the launcher restarts a database worker that exited */
#define INCIDENT_WORKER_RESTART_SECONDS 5
/* ms between two looks for the extension or the database while waiting */
#define INCIDENT_WORKER_RECHECK_MS 2000

/* ---- worker.c ---- */
extern void incident_worker_register(void);
extern void incident_worker_wait(Latch *latch, long timeout_ms,
								 const WorkerWaitSource *source);
extern PGDLLEXPORT void incident_launcher_main(Datum arg);
extern PGDLLEXPORT void incident_worker_main(Datum arg);

/* ---- worker_state.c: the status in shared memory ---- */
typedef enum WorkerRole
{
	WORKER_ROLE_LAUNCHER,
	WORKER_ROLE_DATABASE
} WorkerRole;

extern void incident_worker_state_init(void);
extern bool incident_worker_state_start(WorkerRole role, const char *database);
extern void incident_worker_state_set(WorkerRole role, const char *state);
extern void incident_worker_state_activity(const char *activity);
extern void incident_worker_state_loop(void);
extern void incident_worker_state_error(const char *message);

#endif							/* PG_INCIDENT_WORKER_H */
