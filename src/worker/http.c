/*-------------------------------------------------------------------------
 *
 * http.c
 *		One libcurl multi engine for the life of a process: requests in,
 *		results out, curl's sockets and timer exposed for one wait.
 *
 * The engine holds one CURLM, driven the event-based way: curl tells us
 * through its socket callback which sockets it wants watched and for what,
 * and through its timer callback when it next wants to be called. The
 * socket callback keeps one epoll set of the engine's own up to date
 * (epoll_ctl per change, nothing rebuilt per wait), so the caller waits on
 * a single descriptor, the epoll set's, next to its latch: http_engine_wait
 * does that wait with WaitLatchOrSocket and then calls
 * curl_multi_socket_action for each socket the epoll set reports ready and
 * for the timer when it is due. This is how libpq's OAuth flow drives curl.
 * Nothing polls with curl_multi_perform, and no batch stops the world: each
 * request takes a slot when submitted and frees it when its result is
 * taken, so transfers start and finish continuously up to the concurrency
 * cap.
 *
 * Memory. Everything is malloc'ed and lives as long as the engine; libcurl
 * stays on malloc too. curl's callbacks (socket, timer, write) run inside
 * curl_multi_socket_action, curl_multi_add_handle and
 * curl_multi_remove_handle; they use plain C only (no palloc, no
 * ereport, no PostgreSQL clock), and report trouble through flags that the
 * engine turns into a failure afterwards. The work of the engine's own
 * functions is bounded by the number of slots and of ready sockets.
 *
 * The epoll set makes this file Linux-only, as PostgreSQL's own wait code is
 * on Linux; a port to the BSDs would put a kqueue behind the same functions.
 *
 * Safety. Only http and https are allowed, for the request and for every
 * redirect (CURLOPT_PROTOCOLS_STR and CURLOPT_REDIR_PROTOCOLS_STR, or the
 * older bitmask options), and only smtp and smtps for a mail; a URL with
 * another scheme is refused before any I/O. A mail with a password goes
 * over TLS only (STARTTLS required on smtp://). The body read is capped (max_bytes): past it the transfer stops and
 * fails as too_large. Redirects are followed only up to max_redirects. No
 * signals (CURLOPT_NOSIGNAL): DNS resolution runs in curl's resolver
 * threads, and timeouts come from the timer.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "http.h"

StaticAssertDecl(HTTP_ERROR_SIZE >= CURL_ERROR_SIZE,
				 "HTTP_ERROR_SIZE must hold curl's error buffer");

/* a slot holds one request from submission until its result is taken */
typedef enum HttpSlotState
{
	HTTP_SLOT_FREE,
	HTTP_SLOT_HELD,				/* submitted while held: set up, not started */
	HTTP_SLOT_RUNNING,			/* its easy handle is in the multi handle */
	HTTP_SLOT_DONE				/* result ready, waiting in the done queue */
} HttpSlotState;

typedef struct HttpSlot
{
	HttpSlotState state;
	int			next;			/* next free slot, or next in the done queue */
	CURL	   *easy;
	struct curl_slist *headers;
	struct curl_slist *rcpt;	/* a mail's recipients */
	char	   *upload;			/* a mail's text, read by http_read_cb */
	size_t		upload_len;
	size_t		upload_pos;
	int64		max_bytes;
	size_t		keep_cap;		/* capacity of result.body, NUL excluded */
	bool		too_large;		/* set by the write callback */
	char		reply[160];		/* a mail relay's last reply line, by http_debug_cb */
	HttpResult	result;			/* error is curl's CURLOPT_ERRORBUFFER */
} HttpSlot;

/* ready sockets taken from the epoll set per epoll_wait call */
#define HTTP_EPOLL_BATCH 64

struct HttpEngine
{
	CURLM	   *multi;
	int			nslots;
	HttpSlot   *slots;
	int			free_head;		/* free slots, a stack */
	int			nfree;
	int			running;
	int			done_head[HTTP_MAX_OWNERS]; /* done slots, a FIFO per owner */
	int			done_tail[HTTP_MAX_OWNERS];
	int			ndone_of[HTTP_MAX_OWNERS];
	int			ndone;
	bool		holding;		/* submissions wait for http_engine_release */
	int			held_head;		/* held slots, a FIFO */
	int			held_tail;

	int			epoll_fd;		/* the sockets curl wants watched */
	bool		socket_failed;	/* epoll_ctl failed: curl cannot be told */
	char		socket_error[64];

	bool		timer_set;
	int64		timer_due_us;	/* on http_now_us()'s clock */
	uint64		timer_calls;	/* times the timer callback ran */
};

/* ---- forward declarations ---- */

static int	http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp);
static int	http_timer_cb(CURLM *multi, long timeout_ms, void *userp);
static size_t http_write_cb(char *data, size_t size, size_t nmemb, void *userp);
static size_t http_read_cb(char *buffer, size_t size, size_t nitems, void *userp);
static int	http_debug_cb(CURL *easy, curl_infotype type, char *data, size_t size, void *userp);
static int64 http_now_us(void);
static bool http_scheme_allowed(const char *url, HttpMethod method);
static bool http_setup_easy(HttpSlot *slot, const HttpRequest *req);
static HttpFailure http_failure_of(CURLcode code, const HttpSlot *slot);
static void http_finish(HttpEngine *engine, HttpSlot *slot, CURLcode code);
static void http_queue_done(HttpEngine *engine, int index);
static void http_collect(HttpEngine *engine);
static void http_clear_slot(HttpSlot *slot);
static void http_start(HttpEngine *engine, int index);

/* has curl_global_init been called in this process */
static bool http_curl_initialized = false;

/*
 * Fill a request with the defaults: GET, 10 s, 1 MB, no redirects, TLS
 * verified.
 */
void
http_request_init(HttpRequest *req)
{
	memset(req, 0, sizeof(*req));
	req->method = HTTP_METHOD_GET;
	req->connect_timeout_ms = 10000;
	req->timeout_ms = 10000;
	req->max_bytes = 1024 * 1024;
	req->max_redirects = 0;
	req->verify_tls = true;
}

/*
 * The name of a failure kind, as SQL shows it.
 */
const char *
http_failure_name(HttpFailure failure)
{
	switch (failure)
	{
		case HTTP_OK:
			return "ok";
		case HTTP_FAIL_DNS:
			return "dns";
		case HTTP_FAIL_CONNECT:
			return "connect";
		case HTTP_FAIL_TLS:
			return "tls";
		case HTTP_FAIL_TIMEOUT:
			return "timeout";
		case HTTP_FAIL_TOO_LARGE:
			return "too_large";
		case HTTP_FAIL_PROTOCOL:
			return "protocol";
		case HTTP_FAIL_REDIRECTS:
			return "redirects";
		case HTTP_FAIL_OTHER:
			break;
	}
	return "other";
}

/*
 * Create an engine with room for max_concurrent requests; NULL on failure.
 */
HttpEngine *
http_engine_create(int max_concurrent)
{
	HttpEngine *engine;
	int			i;

	if (max_concurrent < 1)
		return NULL;

	if (!http_curl_initialized)
	{
		if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
			return NULL;
		http_curl_initialized = true;
	}

	engine = calloc(1, sizeof(HttpEngine));
	if (engine == NULL)
		return NULL;
	engine->nslots = max_concurrent;
	engine->slots = calloc(max_concurrent, sizeof(HttpSlot));
	engine->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	engine->multi = curl_multi_init();
	if (engine->slots == NULL || engine->epoll_fd < 0 || engine->multi == NULL)
	{
		if (engine->multi)
			curl_multi_cleanup(engine->multi);
		if (engine->epoll_fd >= 0)
			close(engine->epoll_fd);
		free(engine->slots);
		free(engine);
		return NULL;
	}

	for (i = 0; i < max_concurrent; i++)
	{
		engine->slots[i].state = HTTP_SLOT_FREE;
		engine->slots[i].next = (i + 1 < max_concurrent) ? i + 1 : -1;
	}
	engine->free_head = 0;
	engine->nfree = max_concurrent;
	for (i = 0; i < HTTP_MAX_OWNERS; i++)
		engine->done_head[i] = engine->done_tail[i] = -1;
	engine->held_head = engine->held_tail = -1;

	curl_multi_setopt(engine->multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb);
	curl_multi_setopt(engine->multi, CURLMOPT_SOCKETDATA, engine);
	curl_multi_setopt(engine->multi, CURLMOPT_TIMERFUNCTION, http_timer_cb);
	curl_multi_setopt(engine->multi, CURLMOPT_TIMERDATA, engine);

	return engine;
}

/*
 * Abort whatever is in flight, drop unread results and free the engine.
 */
void
http_engine_destroy(HttpEngine *engine)
{
	int			i;

	if (engine == NULL)
		return;
	for (i = 0; i < engine->nslots; i++)
	{
		HttpSlot   *slot = &engine->slots[i];

		if (slot->state == HTTP_SLOT_RUNNING)
			curl_multi_remove_handle(engine->multi, slot->easy);
		http_clear_slot(slot);
		http_result_free(&slot->result);
	}
	curl_multi_cleanup(engine->multi);
	close(engine->epoll_fd);
	free(engine->slots);
	free(engine);
}

/*
 * Start a request, or, while the engine is held, set it up to start at
 * http_engine_release; false (and nothing started) when every slot is
 * taken.
 */
bool
http_engine_submit(HttpEngine *engine, const HttpRequest *req)
{
	int			index;
	HttpSlot   *slot;

	if (engine->nfree == 0)
		return false;

	index = engine->free_head;
	slot = &engine->slots[index];
	engine->free_head = slot->next;
	engine->nfree--;

	memset(slot, 0, sizeof(*slot));
	slot->next = -1;
	slot->result.id = req->id;
	slot->result.owner = (req->owner >= 0 && req->owner < HTTP_MAX_OWNERS) ? req->owner : 0;
	slot->result.started_at = GetCurrentTimestamp();
	slot->max_bytes = req->max_bytes < 0 ? 0 : req->max_bytes;
	slot->keep_cap = (size_t) Min(slot->max_bytes, (int64) HTTP_BODY_KEEP_MAX);

	if (req->url == NULL || !http_scheme_allowed(req->url, req->method))
	{
		slot->result.failure = HTTP_FAIL_PROTOCOL;
		slot->result.curl_code = CURLE_UNSUPPORTED_PROTOCOL;
		snprintf(slot->result.error, HTTP_ERROR_SIZE,
				 req->method == HTTP_METHOD_MAIL ? "refused URL: only smtp:// and smtps:// are allowed for mail" :
				 "refused URL: only http:// and https:// are allowed");
	}
	else
	{
		slot->result.body = malloc(slot->keep_cap + 1);
		if (slot->result.body == NULL)
			slot->keep_cap = 0;
		else
			slot->result.body[0] = '\0';
		if (!http_setup_easy(slot, req))
		{
			slot->result.failure = HTTP_FAIL_OTHER;
			slot->result.curl_code = CURLE_OUT_OF_MEMORY;
			snprintf(slot->result.error, HTTP_ERROR_SIZE, "could not set up the transfer");
			http_clear_slot(slot);
		}
	}

	if (engine->holding)
	{
		slot->state = HTTP_SLOT_HELD;
		if (engine->held_tail < 0)
			engine->held_head = index;
		else
			engine->slots[engine->held_tail].next = index;
		engine->held_tail = index;
	}
	else
		http_start(engine, index);
	return true;
}

/*
 * From now on, submitted requests are held: none starts until
 * http_engine_release says so. For a caller whose requests must not run
 * unless its transaction commits.
 */
void
http_engine_hold(HttpEngine *engine)
{
	Assert(!engine->holding);
	engine->holding = true;
}

/*
 * Ends a hold: the held requests start (a refused one fails now), or, if
 * not start, are dropped as if never submitted, their slots free again.
 */
void
http_engine_release(HttpEngine *engine, bool start)
{
	int			index = engine->held_head;

	engine->holding = false;
	engine->held_head = engine->held_tail = -1;
	while (index >= 0)
	{
		HttpSlot   *slot = &engine->slots[index];
		int			next = slot->next;

		slot->next = -1;
		if (start)
			http_start(engine, index);
		else
		{
			http_clear_slot(slot);
			http_result_free(&slot->result);
			slot->state = HTTP_SLOT_FREE;
			slot->next = engine->free_head;
			engine->free_head = index;
			engine->nfree++;
		}
		index = next;
	}
}

/*
 * Hands a set-up request to curl, or, if it already failed (a refused URL,
 * no memory), to its owner's done queue.
 */
static void
http_start(HttpEngine *engine, int index)
{
	HttpSlot   *slot = &engine->slots[index];
	CURLMcode	mc;

	if (slot->result.failure != HTTP_OK)
	{
		slot->result.finished_at = GetCurrentTimestamp();
		http_queue_done(engine, index);
		return;
	}
	slot->state = HTTP_SLOT_RUNNING;
	engine->running++;
	mc = curl_multi_add_handle(engine->multi, slot->easy);
	if (mc != CURLM_OK)
	{
		engine->running--;
		slot->result.failure = HTTP_FAIL_OTHER;
		slot->result.curl_code = CURLE_FAILED_INIT;
		snprintf(slot->result.error, HTTP_ERROR_SIZE, "could not start the transfer: %s",
				 curl_multi_strerror(mc));
		http_clear_slot(slot);
		slot->result.finished_at = GetCurrentTimestamp();
		http_queue_done(engine, index);
	}
}

/*
 * Requests whose transfer is running.
 */
int
http_engine_in_flight(HttpEngine *engine)
{
	return engine->running;
}

/*
 * Requests that may be submitted now; a slot frees when its result is taken.
 */
int
http_engine_capacity_left(HttpEngine *engine)
{
	return engine->nfree;
}

/*
 * Requests the engine may have in flight at once.
 */
int
http_engine_slots(HttpEngine *engine)
{
	return engine->nslots;
}

/*
 * Completed requests of an owner whose result has not been taken yet.
 */
int
http_engine_results_waiting(HttpEngine *engine, int owner)
{
	Assert(owner >= 0 && owner < HTTP_MAX_OWNERS);
	return engine->ndone_of[owner];
}

/*
 * Nothing running and no result waiting.
 */
bool
http_engine_idle(HttpEngine *engine)
{
	return engine->running == 0 && engine->ndone == 0;
}

/*
 * In how many ms the engine next needs http_engine_work: -1 for no limit,
 * 0 when it has work now (a failure to hand over, or curl's timer passed).
 * Results waiting do not count: when to take them is the caller's choice.
 */
long
http_engine_timeout_ms(HttpEngine *engine)
{
	int64		left;

	if (engine->socket_failed)
		return 0;
	if (!engine->timer_set)
		return -1;
	left = engine->timer_due_us - http_now_us();
	if (left <= 0)
		return 0;
	/* round up, so as not to wake before the timer is due and spin */
	return (long) Min((left + 999) / 1000, (int64) INT_MAX);
}

/*
 * Wait until the latch is set, one of curl's sockets is ready, curl's
 * timer is due or max_ms passes (-1: no limit), then do curl's work. The
 * postmaster's death ends the process. The caller resets the latch and
 * checks for interrupts. May raise an error (WaitLatchOrSocket), never from
 * a curl callback.
 */
void
http_engine_wait(HttpEngine *engine, Latch *latch, long max_ms)
{
	long		timeout = http_engine_timeout_ms(engine);
	int			events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | WL_SOCKET_READABLE;

	if (max_ms >= 0 && (timeout < 0 || max_ms < timeout))
		timeout = max_ms;
	if (timeout >= 0)
		events |= WL_TIMEOUT;
	if (timeout != 0)
		(void) WaitLatchOrSocket(latch, events, (pgsocket) engine->epoll_fd, timeout,
								 PG_WAIT_EXTENSION);
	http_engine_work(engine);
}

/*
 * Without waiting: tell curl about every socket the epoll set reports
 * ready, run curl's timer if it is due, and collect what finished.
 */
void
http_engine_work(HttpEngine *engine)
{
	struct epoll_event ready[HTTP_EPOLL_BATCH];
	int			still_running;
	int			n;
	int			rounds = engine->nslots + 1;

	/* bounded: each round takes a batch; a busy set cannot keep us here */
	do
	{
		n = epoll_wait(engine->epoll_fd, ready, HTTP_EPOLL_BATCH, 0);
		for (int i = 0; i < n; i++)
		{
			int			mask = 0;

			if (ready[i].events & EPOLLIN)
				mask |= CURL_CSELECT_IN;
			if (ready[i].events & EPOLLOUT)
				mask |= CURL_CSELECT_OUT;
			if (ready[i].events & (EPOLLERR | EPOLLHUP))
				mask |= CURL_CSELECT_ERR;
			curl_multi_socket_action(engine->multi, (curl_socket_t) ready[i].data.fd, mask,
									 &still_running);
		}
	} while (n == HTTP_EPOLL_BATCH && --rounds > 0);

	if (engine->timer_set && engine->timer_due_us <= http_now_us())
	{
		uint64		calls = engine->timer_calls;
		long		next_ms = -1;

		curl_multi_socket_action(engine->multi, CURL_SOCKET_TIMEOUT, 0, &still_running);

		/*
		 * curl calls the timer callback only when its next timeout changes;
		 * if it did not, ask it, rather than keep a timer that has passed.
		 */
		if (engine->timer_calls == calls)
		{
			curl_multi_timeout(engine->multi, &next_ms);
			http_timer_cb(engine->multi, next_ms, engine);
		}
	}
	http_collect(engine);
}

/*
 * Take the owner's oldest completed request; false when none is waiting.
 * The caller owns what *out points to and frees it with http_result_free.
 */
bool
http_engine_next_result(HttpEngine *engine, int owner, HttpResult *out)
{
	int			index;
	HttpSlot   *slot;

	Assert(owner >= 0 && owner < HTTP_MAX_OWNERS);
	index = engine->done_head[owner];
	if (index < 0)
		return false;
	slot = &engine->slots[index];
	engine->done_head[owner] = slot->next;
	if (engine->done_head[owner] < 0)
		engine->done_tail[owner] = -1;
	engine->ndone_of[owner]--;
	engine->ndone--;

	*out = slot->result;
	memset(&slot->result, 0, sizeof(slot->result));
	slot->state = HTTP_SLOT_FREE;
	slot->next = engine->free_head;
	engine->free_head = index;
	engine->nfree++;
	return true;
}

/*
 * Free what a result owns; safe to call twice.
 */
void
http_result_free(HttpResult *result)
{
	free(result->body);
	free(result->final_url);
	result->body = NULL;
	result->final_url = NULL;
	result->body_kept = 0;
}

/* ---- curl's callbacks: plain C only ---- */

/*
 * CURLOPT_READFUNCTION: the next piece of a mail's text.
 */
static size_t
http_read_cb(char *buffer, size_t size, size_t nitems, void *userp)
{
	HttpSlot   *slot = (HttpSlot *) userp;
	size_t		room = size * nitems;
	size_t		left = slot->upload_len - slot->upload_pos;
	size_t		take = left < room ? left : room;

	if (take > 0)
		memcpy(buffer, slot->upload + slot->upload_pos, take);
	slot->upload_pos += take;
	return take;
}

/*
 * CURLOPT_DEBUGFUNCTION of a mail: keeps the last refusal the relay sent,
 * its printable ASCII up to the line end. What curl sends (the login among it)
 * is not looked at.
 */
static int
http_debug_cb(CURL *easy, curl_infotype type, char *data, size_t size, void *userp)
{
	HttpSlot   *slot = (HttpSlot *) userp;
	size_t		n = 0;

	/* a refusal (4xx or 5xx), not the goodbye to the QUIT that follows it */
	if (type != CURLINFO_HEADER_IN || size == 0 || (data[0] != '4' && data[0] != '5'))
		return 0;
	while (n < size && n < sizeof(slot->reply) - 1 && data[n] != '\r' && data[n] != '\n')
	{
		slot->reply[n] = (data[n] >= 0x20 && data[n] < 0x7f) ? data[n] : ' ';
		n++;
	}
	slot->reply[n] = '\0';
	return 0;
}

/*
 * CURLMOPT_SOCKETFUNCTION: keep the epoll set in step with what curl wants
 * watched. socketp is non-NULL once the socket is in the set
 * (curl_multi_assign), so a change costs one epoll_ctl.
 */
static int
http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	HttpEngine *engine = (HttpEngine *) userp;
	struct epoll_event ev;
	int			op;

	if (what == CURL_POLL_REMOVE)
	{
		/* curl may have closed it already, which removed it from the set */
		(void) epoll_ctl(engine->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}

	memset(&ev, 0, sizeof(ev));
	ev.data.fd = fd;
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;

	op = socketp != NULL ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(engine->epoll_fd, op, fd, &ev) < 0)
	{
		/* a descriptor number reused behind our back, either way round */
		if (errno == EEXIST)
			op = EPOLL_CTL_MOD;
		else if (errno == ENOENT)
			op = EPOLL_CTL_ADD;
		else
			op = -1;
		if (op < 0 || epoll_ctl(engine->epoll_fd, op, fd, &ev) < 0)
		{
			snprintf(engine->socket_error, sizeof(engine->socket_error),
					 "could not watch a socket: %s", strerror(errno));
			engine->socket_failed = true;
			return 0;
		}
	}
	if (socketp == NULL)
		curl_multi_assign(engine->multi, fd, engine);
	return 0;
}

/*
 * CURLMOPT_TIMERFUNCTION: remember when curl next wants to be called.
 */
static int
http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	HttpEngine *engine = (HttpEngine *) userp;

	engine->timer_calls++;
	if (timeout_ms < 0)
		engine->timer_set = false;
	else
	{
		engine->timer_set = true;
		engine->timer_due_us = http_now_us() + (int64) timeout_ms * 1000;
	}
	return 0;
}

/*
 * CURLOPT_WRITEFUNCTION: count the body, keep its first bytes, stop past
 * max_bytes.
 */
static size_t
http_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	HttpSlot   *slot = (HttpSlot *) userp;
	size_t		n = size * nmemb;

	slot->result.body_bytes += (int64) n;
	if (slot->result.body != NULL && slot->result.body_kept < slot->keep_cap)
	{
		size_t		room = slot->keep_cap - slot->result.body_kept;
		size_t		take = n < room ? n : room;

		memcpy(slot->result.body + slot->result.body_kept, data, take);
		slot->result.body_kept += take;
		slot->result.body[slot->result.body_kept] = '\0';
	}
	if (slot->result.body_bytes > slot->max_bytes)
	{
		slot->too_large = true;
		return 0;				/* anything but n: curl stops with CURLE_WRITE_ERROR */
	}
	return n;
}

/* ---- helpers ---- */

/*
 * Microseconds on a monotonic clock; plain C, usable in callbacks.
 */
static int64
http_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Does the URL start with http:// or https:// (any case)?
 */
static bool
http_scheme_allowed(const char *url, HttpMethod method)
{
	if (method == HTTP_METHOD_MAIL)
		return pg_strncasecmp(url, "smtp://", 7) == 0 ||
			pg_strncasecmp(url, "smtps://", 8) == 0;
	return pg_strncasecmp(url, "http://", 7) == 0 ||
		pg_strncasecmp(url, "https://", 8) == 0;
}

/*
 * Create and configure the slot's easy handle; false when curl refuses an
 * option or memory runs out.
 */
static bool
http_setup_easy(HttpSlot *slot, const HttpRequest *req)
{
	CURL	   *easy;
	bool		ok = true;
	int			i;

	easy = curl_easy_init();
	if (easy == NULL)
		return false;
	slot->easy = easy;

#define HTTP_SETOPT(opt, val) (ok = ok && curl_easy_setopt(easy, opt, val) == CURLE_OK)

	HTTP_SETOPT(CURLOPT_URL, req->url);
	HTTP_SETOPT(CURLOPT_PRIVATE, (void *) slot);
	HTTP_SETOPT(CURLOPT_ERRORBUFFER, slot->result.error);
	HTTP_SETOPT(CURLOPT_NOSIGNAL, 1L);
	HTTP_SETOPT(CURLOPT_WRITEFUNCTION, http_write_cb);
	HTTP_SETOPT(CURLOPT_WRITEDATA, (void *) slot);
#if LIBCURL_VERSION_NUM >= 0x075500		/* 7.85.0 */
	HTTP_SETOPT(CURLOPT_PROTOCOLS_STR, req->method == HTTP_METHOD_MAIL ? "smtp,smtps" : "http,https");
	HTTP_SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	HTTP_SETOPT(CURLOPT_PROTOCOLS, req->method == HTTP_METHOD_MAIL ? (long) (CURLPROTO_SMTP | CURLPROTO_SMTPS) :
				(long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
	HTTP_SETOPT(CURLOPT_REDIR_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	HTTP_SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long) Max(req->connect_timeout_ms, 1));
	HTTP_SETOPT(CURLOPT_TIMEOUT_MS, (long) Max(req->timeout_ms, 1));
	HTTP_SETOPT(CURLOPT_FOLLOWLOCATION, req->max_redirects > 0 ? 1L : 0L);
	HTTP_SETOPT(CURLOPT_MAXREDIRS, (long) Max(req->max_redirects, 0));
	HTTP_SETOPT(CURLOPT_SSL_VERIFYPEER, req->verify_tls ? 1L : 0L);
	HTTP_SETOPT(CURLOPT_SSL_VERIFYHOST, req->verify_tls ? 2L : 0L);
	HTTP_SETOPT(CURLOPT_USERAGENT, req->user_agent ? req->user_agent : HTTP_DEFAULT_USER_AGENT);
	HTTP_SETOPT(CURLOPT_FRESH_CONNECT, req->fresh_connection ? 1L : 0L);
	HTTP_SETOPT(CURLOPT_FORBID_REUSE, req->fresh_connection ? 1L : 0L);
	/* a Content-Length over the cap fails before the body is read */
	if (slot->max_bytes > 0)
		HTTP_SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) slot->max_bytes);

	switch (req->method)
	{
		case HTTP_METHOD_HEAD:
			HTTP_SETOPT(CURLOPT_NOBODY, 1L);
			break;
		case HTTP_METHOD_POST:
			HTTP_SETOPT(CURLOPT_POST, 1L);
			HTTP_SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (req->body ? req->body_len : 0));
			/* COPYPOSTFIELDS copies: the caller may free its body */
			HTTP_SETOPT(CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
			break;
		case HTTP_METHOD_GET:
			HTTP_SETOPT(CURLOPT_HTTPGET, 1L);
			break;
		case HTTP_METHOD_MAIL:
			HTTP_SETOPT(CURLOPT_MAIL_FROM, req->mail_from ? req->mail_from : "");
			for (i = 0; ok && req->mail_rcpt != NULL && i < req->nrcpt; i++)
			{
				struct curl_slist *grown = curl_slist_append(slot->rcpt, req->mail_rcpt[i]);

				if (grown == NULL)
					ok = false;
				else
					slot->rcpt = grown;
			}
			HTTP_SETOPT(CURLOPT_MAIL_RCPT, slot->rcpt);
			slot->upload_len = req->body ? req->body_len : 0;
			slot->upload = malloc(slot->upload_len + 1);
			if (slot->upload == NULL)
				ok = false;
			else if (slot->upload_len > 0)
				memcpy(slot->upload, req->body, slot->upload_len);
			HTTP_SETOPT(CURLOPT_UPLOAD, 1L);
			HTTP_SETOPT(CURLOPT_READFUNCTION, http_read_cb);
			HTTP_SETOPT(CURLOPT_READDATA, (void *) slot);
			HTTP_SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t) slot->upload_len);
			/* a password goes only over TLS; without one, TLS when offered */
			HTTP_SETOPT(CURLOPT_USE_SSL, (long) (req->password != NULL ? CURLUSESSL_ALL : CURLUSESSL_TRY));
			if (req->username != NULL)
				HTTP_SETOPT(CURLOPT_USERNAME, req->username);
			if (req->password != NULL)
				HTTP_SETOPT(CURLOPT_PASSWORD, req->password);
			/* the relay's replies, for the error of a mail it refused */
			HTTP_SETOPT(CURLOPT_DEBUGFUNCTION, http_debug_cb);
			HTTP_SETOPT(CURLOPT_DEBUGDATA, (void *) slot);
			HTTP_SETOPT(CURLOPT_VERBOSE, 1L);
			break;
	}

	for (i = 0; ok && req->headers != NULL && i < req->nheaders; i++)
	{
		struct curl_slist *grown = curl_slist_append(slot->headers, req->headers[i]);

		if (grown == NULL)
			ok = false;
		else
			slot->headers = grown;
	}
	if (slot->headers != NULL)
		HTTP_SETOPT(CURLOPT_HTTPHEADER, slot->headers);

#undef HTTP_SETOPT

	return ok;
}

/*
 * The failure kind of a finished transfer.
 */
static HttpFailure
http_failure_of(CURLcode code, const HttpSlot *slot)
{
	if (slot->too_large)
		return HTTP_FAIL_TOO_LARGE;
	switch (code)
	{
		case CURLE_OK:
			return HTTP_OK;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
			return HTTP_FAIL_DNS;
		case CURLE_COULDNT_CONNECT:
			return HTTP_FAIL_CONNECT;
		case CURLE_OPERATION_TIMEDOUT:
			return HTTP_FAIL_TIMEOUT;
		case CURLE_FILESIZE_EXCEEDED:
			return HTTP_FAIL_TOO_LARGE;
		case CURLE_UNSUPPORTED_PROTOCOL:
			return HTTP_FAIL_PROTOCOL;
		case CURLE_TOO_MANY_REDIRECTS:
			return HTTP_FAIL_REDIRECTS;
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
		case CURLE_SSL_CRL_BADFILE:
		case CURLE_SSL_ENGINE_NOTFOUND:
		case CURLE_SSL_ENGINE_SETFAILED:
		case CURLE_SSL_ENGINE_INITFAILED:
		case CURLE_USE_SSL_FAILED:
			return HTTP_FAIL_TLS;
		default:
			return HTTP_FAIL_OTHER;
	}
}

/*
 * Record how a running transfer ended, release its handle and queue its
 * result. Not a callback: runs after curl_multi_socket_action returned.
 */
static void
http_finish(HttpEngine *engine, HttpSlot *slot, CURLcode code)
{
	HttpResult *res = &slot->result;
	CURL	   *easy = slot->easy;
	char	   *url = NULL;
	long		status = 0;

	res->curl_code = (int) code;
	res->failure = http_failure_of(code, slot);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	/*
	 * A mail that failed where the relay refused nothing (STARTTLS not
	 * offered, the connection lost) still has the last good reply's code,
	 * 250 or 220: that is no status of the failure.
	 */
	if (code != CURLE_OK && slot->rcpt != NULL && status < 400)
		status = 0;
	res->status = status;
#if LIBCURL_VERSION_NUM >= 0x074200		/* 7.66.0 */
	{
		curl_off_t	retry_after = 0;

		if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
			res->retry_after_s = (long) Min(retry_after, (curl_off_t) 7 * 24 * 3600);
	}
#endif
	if (curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url != NULL)
		res->final_url = strdup(url);

#if LIBCURL_VERSION_NUM >= 0x073d00		/* 7.61.0: the _T variants, in us */
	{
		curl_off_t	t;

#define HTTP_TIME(info, field) \
		(res->field = curl_easy_getinfo(easy, info, &t) == CURLE_OK ? (double) t / 1000.0 : 0.0)
		HTTP_TIME(CURLINFO_NAMELOOKUP_TIME_T, namelookup_ms);
		HTTP_TIME(CURLINFO_CONNECT_TIME_T, connect_ms);
		HTTP_TIME(CURLINFO_APPCONNECT_TIME_T, appconnect_ms);
		HTTP_TIME(CURLINFO_STARTTRANSFER_TIME_T, starttransfer_ms);
		HTTP_TIME(CURLINFO_TOTAL_TIME_T, total_ms);
#undef HTTP_TIME
	}
#else
	{
		double		t;

#define HTTP_TIME(info, field) \
		(res->field = curl_easy_getinfo(easy, info, &t) == CURLE_OK ? t * 1000.0 : 0.0)
		HTTP_TIME(CURLINFO_NAMELOOKUP_TIME, namelookup_ms);
		HTTP_TIME(CURLINFO_CONNECT_TIME, connect_ms);
		HTTP_TIME(CURLINFO_APPCONNECT_TIME, appconnect_ms);
		HTTP_TIME(CURLINFO_STARTTRANSFER_TIME, starttransfer_ms);
		HTTP_TIME(CURLINFO_TOTAL_TIME, total_ms);
#undef HTTP_TIME
	}
#endif

	if (res->failure == HTTP_OK)
		res->error[0] = '\0';
	else if (res->failure == HTTP_FAIL_TOO_LARGE)
		snprintf(res->error, HTTP_ERROR_SIZE,
				 "response body exceeds max_bytes (" INT64_FORMAT " bytes)", slot->max_bytes);
	else if (res->error[0] == '\0')
		strlcpy(res->error, curl_easy_strerror(code), HTTP_ERROR_SIZE);
	/* a mail the relay refused: what it said (a 4xx or 5xx reply) */
	if (res->failure != HTTP_OK && (slot->reply[0] == '4' || slot->reply[0] == '5'))
	{
		size_t		len = strlen(res->error);

		snprintf(res->error + len, HTTP_ERROR_SIZE - len, " (the relay said: %s)", slot->reply);
	}

	curl_multi_remove_handle(engine->multi, easy);
	http_clear_slot(slot);
	engine->running--;
	res->finished_at = GetCurrentTimestamp();
}

/*
 * Append a slot to the done queue.
 */
static void
http_queue_done(HttpEngine *engine, int index)
{
	HttpSlot   *slot = &engine->slots[index];
	int			owner = slot->result.owner;

	slot->state = HTTP_SLOT_DONE;
	slot->next = -1;
	if (engine->done_tail[owner] < 0)
		engine->done_head[owner] = index;
	else
		engine->slots[engine->done_tail[owner]].next = index;
	engine->done_tail[owner] = index;
	engine->ndone_of[owner]++;
	engine->ndone++;
}

/*
 * Move the transfers curl reports finished to the done queue; bounded by
 * the number of slots. If a socket could not join the epoll set, every
 * running transfer fails, since curl can no longer be told what it waits for.
 */
static void
http_collect(HttpEngine *engine)
{
	CURLMsg    *msg;
	int			msgs_left;
	int			budget = engine->nslots;
	int			i;

	while (budget-- > 0 && (msg = curl_multi_info_read(engine->multi, &msgs_left)) != NULL)
	{
		char	   *priv = NULL;
		HttpSlot   *slot;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		slot = (HttpSlot *) priv;
		if (slot == NULL || slot->state != HTTP_SLOT_RUNNING)
			continue;
		http_finish(engine, slot, msg->data.result);
		http_queue_done(engine, (int) (slot - engine->slots));
	}

	if (engine->socket_failed)
	{
		for (i = 0; i < engine->nslots; i++)
		{
			HttpSlot   *slot = &engine->slots[i];

			if (slot->state != HTTP_SLOT_RUNNING)
				continue;
			http_finish(engine, slot, CURLE_OUT_OF_MEMORY);
			strlcpy(slot->result.error, engine->socket_error, HTTP_ERROR_SIZE);
			http_queue_done(engine, i);
		}
		engine->socket_failed = false;
	}
}

/*
 * Release the slot's curl handle and header list (not its result).
 */
static void
http_clear_slot(HttpSlot *slot)
{
	if (slot->easy != NULL)
		curl_easy_cleanup(slot->easy);
	if (slot->headers != NULL)
		curl_slist_free_all(slot->headers);
	if (slot->rcpt != NULL)
		curl_slist_free_all(slot->rcpt);
	if (slot->upload != NULL)
	{
		/* a mail may name people: no copy outlives its transfer */
		explicit_bzero(slot->upload, slot->upload_len);
		free(slot->upload);
	}
	slot->easy = NULL;
	slot->headers = NULL;
	slot->rcpt = NULL;
	slot->upload = NULL;
}
