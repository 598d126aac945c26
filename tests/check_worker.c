/*
 * check_worker.c - the worker pool: every job runs once on a thread
 * other than the loop's, its done() runs once on the loop's, never
 * inside worker_submit(), and worker_free() finishes everything,
 * including jobs that done() callbacks submit.
 */
#include "config.h"

#include "worker.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <event2/event.h>

#include "util.h"

#define NJOBS	200

struct rec {
	struct worker	*w;
	pthread_t	 loop;		/* the loop's thread */
	atomic_int	 ran;
	atomic_bool	 ran_on_loop;
	int		 done;		/* loop thread only */
	bool		 done_off_loop;
	int		 more;		/* jobs done() submits in turn */
};

static void
job_run(void *arg)
{
	struct rec	*r = arg;

	if (pthread_equal(pthread_self(), r->loop))
		atomic_store(&r->ran_on_loop, true);
	atomic_fetch_add(&r->ran, 1);
}

static void
job_done(void *arg)
{
	struct rec	*r = arg;

	if (!pthread_equal(pthread_self(), r->loop))
		r->done_off_loop = true;
	r->done++;
	if (r->more > 0) {
		r->more--;
		worker_submit(r->w, job_run, job_done, r);
	}
}

static void
rec_init(struct rec *r, struct worker *w)
{
	r->w = w;
	r->loop = pthread_self();
	atomic_init(&r->ran, 0);
	atomic_init(&r->ran_on_loop, false);
	r->done = 0;
	r->done_off_loop = false;
	r->more = 0;
}

START_TEST(test_jobs_come_back_on_the_loop)
{
	struct event_base	*base = event_base_new();
	struct worker		*w = worker_new(base, 4);
	struct timeval		 tick = { 0, 100000 };
	struct rec		 r;
	uint64_t		 deadline = time_mono_ms() + 10000;
	int			 i;

	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(worker_threads(w), 4);
	rec_init(&r, w);
	for (i = 0; i < NJOBS; i++)
		worker_submit(w, job_run, job_done, &r);
	ck_assert_int_eq(r.done, 0);	/* never from inside submit */
	while (r.done < NJOBS) {
		ck_assert_msg(time_mono_ms() < deadline, "jobs timed out");
		event_base_loopexit(base, &tick);
		event_base_loop(base, EVLOOP_ONCE);
	}
	ck_assert_int_eq(atomic_load(&r.ran), NJOBS);
	ck_assert_int_eq(r.done, NJOBS);
	ck_assert(!atomic_load(&r.ran_on_loop));
	ck_assert(!r.done_off_loop);
	worker_free(w);
	event_base_free(base);
}
END_TEST

START_TEST(test_free_finishes_everything)
{
	struct event_base	*base = event_base_new();
	struct worker		*w = worker_new(base, 2);
	struct rec		 r;
	int			 i;

	rec_init(&r, w);
	r.more = 50;
	for (i = 0; i < 10; i++)
		worker_submit(w, job_run, job_done, &r);
	worker_submit(w, job_run, NULL, &r);
	/* The loop never ran: worker_free() itself runs the done()s. */
	worker_free(w);
	ck_assert_int_eq(atomic_load(&r.ran), 61);
	ck_assert_int_eq(r.done, 60);
	ck_assert_int_eq(r.more, 0);
	ck_assert(!r.done_off_loop);
	event_base_free(base);
	worker_free(NULL);
}
END_TEST

static Suite *
worker_suite(void)
{
	Suite	*s = suite_create("worker");
	TCase	*tc = tcase_create("jobs");

	tcase_add_test(tc, test_jobs_come_back_on_the_loop);
	tcase_add_test(tc, test_free_finishes_everything);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(worker_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
