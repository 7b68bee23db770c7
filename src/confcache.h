/*-------------------------------------------------------------------------
 *
 * confcache.h
 *		Per-backend caches of pg_incident's configuration tables
 *		(src/confcache.c).
 *
 * A module that keeps something it read from configuration tables (the
 * classifier's compiled rules, the business calendars, next the worker's
 * settings) registers the tables once and asks confcache_check() before
 * each use whether what it keeps is still current; it loads through
 * confcache_load(), which finds the tables in the extension's schema and
 * runs the loader under a fresh snapshot. Nothing here needs an fcinfo or
 * a function OID.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INCIDENT_CONFCACHE_H
#define PG_INCIDENT_CONFCACHE_H

/* tables one cache may read */
#define CONFCACHE_MAX_TABLES 4

/* drops what a module keeps; called by confcache_check(), never from a callback */
typedef void (*ConfCacheReset) (void *arg);

/* reads the tables, in the extension's schema, under the loading snapshot */
typedef void (*ConfCacheLoader) (const char *schema, void *arg);

typedef struct ConfCache ConfCache;

extern ConfCache *confcache_register(const char *what, const char *const *tables, int ntables,
									 ConfCacheReset reset, void *arg);
extern bool confcache_check(ConfCache *cache);
extern bool confcache_valid(ConfCache *cache);
extern void confcache_load(ConfCache *cache, ConfCacheLoader loader, void *arg);
extern Oid	confcache_extension_schema(void);
extern void confcache_table_changed(Oid relid);

#endif							/* PG_INCIDENT_CONFCACHE_H */
