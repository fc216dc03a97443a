/*
 * attrs.h - what the directory says about one address beyond "it exists":
 * a small set of per-address attributes, whatever back end holds them
 * (passwd-file extra fields, the aliases file, later LDAP attributes).
 * Today one: accept-from (issue 7), read by policy/accept_from.h.
 *
 * Text form, shared by the passwd-file's extra-fields field (Dovecot's
 * passwd-file field 8: blank-separated key=value) and the options of an
 * aliases-file line: "accept_from=authenticated" (also spelled
 * accept-from); "accept_from=anyone" is the default. Other keys are not
 * ours (Dovecot's userdb_* and the like) and are ignored in the
 * passwd-file, refused in the aliases file.
 */
#ifndef TRANSIT_DIR_ATTRS_H
#define TRANSIT_DIR_ATTRS_H

#include <stdbool.h>
#include <stddef.h>

struct dir_attrs {
	bool accept_from_authenticated; /* only authenticated senders may send to it */
};

/* Apply the key=value words of text[0..len) to a. false, with why, for
 * a value of ours that is not understood; a is then set to the strict
 * choice (a typo must not open a protected address). only_ours: a key
 * that is not ours is an error too (the aliases file, whose options are
 * all ours; the passwd-file's extra fields are shared with Dovecot). */
bool dir_attrs_parse(const char *text, size_t len, bool only_ours, struct dir_attrs *a, char *why,
		     size_t whysz);

/* The text form of a (for listings): "" or "accept_from=authenticated". */
const char *dir_attrs_text(const struct dir_attrs *a);

#endif
