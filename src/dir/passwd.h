/*
 * passwd.h - the passwd-file user directory, in the format Dovecot's
 * passwd-file driver reads:
 *     alice@example.test:{CRYPT}$y$j9T$...:::::: 
 * (user:password:uid:gid:gecos:home:shell:extra; transit uses the
 * first two fields and the extra fields' accept_from (dir/attrs.h), and
 * keeps the others when it rewrites the file).
 * Passwords are crypt(3) hashes from libxcrypt: yescrypt ("$y$") by
 * default, bcrypt ("$2b$") accepted; {CRYPT}, {BLF-CRYPT} prefixes and
 * none are understood.
 *
 * The daemon side is a read-mostly table: lookups re-check the file's
 * mtime at most once a second and reload it when it changed, so
 * "transitctl user add" takes effect without a restart. Each reload is
 * logged ("passwd-file PATH reloaded users=N"); one that fails (the file
 * cannot be opened or read, or has gone) is a warning with the reason and
 * keeps the users already loaded.
 * The tool side rewrites the file atomically (temp file + rename) under
 * an flock(2) on "<file>.lock".
 * User names compare case-insensitively (ASCII).
 */
#ifndef TRANSIT_DIR_PASSWD_H
#define TRANSIT_DIR_PASSWD_H

#include <stdbool.h>
#include <stddef.h>

struct passwd_db;

/* A file missing at open is an empty directory (with a warning), not an
 * error. path NULL: no file (the LDAP directory below answers). */
struct passwd_db *passwd_db_open(const char *path);
void passwd_db_free(struct passwd_db *db);
bool passwd_db_exists(struct passwd_db *db, const char *user);
/* 1 password matches, 0 no such user or wrong password. Constant work
 * for unknown users (a dummy hash is checked) so timing tells nothing.
 * With LDAP: -1 when the directory could not be asked; blocking. */
int passwd_db_verify(struct passwd_db *db, const char *user, const char *password);
size_t passwd_db_count(struct passwd_db *db);
/* The attributes of user's entry (dir/attrs.h); false: no such user. */
struct dir_attrs;
bool passwd_db_attrs(struct passwd_db *db, const char *user, struct dir_attrs *out);

/* users { ldap { } } replaces the passwd-file (dir/ldapdir.h): with ld
 * set, passwd_db_exists answers from the LDAP cache only (never blocks;
 * the callers that may wait ask ld first) and passwd_db_verify asks the
 * server. db keeps the pointer, not ownership. */
struct ldapdir;
void passwd_db_set_ldap(struct passwd_db *db, struct ldapdir *ld);
struct ldapdir *passwd_db_ldap(struct passwd_db *db); /* NULL: the file */

/* The aliases table (dir/aliases.h) that goes with this directory, so
 * that every user of the directory (recipient decision, sender binding,
 * route explain) sees the same aliases. db keeps the pointer, not
 * ownership. NULL: no aliases. */
struct alias_db;
void passwd_db_set_aliases(struct passwd_db *db, struct alias_db *aliases);
struct alias_db *passwd_db_aliases(struct passwd_db *db);

/* Tool side. Return 0, or -1 with a message in err. */
int passwd_file_add(const char *path, const char *user, const char *password, char *err,
		    size_t errsz);	/* fails if the user exists */
/* The same, with the entry's attributes in its extra fields. */
int passwd_file_add_attrs(const char *path, const char *user, const char *password,
			  const struct dir_attrs *attrs, char *err, size_t errsz);
int passwd_file_set_password(const char *path, const char *user, const char *password, char *err,
			     size_t errsz);
int passwd_file_del(const char *path, const char *user, char *err, size_t errsz);
/* Calls cb for each user name in file order. */
int passwd_file_list(const char *path, void (*cb)(const char *user, void *arg), void *arg,
		     char *err, size_t errsz);

/* true when crypt(password, hash) is hash (constant-time compare): a
 * yescrypt, bcrypt or other libxcrypt hash without a {SCHEME} prefix. */
bool passwd_hash_matches(const char *password, const char *hash);

/* Hash a password with yescrypt (fresh random salt). 0 or -1. */
int passwd_hash(const char *password, char *out, size_t outsz);

#endif
