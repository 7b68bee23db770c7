/*-------------------------------------------------------------------------
 *
 * http.h
 *		One libcurl multi engine per process (src/worker/http.c).
 *
 * A process creates one HttpEngine and keeps it for its life. It submits
 * requests up to the engine's concurrency cap and waits on its latch and
 * on curl's sockets at once; curl's sockets are kept in one epoll set of
 * the engine's, so the wait watches one descriptor:
 *
 *		for (;;)
 *		{
 *			CHECK_FOR_INTERRUPTS();
 *			submit while http_engine_capacity_left(e) > 0;
 *			while (http_engine_next_result(e, owner, &res)) { ...; http_result_free(&res); }
 *			http_engine_wait(e, MyLatch, max_ms);	-- latch, sockets, timer
 *			ResetLatch(MyLatch);
 *		}
 *
 * The engine knows nothing of incidents: it fetches URLs (http and https
 * only), or sends a mail (HTTP_METHOD_MAIL: smtp and smtps only), and
 * reports how each went. Judging the status code or the
 * body is the caller's business. Nothing here uses SPI or palloc: the engine
 * lives in malloc'ed memory, and curl's callbacks never raise errors. The
 * functions that may raise one (out of the callbacks) say so.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_INCIDENT_HTTP_H
#define PG_INCIDENT_HTTP_H

#include "datatype/timestamp.h"
#include "storage/latch.h"

/* bytes of a response body that a result keeps, at most */
#define HTTP_BODY_KEEP_MAX	(64 * 1024)

/* size of a result's error text, NUL included (curl's CURL_ERROR_SIZE) */
#define HTTP_ERROR_SIZE		256

/*
 * The engine keeps one queue of results per owner (0 .. HTTP_MAX_OWNERS - 1),
 * the caller's number for whoever takes them, so that the process's probes
 * and its notifications each take their own.
 */
#define HTTP_MAX_OWNERS		2
/* the owner of http_request_init, for a caller with one queue */
#define HTTP_OWNER_DEFAULT	0

typedef enum HttpMethod
{
	HTTP_METHOD_GET,
	HTTP_METHOD_HEAD,
	HTTP_METHOD_POST,
	HTTP_METHOD_MAIL			/* body sent as a mail over smtp:// or smtps:// */
} HttpMethod;

/* how a fetch ended; HTTP_OK whatever the status code */
typedef enum HttpFailure
{
	HTTP_OK,
	HTTP_FAIL_DNS,				/* the host name did not resolve */
	HTTP_FAIL_CONNECT,			/* no TCP connection (refused, unreachable) */
	HTTP_FAIL_TLS,				/* handshake or certificate verification */
	HTTP_FAIL_TIMEOUT,			/* connect_timeout_ms or timeout_ms passed */
	HTTP_FAIL_TOO_LARGE,		/* the body exceeded max_bytes */
	HTTP_FAIL_PROTOCOL,			/* a scheme the method does not allow */
	HTTP_FAIL_REDIRECTS,		/* more than max_redirects redirects */
	HTTP_FAIL_OTHER
} HttpFailure;

/*
 * A request. The engine copies everything it needs at submission; the
 * caller may free the request as soon as http_engine_submit returns. Start
 * from http_request_init(), which sets the defaults.
 */
typedef struct HttpRequest
{
	int64		id;				/* the caller's; echoed in the result */
	int			owner;			/* whose queue the result joins */
	const char *url;
	HttpMethod	method;
	const char *body;			/* POST body, or a mail's text; or NULL */
	size_t		body_len;
	const char *const *headers; /* "Name: value" each, or NULL */
	int			nheaders;
	int			connect_timeout_ms; /* > 0 */
	int			timeout_ms;		/* > 0, whole transfer */
	int64		max_bytes;		/* cap on the body read; 0 = no body at all */
	int			max_redirects;	/* redirects followed; 0 = none */
	bool		verify_tls;		/* check the peer's certificate and name */
	bool		fresh_connection;	/* a connection of its own, closed after it:
									 * not one kept from an earlier request */
	const char *user_agent;		/* NULL for HTTP_DEFAULT_USER_AGENT */
	/* HTTP_METHOD_MAIL: the envelope, and the login (none when NULL) */
	const char *mail_from;
	const char *const *mail_rcpt;
	int			nrcpt;
	const char *username;
	const char *password;
} HttpRequest;

#define HTTP_DEFAULT_USER_AGENT "pg_incident"

/* what became of a request; owns body and final_url until http_result_free */
typedef struct HttpResult
{
	int64		id;
	int			owner;
	HttpFailure failure;
	int			curl_code;		/* CURLcode, for logs; 0 when ok */
	long		status;			/* HTTP status of the last response, 0 if none */
	long		retry_after_s;	/* its Retry-After, in seconds; 0 if none */
	char	   *final_url;		/* after redirects; NULL if unknown */
	double		namelookup_ms;	/* from the start of the transfer to ... */
	double		connect_ms;
	double		appconnect_ms;	/* 0 for plain http */
	double		starttransfer_ms;
	double		total_ms;
	char		error[HTTP_ERROR_SIZE]; /* "" when ok */
	char	   *body;			/* the first body_kept bytes, NUL-terminated, or NULL */
	size_t		body_kept;
	int64		body_bytes;		/* body bytes received, kept or not */
	TimestampTz started_at;		/* submission */
	TimestampTz finished_at;	/* completion seen by the engine */
} HttpResult;

typedef struct HttpEngine HttpEngine;

extern void http_request_init(HttpRequest *req);
extern const char *http_failure_name(HttpFailure failure);

/* NULL when out of memory or curl cannot start; never raises an error */
extern HttpEngine *http_engine_create(int max_concurrent);
extern void http_engine_destroy(HttpEngine *engine);

/*
 * false when the engine is full; a refused URL is accepted and fails at
 * once. Between http_engine_hold and http_engine_release, submitted requests
 * wait, and the release starts them or drops them: for a caller whose
 * requests must leave only if its transaction commits.
 */
extern bool http_engine_submit(HttpEngine *engine, const HttpRequest *req);
extern void http_engine_hold(HttpEngine *engine);
extern void http_engine_release(HttpEngine *engine, bool start);
extern int	http_engine_in_flight(HttpEngine *engine);
extern int	http_engine_capacity_left(HttpEngine *engine);
extern int	http_engine_slots(HttpEngine *engine);
extern bool http_engine_idle(HttpEngine *engine);
extern int	http_engine_results_waiting(HttpEngine *engine, int owner);

/* the waiting; http_engine_wait may raise an error (WaitLatchOrSocket) */
extern long http_engine_timeout_ms(HttpEngine *engine);
extern void http_engine_wait(HttpEngine *engine, Latch *latch, long max_ms);
extern void http_engine_work(HttpEngine *engine);

/* an owner's completed requests, in the order they completed */
extern bool http_engine_next_result(HttpEngine *engine, int owner, HttpResult *out);
extern void http_result_free(HttpResult *result);

#endif							/* PG_INCIDENT_HTTP_H */
