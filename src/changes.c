/*-------------------------------------------------------------------------
 *
 * changes.c
 *		Role changes and ALTER SYSTEM into incident_change.
 *
 * The event triggers of extension/82_health.sql record DDL, drops and
 * privileges on objects, but event triggers never fire for what is not
 * of one database: CREATE, ALTER and DROP ROLE, GRANT of a role, REASSIGN
 * OWNED and ALTER SYSTEM. A ProcessUtility hook sees those, after they
 * succeed, and records them through incident__record_change() when
 * pg_incident is installed in the current database. The hook is in place
 * in every backend that has loaded the library, which is every backend when
 * it is in shared_preload_libraries (docs/diagnostics.md says so); a change
 * made from a database without pg_incident is not seen.
 *
 * Recording never stands in the way of the command: it runs in a
 * subtransaction, and a failure is a WARNING. It runs as the extension's
 * owner, who may call incident__record_change(), which notes the calling
 * role (incident_invoker(): the outer user) and the session's login.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

#include "pg_incident.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

static const char *change_kind(Node *stmt);
static void record_change(const char *kind, const char *tag, const char *statement);
static void incident_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
									 ProcessUtilityContext context, ParamListInfo params,
									 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc);

/*
 * Installs the hook; called once, from _PG_init.
 */
void
incident_changes_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = incident_process_utility;
}

/*
 * "role" or "setting" for the statements event triggers do not see; NULL
 * for every other.
 */
static const char *
change_kind(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_CreateRoleStmt:
		case T_AlterRoleStmt:
		case T_AlterRoleSetStmt:
		case T_DropRoleStmt:
		case T_GrantRoleStmt:
		case T_ReassignOwnedStmt:
			return "role";
		case T_RenameStmt:
			return ((RenameStmt *) stmt)->renameType == OBJECT_ROLE ? "role" : NULL;
		case T_AlterSystemStmt:
			return "setting";
		default:
			return NULL;
	}
}

static void
incident_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						 ProcessUtilityContext context, ParamListInfo params,
						 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	const char *kind = change_kind(stmt);
	const char *tag = kind ? CreateCommandName(stmt) : NULL;
	char	   *statement = NULL;

	/* this statement alone of a string of several */
	if (kind != NULL && queryString != NULL)
	{
		int			location = pstmt->stmt_location > 0 ? pstmt->stmt_location : 0;
		int			len = pstmt->stmt_len > 0 ? pstmt->stmt_len : (int) strlen(queryString + location);

		statement = pnstrdup(queryString + location, len);
	}

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);

	if (kind != NULL)
		record_change(kind, tag, statement);
}

/*
 * Records the change through incident__record_change(), as the extension's
 * owner, in a subtransaction; nothing when pg_incident is not installed
 * here (or only a version without the change log), while an extension
 * script runs, or where nothing can be written.
 */
static void
record_change(const char *kind, const char *tag, const char *statement)
{
	Oid			ext;
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner_res = CurrentResourceOwner;
	Oid			save_userid;
	int			save_sec;

	if (!IsTransactionState() || creating_extension || RecoveryInProgress() || XactReadOnly)
		return;
	ext = get_extension_oid("pg_incident", true);
	if (!OidIsValid(ext))
		return;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
		Datum		values[3];
		char		nulls[3] = {' ', ' ', ' '};
		Oid			owner = InvalidOid;
		char	   *schema = NULL;
		int			ret;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "could not connect to SPI");
		/* an older version of pg_incident here has no change log */
		ret = SPI_execute_with_args("SELECT e.extowner, n.nspname FROM pg_catalog.pg_extension e"
									" JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
									" WHERE e.oid OPERATOR(pg_catalog.=) $1"
									"   AND pg_catalog.to_regprocedure(pg_catalog.format("
									"       '%I.incident__record_change(text,text,text,text,name,text)', n.nspname)) IS NOT NULL",
									1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(ext)}, NULL, true, 1);
		if (ret == SPI_OK_SELECT && SPI_processed == 1)
		{
			bool		isnull;

			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			schema = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		}
		if (OidIsValid(owner) && schema != NULL)
		{
			SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
			values[0] = CStringGetTextDatum(kind);
			values[1] = CStringGetTextDatum(tag);
			if (statement != NULL)
				values[2] = CStringGetTextDatum(statement);
			else
				nulls[2] = 'n';
			ret = SPI_execute_with_args(psprintf("SELECT %s.incident__record_change($1, $2, NULL::pg_catalog.text, NULL::pg_catalog.text, NULL::pg_catalog.name, $3)",
												 quote_identifier(schema)),
										3, argtypes, values, nulls, false, 0);
			if (ret != SPI_OK_SELECT)
				elog(ERROR, "could not record the change: %s", SPI_result_code_string(ret));
		}
		SPI_finish();
		SetUserIdAndSecContext(save_userid, save_sec);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner_res;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		SetUserIdAndSecContext(save_userid, save_sec);
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner_res;
		/* a cancel or a shutdown is not a failure to record: it goes on */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED || edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(edata);
		ereport(WARNING,
				(errmsg("pg_incident could not record the change in incident_change: %s", edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}
