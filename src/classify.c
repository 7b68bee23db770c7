/*-------------------------------------------------------------------------
 *
 * classify.c
 *		The severity classifier: editable rules compiled once per backend,
 *		and the scoring of signals such as page load seconds.
 *
 * incident_classify(text) tries the enabled rules of incident_classify_rule
 * in priority order and answers with the severity of the first whose
 * pattern matches. Each backend compiles the rules once, with PostgreSQL's
 * own regular expression engine (advanced syntax, case-insensitive, as the
 * ~* operator), into a memory context of its own that outlives
 * transactions. The compiled rules are a cache of confcache.c: a change to
 * the table makes them stale in every backend (this one at the end of the
 * command, the others when the change commits), and the next call compiles
 * them again, from the rows committed by then (a fresh snapshot, whatever
 * the caller's isolation level: see confcache.c). classify_current_rules()
 * needs no fcinfo, so that the worker can classify too.
 *
 * Before it runs a rule's regular expression, the matcher checks a cheap
 * prefilter: the literal strings (and digits) that any match must contain,
 * as an and/or tree found by a conservative reading of the pattern (a rule
 * whose pattern it cannot read has no prefilter and is always run). The
 * text is lowered once, so the prefilter is a few substring searches. The
 * expression itself then runs without asking where the match is, so the
 * engine stops as soon as it knows there is one.
 *
 * The matching arithmetic and the signal scoring use no SPI; only
 * classify_load() reads the table through SPI. Every loop that can run long
 * (over the rules, over the bytes of a text) checks for interrupts, and the
 * regular expression engine does so itself; an interrupt it reports is
 * thrown as the interrupt, not as a failed match. Errors quote at most a
 * bounded prefix of a value (incident_quote_prefix).
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"

#include "classify.h"
#include "confcache.h"
#include "pg_incident.h"

/* ---- the compiled rules of this backend ---- */

static ClassifyRuleSet *classify_cache = NULL;
static ConfCache *classify_confcache = NULL;

/* bytes of a text between two checks for interrupts */
#define CLASSIFY_INTERRUPT_BYTES 65536

/* ---- forward declarations ---- */

static void classify_reset(void *arg);
static void classify_load(const char *schema, void *arg);
static bool classify_prefilter_passes(ClassifyRule *rule, ClassifyText *t);
static void classify_text_widen(ClassifyText *t);
static void classify_extract_literals(ClassifyRule *rule);
static ClassifyNeed *classify_alternatives(const char *p, int start, int end, bool *ok);
static ClassifyNeed *classify_need_of(ClassifyNeedKind kind, List *parts);
static ClassifyNeed *classify_need_literal(const char *literal);
static ClassifyNeed *classify_need_digit(void);
static bool classify_need_met(ClassifyNeed *need, const char *lower);
static void classify_describe_need(StringInfo buf, ClassifyNeed *need, bool nested);
static int	classify_skip_group(const char *p, int i, int end, bool *ok);
static int	classify_skip_bracket(const char *p, int i, int end, bool *ok);
static bool classify_literal_char(char c);
static char *classify_describe_prefilter(ClassifyRule *rule);
static const char *classify_signal_bool(const char *key, JsonbValue *v, const char *severity,
										char **reason);
static Numeric classify_signal_number(const char *key, JsonbValue *v, int64 max);
static int	classify_numeric_cmp(Numeric a, int64 b);

PG_FUNCTION_INFO_V1(incident_classify_text);
PG_FUNCTION_INFO_V1(incident_classify_explain_text);
PG_FUNCTION_INFO_V1(incident_classify_signals);
PG_FUNCTION_INFO_V1(incident_classify_explain_signals);

/* ====================================================================
 * Rule sets: compiling and matching (no SPI)
 * ====================================================================
 */

/*
 * Create an empty rule set in a memory context of its own under parent.
 */
ClassifyRuleSet *
classify_ruleset_create(MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "pg_incident classification rules",
											  ALLOCSET_SMALL_SIZES);
	ClassifyRuleSet *set = MemoryContextAllocZero(cxt, sizeof(ClassifyRuleSet));

	set->cxt = cxt;
	return set;
}

/*
 * Compile a rule and append it to the set; an invalid pattern is an error
 * naming the rule.
 */
void
classify_ruleset_add(ClassifyRuleSet *set, const char *name, const char *pattern,
					 const char *severity, const char *category, int priority)
{
	MemoryContext old = MemoryContextSwitchTo(set->cxt);
	ClassifyRule *rule;
	pg_wchar   *wide;
	int			plen = strlen(pattern);
	int			wlen;
	int			rc;

	if (set->rules == NULL)
		set->rules = palloc0(sizeof(ClassifyRule) * 16);
	else if ((set->nrules & (set->nrules - 1)) == 0 && set->nrules >= 16)
		set->rules = repalloc(set->rules, sizeof(ClassifyRule) * set->nrules * 2);

	rule = &set->rules[set->nrules];
	memset(rule, 0, sizeof(ClassifyRule));
	rule->name = pstrdup(name);
	rule->pattern = pstrdup(pattern);
	rule->severity = pstrdup(severity);
	rule->category = pstrdup(category);
	rule->priority = priority;

	wide = palloc(sizeof(pg_wchar) * (plen + 1));
	wlen = pg_mb2wchar_with_len(pattern, wide, plen);

	/*
	 * Up to PostgreSQL 15 the regex library allocates with malloc(); from 16
	 * on it allocates in CurrentMemoryContext, which is the set's. Either way
	 * pg_regfree() in classify_ruleset_free() releases it.
	 */
	rc = pg_regcomp(&rule->re, wide, wlen, REG_ADVANCED | REG_ICASE, DEFAULT_COLLATION_OID);
	pfree(wide);
	if (rc != REG_OKAY)
	{
		char		errstr[256];

		/* the engine gives up on a cancel or a timeout: report that instead */
		CHECK_FOR_INTERRUPTS();
		pg_regerror(rc, &rule->re, errstr, sizeof(errstr));
		MemoryContextSwitchTo(old);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_REGULAR_EXPRESSION),
				 errmsg("invalid pattern \"%s\" in classification rule \"%s\"",
						incident_quote_prefix(pattern), incident_quote_prefix(name)),
				 errdetail("PostgreSQL says: %s.", errstr),
				 errhint("Correct or disable the rule in incident_classify_rule.")));
	}
	rule->compiled = true;
	rule->always = (pattern[0] == '\0' || strcmp(pattern, "^") == 0);
	set->nrules++;

	classify_extract_literals(rule);
	MemoryContextSwitchTo(old);
	elog(DEBUG1, "pg_incident: classification rule \"%s\" compiled; prefilter: %s",
		 name, classify_describe_prefilter(rule));
}

/*
 * Release a rule set and its compiled patterns.
 */
void
classify_ruleset_free(ClassifyRuleSet *set)
{
	if (set == NULL)
		return;
	for (int i = 0; i < set->nrules; i++)
	{
		if (set->rules[i].compiled)
			pg_regfree(&set->rules[i].re);
	}
	MemoryContextDelete(set->cxt);
}

/*
 * Prepare a text for matching: an ASCII lower-case copy for the prefilter
 * (none if the text has other characters, whose case folding the prefilter
 * does not know), the wide-character form only when a pattern must run.
 */
void
classify_text_init(ClassifyText *t, const char *text, int len)
{
	t->text = text;
	t->len = len;
	t->wide = NULL;
	t->wlen = 0;
	t->lower = palloc(len + 1);
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) text[i];

		if (i % CLASSIFY_INTERRUPT_BYTES == 0)
			CHECK_FOR_INTERRUPTS();

		if (c >= 0x80 || c == '\0')
		{
			pfree(t->lower);
			t->lower = NULL;
			return;
		}
		t->lower[i] = pg_ascii_tolower(c);
	}
	t->lower[len] = '\0';
}

/*
 * Convert the text to the regex engine's wide characters, once.
 */
static void
classify_text_widen(ClassifyText *t)
{
	if (t->wide != NULL)
		return;
	t->wide = palloc(sizeof(pg_wchar) * (t->len + 1));
	t->wlen = pg_mb2wchar_with_len(t->text, t->wide, t->len);
}

/*
 * Whether the rule may match the text: false only if the text lacks every
 * literal that a match needs.
 */
static bool
classify_prefilter_passes(ClassifyRule *rule, ClassifyText *t)
{
	if (rule->need == NULL || t->lower == NULL)
		return true;
	return classify_need_met(rule->need, t->lower);
}

/*
 * The index of the first rule at or after "from" that matches the text; -1
 * if none does. With match not NULL, also where it matched.
 */
int
classify_match(ClassifyRuleSet *set, ClassifyText *t, int from, ClassifyMatch *match)
{
	for (int i = from; i < set->nrules; i++)
	{
		ClassifyRule *rule = &set->rules[i];
		regmatch_t	pmatch[1];
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (rule->always)
		{
			/* a catch-all: matches the empty string at the start */
			if (match)
			{
				classify_text_widen(t);
				match->rule = i;
				match->start = match->end = 0;
			}
			return i;
		}
		if (!classify_prefilter_passes(rule, t))
			continue;
		classify_text_widen(t);

		/*
		 * Without a place for the match (nmatch = 0), the engine stops as soon
		 * as it knows that there is one, which is much cheaper than finding
		 * where it starts and ends.
		 */
		rc = pg_regexec(&rule->re, t->wide, t->wlen, 0, NULL, match ? 1 : 0, pmatch, 0);
		if (rc == REG_NOMATCH)
			continue;
		if (rc != REG_OKAY)
		{
			char		errstr[256];

			/* the engine gives up on a cancel or a timeout: report that instead */
			CHECK_FOR_INTERRUPTS();
			pg_regerror(rc, &rule->re, errstr, sizeof(errstr));
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_REGULAR_EXPRESSION),
					 errmsg("could not match classification rule \"%s\"",
							incident_quote_prefix(rule->name)),
					 errdetail("PostgreSQL says: %s.", errstr)));
		}
		if (match)
		{
			match->rule = i;
			match->start = pmatch[0].rm_so;
			match->end = pmatch[0].rm_eo;
		}
		return i;
	}
	return -1;
}

/* ---- the prefilter: literals a match must contain ---- */

/*
 * Characters that stand for themselves in an advanced regular expression
 * outside brackets and whose case folding is plain ASCII.
 */
static bool
classify_literal_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		strchr(" '-_/,:;<>=%&@!\"#~", c) != NULL;
}

/*
 * A need of the given kind made of the needs in the list (the list's only
 * member if there is one).
 */
static ClassifyNeed *
classify_need_of(ClassifyNeedKind kind, List *parts)
{
	ClassifyNeed *need;
	ListCell   *lc;
	int			i = 0;

	if (list_length(parts) == 1)
		return linitial(parts);
	need = palloc0(sizeof(ClassifyNeed));
	need->kind = kind;
	need->nparts = list_length(parts);
	need->parts = palloc(sizeof(ClassifyNeed *) * need->nparts);
	foreach(lc, parts)
		need->parts[i++] = lfirst(lc);
	return need;
}

/*
 * A need for any digit.
 */
static ClassifyNeed *
classify_need_digit(void)
{
	ClassifyNeed *need = palloc0(sizeof(ClassifyNeed));

	need->kind = CLASSIFY_NEED_DIGIT;
	return need;
}

/*
 * A need for one literal.
 */
static ClassifyNeed *
classify_need_literal(const char *literal)
{
	ClassifyNeed *need = palloc0(sizeof(ClassifyNeed));

	need->kind = CLASSIFY_NEED_LITERAL;
	need->literal = pstrdup(literal);
	return need;
}

/*
 * The index just past the group that opens at p[i] == '('; *ok = false if
 * the group does not close.
 */
static int
classify_skip_group(const char *p, int i, int end, bool *ok)
{
	int			depth = 0;

	while (i < end)
	{
		if (p[i] == '\\')
			i += 2;
		else if (p[i] == '[')
		{
			i = classify_skip_bracket(p, i, end, ok);
			if (!*ok)
				return end;
		}
		else if (p[i] == '(')
			depth++, i++;
		else if (p[i] == ')')
		{
			depth--, i++;
			if (depth == 0)
				return i;
		}
		else
			i++;
	}
	*ok = false;
	return end;
}

/*
 * The index just past the bracket expression that opens at p[i] == '['.
 */
static int
classify_skip_bracket(const char *p, int i, int end, bool *ok)
{
	i++;
	if (i < end && p[i] == '^')
		i++;
	if (i < end && p[i] == ']')
		i++;
	while (i < end && p[i] != ']')
	{
		if (p[i] == '[' && i + 1 < end && (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '='))
		{
			char		close = p[i + 1];

			i += 2;
			while (i + 1 < end && !(p[i] == close && p[i + 1] == ']'))
				i++;
			i += 2;
		}
		else
			i++;
	}
	if (i >= end)
	{
		*ok = false;
		return end;
	}
	return i + 1;
}

/*
 * For the alternatives in p[start, end): what every match must contain, or
 * NULL if nothing is certain. *ok turns false on syntax this reading does
 * not know, which also means NULL.
 */
static ClassifyNeed *
classify_alternatives(const char *p, int start, int end, bool *ok)
{
	List	   *branches = NIL;
	int			i = start;

	/* groups nest: each level is a call */
	check_stack_depth();
	for (;;)
	{
		List	   *factors = NIL;
		StringInfoData run;

		CHECK_FOR_INTERRUPTS();
		initStringInfo(&run);

		/* one branch: up to a top-level '|' or the end */
		while (i < end && p[i] != '|')
		{
			char		c = p[i];

			if (classify_literal_char(c))
			{
				char		next = (i + 1 < end) ? p[i + 1] : '\0';

				if (next == '?' || next == '*' || next == '{')
				{
					/* an optional character ends the run without joining it */
					if (run.len > 0)
						factors = lappend(factors, classify_need_literal(run.data));
					resetStringInfo(&run);
					i++;
					continue;
				}
				appendStringInfoChar(&run, pg_ascii_tolower((unsigned char) c));
				i++;
				if (next == '+')
				{
					factors = lappend(factors, classify_need_literal(run.data));
					resetStringInfo(&run);
				}
				continue;
			}

			/* anything else ends the current run */
			if (run.len > 0)
				factors = lappend(factors, classify_need_literal(run.data));
			resetStringInfo(&run);

			if (c == '(')
			{
				int			close = classify_skip_group(p, i, end, ok);
				bool		plain = !(i + 1 < end && p[i + 1] == '?');
				bool		noncapturing = (i + 2 < end && p[i + 1] == '?' && p[i + 2] == ':');
				char		after = (close < end) ? p[close] : '\0';

				if (!*ok)
					return NULL;
				/* a group that may be skipped, or a lookaround, needs nothing */
				if ((plain || noncapturing) && after != '?' && after != '*' && after != '{')
				{
					ClassifyNeed *inner = classify_alternatives(p, i + (plain ? 1 : 3), close - 1, ok);

					if (!*ok)
						return NULL;
					if (inner != NULL)
						factors = lappend(factors, inner);
				}
				i = close;
			}
			else if (c == '[')
			{
				int			close = classify_skip_bracket(p, i, end, ok);

				if (!*ok)
					return NULL;
				/* [0-9], [3-9] and the like need a digit, unless optional */
				if (strspn(p + i + 1, "0123456789-") == (size_t) (close - i - 2) && close - i > 2 &&
					(close >= end || strchr("?*{", p[close]) == NULL))
					factors = lappend(factors, classify_need_digit());
				i = close;
			}
			else if (c == '\\')
			{
				char		e = (i + 1 < end) ? p[i + 1] : '\0';

				/* classes and constraints; other letter escapes are not read */
				if (strchr("mMyYsSwWdDAZ", e) == NULL && isalnum((unsigned char) e))
				{
					*ok = false;
					return NULL;
				}
				if (e == 'd' && (i + 2 >= end || strchr("?*{", p[i + 2]) == NULL))
					factors = lappend(factors, classify_need_digit());
				i += 2;
			}
			else if (c == '{')
			{
				while (i < end && p[i] != '}')
					i++;
				if (i >= end)
				{
					*ok = false;
					return NULL;
				}
				i++;
			}
			else if (c == ')')
			{
				*ok = false;
				return NULL;
			}
			else
				i++;			/* . ^ $ * + ? and characters beyond ASCII */
		}
		if (run.len > 0)
			factors = lappend(factors, classify_need_literal(run.data));
		pfree(run.data);

		/* a branch that needs nothing makes the alternatives need nothing */
		if (factors == NIL)
			return NULL;
		branches = lappend(branches, classify_need_of(CLASSIFY_NEED_ALL, factors));

		if (i >= end)
			break;
		i++;					/* past '|' */
	}
	return classify_need_of(CLASSIFY_NEED_ANY, branches);
}

/*
 * Whether the lower-cased text holds what the need asks for.
 */
static bool
classify_need_met(ClassifyNeed *need, const char *lower)
{
	check_stack_depth();
	switch (need->kind)
	{
		case CLASSIFY_NEED_LITERAL:
			return strstr(lower, need->literal) != NULL;
		case CLASSIFY_NEED_DIGIT:
			return strpbrk(lower, "0123456789") != NULL;
		case CLASSIFY_NEED_ALL:
			for (int i = 0; i < need->nparts; i++)
				if (!classify_need_met(need->parts[i], lower))
					return false;
			return true;
		case CLASSIFY_NEED_ANY:
			for (int i = 0; i < need->nparts; i++)
				if (classify_need_met(need->parts[i], lower))
					return true;
			return false;
	}
	return true;
}

/*
 * The need as text, for DEBUG1 messages: "a" & ("b" | "c").
 */
static void
classify_describe_need(StringInfo buf, ClassifyNeed *need, bool nested)
{
	check_stack_depth();
	if (need->kind == CLASSIFY_NEED_DIGIT)
	{
		appendStringInfoString(buf, "digit");
		return;
	}
	if (need->kind == CLASSIFY_NEED_LITERAL)
	{
		appendStringInfo(buf, "\"%s\"", need->literal);
		return;
	}
	if (nested)
		appendStringInfoChar(buf, '(');
	for (int i = 0; i < need->nparts; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, need->kind == CLASSIFY_NEED_ALL ? " & " : " | ");
		classify_describe_need(buf, need->parts[i], true);
	}
	if (nested)
		appendStringInfoChar(buf, ')');
}

/*
 * Work out the rule's prefilter from its pattern.
 */
static void
classify_extract_literals(ClassifyRule *rule)
{
	const char *p = rule->pattern;
	bool		ok = true;
	ClassifyNeed *need;

	rule->need = NULL;

	/* directors (***=, ***:) and embedded options (?x) change the syntax */
	if (strncmp(p, "***", 3) == 0 || strncmp(p, "(?", 2) == 0)
		return;
	need = classify_alternatives(p, 0, strlen(p), &ok);
	if (ok)
		rule->need = need;
}

/*
 * The rule's prefilter as text, for DEBUG1 messages.
 */
static char *
classify_describe_prefilter(ClassifyRule *rule)
{
	StringInfoData buf;

	if (rule->need == NULL)
		return pstrdup("none");
	initStringInfo(&buf);
	classify_describe_need(&buf, rule->need, false);
	return buf.data;
}

/* ====================================================================
 * This backend's rules: the loader (SPI) and invalidation
 * ====================================================================
 */

/*
 * Reset function of the rules' cache: drop the compiled rules.
 */
static void
classify_reset(void *arg)
{
	classify_ruleset_free(classify_cache);
	classify_cache = NULL;
}

/*
 * Loader of the rules' cache: read the enabled rules from the table in the
 * extension's schema (under confcache's fresh snapshot) and compile them
 * into *(ClassifyRuleSet **) arg.
 */
static void
classify_load(const char *schema, void *arg)
{
	ClassifyRuleSet *set;
	StringInfoData query;

	/* built under the caller's context, kept only once it is complete */
	set = classify_ruleset_create(CurrentMemoryContext);

	initStringInfo(&query);
	appendStringInfo(&query,
					 "SELECT r.name, r.pattern, r.severity, r.category, r.priority "
					 "FROM %s.incident_classify_rule r WHERE r.enabled "
					 "ORDER BY r.priority, r.name COLLATE \"C\"",
					 quote_identifier(schema));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		if (SPI_execute(query.data, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the classification rules");
		for (uint64 row = 0; row < SPI_processed; row++)
		{
			HeapTuple	tup = SPI_tuptable->vals[row];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int			priority = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));

			CHECK_FOR_INTERRUPTS();
			classify_ruleset_add(set, SPI_getvalue(tup, desc, 1), SPI_getvalue(tup, desc, 2),
								 SPI_getvalue(tup, desc, 3), SPI_getvalue(tup, desc, 4),
								 priority);
		}
	}
	PG_CATCH();
	{
		classify_ruleset_free(set);
		PG_RE_THROW();
	}
	PG_END_TRY();
	SPI_finish();

	MemoryContextSetParent(set->cxt, TopMemoryContext);
	*(ClassifyRuleSet **) arg = set;
}

/*
 * The compiled rules of this backend, compiled again if the table changed
 * since: the rules committed by now, whatever the caller's snapshot. Needs
 * no fcinfo; the table is the one in the extension's schema.
 */
ClassifyRuleSet *
classify_current_rules(void)
{
	if (classify_confcache == NULL)
	{
		static const char *const tables[] = {"incident_classify_rule"};

		classify_confcache = confcache_register("classification rules", tables, 1,
												classify_reset, NULL);
	}
	if (!confcache_check(classify_confcache) || classify_cache == NULL)
	{
		ClassifyRuleSet *set = NULL;

		confcache_load(classify_confcache, classify_load, &set);
		/* a set kept while stale is replaced on the next call */
		classify_ruleset_free(classify_cache);
		classify_cache = set;
	}
	return classify_cache;
}

/* ====================================================================
 * SQL functions on text
 * ====================================================================
 */

/*
 * incident_classify(text): the severity of the first rule that matches.
 */
Datum
incident_classify_text(PG_FUNCTION_ARGS)
{
	text	   *phrase = PG_GETARG_TEXT_PP(0);
	ClassifyRuleSet *set = classify_current_rules();
	ClassifyText t;
	int			rule;

	classify_text_init(&t, VARDATA_ANY(phrase), VARSIZE_ANY_EXHDR(phrase));
	rule = classify_match(set, &t, 0, NULL);
	if (rule < 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(set->rules[rule].severity));
}

/*
 * incident_classify_explain(text): every rule that matches, in order.
 */
Datum
incident_classify_explain_text(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *phrase = PG_GETARG_TEXT_PP(0);
	ClassifyRuleSet *set = classify_current_rules();
	ClassifyText t;
	ClassifyMatch m;
	int			rank = 0;

	InitMaterializedSRF(fcinfo, 0);
	classify_text_init(&t, VARDATA_ANY(phrase), VARSIZE_ANY_EXHDR(phrase));

	for (int from = 0; classify_match(set, &t, from, &m) >= 0; from = m.rule + 1)
	{
		ClassifyRule *rule = &set->rules[m.rule];
		Datum		values[7];
		bool		nulls[7] = {0};
		char	   *matched;
		int			bytes;

		/* the matched characters, back in the database encoding */
		matched = palloc(pg_database_encoding_max_length() * (m.end - m.start) + 1);
		bytes = pg_wchar2mb_with_len(t.wide + m.start, matched, m.end - m.start);
		matched[bytes] = '\0';

		values[0] = Int32GetDatum(++rank);
		values[1] = CStringGetTextDatum(rule->name);
		values[2] = CStringGetTextDatum(rule->severity);
		values[3] = CStringGetTextDatum(rule->category);
		values[4] = Int32GetDatum(rule->priority);
		values[5] = CStringGetTextDatum(rule->pattern);
		values[6] = CStringGetTextDatum(matched);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ====================================================================
 * Signals (no SPI)
 * ====================================================================
 */

/*
 * 1 for P1 .. 4 for P4, 5 for none: smaller is more severe.
 */
int
classify_severity_rank(const char *severity)
{
	if (severity == NULL)
		return 5;
	return severity[1] - '0';
}

/*
 * A flag signal: true calls for the severity, false for none.
 */
static const char *
classify_signal_bool(const char *key, JsonbValue *v, const char *severity, char **reason)
{
	if (v->type != jbvBool)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for signal \"%s\"", key),
				 errdetail("Signal \"%s\" takes true or false.", key),
				 errhint("Write it as {\"%s\": true}.", key)));
	if (!v->val.boolean)
	{
		*reason = psprintf("%s is false", key);
		return NULL;
	}
	return severity;
}

/*
 * Compare a number with an integer: <0, 0 or >0 as for numeric_cmp.
 */
static int
classify_numeric_cmp(Numeric a, int64 b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a),
											 NumericGetDatum(int64_to_numeric(b))));
}

/*
 * A numeric signal from 0 to max, compared as the exact number JSON gave
 * (no conversion to float8, which would refuse 1e-400 and round 100.0001
 * to 100 in a message).
 */
static Numeric
classify_signal_number(const char *key, JsonbValue *v, int64 max)
{
	Numeric		num;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for signal \"%s\"", key),
				 errdetail("Signal \"%s\" takes a number.", key),
				 errhint("Write it as {\"%s\": 12}, without quotes.", key)));
	num = v->val.numeric;
	if (numeric_is_nan(num) || classify_numeric_cmp(num, 0) < 0 || classify_numeric_cmp(num, max) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value \"%s\" for signal \"%s\"",
						incident_quote_prefix(DatumGetCString(DirectFunctionCall1(numeric_out,
																			   NumericGetDatum(num)))),
						key),
				 errdetail("Signal \"%s\" takes a number from 0 to " INT64_FORMAT ".", key, max),
				 errhint("Give a number in that range, or null if it is not known.")));
	return num;
}

/*
 * Score each fact of a signals object; returns how many there are, in
 * *result, most severe first.
 */
int
classify_signals(Jsonb *signals, ClassifySignal **result)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			n = 0,
				cap;
	ClassifySignal *out;

	if (!JB_ROOT_IS_OBJECT(signals))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid signals \"%s\"",
						incident_quote_prefix(JsonbToCString(NULL, &signals->root, VARSIZE(signals)))),
				 errdetail("Signals are a JSON object of facts about the incident."),
				 errhint("Write them as {\"page_load_s\": 12, \"users_affected_pct\": 60}.")));

	cap = Max(1, JB_ROOT_COUNT(signals));
	out = palloc0(sizeof(ClassifySignal) * cap);

	it = JsonbIteratorInit(&signals->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		ClassifySignal *s;
		char	   *key;

		CHECK_FOR_INTERRUPTS();
		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);

		/*
		 * An unknown key is an error even with a null value, so that there
		 * are at most as many facts as known signals (and the error quotes a
		 * key of bounded length).
		 */
		if (strcmp(key, "outage") != 0 && strcmp(key, "security") != 0 &&
			strcmp(key, "payment") != 0 && strcmp(key, "database_down") != 0 &&
			strcmp(key, "page_load_s") != 0 && strcmp(key, "users_affected_pct") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized signal \"%s\"", incident_quote_prefix(key)),
					 errhint("Valid signals are outage, security, payment and database_down (true or false), page_load_s (seconds) and users_affected_pct (0 to 100).")));

		tok = JsonbIteratorNext(&it, &v, true);
		Assert(tok == WJB_VALUE);

		s = &out[n++];
		s->key = key;
		s->value = JsonbValueToJsonb(&v);
		s->severity = NULL;

		if (v.type == jbvNull)
		{
			/* a fact nobody knows calls for nothing */
			s->reason = psprintf("%s is not known", key);
		}
		else if (strcmp(key, "outage") == 0)
		{
			s->severity = classify_signal_bool(key, &v, "P1", &s->reason);
			if (s->severity)
				s->reason = pstrdup("complete outage (playbook P1)");
		}
		else if (strcmp(key, "security") == 0)
		{
			s->severity = classify_signal_bool(key, &v, "P1", &s->reason);
			if (s->severity)
				s->reason = pstrdup("security breach or data leak (playbook P1)");
		}
		else if (strcmp(key, "payment") == 0)
		{
			s->severity = classify_signal_bool(key, &v, "P1", &s->reason);
			if (s->severity)
				s->reason = pstrdup("payment system failure (playbook P1)");
		}
		else if (strcmp(key, "database_down") == 0)
		{
			s->severity = classify_signal_bool(key, &v, "P1", &s->reason);
			if (s->severity)
				s->reason = pstrdup("database unavailable (playbook P1)");
		}
		else if (strcmp(key, "page_load_s") == 0)
		{
			Numeric		secs = classify_signal_number(key, &v, 86400);

			if (classify_numeric_cmp(secs, 10) > 0)
			{
				s->severity = "P2";
				s->reason = pstrdup("page loads take more than 10 s (playbook P2)");
			}
			else if (classify_numeric_cmp(secs, 5) > 0)
			{
				/* the playbook's gap between 3-5 s (P3) and >10 s (P2) */
				s->severity = "P3";
				s->reason = pstrdup("page loads take 5 to 10 s: P3 until they pass 10 s (the playbook's P2 threshold)");
			}
			else if (classify_numeric_cmp(secs, 3) >= 0)
			{
				s->severity = "P3";
				s->reason = pstrdup("page loads take 3 to 5 s (playbook P3)");
			}
			else
				s->reason = pstrdup("page loads take less than 3 s");
		}
		else if (strcmp(key, "users_affected_pct") == 0)
		{
			Numeric		pct = classify_signal_number(key, &v, 100);

			if (classify_numeric_cmp(pct, 50) > 0)
			{
				s->severity = "P1";
				s->reason = pstrdup("more than 50 % of users affected");
			}
			else if (classify_numeric_cmp(pct, 10) >= 0)
			{
				s->severity = "P2";
				s->reason = pstrdup("10 % to 50 % of users affected");
			}
			else if (classify_numeric_cmp(pct, 0) > 0)
			{
				s->severity = "P3";
				s->reason = pstrdup("some users affected, under 10 % (playbook P3)");
			}
			else
				s->reason = pstrdup("no users affected");
		}
	}

	/* most severe first; keys in order within a severity (insertion sort) */
	for (int i = 1; i < n; i++)
	{
		ClassifySignal tmp = out[i];
		int			j = i - 1;

		while (j >= 0 && classify_severity_rank(out[j].severity) > classify_severity_rank(tmp.severity))
		{
			out[j + 1] = out[j];
			j--;
		}
		out[j + 1] = tmp;
	}
	*result = out;
	return n;
}

/*
 * incident_classify(jsonb): the most severe severity the signals call for.
 */
Datum
incident_classify_signals(PG_FUNCTION_ARGS)
{
	Jsonb	   *signals = PG_GETARG_JSONB_P(0);
	ClassifySignal *s;
	int			n = classify_signals(signals, &s);

	if (n == 0 || s[0].severity == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(s[0].severity));
}

/*
 * incident_classify_explain(jsonb): each signal, its severity and why.
 */
Datum
incident_classify_explain_signals(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *signals = PG_GETARG_JSONB_P(0);
	ClassifySignal *s;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	n = classify_signals(signals, &s);
	for (int i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {0};

		values[0] = CStringGetTextDatum(s[i].key);
		values[1] = JsonbPGetDatum(s[i].value);
		if (s[i].severity)
			values[2] = CStringGetTextDatum(s[i].severity);
		else
			nulls[2] = true;
		values[3] = CStringGetTextDatum(s[i].reason);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
