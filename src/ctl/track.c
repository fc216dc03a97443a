/*
 * track.c - see track.h. Streaming: one file open at a time, one line in
 * memory, each printed as soon as it matches (a million events take
 * seconds: bench/track_bench.sh). Files are read in name order, which is
 * time order (log/logdir.h); a file that ends before --since or starts
 * after --until (its name and the next file's say so) is not opened.
 *
 *     transitctl track [--sender S] [--recipient R] [--message-id M]
 *                      [--queue-id Q] [--since T] [--until T] [--event E]
 *                      [--json] [--dir DIR]
 */
#include "ctl/track.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "log/trackfilter.h"
#include "util/xmalloc.h"

#define EXIT_USAGE 2

static int track_usage(const char *why, const char *arg)
{
	fprintf(stderr, "transitctl: track: %s%s%s\n", why, arg ? " " : "", arg ? arg : "");
	fputs("usage: transitctl track [--sender S] [--recipient R] [--message-id M] "
	      "[--queue-id Q] [--since T] [--until T] [--event E] [--json] [--dir DIR]\n",
	      stderr);
	return EXIT_USAGE;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* tracking-YYYYMMDD-HHMMSS-NNNN.jsonl -> "YYYY-MM-DDTHH:MM:SS" (19) */
static bool file_start(const char *name, char out[32])
{
	const char *p = name + strlen("tracking-");

	if (strlen(name) < strlen("tracking-YYYYMMDD-HHMMSS"))
		return false;
	snprintf(out, 32, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2s", p, p + 4, p + 6, p + 9, p + 11, p + 13);
	return true;
}

static char **list_files(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	char **v = NULL;
	size_t cap = 0;
	struct dirent *de;

	*n = 0;
	if (d == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (strncmp(de->d_name, "tracking-", 9) != 0 || l < 7 ||
		    strcmp(de->d_name + l - 6, ".jsonl") != 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[(*n)++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (*n > 0)
		qsort(v, *n, sizeof(*v), name_cmp);
	return v;
}

static const char *str_or_dash(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "-";
}

static void print_human(json_t *o)
{
	static const char *const keys[] = {"connector", "remote_host", "remote_ip", "tls",
					   "size", "status", "reply", "reason", "related_qid",
					   "attempt", "message_id", "session"};
	const char *s;
	json_t *a = json_object_get(o, "recipients");

	printf("%s %-7s %s", str_or_dash(o, "time"), str_or_dash(o, "event"), str_or_dash(o, "qid"));
	if ((s = json_string_value(json_object_get(o, "sender"))) != NULL)
		printf(" from=<%s>", s);
	if ((s = json_string_value(json_object_get(o, "recipient"))) != NULL)
		printf(" to=<%s>", s);
	for (size_t i = 0; json_is_array(a) && i < json_array_size(a); i++)
		printf("%s<%s>", i ? "," : " to=", json_string_value(json_array_get(a, i)));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(o, keys[i]);
		if (json_is_string(v)) {
			const char *t = json_string_value(v);
			printf(strpbrk(t, " \"") ? " %s=\"%s\"" : " %s=%s", keys[i], t);
		} else if (json_is_integer(v)) {
			printf(" %s=%lld", keys[i], (long long)json_integer_value(v));
		}
	}
	putchar('\n');
}

int ctl_track(int argc, char **argv, const char *conf_path)
{
	struct track_filter f;
	const char *dir_opt = NULL;
	bool json = false;
	char dir[4200], path[4500], *line = NULL;
	size_t cap = 0, nfiles = 0, i;
	char **files;
	struct config *c = NULL;
	long long now = (long long)time(NULL);
	unsigned long matched = 0;
	int rv = 0;

	track_filter_init(&f);
	for (i = 1; i < (size_t)argc; i++) {
		const char *o = argv[i], *v = i + 1 < (size_t)argc ? argv[i + 1] : NULL;
		if (strcmp(o, "--json") == 0) {
			json = true;
			continue;
		}
		if (v == NULL)
			return track_usage(o[0] == '-' ? "missing value after" : "unexpected", o);
		i++;
		if (strcmp(o, "--sender") == 0)
			f.sender = v;
		else if (strcmp(o, "--recipient") == 0)
			f.recipient = v;
		else if (strcmp(o, "--message-id") == 0)
			f.message_id = v;
		else if (strcmp(o, "--queue-id") == 0)
			f.qid = v;
		else if (strcmp(o, "--event") == 0)
			f.event = v;
		else if (strcmp(o, "--dir") == 0)
			dir_opt = v;
		else if (strcmp(o, "--since") == 0) {
			if (!track_filter_time(v, now, f.since))
				return track_usage("not a time (2026-12-04T10:00:00Z, 2026-12-04, 2h):",
						   v);
		} else if (strcmp(o, "--until") == 0) {
			if (!track_filter_time(v, now, f.until))
				return track_usage("not a time (2026-12-04T10:00:00Z, 2026-12-04, 2h):",
						   v);
		} else
			return track_usage("unknown option", o);
	}
	if (dir_opt != NULL) {
		snprintf(dir, sizeof(dir), "%s", dir_opt);
	} else {
		if ((c = conf_load(conf_path)) == NULL) {
			fprintf(stderr, "transitctl: cannot load the configuration %s\n", conf_path);
			return 1;
		}
		snprintf(dir, sizeof(dir), "%s/tracking", c->logs.path);
		conf_free(c);
	}
	files = list_files(dir, &nfiles);
	if (files == NULL && errno != 0 && errno != ENOENT) {
		fprintf(stderr, "transitctl: track: cannot read %s: %s\n", dir, strerror(errno));
		return 1;
	}
	for (i = 0; i < nfiles; i++) {
		char start[32], next[32];
		FILE *fp;
		ssize_t n;

		if (f.until[0] && file_start(files[i], start) && strcmp(start, f.until) >= 0)
			break; /* this file and all later ones start after --until */
		if (f.since[0] && f.message_id == NULL && i + 1 < nfiles &&
		    file_start(files[i + 1], next) && strncmp(next, f.since, 19) < 0)
			continue; /* the next file starts before --since: this one ends there */
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if ((fp = fopen(path, "r")) == NULL) {
			if (errno != ENOENT) { /* pruned meanwhile: fine */
				fprintf(stderr, "transitctl: track: %s: %s\n", path, strerror(errno));
				rv = 1;
			}
			continue;
		}
		while ((n = getline(&line, &cap, fp)) > 0) {
			json_t *o;
			size_t len = (size_t)n;
			if (line[len - 1] == '\n')
				len--;
			if (!track_filter_line(&f, line, len, json ? NULL : &o))
				continue;
			matched++;
			if (json) {
				fwrite(line, 1, len, stdout);
				putchar('\n');
			} else {
				print_human(o);
				json_decref(o);
			}
		}
		fclose(fp);
	}
	for (i = 0; i < nfiles; i++)
		free(files[i]);
	free(files);
	free(line);
	track_filter_free(&f);
	if (!json && matched == 0)
		fprintf(stderr, "transitctl: track: no matching events in %s\n", dir);
	return rv;
}
