/*
 * fuzz_trackfilter.c - libFuzzer target for log/trackfilter.c, the line
 * filter of `transitctl track` over tracking files (which an attacker
 * partly writes: addresses, Message-IDs, remote replies). The first input
 * line is the query: up to five TAB-separated values (sender, recipient,
 * Message-ID, queue id, event; empty means unset); every further line is
 * an event line. Beyond "no crash, no UB, no leak":
 *  - a matching line is a JSON object, and its sender/recipient/event are
 *    the ones asked for (ASCII case ignored), whatever the cheap
 *    substring test before parsing decided.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log/trackfilter.h"
#include "util/str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(json_t *o, const char *key, const char *want)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v != NULL && str_casecmp(v, want) == 0;
}

static bool has_recipient(json_t *o, const char *want)
{
	json_t *a = json_object_get(o, "recipients");

	if (same(o, "recipient", want))
		return true;
	for (size_t i = 0; json_is_array(a) && i < json_array_size(a); i++) {
		const char *v = json_string_value(json_array_get(a, i));
		if (v && str_casecmp(v, want) == 0)
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *line, *next, *vals[5] = {0};
	struct track_filter f;
	int k = 0;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	next = strchr(buf, '\n');
	if (next)
		*next++ = '\0';
	for (char *p = buf, *tab; k < 5 && p; p = tab ? tab + 1 : NULL, k++) {
		if ((tab = strchr(p, '\t')) != NULL)
			*tab = '\0';
		vals[k] = *p ? p : NULL;
	}
	track_filter_init(&f);
	f.sender = vals[0];
	f.recipient = vals[1];
	f.message_id = vals[2];
	f.qid = vals[3];
	f.event = vals[4];
	for (line = next; line != NULL; line = next) {
		size_t len;
		json_t *o;
		next = memchr(line, '\n', (size_t)(buf + size - line));
		len = next ? (size_t)(next - line) : (size_t)(buf + size - line);
		if (next)
			next++;
		if (!track_filter_line(&f, line, len, &o))
			continue;
		if (!json_is_object(o) || (f.sender && !same(o, "sender", f.sender)) ||
		    (f.recipient && !has_recipient(o, f.recipient)) ||
		    (f.event && !same(o, "event", f.event)))
			abort();
		json_decref(o);
	}
	track_filter_free(&f);
	free(buf);
	return 0;
}
