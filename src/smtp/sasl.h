/*
 * sasl.h - decoding of the SASL exchanges the SMTP server accepts in AUTH
 * (RFC 4954): base64 as RFC 4954 4 uses it (RFC 4648 4, padded, no white
 * space), the PLAIN message (RFC 4616 2: [authzid] NUL authcid NUL passwd)
 * and the LOGIN mechanism's two lines (draft-murchison-sasl-login: user
 * name, then password, each base64). Pure functions, no I/O, no logging:
 * they see credentials and must never print them.
 */
#ifndef TRANSIT_SMTP_SASL_H
#define TRANSIT_SMTP_SASL_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 4616 2: each of authzid, authcid and passwd is at most 255 octets. */
#define SASL_FIELD_MAX 256

enum sasl_result {
	SASL_OK,
	SASL_BAD_BASE64, /* not strict base64 (501 5.5.2) */
	SASL_BAD_MESSAGE, /* decoded, but not the mechanism's shape (501 5.5.2) */
	SASL_BAD_AUTHZID, /* PLAIN authzid that is neither empty nor the authcid (535 5.7.8) */
};

/* Decode strict base64 in[0..len) into out (at most outsz octets).
 * Refuses characters outside the alphabet, a length that is not a
 * multiple of 4, '=' anywhere but in the last two places, non-zero bits
 * left over by the padding (RFC 4648 3.5: one encoding per value), and output
 * longer than outsz. The empty string decodes to nothing. */
bool sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t outsz,
		     size_t *outlen);

/* Encode n octets as base64 into out (NUL-terminated). out needs
 * 4 * ((n + 2) / 3) + 1 octets; false when outsz is smaller. */
bool sasl_b64_encode(const unsigned char *in, size_t n, char *out, size_t outsz);

/* PLAIN: the base64 response (the initial response "=" is the empty
 * response, RFC 4954 4). On SASL_OK authcid and passwd are
 * NUL-terminated, non-empty and contain no NUL; authzid was empty or the
 * authcid (compared case-insensitively, as user names are). */
enum sasl_result sasl_plain_decode(const char *b64, size_t len, char authcid[SASL_FIELD_MAX],
				   char passwd[SASL_FIELD_MAX]);

/* LOGIN: one of its lines (the user name or the password), base64; out is
 * NUL-terminated, non-empty and has no NUL inside. */
enum sasl_result sasl_login_decode(const char *b64, size_t len, char out[SASL_FIELD_MAX]);

/* true when a response line is the client's "*": cancel (RFC 4954 4). */
bool sasl_is_cancel(const char *line, size_t len);

/* Overwrite a buffer that held a credential (not optimised away). */
void sasl_wipe(void *p, size_t n);

#endif
