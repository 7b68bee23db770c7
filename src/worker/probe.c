/*-------------------------------------------------------------------------
 *
 * probe.c
 *		The worker's HTTP probes: keep their schedule, hand the due ones to
 *		the HTTP engine, judge what comes back and record it.
 *
 * Each function here runs inside a transaction that worker.c started and
 * commits; none starts one or waits on the network. A turn of the HTTP
 * worker refreshes the schedule if a probe changed (probe_schedule_refresh),
 * records the results that came in (probe_record_results), writes the
 * passing checks counted long enough (probe_write_passes) and claims the
 * probes that are due (probe_claim_http); between turns it waits on its
 * latch and the engine's sockets. What a result means (hysteresis,
 * incidents, recovery) is decided in SQL, by incident__probe_record()
 * (extension/50_probes.sql), so that the worker and a person go through one
 * set of rules.
 *
 * The schedule (schedule.c) is read from incident_probe and
 * incident_probe_state through the configuration cache (confcache.c): a
 * statement trigger on each table marks it stale when a person changes a
 * probe (the worker's own writes do not count), and it is read again,
 * keeping what it knew of the probes that stay (their checks in flight,
 * their passes not yet written, when they run next unless someone moved
 * that). A claim is in memory only: at start the worker runs every probe
 * whose stored next_run_at has come, so a check left in flight by a crashed
 * predecessor runs again.
 *
 * The fast path. A passing check of a steady probe (up, no failure, no
 * flip in the last 30 minutes) would change nothing in incident__probe_record
 * but counts; it is counted in the schedule instead, and the counts are
 * written per probe in one batch (incident__probe_record_passes) once they
 * are pg_incident.probe_flush_interval old, before any other result of the
 * probe, and when the worker stops. Every other result goes through
 * incident__probe_record at once, after the probe's counted passes. What the
 * engine needs to judge a result (expected status codes and body) is kept
 * per request in TopMemoryContext until the result is recorded.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "regex/regex.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "../confcache.h"
#include "http.h"
#include "probe.h"
#include "schedule.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(incident__probe_state_changed);

/* the probes written per call of incident__probe_record_passes */
#define PROBE_PASSES_BATCH 1000

/* a record phase takes results for this long at most, then lets curl run */
#define PROBE_RECORD_BUDGET_MS 100

/* passes of a probe to write, and when it runs next (0: leave it) */
typedef struct ProbeWrite
{
	int64		probe_id;
	ProbePasses passes;
	TimestampTz next_run_at;
} ProbeWrite;

/* the expectations of the checks in flight, by probe id */
static HTAB *probe_expects = NULL;

/* the HTTP worker's schedule, and the cache that says when to read it again */
static ProbeSchedule *probe_schedule = NULL;
static ConfCache *probe_schedule_cache = NULL;
static bool probe_schedule_stale = true;

/* passes of probes that left the schedule (disabled), not yet written */
static ProbeWrite *probe_orphans = NULL;
static int	probe_norphans = 0;
static int	probe_orphans_size = 0;

static ProbeExpect *probe_expect_enter(int64 probe_id, const ProbeExpect *from);
static void probe_expect_forget(int64 probe_id);
static void probe_schedule_reset(void *arg);
static void probe_schedule_loader(const char *schema, void *arg);
static void probe_keep_orphan(const ProbeEntry *entry);
static void probe_body_match(void *arg);
static bool probe_body_matches(const HttpResult *res, const char *regex, char *error, size_t errlen);
static char *probe_result_json(const HttpResult *res, const char *failure, const char *detail);
static void probe_write(ProbeWrite *writes, int n);
static void probe_write_entry(ProbeEntry *entry);
static void probe_read_back(ProbeEntry *entry);

/*
 * The extension's schema, quoted for a query; an error if it is not
 * installed (the worker checks that first).
 */
const char *
probe_schema(void)
{
	Oid			nsp = confcache_extension_schema();
	char	   *name = OidIsValid(nsp) ? get_namespace_name(nsp) : NULL;

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"pg_incident\" is not installed in this database")));
	return quote_identifier(name);
}

/*
 * Keeps a copy of an expectation for the probe's check in flight, creating
 * the hash on first use.
 */
static ProbeExpect *
probe_expect_enter(int64 probe_id, const ProbeExpect *from)
{
	ProbeExpect *e;
	bool		found;

	if (probe_expects == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(ProbeExpect);
		ctl.hcxt = TopMemoryContext;
		probe_expects = hash_create("pg_incident probe expectations", 256, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(probe_expects, &probe_id, HASH_ENTER, &found);
	if (found)
	{
		if (e->status)
			pfree(e->status);
		if (e->body)
			pfree(e->body);
		if (e->body_regex)
			pfree(e->body_regex);
	}
	e->nstatus = from->nstatus;
	e->status = NULL;
	if (from->nstatus > 0)
	{
		e->status = MemoryContextAlloc(TopMemoryContext, sizeof(int) * from->nstatus);
		memcpy(e->status, from->status, sizeof(int) * from->nstatus);
	}
	e->body = from->body ? MemoryContextStrdup(TopMemoryContext, from->body) : NULL;
	e->body_regex = from->body_regex ? MemoryContextStrdup(TopMemoryContext, from->body_regex) : NULL;
	return e;
}

/*
 * Drops what was kept for a probe's check.
 */
static void
probe_expect_forget(int64 probe_id)
{
	ProbeExpect *e;

	if (probe_expects == NULL)
		return;
	e = hash_search(probe_expects, &probe_id, HASH_FIND, NULL);
	if (e == NULL)
		return;
	if (e->status)
		pfree(e->status);
	if (e->body)
		pfree(e->body);
	if (e->body_regex)
		pfree(e->body_regex);
	hash_search(probe_expects, &probe_id, HASH_REMOVE, NULL);
}

/*
 * Clears every claim of the probes of one kind (http or sql): at the start
 * of the worker that runs them, nothing is in flight.
 */
void
probe_release_claims(const char *kind)
{
	char	   *q = psprintf("UPDATE %1$s.incident_probe_state s SET claimed_at = NULL"
							 "  FROM %1$s.incident_probe p"
							 " WHERE p.id OPERATOR(pg_catalog.=) s.probe_id AND s.claimed_at IS NOT NULL"
							 "   AND p.kind OPERATOR(pg_catalog.=) %2$s",
							 probe_schema(), quote_literal_cstr(kind));

	int			ret = SPI_execute(q, false, 0);

	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "could not release the probes' claims: %s", SPI_result_code_string(ret));
	pfree(q);
}

/*
 * The HTTP worker's schedule as last read (NULL before the first read).
 */
ProbeSchedule *
probe_schedule_current(void)
{
	return probe_schedule;
}

/*
 * Reads the schedule again if a probe changed since it was read (or it
 * never was).
 */
void
probe_schedule_refresh(void)
{
	if (probe_schedule_cache == NULL)
	{
		static const char *const tables[] = {"incident_probe", "incident_probe_state"};

		probe_schedule_cache = confcache_register("probe schedule", tables, lengthof(tables),
												  probe_schedule_reset, NULL);
	}
	if (confcache_check(probe_schedule_cache) && !probe_schedule_stale)
		return;
	confcache_load(probe_schedule_cache, probe_schedule_loader, NULL);
	probe_schedule_stale = false;
}

/*
 * Drops the schedule (the extension is gone): what it counted and did not
 * write goes with it, as the tables it counted for did.
 */
void
probe_schedule_forget(void)
{
	schedule_destroy(probe_schedule);
	probe_schedule = NULL;
	probe_schedule_stale = true;
	probe_norphans = 0;
}

/*
 * The configuration cache's reset: read the schedule at the next refresh.
 */
static void
probe_schedule_reset(void *arg)
{
	probe_schedule_stale = true;
}

/*
 * Reads every enabled HTTP probe into a new schedule, keeping from the old
 * one, for each probe that stays, its check in flight, its passes not yet
 * written and when it runs next (unless its stored next_run_at changed
 * meanwhile: then someone moved it). Passes of a probe that left are kept
 * to be written.
 */
static void
probe_schedule_loader(const char *schema, void *arg)
{
	ProbeSchedule *schedule;
	ProbeSchedule *old = probe_schedule;
	char	   *q;
	dlist_iter	it;

	q = psprintf("SELECT " PROBE_HTTP_COLUMNS ","
				 " (pg_catalog.date_part('epoch', p.every) OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8,"
				 " (pg_catalog.date_part('epoch', p.degraded_after) OPERATOR(pg_catalog.*) 1000)::pg_catalog.float8,"
				 " s.next_run_at,"
				 " s.state OPERATOR(pg_catalog.=) 'up' AND s.consecutive_failures OPERATOR(pg_catalog.=) 0"
				 "   AND pg_catalog.cardinality(s.flips) OPERATOR(pg_catalog.=) 0"
				 "  FROM %1$s.incident_probe p JOIN %1$s.incident_probe_state s"
				 "    ON s.probe_id OPERATOR(pg_catalog.=) p.id"
				 " WHERE p.enabled AND p.kind OPERATOR(pg_catalog.=) 'http'",
				 schema);
	if (SPI_execute(q, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the HTTP probes");

	schedule = schedule_create();
	PG_TRY();
	{
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			ProbeEntry *entry = schedule_add(schedule, id);
			ProbeEntry *was = schedule_find(old, id);
			TimestampTz next_run_at;

			CHECK_FOR_INTERRUPTS();
			probe_http_config(tup, desc, &entry->config, schedule->cxt);
			entry->every_ms = DatumGetInt64(SPI_getbinval(tup, desc, PROBE_HTTP_NCOLUMNS + 1, &isnull));
			entry->degraded_after_ms = DatumGetFloat8(SPI_getbinval(tup, desc, PROBE_HTTP_NCOLUMNS + 2, &isnull));
			entry->stored_next_run_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, PROBE_HTTP_NCOLUMNS + 3,
																		  &isnull));
			entry->steady = DatumGetBool(SPI_getbinval(tup, desc, PROBE_HTTP_NCOLUMNS + 4, &isnull));
			next_run_at = entry->stored_next_run_at;
			if (was != NULL && was->stored_next_run_at == entry->stored_next_run_at)
				next_run_at = was->next_run_at;
			if (was != NULL && was->in_flight)
			{
				entry->in_flight = true;
				entry->next_run_at = next_run_at;
			}
			else
				schedule_queue(schedule, entry, next_run_at);
		}
	}
	PG_CATCH();
	{
		schedule_destroy(schedule);
		PG_RE_THROW();
	}
	PG_END_TRY();

	/* the passes not yet written, in their order */
	if (old != NULL)
	{
		dlist_foreach(it, &old->with_passes)
		{
			ProbeEntry *was = dlist_container(ProbeEntry, passes_node, it.cur);
			ProbeEntry *entry = schedule_find(schedule, was->probe_id);

			if (entry == NULL)
				probe_keep_orphan(was);
			else
			{
				entry->passes = was->passes;
				dlist_push_tail(&schedule->with_passes, &entry->passes_node);
			}
		}
	}
	schedule_destroy(old);
	probe_schedule = schedule;
}

/*
 * Keeps the passes of a probe that left the schedule, to be written with
 * the next batch.
 */
static void
probe_keep_orphan(const ProbeEntry *entry)
{
	if (probe_norphans == probe_orphans_size)
	{
		probe_orphans_size = Max(16, probe_orphans_size * 2);
		probe_orphans = probe_orphans == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(ProbeWrite) * probe_orphans_size) :
			repalloc(probe_orphans, sizeof(ProbeWrite) * probe_orphans_size);
	}
	probe_orphans[probe_norphans].probe_id = entry->probe_id;
	probe_orphans[probe_norphans].passes = entry->passes;
	probe_orphans[probe_norphans].next_run_at = 0;
	probe_norphans++;
}

/*
 * Hands the due checks to the engine, as many as it has room for, each
 * with its timeout capped at max_timeout_ms; returns how many. A claim is
 * the entry's in_flight flag: nothing is written.
 */
int
probe_claim_http(HttpEngine *engine, TimestampTz now, int max_response_bytes, int max_timeout_ms)
{
	ProbeEntry *entry;
	int			n = 0;

	if (probe_schedule == NULL)
		return 0;
	while (http_engine_capacity_left(engine) > 0 &&
		   (entry = schedule_take_due(probe_schedule, now)) != NULL)
	{
		HttpRequest req;

		CHECK_FOR_INTERRUPTS();

		/*
		 * A check of this probe is still running from before the schedule was
		 * read again (it was disabled and enabled within one check): that
		 * check is this one, and its result completes it.
		 */
		if (probe_expects != NULL && hash_search(probe_expects, &entry->probe_id, HASH_FIND, NULL) != NULL)
			continue;
		probe_http_request(&entry->config, &req, max_response_bytes, max_timeout_ms);
		probe_expect_enter(entry->probe_id, &entry->config.expect);
		if (!http_engine_submit(engine, &req))
		{
			/* full after all, or out of memory: the check stays due */
			probe_expect_forget(entry->probe_id);
			schedule_queue(probe_schedule, entry, entry->next_run_at);
			break;
		}
		incident_worker_state_claimed((double) (now - entry->next_run_at) / 1000.0);
		n++;
	}
	return n;
}

/*
 * An HTTP probe's configuration from a row of PROBE_HTTP_COLUMNS, copied
 * into cxt.
 */
void
probe_http_config(HeapTuple tup, TupleDesc desc, ProbeHttpConfig *config, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	bool		isnull;
	char	   *method = SPI_getvalue(tup, desc, 3);
	Datum		headers;
	Datum		codes;
	bool		codes_null;

	memset(config, 0, sizeof(ProbeHttpConfig));
	config->probe_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	config->url = SPI_getvalue(tup, desc, 2);
	config->method = strcmp(method, "HEAD") == 0 ? HTTP_METHOD_HEAD :
		strcmp(method, "POST") == 0 ? HTTP_METHOD_POST : HTTP_METHOD_GET;
	config->body = SPI_getvalue(tup, desc, 5);
	headers = SPI_getbinval(tup, desc, 4, &isnull);
	if (!isnull)
	{
		Datum	   *hdatums;
		int			nh;

		deconstruct_array(DatumGetArrayTypeP(headers), TEXTOID, -1, false, TYPALIGN_INT,
						  &hdatums, NULL, &nh);
		config->headers = palloc(sizeof(char *) * (nh + 1));
		for (int h = 0; h < nh; h++)
			config->headers[h] = TextDatumGetCString(hdatums[h]);
		config->nheaders = nh;
	}
	config->timeout_ms = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
	config->verify_tls = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));

	codes = SPI_getbinval(tup, desc, 8, &codes_null);
	if (!codes_null)
	{
		Datum	   *cd;
		int			nc;

		deconstruct_array(DatumGetArrayTypeP(codes), INT4OID, 4, true, TYPALIGN_INT, &cd, NULL, &nc);
		config->expect.status = palloc(sizeof(int) * Max(nc, 1));
		for (int c = 0; c < nc; c++)
			config->expect.status[c] = DatumGetInt32(cd[c]);
		config->expect.nstatus = nc;
	}
	config->expect.body = SPI_getvalue(tup, desc, 9);
	config->expect.body_regex = SPI_getvalue(tup, desc, 10);
	config->expect.probe_id = config->probe_id;
	MemoryContextSwitchTo(old);
}

/*
 * The request of an HTTP probe; it points into the configuration. The
 * probe's timeout is capped at max_timeout_ms (pg_incident.http_timeout).
 */
void
probe_http_request(const ProbeHttpConfig *config, HttpRequest *req, int max_bytes, int max_timeout_ms)
{
	http_request_init(req);
	req->id = config->probe_id;
	req->url = config->url;
	req->method = config->method;
	req->body = config->body;
	req->body_len = config->body ? strlen(config->body) : 0;
	req->headers = (const char *const *) config->headers;
	req->nheaders = config->nheaders;
	req->timeout_ms = Min(config->timeout_ms, Max(max_timeout_ms, 1));
	req->connect_timeout_ms = req->timeout_ms;
	req->verify_tls = config->verify_tls;
	req->max_bytes = max_bytes;
	/*
	 * libcurl sends custom headers (an API key) to whatever host a redirect
	 * names, https or not, and strips only Authorization and cookies: a
	 * probe with headers gets its own URL's answer, 3xx included.
	 */
	req->max_redirects = config->nheaders > 0 ? 0 : PROBE_MAX_REDIRECTS;
	/* every check connects (and does TLS) anew, as a new visitor would */
	req->fresh_connection = true;
}

/*
 * Runs fn(arg) in a subtransaction that is rolled back whatever fn did,
 * under a statement timeout of timeout_ms (or the caller's own statement
 * timeout, if that ends first, which is armed again afterwards). Returns
 * NULL if fn finished, or else its error, copied into the caller's memory
 * context, with *timed_out telling whether it was the timeout. A shutdown
 * is thrown on, and so is a cancel from outside except in the worker,
 * where pg_cancel_backend() is how a DBA stops a stuck check: there it is
 * a failed check like any error.
 */
ErrorData *
probe_try(void (*fn) (void *arg), void *arg, int timeout_ms, bool *timed_out)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), Max(timeout_ms, 1));
	bool		outer_active = get_timeout_active(STATEMENT_TIMEOUT);
	TimestampTz outer_finish = outer_active ? get_timeout_finish_time(STATEMENT_TIMEOUT) : 0;
	bool		ours = !outer_active || deadline < outer_finish;
	ErrorData  *volatile edata = NULL;

	*timed_out = false;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		if (ours)
			enable_timeout_at(STATEMENT_TIMEOUT, deadline);
		fn(arg);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();

	/*
	 * Our timeout fired after fn finished: its cancel, still pending, is not
	 * for the caller.
	 */
	if (edata == NULL && ours && get_timeout_indicator(STATEMENT_TIMEOUT, false))
		QueryCancelPending = false;
	if (outer_active)
		enable_timeout_at(STATEMENT_TIMEOUT, outer_finish);
	else
		disable_timeout(STATEMENT_TIMEOUT, false);
	/* also restores the user, the settings and SPI as they were */
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;

	if (edata != NULL)
	{
		*timed_out = edata->sqlerrcode == ERRCODE_QUERY_CANCELED && ours &&
			GetCurrentTimestamp() >= deadline;
		if ((edata->sqlerrcode == ERRCODE_QUERY_CANCELED && !*timed_out && !IsBackgroundWorker) ||
			edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(edata);
	}
	return edata;
}

/* a body and a regular expression, for probe_body_match */
typedef struct ProbeBodyMatch
{
	const HttpResult *res;
	const char *regex;
	bool		matched;
} ProbeBodyMatch;

/*
 * Whether the body matches the regular expression: PostgreSQL's advanced
 * regular expressions, as for ~, in the C collation.
 */
static void
probe_body_match(void *arg)
{
	ProbeBodyMatch *m = (ProbeBodyMatch *) arg;
	const HttpResult *res = m->res;

	m->matched = RE_compile_and_execute(cstring_to_text(m->regex), res->body ? res->body : "",
										res->body ? (int) res->body_kept : 0, REG_ADVANCED,
										C_COLLATION_OID, 0, NULL);
}

/*
 * Whether the body matches the probe's regular expression, tried through
 * probe_try: one too complex for this body, or slower than
 * PROBE_REGEX_TIMEOUT_MS, fails the check (the reason in *error), not the
 * caller's batch.
 */
static bool
probe_body_matches(const HttpResult *res, const char *regex, char *error, size_t errlen)
{
	ProbeBodyMatch m = {res, regex, false};
	bool		timed_out;
	ErrorData  *edata = probe_try(probe_body_match, &m, PROBE_REGEX_TIMEOUT_MS, &timed_out);

	if (edata == NULL)
		return m.matched;
	if (timed_out)
		snprintf(error, errlen, "expect_body_regex took longer than %d ms on this body", PROBE_REGEX_TIMEOUT_MS);
	else
		snprintf(error, errlen, "could not match expect_body_regex: %s", edata->message);
	FreeErrorData(edata);
	return false;
}

/*
 * What failed in an HTTP fetch judged against the probe's expected status
 * codes and body (a failure kind of incident_probe_result), or NULL when
 * it passed; a body that fails says why in detail. The regular expression
 * is tried only in a transaction (the worker's record phase,
 * incident_probe_run).
 */
const char *
probe_verdict(const HttpResult *res, const ProbeExpect *expect, char *detail, size_t detail_len)
{
	bool		status_ok = false;

	if (res->failure != HTTP_OK)
		return http_failure_name(res->failure);
	if (expect == NULL || expect->nstatus == 0)
		status_ok = res->status >= 200 && res->status <= 399;
	else
		for (int i = 0; i < expect->nstatus; i++)
			if (expect->status[i] == res->status)
				status_ok = true;
	if (!status_ok)
		return "status";
	if (expect && expect->body && (res->body == NULL || strstr(res->body, expect->body) == NULL))
	{
		strlcpy(detail, "the body does not contain the expected text", detail_len);
		return "body";
	}
	if (expect && expect->body_regex)
	{
		strlcpy(detail, "the body does not match expect_body_regex", detail_len);
		if (!probe_body_matches(res, expect->body_regex, detail, detail_len))
			return "body";
	}
	return NULL;
}

/*
 * The JSON result of incident__probe_record() for an HTTP fetch, judged
 * against the probe's expected status codes and body.
 */
char *
probe_judge(const HttpResult *res, const ProbeExpect *expect)
{
	char		detail[HTTP_ERROR_SIZE];
	const char *failure = probe_verdict(res, expect, detail, sizeof(detail));

	return probe_result_json(res, failure, detail);
}

/*
 * The JSON result of incident__probe_record() for an HTTP fetch and its
 * verdict (probe_verdict: the failure, and for a body the detail).
 */
static char *
probe_result_json(const HttpResult *res, const char *failure, const char *detail)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"ok\": %s", failure ? "false" : "true");
	if (failure)
	{
		appendStringInfoString(&buf, ", \"failure\": ");
		escape_json(&buf, failure);
	}
	if (res->status > 0)
		appendStringInfo(&buf, ", \"status\": %ld", res->status);
	appendStringInfo(&buf, ", \"latency_ms\": %.3f", res->total_ms);
	appendStringInfo(&buf, ", \"timings\": {\"dns\": %.3f, \"connect\": %.3f, \"tls\": %.3f, "
					 "\"first_byte\": %.3f, \"total\": %.3f}",
					 res->namelookup_ms, res->connect_ms, res->appconnect_ms,
					 res->starttransfer_ms, res->total_ms);
	if (res->error[0] != '\0')
	{
		appendStringInfoString(&buf, ", \"error\": ");
		escape_json(&buf, res->error);
	}
	else if (failure && strcmp(failure, "status") == 0)
		appendStringInfo(&buf, ", \"error\": \"HTTP status %ld\"", res->status);
	else if (failure && strcmp(failure, "body") == 0)
	{
		appendStringInfoString(&buf, ", \"error\": ");
		escape_json(&buf, detail);
	}
	appendStringInfoString(&buf, ", \"at\": ");
	escape_json(&buf, timestamptz_to_str(res->finished_at));
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Runs fn(arg) in a subtransaction that is kept if fn finishes. Returns
 * NULL then, or else fn's error, copied into the caller's memory context,
 * with all that fn did undone. A cancel or a shutdown is thrown on: it ends
 * the caller's phase, not just this piece of it.
 */
ErrorData *
probe_try_keep(void (*fn) (void *arg), void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED || edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(edata);
	}
	PG_END_TRY();
	return edata;
}

/* a probe's result, for probe_record_one */
typedef struct ProbeResultArgs
{
	int64		probe_id;
	const char *json;
} ProbeResultArgs;

static void
probe_record_one(void *arg)
{
	ProbeResultArgs *r = (ProbeResultArgs *) arg;
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		args[2] = {Int64GetDatum(r->probe_id), CStringGetTextDatum(r->json)};
	char	   *q = psprintf("SELECT %s.incident__probe_record($1, $2::pg_catalog.jsonb)", probe_schema());

	if (SPI_execute_with_args(q, 2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not record the result of probe " INT64_FORMAT, r->probe_id);
}

/*
 * Records one result in a subtransaction, so that one bad probe row cannot
 * undo the others; false (and a WARNING) when it failed.
 */
bool
probe_record_result(int64 probe_id, const char *result_json)
{
	ProbeResultArgs r = {probe_id, result_json};
	ErrorData  *edata = probe_try_keep(probe_record_one, &r);
	char	   *q;

	if (edata == NULL)
		return true;
	ereport(WARNING,
			(errmsg("pg_incident worker: could not record a result of probe " INT64_FORMAT, probe_id),
			 errdetail("%s", edata->message)));
	FreeErrorData(edata);
	/* the probe runs again one interval later, not never */
	q = psprintf("UPDATE %1$s.incident_probe_state s SET claimed_at = NULL,"
				 " next_run_at = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) p.every"
				 "  FROM %1$s.incident_probe p WHERE p.id OPERATOR(pg_catalog.=) s.probe_id"
				 "   AND s.probe_id OPERATOR(pg_catalog.=) %2$" INT64_MODIFIER "d", probe_schema(), probe_id);
	if (SPI_execute(q, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not release the claim of probe " INT64_FORMAT, probe_id);
	return false;
}

/*
 * Records every result the engine has finished; returns how many. A pass
 * of a steady probe is counted in the schedule (written later, in a batch);
 * anything else goes through incident__probe_record now, after the probe's
 * counted passes. Either way the probe is queued again one interval after
 * the check was due, or at its next beat if that has passed
 * (schedule_next_run).
 */
int
probe_record_results(HttpEngine *engine, int flush_interval_ms)
{
	HttpResult	res;
	int			n = 0;
	TimestampTz started = GetCurrentTimestamp();

	if (http_engine_idle(engine))
		return 0;
	/* an error (no extension) before a result is taken, so that none is lost */
	(void) probe_schema();
	for (;;)
	{
		ProbeExpect *expect = NULL;
		ProbeEntry *entry;
		const char *failure;
		char		detail[HTTP_ERROR_SIZE];

		/* before taking a result, so that an interrupt loses none */
		CHECK_FOR_INTERRUPTS();
		/* the requests in flight make no progress meanwhile: the rest next turn */
		if (n > 0 && TimestampDifferenceExceeds(started, GetCurrentTimestamp(), PROBE_RECORD_BUDGET_MS))
			break;
		if (!http_engine_next_result(engine, HTTP_OWNER_PROBES, &res))
			break;
		if (probe_expects)
			expect = hash_search(probe_expects, &res.id, HASH_FIND, NULL);
		failure = probe_verdict(&res, expect, detail, sizeof(detail));
		entry = schedule_find(probe_schedule, res.id);

		if (entry != NULL && entry->in_flight && entry->steady && failure == NULL &&
			res.total_ms <= entry->degraded_after_ms && flush_interval_ms > 0)
		{
			if (!schedule_pass_fits(entry, res.finished_at))
				probe_write_entry(entry);
			schedule_add_pass(probe_schedule, entry, res.finished_at, res.total_ms);
		}
		else
		{
			char	   *json = probe_result_json(&res, failure, detail);

			if (entry != NULL)
				probe_write_entry(entry);
			probe_record_result(res.id, json);
			if (entry != NULL)
				probe_read_back(entry);
			pfree(json);
		}

		if (entry != NULL && entry->in_flight)
			schedule_queue(probe_schedule, entry, schedule_next_run(entry, GetCurrentTimestamp()));
		probe_expect_forget(res.id);
		http_result_free(&res);
		n++;
	}
	return n;
}

/*
 * After incident__probe_record: whether the probe is steady now, and the
 * next_run_at it stored.
 */
static void
probe_read_back(ProbeEntry *entry)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(entry->probe_id)};
	char	   *q = psprintf("SELECT s.next_run_at,"
							 " s.state OPERATOR(pg_catalog.=) 'up' AND s.consecutive_failures OPERATOR(pg_catalog.=) 0"
							 "   AND pg_catalog.cardinality(s.flips) OPERATOR(pg_catalog.=) 0"
							 "  FROM %s.incident_probe_state s WHERE s.probe_id OPERATOR(pg_catalog.=) $1",
							 probe_schema());
	bool		isnull;

	/* not read-only: that would read under the phase's snapshot, before the record */
	if (SPI_execute_with_args(q, 1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the state of probe " INT64_FORMAT, entry->probe_id);
	entry->steady = false;
	if (SPI_processed == 1)
	{
		entry->stored_next_run_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
																	  SPI_tuptable->tupdesc, 1, &isnull));
		entry->steady = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	pfree(q);
}

/*
 * Writes the passes counted before older_than (all of them with DT_NOEND),
 * at most max probes, those of probes that left the schedule first, then
 * the oldest; returns how many probes. They leave memory only once the
 * write has returned: a write that fails keeps them for the next one.
 */
int
probe_write_passes(TimestampTz older_than, int max)
{
	int			limit = Min(max, PROBE_PASSES_BATCH);
	ProbeWrite *writes;
	ProbeEntry **entries;
	ProbeEntry *entry;
	int			norphans;
	int			n;
	dlist_iter	it;

	if (probe_norphans == 0 &&
		((entry = schedule_oldest_passes(probe_schedule)) == NULL || entry->passes.first_at > older_than))
		return 0;

	writes = palloc(sizeof(ProbeWrite) * limit);
	entries = palloc(sizeof(ProbeEntry *) * limit);
	norphans = Min(probe_norphans, limit);
	for (n = 0; n < norphans; n++)
	{
		writes[n] = probe_orphans[probe_norphans - 1 - n];
		entries[n] = NULL;
	}
	if (probe_schedule != NULL)
	{
		dlist_foreach(it, &probe_schedule->with_passes)
		{
			entry = dlist_container(ProbeEntry, passes_node, it.cur);
			if (n == limit || entry->passes.first_at > older_than)
				break;
			writes[n].probe_id = entry->probe_id;
			writes[n].passes = entry->passes;
			writes[n].next_run_at = entry->in_flight ? 0 : entry->next_run_at;
			entries[n++] = entry;
		}
	}

	probe_write(writes, n);

	probe_norphans -= norphans;
	for (int i = norphans; i < n; i++)
	{
		ProbePasses written;

		schedule_take_passes(probe_schedule, entries[i], &written);
		if (writes[i].next_run_at != 0)
			entries[i]->stored_next_run_at = writes[i].next_run_at;
	}
	pfree(writes);
	pfree(entries);
	return n;
}

/*
 * When the oldest passes not yet written were counted: 0 for those of
 * probes that left the schedule (write them now), DT_NOEND when none.
 */
TimestampTz
probe_passes_since(void)
{
	ProbeEntry *entry;

	if (probe_norphans > 0)
		return 0;
	entry = schedule_oldest_passes(probe_schedule);
	return entry != NULL ? entry->passes.first_at : DT_NOEND;
}

/*
 * incident__probe_state_changed(): statement trigger on incident_probe and
 * incident_probe_state. A change by a person (or by incident_probe_run in
 * a backend) makes the HTTP worker read its schedule again; the worker
 * processes' own writes do not, as the worker knows what it wrote.
 */
Datum
incident__probe_state_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("incident__probe_state_changed() must be called as a trigger")));
	if (!incident_worker_is_worker())
		confcache_table_changed(RelationGetRelid(trigdata->tg_relation));
	PG_RETURN_POINTER(NULL);
}

/*
 * Writes one probe's counted passes now (before another result of it);
 * they leave memory once written.
 */
static void
probe_write_entry(ProbeEntry *entry)
{
	ProbeWrite	write;

	if (entry->passes.checks == 0)
		return;
	write.probe_id = entry->probe_id;
	write.next_run_at = 0;
	write.passes = entry->passes;
	probe_write(&write, 1);
	schedule_take_passes(probe_schedule, entry, &write.passes);
}

/*
 * One call of incident__probe_record_passes for these probes' passes (one
 * element per probe).
 */
static void
probe_write(ProbeWrite *writes, int n)
{
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *first = palloc(sizeof(Datum) * n);
	Datum	   *last = palloc(sizeof(Datum) * n);
	Datum	   *checks = palloc(sizeof(Datum) * n);
	Datum	   *sums = palloc(sizeof(Datum) * n);
	Datum	   *maxes = palloc(sizeof(Datum) * n);
	Datum	   *buckets = palloc(sizeof(Datum) * n * PROBE_LATENCY_BUCKETS);
	Datum	   *next = palloc(sizeof(Datum) * n);
	bool	   *next_null = palloc(sizeof(bool) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};
	Oid			argtypes[8] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, INT4ARRAYOID,
	FLOAT8ARRAYOID, FLOAT8ARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID};
	Datum		args[8];
	char	   *q;

	if (n == 0)
		return;
	for (int i = 0; i < n; i++)
	{
		ids[i] = Int64GetDatum(writes[i].probe_id);
		first[i] = TimestampTzGetDatum(writes[i].passes.first_at);
		last[i] = TimestampTzGetDatum(writes[i].passes.last_at);
		checks[i] = Int32GetDatum(writes[i].passes.checks);
		sums[i] = Float8GetDatum(writes[i].passes.latency_sum);
		maxes[i] = Float8GetDatum(writes[i].passes.latency_max);
		for (int b = 0; b < PROBE_LATENCY_BUCKETS; b++)
			buckets[i * PROBE_LATENCY_BUCKETS + b] = Int32GetDatum(writes[i].passes.buckets[b]);
		next[i] = TimestampTzGetDatum(writes[i].next_run_at);
		next_null[i] = writes[i].next_run_at == 0;
	}
	args[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(construct_array(first, n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[2] = PointerGetDatum(construct_array(last, n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[3] = PointerGetDatum(construct_array(checks, n, INT4OID, 4, true, TYPALIGN_INT));
	args[4] = PointerGetDatum(construct_array(sums, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[5] = PointerGetDatum(construct_array(maxes, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[6] = PointerGetDatum(construct_array(buckets, n * PROBE_LATENCY_BUCKETS, INT4OID, 4, true,
											  TYPALIGN_INT));
	args[7] = PointerGetDatum(construct_md_array(next, next_null, 1, dims, lbs, TIMESTAMPTZOID, 8,
												 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	q = psprintf("SELECT %s.incident__probe_record_passes($1, $2, $3, $4, $5, $6, $7, $8)", probe_schema());
	if (SPI_execute_with_args(q, 8, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not record the passing checks of %d probes", n);
	pfree(q);
}

/*
 * Milliseconds until the next probe of a kind (http or sql) is due (0 if
 * one is due now), or -1 if none is scheduled.
 */
long
probe_next_due_ms(const char *kind)
{
	/* in next_run_at order, so that the index finds it without a scan of all probes */
	char	   *q = psprintf("SELECT pg_catalog.ceil(pg_catalog.date_part('epoch', s.next_run_at"
							 " OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp()) OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8"
							 "  FROM %1$s.incident_probe_state s JOIN %1$s.incident_probe p"
							 "    ON p.id OPERATOR(pg_catalog.=) s.probe_id"
							 " WHERE p.enabled AND p.kind OPERATOR(pg_catalog.=) %2$s AND s.claimed_at IS NULL"
							 " ORDER BY s.next_run_at LIMIT 1",
							 probe_schema(), quote_literal_cstr(kind));
	bool		isnull;
	int64		ms;

	int			ret = SPI_execute(q, true, 1);

	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read when the next probe is due: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return -1;
	ms = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	pfree(q);
	if (isnull)
		return -1;
	return ms < 0 ? 0 : (long) Min(ms, (int64) INT_MAX);
}

/*
 * Forgets every check handed to the engine: the extension is gone, and the
 * caller destroys the engine with the requests still running.
 */
void
probe_forget_checks(void)
{
	HASH_SEQ_STATUS seq;
	ProbeExpect *e;

	if (probe_expects == NULL)
		return;
	hash_seq_init(&seq, probe_expects);
	while ((e = hash_seq_search(&seq)) != NULL)
		probe_expect_forget(e->probe_id);
}

/*
 * Deletes, in small batches, the kept results and hourly roll-ups older
 * than retention_s seconds; returns how many rows went. 0 keeps everything.
 */
int
probe_prune(int retention_s)
{
	const char *schema;
	char	   *q;
	int			ret;
	int			n;

	if (retention_s <= 0)
		return 0;
	schema = probe_schema();
	q = psprintf("DELETE FROM %1$s.incident_probe_result WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
				 " SELECT r.ctid FROM %1$s.incident_probe_result r"
				 "  WHERE r.at OPERATOR(pg_catalog.<) (pg_catalog.clock_timestamp()"
				 "        OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => %2$d)) LIMIT 1000))",
				 schema, retention_s);
	ret = SPI_execute(q, false, 0);
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "could not prune the probe results: %s", SPI_result_code_string(ret));
	n = (int) SPI_processed;
	q = psprintf("DELETE FROM %1$s.incident_probe_rollup WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
				 " SELECT u.ctid FROM %1$s.incident_probe_rollup u"
				 "  WHERE u.hour OPERATOR(pg_catalog.<) (pg_catalog.clock_timestamp()"
				 "        OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => %2$d)) LIMIT 1000))",
				 schema, retention_s);
	ret = SPI_execute(q, false, 0);
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "could not prune the probe roll-ups: %s", SPI_result_code_string(ret));
	return n + (int) SPI_processed;
}
