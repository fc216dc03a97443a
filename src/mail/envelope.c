/* envelope.c - see envelope.h. */
#include "mail/envelope.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

void envelope_init(struct envelope *e) { memset(e, 0, sizeof(*e)); }

void envelope_free(struct envelope *e)
{
	size_t i;

	for (i = 0; i < e->nrcpt; i++) {
		free(e->rcpt[i].addr);
		free(e->rcpt[i].orcpt);
	}
	free(e->rcpt);
	free(e->sender);
	free(e->envid);
	free(e->connector);
	free(e->client_addr);
	free(e->client_helo);
	free(e->auth_user);
	memset(e, 0, sizeof(*e));
}

void envelope_set_str(char **field, const char *value)
{
	free(*field);
	*field = value ? xstrdup(value) : NULL;
}

struct env_rcpt *envelope_add_rcpt(struct envelope *e, const char *addr, const char *orcpt,
				   unsigned notify)
{
	struct env_rcpt *r;

	e->rcpt = xrealloc(e->rcpt, (e->nrcpt + 1) * sizeof(*e->rcpt));
	r = &e->rcpt[e->nrcpt++];
	memset(r, 0, sizeof(*r));
	r->addr = xstrdup(addr);
	r->orcpt = (orcpt && *orcpt) ? xstrdup(orcpt) : NULL;
	r->notify = notify;
	r->state = RCPT_QUEUED;
	return r;
}

size_t envelope_pending(const struct envelope *e)
{
	size_t i, n = 0;

	for (i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].state == RCPT_QUEUED)
			n++;
	return n;
}
