/*
 * worker.c - a fixed pool of threads taking jobs from one queue, their
 * completions handed back to the loop through one pipe.
 *
 * Jobs go from the submitter to the threads on <todo> and back on
 * <done>, both under one mutex.  A thread that puts a job on an empty
 * <done> writes a byte to the pipe (a full pipe is fine: one pending
 * byte wakes the loop, which drains the pipe, then takes every finished
 * job at once).  The byte is written after the unlock: the loop must
 * never wait for the lock while a thread that lost its CPU sits in
 * write().
 */
#include "config.h"

#include "worker.h"

#include <sys/queue.h>
#include <sys/resource.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "util.h"

#ifndef WORKER_NICE
#define WORKER_NICE	5	/* nice of the threads, over the loop's */
#endif

struct worker_job {
	STAILQ_ENTRY(worker_job) entry;
	void			(*run)(void *);
	void			(*done)(void *);
	void			*arg;
};
STAILQ_HEAD(worker_list, worker_job);

struct worker {
	pthread_mutex_t		 lock;		/* guards the lists and stop */
	pthread_cond_t		 cond;
	struct worker_list	 todo;
	struct worker_list	 done;
	bool			 stop;
	unsigned long		 outstanding;	/* submitted, not yet taken
						 * back by the loop */
	int			 notify[2];	/* threads -> loop */
	struct event		*ev;
	pthread_t		*threads;
	unsigned int		 nthreads;
};

static void *
worker_main(void *arg)
{
	struct worker		*w = arg;
	struct worker_job	*j;
	char			 c = 0;
	bool			 wake;
	int			 nice;

	/* Below the loop: on a busy machine the loop thread, which
	 * answers every client, gets a CPU first (Linux: per thread;
	 * glibc's aio helpers, started from here, inherit it). */
	errno = 0;
	nice = getpriority(PRIO_PROCESS, (id_t)gettid());
	if ((nice == -1 && errno != 0) || setpriority(PRIO_PROCESS,
	    (id_t)gettid(), nice + WORKER_NICE) == -1)
		log_debug("worker: setpriority: %s", strerror(errno));
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->stop && STAILQ_EMPTY(&w->todo))
			pthread_cond_wait(&w->cond, &w->lock);
		if ((j = STAILQ_FIRST(&w->todo)) == NULL)
			break;			/* stopping, nothing left */
		STAILQ_REMOVE_HEAD(&w->todo, entry);
		pthread_mutex_unlock(&w->lock);
		j->run(j->arg);
		pthread_mutex_lock(&w->lock);
		/* A list that was not empty has its byte in the pipe (or
		 * is being taken by the loop, which drains first). */
		wake = STAILQ_EMPTY(&w->done);
		STAILQ_INSERT_TAIL(&w->done, j, entry);
		pthread_mutex_unlock(&w->lock);
		if (wake && write(w->notify[1], &c, 1) == -1 &&
		    errno != EAGAIN)
			log_warn("worker: notify");
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* On the loop: runs the done() of every finished job. */
static void
worker_dispatch(struct worker *w)
{
	struct worker_list	 done = STAILQ_HEAD_INITIALIZER(done);
	struct worker_job	*j;
	char			 buf[64];
	ssize_t			 n;

	/* Drain first: a byte written after this finds its job later. */
	while ((n = read(w->notify[0], buf, sizeof(buf))) > 0 ||
	    (n == -1 && errno == EINTR))
		;
	pthread_mutex_lock(&w->lock);
	STAILQ_FOREACH(j, &w->done, entry)
		w->outstanding--;
	STAILQ_CONCAT(&done, &w->done);
	pthread_mutex_unlock(&w->lock);
	while ((j = STAILQ_FIRST(&done)) != NULL) {
		STAILQ_REMOVE_HEAD(&done, entry);
		if (j->done != NULL)
			j->done(j->arg);
		free(j);
	}
}

static void
worker_read_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_dispatch(arg);
}

struct worker *
worker_new(struct event_base *base, unsigned int nthreads)
{
	struct worker	*w;
	sigset_t	 all, old;
	int		 rc = 0;

	w = xcalloc(1, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	STAILQ_INIT(&w->todo);
	STAILQ_INIT(&w->done);
	w->notify[0] = w->notify[1] = -1;
	w->threads = xcalloc(nthreads > 0 ? nthreads : 1,
	    sizeof(*w->threads));
	if (pipe2(w->notify, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_warn("worker: pipe");
		goto fail;
	}
	w->ev = event_new(base, w->notify[0], EV_READ | EV_PERSIST,
	    worker_read_cb, w);
	if (w->ev == NULL || event_add(w->ev, NULL) == -1) {
		log_warnx("worker: cannot watch the pipe");
		goto fail;
	}
	/* Signals are for the main thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (w->nthreads < nthreads && rc == 0)
		if ((rc = pthread_create(&w->threads[w->nthreads], NULL,
		    worker_main, w)) == 0)
			w->nthreads++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0 || w->nthreads == 0) {
		errno = rc != 0 ? rc : EINVAL;
		log_warn("worker: pthread_create");
		goto fail;
	}
	return w;
fail:
	worker_free(w);
	return NULL;
}

void
worker_free(struct worker *w)
{
	struct pollfd	pfd;
	unsigned int	i;
	unsigned long	left;

	if (w == NULL)
		return;
	/* Finish what was started: a commit in flight must still report
	 * to its session or the queue, and its report may start more. */
	for (;;) {
		pthread_mutex_lock(&w->lock);
		left = w->outstanding;
		pthread_mutex_unlock(&w->lock);
		if (left == 0 || w->nthreads == 0)
			break;
		pfd.fd = w->notify[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, -1) == -1 && errno != EINTR)
			fatal("worker: poll");
		worker_dispatch(w);
	}
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	if (w->ev != NULL)
		event_free(w->ev);
	for (i = 0; i < 2; i++)
		if (w->notify[i] != -1)
			close(w->notify[i]);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w->threads);
	free(w);
}

void
worker_submit(struct worker *w, void (*run)(void *), void (*done)(void *),
    void *arg)
{
	struct worker_job	*j;

	j = xcalloc(1, sizeof(*j));
	j->run = run;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&w->lock);
	STAILQ_INSERT_TAIL(&w->todo, j, entry);
	w->outstanding++;
	pthread_mutex_unlock(&w->lock);
	/* After the unlock, so that the woken thread finds it free. */
	pthread_cond_signal(&w->cond);
}

unsigned int
worker_threads(const struct worker *w)
{
	return w->nthreads;
}
