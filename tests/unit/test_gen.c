/*
 * test_gen.c - configuration generations (conf/gen.c) and what the daemon
 * builds for one (daemon/gen_build.c): the reference count frees a
 * generation exactly once, when its last holder lets go; the restart-only
 * settings are told apart from the rest; a reload reuses the self-signed
 * certificate and keeps a secret it can no longer read only when the same
 * file is named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/gen.h"
#include "daemon/gen_build.h"
#include "queue/sched.h"

static char dir[] = "/tmp/test_gen.XXXXXX";

/* A configuration from text (spool and paths under dir). */
static struct config *load(const char *extra)
{
	char path[256], text[4096];
	struct config *c;
	FILE *f;

	snprintf(path, sizeof(path), "%s/transit.conf", dir);
	snprintf(text, sizeof(text),
		 "server { fqdn = \"mx.example.test\" spool = \"%s/spool\" }\n"
		 "accepted-domain \"example.test\" { type = \"authoritative\" }\n"
		 "receive-connector \"internet\" { bindings = { \"127.0.0.1:2525\" } tls = \"offer\" }\n"
		 "%s",
		 dir, extra);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	c = conf_load(path);
	assert_non_null(c);
	return c;
}

static int released;
static void count_release(struct conf_gen *g)
{
	(void)g;
	released++;
}

static void test_refcount_lifecycle(void **state)
{
	unsigned before = conf_gen_alive();
	struct conf_gen *g = conf_gen_new(load(""), 1);
	struct conf_gen *s1, *s2;
	(void)state;

	released = 0;
	g->release = count_release;
	assert_int_equal(conf_gen_alive(), before + 1);
	s1 = conf_gen_ref(g); /* a session */
	s2 = conf_gen_ref(g); /* a delivery batch */
	assert_ptr_equal(s1, g);
	conf_gen_unref(g);    /* the daemon moved to the next generation */
	conf_gen_unref(s1);
	assert_int_equal(released, 0);
	assert_int_equal(conf_gen_alive(), before + 1);
	conf_gen_unref(s2);   /* the last holder: freed now, once */
	assert_int_equal(released, 1);
	assert_int_equal(conf_gen_alive(), before);
	conf_gen_unref(NULL);
	assert_null(conf_gen_ref(NULL));
}

static void test_restart_only_changes(void **state)
{
	struct config *a = load("");
	struct config *b = load("receive-connector \"more\" { bindings = { \"127.0.0.1:2526\" } }\n"
				"accepted-domain \"new.test\" { type = \"authoritative\" }\n");
	struct config *c = load("queue { delivery-threads = 7 }\n"
				"dns { servers = { \"127.0.0.1:5353\" } }\n");
	(void)state;

	assert_int_equal(conf_gen_restart_only_changes(a, a), 0);
	/* connectors and domains apply at once */
	assert_int_equal(conf_gen_restart_only_changes(a, b), 0);
	assert_int_equal(conf_gen_restart_only_changes(a, c), 2);
	conf_free(a);
	conf_free(b);
	conf_free(c);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_build_reuses_what_it_cannot_read_again(void **state)
{
	char secret[256], other[256], extra[1024], err[512];
	struct conf_gen *g1, *g2, *g3;
	(void)state;

	snprintf(secret, sizeof(secret), "%s/secret", dir);
	snprintf(other, sizeof(other), "%s/other-secret", dir);
	write_file(secret, "relayuser:pw1\n");
	snprintf(extra, sizeof(extra),
		 "send-connector \"partner\" { address-spaces = { \"partner.test\" }\n"
		 "  smart-hosts = { \"[127.0.0.2]:25\" } tls = \"none\" auth-secret = \"%s\" }\n",
		 secret);
	g1 = gen_build(load(extra), NULL, err, sizeof(err));
	if (g1 == NULL)
		fail_msg("gen_build: %s", err);
	assert_int_equal(g1->number, 1);
	assert_non_null(g1->rc_tls[0]);
	assert_string_equal(g1->sc[0].auth_user, "relayuser");

	/* the same file, gone now (as unreadable as a root-only file would be
	 * for server.user): the secret read before is kept; the receive
	 * connector has a context of its own generation (net/tls_runtime.c) */
	unlink(secret);
	g2 = gen_build(load(extra), g1, err, sizeof(err));
	assert_non_null(g2);
	assert_int_equal(g2->number, 2);
	assert_non_null(g2->rc_tls[0]);
	assert_ptr_not_equal(g2->rc_tls, g1->rc_tls);
	assert_string_equal(g2->sc[0].auth_user, "relayuser");
	assert_string_equal(g2->sc[0].auth_pass, "pw1");

	/* a new file that cannot be read refuses the generation */
	snprintf(extra, sizeof(extra),
		 "send-connector \"partner\" { address-spaces = { \"partner.test\" }\n"
		 "  smart-hosts = { \"[127.0.0.2]:25\" } tls = \"none\" auth-secret = \"%s\" }\n",
		 other);
	g3 = gen_build(load(extra), g2, err, sizeof(err));
	assert_null(g3);
	assert_non_null(strstr(err, "send-connector partner: auth-secret"));

	conf_gen_unref(g1);
	conf_gen_unref(g2); /* the shared TLS context is freed with the last */
}

static int setup(void **state)
{
	char spool[256];
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(spool, sizeof(spool), "%s/spool", dir);
	return mkdir(spool, 0700);
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refcount_lifecycle),
		cmocka_unit_test(test_restart_only_changes),
		cmocka_unit_test(test_build_reuses_what_it_cannot_read_again),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
