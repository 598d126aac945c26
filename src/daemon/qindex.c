/*
 * qindex.c - the queue's index of the spool (see qindex.h).
 *
 * Due entries wait in the ready list, deferred ones on their own timer
 * (libevent keeps the heap).  One sweep timer expires messages past
 * queue.lifetime even while nothing can be delivered.  The
 * administrator's operations change the disk first (off the loop,
 * spool.h) and the entry only once the disk has answered; meanwhile
 * the entry is busy.
 */
#include "config.h"

#include "qindex.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "attempt.h"
#include "envelope.h"
#include "log.h"
#include "spool.h"
#include "util.h"

struct qindex {
	struct event_base	*base;
	struct spool		*spool;
	uint64_t		 lifetime;
	const struct qindex_cbs	*cbs;
	void			*arg;
	TAILQ_HEAD(, qindex_entry) entries;
	TAILQ_HEAD(, qindex_entry) readyq;
	unsigned long		 nentries;
	unsigned long		 nrestricted;	/* entries with min_up > 0 */
	struct event		*sweep;		/* next lifetime expiry */
};

static void	qindex_sweep_cb(evutil_socket_t, short, void *);

struct qindex *
qindex_new(struct event_base *base, struct spool *spool, uint64_t lifetime,
    const struct qindex_cbs *cbs, void *arg)
{
	struct qindex	*ix;

	ix = xcalloc(1, sizeof(*ix));
	ix->base = base;
	ix->spool = spool;
	ix->lifetime = lifetime;
	ix->cbs = cbs;
	ix->arg = arg;
	TAILQ_INIT(&ix->entries);
	TAILQ_INIT(&ix->readyq);
	ix->sweep = evtimer_new(base, qindex_sweep_cb, ix);
	if (ix->sweep == NULL)
		fatalx("queue evtimer_new");
	return ix;
}

void
qindex_free(struct qindex *ix)
{
	struct qindex_entry	*e;

	if (ix == NULL)
		return;
	while ((e = TAILQ_FIRST(&ix->entries)) != NULL)
		qindex_entry_free(e);
	event_free(ix->sweep);
	free(ix);
}

void
qindex_set_lifetime(struct qindex *ix, uint64_t lifetime)
{
	ix->lifetime = lifetime;
}

unsigned long
qindex_count(const struct qindex *ix)
{
	return ix->nentries;
}

unsigned long
qindex_restricted(const struct qindex *ix)
{
	return ix->nrestricted;
}

struct qindex_entry *
qindex_first(const struct qindex *ix)
{
	return TAILQ_FIRST(&ix->entries);
}

struct qindex_entry *
qindex_next(const struct qindex_entry *e)
{
	return TAILQ_NEXT(e, all);
}

struct qindex_entry *
qindex_ready_first(const struct qindex *ix)
{
	return TAILQ_FIRST(&ix->readyq);
}

struct qindex_entry *
qindex_ready_next(const struct qindex_entry *e)
{
	return TAILQ_NEXT(e, ready);
}

struct qindex_entry *
qindex_find(const struct qindex *ix, const char *id)
{
	struct qindex_entry	*e;

	TAILQ_FOREACH(e, &ix->entries, all)
		if (strcmp(e->id, id) == 0)
			return e;
	errno = ENOENT;
	return NULL;
}

void
qindex_entry_ready(struct qindex_entry *e)
{
	evtimer_del(e->timer);
	if (!e->in_ready && !e->busy && !e->held) {
		TAILQ_INSERT_TAIL(&e->ix->readyq, e, ready);
		e->in_ready = true;
	}
}

static void
qindex_entry_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qindex_entry	*e = arg;
	struct qindex		*ix = e->ix;

	(void)fd;
	(void)what;
	qindex_entry_ready(e);
	ix->cbs->due(ix->arg);
}

void
qindex_entry_schedule(struct qindex_entry *e, int64_t when)
{
	struct timeval	tv;
	int64_t		now = time_wall();

	if (when <= now) {
		qindex_entry_ready(e);
		return;
	}
	tv.tv_sec = (time_t)(when - now);
	tv.tv_usec = 0;
	evtimer_add(e->timer, &tv);
}

struct qindex_entry *
qindex_entry_new(struct qindex *ix, const char *id, int64_t arrival,
    bool held)
{
	struct qindex_entry	*e;

	e = xcalloc(1, sizeof(*e));
	e->ix = ix;
	e->owner = ix->arg;
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->arrival = arrival;
	e->held = held;
	if ((e->timer = evtimer_new(ix->base, qindex_entry_timer_cb, e)) ==
	    NULL)
		fatalx("queue evtimer_new");
	TAILQ_INSERT_TAIL(&ix->entries, e, all);
	ix->nentries++;
	ix->cbs->changed(ix->arg);
	return e;
}

void
qindex_entry_free(struct qindex_entry *e)
{
	struct qindex	*ix = e->ix;

	if (e->in_ready)
		TAILQ_REMOVE(&ix->readyq, e, ready);
	if (e->min_up > 0)
		ix->nrestricted--;
	TAILQ_REMOVE(&ix->entries, e, all);
	ix->nentries--;
	event_free(e->timer);
	attempt_free(e->att);
	if (e->gone != NULL) {
		envelope_cleanup(e->gone);
		free(e->gone);
	}
	free(e);
	ix->cbs->changed(ix->arg);
}

void
qindex_entry_unready(struct qindex_entry *e)
{
	if (e->in_ready) {
		TAILQ_REMOVE(&e->ix->readyq, e, ready);
		e->in_ready = false;
	}
}

void
qindex_entry_ready_first(struct qindex_entry *e)
{
	if (!e->in_ready) {
		TAILQ_INSERT_HEAD(&e->ix->readyq, e, ready);
		e->in_ready = true;
	}
}

void
qindex_entry_set_min_up(struct qindex_entry *e, unsigned int min_up)
{
	if (min_up > 0 && e->min_up == 0)
		e->ix->nrestricted++;
	else if (min_up == 0 && e->min_up > 0)
		e->ix->nrestricted--;
	e->min_up = min_up;
}

void
qindex_clear_min_up(struct qindex *ix)
{
	struct qindex_entry	*e;

	TAILQ_FOREACH(e, &ix->entries, all)
		e->min_up = 0;
	ix->nrestricted = 0;
}

/* Busy: neither dispatched nor acted on until the disk has answered. */
static void
qindex_entry_busy(struct qindex_entry *e)
{
	e->busy = true;
	evtimer_del(e->timer);
	qindex_entry_unready(e);
}

int
qindex_entry_removing(struct qindex_entry *e, const struct envelope *env)
{
	char		*text;
	size_t		 len;
	int		 rc;

	if (envelope_format(env, &text, &len) == -1)
		return -1;
	e->gone = xcalloc(1, sizeof(*e->gone));
	rc = envelope_parse(e->gone, text, len, env->id, NULL);
	free(text);
	if (rc == -1) {
		free(e->gone);
		e->gone = NULL;
		return -1;
	}
	qindex_entry_busy(e);
	qindex_entry_set_min_up(e, 0);
	e->ix->cbs->changed(e->ix->arg);
	return 0;
}

/* Expires messages past queue.lifetime even while nothing can be
 * delivered (a long outage), then arms for the next expiry. */
static void
qindex_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qindex		*ix = arg;
	struct qindex_entry	*e, *next;
	int64_t			 now = time_wall(), first = 0, end;
	struct timeval		 tv;

	(void)fd;
	(void)what;
	for (e = TAILQ_FIRST(&ix->entries); e != NULL; e = next) {
		next = TAILQ_NEXT(e, all);
		end = e->arrival + (int64_t)ix->lifetime;
		if (e->held)
			continue;	/* a human decides about these */
		if (e->busy || end > now) {
			if (!e->busy && (first == 0 || end < first))
				first = end;
			continue;
		}
		ix->cbs->expire(e, ix->arg);
	}
	if (first != 0) {
		tv.tv_sec = (time_t)(first - now + 1);
		tv.tv_usec = 0;
		evtimer_add(ix->sweep, &tv);
	}
}

void
qindex_sweep_arm(struct qindex *ix, int64_t arrival)
{
	struct timeval	tv, left;
	int64_t		in = arrival + (int64_t)ix->lifetime -
			    time_wall() + 1;

	if (in < 1)
		in = 1;
	if (evtimer_pending(ix->sweep, &left)) {
		/* Pending: keep the earlier of the two. */
		struct timeval	now;

		event_base_gettimeofday_cached(ix->base, &now);
		if (left.tv_sec - now.tv_sec <= in)
			return;
	}
	tv.tv_sec = (time_t)in;
	tv.tv_usec = 0;
	evtimer_add(ix->sweep, &tv);
}

/* An administrator's operation on the disk, for its completion. */
struct qindex_op {
	struct qindex_entry	*e;		/* NULL for a requeue */
	struct qindex		*ix;
	bool			 held;		/* hold or release */
	size_t			 nrcpt;		/* requeue */
	int64_t			 arrival;	/* requeue */
	qindex_done_cb		 done;
	void			*arg;
};

static struct qindex_op *
qindex_op_new(struct qindex *ix, struct qindex_entry *e, qindex_done_cb done,
    void *arg)
{
	struct qindex_op	*op = xcalloc(1, sizeof(*op));

	op->ix = ix;
	op->e = e;
	op->done = done;
	op->arg = arg;
	if (e != NULL)
		qindex_entry_busy(e);
	return op;
}

/* Reports to the administrator and frees <op>. */
static void
qindex_op_done(struct qindex_op *op, const char *id, int err)
{
	op->done(id, err, op->arg);
	free(op);
}

/* The envelope with the new hold flag is on disk, or not. */
static void
qindex_held_cb(const char *id, int err, void *arg)
{
	struct qindex_op	*op = arg;
	struct qindex_entry	*e = op->e;
	struct qindex		*ix = op->ix;

	e->busy = false;
	if (err == 0) {
		e->held = op->held;
		log_info("queue id=%s %s", id, op->held ? "held" : "released");
	}
	/* Not held: due now (a failed hold too, which lost its timer). */
	if (!e->held) {
		qindex_entry_ready(e);
		qindex_sweep_arm(ix, e->arrival);
	}
	qindex_op_done(op, id, err);
	if (!e->held)
		ix->cbs->due(ix->arg);
}

int
qindex_set_held(struct qindex *ix, const char *id, bool held,
    qindex_done_cb done, void *arg)
{
	struct qindex_entry	*e;
	struct qindex_op	*op;
	struct envelope		 env;

	if ((e = qindex_find(ix, id)) == NULL)
		return -1;
	if (e->busy) {
		errno = EBUSY;
		return -1;
	}
	if (spool_env_load(ix->spool, id, &env) == -1) {
		errno = ENOENT;
		return -1;
	}
	env.held = held;
	op = qindex_op_new(ix, e, done, arg);
	op->held = held;
	spool_env_save_start(ix->spool, &env, qindex_held_cb, op);
	envelope_cleanup(&env);
	return 0;
}

static void
qindex_deleted_cb(const char *id, int err, void *arg)
{
	struct qindex_op	*op = arg;
	struct qindex_entry	*e = op->e;
	struct qindex		*ix = op->ix;

	if (err == 0) {
		log_info("queue id=%s deleted by the administrator", id);
		qindex_entry_free(e);
	} else {
		errno = err;
		log_warn("queue id=%s cannot delete", id);
		e->busy = false;
		if (!e->held)
			qindex_entry_ready(e);
	}
	qindex_op_done(op, id, err);
	if (err != 0)
		ix->cbs->due(ix->arg);
}

int
qindex_delete(struct qindex *ix, const char *id, qindex_done_cb done,
    void *arg)
{
	struct qindex_entry	*e;

	if ((e = qindex_find(ix, id)) == NULL)
		return -1;
	if (e->busy) {
		errno = EBUSY;
		return -1;
	}
	spool_remove_start(ix->spool, id, qindex_deleted_cb,
	    qindex_op_new(ix, e, done, arg));
	return 0;
}

static void
qindex_requeued_cb(const char *id, int err, void *arg)
{
	struct qindex_op	*op = arg;
	struct qindex		*ix = op->ix;
	struct qindex_entry	*e;

	if (err == 0 && qindex_find(ix, id) == NULL) {
		log_info("queue id=%s requeued from failed/ rcpts=%zu", id,
		    op->nrcpt);
		e = qindex_entry_new(ix, id, op->arrival, false);
		qindex_sweep_arm(ix, e->arrival);
		qindex_entry_ready(e);
	}
	qindex_op_done(op, id, err);
	if (err == 0)
		ix->cbs->due(ix->arg);
}

int
qindex_requeue(struct qindex *ix, const char *id, qindex_done_cb done,
    void *arg)
{
	struct qindex_op	*op;
	struct envelope		 env;
	size_t			 n;

	if (qindex_find(ix, id) != NULL) {
		errno = EEXIST;
		return -1;
	}
	if (spool_failed_load(ix->spool, id, &env) == -1)
		return -1;
	if ((n = envelope_requeue(&env, time_wall())) == 0) {
		envelope_cleanup(&env);
		errno = EINVAL;
		return -1;
	}
	op = qindex_op_new(ix, NULL, done, arg);
	op->nrcpt = n;
	op->arrival = env.arrival;
	spool_requeue_start(ix->spool, &env, qindex_requeued_cb, op);
	envelope_cleanup(&env);
	return 0;
}
