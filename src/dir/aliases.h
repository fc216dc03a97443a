/*
 * aliases.h - the aliases file (users { aliases = "/etc/transit/aliases" }):
 * one alias per line,
 *     sales@example.test: alice@example.test, bob@example.test
 *     # a comment
 *     team@example.test: sales@example.test,
 *         carol@partner.test            (a line starting with blank space
 *                                        continues the previous one)
 *     ceo-office@example.test accept_from=authenticated: ceo@example.test
 *                                       (options between the alias and
 *                                        its ':', dir/attrs.h; a bad one
 *                                        refuses the file)
 * An alias with one member is a personal alias, with several a group.
 * Members may be aliases themselves (expanded recursively, with loop
 * detection and a depth bound) or any address, local or remote.
 * Addresses compare case-insensitively (ASCII), as the passwd-file's.
 *
 * The table reloads by itself as the passwd-file does: lookups re-check
 * the file's identity at most once a second; a reload is logged with its
 * counts ("aliases PATH reloaded aliases=N members=M"); a file with a bad
 * line is refused as a whole (logged as PATH:LINE: reason) and the old
 * table is kept. Thread safe (own lock).
 */
#ifndef TRANSIT_DIR_ALIASES_H
#define TRANSIT_DIR_ALIASES_H

#include <stdbool.h>
#include <stddef.h>

#define ALIAS_ADDR_MAX 320   /* an address with its NUL */
#define ALIAS_DEPTH_MAX 8    /* nesting of aliases in aliases */
#define ALIAS_EXPAND_MAX 64  /* final addresses one alias may expand to */

struct alias_db;

/* A missing file is an empty table (with a warning). path NULL or "":
 * no aliases (alias_db_open returns NULL and every call below accepts NULL). */
struct alias_db *alias_db_open(const char *path);
void alias_db_free(struct alias_db *db);
size_t alias_db_count(struct alias_db *db);

enum alias_result {
	ALIAS_NONE = 0,	   /* addr is not an alias */
	ALIAS_EXPANDED,	   /* out holds n final addresses, deduplicated, in file order */
	ALIAS_LOOP,	   /* an alias contains itself (why says which) */
	ALIAS_TOO_DEEP,	   /* nested deeper than ALIAS_DEPTH_MAX */
	ALIAS_TOO_MANY,	   /* more than max final addresses */
};

/* Expand addr into its final addresses (those that are not aliases). */
enum alias_result alias_db_expand(struct alias_db *db, const char *addr,
				  char (*out)[ALIAS_ADDR_MAX], size_t max, size_t *n,
				  char *why, size_t whysz);

/* The attributes given on addr's line (dir/attrs.h); false: not an alias. */
struct dir_attrs;
bool alias_db_attrs(struct alias_db *db, const char *addr, struct dir_attrs *out);

/* true when addr is an alias whose expansion is exactly the one address
 * login: a personal alias (sender binding; a group never qualifies). */
bool alias_db_is_personal_alias_of(struct alias_db *db, const char *addr, const char *login);

#endif
