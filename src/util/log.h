/*
 * log.h - the tiny logging API used everywhere in transit.
 *
 * One line per event, "key=value" after a short event word, with the
 * session id or queue id first where there is one:
 *     log_info("%s smtp connected address=%s connector=%s", sid, ip, name);
 * Fixed meanings (as in Postfix/OpenSMTPD):
 *   log_debug  - only with -d
 *   log_info   - normal events
 *   log_warn   - something is wrong but we carry on
 *   log_fatal  - the environment is broken (config, permissions): exit(1)
 *   log_panic  - a transit bug: abort()
 * Lines go to stderr with an RFC 3339 UTC timestamp and the program name.
 * Thread safe, and never blocking after log_init(): lines are queued in a
 * bounded ring that a writer thread empties (when it is full, lines are
 * dropped and "log: N lines dropped" is logged once there is room);
 * log_fatal/log_panic and exit() wait a bounded time for the queue to
 * drain, and the fatal line itself is written directly.
 */
#ifndef TRANSIT_UTIL_LOG_H
#define TRANSIT_UTIL_LOG_H

#include <stdarg.h>

#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))

void log_init(const char *progname, int debug);
/* Wait at most ms for the queued lines to reach stderr (before _exit,
 * which skips the atexit drain). */
void log_flush(int ms);
int log_debug_enabled(void);

void log_debug(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_info(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_warn(const char *fmt, ...) PRINTF_LIKE(1, 2);
__attribute__((noreturn)) void log_fatal(const char *fmt, ...) PRINTF_LIKE(1, 2);
__attribute__((noreturn)) void log_panic(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Copy s into out (size outsz) so it is safe inside a log value:
 * control characters and non-ASCII become \xHH, the result is quoted
 * when it contains spaces. Returns out. */
const char *log_quote(const char *s, char *out, unsigned long outsz);

#endif
