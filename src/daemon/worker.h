/*
 * worker.h - the daemon's one pool of worker threads.
 *
 * Work that blocks (fsync, crypt_r, copying a picked-up message) runs on
 * these threads; its completion runs later on the event loop.  The
 * spool's sync workers and the AUTH checks share the pool.  A job's
 * run() must touch only what the job owns; done() may use anything the
 * loop thread may.  The threads run at a nice value WORKER_NICE above
 * the process's, so that on a busy machine the loop gets a CPU first.
 */
#ifndef WORKER_H
#define WORKER_H

struct event_base;
struct worker;				/* the threads and their queues */

/* Starts <nthreads> threads (signals blocked in them) and watches their
 * completions from <base>.  Returns NULL after logging. */
struct worker	*worker_new(struct event_base *, unsigned int nthreads);

/* Waits until every job submitted has run and its done() has been
 * called (jobs that those done() callbacks submit included), then stops
 * the threads and frees.  For shutdown: the loop need not run.  NULL is
 * a no-op. */
void		 worker_free(struct worker *);

/* Queues <run>(<arg>) for a thread; afterwards <done>(<arg>) (NULL:
 * none) runs on the loop, never from inside this call.  Jobs start in
 * the order submitted; they may finish in any order.  May be called
 * from a worker thread too (a job handing on work). */
void		 worker_submit(struct worker *, void (*run)(void *),
		    void (*done)(void *), void *arg);

/* The number of threads: how many jobs can run at the same time. */
unsigned int	 worker_threads(const struct worker *);

#endif /* WORKER_H */
