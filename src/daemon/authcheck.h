/*
 * authcheck.h - password checks for inbound AUTH, off the event loop.
 *
 * crypt_r(3) takes milliseconds by design (4 ms for sha512-crypt here,
 * more for yescrypt): run on the loop, a client sending AUTH after AUTH
 * would stall every other session.  The checks run in order on the
 * shared worker threads (worker.h), one at a time, which also bounds the
 * CPU that guessing can take to one core.
 */
#ifndef AUTHCHECK_H
#define AUTHCHECK_H

#include <stdbool.h>

struct users;
struct worker;
struct authcheck;		/* the checks waiting and running */

/* Checks run on <worker> (borrowed: it must outlive the result, and
 * worker_free() after authcheck_free() reaps a check still running). */
struct authcheck *authcheck_new(struct worker *);

/* Checks not yet reported are dropped without calling their callbacks
 * (their passwords wiped; one running on the worker when it comes
 * back).  NULL is a no-op. */
void		 authcheck_free(struct authcheck *);

/* Checks <name>'s <pass> against <u> (users_lookup() now, so <u> may be
 * replaced by a reload meanwhile); <cb> runs later on the loop with the
 * result, never from inside this call.  <pass> is copied, and the copy
 * wiped after the check.  Until <cb> runs, <arg> must stay valid. */
void		 authcheck_start(struct authcheck *, const struct users *u,
		    const char *name, const char *pass,
		    void (*cb)(bool ok, void *arg), void *arg);

#endif /* AUTHCHECK_H */
