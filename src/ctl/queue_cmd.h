/*
 * queue_cmd.h - transitctl's queue commands beyond "list" (man
 * transitctl(8)): show, export, freeze, thaw, retry, delete, suspend,
 * resume; and the filters that "list" shares with them.
 *
 * What works where: show, export and list read the queue files, so they
 * answer whether transitd runs or not (and never load the daemon: a list
 * of a huge queue costs the event loop nothing). Every change goes
 * through the daemon (the scheduler owns the queue); with the daemon down
 * they fail with "transitd is not running (...)" and exit status 1.
 */
#ifndef TRANSIT_CTL_QUEUE_CMD_H
#define TRANSIT_CTL_QUEUE_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "conf/conf.h"
#include "mail/envelope.h"

struct queue_filter {
	const char *sender;    /* substring, case-insensitive */
	const char *recipient; /* substring of a pending recipient */
	const char *state;     /* "active", "deferred", "frozen", "done" */
	bool has_older;
	uint64_t older_than;   /* seconds */
	bool any;	       /* some filter was given */
};

/* Parse argv[*i] (and its value) if it is a filter option: 1 consumed
 * (then *i points at the last argument used), 0 not a filter, -1 a bad
 * value (message printed). */
int queue_filter_option(struct queue_filter *f, int argc, char **argv, int *i);
bool queue_filter_match(const struct queue_filter *f, const char *spool, const struct envelope *e,
			time_t now);
/* "frozen" (a <spool>/frozen/ marker), "deferred" (a deferral note),
 * "active" (queued, waiting for or in its first attempts), "done". */
const char *queue_state_of(const char *spool, const struct envelope *e);

/* transitctl queue SUB ... (SUB is not "list"): exit status. */
int queue_admin_main(const struct config *c, int argc, char **argv);

#endif
