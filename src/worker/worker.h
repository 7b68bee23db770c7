/*-------------------------------------------------------------------------
 *
 * worker.h
 *		The background worker of pg_incident: its settings, its start from
 *		_PG_init, its shared status, and the wait that the HTTP engine
 *		joins (src/worker/worker.c, src/worker/worker_state.c).
 *
 * Three processes make up the worker. The launcher (connected to no
 * database) watches pg_database and starts the two database workers when
 * pg_incident.database exists; they connect there, wait for CREATE
 * EXTENSION pg_incident, and run their turns, each phase in its own short
 * transaction: the HTTP worker its HTTP probes, the SQL worker its SQL
 * probes. docs/worker.md says why.
 *
 * The wait. Each turn of a database worker ends in incident_worker_wait():
 * WaitLatch, or, in the HTTP worker, the HTTP engine's wait over the latch
 * and curl's sockets (http_engine_wait), so that a finished request wakes
 * the worker as its latch does.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INCIDENT_WORKER_H
#define PG_INCIDENT_WORKER_H

#include "datatype/timestamp.h"
#include "storage/latch.h"

#include "http.h"

/* ---- settings (defined in pg_incident.c) ---- */
extern bool incident_worker_enabled;
extern char *incident_worker_database;
extern int	incident_worker_naptime;
extern int	incident_max_concurrent_requests;
extern int	incident_http_timeout;
extern int	incident_max_response_bytes;
extern int	incident_result_retention;
extern char *incident_worker_fail_phase;
extern bool incident_sql_probe_allow_superuser;
extern int	incident_probe_flush_interval;
extern int	incident_notification_retry_max;
extern int	incident_notification_dead_after;

/* whose results the HTTP worker's engine queues (HttpRequest.owner) */
#define HTTP_OWNER_PROBES			0
#define HTTP_OWNER_NOTIFICATIONS	1

/* seconds after which the launcher restarts a database worker that exited */
#define INCIDENT_WORKER_RESTART_SECONDS 5
/* ms between two looks for the extension or the database while waiting */
#define INCIDENT_WORKER_RECHECK_MS 2000

/* ---- worker.c ---- */
extern void incident_worker_register(void);
extern void incident_worker_wait(Latch *latch, long timeout_ms, HttpEngine *engine);
extern PGDLLEXPORT void incident_launcher_main(Datum arg);
extern PGDLLEXPORT void incident_worker_main(Datum arg);

/* ---- worker_state.c: the status in shared memory ---- */
typedef enum WorkerRole
{
	WORKER_ROLE_LAUNCHER,
	WORKER_ROLE_DATABASE,		/* "pg_incident worker": HTTP probes */
	WORKER_ROLE_SQL				/* "pg_incident sql worker": SQL probes */
} WorkerRole;

#define WORKER_NROLES 3

extern void incident_worker_state_init(void);
extern bool incident_worker_state_start(WorkerRole role, const char *database);
extern void incident_worker_state_set(WorkerRole role, const char *state);
extern void incident_worker_state_activity(const char *activity);
extern void incident_worker_state_loop(void);
extern void incident_worker_state_error(const char *message);
extern void incident_worker_state_claimed(double late_ms);
extern void incident_worker_state_done(int n);
extern void incident_worker_state_counts(int due, int in_flight);
extern bool incident_worker_is_worker(void);
extern void incident_worker_wake_notifications(void);
extern bool incident_worker_notifications_woken(bool clear);

/* buckets of the lateness histogram (worker_state.c has their edges) */
#define WORKER_LATE_BUCKETS 16

#endif							/* PG_INCIDENT_WORKER_H */
