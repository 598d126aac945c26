/*
 * check_spoolbatch.c - group commit: a batch takes everything pending,
 * what arrives while it runs forms the next one, one sync per batch,
 * a failed sync fails exactly the batch's staged items, and every item
 * is reported once, on the loop, a batch in the order added.
 */
#include "config.h"

#include "spoolbatch.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include "util.h"
#include "worker.h"

#define NITEMS		40
#define TIMEOUT_MS	10000

struct ctx;

struct item {
	struct ctx	*c;
	int		 n;		/* order added */
	bool		 stage;		/* what run() returns */
	bool		 gate;		/* run() waits for the gate */
	atomic_int	 ran_in;	/* syncs before run(), +1 */
	atomic_int	 unsynced;	/* the error given to unsync() */
	int		 done;
};

struct ctx {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	bool		 open;		/* the gate */
	bool		 waiting;	/* a run() is at the gate */
	atomic_int	 syncs;
	int		 sync_err;
	int		 ndone;		/* loop only */
	int		 last_done;	/* see item_done(), loop only */
	bool		 out_of_order;
	struct spoolbatch *b;
	struct item	*more;		/* added by the first done() */
};

/* Waits for <flag> under c->lock, at most TIMEOUT_MS. */
static bool
ctx_wait(struct ctx *c, bool *flag)
{
	struct timespec	until;
	bool		ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += TIMEOUT_MS / 1000;
	pthread_mutex_lock(&c->lock);
	while (!*flag && pthread_cond_timedwait(&c->cond, &c->lock,
	    &until) != ETIMEDOUT)
		;
	ok = *flag;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

static void
ctx_set(struct ctx *c, bool *flag)
{
	pthread_mutex_lock(&c->lock);
	*flag = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static bool
item_run(void *arg)
{
	struct item	*it = arg;

	atomic_store(&it->ran_in, atomic_load(&it->c->syncs) + 1);
	if (it->gate) {
		ctx_set(it->c, &it->c->waiting);
		ctx_wait(it->c, &it->c->open);
	}
	return it->stage;
}

static int
item_sync(void *arg)
{
	struct ctx	*c = arg;

	atomic_fetch_add(&c->syncs, 1);
	return c->sync_err;
}

static void
item_unsync(void *arg, int err)
{
	struct item	*it = arg;

	atomic_store(&it->unsynced, err);
}

static void
item_done(void *arg)
{
	struct item	*it = arg;
	struct ctx	*c = it->c;

	it->done++;
	/* The order within the batch of items 1 to NITEMS - 1. */
	if (it->n >= 1 && it->n < NITEMS) {
		if (it->n <= c->last_done)
			c->out_of_order = true;
		c->last_done = it->n;
	}
	c->ndone++;
	if (c->more != NULL) {
		spoolbatch_add(c->b, c->more);
		c->more = NULL;
	}
}

static const struct spoolbatch_ops ops = {
	.run = item_run,
	.sync = item_sync,
	.unsync = item_unsync,
	.done = item_done,
};

static void
ctx_init(struct ctx *c, struct item *items, int n)
{
	int	i;

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->open = c->waiting = false;
	atomic_init(&c->syncs, 0);
	c->sync_err = 0;
	c->ndone = 0;
	c->last_done = -1;
	c->out_of_order = false;
	c->b = NULL;
	c->more = NULL;
	for (i = 0; i < n; i++) {
		items[i].c = c;
		items[i].n = i;
		items[i].stage = true;
		items[i].gate = false;
		atomic_init(&items[i].ran_in, 0);
		atomic_init(&items[i].unsynced, 0);
		items[i].done = 0;
	}
}

static void
loop_until(struct event_base *base, const int *count, int want)
{
	struct timeval	tick = { 0, 100000 };
	uint64_t	deadline = time_mono_ms() + TIMEOUT_MS;

	while (*count < want) {
		ck_assert_msg(time_mono_ms() < deadline, "batches timed out");
		event_base_loopexit(base, &tick);
		event_base_loop(base, EVLOOP_ONCE);
	}
}

START_TEST(test_batch_takes_everything_pending)
{
	struct event_base	*base = event_base_new();
	struct worker		*w = worker_new(base, 4);
	struct spoolbatch_stats	 st;
	struct item		 items[NITEMS + 1];
	struct ctx		 c;
	int			 i;

	ctx_init(&c, items, NITEMS + 1);
	c.b = spoolbatch_new(w, &ops, &c);
	/* The first item is a batch of its own and holds it open. */
	items[0].gate = true;
	spoolbatch_add(c.b, &items[0]);
	ck_assert_msg(ctx_wait(&c, &c.waiting), "first batch never ran");
	for (i = 1; i < NITEMS; i++)
		spoolbatch_add(c.b, &items[i]);
	ck_assert_int_eq(c.ndone, 0);	/* never from inside add */
	/* The first done() adds one more: it joins the pending ones. */
	c.more = &items[NITEMS];
	ctx_set(&c, &c.open);
	loop_until(base, &c.ndone, NITEMS + 1);
	/* The first batch ran before the others came. */
	ck_assert_int_eq(atomic_load(&items[0].ran_in), 1);
	for (i = 0; i <= NITEMS; i++) {
		ck_assert_int_eq(items[i].done, 1);
		ck_assert_int_eq(atomic_load(&items[i].unsynced), 0);
	}
	/* 41 items, 3 batches, the largest 39: the first alone, the 39
	 * that came while it ran together (reported in the order added),
	 * and the one added by a done() after them. */
	ck_assert(!c.out_of_order);
	ck_assert_int_eq(atomic_load(&c.syncs), 3);
	spoolbatch_get_stats(c.b, &st);
	ck_assert_uint_eq(st.batches, 3);
	ck_assert_uint_eq(st.items, NITEMS + 1);
	ck_assert_uint_eq(st.max_items, NITEMS - 1);
	spoolbatch_free(c.b);
	worker_free(w);
	event_base_free(base);
}
END_TEST

START_TEST(test_failed_sync_fails_the_batch)
{
	struct event_base	*base = event_base_new();
	struct worker		*w = worker_new(base, 3);
	struct item		 items[NITEMS];
	struct ctx		 c;
	int			 i;

	ctx_init(&c, items, NITEMS);
	c.b = spoolbatch_new(w, &ops, &c);
	c.sync_err = EIO;
	for (i = 0; i < NITEMS; i++) {
		items[i].stage = i % 3 != 0;
		spoolbatch_add(c.b, &items[i]);
	}
	loop_until(base, &c.ndone, NITEMS);
	for (i = 0; i < NITEMS; i++) {
		ck_assert_int_eq(items[i].done, 1);
		ck_assert_int_eq(atomic_load(&items[i].unsynced),
		    items[i].stage ? EIO : 0);
	}
	spoolbatch_free(c.b);
	worker_free(w);
	event_base_free(base);
}
END_TEST

START_TEST(test_no_sync_without_staged_items)
{
	struct event_base	*base = event_base_new();
	struct worker		*w = worker_new(base, 1);
	struct item		 items[3];
	struct ctx		 c;
	int			 i;

	ctx_init(&c, items, 3);
	c.b = spoolbatch_new(w, &ops, &c);
	for (i = 0; i < 3; i++) {
		items[i].stage = false;
		spoolbatch_add(c.b, &items[i]);
	}
	/* worker_free() finishes the batches without the loop. */
	worker_free(w);
	ck_assert_int_eq(c.ndone, 3);
	ck_assert_int_eq(atomic_load(&c.syncs), 0);
	spoolbatch_free(c.b);
	event_base_free(base);
}
END_TEST

static Suite *
spoolbatch_suite(void)
{
	Suite	*s = suite_create("spoolbatch");
	TCase	*tc = tcase_create("batches");

	tcase_add_test(tc, test_batch_takes_everything_pending);
	tcase_add_test(tc, test_failed_sync_fails_the_batch);
	tcase_add_test(tc, test_no_sync_without_staged_items);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(spoolbatch_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
