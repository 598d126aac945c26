/*
 * spoolbatch.c - group commit: everything pending in one batch, its
 * items' work spread over the worker threads, one sync per batch.
 *
 * A batch starts when none is staging (running its items' own work):
 * from spoolbatch_add() on the loop when nothing was staging, or from
 * the worker thread whose job finished the last item of the batch
 * before, which then runs that batch's sync while the new one stages
 * (a batch's sync covers what its items did; it need not wait for the
 * sync before it).  So an item waits for at most the staging in
 * progress and its own batch.  A batch submits two jobs fewer than
 * there are threads, so that a batch alone does not occupy every
 * thread (nothing reserves one: jobs run in the order submitted, and
 * an AUTH check or pickup copy can wait behind a batch's jobs); each
 * job takes the next item not yet taken until none is left.  The
 * completion of the job that ran the sync reports the whole batch on
 * the loop.
 */
#include "config.h"

#include "spoolbatch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "util.h"
#include "worker.h"

static const unsigned long spoolbatch_bounds[SPOOLBATCH_NBUCKETS - 1] = {
	SPOOLBATCH_BUCKET_BOUNDS_US
};

struct spoolbatch {
	struct worker			*worker;	/* borrowed */
	const struct spoolbatch_ops	*ops;		/* borrowed */
	void				*ctx;
	pthread_mutex_t			 lock;	/* guards the four below */
	void				**pending;
	size_t				 npending;
	size_t				 pendingsz;
	bool				 staging;	/* a batch stages */
	unsigned long			 inflight;	/* items added, not
						 * yet reported (loop only) */
	struct spoolbatch_stats		 st;		/* loop only */
};

/* One batch: filled before its jobs are submitted, read by them, back
 * on the loop after the last. */
struct spoolbatch_run {
	struct spoolbatch		*b;
	void				**items;
	bool				*staged;
	size_t				 nitems;
	atomic_size_t			 next;		/* next item to run */
	atomic_uint			 running;	/* jobs still staging */
	struct timespec			 start, end;
};

/* One job of a batch. */
struct spoolbatch_job {
	struct spoolbatch_run		*run;
	bool				 last;	/* ran the sync */
};

static void	spoolbatch_job_run(void *);
static void	spoolbatch_job_done(void *);

static uint64_t
spoolbatch_us(const struct timespec *a, const struct timespec *b)
{
	int64_t	us;

	us = (int64_t)(b->tv_sec - a->tv_sec) * 1000000 +
	    (b->tv_nsec - a->tv_nsec) / 1000;
	return us > 0 ? (uint64_t)us : 0;
}

/* Under the lock, with nothing staging and something pending: makes
 * the pending items the batch <r> (allocated before the lock, so that
 * a thread holding it never waits inside malloc).  The caller submits
 * it after unlocking (spoolbatch_submit()). */
static void
spoolbatch_take(struct spoolbatch *b, struct spoolbatch_run *r)
{
	r->b = b;
	r->items = b->pending;
	r->nitems = b->npending;
	b->pending = NULL;
	b->npending = b->pendingsz = 0;
	b->staging = true;
	clock_gettime(CLOCK_MONOTONIC, &r->start);
}

static void
spoolbatch_submit(struct spoolbatch_run *r)
{
	struct spoolbatch	*b = r->b;
	struct spoolbatch_job	*job;
	unsigned int		 njobs, i;

	r->staged = xcalloc(r->nitems, sizeof(*r->staged));
	njobs = worker_threads(b->worker);
	njobs = njobs > 2 ? njobs - 2 : 1;
	if (njobs > r->nitems)
		njobs = (unsigned int)r->nitems;
	atomic_init(&r->next, 0);
	atomic_init(&r->running, njobs);
	for (i = 0; i < njobs; i++) {
		job = xcalloc(1, sizeof(*job));
		job->run = r;
		worker_submit(b->worker, spoolbatch_job_run,
		    spoolbatch_job_done, job);
	}
}

/* On a worker thread: items until none is left.  The last job out
 * starts the next batch, then runs this one's sync. */
static void
spoolbatch_job_run(void *arg)
{
	struct spoolbatch_job	*job = arg;
	struct spoolbatch_run	*r = job->run;
	struct spoolbatch	*b = r->b;
	struct spoolbatch_run	*next;
	size_t			 i;
	bool			 any = false, taken = false;
	int			 err;

	while ((i = atomic_fetch_add(&r->next, 1)) < r->nitems)
		r->staged[i] = b->ops->run(r->items[i]);
	/* acq_rel: the last job sees every other job's staged[]. */
	if (atomic_fetch_sub(&r->running, 1) != 1)
		return;
	job->last = true;
	next = xcalloc(1, sizeof(*next));
	pthread_mutex_lock(&b->lock);
	b->staging = false;
	if (b->npending > 0) {
		spoolbatch_take(b, next);
		taken = true;
	}
	pthread_mutex_unlock(&b->lock);
	if (taken)
		spoolbatch_submit(next);
	else
		free(next);
	for (i = 0; i < r->nitems; i++)
		any = any || r->staged[i];
	if (any && (err = b->ops->sync(b->ctx)) != 0)
		for (i = 0; i < r->nitems; i++)
			if (r->staged[i])
				b->ops->unsync(r->items[i], err);
	clock_gettime(CLOCK_MONOTONIC, &r->end);
}

/* On the loop: the job that ran the sync reports its batch. */
static void
spoolbatch_job_done(void *arg)
{
	struct spoolbatch_job	*job = arg;
	struct spoolbatch_run	*r = job->run;
	struct spoolbatch	*b;
	uint64_t		 us;
	size_t			 i;
	bool			 last = job->last;

	free(job);
	/* Only the last job may touch <r>: its completion can reach the
	 * loop before another job's, and then <r> is gone. */
	if (!last)
		return;
	b = r->b;
	us = spoolbatch_us(&r->start, &r->end);
	for (i = 0; i < SPOOLBATCH_NBUCKETS - 1; i++)
		if (us <= spoolbatch_bounds[i])
			break;
	b->st.buckets[i]++;
	b->st.batches++;
	b->st.items += r->nitems;
	if (r->nitems > b->st.max_items)
		b->st.max_items = r->nitems;
	b->st.total_us += us;
	b->inflight -= r->nitems;
	/* done() may add: that goes into a later batch. */
	for (i = 0; i < r->nitems; i++)
		b->ops->done(r->items[i]);
	free(r->items);
	free(r->staged);
	free(r);
}

struct spoolbatch *
spoolbatch_new(struct worker *worker, const struct spoolbatch_ops *ops,
    void *ctx)
{
	struct spoolbatch	*b;

	b = xcalloc(1, sizeof(*b));
	b->worker = worker;
	b->ops = ops;
	b->ctx = ctx;
	pthread_mutex_init(&b->lock, NULL);
	return b;
}

void
spoolbatch_free(struct spoolbatch *b)
{
	if (b == NULL)
		return;
	/* Every job is back (worker_free()): nobody else holds the lock. */
	if (b->inflight > 0)
		fatalx("spoolbatch free: %lu operations in flight",
		    b->inflight);
	pthread_mutex_destroy(&b->lock);
	free(b->pending);
	free(b);
}

void
spoolbatch_add(struct spoolbatch *b, void *item)
{
	struct spoolbatch_run	*r;
	bool			 taken = false;

	r = xcalloc(1, sizeof(*r));
	pthread_mutex_lock(&b->lock);
	if (b->npending == b->pendingsz) {
		b->pendingsz = b->pendingsz > 0 ? b->pendingsz * 2 : 64;
		b->pending = xrealloc(b->pending,
		    b->pendingsz * sizeof(*b->pending));
	}
	b->pending[b->npending++] = item;
	if (!b->staging) {
		spoolbatch_take(b, r);
		taken = true;
	}
	pthread_mutex_unlock(&b->lock);
	b->inflight++;
	if (taken)
		spoolbatch_submit(r);
	else
		free(r);
}

void
spoolbatch_get_stats(const struct spoolbatch *b, struct spoolbatch_stats *st)
{
	*st = b->st;
}

unsigned long
spoolbatch_bucket_bound_us(size_t i)
{
	return i < SPOOLBATCH_NBUCKETS - 1 ? spoolbatch_bounds[i] : 0;
}
