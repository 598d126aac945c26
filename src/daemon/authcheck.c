/*
 * authcheck.c - one worker thread for crypt_r(), results back through a
 * pipe read by the event loop.
 *
 * Jobs go from the loop to the worker on <todo> and back on <done>, both
 * under one mutex; the worker writes a byte to the pipe after each job
 * (a full pipe is fine: one pending byte is enough to wake the loop,
 * which takes every finished job at once).
 */
#include "config.h"

#include "authcheck.h"

#include <sys/queue.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "log.h"
#include "users.h"
#include "util.h"

struct authcheck_job {
	STAILQ_ENTRY(authcheck_job) entry;
	char			*hash;
	char			*pass;
	bool			 known;
	bool			 ok;
	void			(*cb)(bool, void *);
	void			*arg;
};

STAILQ_HEAD(authcheck_list, authcheck_job);

struct authcheck {
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;
	struct authcheck_list	 todo;
	struct authcheck_list	 done;
	bool			 stop;
	int			 notify[2];	/* worker -> loop */
	struct event		*ev;
};

static void
authcheck_job_free(struct authcheck_job *j)
{
	if (j->pass != NULL) {
		OPENSSL_cleanse(j->pass, strlen(j->pass));
		free(j->pass);
	}
	free(j->hash);
	free(j);
}

static void *
authcheck_worker(void *arg)
{
	struct authcheck	*ac = arg;
	struct authcheck_job	*j;
	char			 c = 0;

	pthread_mutex_lock(&ac->lock);
	for (;;) {
		while (!ac->stop && STAILQ_EMPTY(&ac->todo))
			pthread_cond_wait(&ac->cond, &ac->lock);
		if (ac->stop)
			break;
		j = STAILQ_FIRST(&ac->todo);
		STAILQ_REMOVE_HEAD(&ac->todo, entry);
		pthread_mutex_unlock(&ac->lock);
		/* Always one crypt_r(), known name or not. */
		j->ok = users_hash_matches(j->hash, j->pass) && j->known;
		OPENSSL_cleanse(j->pass, strlen(j->pass));
		pthread_mutex_lock(&ac->lock);
		STAILQ_INSERT_TAIL(&ac->done, j, entry);
		pthread_mutex_unlock(&ac->lock);
		if (write(ac->notify[1], &c, 1) == -1 && errno != EAGAIN)
			log_warn("authcheck: notify");
		pthread_mutex_lock(&ac->lock);
	}
	pthread_mutex_unlock(&ac->lock);
	return NULL;
}

/* On the loop: report every finished check. */
static void
authcheck_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct authcheck	*ac = arg;
	struct authcheck_list	 done;
	struct authcheck_job	*j;
	char			 buf[64];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	STAILQ_INIT(&done);
	pthread_mutex_lock(&ac->lock);
	STAILQ_CONCAT(&done, &ac->done);
	pthread_mutex_unlock(&ac->lock);
	while ((j = STAILQ_FIRST(&done)) != NULL) {
		STAILQ_REMOVE_HEAD(&done, entry);
		j->cb(j->ok, j->arg);
		authcheck_job_free(j);
	}
}

struct authcheck *
authcheck_new(struct event_base *base)
{
	struct authcheck	*ac;

	ac = xcalloc(1, sizeof(*ac));
	STAILQ_INIT(&ac->todo);
	STAILQ_INIT(&ac->done);
	pthread_mutex_init(&ac->lock, NULL);
	pthread_cond_init(&ac->cond, NULL);
	ac->notify[0] = ac->notify[1] = -1;
	if (pipe2(ac->notify, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_warn("authcheck: pipe");
		goto fail;
	}
	ac->ev = event_new(base, ac->notify[0], EV_READ | EV_PERSIST,
	    authcheck_read_cb, ac);
	if (ac->ev == NULL || event_add(ac->ev, NULL) == -1) {
		log_warnx("authcheck: cannot watch the pipe");
		goto fail;
	}
	if ((errno = pthread_create(&ac->thread, NULL, authcheck_worker,
	    ac)) != 0) {
		log_warn("authcheck: pthread_create");
		goto fail;
	}
	return ac;
fail:
	if (ac->ev != NULL)
		event_free(ac->ev);
	if (ac->notify[0] != -1) {
		close(ac->notify[0]);
		close(ac->notify[1]);
	}
	pthread_mutex_destroy(&ac->lock);
	pthread_cond_destroy(&ac->cond);
	free(ac);
	return NULL;
}

void
authcheck_free(struct authcheck *ac)
{
	struct authcheck_job	*j;

	if (ac == NULL)
		return;
	pthread_mutex_lock(&ac->lock);
	ac->stop = true;
	pthread_cond_signal(&ac->cond);
	pthread_mutex_unlock(&ac->lock);
	pthread_join(ac->thread, NULL);
	STAILQ_CONCAT(&ac->done, &ac->todo);
	while ((j = STAILQ_FIRST(&ac->done)) != NULL) {
		STAILQ_REMOVE_HEAD(&ac->done, entry);
		authcheck_job_free(j);
	}
	event_free(ac->ev);
	close(ac->notify[0]);
	close(ac->notify[1]);
	pthread_mutex_destroy(&ac->lock);
	pthread_cond_destroy(&ac->cond);
	free(ac);
}

void
authcheck_start(struct authcheck *ac, const struct users *u,
    const char *name, const char *pass, void (*cb)(bool, void *),
    void *arg)
{
	struct authcheck_job	*j;

	j = xcalloc(1, sizeof(*j));
	j->hash = xstrdup(users_lookup(u, name, &j->known));
	j->pass = xstrdup(pass);
	j->cb = cb;
	j->arg = arg;
	pthread_mutex_lock(&ac->lock);
	STAILQ_INSERT_TAIL(&ac->todo, j, entry);
	pthread_cond_signal(&ac->cond);
	pthread_mutex_unlock(&ac->lock);
}
