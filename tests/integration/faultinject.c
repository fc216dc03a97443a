/*
 * faultinject.c - an LD_PRELOAD shim for the integration tests: while the
 * file named by $TRANSIT_FAULT_FILE exists and names a function (one name
 * per line: SSL_new, event_new, bufferevent_socket_new), that function
 * fails as it does when memory runs out (returns NULL). Everything else
 * goes to the real library. Built by test_alloc_failures.py.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ssl_st;
struct ssl_ctx_st;
struct event;
struct event_base;
struct bufferevent;
typedef void (*fi_event_cb)(int, short, void *);

static int fi_failing(const char *name)
{
	const char *path = getenv("TRANSIT_FAULT_FILE");
	char text[512], *line;
	size_t n;
	FILE *f;

	if (path == NULL || (f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	for (line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
		if (strcmp(line, name) == 0)
			return 1;
	return 0;
}

struct ssl_st *SSL_new(struct ssl_ctx_st *ctx)
{
	struct ssl_st *(*real)(struct ssl_ctx_st *) =
		(struct ssl_st * (*)(struct ssl_ctx_st *)) dlsym(RTLD_NEXT, "SSL_new");
	return fi_failing("SSL_new") ? NULL : real(ctx);
}

struct event *event_new(struct event_base *base, int fd, short what, fi_event_cb cb, void *arg)
{
	struct event *(*real)(struct event_base *, int, short, fi_event_cb, void *) =
		(struct event * (*)(struct event_base *, int, short, fi_event_cb, void *))
			dlsym(RTLD_NEXT, "event_new");
	return fi_failing("event_new") ? NULL : real(base, fd, what, cb, arg);
}

struct bufferevent *bufferevent_socket_new(struct event_base *base, int fd, int options)
{
	struct bufferevent *(*real)(struct event_base *, int, int) =
		(struct bufferevent * (*)(struct event_base *, int, int))
			dlsym(RTLD_NEXT, "bufferevent_socket_new");
	return fi_failing("bufferevent_socket_new") ? NULL : real(base, fd, options);
}
