/*-------------------------------------------------------------------------
 *
 * classify.h
 *		The severity classifier of pg_incident: compiled rules and signals.
 *
 * The matching arithmetic (compiling rules, the literal prefilter, matching
 * a text, scoring signals) uses no SPI, so that other parts of pg_incident
 * (a probe, the worker) can classify without a round trip through SQL once
 * they hold a ClassifyRuleSet.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INCIDENT_CLASSIFY_H
#define PG_INCIDENT_CLASSIFY_H

#include "regex/regex.h"
#include "utils/jsonb.h"

/*
 * Literals a match needs: a literal (lower case), a digit, all of the
 * parts, or any of them.
 */
typedef enum ClassifyNeedKind
{
	CLASSIFY_NEED_LITERAL,
	CLASSIFY_NEED_DIGIT,
	CLASSIFY_NEED_ALL,
	CLASSIFY_NEED_ANY
} ClassifyNeedKind;

typedef struct ClassifyNeed
{
	ClassifyNeedKind kind;
	char	   *literal;
	int			nparts;
	struct ClassifyNeed **parts;
} ClassifyNeed;

/* One compiled rule of incident_classify_rule. */
typedef struct ClassifyRule
{
	char	   *name;
	char	   *pattern;
	char	   *severity;		/* P1..P4 */
	char	   *category;
	int			priority;
	regex_t		re;
	bool		compiled;		/* re holds a compiled pattern to free */
	bool		always;			/* the pattern matches every text ("" or "^") */

	/*
	 * Prefilter: what a text (of ASCII characters) must contain for the
	 * pattern to match it; NULL: nothing known, always run the pattern.
	 */
	struct ClassifyNeed *need;
} ClassifyRule;

/* A set of rules in the order they are tried. */
typedef struct ClassifyRuleSet
{
	MemoryContext cxt;			/* holds everything below */
	int			nrules;
	ClassifyRule *rules;
} ClassifyRuleSet;

/* A text prepared once for matching against many rules. */
typedef struct ClassifyText
{
	const char *text;
	int			len;
	char	   *lower;			/* ASCII lower-case copy, or NULL if not ASCII */
	pg_wchar   *wide;			/* converted lazily */
	int			wlen;
} ClassifyText;

/* One match: the rule and the bytes of the text it matched. */
typedef struct ClassifyMatch
{
	int			rule;			/* index into ClassifyRuleSet.rules */
	int			start;			/* in characters */
	int			end;
} ClassifyMatch;

/* A severity that one signal calls for. */
typedef struct ClassifySignal
{
	char	   *key;
	Jsonb	   *value;
	const char *severity;		/* NULL: calls for none */
	char	   *reason;
} ClassifySignal;

extern ClassifyRuleSet *classify_ruleset_create(MemoryContext parent);
extern void classify_ruleset_add(ClassifyRuleSet *set, const char *name, const char *pattern,
								 const char *severity, const char *category, int priority);
extern void classify_ruleset_free(ClassifyRuleSet *set);
extern ClassifyRuleSet *classify_current_rules(void);

extern void classify_text_init(ClassifyText *t, const char *text, int len);
extern int	classify_match(ClassifyRuleSet *set, ClassifyText *t, int from, ClassifyMatch *match);

extern int	classify_signals(Jsonb *signals, ClassifySignal **result);
extern int	classify_severity_rank(const char *severity);

#endif							/* PG_INCIDENT_CLASSIFY_H */
