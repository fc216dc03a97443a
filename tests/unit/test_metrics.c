/* test_metrics.c - util/metrics.c (exposition format, label escaping,
 * counting from several threads) and ctl/status_page.c's HTML escaping. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctl/status_page.h"
#include "util/metrics.h"

static const struct metric_family fam_c = {"test_things_total", METRIC_COUNTER, "Things.",
					   {"connector", NULL}};
static const struct metric_family fam_g = {"test_level", METRIC_GAUGE, "A level.", {NULL, NULL}};
static const struct metric_family fam_2 = {"test_pairs_total", METRIC_COUNTER, "Pairs.",
					   {"direction", "version"}};

static void test_render(void **state)
{
	struct buf b = BUF_INIT;
	(void)state;

	metrics_reset();
	metrics_add(&fam_c, "internet", NULL, 2);
	metrics_add(&fam_c, "internet", NULL, 1);
	metrics_add(&fam_c, "we\"ird\\name\nx", NULL, 1);
	metrics_set(&fam_g, NULL, NULL, 2);
	metrics_add(&fam_2, "inbound", "TLSv1.3", 1);
	metrics_render(&b);
	assert_non_null(strstr(b.data, "# HELP test_things_total Things.\n"
					"# TYPE test_things_total counter\n"
					"test_things_total{connector=\"internet\"} 3\n"
					"test_things_total{connector=\"we\\\"ird\\\\name\\nx\"} 1\n"));
	assert_non_null(strstr(b.data, "# TYPE test_level gauge\ntest_level 2\n"));
	assert_non_null(strstr(b.data, "test_pairs_total{direction=\"inbound\",version=\"TLSv1.3\"} 1\n"));
	assert_int_equal(metrics_get(&fam_c, "internet", NULL), 3);
	assert_int_equal(metrics_get(&fam_c, "absent", NULL), 0);
	buf_free(&b);
	metrics_reset();
}

static void *adder(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10000; i++)
		metrics_add(&fam_c, i % 2 ? "a" : "b", NULL, 1);
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t t[4];
	(void)state;

	metrics_reset();
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, adder, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(metrics_get(&fam_c, "a", NULL), 20000);
	assert_int_equal(metrics_get(&fam_c, "b", NULL), 20000);
	metrics_reset();
}

static void test_html_escape(void **state)
{
	struct buf b = BUF_INIT;
	(void)state;

	status_html_escape(&b, "\"<script>alert('x')</script>\"@a&b\r\n");
	assert_string_equal(b.data, "&quot;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;@a&amp;b  ");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_html_escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
