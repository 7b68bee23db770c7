/*-------------------------------------------------------------------------
 *
 * probe.h
 *		The worker's HTTP probes (src/worker/probe.c): their schedule,
 *		claim, judge, record; and what the SQL probes (probe_sql.c) and
 *		incident_probe_run() (probe_run.c) share with them.
 *
 * Every function runs inside a transaction that the caller started, with
 * SPI connected, and never waits on the network.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INCIDENT_PROBE_H
#define PG_INCIDENT_PROBE_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"

#include "http.h"

/* redirects an HTTP probe follows at most */
#define PROBE_MAX_REDIRECTS 5

/*
 * How long matching a body against expect_body_regex may take: it runs in
 * the record phase, while no request makes progress.
 */
#define PROBE_REGEX_TIMEOUT_MS 200

/*
 * The columns of incident_probe p that probe_http_request reads, in its
 * order: id, url, method, headers, body, timeout in ms, verify_tls,
 * expect_status, expect_body, expect_body_regex.
 */
#define PROBE_HTTP_COLUMNS \
	"p.id, p.url, p.method, p.headers, p.body," \
	" (pg_catalog.date_part('epoch', p.timeout) OPERATOR(pg_catalog.*) 1000)::pg_catalog.int4," \
	" p.verify_tls, p.expect_status, p.expect_body, p.expect_body_regex"
#define PROBE_HTTP_NCOLUMNS 10

/*
 * In a claim's RETURNING list (incident_probe_state s, just claimed): how
 * late, in ms, the check is claimed after it was due.
 */
#define PROBE_LATENESS_COLUMN \
	"(pg_catalog.date_part('epoch', s.claimed_at OPERATOR(pg_catalog.-) s.next_run_at)" \
	" OPERATOR(pg_catalog.*) 1000)::pg_catalog.float8"

/* what an HTTP result is judged by */
typedef struct ProbeExpect
{
	int64		probe_id;		/* hash key, where kept in a hash */
	int			nstatus;		/* 0: 200 to 399 */
	int		   *status;
	char	   *body;			/* a text to contain; NULL: any body */
	char	   *body_regex;		/* a regular expression to match; NULL: any body */
} ProbeExpect;

/* an HTTP probe's request and expectations, read from PROBE_HTTP_COLUMNS */
typedef struct ProbeHttpConfig
{
	int64		probe_id;
	char	   *url;
	HttpMethod	method;
	char	   *body;			/* POST body, or NULL */
	char	  **headers;
	int			nheaders;
	int			timeout_ms;
	bool		verify_tls;
	ProbeExpect expect;
} ProbeHttpConfig;

/* the HTTP worker's schedule (schedule.h) */
typedef struct ProbeSchedule ProbeSchedule;

extern const char *probe_schema(void);
extern ErrorData *probe_try(void (*fn) (void *arg), void *arg, int timeout_ms, bool *timed_out);
extern ErrorData *probe_try_keep(void (*fn) (void *arg), void *arg);
extern void probe_release_claims(const char *kind);
extern void probe_http_config(HeapTuple tup, TupleDesc desc, ProbeHttpConfig *config,
							  MemoryContext cxt);
extern void probe_http_request(const ProbeHttpConfig *config, HttpRequest *req,
							   int max_bytes, int max_timeout_ms);
extern const char *probe_verdict(const HttpResult *res, const ProbeExpect *expect, char *detail,
								 size_t detail_len);
extern char *probe_judge(const HttpResult *res, const ProbeExpect *expect);
extern bool probe_record_result(int64 probe_id, const char *result_json);
extern long probe_next_due_ms(const char *kind);
extern int	probe_prune(int retention_s);

/* the HTTP worker: its schedule, its claims, its results */
extern ProbeSchedule *probe_schedule_current(void);
extern void probe_schedule_refresh(void);
extern void probe_schedule_forget(void);
extern int	probe_claim_http(HttpEngine *engine, TimestampTz now, int max_response_bytes,
							 int max_timeout_ms);
extern int	probe_record_results(HttpEngine *engine, int flush_interval_ms);
extern int	probe_write_passes(TimestampTz older_than, int max);
extern TimestampTz probe_passes_since(void);
extern void probe_forget_checks(void);

#endif							/* PG_INCIDENT_PROBE_H */
