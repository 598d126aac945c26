/*
 * authcheck.c - crypt_r() checks on the shared worker threads (worker.h),
 * one at a time, results back on the loop.
 *
 * Checks wait in <todo> on the loop's side and only one is handed to the
 * worker at a time: they run in order, and guessing takes one core at
 * most whatever the pool's size.
 */
#include "config.h"

#include "authcheck.h"

#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "users.h"
#include "util.h"
#include "worker.h"

struct authcheck_job {
	STAILQ_ENTRY(authcheck_job) entry;
	struct authcheck	*ac;
	char			*hash;
	char			*pass;
	bool			 known;
	bool			 ok;
	void			(*cb)(bool, void *);
	void			*arg;
};

STAILQ_HEAD(authcheck_list, authcheck_job);

struct authcheck {
	struct worker		*worker;	/* borrowed */
	struct authcheck_list	 todo;		/* not yet handed on */
	struct authcheck_job	*running;	/* on the worker, or NULL */
	bool			 freed;		/* authcheck_free() ran while
						 * <running> was out */
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

static void	authcheck_next(struct authcheck *);

/* On a worker thread.  Always one crypt_r(), known name or not. */
static void
authcheck_run(void *arg)
{
	struct authcheck_job	*j = arg;

	j->ok = users_hash_matches(j->hash, j->pass) && j->known;
	OPENSSL_cleanse(j->pass, strlen(j->pass));
}

/* On the loop: report, then hand on the next check. */
static void
authcheck_done(void *arg)
{
	struct authcheck_job	*j = arg;
	struct authcheck	*ac = j->ac;

	ac->running = NULL;
	if (ac->freed) {
		authcheck_job_free(j);
		free(ac);
		return;
	}
	j->cb(j->ok, j->arg);
	authcheck_job_free(j);
	authcheck_next(ac);
}

static void
authcheck_next(struct authcheck *ac)
{
	struct authcheck_job	*j;

	if (ac->running != NULL || (j = STAILQ_FIRST(&ac->todo)) == NULL)
		return;
	STAILQ_REMOVE_HEAD(&ac->todo, entry);
	ac->running = j;
	worker_submit(ac->worker, authcheck_run, authcheck_done, j);
}

struct authcheck *
authcheck_new(struct worker *worker)
{
	struct authcheck	*ac;

	ac = xcalloc(1, sizeof(*ac));
	ac->worker = worker;
	STAILQ_INIT(&ac->todo);
	return ac;
}

void
authcheck_free(struct authcheck *ac)
{
	struct authcheck_job	*j;

	if (ac == NULL)
		return;
	while ((j = STAILQ_FIRST(&ac->todo)) != NULL) {
		STAILQ_REMOVE_HEAD(&ac->todo, entry);
		authcheck_job_free(j);
	}
	/* The check on the worker frees what is left when it comes back. */
	if (ac->running != NULL) {
		ac->freed = true;
		return;
	}
	free(ac);
}

void
authcheck_start(struct authcheck *ac, const struct users *u,
    const char *name, const char *pass, void (*cb)(bool, void *),
    void *arg)
{
	struct authcheck_job	*j;

	j = xcalloc(1, sizeof(*j));
	j->ac = ac;
	j->hash = xstrdup(users_lookup(u, name, &j->known));
	j->pass = xstrdup(pass);
	j->cb = cb;
	j->arg = arg;
	STAILQ_INSERT_TAIL(&ac->todo, j, entry);
	authcheck_next(ac);
}
