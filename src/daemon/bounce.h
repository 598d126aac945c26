/*
 * bounce.h - the failure report (DSN) for the failed recipients of a
 * message, committed to the spool as a message of its own, off the
 * loop.
 */
#ifndef BOUNCE_H
#define BOUNCE_H

struct conf;
struct envelope;
struct spool;

/* <report_id> is the id of the committed report, or NULL if it could
 * not be committed (logged). */
typedef void	(*bounce_done_cb)(const char *report_id, void *arg);

/* Composes the failure report for the FAILED recipients of <env>
 * (borrowed for the call) and starts its commit.  Returns -1 when no
 * report goes (the null sender: no bounce loops) or it cannot be made
 * (logged); else 0, and <done> runs later on the loop. */
int		 bounce_start(struct spool *, const struct conf *,
		    const struct envelope *env, bounce_done_cb done,
		    void *arg);

#endif /* BOUNCE_H */
