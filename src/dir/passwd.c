/*
 * passwd.c - the passwd-file user directory (contract in passwd.h).
 *
 * File format (Dovecot passwd-file, compatible with /etc/passwd):
 *     user:password:uid:gid:gecos:home:shell:extra_fields
 * transit reads the first two fields and the extra fields (dir/attrs.h:
 * accept_from=authenticated). The password field is a crypt(3)
 * string, bare or after a {CRYPT}, {BLF-CRYPT}, {SHA256-CRYPT} or
 * {SHA512-CRYPT} scheme prefix; any other scheme ({PLAIN}...) is refused
 * with a warning and that user cannot log in (but still exists as a
 * mailbox). Empty lines and lines starting with '#' are ignored by the
 * lookup table and kept verbatim by the tool side; malformed lines are
 * warned about (file:line) and skipped by the lookup table, and also kept
 * verbatim on a rewrite (they are the administrator's, not ours to drop).
 * New entries are written as "user:{CRYPT}$y$...::::::" with the user
 * name lower-cased, and their extra fields (attrs.h) after the last ':'.
 *
 * Daemon side: an open-addressing hash table keyed by the lower-cased
 * user name, guarded by a mutex (lookups may come from worker threads);
 * the file's identity (device, inode, size, mtime) is re-checked at most
 * once a second and the table rebuilt when it changed. Every reload after
 * the first is logged with the number of users; a reload that fails
 * (cannot open or read, or the file has gone) keeps the previous table
 * and is logged as a warning with the reason. The password check runs
 * outside the lock; unknown users are checked against a fixed dummy yescrypt hash so
 * the work done does not tell whether a user exists.
 *
 * Tool side: every change happens under flock(2) on "<file>.lock": read
 * the whole file, rewrite it to "<file>.tmp.<pid>", fsync, rename over
 * the file, fsync the directory. The file keeps its mode and owner; a new
 * one gets mode 0640. The file's directory must exist.
 */
#include "dir/passwd.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "dir/attrs.h"
#include "dir/ldapdir.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/filewatch.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define PW_USER_MAX 254	     /* RFC 5321 4.5.3.1.3 path minus the brackets */
#define PW_LOCAL_MAX 64	     /* RFC 5321 4.5.3.1.1 */
#define PW_PASSWORD_MAX 1024 /* longer passwords are refused, never truncated */
#define PW_LINE_MAX 8192     /* longer lines are malformed */
#define PW_NEW_MODE 0640
#define PW_RELOAD_INTERVAL_MS 1000

/* Verified for unknown users so they cost the same as known ones; no
 * password is known to match it and the result is ignored anyway. */
static const char pw_dummy_hash[] =
	"$y$j9T$2t7oLwfRS/lIbon.wbNGI1$A6QFZr4oAhBZaGa2S9divxbn.zf4H/KRRvxBka9U9UD";

/* ---- one line of the file --------------------------------------------- */

enum pw_kind { PW_LINE_IGNORED, PW_LINE_ENTRY, PW_LINE_MALFORMED };

struct pw_line {
	const char *user; /* not terminated */
	size_t user_len;
	const char *pass;
	size_t pass_len;
	const char *rest; /* from the ':' after the password to the end; may be "" */
	size_t rest_len;
};

/* Classify line[0..len) (no '\n'; a trailing '\r' is ignored). */
static enum pw_kind pw_parse_line(const char *line, size_t len, struct pw_line *out,
				  const char **why)
{
	const char *colon, *end;
	size_t i;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	if (i == len || line[0] == '#')
		return PW_LINE_IGNORED;
	*why = NULL;
	colon = memchr(line, ':', len);
	if (len > PW_LINE_MAX)
		*why = "line too long";
	else if (memchr(line, '\0', len))
		*why = "NUL byte";
	else if (!colon)
		*why = "no ':' after the user name";
	else if (colon == line)
		*why = "empty user name";
	else if ((size_t)(colon - line) > PW_USER_MAX)
		*why = "user name too long";
	if (*why)
		return PW_LINE_MALFORMED;
	for (i = 0; line + i < colon; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c <= ' ' || c == 0x7f) {
			*why = "space or control character in the user name";
			return PW_LINE_MALFORMED;
		}
	}
	out->user = line;
	out->user_len = (size_t)(colon - line);
	out->pass = colon + 1;
	end = memchr(out->pass, ':', len - out->user_len - 1);
	if (!end)
		end = line + len;
	out->pass_len = (size_t)(end - out->pass);
	out->rest = end;
	out->rest_len = (size_t)(line + len - end);
	return PW_LINE_ENTRY;
}

/* The crypt(3) string inside a password field, or NULL when the field
 * holds nothing transit can verify (empty, locked "*"/"!", other scheme). */
static char *pw_crypt_string(const char *pass, size_t len, const char **why)
{
	static const char *const schemes[] = {"{CRYPT}", "{BLF-CRYPT}", "{SHA256-CRYPT}",
					      "{SHA512-CRYPT}"};
	size_t i;

	*why = NULL;
	if (len > 0 && pass[0] == '{') {
		for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
			size_t sl = strlen(schemes[i]);
			if (len >= sl && str_ncasecmp(pass, schemes[i], sl) == 0) {
				pass += sl;
				len -= sl;
				break;
			}
		}
		if (i == sizeof(schemes) / sizeof(schemes[0])) {
			*why = "unsupported password scheme (use {CRYPT} with a crypt(3) hash)";
			return NULL;
		}
	}
	if (len == 0 || pass[0] == '*' || pass[0] == '!')
		return NULL; /* no password: a mailbox without login */
	return xstrndup(pass, len);
}

/* ---- the lookup table --------------------------------------------------- */

struct pw_entry {
	char *user; /* lower-case */
	char *hash; /* crypt(3) string, or NULL: cannot log in */
	struct dir_attrs attrs; /* from the extra fields */
};

struct pw_table {
	struct pw_entry *e;
	size_t n, cap;
	uint32_t *slot; /* index + 1, 0 = empty; nslot is a power of two */
	size_t nslot;
};

static uint64_t pw_hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static void pw_table_free(struct pw_table *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->e[i].user);
		if (t->e[i].hash) {
			explicit_bzero(t->e[i].hash, strlen(t->e[i].hash));
			free(t->e[i].hash);
		}
	}
	free(t->e);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

/* key must be lower-case. Returns the slot holding key or the empty slot
 * where it would go. */
static size_t pw_table_probe(const struct pw_table *t, const char *key)
{
	size_t mask = t->nslot - 1, i = (size_t)pw_hash_key(key) & mask;

	while (t->slot[i] && strcmp(t->e[t->slot[i] - 1].user, key) != 0)
		i = (i + 1) & mask;
	return i;
}

static void pw_table_grow(struct pw_table *t)
{
	size_t i;

	free(t->slot);
	t->nslot = t->nslot ? t->nslot * 2 : 64;
	t->slot = xcalloc(t->nslot, sizeof(*t->slot));
	for (i = 0; i < t->n; i++)
		t->slot[pw_table_probe(t, t->e[i].user)] = (uint32_t)(i + 1);
}

static const struct pw_entry *pw_table_find(const struct pw_table *t, const char *key)
{
	size_t i;

	if (t->n == 0)
		return NULL;
	i = pw_table_probe(t, key);
	return t->slot[i] ? &t->e[t->slot[i] - 1] : NULL;
}

/* Takes ownership of user and hash. false (nothing taken) on a duplicate. */
static bool pw_table_add(struct pw_table *t, char *user, char *hash,
			 const struct dir_attrs *attrs)
{
	size_t i;

	if (pw_table_find(t, user))
		return false;
	if (t->n >= UINT32_MAX - 1)
		return false;
	if ((t->n + 1) * 2 > t->nslot)
		pw_table_grow(t);
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->e = xrealloc(t->e, t->cap * sizeof(*t->e));
	}
	t->e[t->n].user = user;
	t->e[t->n].hash = hash;
	t->e[t->n].attrs = *attrs;
	i = pw_table_probe(t, user);
	t->slot[i] = (uint32_t)(++t->n);
	return true;
}

/* Lower-cased copy of a user name for lookups; false if it cannot be one. */
static bool pw_key(const char *user, char out[PW_USER_MAX + 1])
{
	size_t len = strnlen(user, PW_USER_MAX + 1);

	if (len == 0 || len > PW_USER_MAX)
		return false;
	memcpy(out, user, len + 1);
	str_lower(out);
	return true;
}

/* The extra fields of an entry (field 8: after the 6th ':' that follows
 * the password) into a. false, with why, for a value not understood. */
static bool pw_extra_fields(const struct pw_line *pl, struct dir_attrs *a, char *why,
			    size_t whysz)
{
	const char *p = pl->rest, *end = pl->rest + pl->rest_len;
	int colons = 0;

	while (p < end && colons < 6)
		if (*p++ == ':')
			colons++;
	if (colons < 6 || p >= end)
		return true;
	return dir_attrs_parse(p, (size_t)(end - p), false, a, why, whysz);
}

/* Build a table from an open file. Malformed lines are warned about. */
static void pw_table_read(FILE *f, const char *path, struct pw_table *t)
{
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, f)) >= 0) {
		struct pw_line pl;
		const char *why;
		char *user, *hash, why_attr[128];
		struct dir_attrs attrs = {0};

		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			n--;
		switch (pw_parse_line(line, (size_t)n, &pl, &why)) {
		case PW_LINE_IGNORED:
			continue;
		case PW_LINE_MALFORMED:
			log_warn("passwd-file %s:%zu: %s, line skipped", path, lineno, why);
			continue;
		case PW_LINE_ENTRY:
			break;
		}
		user = xstrndup(pl.user, pl.user_len);
		str_lower(user);
		hash = pw_crypt_string(pl.pass, pl.pass_len, &why);
		if (why)
			log_warn("passwd-file %s:%zu: %s: user %s cannot log in", path, lineno, why,
				 user);
		if (!pw_extra_fields(&pl, &attrs, why_attr, sizeof(why_attr)))
			log_warn("passwd-file %s:%zu: %s: user %s taken as "
				 "accept_from=authenticated",
				 path, lineno, why_attr, user);
		if (!pw_table_add(t, user, hash, &attrs)) {
			log_warn("passwd-file %s:%zu: duplicate user %s, line skipped", path, lineno,
				 user);
			free(user);
			if (hash) {
				explicit_bzero(hash, strlen(hash));
				free(hash);
			}
		}
	}
	if (line) {
		explicit_bzero(line, cap);
		free(line);
	}
}

/* ---- the daemon side ---------------------------------------------------- */

struct passwd_db {
	pthread_mutex_t lock;
	char *path;
	struct pw_table table;
	bool loaded;	   /* a file was read into table */
	bool missing;	   /* the file was missing at the last check */
	int last_errno;	   /* of the last failed open, to warn once per cause */
	struct file_watch watch; /* the file as last read */
	struct ldapdir *ldap;	    /* users { ldap }: answers instead of the file */
	struct alias_db *aliases;   /* not owned */
};

/* Read the file into a fresh table; keep the old one on any error. */
static void pw_db_reload(struct passwd_db *db)
{
	struct pw_table t = {0};
	struct stat st;
	bool first;
	FILE *f;

	f = fopen(db->path, "re");
	if (!f) {
		int e = errno;

		if (e == ENOENT && !db->loaded) {
			if (!db->missing)
				log_warn("passwd-file %s does not exist: no users", db->path);
			db->missing = true;
		} else if (e == ENOENT) {
			/* it was there: a failed reload, not "every user deleted" */
			if (!db->missing)
				log_warn("passwd-file %s: reload failed: the file has gone (keeping "
					 "%zu users)", db->path, db->table.n);
			db->missing = true;
		} else if (e != db->last_errno) {
			log_warn("passwd-file %s: reload failed: cannot open: %s (keeping %zu users)",
				 db->path, strerror(e), db->table.n);
		}
		db->last_errno = e;
		return;
	}
	if (fstat(fileno(f), &st) < 0) {
		log_warn("passwd-file %s: reload failed: cannot stat: %s (keeping %zu users)",
			 db->path, strerror(errno), db->table.n);
		fclose(f);
		return;
	}
	errno = 0;
	pw_table_read(f, db->path, &t);
	if (ferror(f)) {
		log_warn("passwd-file %s: reload failed: read error: %s (keeping %zu users)",
			 db->path, strerror(errno ? errno : EIO), db->table.n);
		pw_table_free(&t);
		fclose(f);
		return;
	}
	fclose(f);
	first = !db->loaded && !db->missing;
	pw_table_free(&db->table);
	db->table = t;
	db->loaded = true;
	db->missing = false;
	db->last_errno = 0;
	file_watch_note(&db->watch, &st);
	/* the first load is reported by whoever opened the directory
	 * (transitd's start line); every later one is an event to log */
	if (first)
		log_debug("passwd-file %s loaded users=%zu", db->path, t.n);
	else
		log_info("passwd-file %s reloaded users=%zu", db->path, t.n);
}

/* With db->lock held: reload when the file changed, at most once a second. */
static void pw_db_refresh(struct passwd_db *db)
{
	if (db->path == NULL)
		return; /* no file: the LDAP directory answers */
	switch (file_watch_poll(&db->watch, db->path, PW_RELOAD_INTERVAL_MS)) {
	case FILE_WATCH_NOT_YET:
		return;
	case FILE_WATCH_SAME:
		db->missing = false; /* back as it was: nothing to read */
		return;
	case FILE_WATCH_GONE:
		if (errno == ENOENT && db->missing)
			return; /* still missing: said once already */
		break;
	case FILE_WATCH_CHANGED:
		break;
	}
	pw_db_reload(db);
}

struct passwd_db *passwd_db_open(const char *path)
{
	struct passwd_db *db = xcalloc(1, sizeof(*db));

	pthread_mutex_init(&db->lock, NULL);
	db->path = path ? xstrdup(path) : NULL;
	pthread_mutex_lock(&db->lock);
	pw_db_refresh(db);
	pthread_mutex_unlock(&db->lock);
	return db;
}

void passwd_db_free(struct passwd_db *db)
{
	if (!db)
		return;
	pw_table_free(&db->table);
	pthread_mutex_destroy(&db->lock);
	free(db->path);
	free(db);
}

bool passwd_db_exists(struct passwd_db *db, const char *user)
{
	char key[PW_USER_MAX + 1];
	bool found;

	if (db->ldap)
		return ldapdir_cached(db->ldap, user, NULL, 0, NULL) == LDAPDIR_MAILBOX;
	if (!pw_key(user, key))
		return false;
	pthread_mutex_lock(&db->lock);
	pw_db_refresh(db);
	found = pw_table_find(&db->table, key) != NULL;
	pthread_mutex_unlock(&db->lock);
	return found;
}

bool passwd_db_attrs(struct passwd_db *db, const char *user, struct dir_attrs *out)
{
	char key[PW_USER_MAX + 1];
	const struct pw_entry *e;

	if (!pw_key(user, key))
		return false;
	pthread_mutex_lock(&db->lock);
	pw_db_refresh(db);
	if ((e = pw_table_find(&db->table, key)) != NULL)
		*out = e->attrs;
	pthread_mutex_unlock(&db->lock);
	return e != NULL;
}

void passwd_db_set_ldap(struct passwd_db *db, struct ldapdir *ld)
{
	db->ldap = ld;
}

struct ldapdir *passwd_db_ldap(struct passwd_db *db)
{
	return db ? db->ldap : NULL;
}

size_t passwd_db_count(struct passwd_db *db)
{
	size_t n;

	pthread_mutex_lock(&db->lock);
	pw_db_refresh(db);
	n = db->table.n;
	pthread_mutex_unlock(&db->lock);
	return n;
}

/* Constant-time comparison of crypt(password, hash) with hash. */
static bool pw_crypt_matches(const char *password, const char *hash)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	const char *out;
	size_t hlen = strlen(hash);
	bool ok;

	out = crypt_rn(password, hash, cd, (int)sizeof(*cd));
	ok = out && out[0] != '*' && strlen(out) == hlen && CRYPTO_memcmp(out, hash, hlen) == 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

bool passwd_hash_matches(const char *password, const char *hash)
{
	return strnlen(password, PW_PASSWORD_MAX + 1) <= PW_PASSWORD_MAX &&
	       pw_crypt_matches(password, hash);
}

int passwd_db_verify(struct passwd_db *db, const char *user, const char *password)
{
	char key[PW_USER_MAX + 1];
	const struct pw_entry *e = NULL;
	char *hash = NULL;
	bool usable, ok;

	if (db->ldap)
		return ldapdir_verify(db->ldap, user, password);
	if (pw_key(user, key)) {
		pthread_mutex_lock(&db->lock);
		pw_db_refresh(db);
		e = pw_table_find(&db->table, key);
		if (e && e->hash)
			hash = xstrdup(e->hash);
		pthread_mutex_unlock(&db->lock);
	}
	usable = hash && strnlen(password, PW_PASSWORD_MAX + 1) <= PW_PASSWORD_MAX;
	ok = pw_crypt_matches(usable ? password : "", hash ? hash : pw_dummy_hash);
	if (hash) {
		explicit_bzero(hash, strlen(hash));
		free(hash);
	}
	return usable && ok ? 1 : 0;
}

/* ---- hashing ------------------------------------------------------------ */

int passwd_hash(const char *password, char *out, size_t outsz)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	const char *h;
	int rc = -1;

	if (strnlen(password, PW_PASSWORD_MAX + 1) > PW_PASSWORD_MAX)
		return -1;
	if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, (int)sizeof(salt)))
		return -1;
	cd = xcalloc(1, sizeof(*cd));
	h = crypt_rn(password, salt, cd, (int)sizeof(*cd));
	if (h && strncmp(h, "$y$", 3) == 0 && str_copy(out, h, outsz))
		rc = 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

/* ---- the tool side ------------------------------------------------------ */

static bool pw_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Dot-atom: atoms of atext (UTF-8 allowed) separated by single dots. */
static bool pw_dot_atom(const char *s, size_t len, bool domain)
{
	size_t i;

	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (domain ? !(c == '-' || c >= 0x80 || (c >= '0' && c <= '9') ||
				      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
				  : !pw_atext(c)) {
			return false;
		}
	}
	return true;
}

/* A name transitctl may add: local@domain, nothing that breaks the file. */
static bool pw_user_valid(const char *user, char *err, size_t errsz)
{
	char q[PW_USER_MAX * 4 + 16];
	const char *at;
	size_t len = strnlen(user, PW_USER_MAX + 1), i;
	const char *why = NULL;

	for (i = 0; i < len && !why; i++) {
		unsigned char c = (unsigned char)user[i];
		if (c < 0x20 || c == 0x7f)
			why = "control characters are not allowed";
		else if (c == ' ')
			why = "spaces are not allowed";
		else if (c == ':')
			why = "':' is not allowed";
	}
	at = strrchr(user, '@');
	if (why)
		;
	else if (len == 0)
		why = "empty";
	else if (len > PW_USER_MAX)
		why = "longer than 254 bytes";
	else if (user[0] == '#')
		why = "must not start with '#' (a comment line)";
	else if (!at || at == user || at[1] == '\0')
		why = "must look like local@domain";
	else if (memchr(user, '@', (size_t)(at - user)))
		why = "more than one '@'";
	else if ((size_t)(at - user) > PW_LOCAL_MAX)
		why = "local part longer than 64 bytes";
	else if (!pw_dot_atom(user, (size_t)(at - user), false))
		why = "the local part must be a dot-atom (RFC 5322 3.2.3)";
	else if (!pw_dot_atom(at + 1, strlen(at + 1), true))
		why = "the domain must be a host name";
	if (!why)
		return true;
	str_errf(err, errsz, "invalid user name %s: %s", log_quote(user, q, sizeof(q)), why);
	return false;
}

static bool pw_password_valid(const char *password, char *err, size_t errsz)
{
	size_t len = strnlen(password, PW_PASSWORD_MAX + 1);

	if (len == 0)
		str_errf(err, errsz, "empty password refused");
	else if (len > PW_PASSWORD_MAX)
		str_errf(err, errsz, "password longer than %d bytes refused", PW_PASSWORD_MAX);
	else if (strpbrk(password, "\r\n"))
		str_errf(err, errsz, "password with a line break refused");
	else
		return true;
	return false;
}

/* Read the whole file. A missing file is empty (*exists = false). */
static int pw_read_file(const char *path, struct buf *b, struct stat *st, bool *exists,
			char *err, size_t errsz)
{
	char chunk[65536];
	ssize_t n;
	int fd;

	*exists = false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		str_errf(err, errsz, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) < 0) {
		str_errf(err, errsz, "cannot stat %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			str_errf(err, errsz, "cannot read %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		buf_append(b, chunk, (size_t)n);
	}
	explicit_bzero(chunk, sizeof(chunk));
	close(fd);
	*exists = true;
	return 0;
}

static int pw_lock(const char *path, char *err, size_t errsz)
{
	char lockpath[4096];
	int fd;

	if (snprintf(lockpath, sizeof(lockpath), "%s.lock", path) >= (int)sizeof(lockpath)) {
		str_errf(err, errsz, "path too long: %s", path);
		return -1;
	}
	fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		str_errf(err, errsz, "cannot open %s: %s", lockpath, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			str_errf(err, errsz, "cannot lock %s: %s", lockpath, strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

static void pw_sync_dir(const char *path)
{
	if (fsync_parent(path) < 0)
		log_warn("passwd-file %s: fsync of its directory: %s", path, strerror(errno));
}

/* Replace path by content: temp file, fsync, rename. old: the current
 * file's attributes (mode and owner are kept), or NULL for a new file. */
static int pw_write_atomic(const char *path, const struct buf *content, const struct stat *old,
			   char *err, size_t errsz)
{
	char tmp[4096];
	struct stat st;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
		str_errf(err, errsz, "path too long: %s", path);
		return -1;
	}
	(void)unlink(tmp); /* a leftover of a crashed run with our pid; we hold the lock */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		str_errf(err, errsz, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0)
		goto fail;
	if (old && (st.st_uid != old->st_uid || st.st_gid != old->st_gid) &&
	    fchown(fd, old->st_uid, old->st_gid) < 0)
		goto fail;
	if (fchmod(fd, old ? old->st_mode & 07777 : PW_NEW_MODE) < 0)
		goto fail;
	if (write_full(fd, content->data ? content->data : "", content->len) < 0 ||
	    fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	pw_sync_dir(path);
	return 0;
fail:
	str_errf(err, errsz, "cannot write %s: %s", tmp, strerror(errno));
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
	return -1;
}

enum pw_op { PW_OP_ADD, PW_OP_SET, PW_OP_DEL };

/* Copy the file into out, applying op to the entries of key. Returns the
 * number of entries of key seen. */
static size_t pw_rewrite(const char *path, const struct buf *in, enum pw_op op, const char *key,
			 const char *crypted, struct buf *out)
{
	size_t pos = 0, lineno = 0, found = 0;

	while (pos < in->len) {
		const char *line = in->data + pos, *nl;
		size_t len;
		struct pw_line pl;
		const char *why;
		enum pw_kind kind;

		nl = memchr(line, '\n', in->len - pos);
		len = nl ? (size_t)(nl - line) : in->len - pos;
		pos += len + (nl ? 1 : 0);
		lineno++;
		kind = pw_parse_line(line, len, &pl, &why);
		if (kind == PW_LINE_MALFORMED)
			log_warn("passwd-file %s:%zu: %s, line kept as it is", path, lineno, why);
		if (kind == PW_LINE_ENTRY && pl.user_len == strlen(key) &&
		    str_ncasecmp(pl.user, key, pl.user_len) == 0) {
			found++;
			if (op == PW_OP_DEL)
				continue;
			if (op == PW_OP_SET) {
				buf_append(out, pl.user, pl.user_len);
				buf_printf(out, ":{CRYPT}%s", crypted);
				buf_append(out, pl.rest, pl.rest_len);
				buf_putc(out, '\n');
				continue;
			}
		}
		buf_append(out, line, len);
		buf_putc(out, '\n');
	}
	return found;
}

static void pw_buf_wipe(struct buf *b)
{
	if (b->data)
		explicit_bzero(b->data, b->cap);
	buf_free(b);
}

static int pw_edit(const char *path, enum pw_op op, const char *user, const char *password,
		   const char *extra, char *err, size_t errsz)
{
	char key[PW_USER_MAX + 1], crypted[CRYPT_OUTPUT_SIZE] = "", q[PW_USER_MAX * 4 + 16];
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct stat st;
	bool exists;
	size_t found;
	int lockfd, rc = -1;

	if (op == PW_OP_ADD && !pw_user_valid(user, err, errsz))
		return -1;
	if (!pw_key(user, key)) { /* only for names no file line can hold */
		str_errf(err, errsz, "user %s does not exist", log_quote(user, q, sizeof(q)));
		return -1;
	}
	if (op != PW_OP_DEL) {
		if (!pw_password_valid(password, err, errsz))
			return -1;
		if (passwd_hash(password, crypted, sizeof(crypted)) < 0) {
			str_errf(err, errsz, "cannot hash the password with yescrypt");
			return -1;
		}
	}
	if ((lockfd = pw_lock(path, err, errsz)) < 0)
		return -1;
	if (pw_read_file(path, &in, &st, &exists, err, errsz) < 0)
		goto out;
	found = pw_rewrite(path, &in, op, key, crypted, &out);
	log_quote(user, q, sizeof(q));
	if (op == PW_OP_ADD && found) {
		str_errf(err, errsz, "user %s already exists", q);
		goto out;
	}
	if (op != PW_OP_ADD && !found) {
		str_errf(err, errsz, "user %s does not exist", q);
		goto out;
	}
	if (op == PW_OP_ADD)
		buf_printf(&out, "%s:{CRYPT}%s::::::%s\n", key, crypted, extra ? extra : "");
	rc = pw_write_atomic(path, &out, exists ? &st : NULL, err, errsz);
out:
	explicit_bzero(crypted, sizeof(crypted));
	pw_buf_wipe(&in);
	pw_buf_wipe(&out);
	close(lockfd);
	return rc;
}

int passwd_file_add(const char *path, const char *user, const char *password, char *err,
		    size_t errsz)
{
	return pw_edit(path, PW_OP_ADD, user, password, NULL, err, errsz);
}

int passwd_file_add_attrs(const char *path, const char *user, const char *password,
			  const struct dir_attrs *attrs, char *err, size_t errsz)
{
	return pw_edit(path, PW_OP_ADD, user, password, dir_attrs_text(attrs), err, errsz);
}

int passwd_file_set_password(const char *path, const char *user, const char *password, char *err,
			     size_t errsz)
{
	return pw_edit(path, PW_OP_SET, user, password, NULL, err, errsz);
}

int passwd_file_del(const char *path, const char *user, char *err, size_t errsz)
{
	return pw_edit(path, PW_OP_DEL, user, NULL, NULL, err, errsz);
}

int passwd_file_list(const char *path, void (*cb)(const char *user, void *arg), void *arg,
		     char *err, size_t errsz)
{
	struct buf in = BUF_INIT;
	struct stat st;
	bool exists;
	size_t pos = 0, lineno = 0;

	if (pw_read_file(path, &in, &st, &exists, err, errsz) < 0)
		return -1;
	while (pos < in.len) {
		const char *line = in.data + pos, *nl;
		size_t len;
		struct pw_line pl;
		const char *why;
		char *user;

		nl = memchr(line, '\n', in.len - pos);
		len = nl ? (size_t)(nl - line) : in.len - pos;
		pos += len + (nl ? 1 : 0);
		lineno++;
		switch (pw_parse_line(line, len, &pl, &why)) {
		case PW_LINE_IGNORED:
			break;
		case PW_LINE_MALFORMED:
			log_warn("passwd-file %s:%zu: %s, line skipped", path, lineno, why);
			break;
		case PW_LINE_ENTRY:
			user = xstrndup(pl.user, pl.user_len);
			cb(user, arg);
			free(user);
			break;
		}
	}
	pw_buf_wipe(&in);
	return 0;
}

void passwd_db_set_aliases(struct passwd_db *db, struct alias_db *aliases)
{
	db->aliases = aliases;
}

struct alias_db *passwd_db_aliases(struct passwd_db *db)
{
	return db ? db->aliases : NULL;
}
