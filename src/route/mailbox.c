/*
 * mailbox.c - the path of a local mailbox (see mailbox.h). Moved here
 * from deliver/maildir.c so that the recipient policy (policy/), the
 * scheduler and "transitctl route explain" name the same path without
 * including the delivery agent.
 */
#include "route/mailbox.h"

#include <stdbool.h>
#include <string.h>

#include "util/str.h"

static bool maildir_put(char *out, size_t outsz, size_t *o, char ch)
{
	if (*o + 1 >= outsz)
		return false;
	out[(*o)++] = ch;
	return true;
}

/* One path component from an address part: lower case, '/', control
 * characters and a leading '.' become '_'; an empty part becomes "_" so
 * it can never name the parent directory itself. */
static bool maildir_put_component(char *out, size_t outsz, size_t *o, const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return maildir_put(out, outsz, o, '_');
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char u = (unsigned char)ascii_lower(s[i]);
		bool unsafe = u == '/' || u < 0x20 || u == 0x7f || (i == 0 && u == '.');
		if (!maildir_put(out, outsz, o, unsafe ? '_' : (char)u))
			return false;
	}
	return true;
}

int maildir_expand(const char *tmpl, const char *local, const char *domain, char *out,
		   size_t outsz)
{
	size_t o = 0;
	const char *p;
	bool ok = true;

	if (out == NULL || outsz == 0)
		return -1;
	for (p = tmpl; ok && *p != '\0'; p++) {
		if (*p != '%') {
			ok = maildir_put(out, outsz, &o, *p);
			continue;
		}
		switch (*++p) {
		case 'u':
			ok = maildir_put_component(out, outsz, &o, local);
			break;
		case 'd':
			ok = maildir_put_component(out, outsz, &o, domain);
			break;
		case '%':
			ok = maildir_put(out, outsz, &o, '%');
			break;
		default: /* unknown %x, or a '%' ending the template */
			ok = false;
			p--; /* never step over the terminating NUL */
			break;
		}
	}
	out[ok ? o : 0] = '\0';
	return ok ? 0 : -1;
}

bool mailbox_path_contained(const char *path)
{
	const char *p = path;

	if (path == NULL || path[0] != '/')
		return false;
	while (*p) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
	}
	return true;
}
