/*
 * transitctl.c - the administrator's command line tool (transitctl(8)).
 *
 *     transitctl [-c FILE] user add|passwd|del USER
 *     transitctl [-c FILE] user list
 *     transitctl [-c FILE] queue list [--by-next-hop] [FILTERS] [--json]
 *     transitctl [-c FILE] queue show|export|freeze|thaw|retry|delete|suspend|resume ...
 *     transitctl [-c FILE] status [--json]
 *     transitctl [-c FILE] route explain RCPT [--from S] [--size N] ...
 *     transitctl [-c FILE] reload [--timeout SECONDS] [--json]
 *
 * A thin main: users live in the passwd-file of dir/passwd.h (the file
 * named by "users { passwd-file }"), messages in the queue of
 * queue/queue.h (read-only walk of <spool>/queue). The configuration is
 * -c FILE, else $TRANSIT_CONF, else /etc/transit/transit.conf.
 *
 * Exit status: 0 success, 1 runtime error ("transitctl: user ... already
 * exists"), 2 usage error. Passwords come from the terminal (asked twice,
 * echo off) or, when stdin is not a terminal, from the first line of
 * stdin, so scripts can pipe them in; they never appear in argv.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "conf/conf.h"
#include "dir/aliases.h"
#include "dir/attrs.h"
#include "dir/ldapdir.h"
#include "dir/passwd.h"
#include "mail/envelope.h"
#include "queue/queue.h"
#include "smtp/cmd.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"
#include "ctl/check.h"
#include "ctl/complain.h"
#include "ctl/queue_view.h"
#include "ctl/reload_cmd.h"
#include "ctl/track.h"
#include "ctl/cert.h"
#include "ctl/queue_cmd.h"
#include "ctl/queue_view.h"
#include "ctl/status_cmd.h"
#include "net/listener.h"
#include "policy/recipient.h"
#include "util/buf.h"
#include "util/str.h"

#define CTL_DEFAULT_CONF "/etc/transit/transit.conf"
#define CTL_PASSWORD_MAX 1024 /* as dir/passwd.c */
#define EXIT_USAGE CTL_EXIT_USAGE

static const char *ctl_conf_path = CTL_DEFAULT_CONF;

static void usage(FILE *out)
{
	fputs("usage: transitctl [-c FILE] COMMAND ...\n"
	      "\n"
	      "commands:\n"
	      "  user add USER        add a user to the passwd-file (password from the\n"
	      "                       terminal, asked twice, or the first line of stdin)\n"
	      "  user add USER --accept-from authenticated\n"
	      "                       ... that only authenticated senders may write to\n"
	      "  user passwd USER     change a user's password\n"
	      "  user del USER        remove a user\n"
	      "  user list            print every user, one per line\n"
	      "  queue list [--by-next-hop] [--sender S] [--recipient R]\n"
	      "             [--state active|deferred|frozen|done] [--older-than T] [--json]\n"
	      "                       the messages in the queue (or one line per next hop)\n"
	      "  queue show ID [--json]   envelope, recipients, attempts, errors, headers\n"
	      "  queue export ID      the raw message on standard output\n"
	      "  queue freeze|thaw|retry ID...|FILTERS [--json]\n"
	      "  queue delete [--ndr] ID...|FILTERS [--json]\n"
	      "                       change messages through the running transitd\n"
	      "  queue suspend|resume NEXT-HOP|--all [--json]\n"
	      "                       stop or restart delivery to a next hop (or all)\n"
	      "  status [--json]      version, uptime, connections, queue, back pressure\n"
	      "  route explain RCPT [--from SENDER] [--size N] [--receive-connector NAME]\n"
	      "                [--authenticated]\n"
	      "                       how a recipient would be answered at RCPT and routed,\n"
	      "                       and why (exit 1 when it would be refused)\n"
	      "  reload [--timeout S] [--json]\n"
	      "                       make the running transitd load the configuration\n"
	      "                       again (exit 1 when it refuses the file, with why)\n"
	      "  track [--sender S] [--recipient R] [--message-id M] [--queue-id Q]\n"
	      "        [--since T] [--until T] [--event E] [--json]\n"
	      "                       message tracking events (reads the files: works\n"
	      "                       with the daemon down)\n"
	      "  cert list [--json]   certificates: thumbprint, names, issuer, expiry, users\n"
	      "  cert new --self-signed --name FQDN [--san NAME]... [--days N]\n"
	      "  cert request --name FQDN [--san NAME]... [--out FILE]\n"
	      "                       key (kept in the store) and CSR for a CA\n"
	      "  cert import FILE [--key KEYFILE]\n"
	      "                       PEM certificate, chain and key into the store\n"
	      "  cert use THUMBPRINT --connector NAME [--add]\n"
	      "                       serve it on a receive connector (--add: one more, by SNI)\n"
	      "  cert renew [THUMBPRINT] [--days N]\n"
	      "                       renew the self-signed certificate(s) in use\n"
	      "  check [blocklists|dns] [--json] [ADDRESS...]\n"
	      "                       the outside view: source addresses on the DNSBLs,\n"
	      "                       MX of the accepted domains, PTR of the source\n"
	      "                       addresses (exit 1 on a problem)\n"
	      "  help                 show this help\n"
	      "\n"
	      "options:\n"
	      "  -c FILE              configuration file (default $TRANSIT_CONF, else\n"
	      "                       " CTL_DEFAULT_CONF ")\n"
	      "  -h, --help           show this help\n",
	      out);
}

__attribute__((noreturn)) static void die(int status, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)ctl_vcomplain(status, NULL, fmt, ap);
	va_end(ap);
	exit(status);
}

static struct config *load_config(void)
{
	struct config *c = conf_load(ctl_conf_path);

	if (!c)
		die(1, "cannot load the configuration %s", ctl_conf_path);
	return c;
}

/* ---- passwords ------------------------------------------------------------ */

static struct termios ctl_saved_tty;
static volatile sig_atomic_t ctl_tty_changed;

static void restore_tty_and_exit(int sig)
{
	static const char nl = '\n';

	if (ctl_tty_changed)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &ctl_saved_tty);
	(void)!write(STDERR_FILENO, &nl, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Read one line from stdin into out without its line ending. false at
 * EOF before any byte; dies when the line is too long. */
static bool read_line(char *out, size_t outsz)
{
	size_t len;

	if (!fgets(out, (int)outsz, stdin))
		return false;
	len = strlen(out);
	if (len == outsz - 1 && out[len - 1] != '\n') {
		explicit_bzero(out, outsz);
		die(1, "password longer than %d bytes refused", CTL_PASSWORD_MAX);
	}
	while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
		out[--len] = '\0';
	return true;
}

/* Prompt on the terminal with echo off. */
static bool read_tty_password(const char *prompt, char *out, size_t outsz)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	struct termios t;
	struct sigaction sa, old[4];
	bool ok;
	size_t i;

	if (tcgetattr(STDIN_FILENO, &ctl_saved_tty) < 0)
		die(1, "cannot read the terminal settings: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = restore_tty_and_exit;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < 4; i++) {
		sigaction(sigs[i], NULL, &old[i]);
		if (old[i].sa_handler != SIG_IGN) /* keep what the caller ignores ignored */
			sigaction(sigs[i], &sa, NULL);
	}
	t = ctl_saved_tty;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	t.c_lflag |= ECHONL;
	fputs(prompt, stderr);
	fflush(stderr);
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0)
		die(1, "cannot turn off the terminal echo: %s", strerror(errno));
	ctl_tty_changed = 1;
	ok = read_line(out, outsz);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &ctl_saved_tty);
	ctl_tty_changed = 0;
	for (i = 0; i < 4; i++)
		sigaction(sigs[i], &old[i], NULL);
	if (!ok)
		fputc('\n', stderr);
	return ok;
}

/* The new password: from the terminal (twice) or the first line of stdin. */
static void get_new_password(char *out, size_t outsz)
{
	char again[CTL_PASSWORD_MAX + 2];

	if (!isatty(STDIN_FILENO)) {
		if (!read_line(out, outsz))
			die(1, "no password on standard input");
	} else {
		if (!read_tty_password("New password: ", out, outsz))
			die(1, "no password given");
		if (out[0] == '\0')
			die(1, "empty password refused");
		if (!read_tty_password("Retype new password: ", again, sizeof(again)))
			die(1, "no password given");
		if (strcmp(out, again) != 0) {
			explicit_bzero(again, sizeof(again));
			explicit_bzero(out, outsz);
			die(1, "passwords do not match");
		}
		explicit_bzero(again, sizeof(again));
	}
	if (out[0] == '\0')
		die(1, "empty password refused");
}

/* ---- user ----------------------------------------------------------------- */

struct user_find {
	const char *user;
	bool found;
};

static void user_find_cb(const char *user, void *arg)
{
	struct user_find *uf = arg;

	if (str_casecmp(user, uf->user) == 0)
		uf->found = true;
}

/* Checked before asking for a password (passwd.c checks again under
 * its lock): an error now saves typing a password twice for nothing. */
static bool user_exists(const char *path, const char *user)
{
	struct user_find uf = {user, false};
	char err[512];

	if (passwd_file_list(path, user_find_cb, &uf, err, sizeof(err)) < 0)
		die(1, "%s", err);
	return uf.found;
}

static void print_user_cb(const char *user, void *arg)
{
	(void)arg;
	puts(user);
}

/* transitctl user add --accept-from VALUE (dir/attrs.h) */
static bool ctl_accept_from(const char *value, struct dir_attrs *a)
{
	a->accept_from_authenticated = strcmp(value, "authenticated") == 0;
	return a->accept_from_authenticated || strcmp(value, "anyone") == 0;
}

static int cmd_user(int argc, char **argv)
{
	struct dir_attrs attrs = {0};
	char pw[CTL_PASSWORD_MAX + 2], err[1024], q[1200];
	const char *sub, *user, *path;
	struct config *c;
	int rc;

	if (argc < 2)
		die(EXIT_USAGE, "user: missing subcommand (add, passwd, del, list)");
	sub = argv[1];
	if (strcmp(sub, "list") == 0) {
		if (argc != 2)
			die(EXIT_USAGE, "usage: transitctl user list");
	} else if (strcmp(sub, "add") == 0 && argc == 5 && strcmp(argv[3], "--accept-from") == 0) {
		if (!ctl_accept_from(argv[4], &attrs))
			die(EXIT_USAGE,
			    "user add: --accept-from is \"authenticated\" or \"anyone\"");
		argc = 3;
	} else if (strcmp(sub, "add") == 0 || strcmp(sub, "passwd") == 0 ||
		   strcmp(sub, "del") == 0) {
		if (argc != 3)
			die(EXIT_USAGE, "usage: transitctl user %s USER", sub);
	} else {
		die(EXIT_USAGE, "user: unknown subcommand '%s'", sub);
	}
	c = load_config();
	if (c->ldap.uri)
		die(1, "users are in the LDAP directory %s (users { ldap } in %s): manage them there",
		    c->ldap.uri, ctl_conf_path);
	if (!c->passwd_file || !*c->passwd_file)
		die(1, "no users { passwd-file } in %s", ctl_conf_path);
	path = c->passwd_file;
	user = argc == 3 ? argv[2] : NULL;
	if (user)
		log_quote(user, q, sizeof(q));

	if (strcmp(sub, "list") == 0) {
		rc = passwd_file_list(path, print_user_cb, NULL, err, sizeof(err));
	} else if (strcmp(sub, "del") == 0) {
		rc = passwd_file_del(path, user, err, sizeof(err));
	} else {
		bool add = strcmp(sub, "add") == 0;
		if (add && user_exists(path, user))
			die(1, "user %s already exists", q);
		if (!add && !user_exists(path, user))
			die(1, "user %s does not exist", q);
		get_new_password(pw, sizeof(pw));
		rc = add ? passwd_file_add_attrs(path, user, pw, &attrs, err, sizeof(err))
			 : passwd_file_set_password(path, user, pw, err, sizeof(err));
		explicit_bzero(pw, sizeof(pw));
	}
	if (rc < 0)
		die(1, "%s", err);
	conf_free(c);
	return 0;
}

/* ---- queue ---------------------------------------------------------------- */

struct msg_list {
	struct envelope **env;
	size_t n, cap;
	const struct queue_filter *f;
	const char *spool;
	time_t now;
};

static void collect_msg_cb(const char *path, struct envelope *env, void *arg)
{
	struct msg_list *ml = arg;

	(void)path;
	if (ml->f && !queue_filter_match(ml->f, ml->spool, env, ml->now)) {
		envelope_free(env);
		free(env);
		return;
	}
	if (ml->n == ml->cap) {
		ml->cap = ml->cap ? ml->cap * 2 : 256;
		ml->env = xrealloc(ml->env, ml->cap * sizeof(*ml->env));
	}
	ml->env[ml->n++] = env; /* ours now, as with queue_scan */
}

static int by_qid(const void *a, const void *b)
{
	const struct envelope *const *x = a, *const *y = b;

	return strcmp((*x)->qid, (*y)->qid);
}

/* "5s", "3m", "2h", "1d". */
/* Terminal-safe copy: control characters become \xHH, UTF-8 is kept. */
static char *printable(const char *s)
{
	struct buf b = BUF_INIT;

	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			buf_printf(&b, "\\x%02x", ch);
		else
			buf_putc(&b, (char)ch);
	}
	buf_putc(&b, '\0');
	return buf_steal(&b);
}

struct msg_row {
	char age[24], size[24];
	char *sender, *rcpts;
	const char *state;
};

static const char *ctl_spool = ""; /* set by cmd_queue for the deferral notes */

static void fill_row(const struct envelope *e, time_t now, struct msg_row *r)
{
	size_t pending = envelope_pending(e), i;
	const char *first = NULL;
	struct buf b = BUF_INIT;
	char *p;

	queue_view_age((long long)age_seconds(now, e->arrival), r->age, sizeof(r->age));
	snprintf(r->size, sizeof(r->size), "%llu", (unsigned long long)e->content_len);
	r->sender = (e->sender && *e->sender) ? printable(e->sender) : xstrdup("<>");
	for (i = 0; i < e->nrcpt && !first; i++)
		if (e->rcpt[i].state == RCPT_QUEUED)
			first = e->rcpt[i].addr;
	buf_printf(&b, "%zu/%zu", pending, e->nrcpt);
	if (first) {
		p = printable(first);
		buf_printf(&b, " %s", p);
		free(p);
	}
	r->rcpts = buf_steal(&b);
	r->state = queue_state_of(ctl_spool, e);
}

/* Columns on the terminal: UTF-8 continuation bytes take no room. */
static int columns(const char *s)
{
	int n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static int width(int w, const char *s)
{
	int n = columns(s);
	return n > w ? n : w;
}

/* s and then spaces up to w columns (right-aligned when right), plus
 * the column gap. */
static void print_cell(const char *s, int w, bool right)
{
	int pad = w - columns(s);

	if (right)
		printf("%*s", pad > 0 ? pad : 0, "");
	fputs(s, stdout);
	if (!right)
		printf("%*s", pad > 0 ? pad : 0, "");
	fputs("  ", stdout);
}

static void print_table(struct envelope **env, size_t n, time_t now)
{
	struct msg_row *rows = xcalloc(n ? n : 1, sizeof(*rows));
	int wid = 2, wage = 3, wsize = 4, wsender = 6, wrcpt = 10;
	unsigned long long total = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		fill_row(env[i], now, &rows[i]);
		wid = width(wid, env[i]->qid);
		wage = width(wage, rows[i].age);
		wsize = width(wsize, rows[i].size);
		wsender = width(wsender, rows[i].sender);
		wrcpt = width(wrcpt, rows[i].rcpts);
		total += env[i]->content_len;
	}
	print_cell("ID", wid, false);
	print_cell("AGE", wage, true);
	print_cell("SIZE", wsize, true);
	print_cell("SENDER", wsender, false);
	print_cell("RECIPIENTS", wrcpt, false);
	puts("STATE");
	for (i = 0; i < n; i++) {
		print_cell(env[i]->qid, wid, false);
		print_cell(rows[i].age, wage, true);
		print_cell(rows[i].size, wsize, true);
		print_cell(rows[i].sender, wsender, false);
		print_cell(rows[i].rcpts, wrcpt, false);
		puts(rows[i].state);
		free(rows[i].sender);
		free(rows[i].rcpts);
	}
	printf("-- %zu message%s, %llu bytes\n", n, n == 1 ? "" : "s", total);
	free(rows);
}

/* A JSON string, or null; bytes that are not UTF-8 become '?' (jansson
 * only takes valid UTF-8). */
static json_t *json_str(const char *s)
{
	json_t *j;
	char *copy, *p;

	if (!s)
		return json_null();
	if ((j = json_string(s)))
		return j;
	copy = xstrdup(s);
	for (p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j ? j : json_null();
}

static void rfc3339(time_t t, char *out, size_t outsz)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		str_copy(out, "", outsz);
}

static json_t *json_notify(unsigned notify)
{
	static const struct { unsigned bit; const char *name; } names[] = {
		{DSN_NOTIFY_NEVER, "NEVER"},
		{DSN_NOTIFY_SUCCESS, "SUCCESS"},
		{DSN_NOTIFY_FAILURE, "FAILURE"},
		{DSN_NOTIFY_DELAY, "DELAY"},
	};
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (notify & names[i].bit)
			json_array_append_new(a, json_string(names[i].name));
	return a;
}

static const char *rcpt_state_name(char state)
{
	switch (state) {
	case RCPT_QUEUED:
		return "queued";
	case RCPT_DELIVERED:
		return "delivered";
	case RCPT_FAILED:
		return "failed";
	default:
		return "unknown";
	}
}

static json_t *json_message(const struct envelope *e, time_t now)
{
	struct defer_note dn;
	json_t *o = json_object(), *rcpts = json_array();
	char when[40];
	size_t i;

	rfc3339(e->arrival, when, sizeof(when));
	json_object_set_new(o, "id", json_string(e->qid));
	json_object_set_new(o, "arrival", json_string(when));
	json_object_set_new(o, "arrival_epoch", json_integer((json_int_t)e->arrival));
	json_object_set_new(o, "age_seconds",
			    json_integer((json_int_t)age_seconds(now, e->arrival)));
	json_object_set_new(o, "size", json_integer((json_int_t)e->content_len));
	json_object_set_new(o, "sender", json_str(e->sender ? e->sender : ""));
	json_object_set_new(o, "connector", json_str(e->connector));
	json_object_set_new(o, "client_addr", json_str(e->client_addr));
	json_object_set_new(o, "client_helo", json_str(e->client_helo));
	json_object_set_new(o, "auth_user", json_str(e->auth_user));
	json_object_set_new(o, "smtputf8", json_boolean(e->smtputf8));
	json_object_set_new(o, "body", json_string(e->body == BODY_8BITMIME ? "8BITMIME" : "7BIT"));
	json_object_set_new(o, "ret",
			    e->ret == DSN_RET_FULL   ? json_string("FULL")
			    : e->ret == DSN_RET_HDRS ? json_string("HDRS")
						     : json_null());
	json_object_set_new(o, "envid", json_str(e->envid));
	queue_view_defer_note(ctl_spool, e->qid, &dn);
	json_object_set_new(o, "state", json_string(queue_state_of(ctl_spool, e)));
	if (dn.present) {
		rfc3339((time_t)dn.next_try, when, sizeof(when));
		json_object_set_new(o, "attempts", json_integer((json_int_t)dn.attempts));
		json_object_set_new(o, "next_attempt", json_string(when));
		json_object_set_new(o, "last_error", json_str(dn.error));
	}
	for (i = 0; i < e->nrcpt; i++) {
		const struct env_rcpt *r = &e->rcpt[i];
		json_t *jr = json_object();

		json_object_set_new(jr, "address", json_str(r->addr));
		json_object_set_new(jr, "orcpt", json_str(r->orcpt));
		json_object_set_new(jr, "notify", json_notify(r->notify));
		json_object_set_new(jr, "state", json_string(rcpt_state_name(r->state)));
		json_array_append_new(rcpts, jr);
	}
	json_object_set_new(o, "recipients", rcpts);
	return o;
}

static void print_json(struct envelope **env, size_t n, time_t now)
{
	json_t *all = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(all, json_message(env[i], now));
	if (json_dumpf(all, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
		die(1, "cannot write the JSON output");
	putchar('\n');
	json_decref(all);
}

static int cmd_queue(int argc, char **argv)
{
	struct msg_list ml = {0};
	struct queue_filter f = {0};
	struct config *c;
	bool json = false, by_hop = false;
	time_t now;
	long r;
	int i;

	if (argc < 2)
		die(EXIT_USAGE, "queue: missing subcommand (list, show, export, freeze, thaw, retry, "
				"delete, suspend, resume)");
	if (strcmp(argv[1], "list") != 0) {
		int rc;
		c = load_config();
		rc = queue_admin_main(c, argc, argv);
		conf_free(c);
		return rc;
	}
	for (i = 2; i < argc; i++) {
		int fr = queue_filter_option(&f, argc, argv, &i);
		if (fr < 0)
			exit(EXIT_USAGE);
		if (fr > 0)
			continue;
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--by-next-hop") == 0)
			by_hop = true;
		else
			die(EXIT_USAGE, "queue list: unknown option '%s'", argv[i]);
	}
	c = load_config();
	ctl_spool = c->server.spool;
	ml.f = f.any ? &f : NULL;
	ml.spool = c->server.spool;
	ml.now = time(NULL);
	errno = 0;
	r = queue_walk(c->server.spool, collect_msg_cb, &ml);
	if (r < 0)
		die(1, "cannot read the queue in %s/queue: %s", c->server.spool,
		    errno ? strerror(errno) : "error");
	if (ml.n > 1)
		qsort(ml.env, ml.n, sizeof(*ml.env), by_qid);
	now = time(NULL);
	if (by_hop)
		queue_view_by_next_hop(c, ml.env, ml.n, now, json, stdout);
	else if (json)
		print_json(ml.env, ml.n, now);
	else if (ml.n == 0)
		puts(f.any ? "no message matches" : "queue is empty");
	else
		print_table(ml.env, ml.n, now);
	for (size_t k = 0; k < ml.n; k++) {
		envelope_free(ml.env[k]);
		free(ml.env[k]);
	}
	free(ml.env);
	conf_free(c);
	if (fflush(stdout) != 0 || ferror(stdout))
		die(1, "cannot write to standard output: %s", strerror(errno));
	return 0;
}

/* ---- route explain ---------------------------------------------------------- */

static int cmd_route(int argc, char **argv)
{
	const char *rcpt = NULL, *from = NULL, *rc = NULL;
	uint64_t size = 0;
	bool authenticated = false;
	struct buf out = BUF_INIT;
	struct passwd_db *users;
	struct ldapdir *ldap;
	struct alias_db *aliases;
	struct config *c;
	int i, rv;

	if (argc < 2 || strcmp(argv[1], "explain") != 0)
		die(EXIT_USAGE, "usage: transitctl route explain RCPT [--from S] [--size N] "
				"[--receive-connector NAME] [--authenticated]");
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
			from = argv[++i];
		else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
			if (!parse_size(argv[++i], &size))
				die(EXIT_USAGE, "route explain: --size %s is not a size", argv[i]);
		} else if (strcmp(argv[i], "--receive-connector") == 0 && i + 1 < argc)
			rc = argv[++i];
		else if (strcmp(argv[i], "--authenticated") == 0)
			authenticated = true;
		else if (argv[i][0] == '-' || rcpt != NULL)
			die(EXIT_USAGE, "route explain: unexpected '%s'", argv[i]);
		else
			rcpt = argv[i];
	}
	if (rcpt == NULL)
		die(EXIT_USAGE, "route explain: missing RCPT");
	c = load_config();
	/* the same directory the daemon reads: whether a mailbox exists is
	 * part of the answer (550 5.1.1) */
	users = passwd_db_open(c->ldap.uri ? NULL : c->passwd_file);
	ldap = c->ldap.uri ? ldapdir_new(&c->ldap) : NULL; /* replaces the passwd-file */
	passwd_db_set_ldap(users, ldap);
	aliases = alias_db_open(c->aliases_file);
	passwd_db_set_aliases(users, aliases);
	listeners_note_local_ips(c); /* user@[one of our addresses] is local */
	rv = recipient_explain(c, users, rcpt, from, size, rc, authenticated, listeners_is_local_ip,
			       &out);
	fwrite(out.data, 1, out.len, stdout);
	buf_free(&out);
	passwd_db_free(users);
	ldapdir_free(ldap);
	alias_db_free(aliases);
	conf_free(c);
	return rv == 0 ? 0 : 1;
}

/* ---- reload (ctl/reload_cmd.c) ----------------------------------------------- */

static int cmd_reload(int argc, char **argv) { return ctl_reload(ctl_conf_path, argc, argv); }

/* ---- track (ctl/track.c) ---------------------------------------------------- */

static int cmd_track(int argc, char **argv) { return ctl_track(argc, argv, ctl_conf_path); }

/* ---- cert (ctl/cert.c) ------------------------------------------------------ */

static int cmd_cert(int argc, char **argv) { return ctl_cert(ctl_conf_path, argc, argv); }

/* ---- check (ctl/check.c) ----------------------------------------------------- */

static int cmd_check(int argc, char **argv)
{
	struct config *c = load_config();
	int rv = check_main(c, argc, argv);

	conf_free(c);
	if (rv == EXIT_USAGE)
		fputs("Try 'transitctl -h' for help.\n", stderr);
	return rv;
}

/* ---- status (ctl/status_cmd.c) ------------------------------------------------ */

static int cmd_status(int argc, char **argv)
{
	struct config *c = load_config();
	int rc = status_main(c, argc, argv);

	conf_free(c);
	return rc;
}

/* ---- main ----------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{"user", cmd_user},
	{"queue", cmd_queue},
	{"route", cmd_route},
	{"reload", cmd_reload},
	{"track", cmd_track},
	{"cert", cmd_cert},
	{"check", cmd_check},
	{"status", cmd_status},
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"config", required_argument, NULL, 'c'},
		{NULL, 0, NULL, 0},
	};
	const char *env = getenv("TRANSIT_CONF");
	size_t i;
	int ch;

	log_init("transitctl", 0);
	if (env && *env)
		ctl_conf_path = env;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			ctl_conf_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			if (optopt == 'c')
				die(EXIT_USAGE, "option -c needs a FILE");
			if (optopt)
				die(EXIT_USAGE, "unknown option '-%c'", optopt);
			die(EXIT_USAGE, "unknown option '%s'", argv[optind - 1]);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		die(EXIT_USAGE, "missing command");
	if (strcmp(argv[0], "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			return commands[i].run(argc, argv);
	die(EXIT_USAGE, "unknown command '%s'", argv[0]);
}
