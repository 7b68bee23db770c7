/*-------------------------------------------------------------------------
 *
 * sla.c
 *		Deadlines counted in the working time of business calendars.
 *
 * A calendar (incident_calendar) is an IANA time zone, weekly working spans
 * in local wall-clock time (incident_calendar_hours: several per day, each
 * within one day, possibly ending at 24:00) and holidays on which nothing of
 * the day is working time (incident_calendar_holiday: one date, or the same
 * month and day every year).
 *
 * An instant is working time when the calendar's wall clock, at that
 * instant, shows a day that is not a holiday and a time of day inside one of
 * that weekday's spans. Everything else follows from that one rule, also on
 * the days the clocks change: a span (or the part of it) that lies in the
 * hour skipped in spring has no working time, and a span over the hour
 * repeated in autumn counts that hour twice, because the wall clock shows it
 * twice. The arithmetic walks the time line in pieces on which the zone's
 * UTC offset is constant (pg_next_dst_boundary gives the next change) and
 * within a piece local day by local day, so it never converts an ambiguous
 * or nonexistent local time to UTC.
 *
 * The arithmetic (sla_next_working, sla_add, sla_working_time) uses no SPI
 * and touches no catalog. A thin loader reads a calendar with SPI and keeps
 * it for the life of the backend; a statement trigger on the calendar tables
 * sends a relcache invalidation for the table, and the relcache callback
 * registered here drops every cached calendar when one arrives, in this
 * backend (at the next command) and in every other (at commit).
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "sla.h"

/* seconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00 UTC) */
#define SLA_EPOCH_DIFF_SECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/* ---- the per-backend calendar cache ---- */

static MemoryContext sla_cache_cxt = NULL;
static List *sla_cache = NIL;
static bool sla_cache_valid = false;
static bool sla_callback_registered = false;

/* the calendar tables, whose invalidation drops the cache */
#define SLA_NRELS 3
static Oid	sla_cache_relids[SLA_NRELS];

/* ---- forward declarations ---- */

static int64 sla_floor_div(int64 a, int64 b);
static bool sla_is_holiday(const SlaCalendar *cal, int32 day);
static void sla_relcache_callback(Datum arg, Oid relid);
static char *sla_schema_of(Oid fn_oid);
static const SlaCalendar *sla_lookup(const char *name, Oid fn_oid);
static SlaCalendar *sla_load(const char *name, const char *schema);
static SlaCalendar *sla_load_into(MemoryContext cxt, const char *name, const char *schema);
static int64 sla_interval_usecs(const Interval *span);
static TimestampTz sla_deadline(const char *calname, TimestampTz start,
								Interval *span, Oid fn_oid);

PG_FUNCTION_INFO_V1(incident_calendar_add);
PG_FUNCTION_INFO_V1(incident_calendar_working_time);
PG_FUNCTION_INFO_V1(incident_sla_deadline);

/* ------------------------------------------------------------------------
 * Arithmetic: no SPI, no catalog
 * ------------------------------------------------------------------------
 */

/*
 * Floor division for possibly negative numerators.
 */
static int64
sla_floor_div(int64 a, int64 b)
{
	int64		q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/*
 * Whether a local day (a DateADT) is a holiday of the calendar.
 */
static bool
sla_is_holiday(const SlaCalendar *cal, int32 day)
{
	int			lo = 0,
				hi = cal->nfixed - 1;
	int			y,
				m,
				d;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (cal->fixed[mid] == day)
			return true;
		if (cal->fixed[mid] < day)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	j2date(day + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	return cal->yearly[m][d];
}

/*
 * Sort a calendar's spans, merge those that touch or overlap, and note
 * whether it is open around the clock.
 */
void
sla_calendar_finish(SlaCalendar *cal)
{
	cal->continuous = (cal->nfixed == 0);
	for (int m = 0; m < 13 && cal->continuous; m++)
		for (int d = 0; d < 32; d++)
			if (cal->yearly[m][d])
				cal->continuous = false;

	for (int dow = 0; dow < 7; dow++)
	{
		SlaSpan    *s = cal->spans[dow];
		int			n = cal->nspans[dow];
		int			out = 0;

		/* insertion sort: a day has a handful of spans */
		for (int i = 1; i < n; i++)
		{
			SlaSpan		x = s[i];
			int			j = i - 1;

			while (j >= 0 && s[j].start > x.start)
			{
				s[j + 1] = s[j];
				j--;
			}
			s[j + 1] = x;
		}
		for (int i = 0; i < n; i++)
		{
			if (out > 0 && s[i].start <= s[out - 1].end)
				s[out - 1].end = Max(s[out - 1].end, s[i].end);
			else
				s[out++] = s[i];
		}
		cal->nspans[dow] = out;
		if (!(out == 1 && s[0].start == 0 && s[0].end == SECS_PER_DAY))
			cal->continuous = false;
	}
}

/*
 * The first stretch of working time that ends after "from": [*ws, *we),
 * with *ws >= from. A stretch ends at the end of a span, of a local day or
 * of a piece of constant UTC offset, so consecutive calls may return
 * stretches that touch. False if there is none within SLA_MAX_IDLE_DAYS
 * local days, or before the end of the timestamp range.
 */
bool
sla_next_working(const SlaCalendar *cal, TimestampTz from,
				 TimestampTz *ws, TimestampTz *we)
{
	TimestampTz t = from;
	int			idle_days = 0;
	int64		last_day = PG_INT64_MIN;

	while (t < END_TIMESTAMP)
	{
		pg_time_t	secs = (pg_time_t) (sla_floor_div(t, USECS_PER_SEC) + SLA_EPOCH_DIFF_SECS);
		long int	before_gmtoff,
					after_gmtoff;
		int			before_isdst,
					after_isdst;
		pg_time_t	boundary;
		int			found;
		int64		off;
		TimestampTz piece_end = PG_INT64_MAX;
		int64		day;
		TimestampTz day_start;
		TimestampTz day_end;

		found = pg_next_dst_boundary(&secs, &before_gmtoff, &before_isdst,
									 &boundary, &after_gmtoff, &after_isdst,
									 cal->tz);
		if (found < 0)
			elog(ERROR, "could not read the transitions of the time zone of calendar \"%s\"",
				 cal->name);
		off = (int64) before_gmtoff * USECS_PER_SEC;
		if (found == 1)
			piece_end = ((int64) boundary - SLA_EPOCH_DIFF_SECS) * USECS_PER_SEC;

		/* the local day of t, and where it ends at this offset */
		day = sla_floor_div(t + off, USECS_PER_DAY);
		day_start = day * USECS_PER_DAY - off;
		day_end = day_start + USECS_PER_DAY;
		piece_end = Min(piece_end, day_end);

		if (!sla_is_holiday(cal, (int32) day))
		{
			int			dow = (int) ((day % 7 + 7 + 6) % 7);	/* 2000-01-01 was a Saturday */

			for (int i = 0; i < cal->nspans[dow]; i++)
			{
				TimestampTz a = day_start + (int64) cal->spans[dow][i].start * USECS_PER_SEC;
				TimestampTz b = day_start + (int64) cal->spans[dow][i].end * USECS_PER_SEC;

				if (b <= t)
					continue;
				if (a >= piece_end)
					break;
				*ws = Max(a, t);
				*we = Min(b, piece_end);
				return true;
			}
		}
		if (day != last_day)
		{
			last_day = day;
			if (++idle_days > SLA_MAX_IDLE_DAYS)
				return false;
		}
		t = piece_end;
	}
	return false;
}

/*
 * The instant at which "span" microseconds of working time have passed
 * since start: the end of a span when the time runs out exactly there.
 * False if the calendar has no more working time.
 */
bool
sla_add(const SlaCalendar *cal, TimestampTz start, int64 span, TimestampTz *result)
{
	TimestampTz t = start;
	int64		remaining = span;

	if (span == 0)
	{
		*result = start;
		return true;
	}
	for (;;)
	{
		TimestampTz ws,
					we;

		if (!sla_next_working(cal, t, &ws, &we))
			return false;
		if (remaining <= we - ws)
		{
			*result = ws + remaining;
			return true;
		}
		remaining -= we - ws;
		t = we;
	}
}

/*
 * Working time, in microseconds, in [from, to); negative if to < from.
 */
int64
sla_working_time(const SlaCalendar *cal, TimestampTz from, TimestampTz to)
{
	TimestampTz t = from;
	int64		total = 0;

	if (to < from)
		return -sla_working_time(cal, to, from);
	while (t < to)
	{
		TimestampTz ws,
					we;

		if (!sla_next_working(cal, t, &ws, &we) || ws >= to)
			break;
		total += Min(we, to) - ws;
		t = we;
	}
	return total;
}

/* ------------------------------------------------------------------------
 * The loader and its cache
 * ------------------------------------------------------------------------
 */

/*
 * Relcache callback: a change to a calendar table (or a reset of the whole
 * relcache) drops every cached calendar.
 */
static void
sla_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid)
	{
		sla_cache_valid = false;
		return;
	}
	for (int i = 0; i < SLA_NRELS; i++)
		if (sla_cache_relids[i] == relid)
			sla_cache_valid = false;
}

/*
 * The schema of the extension: that of the SQL function being called.
 */
static char *
sla_schema_of(Oid fn_oid)
{
	char	   *nsp = get_namespace_name(get_func_namespace(fn_oid));

	if (nsp == NULL)
		elog(ERROR, "could not find the schema of function %u", fn_oid);
	return nsp;
}

/*
 * A calendar by name, from the cache or loaded; an error if it does not
 * exist or cannot be used. The result lives until the next lookup.
 */
static const SlaCalendar *
sla_lookup(const char *name, Oid fn_oid)
{
	ListCell   *lc;
	char	   *schema;
	SlaCalendar *cal;

	if (!sla_callback_registered)
	{
		CacheRegisterRelcacheCallback(sla_relcache_callback, (Datum) 0);
		sla_callback_registered = true;
	}
	if (sla_cache_cxt == NULL)
		sla_cache_cxt = AllocSetContextCreate(CacheMemoryContext,
											  "pg_incident calendars",
											  ALLOCSET_SMALL_SIZES);
	if (!sla_cache_valid)
	{
		MemoryContextReset(sla_cache_cxt);
		sla_cache = NIL;
		for (int i = 0; i < SLA_NRELS; i++)
			sla_cache_relids[i] = InvalidOid;
		sla_cache_valid = true;
	}

	foreach(lc, sla_cache)
	{
		cal = (SlaCalendar *) lfirst(lc);
		if (strcmp(cal->name, name) == 0)
			return cal;
	}

	schema = sla_schema_of(fn_oid);
	if (sla_cache_relids[0] == InvalidOid)
	{
		Oid			nsp = get_func_namespace(fn_oid);

		sla_cache_relids[0] = get_relname_relid("incident_calendar", nsp);
		sla_cache_relids[1] = get_relname_relid("incident_calendar_hours", nsp);
		sla_cache_relids[2] = get_relname_relid("incident_calendar_holiday", nsp);
	}
	cal = sla_load(name, schema);
	/* an invalidation that arrived while loading leaves the cache invalid */
	if (sla_cache_valid)
	{
		MemoryContext old = MemoryContextSwitchTo(sla_cache_cxt);

		sla_cache = lappend(sla_cache, cal);
		MemoryContextSwitchTo(old);
	}
	return cal;
}

/*
 * Read a calendar with SPI into a memory context of its own under the
 * cache's, which goes away again if the calendar cannot be used.
 */
static SlaCalendar *
sla_load(const char *name, const char *schema)
{
	MemoryContext cxt = AllocSetContextCreate(sla_cache_cxt, "pg_incident calendar",
											  ALLOCSET_SMALL_SIZES);
	SlaCalendar *cal = NULL;

	PG_TRY();
	{
		cal = sla_load_into(cxt, name, schema);
	}
	PG_CATCH();
	{
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return cal;
}

/*
 * Read a calendar with SPI into cxt.
 */
static SlaCalendar *
sla_load_into(MemoryContext cxt, const char *name, const char *schema)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	StringInfoData q;
	SlaCalendar *cal;
	char	   *tzname;
	int			total = 0;
	int			capacity[7] = {0};

	args[0] = CStringGetTextDatum(name);
	initStringInfo(&q);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	appendStringInfo(&q, "SELECT c.time_zone FROM %s.incident_calendar c WHERE c.name = $1",
					 quote_identifier(schema));
	if (SPI_execute_with_args(q.data, 1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read calendar \"%s\"", name);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("calendar \"%s\" does not exist", name),
				 errhint("See the table incident_calendar for the calendars; \"24x7\" is the one open around the clock.")));
	tzname = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

	cal = MemoryContextAllocZero(cxt, sizeof(SlaCalendar));
	cal->name = MemoryContextStrdup(cxt, name);
	cal->tz = tzname ? pg_tzset(tzname) : NULL;
	if (cal->tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid time zone \"%s\" of calendar \"%s\"", tzname ? tzname : "", name),
				 errhint("Set incident_calendar.time_zone to a name from pg_timezone_names, such as \"Europe/Berlin\".")));

	resetStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT h.dow, EXTRACT(epoch FROM h.starts)::int4, EXTRACT(epoch FROM h.ends)::int4"
					 "  FROM %s.incident_calendar_hours h WHERE h.calendar = $1 ORDER BY 1, 2",
					 quote_identifier(schema));
	if (SPI_execute_with_args(q.data, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the working hours of calendar \"%s\"", name);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int			dow = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		int32		s = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		int32		e = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));

		/* the table's triggers keep these in range; skip anything else */
		if (dow < 0 || dow > 6 || s < 0 || e > SECS_PER_DAY || s >= e)
			continue;
		if (cal->nspans[dow] == capacity[dow])
		{
			capacity[dow] = capacity[dow] ? capacity[dow] * 2 : 4;
			cal->spans[dow] = cal->spans[dow]
				? repalloc(cal->spans[dow], capacity[dow] * sizeof(SlaSpan))
				: MemoryContextAlloc(cxt, capacity[dow] * sizeof(SlaSpan));
		}
		cal->spans[dow][cal->nspans[dow]].start = s;
		cal->spans[dow][cal->nspans[dow]].end = e;
		cal->nspans[dow]++;
		total++;
	}
	if (total == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("calendar \"%s\" has no working hours", name),
				 errdetail("Deadlines are counted in a calendar's working hours, and incident_calendar_hours has none for it."),
				 errhint("Add spans to incident_calendar_hours, or use the calendar \"24x7\".")));

	resetStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT d.day, d.yearly FROM %s.incident_calendar_holiday d"
					 " WHERE d.calendar = $1 ORDER BY d.day",
					 quote_identifier(schema));
	if (SPI_execute_with_args(q.data, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the holidays of calendar \"%s\"", name);
	cal->fixed = MemoryContextAlloc(cxt, Max(SPI_processed, 1) * sizeof(int32));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		DateADT		day = DatumGetDateADT(SPI_getbinval(tup, desc, 1, &isnull));
		bool		yearly = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));

		if (DATE_NOT_FINITE(day))
			continue;
		if (yearly)
		{
			int			y,
						m,
						d;

			j2date(day + POSTGRES_EPOCH_JDATE, &y, &m, &d);
			cal->yearly[m][d] = true;
		}
		else
			cal->fixed[cal->nfixed++] = day;	/* ordered by the query */
	}

	SPI_finish();
	sla_calendar_finish(cal);
	return cal;
}

/* ------------------------------------------------------------------------
 * SQL functions
 * ------------------------------------------------------------------------
 */

/*
 * An interval as microseconds of working time: a day is 24 hours and a
 * month 30 days; an error if it is negative.
 */
static int64
sla_interval_usecs(const Interval *span)
{
	int64		days;
	int64		result;

	if (pg_mul_s64_overflow((int64) span->month, DAYS_PER_MONTH, &days) ||
		pg_add_s64_overflow(days, span->day, &days) ||
		pg_mul_s64_overflow(days, USECS_PER_DAY, &result) ||
		pg_add_s64_overflow(result, span->time, &result))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("working time \"%s\" is out of range",
						DatumGetCString(DirectFunctionCall1(interval_out, PointerGetDatum(span))))));
	if (result < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid working time \"%s\"",
						DatumGetCString(DirectFunctionCall1(interval_out, PointerGetDatum(span)))),
				 errdetail("Working time to add must not be negative."),
				 errhint("Give an interval such as '4 hours'.")));
	return result;
}

/*
 * The instant at which span of working time of the calendar has passed
 * since start. On a calendar open around the clock without holidays that is
 * start plus span as elapsed time (a day is 24 hours), whatever the
 * session's TimeZone, as on every other calendar.
 */
static TimestampTz
sla_deadline(const char *calname, TimestampTz start, Interval *span, Oid fn_oid)
{
	const SlaCalendar *cal;
	int64		usecs = sla_interval_usecs(span);
	TimestampTz result;

	cal = sla_lookup(calname, fn_oid);
	if (TIMESTAMP_NOT_FINITE(start))
		return start;
	if (cal->continuous)
	{
		if (pg_add_s64_overflow(start, usecs, &result) || !IS_VALID_TIMESTAMP(result))
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("deadline \"%s\" after \"%s\" is out of range",
							DatumGetCString(DirectFunctionCall1(interval_out, PointerGetDatum(span))),
							timestamptz_to_str(start)),
					 errhint("Give a shorter interval or an earlier start.")));
		return result;
	}
	if (!sla_add(cal, start, usecs, &result) || !IS_VALID_TIMESTAMP(result))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("calendar \"%s\" has no working time to count \"%s\" after \"%s\"", calname,
						DatumGetCString(DirectFunctionCall1(interval_out, PointerGetDatum(span))),
						timestamptz_to_str(start)),
				 errdetail("No working day was found within %d days, or the deadline is beyond the range of timestamps.",
						   SLA_MAX_IDLE_DAYS),
				 errhint("Check the calendar's holidays and working hours.")));
	return result;
}

/*
 * incident_calendar_add(calendar, start, span): start plus span of the
 * calendar's working time.
 */
Datum
incident_calendar_add(PG_FUNCTION_ARGS)
{
	char	   *calname = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TimestampTz start = PG_GETARG_TIMESTAMPTZ(1);
	Interval   *span = PG_GETARG_INTERVAL_P(2);

	PG_RETURN_TIMESTAMPTZ(sla_deadline(calname, start, span, fcinfo->flinfo->fn_oid));
}

/*
 * incident_calendar_working_time(calendar, from, to): the working time of
 * the calendar between two instants, as an interval of hours.
 */
Datum
incident_calendar_working_time(PG_FUNCTION_ARGS)
{
	char	   *calname = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TimestampTz from = PG_GETARG_TIMESTAMPTZ(1);
	TimestampTz to = PG_GETARG_TIMESTAMPTZ(2);
	const SlaCalendar *cal = sla_lookup(calname, fcinfo->flinfo->fn_oid);
	Interval   *result;

	if (TIMESTAMP_NOT_FINITE(from) || TIMESTAMP_NOT_FINITE(to))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("cannot measure working time from \"%s\" to \"%s\"",
						pstrdup(timestamptz_to_str(from)), pstrdup(timestamptz_to_str(to))),
				 errhint("Give finite times.")));
	result = (Interval *) palloc0(sizeof(Interval));
	result->time = sla_working_time(cal, from, to);
	PG_RETURN_INTERVAL_P(result);
}

/*
 * incident_sla_deadline(severity, start [, calendar]): the response deadline
 * of an incident of this severity declared at start, counted in the given
 * calendar or, when none is given (or NULL), the severity's.
 */
Datum
incident_sla_deadline(PG_FUNCTION_ARGS)
{
	Oid			fn_oid = fcinfo->flinfo->fn_oid;
	char	   *schema = sla_schema_of(fn_oid);
	MemoryContext caller_cxt = CurrentMemoryContext;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	char		nulls[1] = {' '};
	StringInfoData q;
	Interval	span;
	char	   *calname;
	TimestampTz start;
	bool		isnull;

	if (PG_ARGISNULL(0))
		args[0] = (Datum) 0, nulls[0] = 'n';
	else
		args[0] = PG_GETARG_DATUM(0);

	/* the severity, normalized (which rejects NULL and unrecognized ones) */
	initStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT s.response_time, s.calendar FROM %1$s.incident_severity s"
					 " WHERE s.severity = %1$s.incident_severity_normalize($1)",
					 quote_identifier(schema));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(q.data, 1, argtypes, args, nulls, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read the severity");
	span = *DatumGetIntervalP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	calname = MemoryContextStrdup(caller_cxt,
								  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	SPI_finish();

	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
		calname = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	start = PG_GETARG_TIMESTAMPTZ(1);

	PG_RETURN_TIMESTAMPTZ(sla_deadline(calname, start, &span, fn_oid));
}
