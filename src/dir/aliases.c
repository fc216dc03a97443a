/*
 * aliases.c - the aliases file and alias expansion (contract in aliases.h).
 * A small table searched linearly: aliases files are short (hundreds of
 * lines); a file over ALIAS_FILE_MAX bytes is refused.
 */
#include "dir/aliases.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dir/attrs.h"
#include "util/filewatch.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define ALIAS_RELOAD_INTERVAL_MS 1000
#define ALIAS_FILE_MAX (4 * 1024 * 1024)

struct alias {
	char *key;
	char **members;
	size_t n;
	struct dir_attrs attrs; /* the options after the alias */
};

struct alias_table {
	struct alias *a;
	size_t n, cap;
	size_t members;
};

struct alias_db {
	pthread_mutex_t lock;
	char *path;
	struct alias_table table;
	bool loaded, missing;
	int last_errno;
	struct file_watch watch; /* the file as last read (also a bad one) */
	char last_error[256];	    /* to log a bad file once */
};

static void table_free(struct alias_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		for (size_t k = 0; k < t->a[i].n; k++)
			free(t->a[i].members[k]);
		free(t->a[i].members);
		free(t->a[i].key);
	}
	free(t->a);
	memset(t, 0, sizeof(*t));
}

static const struct alias *table_find(const struct alias_table *t, const char *addr)
{
	for (size_t i = 0; i < t->n; i++)
		if (str_casecmp(t->a[i].key, addr) == 0)
			return &t->a[i];
	return NULL;
}

static char *trim(char *s)
{
	char *e;
	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* An address as the table keeps it: local@domain, no blanks, fits. */
static bool address_ok(const char *a)
{
	const char *at = strrchr(a, '@');
	size_t len = strlen(a);

	if (len == 0 || len >= ALIAS_ADDR_MAX || at == NULL || at == a || at[1] == '\0')
		return false;
	for (; *a; a++)
		if ((unsigned char)*a <= ' ' || *a == ',' || *a == ':' || *a == '<' || *a == '>')
			return false;
	return true;
}

/* One logical line (continuations joined). 0, or -1 with why. */
static int parse_logical(struct alias_table *t, char *line, char *why, size_t whysz)
{
	char *colon = strchr(line, ':'), *key, *opts, *p, *tok, *save = NULL;
	struct alias al = {0};

	if (colon == NULL) {
		snprintf(why, whysz, "no ':' after the alias");
		return -1;
	}
	*colon = '\0';
	key = trim(line);
	opts = key + strcspn(key, " \t");
	if (*opts) { /* "alias OPTION...": the alias's attributes (dir/attrs.h) */
		*opts++ = '\0';
		if (!dir_attrs_parse(opts, strlen(opts), true, &al.attrs, why, whysz))
			return -1;
	}
	if (!address_ok(key)) {
		snprintf(why, whysz, "the alias \"%.64s\" is not an address local@domain", key);
		return -1;
	}
	if (table_find(t, key)) {
		snprintf(why, whysz, "the alias %.64s is defined twice", key);
		return -1;
	}
	p = colon + 1;
	for (tok = strtok_r(p, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *m = trim(tok);
		if (!address_ok(m)) {
			snprintf(why, whysz,
				 "member \"%.64s\" of %.64s is not an address local@domain", m,
				 key);
			goto bad;
		}
		al.members = xrealloc(al.members, (al.n + 1) * sizeof(*al.members));
		al.members[al.n++] = xstrdup(m);
	}
	if (al.n == 0) {
		snprintf(why, whysz, "the alias %.64s has no members", key);
		return -1;
	}
	al.key = xstrdup(key);
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->a = xrealloc(t->a, t->cap * sizeof(*t->a));
	}
	t->a[t->n++] = al;
	t->members += al.n;
	return 0;
bad:
	for (size_t k = 0; k < al.n; k++)
		free(al.members[k]);
	free(al.members);
	return -1;
}

/* Parse the whole text. 0, or -1 with *bad_line and why. */
static int table_parse(char *text, struct alias_table *t, unsigned *bad_line, char *why,
		       size_t whysz)
{
	char *logical = NULL;
	size_t llen = 0;
	unsigned lineno = 0, start = 0;
	char *p = text;

	while (p != NULL) {
		char *nl = strchr(p, '\n');
		char *line = p, *s;

		if (nl)
			*nl = '\0';
		p = nl ? nl + 1 : NULL;
		lineno++;
		s = trim(line);
		if (*s == '#' || (*s == '\0' && p == NULL && logical == NULL))
			continue;
		if (*s != '\0' && (line[0] == ' ' || line[0] == '\t')) {
			if (logical == NULL) {
				*bad_line = lineno;
				snprintf(why, whysz, "a continuation line with nothing before");
				return -1;
			}
			logical = xrealloc(logical, llen + strlen(s) + 2);
			logical[llen++] = ' ';
			strcpy(logical + llen, s);
			llen += strlen(s);
			continue;
		}
		if (logical != NULL) {
			if (parse_logical(t, logical, why, whysz) < 0) {
				*bad_line = start;
				free(logical);
				return -1;
			}
			free(logical);
			logical = NULL;
			llen = 0;
		}
		if (*s == '\0')
			continue;
		logical = xstrdup(s);
		llen = strlen(s);
		start = lineno;
	}
	if (logical != NULL) {
		int rc = parse_logical(t, logical, why, whysz);
		free(logical);
		if (rc < 0) {
			*bad_line = start;
			return -1;
		}
	}
	return 0;
}

static void db_reload(struct alias_db *db)
{
	struct alias_table t = {0};
	struct stat st;
	char why[200] = "", msg[256];
	unsigned bad_line = 0;
	char *text;
	size_t got;
	FILE *f = fopen(db->path, "re");
	bool first;

	if (f == NULL) {
		int e = errno;
		if (e != db->last_errno || !db->missing)
			log_warn("aliases %s: cannot open: %s (keeping %zu aliases)", db->path,
				 strerror(e), db->table.n);
		db->last_errno = e;
		db->missing = true;
		return;
	}
	if (fstat(fileno(f), &st) < 0 || st.st_size > ALIAS_FILE_MAX) {
		log_warn("aliases %s: reload failed: %s (keeping %zu aliases)", db->path,
			 st.st_size > ALIAS_FILE_MAX ? "larger than 4 MiB" : strerror(errno),
			 db->table.n);
		fclose(f);
		return;
	}
	text = xcalloc(1, (size_t)st.st_size + 1);
	got = fread(text, 1, (size_t)st.st_size, f);
	text[got] = '\0';
	if (ferror(f)) {
		log_warn("aliases %s: reload failed: read error (keeping %zu aliases)", db->path,
			 db->table.n);
		fclose(f);
		free(text);
		return;
	}
	fclose(f);
	file_watch_note(&db->watch, &st); /* a bad file is not read again until it changes */
	db->missing = false;
	db->last_errno = 0;
	if (table_parse(text, &t, &bad_line, why, sizeof(why)) < 0) {
		snprintf(msg, sizeof(msg), "%s:%u: %s", db->path, bad_line, why);
		log_warn("aliases %s (keeping the %zu aliases loaded before)", msg, db->table.n);
		table_free(&t);
		free(text);
		return;
	}
	free(text);
	first = !db->loaded;
	table_free(&db->table);
	db->table = t;
	db->loaded = true;
	if (first)
		log_debug("aliases %s loaded aliases=%zu members=%zu", db->path, t.n, t.members);
	else
		log_info("aliases %s reloaded aliases=%zu members=%zu", db->path, t.n, t.members);
}

/* With db->lock held: reload when the file changed, at most once a second. */
static void db_refresh(struct alias_db *db)
{
	switch (file_watch_poll(&db->watch, db->path, ALIAS_RELOAD_INTERVAL_MS)) {
	case FILE_WATCH_NOT_YET:
	case FILE_WATCH_SAME:
		return;
	case FILE_WATCH_GONE:
		if (errno == ENOENT && db->missing)
			return; /* still missing: said once already */
		break;
	case FILE_WATCH_CHANGED:
		break;
	}
	db_reload(db);
}

struct alias_db *alias_db_open(const char *path)
{
	struct alias_db *db;

	if (path == NULL || *path == '\0')
		return NULL;
	db = xcalloc(1, sizeof(*db));
	pthread_mutex_init(&db->lock, NULL);
	db->path = xstrdup(path);
	pthread_mutex_lock(&db->lock);
	db_refresh(db);
	pthread_mutex_unlock(&db->lock);
	return db;
}

void alias_db_free(struct alias_db *db)
{
	if (db == NULL)
		return;
	table_free(&db->table);
	pthread_mutex_destroy(&db->lock);
	free(db->path);
	free(db);
}

size_t alias_db_count(struct alias_db *db)
{
	size_t n;

	if (db == NULL)
		return 0;
	pthread_mutex_lock(&db->lock);
	db_refresh(db);
	n = db->table.n;
	pthread_mutex_unlock(&db->lock);
	return n;
}

struct expansion {
	const struct alias_table *t;
	const char *path[ALIAS_DEPTH_MAX + 1]; /* the aliases being expanded, outermost first */
	char (*out)[ALIAS_ADDR_MAX];
	size_t max, n;
	char *why;
	size_t whysz;
};

static enum alias_result expand(struct expansion *x, const struct alias *al, unsigned depth)
{
	if (depth >= ALIAS_DEPTH_MAX) {
		snprintf(x->why, x->whysz, "aliases nested deeper than %d at %s", ALIAS_DEPTH_MAX,
			 al->key);
		return ALIAS_TOO_DEEP;
	}
	for (unsigned d = 0; d < depth; d++)
		if (str_casecmp(x->path[d], al->key) == 0) {
			snprintf(x->why, x->whysz, "alias loop: %s contains itself (via %s)",
				 al->key, x->path[depth - 1]);
			return ALIAS_LOOP;
		}
	x->path[depth] = al->key;
	for (size_t k = 0; k < al->n; k++) {
		const struct alias *sub = table_find(x->t, al->members[k]);
		size_t j;

		if (sub != NULL) {
			enum alias_result r = expand(x, sub, depth + 1);
			if (r != ALIAS_EXPANDED)
				return r;
			continue;
		}
		for (j = 0; j < x->n; j++)
			if (str_casecmp(x->out[j], al->members[k]) == 0)
				break;
		if (j < x->n)
			continue; /* already there: each address once */
		if (x->n >= x->max) {
			snprintf(x->why, x->whysz, "more than %zu addresses", x->max);
			return ALIAS_TOO_MANY;
		}
		str_copy(x->out[x->n++], al->members[k], ALIAS_ADDR_MAX);
	}
	return ALIAS_EXPANDED;
}

enum alias_result alias_db_expand(struct alias_db *db, const char *addr,
				  char (*out)[ALIAS_ADDR_MAX], size_t max, size_t *n,
				  char *why, size_t whysz)
{
	struct expansion x = {.out = out, .max = max, .why = why, .whysz = whysz};
	const struct alias *al;
	enum alias_result r = ALIAS_NONE;

	*n = 0;
	if (whysz)
		why[0] = '\0';
	if (db == NULL)
		return ALIAS_NONE;
	pthread_mutex_lock(&db->lock);
	db_refresh(db);
	x.t = &db->table;
	al = table_find(&db->table, addr);
	if (al != NULL)
		r = expand(&x, al, 0);
	*n = x.n;
	pthread_mutex_unlock(&db->lock);
	return r;
}

bool alias_db_attrs(struct alias_db *db, const char *addr, struct dir_attrs *out)
{
	const struct alias *al;

	if (db == NULL)
		return false;
	pthread_mutex_lock(&db->lock);
	db_refresh(db);
	if ((al = table_find(&db->table, addr)) != NULL)
		*out = al->attrs;
	pthread_mutex_unlock(&db->lock);
	return al != NULL;
}

bool alias_db_is_personal_alias_of(struct alias_db *db, const char *addr, const char *login)
{
	char out[2][ALIAS_ADDR_MAX], why[160];
	size_t n;

	return alias_db_expand(db, addr, out, 2, &n, why, sizeof(why)) == ALIAS_EXPANDED &&
	       n == 1 && str_casecmp(out[0], login) == 0;
}
