/*-------------------------------------------------------------------------
 *
 * probe.c
 *		The worker's HTTP probes: claim the due ones, hand them to the HTTP
 *		engine, judge what comes back and record it.
 *
 * Each function here runs inside a transaction that worker.c started and
 * commits; none starts one or waits on the network. A turn of the worker
 * records the results that came in (probe_record_results), claims the
 * probes that are due (probe_claim_http) and asks when the next one is due
 * (probe_next_due_ms); between turns it waits on its latch and the engine's
 * sockets. What a result means (hysteresis, incidents, recovery) is decided
 * in SQL, by incident__probe_record() (extension/50_probes.sql), so that the
 * worker and a person go through one set of rules.
 *
 * A claim is the probe's claimed_at: set when its check is handed to the
 * engine, cleared when its result is recorded. A worker that starts clears
 * every claim (probe_release_claims): a check left in flight by a crashed
 * predecessor counts as not done and runs again. What the engine needs to
 * judge a result (expected status codes and body) is kept per request in
 * TopMemoryContext until the result is recorded.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "../confcache.h"
#include "http.h"
#include "probe.h"
#include "worker.h"

/* the expectations of the checks in flight, by probe id */
static HTAB *probe_expects = NULL;

static ProbeExpect *probe_expect_enter(int64 probe_id);
static void probe_expect_forget(int64 probe_id);

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
 * Returns a cleared expectation entry for the probe, creating the hash on
 * first use.
 */
static ProbeExpect *
probe_expect_enter(int64 probe_id)
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
	}
	e->nstatus = 0;
	e->status = NULL;
	e->body = NULL;
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
 * Claims up to max due HTTP probes and submits them to the engine, each
 * with its timeout capped at max_timeout_ms; returns how many were
 * submitted.
 */
int
probe_claim_http(HttpEngine *engine, int max, int max_response_bytes, int max_timeout_ms)
{
	const char *schema = probe_schema();
	char	   *q;
	int			n = 0;
	int			ret;

	if (max <= 0)
		return 0;
	q = psprintf("UPDATE %1$s.incident_probe_state s SET claimed_at = pg_catalog.clock_timestamp()"
				 "  FROM %1$s.incident_probe p"
				 " WHERE p.id OPERATOR(pg_catalog.=) s.probe_id"
				 "   AND s.probe_id OPERATOR(pg_catalog.=) ANY (ARRAY("
				 "       SELECT x.probe_id FROM %1$s.incident_probe_state x"
				 "         JOIN %1$s.incident_probe y ON y.id OPERATOR(pg_catalog.=) x.probe_id"
				 "        WHERE y.enabled AND y.kind OPERATOR(pg_catalog.=) 'http'"
				 "          AND (x.claimed_at IS NULL OR x.claimed_at OPERATOR(pg_catalog.<)"
				 "               (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)"
				 "                (y.timeout OPERATOR(pg_catalog.+) interval '1 minute')))"
				 "          AND x.next_run_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp()"
				 "        ORDER BY x.next_run_at LIMIT %2$d FOR UPDATE OF x SKIP LOCKED))"
				 " RETURNING " PROBE_HTTP_COLUMNS ", " PROBE_LATENESS_COLUMN,
				 schema, max);
	ret = SPI_execute(q, false, 0);
	if (ret != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not claim the due probes: %s", SPI_result_code_string(ret));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		HttpRequest req;

		CHECK_FOR_INTERRUPTS();
		/* a check of this probe still in flight here (a claim that did not commit) */
		if (probe_expects && hash_search(probe_expects, &id, HASH_FIND, NULL) != NULL)
			continue;
		probe_http_request(tup, desc, &req, probe_expect_enter(id), TopMemoryContext,
						   max_response_bytes, max_timeout_ms);
		incident_worker_state_claimed(DatumGetFloat8(SPI_getbinval(tup, desc, PROBE_HTTP_NCOLUMNS + 1,
																   &isnull)));

		if (!http_engine_submit(engine, &req))
		{
			/* full after all: the check stays due and the claim is let go */
			char	   *r = psprintf("UPDATE %s.incident_probe_state SET claimed_at = NULL"
									 " WHERE probe_id OPERATOR(pg_catalog.=) " INT64_FORMAT, schema, id);

			if (SPI_execute(r, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "could not release the claim of probe " INT64_FORMAT, id);
			probe_expect_forget(id);
			continue;
		}
		n++;
	}
	return n;
}

/*
 * The request of an HTTP probe from a row of PROBE_HTTP_COLUMNS, and in
 * *expect what its result is judged by (allocated in expect_cxt). The
 * request points into the row and into the current memory context. The
 * probe's timeout is capped at max_timeout_ms (pg_incident.http_timeout).
 */
void
probe_http_request(HeapTuple tup, TupleDesc desc, HttpRequest *req, ProbeExpect *expect,
				   MemoryContext expect_cxt, int max_bytes, int max_timeout_ms)
{
	bool		isnull;
	char	   *method = SPI_getvalue(tup, desc, 3);
	Datum		headers = SPI_getbinval(tup, desc, 4, &isnull);
	Datum		codes;
	bool		codes_null;
	char	   *want_body;

	http_request_init(req);
	req->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	req->url = SPI_getvalue(tup, desc, 2);
	req->method = strcmp(method, "HEAD") == 0 ? HTTP_METHOD_HEAD :
		strcmp(method, "POST") == 0 ? HTTP_METHOD_POST : HTTP_METHOD_GET;
	req->body = SPI_getvalue(tup, desc, 5);
	req->body_len = req->body ? strlen(req->body) : 0;
	if (!isnull)
	{
		Datum	   *hdatums;
		int			nh;
		const char **hs;

		deconstruct_array(DatumGetArrayTypeP(headers), TEXTOID, -1, false, TYPALIGN_INT,
						  &hdatums, NULL, &nh);
		hs = palloc(sizeof(char *) * (nh + 1));
		for (int h = 0; h < nh; h++)
			hs[h] = TextDatumGetCString(hdatums[h]);
		req->headers = hs;
		req->nheaders = nh;
	}
	req->timeout_ms = Min(DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull)), Max(max_timeout_ms, 1));
	req->connect_timeout_ms = req->timeout_ms;
	req->verify_tls = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
	req->max_bytes = max_bytes;
	req->max_redirects = PROBE_MAX_REDIRECTS;

	codes = SPI_getbinval(tup, desc, 8, &codes_null);
	if (!codes_null)
	{
		Datum	   *cd;
		int			nc;

		deconstruct_array(DatumGetArrayTypeP(codes), INT4OID, 4, true, TYPALIGN_INT, &cd, NULL, &nc);
		expect->status = MemoryContextAlloc(expect_cxt, sizeof(int) * Max(nc, 1));
		for (int c = 0; c < nc; c++)
			expect->status[c] = DatumGetInt32(cd[c]);
		expect->nstatus = nc;
	}
	want_body = SPI_getvalue(tup, desc, 9);
	if (want_body != NULL)
		expect->body = MemoryContextStrdup(expect_cxt, want_body);
}

/*
 * The JSON result of incident__probe_record() for an HTTP fetch, judged
 * against the probe's expected status codes and body.
 */
char *
probe_judge(const HttpResult *res, const ProbeExpect *expect)
{
	StringInfoData buf;
	const char *failure = NULL;

	if (res->failure != HTTP_OK)
		failure = http_failure_name(res->failure);
	else
	{
		bool		status_ok = false;

		if (expect == NULL || expect->nstatus == 0)
			status_ok = res->status >= 200 && res->status <= 399;
		else
			for (int i = 0; i < expect->nstatus; i++)
				if (expect->status[i] == res->status)
					status_ok = true;
		if (!status_ok)
			failure = "status";
		else if (expect && expect->body &&
				 (res->body == NULL || strstr(res->body, expect->body) == NULL))
			failure = "body";
	}

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
		appendStringInfoString(&buf, ", \"error\": \"the body does not contain the expected text\"");
	appendStringInfoString(&buf, ", \"at\": ");
	escape_json(&buf, timestamptz_to_str(res->finished_at));
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Records one result in a subtransaction, so that one bad probe row cannot
 * undo the others; false (and a WARNING) when it failed.
 */
bool
probe_record_result(int64 probe_id, const char *result_json)
{
	const char *schema = probe_schema();
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	bool		ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		Oid			argtypes[2] = {INT8OID, TEXTOID};
		Datum		args[2] = {Int64GetDatum(probe_id), CStringGetTextDatum(result_json)};
		char	   *q = psprintf("SELECT %s.incident__probe_record($1, $2::pg_catalog.jsonb)", schema);

		if (SPI_execute_with_args(q, 2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not record the result of probe " INT64_FORMAT, probe_id);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		/* a cancel or shutdown ends the phase, not just this result */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED || edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(edata);
		ereport(WARNING,
				(errmsg("pg_incident worker: could not record a result of probe " INT64_FORMAT, probe_id),
				 errdetail("%s", edata->message)));
		FreeErrorData(edata);
		/* the probe runs again one interval later, not never */
		{
			char	   *r = psprintf("UPDATE %1$s.incident_probe_state s SET claimed_at = NULL,"
									 " next_run_at = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) p.every"
									 "  FROM %1$s.incident_probe p WHERE p.id OPERATOR(pg_catalog.=) s.probe_id"
									 "   AND s.probe_id OPERATOR(pg_catalog.=) %2$" INT64_MODIFIER "d", schema, probe_id);

			if (SPI_execute(r, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "could not release the claim of probe " INT64_FORMAT, probe_id);
		}
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * Records every result the engine has finished; returns how many.
 */
int
probe_record_results(HttpEngine *engine)
{
	HttpResult	res;
	int			n = 0;

	if (http_engine_idle(engine))
		return 0;
	/* an error (no extension) before a result is taken, so that none is lost */
	(void) probe_schema();
	for (;;)
	{
		ProbeExpect *expect = NULL;
		char	   *json;

		/* before taking a result, so that an interrupt loses none */
		CHECK_FOR_INTERRUPTS();
		if (!http_engine_next_result(engine, &res))
			break;
		if (probe_expects)
			expect = hash_search(probe_expects, &res.id, HASH_FIND, NULL);
		json = probe_judge(&res, expect);
		probe_record_result(res.id, json);
		probe_expect_forget(res.id);
		http_result_free(&res);
		pfree(json);
		n++;
	}
	return n;
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
 * Drops every finished result unrecorded: the extension is gone, or the
 * worker is not working; their probes run again when they are due.
 */
void
probe_discard_results(HttpEngine *engine)
{
	HttpResult	res;

	while (http_engine_next_result(engine, &res))
	{
		probe_expect_forget(res.id);
		http_result_free(&res);
	}
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
