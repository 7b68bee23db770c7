/*-------------------------------------------------------------------------
 *
 * probe.h
 *		The worker's HTTP probes (src/worker/probe.c): claim, judge, record.
 *
 * Every function runs inside a transaction that the caller (worker.c)
 * started, with SPI connected, and never waits on the network.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INCIDENT_PROBE_H
#define PG_INCIDENT_PROBE_H

#include "http.h"

extern void probe_release_claims(void);
extern int	probe_claim_http(HttpEngine *engine, int max, int max_response_bytes,
							 int max_timeout_ms);
extern int	probe_record_results(HttpEngine *engine);
extern long probe_next_due_ms(void);
extern void probe_discard_results(HttpEngine *engine);
extern int	probe_prune(int retention_s);

#endif							/* PG_INCIDENT_PROBE_H */
