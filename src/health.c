/*-------------------------------------------------------------------------
 *
 * health.c
 *		What the health views read without waiting for anybody's lock.
 *
 * A health check runs when something is wrong: often while a session holds
 * an exclusive lock, or an ALTER TABLE queues for one. pg_relation_size()
 * and pg_sequence_last_value() take a lock on the relation first, so a
 * view built on them waits behind that queue, and the view that should
 * show the lock hangs on it. The two functions here never wait:
 *
 *	- incident__relation_bytes(oid) adds up the files of a relation (every
 *	  fork, every 1 GB segment) by stat(), finding them as
 *	  pg_relation_filepath() does, through the catalog alone. A relation
 *	  dropped or rewritten meanwhile counts what is found: its files are
 *	  gone or new, which is the truth of the moment.
 *	- incident__sequence_last_value(oid) takes the sequence's lock only if
 *	  it is free at once (ConditionalLockRelationOid) and then reads it as
 *	  pg_sequence_last_value() does; NULL when it is locked, never called,
 *	  another session's temporary sequence, gone, or not readable by the
 *	  caller (who then takes no lock on it). The lock it takes is held to
 *	  the end of the transaction, as reading pg_sequences holds it.
 *
 * Sizes are no secret (pg_class.relpages says as much to every role); a
 * sequence's value is read only for a caller with SELECT or USAGE on it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "common/relpath.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/syscache.h"

#include "pg_incident.h"

PG_FUNCTION_INFO_V1(incident_relation_bytes);
PG_FUNCTION_INFO_V1(incident_sequence_last_value);

static Datum call_nullable(PGFunction fn, Datum arg, bool *isnull);
static int64 fork_bytes(const char *path);

/*
 * Calls a built-in function of one argument that may return NULL (which
 * DirectFunctionCall1 refuses).
 */
static Datum
call_nullable(PGFunction fn, Datum arg, bool *isnull)
{
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = arg;
	fcinfo->args[0].isnull = false;
	result = fn(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

/*
 * The bytes of one fork: its first file and the segments after it, up to
 * the first that does not exist.
 */
static int64
fork_bytes(const char *path)
{
	int64		total = 0;
	struct stat st;

	for (unsigned int segno = 0;; segno++)
	{
		char		segpath[MAXPGPATH];

		CHECK_FOR_INTERRUPTS();
		if (segno == 0)
			snprintf(segpath, sizeof(segpath), "%s", path);
		else
			snprintf(segpath, sizeof(segpath), "%s.%u", path, segno);
		if (stat(segpath, &st) < 0)
		{
			if (errno == ENOENT)
				break;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat file \"%s\": %m", segpath)));
		}
		total += st.st_size;
	}
	return total;
}

/*
 * incident__relation_bytes(oid) returns bigint: every fork of the relation
 * on disk, as pg_relation_size(oid, fork) summed over the forks would, but
 * without its lock; NULL for a relation without storage or that is gone.
 */
Datum
incident_relation_bytes(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	bool		isnull;
	Datum		path;
	char	   *main_path;
	int64		total = 0;

	path = call_nullable(pg_relation_filepath, ObjectIdGetDatum(relid), &isnull);
	if (isnull)
		PG_RETURN_NULL();
	main_path = text_to_cstring(DatumGetTextPP(path));

	for (ForkNumber fork = MAIN_FORKNUM; fork <= MAX_FORKNUM; fork++)
	{
		if (fork == MAIN_FORKNUM)
			total += fork_bytes(main_path);
		else
		{
			char	   *fork_path = psprintf("%s_%s", main_path, forkNames[fork]);

			total += fork_bytes(fork_path);
			pfree(fork_path);
		}
	}
	PG_RETURN_INT64(total);
}

/*
 * incident__sequence_last_value(oid) returns bigint: the sequence's last
 * value, or NULL when it has not been called, the caller may not read it,
 * it cannot be locked at once, it is another session's temporary sequence
 * (or an unlogged one on a standby), or it is not a sequence any more.
 */
Datum
incident_sequence_last_value(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	HeapTuple	tup;
	char		relkind;
	char		persistence;
	Oid			nspid;
	bool		isnull;
	Datum		value;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		PG_RETURN_NULL();
	relkind = ((Form_pg_class) GETSTRUCT(tup))->relkind;
	persistence = ((Form_pg_class) GETSTRUCT(tup))->relpersistence;
	nspid = ((Form_pg_class) GETSTRUCT(tup))->relnamespace;
	ReleaseSysCache(tup);

	if (relkind != RELKIND_SEQUENCE)
		PG_RETURN_NULL();
	if (persistence == RELPERSISTENCE_TEMP && isOtherTempNamespace(nspid))
		PG_RETURN_NULL();
	if (persistence == RELPERSISTENCE_UNLOGGED && RecoveryInProgress())
		PG_RETURN_NULL();
	/* no lock for a caller who may not read it */
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT | ACL_USAGE) != ACLCHECK_OK)
		PG_RETURN_NULL();
	/* the lock pg_sequence_last_value() takes, if it is free now */
	if (!ConditionalLockRelationOid(relid, RowExclusiveLock))
		PG_RETURN_NULL();
	/* dropped between the look and the lock */
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
	{
		UnlockRelationOid(relid, RowExclusiveLock);
		PG_RETURN_NULL();
	}

	value = call_nullable(pg_sequence_last_value, ObjectIdGetDatum(relid), &isnull);
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(value);
}
