/*
 * reload_status.c - see reload_status.h.
 */
#include "ctl/reload_status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "util/str.h"

static int status_path(const char *spool, const char *suffix, char *out, size_t outsz)
{
	return (size_t)snprintf(out, outsz, "%s/reload.status%s", spool, suffix) < outsz ? 0 : -1;
}

int reload_status_write(const char *spool, const struct reload_status *st, char *err,
			size_t errlen)
{
	char path[4200], tmp[4200];
	json_t *o;
	int r;

	if (status_path(spool, "", path, sizeof(path)) != 0 ||
	    status_path(spool, ".tmp", tmp, sizeof(tmp)) != 0) {
		snprintf(err, errlen, "spool path too long");
		return -1;
	}
	o = json_pack("{s:I, s:I, s:I, s:I, s:s, s:s}", "pid", (json_int_t)st->pid, "attempt",
		      (json_int_t)st->attempt, "generation", (json_int_t)st->generation, "time",
		      (json_int_t)st->time, "result", st->ok ? "ok" : "error", "message",
		      st->message);
	if (o == NULL) {
		snprintf(err, errlen, "cannot build the status (message not UTF-8?)");
		return -1;
	}
	r = json_dump_file(o, tmp, JSON_COMPACT);
	json_decref(o);
	if (r != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int reload_status_read(const char *spool, struct reload_status *st)
{
	char path[4200];
	json_t *o;
	json_int_t pid, attempt, gen, t;
	const char *result, *message;
	int rv = -1;

	if (status_path(spool, "", path, sizeof(path)) != 0)
		return -1;
	if ((o = json_load_file(path, 0, NULL)) == NULL)
		return -1;
	if (json_unpack(o, "{s:I, s:I, s:I, s:I, s:s, s:s}", "pid", &pid, "attempt", &attempt,
			"generation", &gen, "time", &t, "result", &result, "message",
			&message) == 0 &&
	    attempt >= 0 && gen >= 0) {
		memset(st, 0, sizeof(*st));
		st->pid = (long)pid;
		st->attempt = (uint64_t)attempt;
		st->generation = (uint64_t)gen;
		st->time = (int64_t)t;
		st->ok = strcmp(result, "ok") == 0;
		str_copy(st->message, message, sizeof(st->message));
		rv = 0;
	}
	json_decref(o);
	return rv;
}
