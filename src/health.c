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
 *	- incident__sequence_last_value(oid) takes the lock nextval() takes
 *	  only if it is free at once (ConditionalLockRelationOid), reads the
 *	  last value from the sequence's one page under a share lock on the
 *	  buffer, and lets the lock go at once. pg_sequence_last_value() keeps
 *	  its lock to the end of the transaction, so that a view reading
 *	  thousands of sequences in one transaction fills the lock table and
 *	  a reader left idle in its transaction blocks DROP and ALTER of every
 *	  one; this reads them one at a time and holds nothing. NULL when it
 *	  is locked, never called, another session's temporary sequence, gone,
 *	  or not readable by the caller (who then takes no lock on it).
 *
 * Sizes are no secret (pg_class.relpages says as much to every role); a
 * sequence's value is read only for a caller with SELECT or USAGE on it.
 *
 * incident__setting_pending() tells whether a value of the configuration
 * files differs from what the server runs with, reading both as the
 * setting reads its values ('1GB' and 131072 of 8kB blocks are the same),
 * and whether a setting's value is a secret to show nobody.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/sequence.h"
#include "common/relpath.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "pg_incident.h"

PG_FUNCTION_INFO_V1(incident_relation_bytes);
PG_FUNCTION_INFO_V1(incident_sequence_last_value);
PG_FUNCTION_INFO_V1(incident_setting_pending);
PG_FUNCTION_INFO_V1(incident_setting_secret);

static Datum health_call_nullable(PGFunction fn, Datum arg, bool *isnull);
static int64 health_fork_bytes(const char *path);
static bool health_read_sequence(Relation rel, int64 *last_value);

/* the mark in a sequence page's special space (SEQ_MAGIC of sequence.c) */
#define HEALTH_SEQ_MAGIC 0x1717

/*
 * Calls a built-in function of one argument that may return NULL (which
 * DirectFunctionCall1 refuses).
 */
static Datum
health_call_nullable(PGFunction fn, Datum arg, bool *isnull)
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
health_fork_bytes(const char *path)
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

	path = health_call_nullable(pg_relation_filepath, ObjectIdGetDatum(relid), &isnull);
	if (isnull)
		PG_RETURN_NULL();
	main_path = text_to_cstring(DatumGetTextPP(path));

	for (ForkNumber fork = MAIN_FORKNUM; fork <= MAX_FORKNUM; fork++)
	{
		if (fork == MAIN_FORKNUM)
			total += health_fork_bytes(main_path);
		else
		{
			char	   *fork_path = psprintf("%s_%s", main_path, forkNames[fork]);

			total += health_fork_bytes(fork_path);
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
	Relation	rel;
	int64		last_value;
	bool		called;

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
	/* the lock nextval() takes, if it is free now */
	if (!ConditionalLockRelationOid(relid, RowExclusiveLock))
		PG_RETURN_NULL();
	/* dropped between the look and the lock */
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
	{
		UnlockRelationOid(relid, RowExclusiveLock);
		PG_RETURN_NULL();
	}

	rel = relation_open(relid, NoLock);
	called = health_read_sequence(rel, &last_value);
	relation_close(rel, RowExclusiveLock);
	if (!called)
		PG_RETURN_NULL();
	PG_RETURN_INT64(last_value);
}

/*
 * Reads the last value of a sequence the caller has locked, from its one
 * tuple on its one page, as read_seq_tuple() of sequence.c finds it;
 * false when nextval() was never called on it.
 */
static bool
health_read_sequence(Relation rel, int64 *last_value)
{
	Buffer		buf;
	Page		page;
	ItemId		lp;
	HeapTupleData tuple;
	Form_pg_sequence_data seq;
	bool		called;

	buf = ReadBuffer(rel, 0);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (PageGetSpecialSize(page) < sizeof(uint32) ||
		*(uint32 *) PageGetSpecialPointer(page) != HEALTH_SEQ_MAGIC)
		elog(ERROR, "bad magic number in sequence \"%s\"", RelationGetRelationName(rel));
	lp = PageGetItemId(page, FirstOffsetNumber);
	if (!ItemIdIsNormal(lp))
		elog(ERROR, "no tuple in sequence \"%s\"", RelationGetRelationName(rel));
	tuple.t_data = (HeapTupleHeader) PageGetItem(page, lp);
	tuple.t_len = ItemIdGetLength(lp);
	seq = (Form_pg_sequence_data) GETSTRUCT(&tuple);
	*last_value = seq->last_value;
	called = seq->is_called;
	UnlockReleaseBuffer(buf);
	return called;
}

/*
 * incident__setting_pending(name, vartype, running, file_value) returns
 * boolean: whether file_value, read as the setting named reads a value
 * (its units, its spellings of on and off), differs from running (the
 * setting column of pg_settings, in the setting's base unit). A value
 * that does not read as the setting's type differs.
 */
Datum
incident_setting_pending(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *vartype = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *running = text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *file_value = text_to_cstring(PG_GETARG_TEXT_PP(3));
	int			flags = GetConfigOptionFlags(name, true);

	if (strcmp(vartype, "integer") == 0)
	{
		int			a,
					b;

		if (!parse_int(file_value, &a, flags, NULL) || !parse_int(running, &b, flags, NULL))
			PG_RETURN_BOOL(true);
		PG_RETURN_BOOL(a != b);
	}
	if (strcmp(vartype, "real") == 0)
	{
		double		a,
					b;

		if (!parse_real(file_value, &a, flags, NULL) || !parse_real(running, &b, flags, NULL))
			PG_RETURN_BOOL(true);
		PG_RETURN_BOOL(a != b);
	}
	if (strcmp(vartype, "bool") == 0)
	{
		bool		a,
					b;

		if (!parse_bool(file_value, &a) || !parse_bool(running, &b))
			PG_RETURN_BOOL(true);
		PG_RETURN_BOOL(a != b);
	}
	if (strcmp(vartype, "enum") == 0)
		PG_RETURN_BOOL(pg_strcasecmp(file_value, running) != 0);
	PG_RETURN_BOOL(strcmp(file_value, running) != 0);
}

/*
 * incident__setting_secret(name) returns boolean: whether the setting's
 * value is for superusers alone (primary_conninfo, ssl_passphrase_command
 * and the like) or hidden from SHOW ALL, or the setting is not known.
 */
Datum
incident_setting_secret(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (GetConfigOption(name, true, false) == NULL)
		PG_RETURN_BOOL(true);
	PG_RETURN_BOOL((GetConfigOptionFlags(name, true) & (GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL)) != 0);
}
