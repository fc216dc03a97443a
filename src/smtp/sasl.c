/*
 * sasl.c - SASL PLAIN and LOGIN decoding for AUTH (see sasl.h). RFC 4954
 * 4 (base64 responses, "=" empty initial response, "*" cancel), RFC 4616
 * (PLAIN), RFC 4648 4 (base64 alphabet and padding).
 *
 * Base64 is checked here (strictly: a client that sends line breaks,
 * stray characters or non-zero pad bits gets 501, not a guess) and decoded by OpenSSL's
 * EVP_DecodeBlock, which does the arithmetic but accepts white space and
 * counts padding as zero octets.
 */
#include "smtp/sasl.h"

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : 63;
}

static bool b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

bool sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t outsz,
		     size_t *outlen)
{
	size_t pad = 0, i, n;
	unsigned char tmp[3 * 1024];

	*outlen = 0;
	if (len == 0)
		return true;
	if (len % 4 != 0 || len / 4 * 3 > sizeof(tmp))
		return false;
	if (in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len - pad; i++)
		if (!b64_char((unsigned char)in[i]))
			return false;
	/* RFC 4648 3.5: the bits a pad leaves over must be zero, so each
	 * decoded value has one encoding ("YR==" is not "a") */
	if ((pad == 1 && (b64_value((unsigned char)in[len - 2]) & 0x03) != 0) ||
	    (pad == 2 && (b64_value((unsigned char)in[len - 3]) & 0x0f) != 0))
		return false;
	n = len / 4 * 3 - pad;
	if (n > outsz)
		return false;
	if (EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)len) < 0) {
		OPENSSL_cleanse(tmp, sizeof(tmp));
		return false;
	}
	memcpy(out, tmp, n);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	*outlen = n;
	return true;
}

bool sasl_b64_encode(const unsigned char *in, size_t n, char *out, size_t outsz)
{
	if (outsz < 4 * ((n + 2) / 3) + 1 || n > 3 * 1024)
		return false;
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return true;
}

bool sasl_is_cancel(const char *line, size_t len) { return len == 1 && line[0] == '*'; }

void sasl_wipe(void *p, size_t n) { OPENSSL_cleanse(p, n); }

/* Copy field f[0..n) into out as a C string: non-empty, fits. */
static bool take_field(const unsigned char *f, size_t n, char out[SASL_FIELD_MAX])
{
	if (n == 0 || n >= SASL_FIELD_MAX)
		return false;
	memcpy(out, f, n);
	out[n] = '\0';
	return true;
}

enum sasl_result sasl_plain_decode(const char *b64, size_t len, char authcid[SASL_FIELD_MAX],
				   char passwd[SASL_FIELD_MAX])
{
	unsigned char msg[3 * SASL_FIELD_MAX + 3];
	const unsigned char *nul1, *nul2, *end;
	size_t n;
	enum sasl_result r = SASL_BAD_MESSAGE;

	authcid[0] = passwd[0] = '\0';
	if (len == 1 && b64[0] == '=')
		len = 0; /* the empty initial response */
	if (!sasl_b64_decode(b64, len, msg, sizeof(msg), &n))
		return SASL_BAD_BASE64;
	end = msg + n;
	nul1 = memchr(msg, '\0', n);
	if (nul1 == NULL)
		goto out;
	nul2 = memchr(nul1 + 1, '\0', (size_t)(end - (nul1 + 1)));
	if (nul2 == NULL || memchr(nul2 + 1, '\0', (size_t)(end - (nul2 + 1))) != NULL)
		goto out;
	if (!take_field(nul1 + 1, (size_t)(nul2 - (nul1 + 1)), authcid) ||
	    !take_field(nul2 + 1, (size_t)(end - (nul2 + 1)), passwd) ||
	    (size_t)(nul1 - msg) >= SASL_FIELD_MAX) {
		authcid[0] = passwd[0] = '\0';
		goto out;
	}
	r = SASL_OK;
	if (nul1 != msg && ((size_t)(nul1 - msg) != strlen(authcid) ||
			    strncasecmp((const char *)msg, authcid, strlen(authcid)) != 0))
		r = SASL_BAD_AUTHZID; /* acting as someone else: not offered */
out:
	OPENSSL_cleanse(msg, sizeof(msg));
	if (r != SASL_OK)
		OPENSSL_cleanse(passwd, SASL_FIELD_MAX);
	return r;
}

enum sasl_result sasl_login_decode(const char *b64, size_t len, char out[SASL_FIELD_MAX])
{
	unsigned char v[SASL_FIELD_MAX];
	size_t n;
	enum sasl_result r = SASL_OK;

	out[0] = '\0';
	if (!sasl_b64_decode(b64, len, v, sizeof(v), &n))
		r = SASL_BAD_BASE64;
	else if (memchr(v, '\0', n) != NULL || !take_field(v, n, out))
		r = SASL_BAD_MESSAGE;
	OPENSSL_cleanse(v, sizeof(v));
	return r;
}
