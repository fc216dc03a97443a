/*
 * reload_cmd.c - see reload_cmd.h.
 */
#include "ctl/reload_cmd.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "ctl/client.h"
#include "ctl/reload_status.h"
#include "util/clock.h"

#define RELOAD_WAIT_DEFAULT 60 /* s: the daemon checks with `transitd -n` first */
#define RELOAD_POLL_MS 50

static int usage(void)
{
	fprintf(stderr, "usage: transitctl reload [--timeout SECONDS] [--json]\n");
	return 2;
}

int ctl_reload(const char *conf_path, int argc, char **argv)
{
	struct config *c;
	struct reload_status before, now;
	char err[1024];
	json_t *reply = NULL;
	bool have_before;
	uint64_t seen = 0, deadline;
	long timeout = RELOAD_WAIT_DEFAULT;
	pid_t pid;
	bool json = false;
	int i;

	for (i = 1; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			timeout = strtol(argv[++i], &end, 10);
			if (*end || timeout < 1 || timeout > 3600)
				return usage();
		} else if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else {
			return usage();
		}
	}
	/* The file must load here too: its errors (file:line) are printed by
	 * conf_load, and the spool it names is where the daemon is found. */
	if ((c = conf_load(conf_path)) == NULL) {
		fprintf(stderr, "transitctl: reload refused: %s does not load (see above); the "
				"running transitd keeps its configuration\n", conf_path);
		return 1;
	}
	/* the record before asking: the answer is the next attempt of the
	 * daemon that answers */
	have_before = reload_status_read(c->server.spool, &before) == 0;
	switch (ctl_request(c, "reload", NULL, &reply, err, sizeof(err))) {
	case CTL_OK:
		break;
	case CTL_NOT_RUNNING:
		fprintf(stderr, "transitctl: %s\n", err);
		conf_free(c);
		return 1;
	default:
		fprintf(stderr, "transitctl: reload: %s\n", err);
		conf_free(c);
		return 1;
	}
	pid = (pid_t)json_integer_value(json_object_get(reply, "pid"));
	json_decref(reply);
	if (have_before && before.pid == (long)pid)
		seen = before.attempt;
	deadline = clock_mono_ms() + (uint64_t)timeout * 1000;
	for (;;) {
		const struct timespec pause = {0, RELOAD_POLL_MS * 1000000L};
		if (reload_status_read(c->server.spool, &now) == 0 && now.pid == (long)pid &&
		    now.attempt > seen)
			break;
		if (clock_mono_ms() >= deadline) {
			fprintf(stderr, "transitctl: transitd (pid %ld) did not report a reload within "
					"%lds; see its log\n", (long)pid, timeout);
			conf_free(c);
			return 1;
		}
		nanosleep(&pause, NULL);
	}
	conf_free(c);
	if (json) { /* the outcome as the daemon recorded it; errors above stay text */
		json_t *o = json_pack("{s:b, s:I, s:I, s:s}", "ok", now.ok, "generation",
				      (json_int_t)now.generation, "pid", (json_int_t)now.pid,
				      "message", now.message);
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(o);
		return now.ok ? 0 : 1;
	}
	if (!now.ok) {
		fprintf(stderr, "transitctl: reload refused: %s\n", now.message);
		fprintf(stderr, "transitctl: transitd keeps configuration generation %llu\n",
			(unsigned long long)now.generation);
		return 1;
	}
	printf("transitd reloaded: configuration generation %llu\n",
	       (unsigned long long)now.generation);
	return 0;
}
