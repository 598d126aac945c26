/*
 * controljob.c - a control request's operation on messages, in turns of
 * CONTROLJOB_INFLIGHT operations (controljob.h).
 *
 * A turn starts its operations at once and ends when the last has
 * reported; its results are then appended in the order of the ids, and
 * the next turn is a zero timeout away, so that pending I/O is served
 * first.  A job whose client went (out == NULL) stays
 * until the operations in flight have reported, then frees itself.
 */
#include "config.h"

#include "controljob.h"

#include <sys/queue.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "controljson.h"
#include "log.h"
#include "util.h"

/* One message of a job's turn, the argument of its completion. */
struct controljob_slot {
	struct controljob	*job;
	int			 err;		/* errno, 0, or -1 running */
};

struct controljob {
	TAILQ_ENTRY(controljob)	 wait;		/* in sched->waiting */
	bool			 waiting;
	struct controljob_sched	*sched;		/* NULL once it is freed */
	struct evbuffer		*out;		/* NULL once cancelled */
	const char		*verb;
	controljob_op_fn	 op;
	struct queue_id		*ids;
	size_t			 n;
	size_t			 next;		/* first id of this turn */
	size_t			 end;		/* past its last */
	size_t			 running;	/* operations in flight */
	bool			 starting;	/* inside controljob_turn() */
	bool			 single;	/* one id: a plain answer */
	size_t			 done;
	size_t			 failed;
	uid_t			 uid;
	pid_t			 pid;
	void			(*done_cb)(void *);
	void			*arg;
	struct controljob_slot	 slots[CONTROLJOB_INFLIGHT];
	struct event		*ev;		/* the next turn */
};

struct controljob_sched {
	struct event_base	*base;
	struct queue		*queue;
	struct controljob	*running;	/* has operations in flight */
	TAILQ_HEAD(, controljob) waiting;	/* for their turn */
};

struct controljob_sched *
controljob_sched_new(struct event_base *base, struct queue *queue)
{
	struct controljob_sched	*sc = xcalloc(1, sizeof(*sc));

	sc->base = base;
	sc->queue = queue;
	TAILQ_INIT(&sc->waiting);
	return sc;
}

void
controljob_sched_free(struct controljob_sched *sc)
{
	if (sc == NULL)
		return;
	if (!TAILQ_EMPTY(&sc->waiting))
		fatalx("controljob: a job is still waiting");
	if (sc->running != NULL)
		sc->running->sched = NULL;
	free(sc);
}

static void
controljob_free(struct controljob *job)
{
	if (job->waiting)
		TAILQ_REMOVE(&job->sched->waiting, job, wait);
	if (job->ev != NULL)
		event_free(job->ev);
	free(job->ids);
	free(job);
}

void
controljob_cancel(struct controljob *job)
{
	if (job == NULL)
		return;
	job->out = NULL;
	if (job->running == 0)
		controljob_free(job);
	else if (job->ev != NULL) {
		event_free(job->ev);
		job->ev = NULL;
	}
}

const char *
controljob_reason(const char *verb, int err, char *buf, size_t bufsz,
    const char **code)
{
	*code = "EIO";
	if (err == ENOENT) {
		*code = "ENOENT";
		return strcmp(verb, "requeue") == 0 ? "no such message in "
		    "failed/" : "no such message in the queue";
	}
	if (err == EEXIST) {
		*code = "EEXIST";
		return "the message is in the queue, not in failed/";
	}
	if (err == EINVAL && strcmp(verb, "requeue") == 0) {
		*code = "EDONE";
		return "the message has no failed recipient to send again";
	}
	if (err == EBUSY) {
		*code = "EBUSY";
		return "the message is being delivered right now; try again "
		    "in a moment";
	}
	if (err == EPERM) {
		*code = "EHELD";
		return "the message is held; release it first";
	}
	snprintf(buf, bufsz, "%s failed: %s", verb, strerror(err));
	return buf;
}

/* Appends one result, and its log line. */
static void
controljob_result(struct controljob *job, size_t i, int err)
{
	struct evbuffer	*out = job->out;
	const char	*id = job->ids[i].id, *code, *msg;
	char		 buf[256];

	if (err == 0) {
		log_info("control %s id=%s uid=%u pid=%ld", job->verb, id,
		    (unsigned)job->uid, (long)job->pid);
		job->done++;
	} else {
		log_info("control %s id=%s uid=%u failed: %s", job->verb, id,
		    (unsigned)job->uid, strerror(err));
		job->failed++;
	}
	msg = err != 0 ? controljob_reason(job->verb, err, buf, sizeof(buf),
	    &code) : NULL;
	if (job->single && err != 0)
		controljson_error(out, code, msg);
	else if (job->single)
		evbuffer_add_printf(out, "{\"ok\": true, \"action\": \"%s\", "
		    "\"id\": \"%s\"}\n", job->verb, id);
	else {
		evbuffer_add_printf(out, "%s{\"id\": \"%s\", ", i > 0 ? ",\n" :
		    "", id);
		if (err == 0)
			evbuffer_add_printf(out, "\"ok\": true}");
		else {
			evbuffer_add_printf(out, "\"ok\": false, \"code\": "
			    "\"%s\", \"error\": ", code);
			controljson_str(out, msg);
			evbuffer_add(out, "}", 1);
		}
	}
}

/* Appends the results of the turn that just ended; then the next turn,
 * or the end of the answer. */
static void
controljob_results(struct controljob *job)
{
	struct timeval	now = { 0, 0 };
	size_t		i;

	for (i = job->next; i < job->end; i++)
		controljob_result(job, i, job->slots[i - job->next].err);
	job->next = job->end;
	if (job->next < job->n) {
		evtimer_add(job->ev, &now);
		return;
	}
	if (!job->single)
		evbuffer_add_printf(job->out, "], \"done\": %zu, \"failed\": "
		    "%zu, \"ok\": %s}\n", job->done, job->failed,
		    job->failed == 0 ? "true" : "false");
	job->done_cb(job->arg);
}

/* A turn ended: the first job waiting may start its own. */
static void
controljob_yield(struct controljob *job)
{
	struct controljob_sched	*sc = job->sched;
	struct controljob	*next;
	struct timeval		 now = { 0, 0 };

	if (sc == NULL)
		return;
	sc->running = NULL;
	if ((next = TAILQ_FIRST(&sc->waiting)) != NULL) {
		TAILQ_REMOVE(&sc->waiting, next, wait);
		next->waiting = false;
		evtimer_add(next->ev, &now);
	}
}

/* The turn is over: results, or the end of a cancelled job. */
static void
controljob_turn_over(struct controljob *job)
{
	controljob_yield(job);
	if (job->out == NULL)
		controljob_free(job);
	else
		controljob_results(job);
}

/* An operation of the turn reported; the last one ends the turn. */
static void
controljob_op_done_cb(const char *id, int err, void *arg)
{
	struct controljob_slot	*slot = arg;
	struct controljob	*job = slot->job;

	(void)id;
	slot->err = err;
	job->running--;
	if (job->running == 0 && !job->starting)
		controljob_turn_over(job);
}

/* Starts the next CONTROLJOB_INFLIGHT operations of the job. */
static void
controljob_turn(evutil_socket_t fd, short what, void *arg)
{
	struct controljob	*job = arg;
	struct controljob_sched	*sc = job->sched;
	struct controljob_slot	*slot;
	size_t			 i;

	(void)fd;
	(void)what;
	if (sc->running != NULL) {
		/* Another job's turn is out: after it. */
		TAILQ_INSERT_TAIL(&sc->waiting, job, wait);
		job->waiting = true;
		return;
	}
	sc->running = job;
	job->end = job->next + CONTROLJOB_INFLIGHT;
	if (job->end > job->n)
		job->end = job->n;
	job->starting = true;
	for (i = job->next; i < job->end; i++) {
		slot = &job->slots[i - job->next];
		slot->job = job;
		slot->err = -1;
		job->running++;
		if (job->op(sc->queue, job->ids[i].id, controljob_op_done_cb,
		    slot) == -1) {
			slot->err = errno;
			job->running--;
		}
	}
	job->starting = false;
	if (job->running == 0)
		controljob_turn_over(job);
}

struct controljob *
controljob_start(struct controljob_sched *sc, const char *verb,
    controljob_op_fn op, struct queue_id *ids, size_t n, bool single,
    struct evbuffer *out, uid_t uid, pid_t pid, void (*done)(void *),
    void *arg)
{
	struct controljob	*job;

	job = xcalloc(1, sizeof(*job));
	job->sched = sc;
	job->out = out;
	job->verb = verb;
	job->op = op;
	job->ids = ids;
	job->n = n;
	job->single = single;
	job->uid = uid;
	job->pid = pid;
	job->done_cb = done;
	job->arg = arg;
	if ((job->ev = evtimer_new(sc->base, controljob_turn, job)) == NULL) {
		controljob_free(job);
		return NULL;
	}
	if (!single)
		evbuffer_add_printf(out, "{\"action\": \"%s\", \"results\": [",
		    verb);
	controljob_turn(-1, 0, job);
	return job;
}
