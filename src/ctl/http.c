/*
 * http.c - see http.h. libmicrohttpd does the HTTP (RFC 9110/9112); this
 * file only maps two paths to two renderers and hands data between the
 * loop thread and the HTTP thread.
 */
#include "ctl/http.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <microhttpd.h>

#include "util/log.h"
#include "util/metrics.h"
#include "util/xmalloc.h"

#define HTTP_MAX_CONNECTIONS 16	     /* in total */
#define HTTP_MAX_PER_IP 4	     /* from one address */
#define HTTP_IDLE_TIMEOUT 10	     /* seconds a connection may stay idle */
#define HTTP_CONN_MEMORY (32 * 1024) /* request buffer per connection */
#define HTTP_SNAPSHOT_WAIT_MS 2000   /* a request waits this long for the loop */

struct http_server {
	struct MHD_Daemon *mhd;
	struct event *ev_fill; /* activated from the HTTP thread */
	http_fill_cb fill;
	void *arg;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned long wanted, made; /* snapshot generations, under lock */
	bool detail_wanted;	    /* a waiting request wants the queue by next hop */
	bool stopping;
	struct status_snapshot snap; /* the last one, under lock */
};

/* Publish the gauges of a snapshot on /metrics. */
static void set_gauges(const struct status_snapshot *s)
{
	metrics_set(&metric_queue, "ready", NULL, (int64_t)s->queue.ready);
	metrics_set(&metric_queue, "active", NULL, (int64_t)s->queue.active);
	metrics_set(&metric_queue, "deferred", NULL, (int64_t)s->queue.deferred);
	metrics_set(&metric_sessions, NULL, NULL, (int64_t)s->sessions);
	metrics_set(&metric_backpressure, NULL, NULL,
		    s->backpressure == NULL		      ? 0
		    : strcmp(s->backpressure, "high") == 0   ? 2
		    : strcmp(s->backpressure, "medium") == 0 ? 1
							     : 0);
}

/* Loop thread: take a snapshot for the requests waiting. */
static void fill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *h = arg;
	struct status_snapshot *s = xcalloc(1, sizeof(*s));
	unsigned long gen;
	(void)fd;
	(void)what;

	pthread_mutex_lock(&h->lock);
	gen = h->wanted;
	s->detail = h->detail_wanted;
	h->detail_wanted = false;
	pthread_mutex_unlock(&h->lock);
	h->fill(h->arg, s);
	s->taken = time(NULL);
	s->nrecent = sched_recent_copy(s->recent, SCHED_RECENT);
	set_gauges(s);
	pthread_mutex_lock(&h->lock);
	h->snap = *s;
	if (gen > h->made)
		h->made = gen;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	free(s);
}

/* HTTP thread: ask the loop for a snapshot and wait for it (bounded);
 * copy the newest one into out. */
static void fresh_snapshot(struct http_server *h, bool detail, struct status_snapshot *out)
{
	struct timespec until;
	unsigned long gen;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += HTTP_SNAPSHOT_WAIT_MS / 1000;
	until.tv_nsec += (long)(HTTP_SNAPSHOT_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&h->lock);
	gen = ++h->wanted;
	h->detail_wanted |= detail;
	pthread_mutex_unlock(&h->lock);
	event_active(h->ev_fill, EV_TIMEOUT, 0);
	pthread_mutex_lock(&h->lock);
	while (h->made < gen && !h->stopping)
		if (pthread_cond_timedwait(&h->cond, &h->lock, &until) == ETIMEDOUT)
			break;
	*out = h->snap;
	pthread_mutex_unlock(&h->lock);
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned code, const char *type,
				 struct buf *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(body->len, body->data, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'none'; style-src 'unsafe-inline'");
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct http_server *h = cls;
	struct buf body = BUF_INIT;
	enum MHD_Result ret;
	(void)version;
	(void)upload_data;

	if (*con_cls == NULL) { /* first call: headers only */
		*con_cls = h;
		return MHD_YES;
	}
	if (*upload_data_size != 0) { /* a request body: nothing here takes one */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		buf_puts(&body, "only GET\n");
		ret = send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", &body);
	} else if (strcmp(url, "/metrics") == 0) {
		struct status_snapshot *s = xcalloc(1, sizeof(*s));
		fresh_snapshot(h, false, s); /* refreshes the gauges */
		free(s);
		metrics_render(&body);
		ret = send_text(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", &body);
	} else if (strcmp(url, "/status") == 0 || strcmp(url, "/") == 0) {
		struct status_snapshot *s = xcalloc(1, sizeof(*s));
		fresh_snapshot(h, true, s);
		status_page_render(s, &body);
		free(s);
		ret = send_text(conn, MHD_HTTP_OK, "text/html; charset=utf-8", &body);
	} else {
		buf_puts(&body, "not found: try /metrics or /status\n");
		ret = send_text(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", &body);
	}
	buf_free(&body);
	return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_warn("http: %s", msg);
}

struct http_server *http_start(const struct config *c, struct event_base *base, http_fill_cb fill,
			       void *arg, char *err, size_t errsz)
{
	struct http_server *h = xcalloc(1, sizeof(*h));
	pthread_condattr_t ca;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	h->fill = fill;
	h->arg = arg;
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	if ((h->ev_fill = event_new(base, -1, 0, fill_cb, h)) == NULL) {
		snprintf(err, errsz, "http: event_new failed");
		http_stop(h);
		return NULL;
	}
	if (c->control.http.ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->mhd = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR,
		(const struct sockaddr *)&c->control.http.ss, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)HTTP_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		(unsigned)HTTP_MAX_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY, MHD_OPTION_END);
	if (h->mhd == NULL) {
		snprintf(err, errsz, "control.http %s: cannot listen (address in use or not local?)",
			 c->control.http.text);
		http_stop(h);
		return NULL;
	}
	log_info("http listening on %s (/metrics, /status)", c->control.http.text);
	return h;
}

void http_stop(struct http_server *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true; /* a request waiting for the loop returns now */
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	if (h->ev_fill)
		event_free(h->ev_fill);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
