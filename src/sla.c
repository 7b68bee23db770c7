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
 * and touches no catalog. It walks at most SLA_MAX_RANGE_YEARS (100 years)
 * of calendar time, checking for interrupts at every step: working time is
 * measured over at most that range, and a deadline more than that after its
 * start is refused, with an error naming the values, as is a span of
 * working time longer than that range. Within a day it finds the next span
 * by binary search, so a calendar with many spans a day costs little more
 * than one with few. A calendar open around the clock without holidays
 * needs no walk (the answer is plain elapsed time) and has no such limit; a
 * calendar whose every day is a yearly holiday has no working time at all,
 * which is known without a walk.
 *
 * A thin loader reads a calendar with SPI and keeps it for the life of the
 * backend, as a cache of confcache.c: a change to a calendar table drops
 * every cached calendar, in this backend (at the next command) and in every
 * other (at commit), and calendars are read under a fresh snapshot, so that
 * a transaction's old snapshot never leaves old holidays in the cache.
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
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "confcache.h"
#include "pg_incident.h"
#include "sla.h"

/* seconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00 UTC) */
#define SLA_EPOCH_DIFF_SECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/* ---- the per-backend calendar cache ---- */

static MemoryContext sla_cache_cxt = NULL;
static List *sla_cache = NIL;
static ConfCache *sla_confcache = NULL;

/* what sla_load_into reads, and where it puts it */
typedef struct SlaLoadArgs
{
	MemoryContext cxt;
	const char *name;
	SlaCalendar *result;
} SlaLoadArgs;

/* ---- forward declarations ---- */

static int64 sla_floor_div(int64 a, int64 b);
static bool sla_is_holiday(const SlaCalendar *cal, int32 day);
static int	sla_span_cmp(const void *a, const void *b);
static void sla_reset(void *arg);
static SlaCalendar *sla_load(const char *name);
static void sla_load_into(const char *schema, void *arg);
static int64 sla_interval_usecs(const Interval *span);
static char *sla_interval_text(const Interval *span);
static TimestampTz sla_deadline(const char *calname, TimestampTz start, Interval *span);

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
 * qsort comparator: spans by their start.
 */
static int
sla_span_cmp(const void *a, const void *b)
{
	int32		x = ((const SlaSpan *) a)->start;
	int32		y = ((const SlaSpan *) b)->start;

	return (x > y) - (x < y);
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

	/* every day of every year a holiday (29 February included) */
	cal->never = true;
	for (int m = 1; m <= 12 && cal->never; m++)
		for (int d = 1; d <= day_tab[1][m - 1]; d++)
			if (!cal->yearly[m][d])
				cal->never = false;

	for (int dow = 0; dow < 7; dow++)
	{
		SlaSpan    *s = cal->spans[dow];
		int			n = cal->nspans[dow];
		int			out = 0;

		/* a day may have thousands of spans (the table allows one a second) */
		if (n > 1)
			qsort(s, n, sizeof(SlaSpan), sla_span_cmp);
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
 * with from <= *ws < *we <= limit. A stretch ends at the end of a span, of
 * a local day or of a piece of constant UTC offset, so consecutive calls may
 * return stretches that touch. False if there is none before limit (or
 * before the end of the timestamp range). Walks one local day per step,
 * checking for interrupts.
 */
bool
sla_next_working(const SlaCalendar *cal, TimestampTz from, TimestampTz limit,
				 TimestampTz *ws, TimestampTz *we)
{
	TimestampTz t = from;

	limit = Min(limit, END_TIMESTAMP);
	if (cal->never)
		return false;
	while (t < limit)
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

		CHECK_FOR_INTERRUPTS();
		found = pg_next_dst_boundary(&secs, &before_gmtoff, &before_isdst,
									 &boundary, &after_gmtoff, &after_isdst,
									 cal->tz);
		if (found < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("could not read the transitions of the time zone of calendar \"%s\"",
							incident_quote_prefix(cal->name))));
		off = (int64) before_gmtoff * USECS_PER_SEC;
		if (found == 1)
			piece_end = ((int64) boundary - SLA_EPOCH_DIFF_SECS) * USECS_PER_SEC;

		/*
		 * Near the end of the timestamp range the zone library's extrapolation
		 * of the rules can give a boundary that is not after t; the walk then
		 * goes to the end of the local day, so that every step moves forward.
		 */
		if (piece_end <= t)
			piece_end = PG_INT64_MAX;

		/* the local day of t, and where it ends at this offset */
		day = sla_floor_div(t + off, USECS_PER_DAY);
		day_start = day * USECS_PER_DAY - off;
		day_end = day_start + USECS_PER_DAY;
		piece_end = Min(piece_end, day_end);

		if (!sla_is_holiday(cal, (int32) day))
		{
			int			dow = (int) ((day % 7 + 7 + 6) % 7);	/* 2000-01-01 was a Saturday */
			const SlaSpan *spans = cal->spans[dow];
			int			lo = 0,
						hi = cal->nspans[dow];

			/* the first span that ends after t: spans are sorted and disjoint */
			while (lo < hi)
			{
				int			mid = lo + (hi - lo) / 2;

				if (day_start + (int64) spans[mid].end * USECS_PER_SEC <= t)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo < cal->nspans[dow])
			{
				TimestampTz a = day_start + (int64) spans[lo].start * USECS_PER_SEC;
				TimestampTz b = day_start + (int64) spans[lo].end * USECS_PER_SEC;

				a = Max(a, t);
				if (a < piece_end && a < limit)
				{
					*ws = a;
					*we = Min(Min(b, piece_end), limit);
					return true;
				}
			}
		}
		t = piece_end;
	}
	return false;
}

/*
 * The instant at which "span" microseconds of working time have passed
 * since start: the end of a span when the time runs out exactly there.
 * False if the calendar has no more working time within
 * SLA_MAX_RANGE_USECS after start (or before the end of the timestamp
 * range).
 */
bool
sla_add(const SlaCalendar *cal, TimestampTz start, int64 span, TimestampTz *result)
{
	TimestampTz t = start;
	TimestampTz limit;
	int64		remaining = span;

	if (span == 0)
	{
		*result = start;
		return true;
	}
	if (pg_add_s64_overflow(start, SLA_MAX_RANGE_USECS, &limit))
		limit = END_TIMESTAMP;
	for (;;)
	{
		TimestampTz ws,
					we;

		CHECK_FOR_INTERRUPTS();
		if (!sla_next_working(cal, t, limit, &ws, &we))
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
 * Walks the whole range: callers keep it within SLA_MAX_RANGE_USECS.
 */
int64
sla_working_time(const SlaCalendar *cal, TimestampTz from, TimestampTz to)
{
	TimestampTz t = from;
	int64		total = 0;

	if (to < from)
		return -sla_working_time(cal, to, from);
	/* around the clock, no holidays: every instant is working time */
	if (cal->continuous)
		return to - from;
	while (t < to)
	{
		TimestampTz ws,
					we;

		CHECK_FOR_INTERRUPTS();
		if (!sla_next_working(cal, t, to, &ws, &we))
			break;
		total += we - ws;
		t = we;
	}
	return total;
}

/* ------------------------------------------------------------------------
 * The loader and its cache
 * ------------------------------------------------------------------------
 */

/*
 * Reset function of the calendars' cache: drop every cached calendar.
 */
static void
sla_reset(void *arg)
{
	if (sla_cache_cxt != NULL)
		MemoryContextReset(sla_cache_cxt);
	sla_cache = NIL;
}

/*
 * A calendar by name, from the cache or loaded; an error if it does not
 * exist or cannot be used. The result lives until the next lookup. Needs no
 * fcinfo (the tables are those in the extension's schema), so that the
 * worker can count deadlines too.
 */
const SlaCalendar *
sla_calendar_lookup(const char *name)
{
	ListCell   *lc;
	SlaCalendar *cal;

	if (sla_confcache == NULL)
	{
		static const char *const tables[] = {
			"incident_calendar", "incident_calendar_hours", "incident_calendar_holiday"
		};

		sla_cache_cxt = AllocSetContextCreate(TopMemoryContext, "pg_incident calendars",
											  ALLOCSET_SMALL_SIZES);
		sla_confcache = confcache_register("business calendars", tables, lengthof(tables),
										   sla_reset, NULL);
	}
	(void) confcache_check(sla_confcache);

	foreach(lc, sla_cache)
	{
		cal = (SlaCalendar *) lfirst(lc);
		if (strcmp(cal->name, name) == 0)
			return cal;
	}

	cal = sla_load(name);
	/* kept even if an invalidation arrived meanwhile: the next lookup resets */
	{
		MemoryContext old = MemoryContextSwitchTo(sla_cache_cxt);

		sla_cache = lappend(sla_cache, cal);
		MemoryContextSwitchTo(old);
	}
	return cal;
}

/*
 * Read a calendar with SPI, under confcache's fresh snapshot, into a memory
 * context of its own under the cache's, which goes away again if the
 * calendar cannot be used.
 */
static SlaCalendar *
sla_load(const char *name)
{
	SlaLoadArgs args;

	args.cxt = AllocSetContextCreate(sla_cache_cxt, "pg_incident calendar",
									 ALLOCSET_SMALL_SIZES);
	args.name = name;
	args.result = NULL;
	PG_TRY();
	{
		confcache_load(sla_confcache, sla_load_into, &args);
	}
	PG_CATCH();
	{
		MemoryContextDelete(args.cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return args.result;
}

/*
 * Loader of the calendars' cache: read the calendar args->name with SPI
 * from the tables in the extension's schema into args->cxt.
 */
static void
sla_load_into(const char *schema, void *arg)
{
	SlaLoadArgs *la = (SlaLoadArgs *) arg;
	MemoryContext cxt = la->cxt;
	const char *name = la->name;
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

	appendStringInfo(&q, "SELECT c.time_zone FROM %s.incident_calendar c WHERE c.name OPERATOR(pg_catalog.=) $1",
					 quote_identifier(schema));
	if (SPI_execute_with_args(q.data, 1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read calendar \"%s\"", incident_quote_prefix(name));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("calendar \"%s\" does not exist", incident_quote_prefix(name)),
				 errhint("See the table incident_calendar for the calendars; \"24x7\" is the one open around the clock.")));
	tzname = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

	cal = MemoryContextAllocZero(cxt, sizeof(SlaCalendar));
	cal->name = MemoryContextStrdup(cxt, name);
	cal->tz = tzname ? pg_tzset(tzname) : NULL;
	if (cal->tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid time zone \"%s\" of calendar \"%s\"",
						incident_quote_prefix(tzname), incident_quote_prefix(name)),
				 errhint("Set incident_calendar.time_zone to a name from pg_timezone_names, such as \"Europe/Berlin\".")));

	resetStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT h.dow, EXTRACT(epoch FROM h.starts)::int4, EXTRACT(epoch FROM h.ends)::int4"
					 "  FROM %s.incident_calendar_hours h WHERE h.calendar OPERATOR(pg_catalog.=) $1 ORDER BY 1, 2",
					 quote_identifier(schema));
	if (SPI_execute_with_args(q.data, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the working hours of calendar \"%s\"", incident_quote_prefix(name));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int			dow = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		int32		s = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		int32		e = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));

		CHECK_FOR_INTERRUPTS();

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
				 errmsg("calendar \"%s\" has no working hours", incident_quote_prefix(name)),
				 errdetail("Deadlines are counted in a calendar's working hours, and incident_calendar_hours has none for it."),
				 errhint("Add spans to incident_calendar_hours, or use the calendar \"24x7\".")));

	resetStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT d.day, d.yearly FROM %s.incident_calendar_holiday d"
					 " WHERE d.calendar OPERATOR(pg_catalog.=) $1 ORDER BY d.day",
					 quote_identifier(schema));
	if (SPI_execute_with_args(q.data, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the holidays of calendar \"%s\"", incident_quote_prefix(name));
	cal->fixed = MemoryContextAlloc(cxt, Max(SPI_processed, 1) * sizeof(int32));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		DateADT		day = DatumGetDateADT(SPI_getbinval(tup, desc, 1, &isnull));
		bool		yearly = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));

		CHECK_FOR_INTERRUPTS();

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
	la->result = cal;
}

/* ------------------------------------------------------------------------
 * SQL functions
 * ------------------------------------------------------------------------
 */

/*
 * An interval as people read it, for messages.
 */
static char *
sla_interval_text(const Interval *span)
{
	return incident_quote_prefix(DatumGetCString(DirectFunctionCall1(interval_out,
																	 PointerGetDatum(span))));
}

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
				 errmsg("working time \"%s\" is out of range", sla_interval_text(span)),
				 errdetail("A day of working time is 24 hours and a month 30 days, and the total must fit in the range of intervals."),
				 errhint("Give a shorter interval.")));
	if (result < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid working time \"%s\"", sla_interval_text(span)),
				 errdetail("Working time to add must not be negative."),
				 errhint("Give an interval such as '4 hours'.")));
	return result;
}

/*
 * The instant at which span of working time of the calendar has passed
 * since start. On a calendar open around the clock without holidays that is
 * start plus span as elapsed time (a day is 24 hours), whatever the
 * session's TimeZone, as on every other calendar. On any other calendar the
 * span and the walk are bounded by SLA_MAX_RANGE_YEARS.
 */
static TimestampTz
sla_deadline(const char *calname, TimestampTz start, Interval *span)
{
	const SlaCalendar *cal;
	int64		usecs = sla_interval_usecs(span);
	TimestampTz result;

	cal = sla_calendar_lookup(calname);
	if (TIMESTAMP_NOT_FINITE(start))
		return start;
	if (cal->continuous)
	{
		if (pg_add_s64_overflow(start, usecs, &result) || !IS_VALID_TIMESTAMP(result))
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("deadline \"%s\" after \"%s\" is out of range",
							sla_interval_text(span), timestamptz_to_str(start)),
					 errhint("Give a shorter interval or an earlier start.")));
		return result;
	}
	if (usecs > 0 && cal->never)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("calendar \"%s\" has no working time", incident_quote_prefix(calname)),
				 errdetail("Every day of the year is a yearly holiday of the calendar."),
				 errhint("Delete some of its holidays from incident_calendar_holiday, or use the calendar \"24x7\".")));
	/*
	 * Working time never runs faster than the clock: refused before walking.
	 * The SQLSTATE of these errors is that of any deadline out of range,
	 * which incident__deadline catches to count around the clock instead.
	 */
	if (usecs > SLA_MAX_RANGE_USECS)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("working time \"%s\" is too long for calendar \"%s\"",
						sla_interval_text(span), incident_quote_prefix(calname)),
				 errdetail("Deadlines in a business calendar are counted at most %d years (%d days) ahead.",
						   SLA_MAX_RANGE_YEARS, SLA_MAX_RANGE_DAYS),
				 errhint("Give a shorter interval, or count it in the calendar \"24x7\".")));
	if (!sla_add(cal, start, usecs, &result) || !IS_VALID_TIMESTAMP(result))
	{
		TimestampTz limit;

		/* the walk stopped at the end of the timestamp range, or 100 years on */
		if (pg_add_s64_overflow(start, SLA_MAX_RANGE_USECS, &limit) || limit >= END_TIMESTAMP)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("deadline \"%s\" after \"%s\" in calendar \"%s\" is out of range",
							sla_interval_text(span), timestamptz_to_str(start),
							incident_quote_prefix(calname)),
					 errdetail("The calendar does not have that much working time before the end of the range of timestamps."),
					 errhint("Give a shorter interval or an earlier start.")));
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("deadline \"%s\" after \"%s\" in calendar \"%s\" is more than %d years ahead",
						sla_interval_text(span), timestamptz_to_str(start),
						incident_quote_prefix(calname), SLA_MAX_RANGE_YEARS),
				 errdetail("Deadlines in a business calendar are counted at most %d years (%d days) ahead.",
						   SLA_MAX_RANGE_YEARS, SLA_MAX_RANGE_DAYS),
				 errhint("Give a shorter interval, check the calendar's holidays and working hours, or count it in the calendar \"24x7\".")));
	}
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

	PG_RETURN_TIMESTAMPTZ(sla_deadline(calname, start, span));
}

/*
 * incident_calendar_working_time(calendar, from, to): the working time of
 * the calendar between two instants, as an interval of hours. A business
 * calendar is walked over at most SLA_MAX_RANGE_YEARS.
 */
Datum
incident_calendar_working_time(PG_FUNCTION_ARGS)
{
	char	   *calname = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TimestampTz from = PG_GETARG_TIMESTAMPTZ(1);
	TimestampTz to = PG_GETARG_TIMESTAMPTZ(2);
	const SlaCalendar *cal = sla_calendar_lookup(calname);
	Interval   *result;
	int64		range;

	if (TIMESTAMP_NOT_FINITE(from) || TIMESTAMP_NOT_FINITE(to))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("cannot measure working time from \"%s\" to \"%s\"",
						pstrdup(timestamptz_to_str(from)), pstrdup(timestamptz_to_str(to))),
				 errhint("Give finite times.")));

	/* the length of the range, which may not fit in an int64 */
	if (pg_sub_s64_overflow(Max(from, to), Min(from, to), &range))
		range = PG_INT64_MAX;
	if (cal->continuous)
	{
		if (range == PG_INT64_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("working time from \"%s\" to \"%s\" is out of range",
							pstrdup(timestamptz_to_str(from)), pstrdup(timestamptz_to_str(to))),
					 errhint("Measure a shorter range.")));
	}
	else if (range > SLA_MAX_RANGE_USECS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("cannot measure working time of calendar \"%s\" from \"%s\" to \"%s\"",
						incident_quote_prefix(calname),
						pstrdup(timestamptz_to_str(from)), pstrdup(timestamptz_to_str(to))),
				 errdetail("Working time in a business calendar is measured over at most %d years (%d days); this range is %lld days and %lld seconds.",
						   SLA_MAX_RANGE_YEARS, SLA_MAX_RANGE_DAYS,
						   (long long) (range / USECS_PER_DAY),
						   (long long) ((range % USECS_PER_DAY) / USECS_PER_SEC)),
				 errhint("Measure shorter ranges and add up their working time.")));

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
	char	   *schema = get_namespace_name(confcache_extension_schema());
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
					 " WHERE s.severity OPERATOR(pg_catalog.=) %1$s.incident_severity_normalize($1)",
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

	PG_RETURN_TIMESTAMPTZ(sla_deadline(calname, start, &span));
}
