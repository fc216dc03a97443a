/*
 * test_recipient.c - policy/recipient.c: the one recipient decision, table
 * driven (rules in order: bare postmaster, relay tricks, relay permission
 * with and without AUTH, no route, connector restrictions, postmaster and
 * abuse, the passwd-file), which local mailboxes the directory knows, and
 * the route explain text built from the same decision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "dir/passwd.h"
#include "mail/addr.h"
#include "policy/recipient.h"
#include "util/buf.h"

static const char conf_fmt[] =
	"server { postmaster = \"postmaster@example.test\" }\n"
	"accepted-domain \"example.test\" { type = \"authoritative\" }\n"
	"accepted-domain \"relay.example.test\" { type = \"internal-relay\" }\n"
	"mailboxes { maildir = \"/m/%%d/%%u/Maildir\" }\n"
	"users { passwd-file = \"%s\" }\n"
	"receive-connector \"internet\" { bindings = { \"127.0.0.1:2525\" } }\n"
	"receive-connector \"devices\" {\n"
	"  bindings = { \"127.0.0.1:2525\" }\n"
	"  remote-ip-ranges = { \"127.0.0.0/8\" }\n"
	"  permissions = { \"relay\" }\n"
	"}\n"
	"receive-connector \"submission\" {\n"
	"  bindings = { \"127.0.0.1:2587\" }\n"
	"  permissions = { \"authenticated\" }\n"
	"}\n"
	"send-connector \"partner\" {\n"
	"  address-spaces = { \"partner.test\", \"relay.example.test\" }\n"
	"  smart-hosts = { \"[mx1.partner.test]:25\" }\n"
	"  max-message-size = \"100K\"\n"
	"  allowed-senders = { \"*@example.test\" }\n"
	"}\n";

struct fixture {
	char dir[64];
	char users_path[128];
	struct config *c;
	struct passwd_db *users;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char conf_path[128], err[256];
	FILE *f;

	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_recipient.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->users_path, sizeof(fx->users_path), "%s/users", fx->dir);
	assert_int_equal(passwd_file_add(fx->users_path, "alice@example.test", "pw", err, sizeof(err)), 0);
	assert_int_equal(passwd_file_add(fx->users_path, "abuse@example.test", "pw", err, sizeof(err)), 0);
	snprintf(conf_path, sizeof(conf_path), "%s/transit.conf", fx->dir);
	f = fopen(conf_path, "w");
	assert_non_null(f);
	fprintf(f, conf_fmt, fx->users_path);
	fclose(f);
	fx->c = conf_load(conf_path);
	unlink(conf_path);
	assert_non_null(fx->c);
	fx->users = passwd_db_open(fx->users_path);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char lock[160];

	passwd_db_free(fx->users);
	conf_free(fx->c);
	snprintf(lock, sizeof(lock), "%s.lock", fx->users_path);
	unlink(lock);
	unlink(fx->users_path);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static const struct receive_connector *rc_named(const struct config *c, const char *name)
{
	size_t i;
	for (i = 0; i < c->nrcs; i++)
		if (strcmp(c->rcs[i].name, name) == 0)
			return &c->rcs[i];
	fail_msg("no connector %s", name);
	return NULL;
}

static void test_decisions(void **state)
{
	struct fixture *fx = *state;
	static const struct {
		const char *rcpt, *connector;
		bool auth;
		const char *sender;
		uint64_t size;
		int code;
		const char *enh;
		enum recipient_kind kind;
		const char *final; /* or NULL */
	} cases[] = {
		{"alice@example.test", "internet", false, "b@x.test", 0, 250, "2.1.5", RECIPIENT_MAILBOX,
		 "alice@example.test"},
		{"ALICE@Example.Test", "internet", false, "b@x.test", 0, 250, "2.1.5", RECIPIENT_MAILBOX,
		 "ALICE@example.test"},
		{"carol@example.test", "internet", false, "b@x.test", 0, 550, "5.1.1", RECIPIENT_REFUSED,
		 NULL},
		{"carol@example.test", "devices", false, "b@x.test", 0, 550, "5.1.1", RECIPIENT_REFUSED,
		 NULL},
		{"postmaster@example.test", "internet", false, "", 0, 250, "2.1.5", RECIPIENT_MAILBOX,
		 "postmaster@example.test"},
		{"postmaster", "internet", false, "", 0, 250, "2.1.5", RECIPIENT_MAILBOX,
		 "postmaster@example.test"},
		{"root", "internet", false, "", 0, 501, "5.1.3", RECIPIENT_REFUSED, NULL},
		/* abuse has a mailbox of its own here */
		{"abuse@example.test", "internet", false, "", 0, 250, "2.1.5", RECIPIENT_MAILBOX,
		 "abuse@example.test"},
		/* relay permission: the connector's "relay", or AUTH on "authenticated" */
		{"x@partner.test", "internet", false, "alice@example.test", 0, 550, "5.7.1",
		 RECIPIENT_REFUSED, NULL},
		{"x@partner.test", "submission", false, "alice@example.test", 0, 550, "5.7.1",
		 RECIPIENT_REFUSED, NULL},
		{"x@partner.test", "submission", true, "alice@example.test", 0, 250, "2.1.5",
		 RECIPIENT_ROUTED, "x@partner.test"},
		{"x@partner.test", "internet", true, "alice@example.test", 0, 550, "5.7.1",
		 RECIPIENT_REFUSED, NULL},
		{"x@partner.test", "devices", false, "alice@example.test", 0, 250, "2.1.5",
		 RECIPIENT_ROUTED, "x@partner.test"},
		/* the chosen connector's restrictions, never a fallback */
		{"x@partner.test", "devices", false, "alice@example.test", 200 * 1024, 552, "5.3.4",
		 RECIPIENT_REFUSED, NULL},
		{"x@partner.test", "devices", false, "m@evil.test", 0, 550, "5.7.1", RECIPIENT_REFUSED,
		 NULL},
		{"x@other.test", "devices", false, "alice@example.test", 0, 550, "5.4.4",
		 RECIPIENT_REFUSED, NULL},
		/* internal-relay: accepted from anyone, routed out */
		{"x@relay.example.test", "internet", false, "alice@example.test", 0, 250, "2.1.5",
		 RECIPIENT_ROUTED, "x@relay.example.test"},
		/* relay tricks: refused before any mailbox is looked up */
		{"alice%partner.test@example.test", "internet", false, "b@x.test", 0, 550, "5.7.1",
		 RECIPIENT_REFUSED, NULL},
		{"\"x@partner.test\"@example.test", "internet", false, "b@x.test", 0, 550, "5.7.1",
		 RECIPIENT_REFUSED, NULL},
		/* an address literal that is not ours is a foreign domain */
		{"x@[192.0.2.1]", "internet", false, "b@x.test", 0, 550, "5.7.1", RECIPIENT_REFUSED,
		 NULL},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct recipient_client client = {.rc = rc_named(fx->c, cases[i].connector),
						  .authenticated = cases[i].auth};
		struct recipient_verdict v;
		struct mail_addr to;
		const char *why;

		assert_int_equal(addr_parse(cases[i].rcpt, strlen(cases[i].rcpt), false, &to, &why),
				 ADDR_OK);
		recipient_decide(fx->c, fx->users, &client, cases[i].sender, cases[i].size, &to, &v);
		if (v.code != cases[i].code || strcmp(v.enh, cases[i].enh) != 0 ||
		    v.kind != cases[i].kind)
			fail_msg("case %zu %s on %s: got %d %s kind %d (%s), want %d %s kind %d", i,
				 cases[i].rcpt, cases[i].connector, v.code, v.enh, (int)v.kind, v.text,
				 cases[i].code, cases[i].enh, (int)cases[i].kind);
		if (cases[i].final)
			assert_string_equal(v.final, cases[i].final);
		assert_non_null(v.why);
	}
}

static void test_mailbox_known(void **state)
{
	struct fixture *fx = *state;

	assert_true(recipient_mailbox_known(fx->c, fx->users, "alice@example.test"));
	assert_true(recipient_mailbox_known(fx->c, fx->users, "Alice@EXAMPLE.test"));
	/* server.postmaster is named by the configuration */
	assert_true(recipient_mailbox_known(fx->c, fx->users, "postmaster@example.test"));
	assert_false(recipient_mailbox_known(fx->c, fx->users, "phantom123@example.test"));
	assert_false(recipient_mailbox_known(fx->c, fx->users, "\"../../escape\"@example.test"));
	/* not local at all */
	assert_false(recipient_mailbox_known(fx->c, fx->users, "alice@relay.example.test"));
	assert_false(recipient_mailbox_known(fx->c, fx->users, "alice@partner.test"));
	assert_true(recipient_is_local(fx->c, "phantom123@example.test"));
	assert_false(recipient_is_local(fx->c, "x@relay.example.test"));
	assert_false(recipient_is_local(fx->c, "no-domain"));
}

static void test_explain(void **state)
{
	struct fixture *fx = *state;
	struct buf out = BUF_INIT;

	/* the unknown mailbox: what RCPT answers, exit 1 */
	assert_int_equal(recipient_explain(fx->c, fx->users, "bob@example.test", NULL, 0, "internet",
					   false, NULL, &out), 1);
	assert_non_null(strstr(out.data, "result: refused 550 5.1.1 <bob@example.test>: Recipient "
					 "address rejected: mailbox unavailable\n"));
	buf_reset(&out);
	/* a mailbox: the expanded path, never the template */
	assert_int_equal(recipient_explain(fx->c, fx->users, "<Alice@example.test>", NULL, 0, NULL,
					   false, NULL, &out), 0);
	assert_non_null(strstr(out.data, "result: accepted, local delivery to mailbox "
					 "/m/example.test/alice/Maildir\n"));
	assert_null(strstr(out.data, "%u"));
	buf_reset(&out);
	/* restrictions of the chosen connector, with the connectors considered */
	assert_int_equal(recipient_explain(fx->c, fx->users, "bob@partner.test", "alice@example.test",
					   200 * 1024, "devices", false, NULL, &out), 1);
	assert_non_null(strstr(out.data, "partner          spaces=partner.test;1,relay.example.test;1"
					 "  CHOSEN"));
	assert_non_null(strstr(out.data, "result: refused 552 5.3.4 <bob@partner.test>: "));
	assert_non_null(strstr(out.data, "no fallback"));
	buf_reset(&out);
	/* "authenticated" relays only after AUTH: the disagreement of old */
	assert_int_equal(recipient_explain(fx->c, fx->users, "bob@partner.test", "alice@example.test",
					   0, "submission", false, NULL, &out), 1);
	assert_non_null(strstr(out.data, "relaying not allowed"));
	assert_non_null(strstr(out.data, "result: refused 550 5.7.1 <bob@partner.test>: Relay "
					 "access denied\n"));
	buf_reset(&out);
	assert_int_equal(recipient_explain(fx->c, fx->users, "bob@partner.test", "alice@example.test",
					   0, "submission", true, NULL, &out), 0);
	assert_non_null(strstr(out.data, "result: accepted, relayed through send connector partner\n"));
	buf_reset(&out);
	assert_int_equal(recipient_explain(fx->c, fx->users, "bob@partner.test", NULL, 0, "nope",
					   false, NULL, &out), 1);
	assert_non_null(strstr(out.data, "receive connector nope: not configured"));
	buf_reset(&out);
	assert_int_equal(recipient_explain(fx->c, fx->users, "not an address", NULL, 0, NULL, false,
					   NULL, &out), 1);
	assert_non_null(strstr(out.data, "result: refused 501 5.1.3"));
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_decisions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_known, setup, teardown),
		cmocka_unit_test_setup_teardown(test_explain, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
