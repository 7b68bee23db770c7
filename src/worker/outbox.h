/*-------------------------------------------------------------------------
 *
 * outbox.h
 *		Delivering notifications and firing escalations and reminders in
 *		the HTTP worker (src/worker/outbox.c).
 *
 * The HTTP worker's turn asks when a claim or a sweep is due, runs each in
 * a phase of its own, and waits until the earliest of outbox_next_due()
 * and outbox_sweep_next_due(). outbox_claim submits its posts held; the
 * turn releases them once the claim's transaction has committed.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INCIDENT_OUTBOX_H
#define PG_INCIDENT_OUTBOX_H

#include "datatype/timestamp.h"

#include "http.h"

/* deliveries */
extern bool outbox_take_wakeup(void);
extern bool outbox_due(TimestampTz now);
extern TimestampTz outbox_next_due(void);
extern void outbox_claim_failed(void);
extern int	outbox_claim(HttpEngine *engine, int room, int max_bytes);
extern int	outbox_record_results(HttpEngine *engine, int retry_max_ms, int dead_after_s);
extern void outbox_release_claims(void);
extern void outbox_prune(int retention_s);
extern void outbox_forget(void);

/* escalations and reminders */
extern bool outbox_sweep_due(TimestampTz now);
extern TimestampTz outbox_sweep_next_due(void);
extern void outbox_sweep_failed(void);
extern int	outbox_sweep(void);

#endif							/* PG_INCIDENT_OUTBOX_H */
