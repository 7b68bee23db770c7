/*-------------------------------------------------------------------------
 *
 * probe_sql.h
 *		SQL probes (src/worker/probe_sql.c): claim one, run its query
 *		read-only as its run_as role under a statement timeout, judge the
 *		value.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INCIDENT_PROBE_SQL_H
#define PG_INCIDENT_PROBE_SQL_H

#include "access/htup.h"
#include "access/tupdesc.h"

/*
 * The columns of incident_probe p that probe_sql_check_from reads, in its
 * order: id, name, query, run_as, timeout in ms, warn, crit.
 */
#define PROBE_SQL_COLUMNS \
	"p.id, p.name, p.query, p.run_as," \
	" (pg_catalog.date_part('epoch', p.timeout) OPERATOR(pg_catalog.*) 1000)::pg_catalog.int4," \
	" p.warn::pg_catalog.text, p.crit::pg_catalog.text"
#define PROBE_SQL_NCOLUMNS 7

/* one check of a SQL probe: what running and judging it needs */
typedef struct ProbeSqlCheck
{
	int64		probe_id;
	char	   *name;
	char	   *query;
	char	   *run_as;
	int			timeout_ms;
	char	   *warn;			/* numeric as text, or NULL */
	char	   *crit;
} ProbeSqlCheck;

extern ProbeSqlCheck *probe_sql_claim(MemoryContext cxt);
extern ProbeSqlCheck *probe_sql_check_from(HeapTuple tup, TupleDesc desc, MemoryContext cxt);
extern char *probe_sql_run(const ProbeSqlCheck *check);

#endif							/* PG_INCIDENT_PROBE_SQL_H */
