/* test_dovecot_auth.c - dir/dovecot_auth.c (issue 7, users { dovecot-auth }):
 * the reply-line parser, table-driven; and the whole exchange against a
 * scripted server on a Unix socket in a temporary directory: what the
 * client sends (VERSION, CPID, the AUTH line with rip, secured and the
 * base64 PLAIN response), each answer mapped to OK / BAD / TEMP, and the
 * bounds (a line too long, too many lines, silence until the deadline, no
 * socket) all ending as TEMP quickly. The real Dovecot is in
 * tests/integration/test_dovecot_auth.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dir/dovecot_auth.h"
#include "util/clock.h"

static void test_parse_lines(void **state)
{
	static const struct {
		const char *line;
		bool ok;
		enum dovecot_line_kind kind;
		unsigned long id;
		bool temp, plain;
		unsigned long major;
	} cases[] = {
		{"VERSION\t1\t2", true, DOVECOT_LINE_VERSION, 0, false, false, 1},
		{"VERSION", false, DOVECOT_LINE_VERSION, 0, false, false, 0},
		{"VERSION\tx", false, DOVECOT_LINE_VERSION, 0, false, false, 0},
		{"MECH\tPLAIN\tplaintext", true, DOVECOT_LINE_MECH, 0, false, true, 0},
		{"MECH\tLOGIN\tplaintext", true, DOVECOT_LINE_MECH, 0, false, false, 0},
		{"MECH\tPLAINX", true, DOVECOT_LINE_MECH, 0, false, false, 0},
		{"MECH", true, DOVECOT_LINE_MECH, 0, false, false, 0},
		{"DONE", true, DOVECOT_LINE_DONE, 0, false, false, 0},
		{"SPID\t123", true, DOVECOT_LINE_OTHER, 0, false, false, 0},
		{"", true, DOVECOT_LINE_OTHER, 0, false, false, 0},
		{"OK\t1\tuser=alice", true, DOVECOT_LINE_OK, 1, false, false, 0},
		{"OK\t42", true, DOVECOT_LINE_OK, 42, false, false, 0},
		{"OK", false, DOVECOT_LINE_OK, 0, false, false, 0},
		{"OK\t", false, DOVECOT_LINE_OK, 0, false, false, 0},
		{"OK\t-1", false, DOVECOT_LINE_OK, 0, false, false, 0},
		{"OK\t1234567890", false, DOVECOT_LINE_OK, 0, false, false, 0},
		{"FAIL\t1\tuser=alice", true, DOVECOT_LINE_FAIL, 1, false, false, 0},
		{"FAIL\t1\ttemp", true, DOVECOT_LINE_FAIL, 1, true, false, 0},
		{"FAIL\t1\tuser=a\tcode=temp_fail\treason=x", true, DOVECOT_LINE_FAIL, 1, true, false, 0},
		{"FAIL\t1\ttempx\tcode=temp_failx", true, DOVECOT_LINE_FAIL, 1, false, false, 0},
		{"OK\t1\ttemp", true, DOVECOT_LINE_OK, 1, false, false, 0},
		{"CONT\t1\t", true, DOVECOT_LINE_CONT, 1, false, false, 0},
		{"ok\t1", true, DOVECOT_LINE_OTHER, 0, false, false, 0},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dovecot_line l;
		bool ok = dovecot_auth_parse_line(cases[i].line, strlen(cases[i].line), &l);
		if (ok != cases[i].ok)
			fail_msg("\"%s\": parse %d", cases[i].line, ok);
		if (!ok)
			continue;
		if (l.kind != cases[i].kind || l.id != cases[i].id || l.temp != cases[i].temp ||
		    l.plain != cases[i].plain || l.major != cases[i].major)
			fail_msg("\"%s\": kind %d id %lu temp %d plain %d major %lu", cases[i].line,
				 l.kind, l.id, l.temp, l.plain, l.major);
	}
}

/* ---- a scripted server -------------------------------------------------- */

struct server {
	char dir[64], path[128];
	int lfd;
	const char *script; /* written at once after accept */
	size_t script_len;
	char got[4096];	    /* what the client sent, until it closed */
	size_t got_len;
	pthread_t th;
};

static void *serve(void *arg)
{
	struct server *sv = arg;
	int fd = accept(sv->lfd, NULL, NULL);
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (sv->script_len)
		(void)!write(fd, sv->script, sv->script_len);
	while (sv->got_len < sizeof(sv->got) - 1 &&
	       (n = read(fd, sv->got + sv->got_len, sizeof(sv->got) - 1 - sv->got_len)) > 0)
		sv->got_len += (size_t)n;
	sv->got[sv->got_len] = '\0';
	close(fd);
	return NULL;
}

static void server_start(struct server *sv, const char *script, size_t len)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	memset(sv, 0, sizeof(*sv));
	strcpy(sv->dir, "/tmp/transit-dvtest-XXXXXX");
	assert_non_null(mkdtemp(sv->dir));
	snprintf(sv->path, sizeof(sv->path), "%s/auth-client", sv->dir);
	strcpy(sun.sun_path, sv->path);
	sv->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(sv->lfd >= 0);
	assert_int_equal(bind(sv->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(sv->lfd, 4), 0);
	sv->script = script;
	sv->script_len = len;
	assert_int_equal(pthread_create(&sv->th, NULL, serve, sv), 0);
}

static void server_stop(struct server *sv)
{
	pthread_join(sv->th, NULL);
	close(sv->lfd);
	unlink(sv->path);
	rmdir(sv->dir);
}

#define HANDSHAKE "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n" \
		  "SPID\t7\nCUID\t1\nCOOKIE\tabc\nDONE\n"

static enum dovecot_result run(const char *script, size_t len, unsigned timeout_ms,
			       const char **why, struct server *sv)
{
	struct dovecot_auth_request rq = {
		.timeout_ms = timeout_ms,
		.remote_ip = "192.0.2.1",
		.login = "alice@example.test",
		.password = "pw",
	};
	enum dovecot_result r;

	server_start(sv, script, len);
	rq.socket_path = sv->path;
	r = dovecot_auth_verify(&rq, why);
	server_stop(sv);
	return r;
}

static void test_exchange(void **state)
{
	static const struct {
		const char *script;
		enum dovecot_result want;
		const char *why;
	} cases[] = {
		{HANDSHAKE "OK\t1\tuser=alice@example.test\n", DOVECOT_AUTH_OK, NULL},
		{HANDSHAKE "OK\t2\nFAIL\t7\nOK\t1\n", DOVECOT_AUTH_OK, NULL},
		{HANDSHAKE "FAIL\t1\tuser=alice@example.test\n", DOVECOT_AUTH_BAD, "bad-credentials"},
		{HANDSHAKE "FAIL\t1\tcode=temp_fail\n", DOVECOT_AUTH_TEMP, "dovecot-temporary-failure"},
		{HANDSHAKE "FAIL\t1\ttemp\n", DOVECOT_AUTH_TEMP, "dovecot-temporary-failure"},
		{HANDSHAKE "CONT\t1\t\n", DOVECOT_AUTH_TEMP, "dovecot-protocol-error"},
		{HANDSHAKE "OK\tx\n", DOVECOT_AUTH_TEMP, "dovecot-protocol-error"},
		{"VERSION\t2\t0\nMECH\tPLAIN\nDONE\nOK\t1\n", DOVECOT_AUTH_TEMP,
		 "dovecot-protocol-version"},
		{"VERSION\t1\t2\nMECH\tLOGIN\nDONE\nOK\t1\n", DOVECOT_AUTH_TEMP,
		 "dovecot-no-plain-mechanism"},
		{"MECH\tPLAIN\nDONE\nOK\t1\n", DOVECOT_AUTH_TEMP, "dovecot-protocol-error"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct server sv;
		const char *why = NULL;
		enum dovecot_result r = run(cases[i].script, strlen(cases[i].script), 5000, &why, &sv);
		if (r != cases[i].want || (cases[i].why && strcmp(why, cases[i].why) != 0))
			fail_msg("case %zu: result %d why %s", i, r, why ? why : "-");
		if (i == 0) {
			/* the request: version, our pid, and one AUTH line */
			char want[256];
			snprintf(want, sizeof(want), "VERSION\t1\t2\nCPID\t%ld\n", (long)getpid());
			assert_memory_equal(sv.got, want, strlen(want));
			/* base64("\0alice@example.test\0pw") */
			assert_non_null(strstr(sv.got, "\nAUTH\t1\tPLAIN\tservice=smtp\tnologin\t"
						       "no-penalty\tsecured\trip=192.0.2.1\t"
						       "resp=AGFsaWNlQGV4YW1wbGUudGVzdABwdw==\n"));
		}
	}
}

/* Bounds: each ends as TEMP, and fast, not by the 5 s deadline. */
static void test_bounds(void **state)
{
	size_t big = DOVECOT_LINE_MAX + 10, n = 0;
	char *script = malloc(big + 20 * (DOVECOT_LINES_MAX + 2));
	struct server sv;
	const char *why = NULL;
	uint64_t t0;
	(void)state;

	assert_non_null(script);
	/* one line longer than DOVECOT_LINE_MAX */
	memset(script, 'x', big);
	t0 = clock_mono_ms();
	assert_int_equal(run(script, big, 5000, &why, &sv), DOVECOT_AUTH_TEMP);
	assert_string_equal(why, "dovecot-protocol-error");
	assert_true(clock_mono_ms() - t0 < 4000);
	/* a handshake that never ends */
	for (int i = 0; i < DOVECOT_LINES_MAX + 2; i++)
		n += (size_t)sprintf(script + n, "SPID\t%d\n", i);
	t0 = clock_mono_ms();
	assert_int_equal(run(script, n, 5000, &why, &sv), DOVECOT_AUTH_TEMP);
	assert_string_equal(why, "dovecot-protocol-error");
	assert_true(clock_mono_ms() - t0 < 4000);
	free(script);
	/* silence: the deadline */
	t0 = clock_mono_ms();
	assert_int_equal(run("", 0, 300, &why, &sv), DOVECOT_AUTH_TEMP);
	assert_string_equal(why, "dovecot-timeout");
	assert_true(clock_mono_ms() - t0 >= 290);
	/* silence after the handshake */
	assert_int_equal(run(HANDSHAKE, strlen(HANDSHAKE), 300, &why, &sv), DOVECOT_AUTH_TEMP);
	assert_string_equal(why, "dovecot-timeout");
	/* nobody listening */
	{
		struct dovecot_auth_request rq = {
			.socket_path = "/nonexistent/transit-test/auth-client",
			.timeout_ms = 1000, .remote_ip = "192.0.2.1",
			.login = "a", .password = "b",
		};
		assert_int_equal(dovecot_auth_verify(&rq, &why), DOVECOT_AUTH_TEMP);
		assert_string_equal(why, "dovecot-unreachable");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_lines),
		cmocka_unit_test(test_exchange),
		cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
