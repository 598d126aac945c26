/*
 * spooltest.h - what the spool's unit tests share: a mkdtemp()
 * directory per test, paths in it, a spool with its worker pool and the
 * loop they report to, and the asynchronous operations waited for under
 * a bounded deadline (never a sleep).
 */
#ifndef SPOOLTEST_H
#define SPOOLTEST_H

#include <limits.h>

#include "envelope.h"
#include "spool.h"

struct event_base;
struct worker;

extern char			 testdir[PATH_MAX];
extern struct event_base	*tbase;		/* while a spool is open */
extern struct worker		*tworker;

/* Fixtures: makes <TMPDIR or /tmp>/<name>.XXXXXX the test's directory;
 * removes it again, with all it holds. */
void		 spooltest_setup(const char *name);
void		 spooltest_teardown(void);
/* Removes <path> and all below it, as rm -rf: 0 or -1. */
int		 spooltest_rmtree(const char *path);

/* <testdir>/<rel> in a static buffer (two alternate, for pairs). */
const char	*tpath(const char *rel);
/* <testdir>/spool/<sub>/<id><suffix>, as tpath(). */
const char	*spath(const char *sub, const char *id, const char *suffix);

/* spool_open(<dir>) on 16 workers and a new loop; NULL (and no loop
 * left) if it fails. */
struct spool	*tspool_open(const char *dir);
/* Finishes what is in flight (callbacks run), then closes. */
void		 tspool_close(struct spool *);

/* Waited for; the callback must run exactly once.  Each returns 0, or
 * -1 with errno that of the operation. */
int		 t_commit(struct spool_msg *);
int		 t_env_save(struct spool *, const struct envelope *);
int		 t_remove(struct spool *, const char *id);
int		 t_move_failed(struct spool *, const char *id);
int		 t_requeue(struct spool *, const struct envelope *);

#endif /* SPOOLTEST_H */
