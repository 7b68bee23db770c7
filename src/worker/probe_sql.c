/*-------------------------------------------------------------------------
 *
 * probe_sql.c
 *		SQL probes: claim the one due first, run its query read-only as its
 *		run_as role under a statement timeout, and judge the value.
 *
 * The SQL worker (worker.c) claims a due SQL probe in one transaction and
 * runs and records it in the next; incident_probe_run() (probe_run.c) runs
 * one in the caller's transaction. Either way probe_sql_run() runs the
 * query inside a subtransaction that is always rolled back, with
 *
 *	- the user switched to run_as, as a security-restricted operation (no
 *	  SET ROLE, no temporary objects, no deferred triggers of its own);
 *	- transaction_read_only on and search_path = pg_catalog, public,
 *	  pg_temp, local to the subtransaction, so the query writes nothing and
 *	  finds no object through a schema its author did not name (pg_temp
 *	  last: the caller's temporary view of incident_probe_run() must not
 *	  stand in for pg_catalog's, which the query then reads as run_as);
 *	- the statement timeout armed for the probe's timeout (SPI arms none of
 *	  its own), or the caller's own statement timeout if that comes first,
 *	  which is restored afterwards.
 *
 * A role that no longer exists, or a superuser run_as while
 * pg_incident.sql_probe_allow_superuser is off, is a configuration failure
 * ("config"): the probe shows as unknown and declares nothing, since the
 * service it watches may be fine. An error of the query is a failed check
 * (sql_error, or timeout when the probe's timeout ended it), and so is a
 * pg_cancel_backend() of the SQL worker; in a backend a cancel from outside
 * is not a result and is raised again.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "parser/parse_coerce.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "probe.h"
#include "probe_sql.h"
#include "worker.h"

/* what running the query gave, before it is judged */
typedef struct ProbeSqlOutcome
{
	const char *failure;		/* NULL when the query returned a value */
	char	   *error;			/* recorded, so read by incident_viewer */
	char	   *message;		/* the query's own error, for incident_admin */
	bool		isnull;
	bool		is_bool;
	bool		bool_value;
	char	   *value;			/* a number's text */
	double		latency_ms;
} ProbeSqlOutcome;

static void probe_sql_execute(const ProbeSqlCheck *check, Oid role, ProbeSqlOutcome *out);
static void probe_sql_take_value(ProbeSqlOutcome *out, MemoryContext cxt);
static char *probe_sql_error_text(const ErrorData *edata);
static char *probe_sql_judge(const ProbeSqlCheck *check, const ProbeSqlOutcome *out);
static int	probe_sql_cmp(const char *a, const char *b);

/*
 * Claims the SQL probe that is due first, if any; its check is allocated
 * in cxt, so that it outlives the transaction.
 */
ProbeSqlCheck *
probe_sql_claim(MemoryContext cxt)
{
	char	   *q;
	int			ret;

	q = psprintf("UPDATE %1$s.incident_probe_state s SET claimed_at = pg_catalog.clock_timestamp()"
				 "  FROM %1$s.incident_probe p"
				 " WHERE p.id OPERATOR(pg_catalog.=) s.probe_id"
				 "   AND s.probe_id OPERATOR(pg_catalog.=) ("
				 "       SELECT x.probe_id FROM %1$s.incident_probe_state x"
				 "         JOIN %1$s.incident_probe y ON y.id OPERATOR(pg_catalog.=) x.probe_id"
				 "        WHERE y.enabled AND y.kind OPERATOR(pg_catalog.=) 'sql'"
				 "          AND (x.claimed_at IS NULL OR x.claimed_at OPERATOR(pg_catalog.<)"
				 "               (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)"
				 "                (y.timeout OPERATOR(pg_catalog.+) interval '1 minute')))"
				 "          AND x.next_run_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp()"
				 "        ORDER BY x.next_run_at LIMIT 1 FOR UPDATE OF x SKIP LOCKED)"
				 " RETURNING " PROBE_SQL_COLUMNS ", " PROBE_LATENESS_COLUMN,
				 probe_schema());
	ret = SPI_execute(q, false, 0);
	if (ret != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not claim a due SQL probe: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return NULL;
	{
		bool		isnull;

		incident_worker_state_claimed(DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
																   PROBE_SQL_NCOLUMNS + 1, &isnull)));
	}
	return probe_sql_check_from(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, cxt);
}

/*
 * A check from a row of PROBE_SQL_COLUMNS, allocated in cxt.
 */
ProbeSqlCheck *
probe_sql_check_from(HeapTuple tup, TupleDesc desc, MemoryContext cxt)
{
	ProbeSqlCheck *check = MemoryContextAllocZero(cxt, sizeof(ProbeSqlCheck));
	bool		isnull;
	char	   *v;

	check->probe_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	check->name = MemoryContextStrdup(cxt, SPI_getvalue(tup, desc, 2));
	check->query = MemoryContextStrdup(cxt, SPI_getvalue(tup, desc, 3));
	check->run_as = MemoryContextStrdup(cxt, SPI_getvalue(tup, desc, 4));
	check->timeout_ms = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
	if ((v = SPI_getvalue(tup, desc, 6)) != NULL)
		check->warn = MemoryContextStrdup(cxt, v);
	if ((v = SPI_getvalue(tup, desc, 7)) != NULL)
		check->crit = MemoryContextStrdup(cxt, v);
	return check;
}

/*
 * Runs the check and returns the JSON result of incident__probe_record().
 * Raises an error only for a cancel or shutdown from outside.
 */
char *
probe_sql_run(const ProbeSqlCheck *check)
{
	ProbeSqlOutcome out;
	Oid			role = get_role_oid(check->run_as, true);

	memset(&out, 0, sizeof(out));
	/* a check that cannot run for its configuration: not run, not a failure */
	if (!OidIsValid(role))
	{
		out.failure = "config";
		out.error = psprintf("run_as role \"%s\" does not exist", check->run_as);
	}
	else if (superuser_arg(role) && !incident_sql_probe_allow_superuser)
	{
		out.failure = "config";
		out.error = psprintf("run_as role \"%s\" is a superuser, and "
							 "pg_incident.sql_probe_allow_superuser is off", check->run_as);
	}
	else
		probe_sql_execute(check, role, &out);
	return probe_sql_judge(check, &out);
}

/* a SQL probe's check as probe_sql_query runs it */
typedef struct ProbeSqlRun
{
	const ProbeSqlCheck *check;
	Oid			role;
	int			sec_context;	/* the caller's */
	TimestampTz start;
	MemoryContext cxt;			/* where the value goes */
	ProbeSqlOutcome *out;
} ProbeSqlRun;

/*
 * Runs the query as described at the top of the file; probe_try has
 * started the subtransaction and armed the timeout.
 */
static void
probe_sql_query(void *arg)
{
	ProbeSqlRun *run = (ProbeSqlRun *) arg;
	int			ret;

	(void) set_config_option("transaction_read_only", "on", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	(void) set_config_option("search_path", "pg_catalog, public, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	SetUserIdAndSecContext(run->role, run->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "could not connect to SPI");
	ret = SPI_execute(run->check->query, false, 1);
	run->out->latency_ms = (double) (GetCurrentTimestamp() - run->start) / 1000.0;
	if (ret < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the query could not run: %s", SPI_result_code_string(ret))));
	probe_sql_take_value(run->out, run->cxt);
	SPI_finish();
}

/*
 * Runs the query in a subtransaction that is rolled back (probe_try), as
 * described at the top of the file, and fills *out.
 */
static void
probe_sql_execute(const ProbeSqlCheck *check, Oid role, ProbeSqlOutcome *out)
{
	ProbeSqlRun run;
	Oid			save_userid;
	ErrorData  *edata;
	bool		timed_out;

	GetUserIdAndSecContext(&save_userid, &run.sec_context);
	run.check = check;
	run.role = role;
	run.start = GetCurrentTimestamp();
	run.cxt = CurrentMemoryContext;
	run.out = out;

	edata = probe_try(probe_sql_query, &run, check->timeout_ms, &timed_out);

	/*
	 * Session-level advisory locks the query took outlive the rolled-back
	 * subtransaction; in the SQL worker, whose own session holds none, they
	 * go now, so that no probe leaves a lock held for the life of the
	 * process.
	 */
	if (IsBackgroundWorker)
		LockReleaseSession(USER_LOCKMETHOD);
	if (edata == NULL)
		return;
	out->latency_ms = (double) (GetCurrentTimestamp() - run.start) / 1000.0;
	out->failure = timed_out ? "timeout" : "sql_error";
	if (timed_out)
		out->error = psprintf("the query ran longer than the probe's timeout (%d ms)", check->timeout_ms);
	else
	{
		out->message = psprintf("%s (SQLSTATE %s)", edata->message, unpack_sql_state(edata->sqlerrcode));
		out->error = probe_sql_error_text(edata);
	}
	FreeErrorData(edata);
}

/*
 * What the recorded result says of the query's error. It is shown to
 * incident_viewer, who may not read what run_as reads, and an error's
 * message may quote the data (invalid input syntax for type integer:
 * "..."), so the message is kept only for the classes of error whose
 * messages name objects and limits rather than values: syntax and access
 * rules (42), a read-only transaction (25), resources and limits (53, 54),
 * object state (55), cancels and shutdowns (57), system errors (58),
 * connections (08), unsupported features (0A), conflicts (40) and
 * unknown schemas or catalogs (3D, 3F). Others keep their SQLSTATE, and
 * incident_probe_run() shows their message to incident_admin.
 */
static char *
probe_sql_error_text(const ErrorData *edata)
{
	static const char *const named_classes[] = {
		"42", "25", "53", "54", "55", "57", "58", "08", "0A", "40", "3D", "3F"
	};
	const char *state = unpack_sql_state(edata->sqlerrcode);

	for (size_t i = 0; i < lengthof(named_classes); i++)
		if (strncmp(state, named_classes[i], 2) == 0)
			return psprintf("%s (SQLSTATE %s)", edata->message, state);
	return psprintf("the query failed with SQLSTATE %s "
					"(its message may quote data: incident_probe_run() shows it)", state);
}

/*
 * Takes the value from the first column of the first row SPI returned,
 * copied into cxt, or the failure (in cxt too) when there is no usable
 * value.
 */
static void
probe_sql_take_value(ProbeSqlOutcome *out, MemoryContext cxt)
{
	Oid			type;
	bool		isnull;
	Datum		d;

	if (SPI_tuptable == NULL || SPI_tuptable->tupdesc->natts < 1)
	{
		out->failure = "sql_error";
		out->error = MemoryContextStrdup(cxt, "the query returned no column "
										 "(it should return one number or boolean, as SELECT count(*) FROM ... does)");
		return;
	}
	if (SPI_processed == 0)
	{
		out->failure = "sql_error";
		out->error = MemoryContextStrdup(cxt, "the query returned no row "
										 "(it should return one number or boolean, as SELECT count(*) FROM ... does)");
		return;
	}

	type = getBaseType(SPI_gettypeid(SPI_tuptable->tupdesc, 1));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
	{
		out->isnull = true;
		return;
	}
	if (type == BOOLOID)
	{
		out->is_bool = true;
		out->bool_value = DatumGetBool(d);
		return;
	}
	if (TypeCategory(type) != TYPCATEGORY_NUMERIC)
	{
		out->failure = "sql_error";
		out->error = MemoryContextStrdup(cxt, psprintf("the query returned a value of type %s "
													   "(it should return a number or a boolean: cast it, "
													   "as count(*)::int or x > 0)",
													   format_type_be(type)));
		return;
	}
	/* through numeric, so that a type numeric cannot read fails here */
	d = DirectFunctionCall3(numeric_in,
							CStringGetDatum(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
							ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	out->value = MemoryContextStrdup(cxt, DatumGetCString(DirectFunctionCall1(numeric_out, d)));
}

/*
 * Compares two numbers given as text.
 */
static int
probe_sql_cmp(const char *a, const char *b)
{
	Datum		x = DirectFunctionCall3(numeric_in, CStringGetDatum(a), ObjectIdGetDatum(InvalidOid),
										Int32GetDatum(-1));
	Datum		y = DirectFunctionCall3(numeric_in, CStringGetDatum(b), ObjectIdGetDatum(InvalidOid),
										Int32GetDatum(-1));

	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, x, y));
}

/*
 * The JSON result of a check. A false boolean fails; a number past crit
 * fails and past warn is degraded, where past means above, or below when
 * crit < warn (lower is worse, as free space is).
 */
static char *
probe_sql_judge(const ProbeSqlCheck *check, const ProbeSqlOutcome *out)
{
	StringInfoData buf;
	const char *failure = out->failure;
	const char *error = out->error;
	bool		ok = failure == NULL;

	if (ok && out->isnull)
	{
		ok = false;
		failure = "sql_error";
		error = "the query returned NULL";
	}
	else if (ok && out->is_bool && !out->bool_value)
	{
		ok = false;
		failure = "threshold";
		error = "the query returned false";
	}
	else if (ok && out->value != NULL)
	{
		bool		lower = check->warn && check->crit && probe_sql_cmp(check->crit, check->warn) < 0;
		const char *past = lower ? "below" : "above";

#define PROBE_SQL_PAST(t) ((t) != NULL && (lower ? probe_sql_cmp(out->value, (t)) < 0 \
										   : probe_sql_cmp(out->value, (t)) > 0))
		if (PROBE_SQL_PAST(check->crit))
		{
			ok = false;
			failure = "threshold";
			error = psprintf("value %s is %s crit %s", out->value, past, check->crit);
		}
		else if (PROBE_SQL_PAST(check->warn))
		{
			/* degraded: a passing check with a failure to show */
			failure = "threshold";
			error = psprintf("value %s is %s warn %s", out->value, past, check->warn);
		}
#undef PROBE_SQL_PAST
	}

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"ok\": %s", ok ? "true" : "false");
	if (failure)
	{
		appendStringInfoString(&buf, ", \"failure\": ");
		escape_json(&buf, failure);
	}
	if (out->is_bool)
		appendStringInfo(&buf, ", \"value\": %d", out->bool_value ? 1 : 0);
	else if (out->value != NULL)
	{
		/* a string, so that NaN and Infinity stay valid JSON */
		appendStringInfoString(&buf, ", \"value\": ");
		escape_json(&buf, out->value);
	}
	appendStringInfo(&buf, ", \"latency_ms\": %.3f", out->latency_ms);
	if (error)
	{
		appendStringInfoString(&buf, ", \"error\": ");
		escape_json(&buf, error);
	}
	if (out->message)
	{
		appendStringInfoString(&buf, ", \"message\": ");
		escape_json(&buf, out->message);
	}
	appendStringInfoString(&buf, ", \"at\": ");
	escape_json(&buf, timestamptz_to_str(GetCurrentTimestamp()));
	appendStringInfoChar(&buf, '}');
	return buf.data;
}
