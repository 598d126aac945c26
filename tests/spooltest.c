/*
 * spooltest.c - the spool tests' shared fixtures and waits
 * (spooltest.h).
 */
#include "config.h"

#include "spooltest.h"

#include <sys/stat.h>

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "util.h"
#include "worker.h"

#define WAIT_MS		10000		/* deadline for async operations */

char			 testdir[PATH_MAX];
struct event_base	*tbase;
struct worker		*tworker;

void
spooltest_setup(const char *name)
{
	const char	*tmp = getenv("TMPDIR");

	snprintf(testdir, sizeof(testdir), "%s/%s.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", name);
	ck_assert_ptr_nonnull(mkdtemp(testdir));
}

static int
spooltest_rm_cb(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
spooltest_rmtree(const char *path)
{
	return nftw(path, spooltest_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

void
spooltest_teardown(void)
{
	spooltest_rmtree(testdir);
}

const char *
tpath(const char *rel)
{
	static char	buf[2][PATH_MAX];
	static int	which;

	which ^= 1;
	ck_assert_int_lt(snprintf(buf[which], sizeof(buf[which]), "%s/%s",
	    testdir, rel), (int)sizeof(buf[which]));
	return buf[which];
}

const char *
spath(const char *sub, const char *id, const char *suffix)
{
	char	rel[PATH_MAX];

	snprintf(rel, sizeof(rel), "spool/%s/%s%s", sub, id, suffix);
	return tpath(rel);
}

/* The spool's worker threads and the loop their results come back to:
 * made by tspool_open(), drained and freed by tspool_close(). */

struct spool *
tspool_open(const char *dir)
{
	struct spool	*sp;

	if (tworker == NULL) {
		ck_assert_ptr_nonnull(tbase = event_base_new());
		ck_assert_ptr_nonnull(tworker = worker_new(tbase, 16));
	}
	if ((sp = spool_open(dir, tworker)) == NULL) {
		worker_free(tworker);
		event_base_free(tbase);
		tworker = NULL;
		tbase = NULL;
	}
	return sp;
}

void
tspool_close(struct spool *sp)
{
	worker_free(tworker);
	tworker = NULL;
	spool_close(sp);
	event_base_free(tbase);
	tbase = NULL;
}

/* The asynchronous operations. */

struct t_rec {
	int	calls;
	int	err;
};

static void
t_done_cb(const char *id, int err, void *arg)
{
	struct t_rec	*r = arg;

	(void)id;
	r->calls++;
	r->err = err;
}

static int
t_wait(struct t_rec *r)
{
	struct timeval	tick = { 0, 100000 };
	uint64_t	deadline = time_mono_ms() + WAIT_MS;

	while (r->calls == 0) {
		ck_assert_msg(time_mono_ms() < deadline, "operation timed out");
		event_base_loopexit(tbase, &tick);
		event_base_loop(tbase, EVLOOP_ONCE);
	}
	ck_assert_int_eq(r->calls, 1);
	errno = r->err;
	return r->err == 0 ? 0 : -1;
}

int
t_commit(struct spool_msg *msg)
{
	struct t_rec	r = { 0, 0 };

	spool_commit_start(msg, t_done_cb, &r);
	return t_wait(&r);
}

int
t_env_save(struct spool *sp, const struct envelope *env)
{
	struct t_rec	r = { 0, 0 };

	spool_env_save_start(sp, env, t_done_cb, &r);
	return t_wait(&r);
}

int
t_remove(struct spool *sp, const char *id)
{
	struct t_rec	r = { 0, 0 };

	spool_remove_start(sp, id, t_done_cb, &r);
	return t_wait(&r);
}

/* With the envelope as it is in queue/. */
int
t_move_failed(struct spool *sp, const char *id)
{
	struct t_rec	r = { 0, 0 };
	struct envelope	env;

	if (spool_env_load(sp, id, &env) == -1)
		return -1;
	spool_move_failed_start(sp, &env, t_done_cb, &r);
	envelope_cleanup(&env);
	return t_wait(&r);
}

int
t_requeue(struct spool *sp, const struct envelope *env)
{
	struct t_rec	r = { 0, 0 };

	spool_requeue_start(sp, env, t_done_cb, &r);
	return t_wait(&r);
}
