/*-------------------------------------------------------------------------
 *
 * outbox.c
 *		Delivering notifications: claim due outbox rows, post them through
 *		the HTTP worker's engine, record what became of each.
 *
 * The outbox (incident_notification, extension/70_notify.sql) is written in
 * the transaction of the timeline event it tells of; the trigger that writes
 * it calls incident__notification_wake(), which at commit wakes the HTTP
 * worker (worker_state.c keeps the flag and finds the worker's latch). The
 * worker then, each in a short transaction of its own (worker.c):
 *
 *	- claims the due rows, as many as the engine has room for
 *	  (incident__notification_claim: the oldest pending row of each channel
 *	  and incident, so one incident's events reach a channel in order) and
 *	  submits a POST or a mail for each, held in the engine: they start
 *	  once the claim has committed, and are dropped if it did not;
 *	- records each outcome (incident__notification_done), each in a
 *	  subtransaction: delivered on a 2xx (a mail: the relay's 250), else
 *	  pending again after back-off, or dead once too old.
 *
 * A crash between the post and the record leaves the row claimed; the next
 * worker releases its predecessor's claims, or a claim older than the
 * channel's timeout and a minute is taken again: at least once, never lost.
 * Receivers dedup on the Idempotency-Key header, the event's id.
 *
 * The same process fires what falls due without anyone acting
 * (incident__sweep): escalation levels through incident_escalate()'s code,
 * a reminder when a response deadline passes, and one per overdue period of
 * a status update. Each writes its timeline event, and so its outbox rows,
 * in the sweep's transaction: a crash before the commit fires nothing, and
 * the next sweep fires it once.
 *
 * A channel's secret signs the body: X-Incident-Signature: t=<unix time>,
 * v1=<hex HMAC-SHA256 of "<t>.<body>">, so that a receiver can check both the
 * sender and the age (and refuse replays).
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "http.h"
#include "outbox.h"
#include "probe.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(incident__notification_wake);

/* after a failed claim or sweep, the next one is tried this much later */
#define OUTBOX_RETRY_MS 10000

/* the sweep looks at least this often, for changes no event tells of */
#define SWEEP_MAX_WAIT_MS 5000

/* after a commit's wake-up, a claim or sweep this long after the last at most */
#define OUTBOX_BATCH_MS 20
#define SWEEP_MIN_INTERVAL_MS 100

/* a response body's first bytes quoted in last_error */
#define OUTBOX_BODY_QUOTE 200

/* a channel may have 1/OUTBOX_CHANNEL_SHARE of the engine's requests in flight */
#define OUTBOX_CHANNEL_SHARE 8

/* whether this backend's transaction wrote outbox rows, to wake the worker at commit */
static bool outbox_wake_at_commit = false;
static bool outbox_callback_registered = false;

/* when a pending delivery is next due (DT_NOEND: none known) */
static TimestampTz outbox_next_at = DT_NOBEGIN;

/* when the sweep has something to fire next, as far as the worker knows */
static TimestampTz sweep_next_at = DT_NOBEGIN;

/* the last claim and the last sweep, from which the wake-ups count */
static TimestampTz outbox_last_claim = 0;
static TimestampTz sweep_last = 0;

static void outbox_xact_callback(XactEvent event, void *arg);
static bool outbox_sign(const char *secret, const char *body, size_t body_len, int64 t, char *hex, size_t hexlen);
static void outbox_request(HeapTuple tup, TupleDesc desc, int max_bytes, HttpRequest *req);
static void outbox_record_one(void *arg);

/*
 * incident__notification_wake() RETURNS void: at the commit of the current
 * transaction, wake the HTTP worker. Nothing when the library is not
 * preloaded (there is no worker), and nothing on abort.
 */
Datum
incident__notification_wake(PG_FUNCTION_ARGS)
{
	if (!outbox_callback_registered)
	{
		RegisterXactCallback(outbox_xact_callback, NULL);
		outbox_callback_registered = true;
	}
	outbox_wake_at_commit = true;
	PG_RETURN_VOID();
}

static void
outbox_xact_callback(XactEvent event, void *arg)
{
	if (!outbox_wake_at_commit)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			outbox_wake_at_commit = false;
			incident_worker_wake_notifications();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* a prepared transaction's rows are found within SWEEP_MAX_WAIT_MS */
			outbox_wake_at_commit = false;
			break;
		default:
			break;
	}
}

/*
 * Takes the wake-up of a commit that wrote timeline events or outbox rows:
 * both the deliveries and the sweep are to be looked at now. True if there
 * was one.
 */
bool
outbox_take_wakeup(void)
{
	if (!incident_worker_notifications_woken(true))
		return false;
	/*
	 * Under a stream of commits (hundreds a second) each claim takes what
	 * committed in the OUTBOX_BATCH_MS after the last one, and the sweep
	 * runs every SWEEP_MIN_INTERVAL_MS at most, rather than a transaction
	 * per commit; after a quiet spell the first commit is served at once.
	 */
	outbox_next_at = Min(outbox_next_at, TimestampTzPlusMilliseconds(outbox_last_claim, OUTBOX_BATCH_MS));
	sweep_next_at = Min(sweep_next_at, TimestampTzPlusMilliseconds(sweep_last, SWEEP_MIN_INTERVAL_MS));
	return true;
}

/*
 * Whether a delivery may be due now.
 */
bool
outbox_due(TimestampTz now)
{
	return outbox_next_at <= now;
}

/*
 * Whether the sweep may have something to fire now.
 */
bool
outbox_sweep_due(TimestampTz now)
{
	return sweep_next_at <= now;
}

/*
 * When the sweep next has something to fire.
 */
TimestampTz
outbox_sweep_next_due(void)
{
	return sweep_next_at;
}

/*
 * When a delivery is next due, as far as the worker knows.
 */
TimestampTz
outbox_next_due(void)
{
	return outbox_next_at;
}

/*
 * The claim failed (its phase's error is logged): try again in a while,
 * or when an outbox row commits.
 */
void
outbox_claim_failed(void)
{
	outbox_next_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), OUTBOX_RETRY_MS);
}

/*
 * The sweep failed: likewise.
 */
void
outbox_sweep_failed(void)
{
	sweep_next_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), OUTBOX_RETRY_MS);
}

/*
 * Forget what is known of the outbox (the extension was dropped): look
 * again at the next turn.
 */
void
outbox_forget(void)
{
	outbox_next_at = DT_NOBEGIN;
	sweep_next_at = DT_NOBEGIN;
}

/*
 * The request that delivers one claimed row (the columns of
 * incident__notification_claim), in the current memory context.
 */
static void
outbox_request(HeapTuple tup, TupleDesc desc, int max_bytes, HttpRequest *req)
{
	bool		isnull;
	const char **headers = palloc(sizeof(char *) * 4);
	char	   *body = SPI_getvalue(tup, desc, 3);
	char	   *secret = SPI_getvalue(tup, desc, 5);
	int64		event_id = DatumGetInt64(SPI_getbinval(tup, desc, 6, &isnull));
	int			timeout_ms = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
	int			nheaders = 0;

	http_request_init(req);
	req->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	req->owner = HTTP_OWNER_NOTIFICATIONS;
	req->url = SPI_getvalue(tup, desc, 2);
	req->method = HTTP_METHOD_POST;
	req->body = body;
	req->body_len = strlen(body);
	if (strcmp(SPI_getvalue(tup, desc, 8), "email") == 0)
	{
		/* a mail: the envelope from the row; the text carries its headers */
		Datum		rd = SPI_getbinval(tup, desc, 10, &isnull);
		Datum	   *elems;
		bool	   *enulls;
		int			nelems = 0;

		req->method = HTTP_METHOD_MAIL;
		req->mail_from = SPI_getvalue(tup, desc, 9);
		if (!isnull)
		{
			const char **rcpt;

			deconstruct_array(DatumGetArrayTypeP(rd), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &enulls, &nelems);
			rcpt = palloc(sizeof(char *) * Max(nelems, 1));
			for (int r = 0; r < nelems; r++)
				rcpt[r] = enulls[r] ? "" : TextDatumGetCString(elems[r]);
			req->mail_rcpt = rcpt;
		}
		req->nrcpt = nelems;
		req->username = SPI_getvalue(tup, desc, 11);
		req->password = SPI_getvalue(tup, desc, 12);
	}
	else
	{
		headers[nheaders++] = psprintf("Content-Type: %s", SPI_getvalue(tup, desc, 4));
		headers[nheaders++] = psprintf("Idempotency-Key: " INT64_FORMAT, event_id);
		headers[nheaders++] = psprintf("X-Incident-Event: " INT64_FORMAT, event_id);
	}
	if (secret != NULL && req->method == HTTP_METHOD_POST)
	{
		int64		t = (int64) time(NULL);
		char		hex[PG_SHA256_DIGEST_LENGTH * 2 + 1];

		if (!outbox_sign(secret, body, req->body_len, t, hex, sizeof(hex)))
			elog(ERROR, "could not sign notification " INT64_FORMAT, req->id);
		headers[nheaders++] = psprintf("X-Incident-Signature: t=" INT64_FORMAT ",v1=%s", t, hex);
		explicit_bzero(secret, strlen(secret));
	}
	req->headers = headers;
	req->nheaders = nheaders;
	/* the channel's own (100 ms to 1 minute), not pg_incident.http_timeout */
	req->timeout_ms = Max(timeout_ms, 1);
	req->connect_timeout_ms = req->timeout_ms;
	req->max_bytes = max_bytes;
	/* a redirect would take the signature and the body elsewhere */
	req->max_redirects = 0;
	req->verify_tls = true;
	/* a receiver takes many posts: keep its connection */
	req->fresh_connection = false;
}

/*
 * Claims at most room due deliveries and submits them to the engine, held:
 * the caller releases them (http_engine_release) once the claim has
 * committed, or drops them if it did not, so that no post leaves for a
 * claim that was rolled back. Then reads when the next is due. Returns how
 * many were submitted. Runs in a transaction.
 */
int
outbox_claim(HttpEngine *engine, int room, int max_bytes)
{
	const char *schema = probe_schema();
	char	   *q;
	int			n = 0;

	outbox_last_claim = GetCurrentTimestamp();
	http_engine_hold(engine);
	if (room > 0)
	{
		Oid			argtypes[3] = {INT4OID, INT4OID, INT4OID};
		Datum		args[3];

		args[0] = Int32GetDatum(room);
		/*
		 * An eighth of the engine per channel, and half of it for all
		 * channels together: receivers that hang hold their share, the
		 * other channels go on, and the probes always keep the other half.
		 */
		args[1] = Int32GetDatum(Max(http_engine_slots(engine) / OUTBOX_CHANNEL_SHARE, 1));
		args[2] = Int32GetDatum(Max(http_engine_slots(engine) / 2, 1));
		q = psprintf("SELECT id, url, body, content_type, secret, event_id, timeout_ms,"
					 "       kind, mail_from, recipients, smtp_user, smtp_password"
					 "  FROM %s.incident__notification_claim($1, $2, $3)", schema);
		if (SPI_execute_with_args(q, 3, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not claim the due notifications");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HttpRequest req;

			CHECK_FOR_INTERRUPTS();
			outbox_request(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, max_bytes, &req);
			if (!http_engine_submit(engine, &req))
				break;			/* full: the claim is taken again after its timeout */
			if (req.password != NULL)
				explicit_bzero((char *) req.password, strlen(req.password));
			n++;
		}
	}

	/* the next due time: now again when the engine's room was the limit */
	q = psprintf("SELECT %s.incident__notification_next()", schema);
	if (SPI_execute(q, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read when the next notification is due");
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		outbox_next_at = isnull ? DT_NOEND : DatumGetTimestampTz(d);
	}
	if (room > 0 && n >= room)
		outbox_next_at = GetCurrentTimestamp();
	/*
	 * Never again at once: a row that is due but cannot be claimed (its
	 * channel at its share of the engine) must not make the worker spin.
	 */
	outbox_next_at = Max(outbox_next_at, TimestampTzPlusMilliseconds(outbox_last_claim, OUTBOX_BATCH_MS));
	/*
	 * And at least every SWEEP_MAX_WAIT_MS: rows no commit of this
	 * server's sessions tells of (a COMMIT PREPARED, a crashed delivery's
	 * claim growing stale) are found then.
	 */
	outbox_next_at = Min(outbox_next_at, TimestampTzPlusMilliseconds(outbox_last_claim, SWEEP_MAX_WAIT_MS));
	return n;
}

/* one delivery's outcome, for outbox_record_one */
typedef struct OutboxOutcome
{
	int64		id;
	bool		ok;
	long		status;
	long		retry_after_s;
	const char *error;
	int			retry_max_ms;
	int			dead_after_s;
} OutboxOutcome;

static void
outbox_record_one(void *arg)
{
	OutboxOutcome *o = (OutboxOutcome *) arg;
	Oid			argtypes[7] = {INT8OID, BOOLOID, INT4OID, TEXTOID, INT4OID, INT4OID, INT4OID};
	Datum		args[7];
	char		nulls[7] = "       ";
	char	   *q = psprintf("SELECT %s.incident__notification_done($1, $2, $3, $4, $5, $6, $7)", probe_schema());

	args[0] = Int64GetDatum(o->id);
	args[1] = BoolGetDatum(o->ok);
	args[2] = Int32GetDatum((int32) o->status);
	if (o->ok)
		nulls[3] = 'n';
	args[3] = CStringGetTextDatum(o->error);
	args[4] = Int32GetDatum((int32) o->retry_after_s);
	args[5] = Int32GetDatum(o->retry_max_ms);
	args[6] = Int32GetDatum(o->dead_after_s);
	if (SPI_execute_with_args(q, 7, argtypes, args, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not record notification " INT64_FORMAT, o->id);
}

/*
 * Records the outcome of the deliveries the engine finished, each in a
 * subtransaction: one that cannot be written leaves its row claimed (taken
 * again once the claim is stale) and the others recorded. Returns how many
 * were. Runs in a transaction.
 */
int
outbox_record_results(HttpEngine *engine, int retry_max_ms, int dead_after_s)
{
	HttpResult	res;
	int			n = 0;

	if (http_engine_results_waiting(engine, HTTP_OWNER_NOTIFICATIONS) == 0)
		return 0;
	/* an error (no extension) before a result is taken, so that none is lost */
	(void) probe_schema();
	for (;;)
	{
		OutboxOutcome o;
		StringInfoData error;
		ErrorData  *edata;

		/* before taking a result, so that an interrupt loses none */
		CHECK_FOR_INTERRUPTS();
		if (!http_engine_next_result(engine, HTTP_OWNER_NOTIFICATIONS, &res))
			break;
		/*
		 * A mail that curl sent is accepted (250); a post wants a 2xx. A 2xx
		 * whose body is too long to read is delivered too: the answer is
		 * what counts, and posting again would only send a duplicate.
		 */
		o.ok = (res.failure == HTTP_OK ||
				(res.failure == HTTP_FAIL_TOO_LARGE && res.status >= 200 && res.status < 300)) &&
			(res.status == 250 || (res.status >= 200 && res.status < 300));
		initStringInfo(&error);
		if (!o.ok && res.failure != HTTP_OK)
			appendStringInfo(&error, "%s: %s", http_failure_name(res.failure), res.error);
		else if (!o.ok)
		{
			appendStringInfo(&error, "HTTP %ld", res.status);
			if (res.body != NULL && res.body_kept > 0)
			{
				/* the body may be anything: printable ASCII of its start */
				appendStringInfoString(&error, ": ");
				for (size_t b = 0; b < Min(res.body_kept, OUTBOX_BODY_QUOTE); b++)
					appendStringInfoChar(&error, (res.body[b] >= 0x20 && res.body[b] < 0x7f) ? res.body[b] : ' ');
			}
		}
		o.id = res.id;
		o.status = res.status;
		o.retry_after_s = res.retry_after_s;
		o.error = error.data;
		o.retry_max_ms = retry_max_ms;
		o.dead_after_s = dead_after_s;
		http_result_free(&res);
		edata = probe_try_keep(outbox_record_one, &o);
		if (edata != NULL)
		{
			ereport(WARNING,
					(errmsg("pg_incident worker: could not record delivery " INT64_FORMAT, o.id),
					 errdetail("%s", edata->message)));
			FreeErrorData(edata);
		}
		else
			n++;
	}
	/* a failed delivery is due again: read when at the next claim */
	outbox_next_at = DT_NOBEGIN;
	return n;
}

/*
 * Logs each incident the sweep had to skip because a session holds its row
 * (an UPDATE not yet committed, a SELECT ... FOR UPDATE left open): once
 * when it is first held, and once when it is free again, not at every
 * sweep. held is the sweep's text[] (codes, maybe repeated).
 */
static void
outbox_note_held(Datum held, bool isnull)
{
	/* the codes held at the last sweep, as ",code,code," in TopMemoryContext */
	static char *held_last = NULL;
	StringInfoData now;
	Datum	   *codes = NULL;
	int			ncodes = 0;

	initStringInfo(&now);
	appendStringInfoChar(&now, ',');
	if (!isnull)
		deconstruct_array(DatumGetArrayTypeP(held), TEXTOID, -1, false, TYPALIGN_INT, &codes, NULL, &ncodes);
	for (int i = 0; i < ncodes; i++)
	{
		char	   *code = TextDatumGetCString(codes[i]);
		char	   *key = psprintf(",%s,", code);

		CHECK_FOR_INTERRUPTS();
		if (strstr(now.data, key) != NULL)
			continue;
		appendStringInfo(&now, "%s,", code);
		if (held_last == NULL || strstr(held_last, key) == NULL)
			ereport(LOG,
					(errmsg("pg_incident: incident %s is due for an escalation or a reminder, but another session holds its row",
							code),
					 errhint("An uncommitted change to the incident holds back its pages; incident_long_transactions shows who is idle in transaction.")));
	}
	if (held_last != NULL)
	{
		char	   *p = held_last + 1;
		char	   *end;

		while ((end = strchr(p, ',')) != NULL)
		{
			char	   *code = pnstrdup(p, end - p);
			char	   *key = psprintf(",%s,", code);

			if (strstr(now.data, key) == NULL)
				ereport(LOG,
						(errmsg("pg_incident: incident %s is no longer held by another session",
								code)));
			p = end + 1;
		}
		pfree(held_last);
	}
	held_last = MemoryContextStrdup(TopMemoryContext, now.data);
	pfree(now.data);
}

/*
 * Fires the escalation levels and reminders that are due
 * (incident__sweep), and notes when the next is; returns how many fired.
 * A change no event tells of (an edited escalation policy) is seen within
 * SWEEP_MAX_WAIT_MS.
 */
int
outbox_sweep(void)
{
	char	   *q = psprintf("SELECT fired, next_at, held FROM %s.incident__sweep()", probe_schema());
	bool		isnull;
	Datum		d;
	int			fired;
	TimestampTz latest;

	sweep_last = GetCurrentTimestamp();
	if (SPI_execute(q, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not fire the due escalations and reminders");
	fired = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	latest = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), SWEEP_MAX_WAIT_MS);
	sweep_next_at = isnull ? latest : Min(DatumGetTimestampTz(d), latest);
	/*
	 * A level due but not fired (its incident locked by a session, or its
	 * escalation failing) keeps next_at in the past: look again a little
	 * later, not at once.
	 */
	sweep_next_at = Max(sweep_next_at, TimestampTzPlusMilliseconds(sweep_last, SWEEP_MIN_INTERVAL_MS));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	outbox_note_held(d, isnull);
	return fired;
}

/*
 * A crashed predecessor's deliveries count as not done.
 */
void
outbox_release_claims(void)
{
	char	   *q = psprintf("SELECT %s.incident__notification_release()", probe_schema());

	if (SPI_execute(q, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not release the claimed notifications");
	outbox_next_at = DT_NOBEGIN;
}

/*
 * Deletes a batch of delivered notifications older than retention_s.
 */
void
outbox_prune(int retention_s)
{
	char	   *q;

	if (retention_s <= 0)
		return;
	q = psprintf("SELECT %s.incident__notification_prune(pg_catalog.make_interval(secs => %d))",
				 probe_schema(), retention_s);
	if (SPI_execute(q, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not prune the delivered notifications");
}

/*
 * The hex HMAC-SHA256 of "<t>.<body>" under secret into hex; false if
 * the hash could not be computed.
 */
static bool
outbox_sign(const char *secret, const char *body, size_t body_len, int64 t, char *hex, size_t hexlen)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char		prefix[32];
	int			plen = snprintf(prefix, sizeof(prefix), INT64_FORMAT ".", t);
	bool		ok;

	Assert(hexlen >= sizeof(digest) * 2 + 1);
	if (ctx == NULL)
		return false;
	ok = pg_hmac_init(ctx, (const uint8 *) secret, strlen(secret)) == 0 &&
		pg_hmac_update(ctx, (const uint8 *) prefix, plen) == 0 &&
		pg_hmac_update(ctx, (const uint8 *) body, body_len) == 0 &&
		pg_hmac_final(ctx, digest, sizeof(digest)) == 0;
	pg_hmac_free(ctx);
	if (!ok)
		return false;
	hex[hex_encode((const char *) digest, sizeof(digest), hex)] = '\0';
	explicit_bzero(digest, sizeof(digest));
	return true;
}
