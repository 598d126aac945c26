/*
 * spoolbatch.h - group commit of the spool's operations.
 *
 * Operations arrive one at a time on the loop.  As soon as no batch is
 * staging (running its operations' own work), the next one takes
 * everything that has arrived and spreads the operations' work over the
 * worker threads (worker.h); once they are all done it runs one sync
 * for the whole batch (while the batch after it stages) and then
 * reports every operation on the loop.  An operation thus waits for at
 * most the staging in progress and its own batch.  The items are the
 * caller's; this module only schedules them and measures the batches.
 */
#ifndef SPOOLBATCH_H
#define SPOOLBATCH_H

#include <stdbool.h>
#include <stddef.h>

struct worker;
struct spoolbatch;

/* What the caller does with its items.  run(), sync() and unsync() run
 * on worker threads and may touch only the items of the batch (and
 * what sync() syncs); done() runs on the loop. */
struct spoolbatch_ops {
	/* One item's own work.  Returns true if it needs the batch's
	 * sync to be durable. */
	bool	(*run)(void *item);
	/* Once per batch in which some run() returned true, after all of
	 * them: 0, or an errno value. */
	int	(*sync)(void *ctx);
	/* For every item whose run() returned true when sync() failed
	 * with <err>. */
	void	(*unsync)(void *item, int err);
	/* Every item of the batch, in the order added, once the batch is
	 * over.  May add new items (they go into the next batch). */
	void	(*done)(void *item);
};

/* Upper bounds of the duration histogram, in microseconds; the last
 * bucket is +Inf. */
#define SPOOLBATCH_BUCKET_BOUNDS_US					\
	500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000,	\
	15000, 20000, 25000, 30000, 40000, 50000, 75000, 100000,	\
	150000, 250000, 500000, 1000000
#define SPOOLBATCH_NBUCKETS	23	/* the bounds above and +Inf */

/* What the batches took: from the moment a batch takes what is
 * pending to the end of its sync. */
struct spoolbatch_stats {
	unsigned long	 batches;
	unsigned long	 items;		/* operations in those batches */
	unsigned long	 max_items;	/* the largest batch */
	unsigned long long total_us;	/* sum of the durations */
	unsigned long	 buckets[SPOOLBATCH_NBUCKETS];	/* per bucket,
					 * not cumulative */
};

/* A scheduler running on <worker> (borrowed; must outlive it), calling
 * <ops> (borrowed) with <ctx> for sync(). */
struct spoolbatch *spoolbatch_new(struct worker *,
		    const struct spoolbatch_ops *ops, void *ctx);

/* Frees.  Every item added must have been reported first (worker_free()
 * waits for that); one still in flight is a bug.  NULL is a no-op. */
void		 spoolbatch_free(struct spoolbatch *);

/* On the loop: schedules <item>; its done() runs later, on the loop,
 * never from inside this call. */
void		 spoolbatch_add(struct spoolbatch *, void *item);

/* On the loop: a copy of the counters. */
void		 spoolbatch_get_stats(const struct spoolbatch *,
		    struct spoolbatch_stats *);

/* The upper bound of bucket <i> in microseconds (0 for +Inf). */
unsigned long	 spoolbatch_bucket_bound_us(size_t i);

#endif /* SPOOLBATCH_H */
