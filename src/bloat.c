/*-------------------------------------------------------------------------
 *
 * bloat.c
 *		The expected width of a row's data, alignment padding included, for
 *		the bloat estimates of incident_table_bloat and incident_index_bloat.
 *
 * PostgreSQL lays out a heap or index tuple's columns in attnum order, each
 * aligned to its type's typalign, and pads the whole tuple to MAXALIGN. An
 * average width alone therefore cannot say how long a row is: an int4, an
 * int8 and an int4 take 20 bytes of data, an int8 and two int4 take 16. The
 * aggregate incident__row_width(attlen, attalign, width, null_frac ORDER BY
 * attnum) follows that layout column by column, with each column's average
 * stored width and null fraction (from pg_statistic), and returns the
 * expected length of the data part, padded to MAXALIGN.
 *
 * It keeps the probability of each offset modulo MAXIMUM_ALIGNOF rather than
 * one offset, because a column that is NULL in some rows takes no space in
 * them (and no padding). A fixed-width column moves each residue exactly, so
 * a table of fixed-width NOT NULL columns gets its exact row length. A
 * variable-width column is taken to be stored in the two whole numbers of
 * bytes around its average width, in the shares that give that average: the
 * least varied widths the statistics allow. That is exact for codes, hashes
 * and TOAST pointers (18 bytes); for widths that vary widely it misplaces
 * the padding after the column by 3.5 bytes a row on average. A varlena of at
 * most 127 bytes on average is taken as stored with a one-byte header, which
 * is not aligned.
 *
 * The statistics target of a column may be 0, or ANALYZE may never have
 * run: a NULL width makes the result NULL, and the SQL marks the estimate
 * as not to be trusted.
 *
 * incident__btree_pages(rows, keys, key_bytes, fillfactor, deduplicated) is
 * the size in pages that CREATE INDEX or REINDEX gives a btree of that many
 * entries (heap row pointers), as nbtsort.c builds it: leaf pages take
 * items while more than (100 - fillfactor) % of the page is free, one slot
 * of each being its high key; internal pages likewise at 70 %, up to a
 * root; and the metapage. With deduplication, equal keys are merged into
 * posting lists of at most a tenth of a page: each of the keys is taken to
 * have the whole numbers of rows around rows / keys (the least varied counts
 * with that average); a key with one row stays a plain tuple.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/nbtree.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/memutils.h"

/* the longest average width stored with a one-byte varlena header */
#define BLOAT_SHORT_VARLENA_MAX 127

/* ------------------------------------------------------------------------
 * Forward declarations
 * ------------------------------------------------------------------------
 */

/* the running state: where the next column may start */
typedef struct BloatWidthState
{
	double		mean;			/* expected offset */
	double		residue[MAXIMUM_ALIGNOF];	/* P(offset % MAXIMUM_ALIGNOF = r) */
	bool		unknown;		/* a column of unknown width was seen */
} BloatWidthState;

static int	bloat_alignment(char attalign);

static void bloat_key_items(double rows, double key_bytes, double max_tids,
							double *items, double *bytes);

PG_FUNCTION_INFO_V1(incident_row_width_step);
PG_FUNCTION_INFO_V1(incident_row_width_final);
PG_FUNCTION_INFO_V1(incident_btree_pages);

/* ------------------------------------------------------------------------
 * The aggregate
 * ------------------------------------------------------------------------
 */

/* bloat_alignment: the alignment in bytes of a typalign code */
static int
bloat_alignment(char attalign)
{
	switch (attalign)
	{
		case TYPALIGN_SHORT:
			return ALIGNOF_SHORT;
		case TYPALIGN_INT:
			return ALIGNOF_INT;
		case TYPALIGN_DOUBLE:
			return ALIGNOF_DOUBLE;
		default:
			return 1;
	}
}

/* incident_row_width_step: lay out one more column after the previous ones */
Datum
incident_row_width_step(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	BloatWidthState *state;
	int16		attlen;
	int			align;
	double		width;
	double		present;
	double		next[MAXIMUM_ALIGNOF];
	double		pad = 0.0;
	double		hi_share;
	int			lo;
	int			r;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "incident_row_width_step called in non-aggregate context");

	if (PG_ARGISNULL(0))
	{
		state = (BloatWidthState *) MemoryContextAllocZero(aggcontext, sizeof(BloatWidthState));
		state->residue[0] = 1.0;
	}
	else
		state = (BloatWidthState *) PG_GETARG_POINTER(0);

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		elog(ERROR, "incident_row_width_step needs a column's attlen and attalign");
	attlen = PG_GETARG_INT16(1);
	if (PG_ARGISNULL(4) || (PG_ARGISNULL(3) && attlen <= 0))
	{
		state->unknown = true;
		PG_RETURN_POINTER(state);
	}
	present = 1.0 - Min(Max(PG_GETARG_FLOAT8(4), 0.0), 1.0);
	width = attlen > 0 ? (double) attlen : PG_GETARG_FLOAT8(3);
	/* what pg_statistic and pg_attribute can hold; anything else would index past next[] */
	if (attlen < -2 || !isfinite(width) || width < 0 || width > (double) MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid column for a row width: attlen %d, width %g", attlen, width),
				 errhint("attlen is a pg_attribute.attlen (-2 or more); width an average width of 0 to 1 GB.")));
	align = bloat_alignment(DatumGetChar(PG_GETARG_DATUM(2)));
	if (attlen == -1 && width <= BLOAT_SHORT_VARLENA_MAX)
		align = 1;

	/*
	 * Where the column starts in the rows that have it, and where it ends.
	 * A variable width is taken as the two whole numbers around its average
	 * (10.4: 10 bytes in 60 % of the rows, 11 in 40 %), the least varied
	 * widths with that average.
	 */
	lo = (int) floor(width);
	hi_share = attlen > 0 ? 0.0 : width - lo;
	memset(next, 0, sizeof(next));
	for (r = 0; r < MAXIMUM_ALIGNOF; r++)
	{
		int			p = (align - r % align) % align;

		pad += state->residue[r] * p;
		next[(r + p + lo) % MAXIMUM_ALIGNOF] += state->residue[r] * (1.0 - hi_share);
		next[(r + p + lo + 1) % MAXIMUM_ALIGNOF] += state->residue[r] * hi_share;
	}

	/* rows where it is NULL keep the offset as it was */
	state->mean += present * (pad + width);
	for (r = 0; r < MAXIMUM_ALIGNOF; r++)
		state->residue[r] = (1.0 - present) * state->residue[r] + present * next[r];

	PG_RETURN_POINTER(state);
}

/* incident_row_width_final: the expected data length, padded to MAXALIGN */
Datum
incident_row_width_final(PG_FUNCTION_ARGS)
{
	BloatWidthState *state;
	double		pad = 0.0;
	int			r;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "incident_row_width_final called in non-aggregate context");
	if (PG_ARGISNULL(0))
		PG_RETURN_FLOAT8(0.0);
	state = (BloatWidthState *) PG_GETARG_POINTER(0);
	if (state->unknown)
		PG_RETURN_NULL();
	for (r = 0; r < MAXIMUM_ALIGNOF; r++)
		pad += state->residue[r] * ((MAXIMUM_ALIGNOF - r) % MAXIMUM_ALIGNOF);
	PG_RETURN_FLOAT8(state->mean + pad);
}

/* ------------------------------------------------------------------------
 * Btree pages
 * ------------------------------------------------------------------------
 */

/* bloat_key_items: the leaf items and their bytes (item pointers included) of a key with "rows" rows */
static void
bloat_key_items(double rows, double key_bytes, double max_tids, double *items, double *bytes)
{
	double		full = floor(rows / max_tids);
	double		rest = rows - full * max_tids;
	double		full_bytes = ceil((key_bytes + sizeof(ItemPointerData) * max_tids) / MAXIMUM_ALIGNOF)
		* MAXIMUM_ALIGNOF + sizeof(ItemIdData);

	*items = full + (rest > 0 ? 1 : 0);
	*bytes = full * full_bytes;
	if (rest == 1)
		*bytes += key_bytes + sizeof(ItemIdData);
	else if (rest > 1)
		*bytes += ceil((key_bytes + sizeof(ItemPointerData) * rest) / MAXIMUM_ALIGNOF)
			* MAXIMUM_ALIGNOF + sizeof(ItemIdData);
}

/* incident_btree_pages: the pages of a freshly built btree */
Datum
incident_btree_pages(PG_FUNCTION_ARGS)
{
	double		rows = PG_GETARG_FLOAT8(0);
	double		keys = PG_GETARG_FLOAT8(1);
	double		key_bytes = PG_GETARG_FLOAT8(2);
	int32		fillfactor = PG_GETARG_INT32(3);
	bool		deduplicated = PG_GETARG_BOOL(4);
	/* free space of a page: header, special space, and the high key's slot */
	double		room = BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - MAXALIGN(sizeof(BTPageOpaqueData))
		- 2 * sizeof(ItemIdData);
	double		leaf_reserve = BLCKSZ * (100 - fillfactor) / 100;
	double		internal_reserve = BLCKSZ * (100 - BTREE_NONLEAF_FILLFACTOR) / 100;
	/* nbtsort.c: posting lists of at most a tenth of a page */
	double		max_posting = MAXALIGN_DOWN(BLCKSZ * 10 / 100) - sizeof(ItemIdData);
	double		items;
	double		bytes;
	double		leaf;
	double		level;
	double		fanout;
	double		pages;

	if (!isfinite(rows) || !isfinite(keys) || !isfinite(key_bytes) || key_bytes < 0 || keys < 0 ||
		fillfactor < 10 || fillfactor > 100)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid btree estimate input: rows %g, keys %g, key bytes %g, fillfactor %d",
						rows, keys, key_bytes, fillfactor),
				 errhint("Rows, keys and key bytes are finite and not negative; fillfactor is 10 to 100.")));
	if (rows <= 0)
		PG_RETURN_FLOAT8(1.0);	/* the metapage */
	if (deduplicated && keys > 0 && rows > keys)
	{
		double		per_key = rows / keys;
		double		n = floor(per_key);
		double		hi_share = per_key - n;
		double		max_tids = Max(floor((max_posting - key_bytes) / sizeof(ItemPointerData)), 2);
		double		items_lo,
					bytes_lo,
					items_hi,
					bytes_hi;

		bloat_key_items(n, key_bytes, max_tids, &items_lo, &bytes_lo);
		bloat_key_items(n + 1, key_bytes, max_tids, &items_hi, &bytes_hi);
		items = keys * ((1 - hi_share) * items_lo + hi_share * items_hi);
		bytes = keys * ((1 - hi_share) * bytes_lo + hi_share * bytes_hi);
	}
	else
	{
		items = rows;
		bytes = rows * (key_bytes + sizeof(ItemIdData));
	}

	leaf = ceil(items / Max(floor((room - leaf_reserve) / (bytes / items)), 1));
	pages = 1 + leaf;
	/* internal levels up to a root, their pivots as long as the keys */
	fanout = Max(floor((room - internal_reserve) / (key_bytes + sizeof(ItemIdData))), 2);
	for (level = leaf; level > 1;)
	{
		CHECK_FOR_INTERRUPTS();
		level = ceil(level / fanout);
		pages += level;
	}
	PG_RETURN_FLOAT8(pages);
}
