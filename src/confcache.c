/*-------------------------------------------------------------------------
 *
 * confcache.c
 *		Per-backend caches of configuration tables: one relcache callback,
 *		a registry of the cached tables, the extension's schema, and
 *		loading under a fresh snapshot.
 *
 * Some parts of pg_incident read configuration tables once per backend and
 * keep what they made of them: the classifier compiles incident_classify_rule
 * (classify.c), the deadline arithmetic keeps the business calendars
 * (sla.c), the worker will keep its settings. Each registers here the tables
 * it reads (by name: they are looked up in the schema of the extension, as
 * pg_extension records it, so no fcinfo or function OID is needed) and a
 * reset function that drops what it keeps.
 *
 * Invalidation. A statement trigger on every cached table
 * (incident__config_changed, below) queues a relcache invalidation of the
 * table; it reaches this backend at the end of the command and the others
 * when the change commits, and is processed at their next
 * AcceptInvalidationMessages(). The one relcache callback of the extension
 * marks every cache that reads the table (or, for a reset of the whole
 * relcache, every cache) stale. It only flips a flag: the reset function
 * runs in confcache_check(), at a point where the module is not using what
 * it keeps.
 *
 * Snapshots. A cache is loaded under a fresh snapshot, taken when the load
 * starts (as PostgreSQL reads its own catalogs), never under the snapshot of
 * the calling transaction or statement. The choice: the cache is shared by
 * every later call of the backend, in this transaction and the next ones,
 * so it must hold the rows that are current, not those of one caller's
 * view. Had a REPEATABLE READ transaction (or a READ COMMITTED statement
 * that started before a change committed) loaded it under its own snapshot,
 * the old rows would have been marked valid and kept after that transaction
 * ended, until the next change to the table. Loading fresh also means that
 * a REPEATABLE READ transaction classifies with the rules committed by then
 * rather than with those of its snapshot: configuration behaves as the
 * catalogs do (a table created after a REPEATABLE READ transaction started
 * is usable in it), and the classifier, the calendars and the worker agree
 * with one another at every moment. Changes of the transaction itself are
 * seen from its next command, as with the catalogs.
 *
 * Why nothing is lost: the flag is set valid before the load starts, and a
 * committing transaction sends its invalidations after its commit is visible
 * to new snapshots. A change that the load's snapshot missed therefore
 * invalidates the cache afterwards (or during the load, which leaves the
 * flag false), and the next confcache_check() reloads.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "confcache.h"

/* one registered cache */
struct ConfCache
{
	const char *what;			/* for messages: "classification rules" */
	int			ntables;
	char		tables[CONFCACHE_MAX_TABLES][NAMEDATALEN];
	Oid			relids[CONFCACHE_MAX_TABLES];	/* InvalidOid until loaded */
	bool		valid;			/* what the module keeps is current */
	ConfCacheReset reset;
	void	   *arg;
	struct ConfCache *next;
};

static ConfCache *confcache_list = NULL;
static bool confcache_callback_registered = false;

static void confcache_relcache_callback(Datum arg, Oid relid);
static void confcache_resolve(ConfCache *cache, Oid nspoid);

PG_FUNCTION_INFO_V1(incident__config_changed);

/*
 * Register a cache of the given tables (names in the extension's schema);
 * reset drops what the module keeps. Registered caches live for the backend.
 */
ConfCache *
confcache_register(const char *what, const char *const *tables, int ntables,
				   ConfCacheReset reset, void *arg)
{
	ConfCache  *cache;

	if (ntables < 1 || ntables > CONFCACHE_MAX_TABLES)
		elog(ERROR, "a configuration cache reads 1 to %d tables, not %d",
			 CONFCACHE_MAX_TABLES, ntables);

	cache = MemoryContextAllocZero(TopMemoryContext, sizeof(ConfCache));
	cache->what = MemoryContextStrdup(TopMemoryContext, what);
	cache->ntables = ntables;
	for (int i = 0; i < ntables; i++)
	{
		strlcpy(cache->tables[i], tables[i], NAMEDATALEN);
		cache->relids[i] = InvalidOid;
	}
	cache->valid = false;
	cache->reset = reset;
	cache->arg = arg;

	if (!confcache_callback_registered)
	{
		CacheRegisterRelcacheCallback(confcache_relcache_callback, (Datum) 0);
		confcache_callback_registered = true;
	}
	cache->next = confcache_list;
	confcache_list = cache;
	return cache;
}

/*
 * The relcache callback of the whole extension: a change to a cached table,
 * or a reset of the whole relcache, makes the caches that read it stale.
 */
static void
confcache_relcache_callback(Datum arg, Oid relid)
{
	for (ConfCache *cache = confcache_list; cache != NULL; cache = cache->next)
	{
		if (relid == InvalidOid)
		{
			cache->valid = false;
			continue;
		}
		for (int i = 0; i < cache->ntables; i++)
			if (cache->relids[i] == relid)
				cache->valid = false;
	}
}

/*
 * Whether what the module keeps is current, after taking in the changes
 * that have committed since; if not, reset it (the module then loads again
 * through confcache_load) and return false.
 */
bool
confcache_check(ConfCache *cache)
{
	AcceptInvalidationMessages();
	if (cache->valid)
		return true;

	cache->reset(cache->arg);
	/* an invalidation arriving from here on leaves the flag false again */
	cache->valid = true;
	return false;
}

/*
 * Whether no invalidation has arrived since the last confcache_check(); a
 * module that loaded in between may use the result for the call at hand,
 * and the next check reloads.
 */
bool
confcache_valid(ConfCache *cache)
{
	return cache->valid;
}

/*
 * The OID of the schema of the pg_incident extension, from pg_extension;
 * an error if the extension is not installed in this database.
 */
Oid
confcache_extension_schema(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			nspoid = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("pg_incident"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nspoid = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!OidIsValid(nspoid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"pg_incident\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION pg_incident first.")));
	return nspoid;
}

/*
 * Find the cache's tables in the extension's schema, so that the relcache
 * callback knows their OIDs; an error if one is missing.
 */
static void
confcache_resolve(ConfCache *cache, Oid nspoid)
{
	for (int i = 0; i < cache->ntables; i++)
	{
		Oid			relid = get_relname_relid(cache->tables[i], nspoid);

		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table \"%s.%s\" does not exist",
							get_namespace_name(nspoid), cache->tables[i]),
					 errdetail("pg_incident reads its %s from it.", cache->what),
					 errhint("Reinstall the pg_incident extension.")));
		cache->relids[i] = relid;
	}
}

/*
 * Run the module's loader for the cache: its tables are found in the
 * extension's schema (whose name the loader gets) and it reads them under
 * a fresh snapshot, pushed as the active one, so that read-only SPI queries
 * see the rows committed by now, whatever the caller's isolation level.
 * On an error, the abort of the (sub)transaction releases the snapshot.
 */
void
confcache_load(ConfCache *cache, ConfCacheLoader loader, void *arg)
{
	Oid			nspoid;
	char	   *schema;
	Snapshot	snap;

	if (!IsTransactionState())
		elog(ERROR, "pg_incident can read its %s only inside a transaction", cache->what);

	nspoid = confcache_extension_schema();
	schema = get_namespace_name(nspoid);
	if (schema == NULL)
		elog(ERROR, "could not find the schema of extension \"pg_incident\"");
	confcache_resolve(cache, nspoid);

	/* the catalog snapshot may be older than a commit that sent no catalog change */
	InvalidateCatalogSnapshot();
	snap = RegisterSnapshot(GetCatalogSnapshot(InvalidOid));
	PushActiveSnapshot(snap);

	loader(schema, arg);

	PopActiveSnapshot();
	UnregisterSnapshot(snap);
}

/*
 * Tell every backend (this one at the end of the command, the others at
 * commit) that a cached configuration table changed.
 */
void
confcache_table_changed(Oid relid)
{
	CacheInvalidateRelcacheByRelid(relid);
}

/*
 * incident__config_changed(): statement trigger on each cached
 * configuration table; the caches that read the table reload on their next
 * use.
 */
Datum
incident__config_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("incident__config_changed() must be called as a trigger")));

	confcache_table_changed(RelationGetRelid(trigdata->tg_relation));
	PG_RETURN_POINTER(NULL);
}
