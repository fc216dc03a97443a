/*
 * reload.c - see reload.h.
 */
#include "daemon/reload.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl/reload_status.h"
#include "daemon/gen_build.h"
#include "net/listener.h"
#include "policy/backpressure.h"
#include "queue/sched.h"
#include "smtp/server.h"
#include "util/log.h"

extern char **environ;

#define CHECK_TIMEOUT_MS 20000 /* the -n child: a sanitizer build starts slowly */
#define CHECK_OUTPUT_MAX 1000  /* octets of its error lines kept */

/* Lines of the check's stderr joined with "; ", trimmed. */
static void keep_output(char *out, size_t outsz, const char *text, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 3 < outsz; i++) {
		char ch = text[i];
		if (ch == '\n') {
			if (i + 1 < n && o > 0) {
				out[o++] = ';';
				out[o++] = ' ';
			}
			continue;
		}
		out[o++] = (ch >= 0x20 && ch < 0x7f) ? ch : '?';
	}
	out[o] = '\0';
}

/* Run `transitd -n -c path` (the same binary: the same checks as the
 * administrator's check): 0 when it accepts the file, else -1 with its
 * error lines in err. Blocks the loop for the child's run (a reload is
 * rare; bounded by CHECK_TIMEOUT_MS). */
static int check_like_dash_n(const struct daemon *d, char *err, size_t errlen)
{
	char *argv[] = {(char *)d->self, "-n", "-c", (char *)d->conf_path, NULL};
	posix_spawn_file_actions_t fa;
	int p[2], status = 0, rv = -1;
	char text[CHECK_OUTPUT_MAX + 1];
	size_t n = 0;
	pid_t pid;
	struct timespec t0, t1;

	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "cannot check the file: pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	if (posix_spawn(&pid, d->self, &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		close(p[0]);
		close(p[1]);
		snprintf(err, errlen, "cannot check the file: cannot run %s -n", d->self);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = {p[0], POLLIN, 0};
		char chunk[512];
		ssize_t r;
		long waited;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		waited = (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (waited >= CHECK_TIMEOUT_MS) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&pfd, 1, (int)(CHECK_TIMEOUT_MS - waited)) < 0 && errno != EINTR)
			break;
		r = read(p[0], chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (n < CHECK_OUTPUT_MAX) {
			size_t take = (size_t)r < CHECK_OUTPUT_MAX - n ? (size_t)r : CHECK_OUTPUT_MAX - n;
			memcpy(text + n, chunk, take);
			n += take;
		}
	}
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		rv = 0;
	if (rv != 0) {
		keep_output(err, errlen, text, n);
		if (err[0] == '\0')
			snprintf(err, errlen, "%s: refused by transitd -n (status %d)", d->conf_path,
				 status);
	}
	return rv;
}

void daemon_reload_record(struct daemon *d, bool ok, const char *message)
{
	struct reload_status st;
	char err[300];

	memset(&st, 0, sizeof(st));
	st.pid = (long)getpid();
	st.attempt = d->attempts;
	st.generation = d->gen->number;
	st.time = (int64_t)time(NULL);
	st.ok = ok;
	keep_output(st.message, sizeof(st.message), message, strlen(message));
	if (reload_status_write(d->spool, &st, err, sizeof(err)) != 0)
		log_warn("reload status: %s", err);
}

static int reload(struct daemon *d, char *err, size_t errlen)
{
	struct config *c;
	struct conf_gen *g;
	unsigned restart;

	if (d->ls == NULL) {
		snprintf(err, errlen, "transitd is stopping");
		return -1;
	}
	if (check_like_dash_n(d, err, errlen) != 0)
		return -1;
	if ((c = conf_load(d->conf_path)) == NULL) { /* changed since the check */
		snprintf(err, errlen, "%s: refused (see the log)", d->conf_path);
		return -1;
	}
	if ((g = gen_build(c, d->gen->number + 1, err, errlen)) == NULL)
		return -1;
	restart = conf_gen_restart_only_changes(d->gen->conf, g->conf);
	restart += listeners_reconfigure(d->ls, g->conf);
	smtp_server_set_generation(d->srv, g);
	sched_set_generation(d->sched, g);
	backpressure_set_limits(g->conf);
	conf_gen_unref(d->gen);
	d->gen = g; /* the reference gen_build() gave us */
	log_info("reload generation=%" PRIu64 " applied%s (older generations still in use: %u)",
		 g->number, restart ? "; some changes need a restart, see above" : "",
		 conf_gen_alive() - 1);
	return 0;
}

int daemon_reload(struct daemon *d, char *err, size_t errlen)
{
	int rv;

	d->attempts++;
	err[0] = '\0';
	rv = reload(d, err, errlen);
	if (rv != 0)
		log_warn("reload refused, generation=%" PRIu64 " stays: %s", d->gen->number, err);
	daemon_reload_record(d, rv == 0, rv == 0 ? "" : err);
	return rv;
}
