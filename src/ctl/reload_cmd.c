/*
 * reload_cmd.c - see reload_cmd.h.
 */
#include "ctl/reload_cmd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "ctl/reload_status.h"
#include "util/clock.h"
#include "util/pidlock.h"

#define RELOAD_WAIT_DEFAULT 60 /* s: the daemon checks with `transitd -n` first */
#define RELOAD_POLL_MS 50

static int usage(void)
{
	fprintf(stderr, "usage: transitctl reload [--timeout SECONDS]\n");
	return 2;
}

int ctl_reload(const char *conf_path, int argc, char **argv)
{
	struct config *c;
	struct reload_status before, now;
	char lock[4200];
	uint64_t seen = 0, deadline;
	long timeout = RELOAD_WAIT_DEFAULT;
	pid_t pid;
	int i;

	for (i = 1; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			timeout = strtol(argv[++i], &end, 10);
			if (*end || timeout < 1 || timeout > 3600)
				return usage();
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
	snprintf(lock, sizeof(lock), "%s/transitd.lock", c->server.spool);
	pid = pidlock_holder(lock);
	if (pid <= 0) {
		fprintf(stderr, "transitctl: transitd is not running (no daemon holds %s)\n", lock);
		conf_free(c);
		return 1;
	}
	if (reload_status_read(c->server.spool, &before) == 0 && before.pid == (long)pid)
		seen = before.attempt;
	if (kill(pid, SIGHUP) != 0) {
		fprintf(stderr, "transitctl: cannot signal transitd (pid %ld): %s\n", (long)pid,
			strerror(errno));
		conf_free(c);
		return 1;
	}
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
