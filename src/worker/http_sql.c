/*-------------------------------------------------------------------------
 *
 * http_sql.c
 *		incident__http_fetch(), the SQL face of the HTTP engine, for tests.
 *
 * The function fetches a list of URLs through one HttpEngine (http.c) the
 * way the worker will: up to max_concurrent transfers at once, a new one
 * started as soon as one finishes, and one wait per turn on the backend's
 * latch, postmaster death and curl's sockets. It checks for
 * interrupts every turn, so a query cancel or a terminate stops it at once;
 * the engine and its sockets are released on the way out.
 * Each URL gives one row, in the order the fetches completed, with what the
 * engine reported: the failure kind, the status, the timings of each phase,
 * the final URL and the first bytes of the body.
 *
 * It is superuser-only: a fetch from inside the server reaches what the
 * server can reach.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/wait_event.h"

#include "../pg_incident.h"
#include "http.h"

/* bounds of the arguments */
#define HTTP_SQL_MAX_REDIRECTS		20
#define HTTP_SQL_MAX_CONCURRENT		1000

/* columns of the result */
#define HTTP_SQL_NCOLS				15

/* what incident__http_fetch releases however it ends */
typedef struct HttpSqlState
{
	HttpEngine *engine;
	HttpResult	res;			/* the result being turned into a row */
	bool		have_res;
} HttpSqlState;

/* ---- forward declarations ---- */

PG_FUNCTION_INFO_V1(incident__http_fetch);

static void http_sql_check_args(int timeout_ms, int max_bytes, int max_redirects,
								int max_concurrent);
static void http_sql_put_row(ReturnSetInfo *rsinfo, char **urls, const HttpResult *res);
static void http_sql_run(HttpSqlState *st, char **urls, int nurls, HttpRequest *proto,
						 ReturnSetInfo *rsinfo);

/*
 * incident__http_fetch(urls text[], timeout_ms int, max_bytes int,
 * max_redirects int, verify_tls bool, max_concurrent int): fetch each URL,
 * one row per URL.
 */
Datum
incident__http_fetch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			nurls;
	char	  **urls;
	int			i;
	int			timeout_ms = PG_GETARG_INT32(1);
	int			max_bytes = PG_GETARG_INT32(2);
	int			max_redirects = PG_GETARG_INT32(3);
	bool		verify_tls = PG_GETARG_BOOL(4);
	int			max_concurrent = PG_GETARG_INT32(5);
	HttpRequest proto;
	HttpSqlState st;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function incident__http_fetch"),
				 errdetail("Only superusers may fetch URLs from inside the server.")));

	http_sql_check_args(timeout_ms, max_bytes, max_redirects, max_concurrent);

	arr = PG_GETARG_ARRAYTYPE_P(0);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nurls);
	urls = palloc(sizeof(char *) * Max(nurls, 1));
	for (i = 0; i < nurls; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("invalid URL at position %d: null", i + 1),
					 errhint("Pass an array of URLs without nulls.")));
		urls[i] = TextDatumGetCString(elems[i]);
	}

	InitMaterializedSRF(fcinfo, 0);

	http_request_init(&proto);
	proto.connect_timeout_ms = timeout_ms;
	proto.timeout_ms = timeout_ms;
	proto.max_bytes = max_bytes;
	proto.max_redirects = max_redirects;
	proto.verify_tls = verify_tls;

	memset(&st, 0, sizeof(st));
	st.engine = http_engine_create(max_concurrent);
	if (st.engine == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create the HTTP engine for %d transfers", max_concurrent),
				 errdetail("Memory ran out or libcurl could not initialize.")));

	PG_TRY();
	{
		http_sql_run(&st, urls, nurls, &proto, rsinfo);
	}
	PG_FINALLY();
	{
		if (st.have_res)
			http_result_free(&st.res);
		http_engine_destroy(st.engine);
	}
	PG_END_TRY();

	return (Datum) 0;
}

/*
 * Refuse arguments out of range.
 */
static void
http_sql_check_args(int timeout_ms, int max_bytes, int max_redirects, int max_concurrent)
{
	if (timeout_ms <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid timeout_ms \"%d\"", timeout_ms),
				 errhint("Pass a timeout of at least 1 millisecond.")));
	if (max_bytes < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid max_bytes \"%d\"", max_bytes),
				 errhint("Pass 0 to accept no body, or a positive number of bytes.")));
	if (max_redirects < 0 || max_redirects > HTTP_SQL_MAX_REDIRECTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid max_redirects \"%d\"", max_redirects),
				 errhint("Pass a number of redirects from 0 to %d.", HTTP_SQL_MAX_REDIRECTS)));
	if (max_concurrent < 1 || max_concurrent > HTTP_SQL_MAX_CONCURRENT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid max_concurrent \"%d\"", max_concurrent),
				 errhint("Pass a number of concurrent transfers from 1 to %d.", HTTP_SQL_MAX_CONCURRENT)));
}

/*
 * Drive the engine until every URL has a result: submit while there is
 * room, wait on the latch and curl's sockets, hand readiness back, collect.
 * What must be released on an error is in *st, which the caller releases.
 */
static void
http_sql_run(HttpSqlState *st, char **urls, int nurls, HttpRequest *proto,
			 ReturnSetInfo *rsinfo)
{
	HttpEngine *engine = st->engine;
	MemoryContext turn_cxt;
	MemoryContext old_cxt;
	int			next = 0;
	int			done = 0;

	turn_cxt = AllocSetContextCreate(CurrentMemoryContext, "incident__http_fetch turn",
									 ALLOCSET_DEFAULT_SIZES);

	while (done < nurls)
	{
		CHECK_FOR_INTERRUPTS();

		while (next < nurls && http_engine_capacity_left(engine) > 0)
		{
			proto->id = next;
			proto->url = urls[next];
			if (!http_engine_submit(engine, proto))
				break;
			next++;
		}

		while (http_engine_next_result(engine, HTTP_OWNER_DEFAULT, &st->res))
		{
			st->have_res = true;
			http_sql_put_row(rsinfo, urls, &st->res);
			http_result_free(&st->res);
			st->have_res = false;
			done++;
		}
		if (done >= nurls)
			break;
		if (next < nurls && http_engine_capacity_left(engine) > 0)
			continue;

		old_cxt = MemoryContextSwitchTo(turn_cxt);
		http_engine_wait(engine, MyLatch, -1);
		ResetLatch(MyLatch);
		MemoryContextSwitchTo(old_cxt);
		MemoryContextReset(turn_cxt);
	}

	MemoryContextDelete(turn_cxt);
}

/*
 * Append one result as a row.
 */
static void
http_sql_put_row(ReturnSetInfo *rsinfo, char **urls, const HttpResult *res)
{
	Datum		values[HTTP_SQL_NCOLS];
	bool		nulls[HTTP_SQL_NCOLS];
	int			c = 0;

	memset(nulls, 0, sizeof(nulls));
	values[c++] = Int32GetDatum((int32) res->id + 1);
	values[c++] = CStringGetTextDatum(urls[res->id]);
	values[c++] = CStringGetTextDatum(http_failure_name(res->failure));
	values[c++] = Int32GetDatum((int32) res->status);
	values[c++] = Float8GetDatum(res->namelookup_ms);
	values[c++] = Float8GetDatum(res->connect_ms);
	values[c++] = Float8GetDatum(res->appconnect_ms);
	values[c++] = Float8GetDatum(res->starttransfer_ms);
	values[c++] = Float8GetDatum(res->total_ms);
	if (res->final_url != NULL && pg_verifymbstr(res->final_url, strlen(res->final_url), true))
		values[c++] = CStringGetTextDatum(res->final_url);
	else
		nulls[c++] = true;
	/* the body as text when it is valid in the database encoding */
	if (res->body != NULL && pg_verifymbstr(res->body, (int) res->body_kept, true))
		values[c++] = PointerGetDatum(cstring_to_text_with_len(res->body, (int) res->body_kept));
	else
		nulls[c++] = true;
	values[c++] = Int64GetDatum(res->body_bytes);
	if (res->error[0] != '\0' && pg_verifymbstr(res->error, strlen(res->error), true))
		values[c++] = CStringGetTextDatum(res->error);
	else
		nulls[c++] = true;
	values[c++] = TimestampTzGetDatum(res->started_at);
	values[c++] = TimestampTzGetDatum(res->finished_at);
	Assert(c == HTTP_SQL_NCOLS);

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}
