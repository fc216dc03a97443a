/*
 * status_page.c - see status_page.h. Plain HTML5 with inline CSS only;
 * the HTTP layer adds a Content-Security-Policy that forbids scripts, so
 * even a missed escape could not run one.
 */
#include "ctl/status_page.h"

#include <stdio.h>
#include <string.h>

#include "ctl/queue_view.h"

void status_html_escape(struct buf *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': buf_puts(out, "&amp;"); break;
		case '<': buf_puts(out, "&lt;"); break;
		case '>': buf_puts(out, "&gt;"); break;
		case '"': buf_puts(out, "&quot;"); break;
		case '\'': buf_puts(out, "&#39;"); break;
		default:
			if ((unsigned char)*s < 0x20 && *s != '\t')
				buf_putc(out, ' '); /* control characters: nothing to show */
			else
				buf_putc(out, *s);
		}
	}
}

static void cell(struct buf *out, const char *s)
{
	buf_puts(out, "<td>");
	status_html_escape(out, s);
	buf_puts(out, "</td>");
}

static void utc(time_t t, char *out, size_t outsz)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, outsz, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		snprintf(out, outsz, "%lld", (long long)t);
}

static void render_queue(const struct status_snapshot *st, struct buf *out)
{
	const struct sched_stats *q = &st->queue;
	char age[32];
	size_t i;

	buf_printf(out, "<h2>Queue</h2>\n<p id=\"queue-states\">ready %zu, active %zu, deferred %zu</p>\n",
		   q->ready, q->active, q->deferred);
	buf_printf(out, "<h3>By next hop (%zu%s)</h3>\n", q->nhops,
		   q->nhops > q->nshown ? ", the largest shown" : "");
	buf_puts(out, "<table id=\"next-hops\"><tr><th>next hop</th><th>messages</th>"
		      "<th>recipients</th><th>oldest</th></tr>\n");
	for (i = 0; i < q->nshown; i++) {
		const struct sched_hop_stats *h = &q->hops[i];
		buf_puts(out, "<tr>");
		cell(out, h->key);
		buf_printf(out, "<td>%zu</td><td>%zu</td>", h->messages, h->recipients);
		queue_view_age((long long)(st->taken - h->oldest), age, sizeof(age));
		cell(out, age);
		buf_puts(out, "</tr>\n");
	}
	buf_puts(out, "</table>\n");
}

static void render_recent(const struct status_snapshot *st, struct buf *out)
{
	char when[32];
	size_t i;

	buf_printf(out, "<h2>Recent failures (last %d)</h2>\n", SCHED_RECENT);
	buf_puts(out, "<table id=\"recent-failures\"><tr><th>time</th><th>outcome</th><th>queue id</th>"
		      "<th>sender</th><th>recipient</th><th>connector</th><th>status</th>"
		      "<th>reason</th></tr>\n");
	for (i = 0; i < st->nrecent; i++) {
		const struct sched_recent *r = &st->recent[i];
		utc(r->when, when, sizeof(when));
		buf_puts(out, "<tr>");
		cell(out, when);
		cell(out, r->kind);
		cell(out, r->qid);
		cell(out, r->sender[0] ? r->sender : "<>");
		cell(out, r->rcpt);
		cell(out, r->via);
		cell(out, r->status);
		cell(out, r->diag);
		buf_puts(out, "</tr>\n");
	}
	buf_puts(out, "</table>\n");
}

static void render_certs(const struct status_snapshot *st, struct buf *out)
{
	char when[32];
	size_t i;

	buf_puts(out, "<h2>Certificates</h2>\n<table id=\"certificates\"><tr><th>connector</th>"
		      "<th>subject</th><th>expires</th><th>days left</th></tr>\n");
	for (i = 0; i < st->ncerts; i++) {
		const struct status_cert *c = &st->certs[i];
		long long left = ((long long)c->not_after - (long long)st->taken) / 86400;
		utc(c->not_after, when, sizeof(when));
		buf_printf(out, "<tr%s>", left < 30 ? " class=\"warn\"" : "");
		cell(out, c->connector);
		cell(out, c->subject);
		cell(out, when);
		buf_printf(out, "<td>%lld</td></tr>\n", left);
	}
	buf_puts(out, "</table>\n");
}

void status_page_render(const struct status_snapshot *st, struct buf *out)
{
	char when[32], up[32];

	utc(st->taken, when, sizeof(when));
	queue_view_age((long long)(st->taken - st->started), up, sizeof(up));
	buf_puts(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		      "<title>transit status</title><style>"
		      "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
		      "td,th{border:1px solid #999;padding:2px 6px;text-align:left}"
		      ".warn{background:#fdd}</style></head><body>\n<h1>transit ");
	status_html_escape(out, st->fqdn);
	buf_puts(out, "</h1>\n<p>version ");
	status_html_escape(out, st->version);
	buf_puts(out, ", node ");
	status_html_escape(out, st->node);
	buf_printf(out, ", up %s, at %s</p>\n", up, when);
	buf_printf(out, "<p id=\"backpressure\">back pressure: <b>%s</b>; SMTP sessions open: %u</p>\n",
		   st->backpressure ? st->backpressure : "unknown", st->sessions);
	render_queue(st, out);
	render_recent(st, out);
	render_certs(st, out);
	buf_puts(out, "</body></html>\n");
}
