/*-------------------------------------------------------------------------
 *
 * sla.h
 *		Working-time arithmetic over business calendars (src/sla.c).
 *
 * A calendar is a time zone, weekly working spans in local wall-clock time
 * and holidays. The arithmetic below needs no SPI and no catalog access: a
 * caller fills an SlaCalendar (sla_calendar_lookup does it from the
 * incident_calendar tables, cached per backend, with no fcinfo) and asks
 * for the working time between two instants or for the instant at which an
 * amount of working time has passed.
 * Both walk the calendar at most SLA_MAX_RANGE_YEARS and check for
 * interrupts as they go; callers refuse longer ranges up front.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INCIDENT_SLA_H
#define PG_INCIDENT_SLA_H

#include "pgtime.h"
#include "utils/timestamp.h"

/* one working span of a weekday, in seconds after local midnight: [start, end) */
typedef struct SlaSpan
{
	int32		start;			/* 0 .. 86399 */
	int32		end;			/* start+1 .. 86400 (24:00) */
} SlaSpan;

typedef struct SlaCalendar
{
	char	   *name;
	const pg_tz *tz;
	int			nspans[7];		/* per day of week, 0 = Sunday */
	SlaSpan    *spans[7];		/* sorted, disjoint, adjacent ones merged */
	int			nfixed;			/* holidays on one date */
	int32	   *fixed;			/* sorted DateADT values */
	bool		yearly[13][32]; /* holidays every year on [month][day] */
	bool		continuous;		/* open around the clock, no holidays */
	bool		never;			/* every day of the year is a yearly holiday */
} SlaCalendar;

/*
 * The longest stretch of calendar time that the arithmetic walks: working
 * time is measured over at most this long a range, and a deadline is found
 * at most this long after its start (100 Julian years). A calendar open
 * around the clock without holidays needs no walk and has no such limit.
 */
#define SLA_MAX_RANGE_YEARS 100
#define SLA_MAX_RANGE_DAYS (SLA_MAX_RANGE_YEARS * 36525 / 100)
#define SLA_MAX_RANGE_USECS ((int64) SLA_MAX_RANGE_DAYS * USECS_PER_DAY)

extern const SlaCalendar *sla_calendar_lookup(const char *name);
extern void sla_calendar_finish(SlaCalendar *cal);
extern bool sla_next_working(const SlaCalendar *cal, TimestampTz from, TimestampTz limit,
							 TimestampTz *ws, TimestampTz *we);
extern bool sla_add(const SlaCalendar *cal, TimestampTz start, int64 span,
					TimestampTz *result);
extern int64 sla_working_time(const SlaCalendar *cal, TimestampTz from,
							  TimestampTz to);

#endif							/* PG_INCIDENT_SLA_H */
