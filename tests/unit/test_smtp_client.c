/* test_smtp_client.c - deliver/smtp_client*.c against real peers on loopback.
 *
 * Peers: Postfix's smtp-sink (delivery with the message dumped to a file, PIPELINING off,
 * commands refused with 4xx/5xx/421, HELO fallback, disconnects) and tests/unit/smtpc_peer.py
 * (STARTTLS with the self-signed certificate net/tls.c makes, AUTH PLAIN/LOGIN, per-recipient
 * refusals, SIZE, SMTPUTF8, protocol errors, a transcript of what the client did on the wire).
 * Peers are started per test on a port derived from the pid, killed by pid at the end.
 * Also: connection refused, greeting and data timeouts, source address, unreadable content,
 * connection reuse, RSET, QUIT, and close without any later callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "deliver/smtp_client.h"
#include "net/tls.h"
#include "smtp/cmd.h"
#include "util/log.h"

#define PEER_SCRIPT GOLDEN_DIR "/../unit/smtpc_peer.py"
#define PYTHON "/usr/bin/python3"
#define SMTP_SINK "/usr/sbin/smtp-sink"
#define TLS_NAME "mx.smtpc.test"
#define MAXR 8

static char workdir[64];
static char cert[256], key[256];
static struct event_base *base;

/* ---- files -------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char *slurp(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		if (lenp)
			*lenp = 0;
		return calloc(1, 1);
	}
	do {
		if (cap - len < 65536) {
			cap = cap * 2 + 65536;
			data = realloc(data, cap + 1);
			assert_non_null(data);
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	data[len] = '\0';
	if (lenp)
		*lenp = len;
	return data;
}

static bool file_contains(const char *path, const char *needle)
{
	char *s = slurp(path, NULL);
	bool found = strstr(s, needle) != NULL;

	free(s);
	return found;
}

static void wait_file_contains(const char *path, const char *needle)
{
	int i;

	for (i = 0; i < 500; i++) {
		if (file_contains(path, needle))
			return;
		usleep(20000);
	}
	fail_msg("%s never contained \"%s\"", path, needle);
}

/* ---- peers -------------------------------------------------------------------- */

struct peer {
	pid_t pid;
	unsigned port;
	char dir[200];
	char transcript[256];
};

static bool port_free(unsigned port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	bool ok;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

/* A port derived from the pid, skipping ones in use. */
static unsigned pick_port(void)
{
	static unsigned k;
	int tries;

	for (tries = 0; tries < 500; tries++) {
		unsigned port = 20000 + ((unsigned)getpid() * 37u + (k++) * 101u) % 40000u;
		if (port_free(port))
			return port;
	}
	fail_msg("no free port");
	return 0;
}

static pid_t spawn(const char *const *argv)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static void peer_init(struct peer *p)
{
	memset(p, 0, sizeof(*p));
	p->port = pick_port();
	snprintf(p->dir, sizeof(p->dir), "%s/peer-%u", workdir, p->port);
	assert_int_equal(mkdir(p->dir, 0700), 0);
	snprintf(p->transcript, sizeof(p->transcript), "%s/transcript", p->dir);
}

static void peer_wait_alive(struct peer *p)
{
	int st;

	assert_int_equal(waitpid(p->pid, &st, WNOHANG), 0);
}

/* smtpc_peer.py with extra arguments (NULL-terminated). */
static void peer_py(struct peer *p, const char *const *extra)
{
	const char *argv[48];
	char listen[64], ready[256];
	int n = 0, i;

	peer_init(p);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", p->port);
	snprintf(ready, sizeof(ready), "%s/ready", p->dir);
	argv[n++] = PYTHON;
	argv[n++] = PEER_SCRIPT;
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--dir";
	argv[n++] = p->dir;
	for (i = 0; extra != NULL && extra[i] != NULL && n < 46; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	p->pid = spawn(argv);
	for (i = 0; i < 500 && access(ready, F_OK) != 0; i++) {
		peer_wait_alive(p);
		usleep(20000);
	}
	assert_int_equal(access(ready, F_OK), 0);
}

static bool have_sink(void) { return access(SMTP_SINK, X_OK) == 0; }

/* smtp-sink dumping each message into p->dir, with extra options. */
static void peer_sink(struct peer *p, const char *const *extra)
{
	const char *argv[48];
	char listen[64], tmpl[256];
	struct sockaddr_in sin;
	int n = 0, i;

	peer_init(p);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", p->port);
	snprintf(tmpl, sizeof(tmpl), "%s/%%H%%M%%S.", p->dir);
	argv[n++] = SMTP_SINK;
	if (geteuid() == 0) {
		argv[n++] = "-u";
		argv[n++] = "root";
	}
	argv[n++] = "-d";
	argv[n++] = tmpl;
	for (i = 0; extra != NULL && extra[i] != NULL && n < 44; i++)
		argv[n++] = extra[i];
	argv[n++] = listen;
	argv[n++] = "20";
	argv[n] = NULL;
	p->pid = spawn(argv);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)p->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < 500; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
		close(fd);
		if (rc == 0)
			return;
		peer_wait_alive(p);
		usleep(20000);
	}
	fail_msg("smtp-sink did not start on port %u", p->port);
}

static void peer_stop(struct peer *p)
{
	int st;

	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		waitpid(p->pid, &st, 0);
		p->pid = 0;
	}
}

/* The single message smtp-sink dumped (its file name is partly random). */
static char *sink_dump(const struct peer *p)
{
	DIR *d = opendir(p->dir);
	struct dirent *de;
	char path[512] = "";
	int found = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", p->dir, de->d_name);
		found++;
	}
	closedir(d);
	assert_int_equal(found, 1);
	return slurp(path, NULL);
}

static int sink_dump_count(const struct peer *p)
{
	DIR *d = opendir(p->dir);
	struct dirent *de;
	int found = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			found++;
	closedir(d);
	return found;
}

/* ---- the client under test --------------------------------------------------------- */

struct run {
	struct smtpc *c;
	int opened; /* 0 waiting, 1 ready, -1 failed */
	int open_calls;
	struct smtpc_reply err;
	int results;
	struct smtpc_result res[4];
	struct smtpc_reply rcpt[4][MAXR];
	const struct smtpc_msg *next; /* sent from the callback of the first */
	bool close_in_cb;
};

static void on_open(struct smtpc *c, void *arg, const struct smtpc_reply *err)
{
	struct run *r = arg;

	/* never called before smtpc_open returned (r->c is set by then) */
	assert_ptr_equal(c, r->c);
	r->open_calls++;
	if (err != NULL) {
		r->opened = -1;
		r->err = *err;
		r->c = NULL;
	} else {
		r->opened = 1;
	}
}

static void on_sent(struct smtpc *c, void *arg, const struct smtpc_result *res)
{
	struct run *r = arg;
	int k = r->results;
	size_t i;

	assert_ptr_equal(c, r->c);
	assert_true(k < 4);
	r->res[k] = *res;
	for (i = 0; i < res->nrcpt && i < MAXR; i++)
		r->rcpt[k][i] = res->rcpt[i];
	r->res[k].rcpt = r->rcpt[k];
	r->results++;
	if (r->next != NULL) {
		const struct smtpc_msg *m = r->next;
		r->next = NULL;
		smtpc_send(c, m, on_sent, r);
	} else if (r->close_in_cb) {
		smtpc_close(c);
		r->c = NULL;
	}
}

static bool guard_fired;

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	guard_fired = true;
}

static void loop_until(const int *value, int target)
{
	struct event *guard = evtimer_new(base, guard_cb, NULL);
	struct timeval tv = {30, 0};

	guard_fired = false;
	evtimer_add(guard, &tv);
	while (*value < target && !guard_fired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
	assert_false(guard_fired);
}

static void opts_default(struct smtpc_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->helo_name = "client.smtpc.test";
	o->connect_timeout = 5;
	o->command_timeout = 10;
	o->data_timeout = 10;
}

static void addr_of(unsigned port, struct sockaddr_in *sin)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static void client_open(struct run *r, unsigned port, const struct smtpc_opts *o)
{
	struct sockaddr_in sin;

	memset(r, 0, sizeof(*r));
	addr_of(port, &sin);
	r->c = smtpc_open(base, (struct sockaddr *)&sin, sizeof(sin), TLS_NAME, o, on_open, r);
	assert_non_null(r->c);
	assert_int_equal(r->opened, 0); /* not before returning */
	loop_until(&r->open_calls, 1);
}

/* The open must succeed. */
static void client_ready(struct run *r, unsigned port, const struct smtpc_opts *o)
{
	client_open(r, port, o);
	if (r->opened != 1)
		fail_msg("open failed: %d %s %s", r->err.code, r->err.enh, r->err.text);
}

static void client_send(struct run *r, const struct smtpc_msg *m, int nresults)
{
	int before = r->results;

	smtpc_send(r->c, m, on_sent, r);
	assert_int_equal(r->results, before); /* never inside smtpc_send */
	loop_until(&r->results, nresults);
}

/* Close (QUIT when healthy) and run the loop until the client freed itself. */
static void client_close(struct run *r)
{
	if (r->c != NULL)
		smtpc_close(r->c);
	r->c = NULL;
	event_base_dispatch(base);
}

/* ---- messages -------------------------------------------------------------------- */

struct msgf {
	int fd;
	struct smtpc_msg m;
	struct smtpc_rcpt rcpt[MAXR];
};

static const char body_dots[] = "From: sender@example.test\r\n"
				"To: rcpt@example.test\r\n"
				"Subject: dots\r\n"
				"\r\n"
				"line one\r\n"
				".\r\n"
				"..two dots\r\n"
				".leading dot\r\n"
				"last line\r\n";

/* body_dots as it must look on the wire (dot-stuffed) */
static const char body_dots_wire[] = "From: sender@example.test\r\n"
				     "To: rcpt@example.test\r\n"
				     "Subject: dots\r\n"
				     "\r\n"
				     "line one\r\n"
				     "..\r\n"
				     "...two dots\r\n"
				     "..leading dot\r\n"
				     "last line\r\n";

/* The content is stored after `skip` junk octets (content_off). */
static void msg_make(struct msgf *mf, const char *content, size_t len, size_t skip,
		     const char *const *rcpts)
{
	char path[256];
	size_t i;

	memset(mf, 0, sizeof(*mf));
	snprintf(path, sizeof(path), "%s/content-XXXXXX", workdir);
	mf->fd = mkstemp(path);
	assert_true(mf->fd >= 0);
	unlink(path);
	for (i = 0; i < skip; i++)
		assert_int_equal(write(mf->fd, "J", 1), 1);
	assert_int_equal(write(mf->fd, content, len), (ssize_t)len);
	assert_int_equal(write(mf->fd, "TRAILING JUNK\r\n", 15), 15); /* past content_len */
	mf->m.sender = "sender@example.test";
	mf->m.body = BODY_7BIT;
	for (i = 0; rcpts[i] != NULL && i < MAXR; i++)
		mf->rcpt[i].addr = rcpts[i];
	mf->m.nrcpt = i;
	mf->m.rcpt = mf->rcpt;
	mf->m.content_fd = mf->fd;
	mf->m.content_off = skip;
	mf->m.content_len = len;
}

static void msg_free(struct msgf *mf) { close(mf->fd); }

static const char *const three[] = {"a@example.test", "b@example.test", "c@example.test", NULL};
static const char *const one[] = {"a@example.test", NULL};

static void assert_reply(const struct smtpc_reply *r, int code, const char *enh,
			 const char *text_part)
{
	if (r->code != code || strcmp(r->enh, enh) != 0 ||
	    (text_part != NULL && strstr(r->text, text_part) == NULL))
		fail_msg("reply %d %s \"%s\", wanted %d %s \"...%s...\"", r->code, r->enh, r->text,
			 code, enh, text_part != NULL ? text_part : "");
}

static char *peer_msg(const struct peer *p, int n, size_t *len)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/msg-%d", p->dir, n);
	return slurp(path, len);
}

/* ---- setup --------------------------------------------------------------------------- */

static int group_setup(void **state)
{
	char err[512] = "";
	SSL_CTX *ctx;

	(void)state;
	log_init("test_smtp_client", 1);
	signal(SIGPIPE, SIG_IGN);
	snprintf(workdir, sizeof(workdir), "/tmp/transit-test-smtpc-XXXXXX");
	if (mkdtemp(workdir) == NULL)
		return -1;
	/* the self-signed certificate of net/tls.c, for the peer */
	ctx = tls_server_ctx(NULL, NULL, workdir, TLS_NAME, err, sizeof(err));
	if (ctx == NULL) {
		fprintf(stderr, "tls_server_ctx: %s\n", err);
		return -1;
	}
	SSL_CTX_free(ctx);
	snprintf(cert, sizeof(cert), "%s/tls/selfsigned.crt", workdir);
	snprintf(key, sizeof(key), "%s/tls/selfsigned.key", workdir);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return nftw(workdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
	(void)state;
	base = event_base_new();
	alarm(90); /* a hang is a failure, not a stuck CI job */
	return base == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	alarm(0);
	event_base_free(base);
	base = NULL;
	return 0;
}

/* ---- smtp-sink ------------------------------------------------------------------- */

static void test_sink_three_rcpts(void **state)
{
	static const char *const args[] = {NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;
	char *dump, want[64];
	size_t i;

	(void)state;
	if (!have_sink())
		skip();
	peer_sink(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	snprintf(want, sizeof(want), TLS_NAME "[127.0.0.1]:%u", p.port);
	assert_string_equal(smtpc_info(r.c)->peer, want);
	assert_false(smtpc_info(r.c)->tls);

	msg_make(&mf, body_dots, strlen(body_dots), 7, three);
	mf.m.body = BODY_8BITMIME;
	mf.m.envid = "id=1 x";
	mf.m.ret = DSN_RET_HDRS;
	mf.rcpt[0].notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE;
	mf.rcpt[0].orcpt = "rfc822;a+x@example.test";
	mf.rcpt[1].notify = DSN_NOTIFY_NEVER;
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	assert_reply(&r.res[0].msg_reply, 250, "2.0.0", "Ok");
	assert_false(r.res[0].msg_reply.local);
	assert_int_equal(r.res[0].nrcpt, 3);
	for (i = 0; i < 3; i++)
		assert_reply(&r.rcpt[0][i], 250, "2.0.0", NULL);
	assert_true(r.res[0].peer_dsn);
	assert_true(r.res[0].reusable);
	client_close(&r);
	msg_free(&mf);

	dump = sink_dump(&p);
	assert_non_null(strstr(dump, "X-Client-Proto: ESMTP\n"));
	assert_non_null(strstr(dump, "X-Helo-Args: client.smtpc.test\n"));
	assert_non_null(strstr(dump, "X-Mail-Args: <sender@example.test> BODY=8BITMIME RET=HDRS "
				     "ENVID=id+3D1+20x\n"));
	assert_non_null(strstr(dump, "X-Rcpt-Args: <a@example.test> NOTIFY=SUCCESS,FAILURE "
				     "ORCPT=rfc822;a+2Bx@example.test\n"));
	assert_non_null(strstr(dump, "X-Rcpt-Args: <b@example.test> NOTIFY=NEVER\n"));
	assert_non_null(strstr(dump, "X-Rcpt-Args: <c@example.test>\n"));
	/* the content, unstuffed by the sink, exactly as queued (LF line ends in the dump) */
	assert_non_null(strstr(dump, "Subject: dots\n\nline one\n.\n..two dots\n.leading dot\n"
				     "last line\n"));
	assert_null(strstr(dump, "TRAILING"));
	assert_null(strstr(dump, "JJJ"));
	free(dump);
	peer_stop(&p);
}

static void test_sink_no_pipelining(void **state)
{
	static const char *const args[] = {"-p", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;
	char *dump;

	(void)state;
	if (!have_sink())
		skip();
	peer_sink(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, body_dots, strlen(body_dots), 0, three);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	assert_reply(&r.rcpt[0][2], 250, "2.0.0", NULL);
	client_close(&r);
	msg_free(&mf);
	dump = sink_dump(&p);
	assert_non_null(strstr(dump, "X-Rcpt-Args: <c@example.test>\n"));
	assert_non_null(strstr(dump, "\n.\n..two dots\n.leading dot\n"));
	free(dump);
	peer_stop(&p);
}

static void test_sink_helo_fallback(void **state)
{
	static const char *const args[] = {"-e", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;
	char *dump;

	(void)state;
	if (!have_sink())
		skip();
	peer_sink(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, body_dots, strlen(body_dots), 0, one);
	mf.m.body = BODY_8BITMIME; /* no extensions after HELO: no BODY= */
	mf.rcpt[0].notify = DSN_NOTIFY_SUCCESS;
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	assert_false(r.res[0].peer_dsn);
	client_close(&r);
	msg_free(&mf);
	dump = sink_dump(&p);
	assert_non_null(strstr(dump, "X-Client-Proto: SMTP\n"));
	assert_non_null(strstr(dump, "X-Mail-Args: <sender@example.test>\n"));
	assert_non_null(strstr(dump, "X-Rcpt-Args: <a@example.test>\n"));
	free(dump);
	peer_stop(&p);
}

static void sink_mail_refused(const char *opt, enum smtpc_status want, int code,
			      const char *enh)
{
	const char *args[] = {opt, "MAIL", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;
	size_t i;

	peer_sink(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, body_dots, strlen(body_dots), 0, three);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, want);
	assert_reply(&r.res[0].msg_reply, code, enh, "Error: command failed");
	for (i = 0; i < 3; i++)
		assert_reply(&r.rcpt[0][i], code, enh, NULL);
	assert_true(r.res[0].reusable);
	client_close(&r);
	msg_free(&mf);
	assert_int_equal(sink_dump_count(&p), 0);
	peer_stop(&p);
}

static void test_sink_mail_refused(void **state)
{
	(void)state;
	if (!have_sink())
		skip();
	sink_mail_refused("-r", SMTPC_TEMP, 450, "4.3.0");
	sink_mail_refused("-f", SMTPC_PERM, 500, "5.3.0");
}

static void test_sink_data_final_5xx(void **state)
{
	static const char *const args[] = {"-f", ".", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;
	size_t i;

	(void)state;
	if (!have_sink())
		skip();
	peer_sink(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, body_dots, strlen(body_dots), 0, three);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_PERM);
	assert_reply(&r.res[0].msg_reply, 500, "5.3.0", NULL);
	for (i = 0; i < 3; i++)
		assert_reply(&r.rcpt[0][i], 500, "5.3.0", NULL);
	assert_true(r.res[0].reusable);
	client_close(&r);
	msg_free(&mf);
	peer_stop(&p);
}

/* 421 to RCPT (the peer closes): TEMP with the peer's reply, not reusable. */
static void test_sink_421(void **state)
{
	static const char *const args[] = {"-Q", "RCPT", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;

	(void)state;
	if (!have_sink())
		skip();
	peer_sink(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, body_dots, strlen(body_dots), 0, three);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_TEMP);
	assert_int_equal(r.res[0].msg_reply.code, 421);
	assert_false(r.res[0].msg_reply.local);
	assert_false(r.res[0].reusable);
	client_close(&r);
	msg_free(&mf);
	peer_stop(&p);
}

/* The peer hangs up after "." without a word: TEMP, local 421 4.4.2. */
static void test_sink_lost_after_dot(void **state)
{
	static const char *const args[] = {"-q", ".", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;

	(void)state;
	if (!have_sink())
		skip();
	peer_sink(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, body_dots, strlen(body_dots), 0, one);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_TEMP);
	assert_reply(&r.res[0].msg_reply, 421, "4.4.2", "connection closed");
	assert_true(r.res[0].msg_reply.local);
	assert_reply(&r.rcpt[0][0], 421, "4.4.2", NULL);
	assert_false(r.res[0].reusable);
	client_close(&r);
	msg_free(&mf);
	peer_stop(&p);
}

static char *big_content(size_t len)
{
	char *content = malloc(len);
	size_t i;

	assert_non_null(content);
	for (i = 0; i < len; i++) {
		size_t col = i % 80;
		content[i] = col == 78 ? '\r' : col == 79 ? '\n' : (char)('a' + (i / 80) % 26);
	}
	return content;
}

/* The peer gives up in the middle of the content: 550 and it closes its
 * side. The 550 is what counts (PERM); the client stops sending and the
 * connection is not reused. */
static void test_abort_in_content(void **state)
{
	static const char *const args[] = {"--abort-data", "100000", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;
	size_t len = 8 * 1024 * 1024;
	char *content;

	(void)state;
	content = big_content(len);
	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, content, len, 0, one);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_PERM);
	assert_reply(&r.res[0].msg_reply, 550, "5.7.1", "refused in the middle");
	assert_reply(&r.rcpt[0][0], 550, "5.7.1", NULL);
	assert_false(r.res[0].reusable);
	client_close(&r);
	msg_free(&mf);
	free(content);
	assert_true(file_contains(p.transcript, "ABORT "));
	peer_stop(&p);
}

/* The peer stops reading the content: the client stops reading the file
 * too (flow control) and times out while sending, not at the final ".". */
static void test_sink_stalls_in_content(void **state)
{
	static const char *const args[] = {"-H", "20", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;
	size_t len = 40 * 1024 * 1024;
	char *content;

	(void)state;
	if (!have_sink())
		skip();
	content = big_content(len);
	peer_sink(&p, args);
	opts_default(&o);
	o.command_timeout = 1;
	o.data_timeout = 30;
	client_ready(&r, p.port, &o);
	msg_make(&mf, content, len, 0, one);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_TEMP);
	assert_reply(&r.res[0].msg_reply, 421, "4.4.2", "timeout while sending the message content");
	assert_false(r.res[0].reusable);
	client_close(&r);
	msg_free(&mf);
	free(content);
	peer_stop(&p);
}

/* The same over TLS: the encrypted output is bounded too. */
static void test_stall_in_content_tls(void **state)
{
	const char *args[] = {"--tls", cert, key, "--stall-data", "20", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;
	size_t len = 40 * 1024 * 1024;
	char *content, err[256];
	SSL_CTX *ctx = tls_client_ctx(NULL, err, sizeof(err));

	(void)state;
	assert_non_null(ctx);
	content = big_content(len);
	peer_py(&p, args);
	opts_default(&o);
	o.tls = SMTPC_TLS_OPPORTUNISTIC;
	o.tls_ctx = ctx;
	o.command_timeout = 1;
	o.data_timeout = 30;
	client_ready(&r, p.port, &o);
	assert_true(smtpc_info(r.c)->tls);
	msg_make(&mf, content, len, 0, one);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_TEMP);
	assert_reply(&r.res[0].msg_reply, 421, "4.4.2", "timeout while sending the message content");
	assert_false(r.res[0].reusable);
	client_close(&r);
	msg_free(&mf);
	free(content);
	SSL_CTX_free(ctx);
	peer_stop(&p);
}

/* ---- smtpc_peer.py: the wire ----------------------------------------------------- */

static void test_pipelining_on_off(void **state)
{
	static const char *const on[] = {NULL};
	static const char *const off[] = {"--no-pipelining", NULL};
	const char *const *modes[] = {on, off};
	int k;

	(void)state;
	for (k = 0; k < 2; k++) {
		struct peer p;
		struct smtpc_opts o;
		struct run r;
		struct msgf mf;
		char *msg;
		size_t len;

		peer_py(&p, modes[k]);
		opts_default(&o);
		client_ready(&r, p.port, &o);
		msg_make(&mf, body_dots, strlen(body_dots), 0, three);
		client_send(&r, &mf.m, 1);
		assert_int_equal(r.res[0].status, SMTPC_DONE);
		assert_reply(&r.rcpt[0][1], 250, "2.0.0", "queued as 1");
		client_close(&r);
		msg_free(&mf);
		if (k == 0) { /* MAIL, RCPTs and DATA arrived together */
			assert_true(file_contains(p.transcript, "C MAIL FROM:<sender@example.test> +\n"));
			assert_true(file_contains(p.transcript, "C RCPT TO:<c@example.test> +\n"));
			assert_true(file_contains(p.transcript, "C DATA\n"));
		} else { /* lockstep: nothing else was waiting behind any command */
			assert_true(file_contains(p.transcript, "C MAIL FROM:<sender@example.test>\n"));
			assert_true(file_contains(p.transcript, "C RCPT TO:<a@example.test>\n"));
			assert_true(file_contains(p.transcript, "C RCPT TO:<c@example.test>\n"));
			assert_false(file_contains(p.transcript, " +\n"));
		}
		assert_true(file_contains(p.transcript, "MSG 1 "));
		assert_false(file_contains(p.transcript, "BARE"));
		assert_true(file_contains(p.transcript, "C QUIT\n"));
		msg = peer_msg(&p, 1, &len);
		assert_int_equal(len, strlen(body_dots_wire));
		assert_memory_equal(msg, body_dots_wire, len);
		free(msg);
		peer_stop(&p);
	}
}

static void rcpt_refused(bool pipelining, const char *refusal, int code, const char *enh)
{
	char rej[128];
	const char *args[] = {"--reject-rcpt", rej, pipelining ? NULL : "--no-pipelining", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;

	snprintf(rej, sizeof(rej), "b@example.test=%s", refusal);
	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, body_dots, strlen(body_dots), 0, three);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	assert_reply(&r.res[0].msg_reply, 250, "2.0.0", "queued");
	assert_reply(&r.rcpt[0][0], 250, "2.0.0", "queued");
	assert_reply(&r.rcpt[0][1], code, enh, "nobody here");
	assert_false(r.rcpt[0][1].local);
	assert_reply(&r.rcpt[0][2], 250, "2.0.0", "queued");
	assert_true(r.res[0].reusable);
	client_close(&r);
	msg_free(&mf);
	assert_true(file_contains(p.transcript, "MSG 1 "));
	peer_stop(&p);
}

static void test_rcpt_refused(void **state)
{
	(void)state;
	rcpt_refused(true, "550 5.1.1 nobody here", 550, "5.1.1");
	rcpt_refused(false, "450 4.2.1 nobody here yet", 450, "4.2.1");
}

/* No recipient accepted: DONE with the refusals, reusable; the next
 * message on the connection starts with RSET. */
static void all_refused_then_next(bool pipelining)
{
	const char *args[] = {"--reject-rcpt", "a@example.test=550 5.1.1 unknown a",
			      "--reject-rcpt", "b@example.test=551 5.1.6 moved",
			      pipelining ? NULL : "--no-pipelining", NULL};
	static const char *const two[] = {"a@example.test", "b@example.test", NULL};
	static const char *const good[] = {"c@example.test", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf m1, m2;
	char *t, *rset, *mail2;

	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&m1, body_dots, strlen(body_dots), 0, two);
	msg_make(&m2, body_dots, strlen(body_dots), 0, good);
	r.next = &m2.m;
	client_send(&r, &m1.m, 2);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	assert_reply(&r.rcpt[0][0], 550, "5.1.1", "unknown a");
	assert_reply(&r.rcpt[0][1], 551, "5.1.6", "moved");
	assert_reply(&r.res[0].msg_reply, 550, "5.1.1", NULL);
	assert_true(r.res[0].reusable);
	assert_int_equal(r.res[1].status, SMTPC_DONE);
	assert_reply(&r.rcpt[1][0], 250, "2.0.0", "queued as 1");
	client_close(&r);
	msg_free(&m1);
	msg_free(&m2);
	t = slurp(p.transcript, NULL);
	rset = strstr(t, "C RSET\n");
	mail2 = rset != NULL ? strstr(rset, "C MAIL FROM:") : NULL;
	assert_non_null(rset);
	assert_non_null(mail2);
	/* the first DATA: pipelined (and refused by the peer with 554), or in
	 * lockstep never sent since no recipient was accepted */
	if (pipelining)
		assert_true(strstr(t, "C DATA\n") < rset);
	else
		assert_true(strstr(t, "C DATA\n") > rset);
	assert_non_null(strstr(mail2, "C RCPT TO:<c@example.test>"));
	assert_null(strstr(t, "CONNECT 127.0.0.1\nCONNECT")); /* one connection */
	free(t);
	peer_stop(&p);
}

static void test_all_refused_then_rset(void **state)
{
	(void)state;
	all_refused_then_next(true);
	all_refused_then_next(false);
}

/* A peer that says 354 although every RCPT was refused: the client ends
 * the empty message with a lone "." (RFC 2920 3.1), the outcome stays the
 * refusals, and the next message starts with RSET. */
static void test_354_without_recipients(void **state)
{
	static const char *const args[] = {"--always-354", "--reject-rcpt",
					   "a@example.test=550 5.1.1 unknown a", NULL};
	static const char *const good[] = {"c@example.test", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf m1, m2;
	char *t;

	(void)state;
	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&m1, body_dots, strlen(body_dots), 0, one);
	msg_make(&m2, body_dots, strlen(body_dots), 0, good);
	r.next = &m2.m;
	client_send(&r, &m1.m, 2);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	assert_reply(&r.rcpt[0][0], 550, "5.1.1", "unknown a");
	assert_true(r.res[0].reusable);
	assert_int_equal(r.res[1].status, SMTPC_DONE);
	assert_reply(&r.rcpt[1][0], 250, "2.0.0", "queued as 2");
	client_close(&r);
	msg_free(&m1);
	msg_free(&m2);
	t = slurp(p.transcript, NULL);
	assert_non_null(strstr(t, "MSG 1 0\n")); /* nothing but the "." */
	assert_true(strstr(t, "C RSET\n") > strstr(t, "MSG 1 0\n"));
	assert_non_null(strstr(t, "MSG 2 "));
	free(t);
	peer_stop(&p);
}

static void test_reuse_two_messages(void **state)
{
	static const char *const args[] = {"--dsn", "--size", "1000000", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf m1, m2;
	char *t, mailsize[128];

	(void)state;
	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	assert_int_equal(smtpc_info(r.c)->size_limit, 1000000);
	msg_make(&m1, body_dots, strlen(body_dots), 3, three);
	msg_make(&m2, "Subject: two\r\n\r\nsecond\r\n", 24, 0, one);
	r.next = &m2.m;
	client_send(&r, &m1.m, 2);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	assert_true(r.res[0].reusable);
	assert_true(r.res[0].peer_dsn);
	assert_int_equal(r.res[1].status, SMTPC_DONE);
	assert_reply(&r.res[1].msg_reply, 250, "2.0.0", "queued as 2");
	assert_true(r.res[1].reusable);
	client_close(&r);
	msg_free(&m1);
	msg_free(&m2);
	t = slurp(p.transcript, NULL);
	assert_non_null(strstr(t, "MSG 1 "));
	assert_non_null(strstr(t, "MSG 2 24\n"));
	assert_null(strstr(t, "C RSET")); /* clean transactions need none */
	snprintf(mailsize, sizeof(mailsize), "C MAIL FROM:<sender@example.test> SIZE=%zu",
		 strlen(body_dots));
	assert_non_null(strstr(t, mailsize));
	assert_non_null(strstr(t, "C MAIL FROM:<sender@example.test> SIZE=24"));
	assert_null(strstr(strstr(t, "CONNECT") + 1, "CONNECT"));
	free(t);
	peer_stop(&p);
}

/* RFC 6531 3.4: SMTPUTF8 not offered, but nothing in the message needs it
 * (ASCII addresses and header): sent without the parameter. */
static void test_smtputf8_not_needed(void **state)
{
	static const char *const args[] = {NULL};
	static const char body[] = "Subject: ascii\r\n\r\nbody caf\xc3\xa9\r\n";
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;

	(void)state;
	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, body, strlen(body), 0, three);
	mf.m.smtputf8 = true;
	mf.m.body = BODY_8BITMIME;
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	assert_int_equal(r.rcpt[0][2].code, 250);
	client_close(&r);
	msg_free(&mf);
	assert_true(file_contains(p.transcript, "C MAIL FROM:<sender@example.test> BODY=8BITMIME +"));
	assert_false(file_contains(p.transcript, "SMTPUTF8"));
	peer_stop(&p);
}

/* SMTPUTF8 not offered and needed: a non-ASCII recipient is refused alone
 * (the others are sent), a non-ASCII header refuses the message; both are
 * local replies (the peer never said them). */
static void test_smtputf8_needed(void **state)
{
	static const char *const args[] = {NULL};
	static const char *const mixed[] = {"a@example.test", "j\xc3\xb6rg@example.test", NULL};
	static const char hdr[] = "Subject: caf\xc3\xa9\r\n\r\nbody\r\n";
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;

	(void)state;
	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, body_dots, strlen(body_dots), 0, mixed);
	mf.m.smtputf8 = true;
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	assert_int_equal(r.rcpt[0][0].code, 250);
	assert_reply(&r.rcpt[0][1], 553, "5.6.7", "does not support SMTPUTF8");
	assert_true(r.rcpt[0][1].local);
	assert_true(r.res[0].reusable);
	msg_free(&mf);
	msg_make(&mf, hdr, strlen(hdr), 0, three);
	mf.m.smtputf8 = true;
	client_send(&r, &mf.m, 2);
	assert_int_equal(r.res[1].status, SMTPC_PERM);
	assert_reply(&r.res[1].msg_reply, 553, "5.6.7", "header is not ASCII");
	assert_true(r.res[1].msg_reply.local);
	assert_reply(&r.rcpt[1][2], 553, "5.6.7", NULL);
	assert_true(r.res[1].reusable);
	client_close(&r);
	msg_free(&mf);
	assert_false(file_contains(p.transcript, "jörg"));
	assert_false(file_contains(p.transcript, "SMTPUTF8"));
	assert_true(file_contains(p.transcript, "MSG 1 "));
	assert_false(file_contains(p.transcript, "MSG 2 "));
	peer_stop(&p);
}

/* RFC 6152: no 8BITMIME at the peer: the 8-bit body goes out as
 * quoted-printable (dot-stuffed after conversion); an 8-bit header is
 * refused with 554 5.6.3 before MAIL. */
static void test_8bit_to_7bit_peer(void **state)
{
	static const char *const args[] = {"--no-8bitmime", NULL};
	static const char body[] = "Subject: x\r\n\r\n.caf\xc3\xa9\r\n";
	static const char wire[] = "Subject: x\r\nMIME-Version: 1.0\r\n"
				   "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
				   "..caf=C3=A9\r\n";
	static const char hdr[] = "Subject: caf\xc3\xa9\r\n\r\nbody\r\n";
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;
	char *msg;
	size_t len;

	(void)state;
	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, body, strlen(body), 0, one);
	mf.m.body = BODY_8BITMIME;
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	msg_free(&mf);
	msg_make(&mf, hdr, strlen(hdr), 0, one);
	mf.m.body = BODY_8BITMIME;
	client_send(&r, &mf.m, 2);
	assert_int_equal(r.res[1].status, SMTPC_PERM);
	assert_reply(&r.res[1].msg_reply, 554, "5.6.3", "cannot be converted to 7 bit");
	assert_true(r.res[1].msg_reply.local);
	assert_true(r.res[1].reusable);
	client_close(&r);
	msg_free(&mf);
	assert_false(file_contains(p.transcript, "BODY=8BITMIME"));
	msg = peer_msg(&p, 1, &len);
	assert_int_equal(len, strlen(wire));
	assert_memory_equal(msg, wire, len);
	free(msg);
	assert_false(file_contains(p.transcript, "MSG 2 "));
	peer_stop(&p);
}

static void test_smtputf8_offered(void **state)
{
	static const char *const args[] = {"--smtputf8", NULL};
	static const char *const intl[] = {"j\xc3\xb6rg@example.test", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;

	(void)state;
	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, body_dots, strlen(body_dots), 0, intl);
	mf.m.smtputf8 = true;
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	client_close(&r);
	msg_free(&mf);
	assert_true(file_contains(p.transcript, "C MAIL FROM:<sender@example.test> SMTPUTF8 +"));
	assert_true(file_contains(p.transcript, "C RCPT TO:<j\xc3\xb6rg@example.test> +"));
	peer_stop(&p);
}

#define SCAN_SLICE (1024 * 1024) /* SMTPC_SCAN_SLICE in deliver/smtp_client_int.h */

/* A message larger than one scan slice (SMTPC_SCAN_SLICE): the scan runs
 * over several turns of the loop, then the whole of it goes out 7-bit,
 * each 8-bit line as quoted-printable. */
static void test_8bit_large_in_slices(void **state)
{
	static const char *const args[] = {"--no-8bitmime", NULL};
	static const char head[] = "Subject: big\r\n\r\n";
	static const char line[] = "caf\xc3\xa9 au lait\r\n";		/* 16 octets */
	static const char wire_line[] = "caf=C3=A9 au lait\r\n";	/* 19 octets */
	size_t nlines = 3 * SCAN_SLICE / (sizeof(line) - 1), clen, i, len, wlen;
	char *content, *msg;
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;

	(void)state;
	clen = sizeof(head) - 1 + nlines * (sizeof(line) - 1);
	content = malloc(clen);
	assert_non_null(content);
	memcpy(content, head, sizeof(head) - 1);
	for (i = 0; i < nlines; i++)
		memcpy(content + sizeof(head) - 1 + i * (sizeof(line) - 1), line, sizeof(line) - 1);
	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, content, clen, 0, one);
	mf.m.body = BODY_8BITMIME;
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	client_close(&r);
	msg_free(&mf);
	msg = peer_msg(&p, 1, &len);
	wlen = strlen("Subject: big\r\nMIME-Version: 1.0\r\n"
		      "Content-Transfer-Encoding: quoted-printable\r\n\r\n") +
	       nlines * (sizeof(wire_line) - 1);
	assert_int_equal(len, wlen);
	for (i = 0; i < len; i++)
		if ((unsigned char)msg[i] >= 0x80)
			fail_msg("8-bit octet at %zu of what the peer got", i);
	assert_memory_equal(msg + len - (sizeof(wire_line) - 1), wire_line, sizeof(wire_line) - 1);
	free(msg);
	free(content);
	peer_stop(&p);
}

static void test_size_too_big(void **state)
{
	static const char *const args[] = {"--size", "100", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;

	(void)state;
	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	assert_int_equal(smtpc_info(r.c)->size_limit, 100);
	msg_make(&mf, body_dots, strlen(body_dots), 0, one);
	assert_true(strlen(body_dots) > 100);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_PERM);
	assert_reply(&r.res[0].msg_reply, 552, "5.3.4", "exceeds the limit 100");
	assert_true(r.res[0].reusable);
	client_close(&r);
	msg_free(&mf);
	assert_false(file_contains(p.transcript, "C MAIL"));
	peer_stop(&p);
}

static void test_bare_lf_and_cr(void **state)
{
	static const char *const args[] = {NULL};
	/* a queue file that is not clean: bare LF, bare CR, "." after a bare LF,
	 * a CRLF split across the 64 KiB pread boundary, no line end at the end */
	static const char tail[] = "one\ntwo\rthree\r\n.\n.x\r\nlast";
	static const char tail_wire[] = "one\r\ntwo\r\nthree\r\n..\r\n..x\r\nlast\r\n";
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;
	char *content, *want, *msg;
	size_t clen, wlen, len, i;

	(void)state;
	clen = 65535 + 2 + strlen(tail);
	content = malloc(clen);
	want = malloc(clen + 64);
	memset(content, 'x', 65535);
	content[65535] = '\r'; /* the last octet of the first block */
	content[65536] = '\n';
	memcpy(content + 65537, tail, strlen(tail));
	wlen = 0;
	memcpy(want, content, 65537);
	wlen = 65537;
	memcpy(want + wlen, tail_wire, strlen(tail_wire));
	wlen += strlen(tail_wire);

	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, content, clen, 11, one);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	client_close(&r);
	msg_free(&mf);
	assert_true(file_contains(p.transcript, "MSG 1 "));
	assert_false(file_contains(p.transcript, "BARE"));
	msg = peer_msg(&p, 1, &len);
	assert_int_equal(len, wlen);
	for (i = 0; i < len; i++)
		if (msg[i] != want[i])
			fail_msg("wire differs at octet %zu", i);
	free(msg);
	free(content);
	free(want);
	peer_stop(&p);
}

/* Independent dot-stuffing of clean CRLF content, for comparison. */
static char *stuff_ref(const char *in, size_t n, size_t *outlen)
{
	char *out = malloc(2 * n + 8);
	size_t i, o = 0;
	bool bol = true;

	for (i = 0; i < n; i++) {
		if (bol && in[i] == '.')
			out[o++] = '.';
		out[o++] = in[i];
		bol = in[i] == '\n';
	}
	if (!bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	*outlen = o;
	return out;
}

/* 3 MB over TLS: streamed with flow control, byte-exact at the peer. */
static void test_large_message_tls(void **state)
{
	const char *args[] = {"--tls", cert, key, NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;
	SSL_CTX *ctx;
	char err[256], *content, *want, *msg;
	size_t clen = 3 * 1024 * 1024, i, wlen, len;

	(void)state;
	content = malloc(clen);
	for (i = 0; i < clen; i++) {
		size_t col = i % 80;
		content[i] = col == 78 ? '\r' : col == 79 ? '\n' : col == 0 && (i / 80) % 7 == 0 ? '.' : (char)('a' + (i / 80) % 26);
	}
	want = stuff_ref(content, clen, &wlen);
	ctx = tls_client_ctx(NULL, err, sizeof(err));
	assert_non_null(ctx);
	peer_py(&p, args);
	opts_default(&o);
	o.tls = SMTPC_TLS_OPPORTUNISTIC;
	o.tls_ctx = ctx;
	client_ready(&r, p.port, &o);
	assert_true(smtpc_info(r.c)->tls);
	msg_make(&mf, content, clen, 0, three);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	client_close(&r);
	msg_free(&mf);
	msg = peer_msg(&p, 1, &len);
	assert_int_equal(len, wlen);
	assert_memory_equal(msg, want, len);
	free(msg);
	free(want);
	free(content);
	SSL_CTX_free(ctx);
	peer_stop(&p);
}

/* ---- failures of the connection ---------------------------------------------------- */

static void test_connection_refused(void **state)
{
	struct smtpc_opts o;
	struct run r;
	unsigned port = pick_port(); /* nothing listens there */

	(void)state;
	opts_default(&o);
	client_open(&r, port, &o);
	assert_int_equal(r.opened, -1);
	assert_reply(&r.err, 421, "4.4.1", "Connection refused");
	assert_true(r.err.local);
	event_base_dispatch(base); /* the client frees itself */
}

static void test_greeting_timeout(void **state)
{
	struct smtpc_opts o;
	struct run r;
	struct sockaddr_in sin;
	unsigned port = pick_port();
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	time_t t0;

	(void)state;
	addr_of(port, &sin);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 4), 0); /* the kernel accepts; nobody ever speaks */
	opts_default(&o);
	o.command_timeout = 1;
	t0 = time(NULL);
	client_open(&r, port, &o);
	assert_int_equal(r.opened, -1);
	assert_reply(&r.err, 421, "4.4.2", "timeout while waiting for the greeting");
	assert_true(time(NULL) - t0 <= 4);
	event_base_dispatch(base);
	close(fd);
}

static void test_greeting_refused(void **state)
{
	static const char *const args[] = {"--greeting", "554 5.7.1 go away", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;

	(void)state;
	peer_py(&p, args);
	opts_default(&o);
	client_open(&r, p.port, &o);
	assert_int_equal(r.opened, -1);
	assert_reply(&r.err, 554, "5.7.1", "go away");
	assert_false(r.err.local);
	event_base_dispatch(base);
	assert_true(file_contains(p.transcript, "C QUIT"));
	assert_false(file_contains(p.transcript, "C EHLO"));
	peer_stop(&p);
}

static void test_protocol_errors(void **state)
{
	static const char *const kinds[] = {"long", "many", "malformed", "mixed"};
	static const char *const texts[] = {"longer than 2048 octets", "longer than 100 lines",
					    "malformed reply", "inconsistent multi-line"};
	size_t k;

	(void)state;
	for (k = 0; k < 4; k++) {
		const char *args[] = {"--ehlo-raw", kinds[k], NULL};
		struct peer p;
		struct smtpc_opts o;
		struct run r;

		peer_py(&p, args);
		opts_default(&o);
		client_open(&r, p.port, &o);
		assert_int_equal(r.opened, -1);
		assert_reply(&r.err, 421, "4.5.0", texts[k]);
		assert_true(r.err.local);
		event_base_dispatch(base);
		peer_stop(&p);
	}
}

static void test_data_timeout(void **state)
{
	static const char *const args[] = {"--dot-delay", "3", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;

	(void)state;
	peer_py(&p, args);
	opts_default(&o);
	o.data_timeout = 1;
	client_ready(&r, p.port, &o);
	msg_make(&mf, body_dots, strlen(body_dots), 0, one);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_TEMP);
	assert_reply(&r.res[0].msg_reply, 421, "4.4.2", "timeout while waiting for the reply to "
							"the end of data");
	assert_false(r.res[0].reusable);
	client_close(&r);
	msg_free(&mf);
	peer_stop(&p);
}

/* The queue file is shorter than content_len: never end it with ".". */
static void test_content_unreadable(void **state)
{
	static const char *const args[] = {NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;

	(void)state;
	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, body_dots, strlen(body_dots), 0, one);
	mf.m.content_len = 1000000;
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_TEMP);
	assert_reply(&r.res[0].msg_reply, 421, "4.3.0", "file too short");
	assert_false(r.res[0].reusable);
	client_close(&r);
	msg_free(&mf);
	wait_file_contains(p.transcript, "CLOSE");
	assert_true(file_contains(p.transcript, "C DATA"));
	assert_false(file_contains(p.transcript, "MSG"));
	peer_stop(&p);
}

/* smtpc_close during a transaction: freed at once, the callback never runs. */
static void test_close_in_flight(void **state)
{
	static const char *const args[] = {NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;

	(void)state;
	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, body_dots, strlen(body_dots), 0, one);
	smtpc_send(r.c, &mf.m, on_sent, &r);
	client_close(&r);
	assert_int_equal(r.results, 0);
	msg_free(&mf);
	wait_file_contains(p.transcript, "CLOSE");
	assert_false(file_contains(p.transcript, "C QUIT"));
	peer_stop(&p);
}

/* A non-reusable result closed from inside the callback (as the scheduler does). */
static void test_close_in_callback(void **state)
{
	static const char *const args[] = {NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;

	(void)state;
	peer_py(&p, args);
	opts_default(&o);
	client_ready(&r, p.port, &o);
	msg_make(&mf, body_dots, strlen(body_dots), 0, one);
	r.close_in_cb = true;
	client_send(&r, &mf.m, 1);
	assert_null(r.c);
	event_base_dispatch(base);
	msg_free(&mf);
	assert_int_equal(r.results, 1);
	assert_true(file_contains(p.transcript, "C QUIT"));
	peer_stop(&p);
}

static void test_source_address(void **state)
{
	static const char *const args[] = {NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct sockaddr_in src;

	(void)state;
	peer_py(&p, args);
	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.2", &src.sin_addr);
	opts_default(&o);
	o.source = (struct sockaddr *)&src;
	o.sourcelen = sizeof(src);
	client_ready(&r, p.port, &o);
	client_close(&r);
	assert_true(file_contains(p.transcript, "CONNECT 127.0.0.2\n"));
	peer_stop(&p);
}

/* ---- TLS --------------------------------------------------------------------------- */

static void test_tls_require_not_offered(void **state)
{
	static const char *const args[] = {NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	char err[256];
	SSL_CTX *ctx = tls_client_ctx(NULL, err, sizeof(err));

	(void)state;
	assert_non_null(ctx);
	peer_py(&p, args);
	opts_default(&o);
	o.tls = SMTPC_TLS_REQUIRE;
	o.tls_ctx = ctx;
	o.tls_name = TLS_NAME;
	client_open(&r, p.port, &o);
	assert_int_equal(r.opened, -1);
	assert_reply(&r.err, 421, "4.7.4", "TLS required but not offered by " TLS_NAME "[127.0.0.1]");
	event_base_dispatch(base);
	assert_true(file_contains(p.transcript, "C EHLO client.smtpc.test"));
	assert_true(file_contains(p.transcript, "C QUIT"));
	assert_false(file_contains(p.transcript, "C MAIL"));
	assert_false(file_contains(p.transcript, "C STARTTLS"));
	SSL_CTX_free(ctx);
	peer_stop(&p);
}

static void tls_require_fails(const char *ca, const char *name, const char *why)
{
	const char *args[] = {"--tls", cert, key, NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	char err[256];
	SSL_CTX *ctx = tls_client_ctx(ca, err, sizeof(err));

	assert_non_null(ctx);
	peer_py(&p, args);
	opts_default(&o);
	o.tls = SMTPC_TLS_REQUIRE;
	o.tls_ctx = ctx;
	o.tls_name = name;
	client_open(&r, p.port, &o);
	assert_int_equal(r.opened, -1);
	assert_reply(&r.err, 421, "4.7.5", "certificate verification failed: ");
	if (strstr(r.err.text, why) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", r.err.text, why);
	event_base_dispatch(base);
	wait_file_contains(p.transcript, "CLOSE");
	assert_true(file_contains(p.transcript, "C STARTTLS"));
	assert_false(file_contains(p.transcript, "C MAIL"));
	assert_false(file_contains(p.transcript, "\nTLS "));
	SSL_CTX_free(ctx);
	peer_stop(&p);
}

static void test_tls_require_unverified(void **state)
{
	(void)state;
	tls_require_fails(NULL, TLS_NAME, "self");		  /* self-signed, no CA */
	tls_require_fails(cert, "other.smtpc.test", "hostname mismatch"); /* wrong name */
}

static void test_tls_require_verified(void **state)
{
	const char *args[] = {"--tls", cert, key, NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;
	char err[256], *t, *tls;
	SSL_CTX *ctx = tls_client_ctx(cert, err, sizeof(err));

	(void)state;
	assert_non_null(ctx);
	peer_py(&p, args);
	opts_default(&o);
	o.tls = SMTPC_TLS_REQUIRE;
	o.tls_ctx = ctx;
	o.tls_name = TLS_NAME;
	client_ready(&r, p.port, &o);
	assert_true(smtpc_info(r.c)->tls);
	assert_true(smtpc_info(r.c)->verified);
	assert_non_null(strstr(smtpc_info(r.c)->tls_info, "verified=yes"));
	assert_non_null(strstr(smtpc_info(r.c)->tls_info, "version=TLSv1."));
	msg_make(&mf, body_dots, strlen(body_dots), 0, one);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	client_close(&r);
	msg_free(&mf);
	t = slurp(p.transcript, NULL);
	tls = strstr(t, "\nTLS TLSv1.");
	assert_non_null(tls);
	assert_non_null(strstr(tls, "C EHLO client.smtpc.test")); /* EHLO again after TLS */
	assert_null(strstr(tls, "C STARTTLS"));
	assert_non_null(strstr(tls, "C MAIL FROM:"));
	assert_null(strstr(t, "TLSFAIL"));
	free(t);
	SSL_CTX_free(ctx);
	peer_stop(&p);
}

static void test_tls_opportunistic(void **state)
{
	const char *args[] = {"--tls", cert, key, "--starttls-junk", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;
	char err[256], *t, *tls;
	SSL_CTX *ctx = tls_client_ctx(NULL, err, sizeof(err));

	(void)state;
	assert_non_null(ctx);
	peer_py(&p, args);
	opts_default(&o);
	o.tls = SMTPC_TLS_OPPORTUNISTIC;
	o.tls_ctx = ctx;
	client_ready(&r, p.port, &o);
	assert_true(smtpc_info(r.c)->tls);
	assert_false(smtpc_info(r.c)->verified);
	assert_non_null(strstr(smtpc_info(r.c)->tls_info, "verified=no"));
	msg_make(&mf, body_dots, strlen(body_dots), 0, three);
	client_send(&r, &mf.m, 1);
	assert_int_equal(r.res[0].status, SMTPC_DONE);
	client_close(&r);
	msg_free(&mf);
	t = slurp(p.transcript, NULL);
	tls = strstr(t, "\nTLS TLSv1.");
	assert_non_null(tls);
	assert_true(strstr(t, "C MAIL FROM:") > tls); /* never in clear */
	assert_non_null(strstr(tls, "MSG 1 "));
	free(t);
	SSL_CTX_free(ctx);
	peer_stop(&p);
}

/* OPPORTUNISTIC does not insist, but still says when the certificate
 * checks out (trusted anchor, right name). */
static void test_tls_opportunistic_verified(void **state)
{
	const char *args[] = {"--tls", cert, key, NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	char err[256];
	SSL_CTX *ctx = tls_client_ctx(cert, err, sizeof(err));

	(void)state;
	assert_non_null(ctx);
	peer_py(&p, args);
	opts_default(&o);
	o.tls = SMTPC_TLS_OPPORTUNISTIC;
	o.tls_ctx = ctx;
	o.tls_name = TLS_NAME ".";
	client_ready(&r, p.port, &o);
	assert_true(smtpc_info(r.c)->tls);
	assert_true(smtpc_info(r.c)->verified);
	assert_non_null(strstr(smtpc_info(r.c)->tls_info, "verified=yes"));
	client_close(&r);
	SSL_CTX_free(ctx);
	peer_stop(&p);
}

/* STARTTLS offered but refused: OPPORTUNISTIC goes on in clear, REQUIRE
 * gives up (4.7.4) and QUITs without MAIL. */
static void test_starttls_refused(void **state)
{
	const char *args[] = {"--tls", cert, key, "--starttls-reply", "454 4.7.0 TLS not available",
			      NULL};
	enum smtpc_tls pol[] = {SMTPC_TLS_OPPORTUNISTIC, SMTPC_TLS_REQUIRE};
	char err[256];
	SSL_CTX *ctx = tls_client_ctx(cert, err, sizeof(err));
	int k;

	(void)state;
	assert_non_null(ctx);
	for (k = 0; k < 2; k++) {
		struct peer p;
		struct smtpc_opts o;
		struct run r;
		struct msgf mf;

		peer_py(&p, args);
		opts_default(&o);
		o.tls = pol[k];
		o.tls_ctx = ctx;
		o.tls_name = TLS_NAME;
		client_open(&r, p.port, &o);
		if (pol[k] == SMTPC_TLS_OPPORTUNISTIC) {
			assert_int_equal(r.opened, 1);
			assert_false(smtpc_info(r.c)->tls);
			msg_make(&mf, body_dots, strlen(body_dots), 0, one);
			client_send(&r, &mf.m, 1);
			assert_int_equal(r.res[0].status, SMTPC_DONE);
			client_close(&r);
			msg_free(&mf);
			assert_true(file_contains(p.transcript, "MSG 1 "));
		} else {
			assert_int_equal(r.opened, -1);
			assert_reply(&r.err, 421, "4.7.4", "STARTTLS refused by");
			assert_non_null(strstr(r.err.text, "454 TLS not available"));
			event_base_dispatch(base);
			assert_false(file_contains(p.transcript, "C MAIL"));
		}
		assert_true(file_contains(p.transcript, "C STARTTLS\n"));
		assert_true(file_contains(p.transcript, "C QUIT\n"));
		peer_stop(&p);
	}
	SSL_CTX_free(ctx);
}

/* OPPORTUNISTIC against a peer without STARTTLS: in clear. */
static void test_tls_opportunistic_clear(void **state)
{
	static const char *const args[] = {NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	char err[256];
	SSL_CTX *ctx = tls_client_ctx(NULL, err, sizeof(err));

	(void)state;
	assert_non_null(ctx);
	peer_py(&p, args);
	opts_default(&o);
	o.tls = SMTPC_TLS_OPPORTUNISTIC;
	o.tls_ctx = ctx;
	client_ready(&r, p.port, &o);
	assert_false(smtpc_info(r.c)->tls);
	client_close(&r);
	SSL_CTX_free(ctx);
	peer_stop(&p);
}

/* ---- AUTH ------------------------------------------------------------------------- */

static void auth_case(const char *mechs, const char *pass, bool ok)
{
	const char *args[] = {"--tls", cert, key, "--auth", "relay-user", "s3cret pass",
			      "--auth-mechs", mechs, NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;
	struct msgf mf;
	char err[256], *t;
	SSL_CTX *ctx = tls_client_ctx(NULL, err, sizeof(err));

	peer_py(&p, args);
	opts_default(&o);
	o.tls = SMTPC_TLS_OPPORTUNISTIC;
	o.tls_ctx = ctx;
	o.auth_user = "relay-user";
	o.auth_pass = pass;
	client_open(&r, p.port, &o);
	if (ok) {
		assert_int_equal(r.opened, 1);
		msg_make(&mf, body_dots, strlen(body_dots), 0, one);
		client_send(&r, &mf.m, 1);
		assert_int_equal(r.res[0].status, SMTPC_DONE);
		client_close(&r);
		msg_free(&mf);
	} else {
		assert_int_equal(r.opened, -1);
		assert_reply(&r.err, 421, "4.7.8", "535 5.7.8");
		assert_true(r.err.local);
		event_base_dispatch(base);
	}
	t = slurp(p.transcript, NULL);
	assert_non_null(strstr(t, ok ? "AUTHOK relay-user" : "AUTHFAIL"));
	assert_non_null(strstr(t, strstr(mechs, "PLAIN") ? "C AUTH PLAIN " : "C AUTH LOGIN"));
	assert_true(strstr(t, "\nTLS ") < strstr(t, "C AUTH"));
	assert_non_null(strstr(t, "C QUIT"));
	if (!ok)
		assert_null(strstr(t, "C MAIL"));
	free(t);
	SSL_CTX_free(ctx);
	peer_stop(&p);
}

static void test_auth(void **state)
{
	(void)state;
	auth_case("PLAIN LOGIN", "s3cret pass", true);
	auth_case("LOGIN", "s3cret pass", true);
	auth_case("PLAIN", "wrong", false);
}

static void test_auth_without_tls(void **state)
{
	static const char *const args[] = {"--auth", "u", "p", "--auth-clear", NULL};
	struct peer p;
	struct smtpc_opts o;
	struct run r;

	(void)state;
	peer_py(&p, args);
	opts_default(&o);
	o.auth_user = "u";
	o.auth_pass = "p";
	client_open(&r, p.port, &o);
	assert_int_equal(r.opened, -1);
	assert_reply(&r.err, 421, "4.7.0", "refusing AUTH without TLS");
	event_base_dispatch(base);
	assert_false(file_contains(p.transcript, "C AUTH"));
	assert_true(file_contains(p.transcript, "C QUIT"));
	peer_stop(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sink_three_rcpts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_no_pipelining, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_helo_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_mail_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_data_final_5xx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_421, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_lost_after_dot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_in_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_stalls_in_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stall_in_content_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelining_on_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_refused_then_rset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_354_without_recipients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reuse_two_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smtputf8_not_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smtputf8_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_8bit_to_7bit_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_8bit_large_in_slices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smtputf8_offered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bare_lf_and_cr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_message_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_greeting_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_greeting_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_protocol_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_content_unreadable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_in_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_require_not_offered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_require_unverified, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_require_verified, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_opportunistic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_opportunistic_verified, setup, teardown),
		cmocka_unit_test_setup_teardown(test_starttls_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_opportunistic_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_without_tls, setup, teardown),
	};

	if (getenv("SMTPC_TEST_FILTER") != NULL) /* e.g. "test_auth*" */
		cmocka_set_test_filter(getenv("SMTPC_TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
