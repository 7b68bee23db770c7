/*-------------------------------------------------------------------------
 *
 * schedule.c
 *		The HTTP worker's schedule of its probes, kept in memory: when each
 *		enabled HTTP probe is due, which checks are in flight, and the
 *		passing checks counted but not yet written.
 *
 * The worker loads the schedule from incident_probe and
 * incident_probe_state (probe.c, through the configuration cache, so that
 * a change to either table reloads it) and then claims due checks from it
 * without touching a table: a pairing heap keeps the queued probes in
 * next_run_at order, so taking the first due one costs O(log n) however many
 * probes there are. A probe whose check is in flight is out of the heap
 * until its result comes back.
 *
 * A passing check of a steady probe (up, no failure, no flip in the last 30
 * minutes) changes nothing but counts: the check count, the latency sum,
 * maximum and histogram of its hourly roll-up, its run of successes and when
 * it runs next. Those are added up here, per probe, and written in batches
 * (probe.c) once they are pg_incident.probe_flush_interval old, before
 * anything else is recorded for the probe, when a pass falls in another
 * quarter of an hour (so that a batch never straddles an hour of any time
 * zone), and when the worker stops. with_passes lists the probes with
 * passes, the oldest batch first.
 *
 * Nothing here runs SQL or raises an error but out of memory; all of it
 * lives in the schedule's own memory context, so a reload builds a new
 * schedule and drops the old one whole.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "probe.h"
#include "schedule.h"

/* passes of one batch fall in one quarter of an hour, in microseconds */
#define SCHEDULE_QUARTER_USECS ((int64) 15 * 60 * USECS_PER_SEC)

static int	schedule_compare(const pairingheap_node *a, const pairingheap_node *b, void *arg);

/*
 * A new, empty schedule in a memory context of its own.
 */
ProbeSchedule *
schedule_create(void)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "pg_incident probe schedule",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	ProbeSchedule *schedule = palloc0(sizeof(ProbeSchedule));
	HASHCTL		ctl;

	schedule->cxt = cxt;
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(ProbeEntry);
	ctl.hcxt = cxt;
	schedule->entries = hash_create("pg_incident probe schedule", 1024, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	schedule->heap = pairingheap_allocate(schedule_compare, NULL);
	dlist_init(&schedule->with_passes);
	MemoryContextSwitchTo(old);
	return schedule;
}

/*
 * Frees the schedule and everything in it.
 */
void
schedule_destroy(ProbeSchedule *schedule)
{
	if (schedule != NULL)
		MemoryContextDelete(schedule->cxt);
}

/*
 * Heap order: the entry due first is on top (pairingheap keeps the
 * greatest first, so an earlier time compares greater).
 */
static int
schedule_compare(const pairingheap_node *a, const pairingheap_node *b, void *arg)
{
	const ProbeEntry *ea = pairingheap_const_container(ProbeEntry, node, a);
	const ProbeEntry *eb = pairingheap_const_container(ProbeEntry, node, b);

	if (ea->next_run_at < eb->next_run_at)
		return 1;
	if (ea->next_run_at > eb->next_run_at)
		return -1;
	return 0;
}

/*
 * A new entry for the probe, zeroed, not queued; the caller fills its
 * configuration (in the schedule's context) and queues it.
 */
ProbeEntry *
schedule_add(ProbeSchedule *schedule, int64 probe_id)
{
	bool		found;
	ProbeEntry *entry = hash_search(schedule->entries, &probe_id, HASH_ENTER, &found);

	if (found)
		elog(ERROR, "probe " INT64_FORMAT " is twice in the schedule", probe_id);
	memset(entry, 0, sizeof(ProbeEntry));
	entry->probe_id = probe_id;
	schedule->nentries++;
	return entry;
}

/*
 * The probe's entry, or NULL when the probe is not scheduled (dropped,
 * disabled, or not an HTTP probe).
 */
ProbeEntry *
schedule_find(ProbeSchedule *schedule, int64 probe_id)
{
	if (schedule == NULL)
		return NULL;
	return hash_search(schedule->entries, &probe_id, HASH_FIND, NULL);
}

/*
 * When the entry's next check is due after one due at its next_run_at:
 * one interval later, or, if that is past, the first time after now on the
 * probe's own beat (next_run_at plus a whole number of intervals). Probes
 * that fell behind together (the worker was off, a burst) so go back to
 * their own times instead of staying bunched; a missed check is not made
 * up twice.
 */
TimestampTz
schedule_next_run(const ProbeEntry *entry, TimestampTz now)
{
	int64		every = entry->every_ms * INT64CONST(1000);
	TimestampTz next = entry->next_run_at + every;

	if (every <= 0)
		return now;
	if (next <= now)
		next += ((now - next) / every + 1) * every;
	return next;
}

/*
 * Queues the entry for a check at the given time (it is no longer in
 * flight).
 */
void
schedule_queue(ProbeSchedule *schedule, ProbeEntry *entry, TimestampTz at)
{
	if (entry->queued)
		pairingheap_remove(schedule->heap, &entry->node);
	entry->next_run_at = at;
	entry->in_flight = false;
	entry->queued = true;
	pairingheap_add(schedule->heap, &entry->node);
}

/*
 * Takes the first entry due by now out of the queue, marked in flight; NULL
 * when none is due.
 */
ProbeEntry *
schedule_take_due(ProbeSchedule *schedule, TimestampTz now)
{
	ProbeEntry *entry;

	if (pairingheap_is_empty(schedule->heap))
		return NULL;
	entry = pairingheap_container(ProbeEntry, node, pairingheap_first(schedule->heap));
	if (entry->next_run_at > now)
		return NULL;
	(void) pairingheap_remove_first(schedule->heap);
	entry->queued = false;
	entry->in_flight = true;
	return entry;
}

/*
 * When the first queued entry is due; DT_NOEND when none is queued.
 */
TimestampTz
schedule_next_due(ProbeSchedule *schedule)
{
	if (schedule == NULL || pairingheap_is_empty(schedule->heap))
		return DT_NOEND;
	return pairingheap_container(ProbeEntry, node, pairingheap_first(schedule->heap))->next_run_at;
}

/*
 * How many queued entries are due by now (a walk over all of them, for
 * the worker's status once a second, not for every turn; bounded by the
 * probes in the schedule, and with no CHECK_FOR_INTERRUPTS(), whose error
 * would leave the hash walk open).
 */
int
schedule_count_due(ProbeSchedule *schedule, TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	ProbeEntry *entry;
	int			n = 0;

	if (schedule == NULL)
		return 0;
	hash_seq_init(&seq, schedule->entries);
	while ((entry = hash_seq_search(&seq)) != NULL)
		if (entry->queued && entry->next_run_at <= now)
			n++;
	return n;
}

/*
 * Whether a pass at this time joins the entry's batch: the batch is empty,
 * or the pass falls in the same quarter of an hour (UTC quarters are
 * quarters of every time zone's hours).
 */
bool
schedule_pass_fits(const ProbeEntry *entry, TimestampTz at)
{
	if (entry->passes.checks == 0)
		return true;
	return entry->passes.first_at / SCHEDULE_QUARTER_USECS == at / SCHEDULE_QUARTER_USECS;
}

/*
 * Counts a passing check of the entry (schedule_pass_fits said it fits):
 * its time, its latency, and the latency's histogram bucket, where bucket k
 * (1 to 16) holds latencies below 2^(k-1) ms, as incident__probe_record
 * counts them.
 */
void
schedule_add_pass(ProbeSchedule *schedule, ProbeEntry *entry, TimestampTz at, double latency_ms)
{
	ProbePasses *p = &entry->passes;
	int			bucket;

	Assert(schedule_pass_fits(entry, at));
	if (p->checks == 0)
	{
		memset(p, 0, sizeof(ProbePasses));
		p->first_at = at;
		dlist_push_tail(&schedule->with_passes, &entry->passes_node);
	}
	p->checks++;
	p->last_at = Max(p->last_at, at);
	p->latency_sum += latency_ms;
	p->latency_max = Max(p->latency_max, latency_ms);
	bucket = latency_ms < 1 ? 1 : Min(PROBE_LATENCY_BUCKETS, 2 + (int) floor(log2(latency_ms)));
	p->buckets[bucket - 1]++;
}

/*
 * Moves the entry's passes into *out (checks 0 when it has none) and
 * empties its batch.
 */
void
schedule_take_passes(ProbeSchedule *schedule, ProbeEntry *entry, ProbePasses *out)
{
	*out = entry->passes;
	if (entry->passes.checks == 0)
		return;
	dlist_delete(&entry->passes_node);
	memset(&entry->passes, 0, sizeof(ProbePasses));
}

/*
 * The entry whose batch of passes is the oldest, or NULL when none has
 * passes.
 */
ProbeEntry *
schedule_oldest_passes(ProbeSchedule *schedule)
{
	if (schedule == NULL || dlist_is_empty(&schedule->with_passes))
		return NULL;
	return dlist_head_element(ProbeEntry, passes_node, &schedule->with_passes);
}
