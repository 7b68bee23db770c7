/*-------------------------------------------------------------------------
 *
 * probe_run.c
 *		incident__probe_check(): one check of a probe, now, in the
 *		caller's backend; what incident_probe_run() calls.
 *
 * A DBA writing a probe wants to see what the worker would get. This runs
 * the check the worker's way, with the worker's code: an HTTP probe through
 * an HTTP engine of its own (created for the call and destroyed after it,
 * whatever happens), judged by probe_judge(); a SQL probe through
 * probe_sql_run(), read-only as its run_as role. It returns the JSON result
 * that incident__probe_record() takes; whether to record it is the SQL
 * caller's choice. The wait checks for interrupts, so a cancel ends it.
 *
 * Superuser only: incident_probe_run(), SECURITY DEFINER and granted to
 * incident_admin, is the way in.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "http.h"
#include "probe.h"
#include "probe_sql.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(incident__probe_check);

static char *probe_run_http(HeapTuple tup, TupleDesc desc);
static SPITupleTable *probe_run_fetch(const char *columns, int64 probe_id);

/*
 * incident__probe_check(probe_id bigint) RETURNS jsonb
 */
Datum
incident__probe_check(PG_FUNCTION_ARGS)
{
	int64		probe_id = PG_GETARG_INT64(0);
	MemoryContext cxt = CurrentMemoryContext;
	SPITupleTable *row;
	char	   *kind;
	char	   *json;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function incident__probe_check"),
				 errhint("Call incident_probe_run(name) as a member of incident_admin.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "could not connect to SPI");
	row = probe_run_fetch("p.kind", probe_id);
	if (row == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("probe " INT64_FORMAT " does not exist", probe_id),
				 errhint("See incident_probe_status for the probes.")));
	kind = SPI_getvalue(row->vals[0], row->tupdesc, 1);

	if (strcmp(kind, "http") == 0)
	{
		row = probe_run_fetch(PROBE_HTTP_COLUMNS, probe_id);
		json = probe_run_http(row->vals[0], row->tupdesc);
	}
	else
	{
		row = probe_run_fetch(PROBE_SQL_COLUMNS, probe_id);
		json = probe_sql_run(probe_sql_check_from(row->vals[0], row->tupdesc, CurrentMemoryContext));
	}
	json = MemoryContextStrdup(cxt, json);
	SPI_finish();

	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
}

/*
 * The probe's row with these columns of incident_probe p, or NULL.
 */
static SPITupleTable *
probe_run_fetch(const char *columns, int64 probe_id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(probe_id)};
	char	   *q = psprintf("SELECT %s FROM %s.incident_probe p WHERE p.id OPERATOR(pg_catalog.=) $1",
							 columns, probe_schema());

	if (SPI_execute_with_args(q, 1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read probe " INT64_FORMAT, probe_id);
	return SPI_processed == 1 ? SPI_tuptable : NULL;
}

/*
 * Fetches the HTTP probe's URL through an engine of its own and judges the
 * response; the engine goes however the wait ends.
 */
static char *
probe_run_http(HeapTuple tup, TupleDesc desc)
{
	HttpRequest req;
	ProbeHttpConfig config;
	HttpResult	res;
	HttpEngine *volatile engine;
	char	   *volatile json = NULL;

	memset(&res, 0, sizeof(res));
	probe_http_config(tup, desc, &config, CurrentMemoryContext);
	probe_http_request(&config, &req, incident_max_response_bytes, incident_http_timeout);

	engine = http_engine_create(1);
	if (engine == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create an HTTP engine"),
				 errdetail("Memory ran out or libcurl could not initialize.")));
	PG_TRY();
	{
		(void) http_engine_submit(engine, &req);
		while (!http_engine_next_result(engine, HTTP_OWNER_PROBES, &res))
		{
			CHECK_FOR_INTERRUPTS();
			http_engine_wait(engine, MyLatch, -1);
			ResetLatch(MyLatch);
		}
		json = probe_judge(&res, &config.expect);
	}
	PG_FINALLY();
	{
		http_result_free(&res);
		http_engine_destroy(engine);
	}
	PG_END_TRY();
	return json;
}
