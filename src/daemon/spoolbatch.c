/*
 * spoolbatch.c - group commit: one batch at a time, everything pending
 * in it, its items' work spread over the worker threads.
 *
 * Everything but the jobs' run runs on the loop: the pending array, the
 * start of a batch and its end.  A batch submits up to one job fewer
 * than there are threads (one thread stays for AUTH checks and pickup
 * copies); each job takes the next item not yet taken until none is
 * left, and the job that finishes last runs the sync.  Its completion
 * on the loop reports the whole batch and starts the next one with
 * whatever arrived meanwhile.
 */
#include "config.h"

#include "spoolbatch.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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
	/* The loop's side. */
	void				**pending;
	size_t				 npending;
	size_t				 pendingsz;
	bool				 busy;		/* a batch runs */
	struct spoolbatch_stats		 st;
	/* The batch in progress: set on the loop before its jobs are
	 * submitted, read by them, back on the loop after the last. */
	void				**items;
	bool				*staged;
	size_t				 nitems;
	atomic_size_t			 next;		/* next item to run */
	atomic_uint			 running;	/* jobs not done */
	struct timespec			 start, end;
};

/* One job of a batch. */
struct spoolbatch_job {
	struct spoolbatch		*b;
	bool				 last;	/* ran the sync */
};

static uint64_t
spoolbatch_us(const struct timespec *a, const struct timespec *b)
{
	int64_t	us;

	us = (int64_t)(b->tv_sec - a->tv_sec) * 1000000 +
	    (b->tv_nsec - a->tv_nsec) / 1000;
	return us > 0 ? (uint64_t)us : 0;
}

/* On a worker thread: items until none is left; the last job out runs
 * the sync for the batch. */
static void
spoolbatch_job_run(void *arg)
{
	struct spoolbatch_job	*job = arg;
	struct spoolbatch	*b = job->b;
	size_t			 i;
	bool			 any = false;
	int			 err;

	while ((i = atomic_fetch_add(&b->next, 1)) < b->nitems)
		b->staged[i] = b->ops->run(b->items[i]);
	/* acq_rel: the last job sees every other job's staged[]. */
	if (atomic_fetch_sub(&b->running, 1) != 1)
		return;
	job->last = true;
	for (i = 0; i < b->nitems; i++)
		any = any || b->staged[i];
	if (any && (err = b->ops->sync(b->ctx)) != 0)
		for (i = 0; i < b->nitems; i++)
			if (b->staged[i])
				b->ops->unsync(b->items[i], err);
	clock_gettime(CLOCK_MONOTONIC, &b->end);
}

static void	spoolbatch_start(struct spoolbatch *);

/* On the loop: the last job reports the batch and starts the next. */
static void
spoolbatch_job_done(void *arg)
{
	struct spoolbatch_job	*job = arg;
	struct spoolbatch	*b = job->b;
	uint64_t		 us;
	size_t			 i;

	if (!job->last) {
		free(job);
		return;
	}
	free(job);
	us = spoolbatch_us(&b->start, &b->end);
	for (i = 0; i < SPOOLBATCH_NBUCKETS - 1; i++)
		if (us <= spoolbatch_bounds[i])
			break;
	b->st.buckets[i]++;
	b->st.batches++;
	b->st.items += b->nitems;
	if (b->nitems > b->st.max_items)
		b->st.max_items = b->nitems;
	b->st.total_us += us;
	/* done() may add: into pending, for the next batch. */
	for (i = 0; i < b->nitems; i++)
		b->ops->done(b->items[i]);
	free(b->items);
	free(b->staged);
	b->items = NULL;
	b->staged = NULL;
	b->nitems = 0;
	b->busy = false;
	if (b->npending > 0)
		spoolbatch_start(b);
}

/* On the loop: everything pending becomes the batch. */
static void
spoolbatch_start(struct spoolbatch *b)
{
	struct spoolbatch_job	*job;
	unsigned int		 njobs, i;

	b->busy = true;
	b->items = b->pending;
	b->nitems = b->npending;
	b->pending = NULL;
	b->npending = b->pendingsz = 0;
	b->staged = xcalloc(b->nitems, sizeof(*b->staged));
	njobs = worker_threads(b->worker);
	njobs = njobs > 1 ? njobs - 1 : 1;
	if (njobs > b->nitems)
		njobs = (unsigned int)b->nitems;
	atomic_store(&b->next, 0);
	atomic_store(&b->running, njobs);
	clock_gettime(CLOCK_MONOTONIC, &b->start);
	for (i = 0; i < njobs; i++) {
		job = xcalloc(1, sizeof(*job));
		job->b = b;
		worker_submit(b->worker, spoolbatch_job_run,
		    spoolbatch_job_done, job);
	}
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
	atomic_init(&b->next, 0);
	atomic_init(&b->running, 0);
	return b;
}

void
spoolbatch_free(struct spoolbatch *b)
{
	if (b == NULL)
		return;
	if (b->busy || b->npending > 0)
		fatalx("spoolbatch free: %zu operations in flight",
		    b->nitems + b->npending);
	free(b->pending);
	free(b);
}

void
spoolbatch_add(struct spoolbatch *b, void *item)
{
	if (b->npending == b->pendingsz) {
		b->pendingsz = b->pendingsz > 0 ? b->pendingsz * 2 : 64;
		b->pending = xrealloc(b->pending,
		    b->pendingsz * sizeof(*b->pending));
	}
	b->pending[b->npending++] = item;
	if (!b->busy)
		spoolbatch_start(b);
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
