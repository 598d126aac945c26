/*
 * controljob.h - one control request's operation on one or several
 * messages (hold, release, delete, requeue, flush ID).
 *
 * The operations that change the disk report only once their change is
 * on stable storage (queue.h); a job keeps CONTROLJOB_INFLIGHT of them
 * in flight, their syncs shared, and answers each turn's results in
 * order once the turn is over.  One job at a time has operations in
 * flight: two requests on the same messages never meet half-done.
 */
#ifndef CONTROLJOB_H
#define CONTROLJOB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "queue.h"

struct evbuffer;
struct event_base;
struct controljob_sched;		/* whose turn it is */
struct controljob;			/* one request's operation */

#define CONTROLJOB_INFLIGHT	32	/* operations in flight at once */

/* A queue operation: 0 once started (<done> reports later, or from
 * inside the call for the synchronous flush), or -1 with errno. */
typedef int	(*controljob_op_fn)(struct queue *, const char *,
		    queue_done_cb, void *);

/* The turns of the jobs on <queue>, timed on <base> (both borrowed). */
struct controljob_sched *controljob_sched_new(struct event_base *,
		    struct queue *);

/* Frees the scheduler.  A job still running reports to nobody and frees
 * itself when its operations are over; every other job must have been
 * cancelled.  NULL is a no-op. */
void		 controljob_sched_free(struct controljob_sched *);

/* Runs <op> on each of the <n> ids (consumed: freed with the job).
 * With <single>, the answer is {"ok": true, "action": <verb>, "id": ID}
 * or an error document; else {"action": <verb>, "results": [{"id": ID,
 * "ok": true} or {"id": ID, "ok": false, "code": C, "error": TEXT},
 * ...], "done": N, "failed": M, "ok": <all done>}.  The answer is
 * appended to <out> as it forms, one log line per message (with <uid>
 * and <pid>); <done>(<arg>) runs once it is complete.  Until then, or
 * until controljob_cancel(), <out> must stay valid.  Returns NULL when
 * no timer could be made (the ids are freed). */
struct controljob *controljob_start(struct controljob_sched *,
		    const char *verb, controljob_op_fn op,
		    struct queue_id *ids, size_t n, bool single,
		    struct evbuffer *out, uid_t uid, pid_t pid,
		    void (*done)(void *), void *arg);

/* The client went: no more output, no <done>; operations in flight
 * finish, the rest are not started.  The job frees itself. */
void		 controljob_cancel(struct controljob *);

/* The text and code of the answer for a failed operation <verb> on a
 * message with errno <err>; <buf> may hold the text. */
const char	*controljob_reason(const char *verb, int err, char *buf,
		    size_t bufsz, const char **code);

#endif /* CONTROLJOB_H */
