/*-------------------------------------------------------------------------
 *
 * pg_incident.h
 *		Helpers of pg_incident.c that the other C files use.
 *
 * Error messages quote the value they complain about, and that value may be
 * as long as a text can be: every C error of pg_incident quotes at most a
 * bounded prefix of it (incident_quote_prefix), so that a 1 MB title gives a
 * short error and a short log line. The SQL side quotes the same prefix
 * through incident__quote_prefix(text), the SQL face of the same function.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INCIDENT_H
#define PG_INCIDENT_H

/* characters of a value that an error message quotes; "..." marks a cut */
#define INCIDENT_QUOTE_MAX_CHARS 64

extern char *incident_quote_prefix(const char *value);
extern char *incident_quote_prefix_len(const char *value, int len);
extern bool incident_timezone_name_valid(const char *name);

/* changes.c: role changes and ALTER SYSTEM into incident_change */
extern void incident_changes_init(void);

#endif							/* PG_INCIDENT_H */
