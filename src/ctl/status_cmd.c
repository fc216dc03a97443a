/* status_cmd.c - see status_cmd.h. */
#include "ctl/status_cmd.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl/client.h"
#include "ctl/queue_view.h"

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "-";
}

static long long num(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* Keys printed above; the rest (hooks: certificates, last check) are
 * printed generically below them. */
static const char *const known[] = {"ok", "version", "node", "fqdn", "started", "uptime_seconds",
				     "sessions", "receive_connectors", "send_connectors", "queue",
				     "suspended", "back_pressure", NULL};

static bool is_known(const char *k)
{
	size_t i;
	for (i = 0; known[i]; i++)
		if (strcmp(known[i], k) == 0)
			return true;
	return false;
}

static void print_text(const json_t *st)
{
	const json_t *q = json_object_get(st, "queue"), *v, *a;
	const char *key;
	char up[24];
	size_t i;

	queue_view_age(num(st, "uptime_seconds"), up, sizeof(up));
	printf("transitd %s  node %s  fqdn %s\n", str(st, "version"), str(st, "node"), str(st, "fqdn"));
	printf("started      %s (up %s)\n", str(st, "started"), up);
	printf("back pressure %s\n", str(st, "back_pressure"));
	printf("queue        %lld messages: %lld active, %lld deferred, %lld frozen, %lld held\n",
	       num(q, "total"), num(q, "active"), num(q, "deferred"), num(q, "frozen"),
	       num(q, "held"));
	a = json_object_get(st, "suspended");
	if (json_array_size(a) > 0) {
		printf("suspended   ");
		json_array_foreach(a, i, v)
			printf(" %s", json_string_value(v));
		printf("\n");
	}
	printf("sessions     %lld\n", num(st, "sessions"));
	json_array_foreach(json_object_get(st, "receive_connectors"), i, v) {
		const json_t *b;
		size_t k;
		printf("receive      %-16s %4lld connections ", str(v, "name"), num(v, "connections"));
		json_array_foreach(json_object_get(v, "bindings"), k, b)
			printf(" %s", json_string_value(b));
		printf("\n");
	}
	json_array_foreach(json_object_get(st, "send_connectors"), i, v)
		printf("send         %-16s %s\n", str(v, "name"),
		       json_is_true(json_object_get(v, "enabled")) ? "enabled" : "disabled");
	json_object_foreach((json_t *)st, key, v) {
		char *s;
		if (is_known(key))
			continue;
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		printf("%-12s %s\n", key, s ? s : "?");
		free(s);
	}
}

int status_main(const struct config *c, int argc, char **argv)
{
	bool json = false;
	json_t *reply;
	char err[1024];
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else {
			fprintf(stderr, "transitctl: usage: transitctl status [--json]\n");
			return 2;
		}
	}
	if (ctl_request(c, "status", NULL, &reply, err, sizeof(err)) != CTL_OK) {
		fprintf(stderr, "transitctl: %s\n", err);
		return 1;
	}
	json_object_del(reply, "ok");
	if (json) {
		char *s = json_dumps(reply, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			puts(s);
		free(s);
	} else {
		print_text(reply);
	}
	json_decref(reply);
	return fflush(stdout) == 0 ? 0 : 1;
}
