/*-------------------------------------------------------------------------
 *
 * pg_incident.c
 *		Module load, settings, and the small C helpers the SQL API leans on.
 *
 * pg_incident keeps an incident-response playbook in the database: the
 * lifecycle lives in SQL (extension/pg_incident--*.sql) and this file gives
 * it what SQL cannot say by itself:
 *
 *	- pg_incident.timezone, the zone in which an incident's day (the
 *	  YYYY-MMDD of its code) is taken, validated as a time zone name;
 *	- pg_incident.clock, a superuser-only test clock that freezes "now" for
 *	  every lifecycle function and view, so that tests and demos give
 *	  stable times;
 *	- the invoking role of a SECURITY DEFINER function, so that the timeline
 *	  records who acted rather than who owns the extension;
 *	- incident_quote_prefix (pg_incident.h), the bounded prefix of a value
 *	  that every C error message quotes, and incident__quote_prefix(text),
 *	  the same for the SQL side.
 *
 * The invalidation trigger on the cached configuration tables,
 * incident__config_changed, lives with the caches in confcache.c.
 *
 * The library may be loaded lazily (on the first call of one of its
 * functions) or from shared_preload_libraries; the settings behave the same
 * either way.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "access/xact.h"

#include "pg_incident.h"
#include "worker/worker.h"

PG_MODULE_MAGIC;

/* ---- GUC variables ---- */

static char *incident_timezone_setting = NULL;
static char *incident_clock_setting = NULL;
static int	incident_recent_changes_hours = 6;

/* the worker's settings (src/worker/worker.h) */
bool		incident_worker_enabled = true;
char	   *incident_worker_database = NULL;
int			incident_worker_naptime = 1000;
int			incident_probe_flush_interval = 60 * 1000;
int			incident_max_concurrent_requests = 100;
int			incident_http_timeout = 10000;
int			incident_max_response_bytes = 1024 * 1024;
int			incident_result_retention = 30 * 24 * 60 * 60;
int			incident_notification_retry_max = 10 * 60 * 1000;
int			incident_notification_dead_after = 24 * 60 * 60;
char	   *incident_worker_fail_phase = NULL;
bool		incident_sql_probe_allow_superuser = false;

/* The parsed value of pg_incident.clock, or 0 when the clock is real. */
static TimestampTz incident_clock_value = 0;
static bool incident_clock_frozen = false;

/* ---- forward declarations ---- */

void		_PG_init(void);

static bool incident_check_timezone(char **newval, void **extra, GucSource source);
static bool incident_check_clock(char **newval, void **extra, GucSource source);
static void incident_assign_clock(const char *newval, void *extra);
static bool incident_parse_clock(const char *str, TimestampTz *result);
static void incident_define_worker_settings(void);

PG_FUNCTION_INFO_V1(incident_timezone);
PG_FUNCTION_INFO_V1(incident_now);
PG_FUNCTION_INFO_V1(incident__act_now);
PG_FUNCTION_INFO_V1(incident_invoker);
PG_FUNCTION_INFO_V1(incident_timezone_valid);
PG_FUNCTION_INFO_V1(incident__quote_prefix);

/*
 * Module load: define the settings; while preloaded, also ask for the
 * worker's shared memory and register the worker.
 */
void
_PG_init(void)
{
	/*
	 * Superuser-only, so that a responder cannot move an incident to another
	 * day by changing a session setting; empty means the server's zone.
	 */
	DefineCustomStringVariable("pg_incident.timezone",
							   "Sets the time zone in which incident codes take their day.",
							   "Empty means the server's time zone (log_timezone).",
							   &incident_timezone_setting,
							   "",
							   PGC_SUSET,
							   0,
							   incident_check_timezone,
							   NULL,
							   NULL);

	DefineCustomStringVariable("pg_incident.clock",
							   "Sets a fixed time that pg_incident uses as now, for tests and demos.",
							   "Empty means the real transaction time.",
							   &incident_clock_setting,
							   "",
							   PGC_SUSET,
							   0,
							   incident_check_clock,
							   incident_assign_clock,
							   NULL);

	/*
	 * Superuser-only, so that whoever declares an incident cannot leave the
	 * recent changes off its timeline.
	 */
	DefineCustomIntVariable("pg_incident.recent_changes_hours",
							"Sets how many hours of recent changes a new incident's timeline notes.",
							"0 notes none.",
							&incident_recent_changes_hours,
							6, 0, 168,
							PGC_SUSET,
							0,
							NULL,
							NULL,
							NULL);

	incident_define_worker_settings();

	MarkGUCPrefixReserved("pg_incident");

	incident_changes_init();

	if (process_shared_preload_libraries_in_progress)
	{
		incident_worker_state_init();
		incident_worker_register();
	}
}

/*
 * The settings of the background worker and of the probes it runs; the
 * postmaster-only one exists only when the library is preloaded, the only
 * case in which a worker runs.
 */
static void
incident_define_worker_settings(void)
{
	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable("pg_incident.database",
								   "Sets the database the pg_incident background worker connects to.",
								   "The worker waits until the database exists and the extension is installed in it.",
								   &incident_worker_database,
								   "postgres",
								   PGC_POSTMASTER,
								   0,
								   NULL,
								   NULL,
								   NULL);

	DefineCustomBoolVariable("pg_incident.enabled",
							 "Sets whether the pg_incident background worker runs probes and delivers notifications.",
							 "When off, the worker stays connected and idle.",
							 &incident_worker_enabled,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL,
							 NULL,
							 NULL);

	DefineCustomIntVariable("pg_incident.naptime",
							"Sets the time the pg_incident background worker waits between two turns.",
							NULL,
							&incident_worker_naptime,
							1000,
							10,
							60 * 60 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("pg_incident.probe_flush_interval",
							"Sets how long the pg_incident worker may count the passing checks of a healthy HTTP probe before it writes them.",
							"Failures and changes of state are written at once; 0 writes every check through incident__probe_record.",
							&incident_probe_flush_interval,
							60 * 1000,
							0,
							60 * 60 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("pg_incident.max_concurrent_requests",
							"Sets the maximum number of HTTP requests the pg_incident worker has in flight at once.",
							NULL,
							&incident_max_concurrent_requests,
							100,
							1,
							10000,
							PGC_SIGHUP,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("pg_incident.http_timeout",
							"Sets the longest time an HTTP request of the pg_incident worker may take.",
							"A probe's own timeout, when shorter, applies instead.",
							&incident_http_timeout,
							10000,
							1,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("pg_incident.max_response_bytes",
							"Sets the largest HTTP response body the pg_incident worker keeps.",
							"A longer body is cut at this size.",
							&incident_max_response_bytes,
							1024 * 1024,
							1024,
							MaxAllocSize / 2,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("pg_incident.result_retention",
							"Sets how long the pg_incident worker keeps probe results.",
							"Older results are deleted by the worker; 0 keeps them forever.",
							&incident_result_retention,
							30 * 24 * 60 * 60,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("pg_incident.notification_retry_max",
							"Sets the longest wait between two attempts at a failing notification.",
							"The wait doubles from 1 second after each failure, with jitter, up to this; a receiver's Retry-After may ask for longer.",
							&incident_notification_retry_max,
							10 * 60 * 1000,
							1000,
							24 * 60 * 60 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("pg_incident.notification_dead_after",
							"Sets how long the pg_incident worker tries to deliver a notification before it is dead.",
							"A dead notification shows in incident_notification_dead until incident_notification_retry() queues it again; 0 tries forever.",
							&incident_notification_dead_after,
							24 * 60 * 60,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL,
							NULL,
							NULL);

	DefineCustomBoolVariable("pg_incident.sql_probe_allow_superuser",
							 "Allows SQL probes whose run_as is a superuser.",
							 "Off, incident_probe_sql() refuses a superuser run_as and the worker does not run such a probe.",
							 &incident_sql_probe_allow_superuser,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL,
							 NULL,
							 NULL);

	/* for tests only: makes the worker's phase of this name fail */
	DefineCustomStringVariable("pg_incident.worker_fail_phase",
							   "Sets the name of a worker phase that fails on purpose, for tests.",
							   "Empty means none.",
							   &incident_worker_fail_phase,
							   "",
							   PGC_SIGHUP,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL,
							   NULL,
							   NULL);
}

/*
 * Check hook for pg_incident.timezone: empty, or a zone name that
 * incident_timezone_valid() accepts.
 */
static bool
incident_check_timezone(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;

	if (!incident_timezone_name_valid(*newval))
	{
		GUC_check_errmsg("invalid time zone \"%s\"", incident_quote_prefix(*newval));
		GUC_check_errdetail("pg_incident.timezone takes a time zone name that PostgreSQL knows; POSIX offsets such as \"+05\" and \"localtime\" are not accepted.");
		GUC_check_errhint("Use a name from pg_timezone_names, such as \"UTC\" or \"Asia/Riyadh\", or an empty string for the server's time zone.");
		return false;
	}
	return true;
}

/*
 * Parse a clock value without throwing; false if it is not a definite time.
 */
static bool
incident_parse_clock(const char *str, TimestampTz *result)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			tz;
	struct pg_tm tt;
	fsec_t		fsec;
	int			dterr;
#if PG_VERSION_NUM >= 160000
	DateTimeErrorExtra extra;
#endif

	dterr = ParseDateTime(str, workbuf, sizeof(workbuf), field, ftype,
						  MAXDATEFIELDS, &nf);
	if (dterr != 0)
		return false;

	/* "now", "today" and the like are moving targets, not a frozen clock */
	for (int i = 0; i < nf; i++)
	{
		if (ftype[i] == DTK_STRING &&
			(strcmp(field[i], "now") == 0 || strcmp(field[i], "today") == 0 ||
			 strcmp(field[i], "tomorrow") == 0 || strcmp(field[i], "yesterday") == 0))
			return false;
	}

#if PG_VERSION_NUM >= 160000
	dterr = DecodeDateTime(field, ftype, nf, &dtype, &tt, &fsec, &tz, &extra);
#else
	dterr = DecodeDateTime(field, ftype, nf, &dtype, &tt, &fsec, &tz);
#endif
	if (dterr != 0 || dtype != DTK_DATE)
		return false;
	return tm2timestamp(&tt, fsec, &tz, result) == 0;
}

/*
 * Check hook for pg_incident.clock: empty, or a definite timestamp.
 */
static bool
incident_check_clock(char **newval, void **extra, GucSource source)
{
	TimestampTz *parsed;
	TimestampTz value;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;

	if (!incident_parse_clock(*newval, &value))
	{
		GUC_check_errmsg("invalid clock \"%s\"", incident_quote_prefix(*newval));
		GUC_check_errdetail("pg_incident.clock takes a definite timestamp with time zone.");
		GUC_check_errhint("Use a value such as \"2026-01-15 14:30:00+00\", or an empty string for the real time.");
		return false;
	}

	/* GUC frees "extra" with free(), so it must come from malloc() */
	parsed = (TimestampTz *) malloc(sizeof(TimestampTz));
	if (parsed == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		GUC_check_errmsg("out of memory");
		return false;
	}
	*parsed = value;
	*extra = parsed;
	return true;
}

/*
 * Assign hook for pg_incident.clock: remember the parsed time.
 */
static void
incident_assign_clock(const char *newval, void *extra)
{
	if (extra == NULL)
	{
		incident_clock_frozen = false;
		incident_clock_value = 0;
	}
	else
	{
		incident_clock_frozen = true;
		incident_clock_value = *(TimestampTz *) extra;
	}
}

/*
 * incident_timezone() returns the time zone in which incident days are taken:
 * pg_incident.timezone, else the server's own zone. That is log_timezone,
 * which initdb sets to the machine's zone and only the server's
 * configuration can change, unlike TimeZone, which every client may set.
 */
Datum
incident_timezone(PG_FUNCTION_ARGS)
{
	if (incident_timezone_setting != NULL && incident_timezone_setting[0] != '\0')
		PG_RETURN_TEXT_P(cstring_to_text(incident_timezone_setting));

	PG_RETURN_TEXT_P(cstring_to_text(pg_get_timezone_name(log_timezone)));
}

/*
 * incident_now() returns pg_incident's "now": the test clock if set, else the
 * transaction's start time (as now() does).
 */
Datum
incident_now(PG_FUNCTION_ARGS)
{
	if (incident_clock_frozen)
		PG_RETURN_TIMESTAMPTZ(incident_clock_value);

	PG_RETURN_TIMESTAMPTZ(GetCurrentTransactionStartTimestamp());
}

/*
 * incident__act_now() returns the time of an act: the test clock when it is
 * frozen, else the clock time (not the transaction's start). It is in C so
 * that the library, and with it the superuser-only definition of
 * pg_incident.clock, is loaded before the clock is read: a placeholder value
 * that a responder SET before the library loaded is dropped then, and never
 * counts as a frozen clock.
 */
Datum
incident__act_now(PG_FUNCTION_ARGS)
{
	if (incident_clock_frozen)
		PG_RETURN_TIMESTAMPTZ(incident_clock_value);

	PG_RETURN_TIMESTAMPTZ(GetCurrentTimestamp());
}

/*
 * incident_invoker() returns the role that called into pg_incident, even from
 * inside a SECURITY DEFINER function.
 */
Datum
incident_invoker(PG_FUNCTION_ARGS)
{
	char	   *name = GetUserNameFromId(GetOuterUserId(), false);

	PG_RETURN_TEXT_P(cstring_to_text(name));
}

/*
 * Whether a time zone name is one pg_incident accepts: a zone PostgreSQL
 * knows by name, not a POSIX offset spec such as "+05" (which PostgreSQL
 * would read as five hours west of Greenwich) or "localtime".
 */
bool
incident_timezone_name_valid(const char *name)
{
	if (name[0] == '\0' || name[0] == '+' || name[0] == '-' || isdigit((unsigned char) name[0]) ||
		pg_strcasecmp(name, "localtime") == 0)
		return false;
	return pg_tzset(name) != NULL;
}

/*
 * incident_timezone_valid(name) tells whether pg_incident accepts the time
 * zone (the rule of pg_incident.timezone and of the calendars).
 */
Datum
incident_timezone_valid(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_BOOL(incident_timezone_name_valid(name));
}

/*
 * The first len bytes of value as an error message quotes them: at most
 * INCIDENT_QUOTE_MAX_CHARS characters, cut at a character boundary, with
 * "..." when cut. Only the bytes that the kept characters can take are
 * read; they are verified first, so that a value cut in the middle of a
 * character (a slice of a longer one) or an invalid byte ends the prefix
 * instead of raising an error. The result is palloc'd.
 */
char *
incident_quote_prefix_len(const char *value, int len)
{
	int			scan;
	int			valid;
	int			keep = 0;
	int			nchars = 0;

	if (value == NULL || len <= 0)
		return pstrdup("");
	scan = Min(len, INCIDENT_QUOTE_MAX_CHARS * MAX_MULTIBYTE_CHAR_LEN);
	valid = pg_encoding_verifymbstr(GetDatabaseEncoding(), value, scan);
	while (keep < valid && nchars < INCIDENT_QUOTE_MAX_CHARS)
	{
		keep += pg_encoding_mblen(GetDatabaseEncoding(), value + keep);
		nchars++;
	}
	keep = Min(keep, valid);
	if (keep >= len)
		return pnstrdup(value, len);
	return psprintf("%.*s...", keep, value);
}

/*
 * The bounded prefix of a NUL-terminated value; see incident_quote_prefix_len.
 */
char *
incident_quote_prefix(const char *value)
{
	if (value == NULL)
		return pstrdup("");
	return incident_quote_prefix_len(value, strlen(value));
}

/*
 * incident__quote_prefix(text): the prefix of a value that error messages
 * quote, for the SQL side. Only the first bytes of a long value are
 * detoasted: enough for the characters kept and one more.
 */
Datum
incident__quote_prefix(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_P_SLICE(0, 0, INCIDENT_QUOTE_MAX_CHARS * MAX_MULTIBYTE_CHAR_LEN + 1);
	char	   *prefix = incident_quote_prefix_len(VARDATA(value), VARSIZE(value) - VARHDRSZ);

	PG_RETURN_TEXT_P(cstring_to_text(prefix));
}
