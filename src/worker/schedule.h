/*-------------------------------------------------------------------------
 *
 * schedule.h
 *		The HTTP worker's schedule of its probes, in memory
 *		(src/worker/schedule.c): which probe is due when, which checks are
 *		in flight, and the passing checks not yet written.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INCIDENT_SCHEDULE_H
#define PG_INCIDENT_SCHEDULE_H

#include "datatype/timestamp.h"
#include "lib/ilist.h"
#include "lib/pairingheap.h"
#include "utils/hsearch.h"

#include "probe.h"

/* buckets of a probe's latency histogram (incident_probe_rollup.latency_buckets) */
#define PROBE_LATENCY_BUCKETS 16

/* passing checks of one probe counted in memory, all in one quarter of an hour */
typedef struct ProbePasses
{
	int			checks;
	TimestampTz first_at;
	TimestampTz last_at;
	double		latency_sum;
	double		latency_max;
	int32		buckets[PROBE_LATENCY_BUCKETS];
} ProbePasses;

/* one enabled HTTP probe */
typedef struct ProbeEntry
{
	int64		probe_id;		/* hash key */
	pairingheap_node node;		/* in the heap while queued */
	bool		queued;			/* waiting for next_run_at */
	bool		in_flight;		/* handed to the HTTP engine */
	bool		steady;			/* up, no failure, no flip of the last 30 min */
	TimestampTz next_run_at;	/* when its next check is due */
	TimestampTz stored_next_run_at; /* incident_probe_state.next_run_at as last read
									 * or written by this worker */
	int64		every_ms;
	double		degraded_after_ms;
	ProbeHttpConfig config;
	ProbePasses passes;			/* not yet written */
	dlist_node	passes_node;	/* in with_passes while passes.checks > 0 */
} ProbeEntry;

/* (the typedef is in probe.h, whose functions fill a schedule) */
struct ProbeSchedule
{
	MemoryContext cxt;			/* everything of the schedule, configs included */
	HTAB	   *entries;		/* ProbeEntry by probe id */
	pairingheap *heap;			/* queued entries, the first due on top */
	dlist_head	with_passes;	/* entries with passes, the oldest first */
	int			nentries;
};

extern ProbeSchedule *schedule_create(void);
extern void schedule_destroy(ProbeSchedule *schedule);
extern ProbeEntry *schedule_add(ProbeSchedule *schedule, int64 probe_id);
extern ProbeEntry *schedule_find(ProbeSchedule *schedule, int64 probe_id);
extern TimestampTz schedule_next_run(const ProbeEntry *entry, TimestampTz now);
extern void schedule_queue(ProbeSchedule *schedule, ProbeEntry *entry, TimestampTz at);
extern ProbeEntry *schedule_take_due(ProbeSchedule *schedule, TimestampTz now);
extern TimestampTz schedule_next_due(ProbeSchedule *schedule);
extern int	schedule_count_due(ProbeSchedule *schedule, TimestampTz now);
extern bool schedule_pass_fits(const ProbeEntry *entry, TimestampTz at);
extern void schedule_add_pass(ProbeSchedule *schedule, ProbeEntry *entry, TimestampTz at,
							  double latency_ms);
extern void schedule_take_passes(ProbeSchedule *schedule, ProbeEntry *entry, ProbePasses *out);
extern ProbeEntry *schedule_oldest_passes(ProbeSchedule *schedule);

#endif							/* PG_INCIDENT_SCHEDULE_H */
