/* test_workq.c - util/workq.c: work() on workers, done() on the loop thread, FIFO start order,
 * counts, done() that submits again, workq_free() with jobs still queued. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "util/workq.h"

#define NJOBS 300

struct fixture {
	struct event_base *base;
	struct workq *wq;
	pthread_t loop_thread;
	pthread_mutex_t mu;
	unsigned start_order[NJOBS]; /* job ids in the order work() started */
	unsigned nstarted;
	atomic_uint work_runs;
	atomic_uint work_on_loop_thread; /* must stay 0 */
	unsigned done_runs;
	unsigned done_off_loop_thread; /* must stay 0 */
	unsigned resubmits_left;
};

struct job {
	struct fixture *f;
	unsigned id;
	bool slow;
};

static struct job jobs[NJOBS];

static void job_work(void *arg)
{
	struct job *j = arg;
	struct fixture *f = j->f;

	pthread_mutex_lock(&f->mu);
	if (f->nstarted < NJOBS)
		f->start_order[f->nstarted++] = j->id;
	pthread_mutex_unlock(&f->mu);
	if (pthread_equal(pthread_self(), f->loop_thread))
		atomic_fetch_add(&f->work_on_loop_thread, 1);
	if (j->slow) {
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	atomic_fetch_add(&f->work_runs, 1);
}

static void job_done(void *arg)
{
	struct job *j = arg;
	struct fixture *f = j->f;

	if (!pthread_equal(pthread_self(), f->loop_thread))
		f->done_off_loop_thread++;
	f->done_runs++;
	if (f->resubmits_left > 0) {
		f->resubmits_left--;
		workq_submit(f->wq, job_work, job_done, j);
	}
}

static void fixture_init(struct fixture *f, int nthreads)
{
	memset(f, 0, sizeof(*f));
	f->base = event_base_new();
	assert_non_null(f->base);
	f->wq = workq_new(f->base, nthreads);
	assert_non_null(f->wq);
	f->loop_thread = pthread_self();
	pthread_mutex_init(&f->mu, NULL);
}

static void fixture_free(struct fixture *f)
{
	workq_free(f->wq);
	event_base_free(f->base);
	pthread_mutex_destroy(&f->mu);
}

/* Run the loop until nothing is pending; fail after 20 s. */
static void run_until_idle(struct fixture *f)
{
	struct timeval start, now;

	gettimeofday(&start, NULL);
	while (workq_pending(f->wq) > 0) {
		event_base_loop(f->base, EVLOOP_ONCE);
		gettimeofday(&now, NULL);
		assert_true(now.tv_sec - start.tv_sec < 20);
	}
}

static void submit_jobs(struct fixture *f, unsigned n, bool slow)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		jobs[i].f = f;
		jobs[i].id = i;
		jobs[i].slow = slow;
		workq_submit(f->wq, job_work, job_done, &jobs[i]);
	}
}

static void test_all_done_on_loop_thread(void **state)
{
	struct fixture f;

	(void)state;
	fixture_init(&f, 4);
	submit_jobs(&f, NJOBS, false);
	assert_true(workq_pending(f.wq) > 0);
	run_until_idle(&f);
	assert_int_equal(workq_pending(f.wq), 0);
	assert_int_equal(atomic_load(&f.work_runs), NJOBS);
	assert_int_equal(f.done_runs, NJOBS);
	assert_int_equal(atomic_load(&f.work_on_loop_thread), 0);
	assert_int_equal(f.done_off_loop_thread, 0);
	fixture_free(&f);
}

static void test_pending_counts_until_done(void **state)
{
	struct fixture f;
	struct timespec ts = {0, 50 * 1000 * 1000};

	(void)state;
	fixture_init(&f, 2);
	submit_jobs(&f, 10, false);
	/* Workers finish quickly, but done() only runs on the loop: until
	 * the loop runs, all ten are still pending. */
	nanosleep(&ts, NULL);
	assert_int_equal(atomic_load(&f.work_runs), 10);
	assert_int_equal(workq_pending(f.wq), 10);
	assert_int_equal(f.done_runs, 0);
	run_until_idle(&f);
	assert_int_equal(workq_pending(f.wq), 0);
	assert_int_equal(f.done_runs, 10);
	fixture_free(&f);
}

static void test_fifo_start_order(void **state)
{
	struct fixture f;
	unsigned i;

	(void)state;
	fixture_init(&f, 1);
	submit_jobs(&f, NJOBS, false);
	run_until_idle(&f);
	assert_int_equal(f.nstarted, NJOBS);
	for (i = 0; i < NJOBS; i++)
		assert_int_equal(f.start_order[i], i);
	fixture_free(&f);
}

static void test_done_may_submit(void **state)
{
	struct fixture f;

	(void)state;
	fixture_init(&f, 3);
	f.resubmits_left = 25;
	submit_jobs(&f, 5, false);
	run_until_idle(&f);
	assert_int_equal(atomic_load(&f.work_runs), 30);
	assert_int_equal(f.done_runs, 30);
	assert_int_equal(f.done_off_loop_thread, 0);
	fixture_free(&f);
}

static void test_free_with_jobs_pending(void **state)
{
	struct fixture f;

	(void)state;
	fixture_init(&f, 2);
	submit_jobs(&f, 40, true); /* 2 ms each: most still queued at free */
	assert_true(atomic_load(&f.work_runs) < 40);
	workq_free(f.wq);
	f.wq = NULL;
	/* Every queued job's work() still ran, no done() did. */
	assert_int_equal(atomic_load(&f.work_runs), 40);
	assert_int_equal(f.done_runs, 0);
	/* The internal event is gone from the base: the loop has nothing. */
	assert_int_equal(event_base_loop(f.base, EVLOOP_NONBLOCK), 1);
	assert_int_equal(f.done_runs, 0);
	event_base_free(f.base);
	pthread_mutex_destroy(&f.mu);
}

static void test_free_idle_and_null(void **state)
{
	struct event_base *base = event_base_new();

	(void)state;
	workq_free(workq_new(base, 0)); /* clamped to one thread */
	workq_free(workq_new(base, 1000));
	workq_free(NULL);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_done_on_loop_thread),
		cmocka_unit_test(test_pending_counts_until_done),
		cmocka_unit_test(test_fifo_start_order),
		cmocka_unit_test(test_done_may_submit),
		cmocka_unit_test(test_free_with_jobs_pending),
		cmocka_unit_test(test_free_idle_and_null),
	};

	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
