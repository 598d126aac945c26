/*
 * queue.c - the scheduler between the spool and the upstreams.
 *
 * Every committed message has an entry: due entries wait in the ready
 * list, deferred ones on their own timer (libevent keeps the heap).
 * Each entry goes to the first upstream that is delivering (upstream.h:
 * failover); an idle connection of it takes the next ready entry, and
 * more connections open while more mail waits than connections.  The
 * envelope on disk is rewritten only after a transaction, and a message
 * leaves the queue only when no recipient is pending.  Upstream-wide
 * trouble (unreachable, credentials, quota) pauses that upstream
 * without touching any message's retry count; the upstream says when
 * it takes mail again (on_ready()).
 */
#include "config.h"

#include "queue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/event.h>

#include "attempt.h"
#include "bounce.h"
#include "conf.h"
#include "envelope.h"
#include "log.h"
#include "relay.h"
#include "spool.h"
#include "upstream.h"
#include "util.h"

struct queue_entry {
	TAILQ_ENTRY(queue_entry) all;
	TAILQ_ENTRY(queue_entry) ready;
	struct queue		*q;
	char			 id[ENVELOPE_ID_LEN + 1];
	struct event		*timer;
	int64_t			 arrival;
	bool			 in_ready;
	bool			 busy;		/* with a relay, or saving */
	int64_t			 next;		/* when saved: next attempt */
	bool			 held;
	unsigned int		 min_up;	/* rejected by the upstreams
						 * before this one (failover) */
	struct envelope		*gone;		/* delivered, its files being
						 * removed: listed from this */
	struct attempt		*att;		/* with an upstream */
};

struct queue {
	struct event_base	*base;
	const struct conf	*conf;
	struct spool		*spool;
	struct upstream_list	*ups;
	TAILQ_HEAD(, queue_entry) entries;
	TAILQ_HEAD(, queue_entry) readyq;
	unsigned long		 nentries;
	unsigned long		 nrestricted;	/* entries with min_up > 0 */
	struct event		*sweep;		/* next lifetime expiry */
	bool			 stopping;
	void			(*drained)(void *);
	void			*drained_arg;
	struct queue_stats	 stats;		/* counters only */
	struct attempt_counts	 counts;		/* recipients */
	void			(*observer)(void *);
	void			*observer_arg;
	bool			 in_done;	/* inside on_delivered() */
};

static void	queue_run(struct queue *);

/* Tells the observer that contents or states changed. */
static void
queue_changed(struct queue *q)
{
	if (q->observer != NULL)
		q->observer(q->observer_arg);
}

static void
queue_entry_ready(struct queue_entry *e)
{
	evtimer_del(e->timer);
	if (!e->in_ready && !e->busy && !e->held) {
		TAILQ_INSERT_TAIL(&e->q->readyq, e, ready);
		e->in_ready = true;
	}
}

static void
queue_entry_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue_entry	*e = arg;

	(void)fd;
	(void)what;
	queue_entry_ready(e);
	queue_run(e->q);
}

/* Schedules <e> for <when> (unix time): the ready list if due. */
static void
queue_entry_schedule(struct queue_entry *e, int64_t when)
{
	struct timeval	tv;
	int64_t		now = time_wall();

	if (when <= now) {
		queue_entry_ready(e);
		return;
	}
	tv.tv_sec = (time_t)(when - now);
	tv.tv_usec = 0;
	evtimer_add(e->timer, &tv);
}

static struct queue_entry *
queue_entry_new(struct queue *q, const char *id, int64_t arrival, bool held)
{
	struct queue_entry	*e;

	e = xcalloc(1, sizeof(*e));
	e->q = q;
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->arrival = arrival;
	e->held = held;
	if ((e->timer = evtimer_new(q->base, queue_entry_timer_cb, e)) == NULL)
		fatalx("queue evtimer_new");
	TAILQ_INSERT_TAIL(&q->entries, e, all);
	q->nentries++;
	queue_changed(q);
	return e;
}

static void
queue_entry_free(struct queue_entry *e)
{
	struct queue	*q = e->q;

	if (e->in_ready)
		TAILQ_REMOVE(&q->readyq, e, ready);
	if (e->min_up > 0)
		q->nrestricted--;
	TAILQ_REMOVE(&q->entries, e, all);
	q->nentries--;
	event_free(e->timer);
	attempt_free(e->att);
	if (e->gone != NULL) {
		envelope_cleanup(e->gone);
		free(e->gone);
	}
	free(e);
	queue_changed(q);
}

/* Ready entries that <u> should carry, counted up to <limit> + 1. */
static unsigned int
queue_count_for(struct queue *q, struct upstream *u, unsigned int limit)
{
	struct queue_entry	*e;
	unsigned int		 n = 0;

	/* Without failed-over entries, all of them go to one upstream. */
	if (q->nrestricted == 0 && upstream_list_target(q->ups, 0) != u)
		return 0;
	TAILQ_FOREACH(e, &q->readyq, ready)
		if (upstream_list_target(q->ups, e->min_up) == u &&
		    ++n > limit)
			break;
	return n;
}

/* Opens connections to <u> while it has more work than connections. */
static void
queue_run_up(struct queue *q, struct upstream *u)
{
	unsigned int	waiting, nready;

	if (upstream_is_pacing(u))
		return;
	waiting = upstream_waiting(u);
	if ((nready = queue_count_for(q, u, waiting)) <= waiting)
		return;
	upstream_connect(u, nready - waiting);
}

/* Gives the ready entries meant for <u> to its idle connections. */
static void
queue_dispatch(struct queue *q, struct upstream *u)
{
	struct queue_entry	*e, *next;
	struct attempt		*a;

	if (!upstream_can_take(u) || (q->nrestricted == 0 &&
	    upstream_list_target(q->ups, 0) != u))
		return;
	for (e = TAILQ_FIRST(&q->readyq); e != NULL && upstream_can_take(u);
	    e = next) {
		next = TAILQ_NEXT(e, ready);
		if (upstream_list_target(q->ups, e->min_up) != u)
			continue;
		TAILQ_REMOVE(&q->readyq, e, ready);
		e->in_ready = false;
		if ((a = attempt_new(q->spool, e->id, e)) == NULL) {
			/* Logged by the spool; forget it until a restart
			 * quarantines it. */
			queue_entry_free(e);
			continue;
		}
		if (upstream_send(u, attempt_envelope(a), attempt_data_path(a),
		    a) == -1) {
			/* Not now (the quota): first in line again, for this
			 * upstream later or the next one now. */
			attempt_free(a);
			TAILQ_INSERT_HEAD(&q->readyq, e, ready);
			e->in_ready = true;
			return;
		}
		e->busy = true;
		e->att = a;
	}
}

/* Hands ready entries to idle connections and opens connections while
 * there is more work than connections. */
static void
queue_run(struct queue *q)
{
	struct upstream	*u;
	unsigned int	 i;

	/* Inside on_delivered() the finishing connection still counts as
	 * busy, and would open a needless one; it takes the next message
	 * from on_ready(), which comes right after. */
	if (q->stopping || q->in_done)
		return;
	if (!TAILQ_EMPTY(&q->readyq))
		for (i = 0; i < upstream_list_count(q->ups); i++)
			queue_dispatch(q, upstream_list_get(q->ups, i));
	/* Paused upstreams are tried by their own probe timer only. */
	for (i = 0; i < upstream_list_count(q->ups); i++) {
		u = upstream_list_get(q->ups, i);
		if (upstream_is_delivering(u))
			queue_run_up(q, u);
	}
}

static void	queue_saved_cb(const char *, int, void *);
static void	queue_retire(struct queue *, struct queue_entry *,
		    const struct envelope *);

/* Applies a transaction's results to the envelope on disk. */
static void
queue_finish_attempt(struct queue *q, struct attempt *a, struct upstream *u,
    enum relay_status st, const char *reply, const char *peer)
{
	struct queue_entry	*e = attempt_owner(a);
	struct envelope		*env = attempt_envelope(a);
	unsigned int		 idx = upstream_index(u);
	bool			 fail_over, moved, pending;

	e->att = NULL;
	fail_over = upstream_conf(u)->failover_on_reject &&
	    idx + 1 < upstream_list_count(q->ups);
	pending = attempt_finish(a, &q->conf->queue, fail_over, st, reply,
	    peer, &q->counts, &moved);
	if (moved && e->min_up == 0)
		q->nrestricted++;
	if (moved)
		e->min_up = idx + 1;
	if (!pending) {
		queue_retire(q, e, env);
		return;
	}
	/* Stays busy (not dispatched, not deleted) until saved. */
	e->next = env->next_attempt;
	spool_env_save_start(q->spool, env, queue_saved_cb, e);
}

/* The upstream callbacks. */
static void
queue_up_ready_cb(struct upstream *u, void *arg)
{
	struct queue	*q = arg;

	(void)u;
	queue_run(q);
}

static void
queue_up_delivered_cb(struct upstream *u, struct envelope *env,
    enum relay_status st, const char *reply, const char *peer, void *txn,
    void *arg)
{
	struct queue	*q = arg;

	(void)env;
	q->in_done = true;
	queue_finish_attempt(q, txn, u, st, reply, peer);
	q->in_done = false;
	attempt_free(txn);
}

static void
queue_up_closed_cb(struct upstream *u, void *arg)
{
	struct queue	*q = arg;

	(void)u;
	if (q->stopping) {
		if (upstream_list_connections(q->ups) == 0 &&
		    q->drained != NULL)
			q->drained(q->drained_arg);
		return;
	}
	queue_run(q);
}

static void
queue_up_state_cb(struct upstream *u, void *arg)
{
	(void)u;
	queue_changed(arg);
}

static unsigned long
queue_up_queued_cb(void *arg)
{
	struct queue	*q = arg;

	return q->nentries;
}

static const struct upstream_cbs queue_up_cbs = {
	queue_up_ready_cb, queue_up_delivered_cb, queue_up_closed_cb,
	queue_up_state_cb, queue_up_queued_cb,
};

static void	queue_move_failed(struct queue_entry *);

/* The failure report is on disk (<report_id>), or could not be: queue
 * it, then move the original to failed/. */
static void
queue_report_cb(const char *report_id, void *arg)
{
	struct queue_entry	*e = arg;
	struct queue		*q = e->q;

	if (report_id != NULL) {
		q->stats.reports++;
		queue_add(q, report_id);
	}
	queue_move_failed(e);
}

/* Queues the failure report for the FAILED recipients of <e>'s message
 * (its envelope in e->gone), except for the null sender (no bounce
 * loops), then moves the message to failed/.  The report is committed
 * before the original moves: a crash in between can only repeat the
 * report, never lose it. */
static void
queue_bounce(struct queue *q, struct queue_entry *e)
{
	if (bounce_start(q->spool, q->conf, e->gone, queue_report_cb, e) == -1)
		queue_move_failed(e);
}

/* The removal of a delivered message is over: only now does its entry
 * (<arg>, or NULL) leave the queue, so that an empty queue means that
 * queue/ holds no file of it any more. */
static void
queue_removed_cb(const char *id, int err, void *arg)
{
	struct queue_entry	*e = arg;

	if (err != 0) {
		errno = err;
		log_warn("queue id=%s cannot remove", id);
	} else
		log_info("queue id=%s removed", id);
	if (e != NULL)
		queue_entry_free(e);
}

/* Keeps <e> in the queue, busy (never dispatched, held or deleted) and
 * listed from a copy of <env>, while the files of the delivered message
 * are removed.  Returns 0, or -1 if <env> could not be copied. */
static int
queue_entry_removing(struct queue_entry *e, const struct envelope *env)
{
	struct queue	*q = e->q;
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
	evtimer_del(e->timer);
	if (e->in_ready) {
		TAILQ_REMOVE(&q->readyq, e, ready);
		e->in_ready = false;
	}
	if (e->min_up > 0) {
		q->nrestricted--;
		e->min_up = 0;
	}
	e->busy = true;
	queue_changed(q);
	return 0;
}

/* The envelope of a deferred message is on disk: now it may be tried
 * again (and loaded again from disk for that). */
static void
queue_saved_cb(const char *id, int err, void *arg)
{
	struct queue_entry	*e = arg;

	if (err != 0) {
		errno = err;
		log_warn("queue id=%s cannot save the envelope; the attempt "
		    "may be repeated", id);
	}
	e->busy = false;
	queue_entry_schedule(e, e->next);
	queue_run(e->q);
}

/* The move to failed/ is over: only now does the entry leave the
 * queue. */
static void
queue_failed_cb(const char *id, int err, void *arg)
{
	struct queue_entry	*e = arg;

	if (err != 0)
		log_warnx("queue id=%s cannot move to failed/", id);
	else
		log_info("queue id=%s moved to failed/", id);
	queue_entry_free(e);
}

/* Keeps the message of <e> (envelope in e->gone, final states) in
 * failed/ for a human, off the loop. */
static void
queue_move_failed(struct queue_entry *e)
{
	spool_move_failed_start(e->q->spool, e->gone, queue_failed_cb, e);
}

/* The message has no pending recipient left: report, then remove it or
 * keep it in failed/, off the loop.  The message stays in the queue,
 * busy, until its files are gone from queue/; then the entry is
 * freed. */
static void
queue_retire(struct queue *q, struct queue_entry *e,
    const struct envelope *env)
{
	size_t	i;
	bool	failed = false;

	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpts[i].state == ENVELOPE_RCPT_FAILED)
			failed = true;
	if (e == NULL)
		e = queue_entry_new(q, env->id, env->arrival, false);
	if (queue_entry_removing(e, env) == -1) {
		log_warnx("queue id=%s cannot copy the envelope; the message "
		    "stays in queue/ until a restart", env->id);
		queue_entry_free(e);
		return;
	}
	if (failed)
		queue_bounce(q, e);
	else
		/* A crash before the removal is durable delivers the
		 * message once more, which is the promise (never a
		 * loss). */
		spool_remove_start(q->spool, env->id, queue_removed_cb, e);
}

/* Expires messages past queue.lifetime even while nothing can be
 * delivered (a long outage), then arms for the next expiry. */
static void
queue_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue		*q = arg;
	struct queue_entry	*e, *next;
	struct envelope		 env;
	int64_t			 now = time_wall(), first = 0, end;
	struct timeval		 tv;

	(void)fd;
	(void)what;
	for (e = TAILQ_FIRST(&q->entries); e != NULL; e = next) {
		next = TAILQ_NEXT(e, all);
		end = e->arrival + (int64_t)q->conf->queue.lifetime;
		if (e->held)
			continue;	/* a human decides about these */
		if (e->busy || end > now) {
			if (!e->busy && (first == 0 || end < first))
				first = end;
			continue;
		}
		if (spool_env_load(q->spool, e->id, &env) == -1)
			continue;
		attempt_expire(&env);
		for (size_t i = 0; i < env.nrcpt; i++)
			if (env.rcpts[i].dsn != NULL &&
			    strcmp(env.rcpts[i].dsn, "4.4.7") == 0 &&
			    ++q->counts.expired > 0)
				log_info("delivery id=%s to=<%s> relay=none "
				    "tries=%u dsn=4.4.7 status=expired (%s)",
				    env.id, env.rcpts[i].addr, env.attempts,
				    env.rcpts[i].reply);
		queue_retire(q, e, &env);
		envelope_cleanup(&env);
	}
	if (first != 0) {
		tv.tv_sec = (time_t)(first - now + 1);
		tv.tv_usec = 0;
		evtimer_add(q->sweep, &tv);
	}
}

/* Makes sure the sweep runs no later than <arrival> + lifetime. */
static void
queue_sweep_arm(struct queue *q, int64_t arrival)
{
	struct timeval	tv, left;
	int64_t		in = arrival + (int64_t)q->conf->queue.lifetime -
			    time_wall() + 1;

	if (in < 1)
		in = 1;
	if (evtimer_pending(q->sweep, &left)) {
		/* Pending: keep the earlier of the two. */
		struct timeval	now;

		event_base_gettimeofday_cached(q->base, &now);
		if (left.tv_sec - now.tv_sec <= in)
			return;
	}
	tv.tv_sec = (time_t)in;
	tv.tv_usec = 0;
	evtimer_add(q->sweep, &tv);
}

struct queue *
queue_new(struct event_base *base, struct evdns_base *dns,
    const struct conf *conf, struct spool *spool, struct tls_client *tls)
{
	struct queue	*q;

	q = xcalloc(1, sizeof(*q));
	q->base = base;
	q->conf = conf;
	q->spool = spool;
	TAILQ_INIT(&q->entries);
	TAILQ_INIT(&q->readyq);
	q->ups = upstream_list_new(base, dns, conf, tls, &queue_up_cbs, q);
	q->sweep = evtimer_new(base, queue_sweep_cb, q);
	if (q->sweep == NULL)
		fatalx("queue evtimer_new");
	srandom((unsigned int)time_wall() ^ (unsigned int)getpid());
	return q;
}

static void
queue_load_cb(const struct envelope *env, void *arg)
{
	struct queue		*q = arg;
	struct queue_entry	*e;

	if (!attempt_has_pending(env)) {
		/* A crash between the last delivery and the removal. */
		queue_retire(q, NULL, env);
		return;
	}
	e = queue_entry_new(q, env->id, env->arrival, env->held);
	queue_entry_schedule(e, env->next_attempt);
	queue_sweep_arm(q, env->arrival);
}

long
queue_load(struct queue *q)
{
	long	n = spool_scan(q->spool, queue_load_cb, q);

	if (n == -1)
		return -1;
	upstream_has_credentials(upstream_list_get(q->ups, 0));
	queue_run(q);
	return (long)q->nentries;
}

void
queue_add(struct queue *q, const char *id)
{
	struct queue_entry	*e;

	e = queue_entry_new(q, id, time_wall(), false);
	queue_sweep_arm(q, e->arrival);
	queue_entry_ready(e);
	queue_run(q);
}

void
queue_flush(struct queue *q)
{
	struct queue_entry	*e;

	log_info("queue flush queued=%lu upstream=%s", q->nentries,
	    health_state_name(queue_upstream_state(q)));
	TAILQ_FOREACH(e, &q->entries, all)
		if (!e->busy)
			queue_entry_ready(e);
	/* Paused upstreams try at once, mail or not: whoever sends the
	 * signal wants to know. */
	upstream_list_probe_now(q->ups);
	queue_run(q);
}

void
queue_stop(struct queue *q, void (*drained)(void *), void *arg)
{
	q->stopping = true;
	q->drained = drained;
	q->drained_arg = arg;
	/* Transactions in flight finish: on_closed() says when. */
	upstream_list_stop(q->ups);
	if (upstream_list_connections(q->ups) == 0 && drained != NULL)
		drained(arg);
}

void
queue_free(struct queue *q)
{
	struct queue_entry	*e;

	if (q == NULL)
		return;
	/* No callback comes any more: the attempts are abandoned, and go
	 * with their entries. */
	upstream_list_free(q->ups);
	while ((e = TAILQ_FIRST(&q->entries)) != NULL)
		queue_entry_free(e);
	event_free(q->sweep);
	free(q);
}

unsigned long
queue_size(const struct queue *q)
{
	return q->nentries;
}

void
queue_get_stats(const struct queue *q, struct queue_stats *st)
{
	const struct queue_entry	*e;
	struct upstream_stats		 us;

	*st = q->stats;
	st->sent = q->counts.sent;
	st->deferred = q->counts.deferred;
	st->bounced = q->counts.bounced;
	st->expired = q->counts.expired;
	st->last_sent = q->counts.last_sent;
	st->depth = q->nentries;
	st->held = 0;
	st->oldest = 0;
	st->connections = 0;
	TAILQ_FOREACH(e, &q->entries, all) {
		if (e->held)
			st->held++;
		if (st->oldest == 0 || e->arrival < st->oldest)
			st->oldest = e->arrival;
	}
	st->connections = upstream_list_connections(q->ups);
	st->upstream = queue_upstream_state(q);
	upstream_stats(upstream_list_get(q->ups, 0), &us);
	st->upstream_reason = us.reason;
}

long
queue_list(struct queue *q, void (*cb)(const struct envelope *, bool,
    void *), void *arg)
{
	struct queue_entry	*e;
	struct envelope		 env;
	long			 n = 0;

	TAILQ_FOREACH(e, &q->entries, all) {
		if (e->gone != NULL) {
			/* Delivered; its files are being removed. */
			cb(e->gone, true, arg);
			n++;
			continue;
		}
		if (spool_env_load(q->spool, e->id, &env) == -1)
			continue;
		cb(&env, e->busy, arg);
		envelope_cleanup(&env);
		n++;
	}
	return n;
}

/* Collects the ids spool_scan_failed() finds. */
struct queue_ids_failed {
	struct queue_id		*ids;
	size_t			 n;
};

static void
queue_ids_failed_cb(const struct envelope *env, void *arg)
{
	struct queue_ids_failed	*f = arg;

	f->ids = xrealloc(f->ids, (f->n + 1) * sizeof(*f->ids));
	memcpy(f->ids[f->n++].id, env->id, sizeof(f->ids[0].id));
}

struct queue_id *
queue_ids(const struct queue *q, enum queue_select sel, size_t *n)
{
	const struct queue_entry	*e;
	struct queue_id			*ids = NULL;
	struct queue_ids_failed		 f = { NULL, 0 };

	*n = 0;
	if (sel == QUEUE_SELECT_FAILED) {
		spool_scan_failed(q->spool, queue_ids_failed_cb, &f);
		*n = f.n;
		return f.ids;
	}
	if (q->nentries > 0)
		ids = xcalloc(q->nentries, sizeof(*ids));
	TAILQ_FOREACH(e, &q->entries, all) {
		/* A delivered message whose files are being removed is
		 * nothing anyone can act on any more. */
		if (e->gone != NULL ||
		    (sel == QUEUE_SELECT_HELD && !e->held) ||
		    (sel == QUEUE_SELECT_NOT_HELD && e->held))
			continue;
		memcpy(ids[*n].id, e->id, sizeof(ids[*n].id));
		(*n)++;
	}
	return ids;
}

static struct queue_entry *
queue_find(struct queue *q, const char *id)
{
	struct queue_entry	*e;

	TAILQ_FOREACH(e, &q->entries, all)
		if (strcmp(e->id, id) == 0)
			return e;
	errno = ENOENT;
	return NULL;
}

int
queue_flush_one(struct queue *q, const char *id)
{
	struct queue_entry	*e;

	if ((e = queue_find(q, id)) == NULL)
		return -1;
	if (e->held) {
		errno = EPERM;
		return -1;
	}
	queue_entry_ready(e);
	queue_run(q);
	return 0;
}

/* An administrator's operation on the disk, for its completion. */
struct queue_op {
	struct queue_entry	*e;		/* NULL for a requeue */
	struct queue		*q;
	bool			 held;		/* hold or release */
	size_t			 nrcpt;		/* requeue */
	int64_t			 arrival;	/* requeue */
	queue_done_cb		 done;
	void			*arg;
};

static struct queue_op *
queue_op_new(struct queue *q, struct queue_entry *e, queue_done_cb done,
    void *arg)
{
	struct queue_op	*op = xcalloc(1, sizeof(*op));

	op->q = q;
	op->e = e;
	op->done = done;
	op->arg = arg;
	if (e != NULL) {
		/* Busy: neither dispatched nor acted on until the disk has
		 * answered. */
		e->busy = true;
		evtimer_del(e->timer);
		if (e->in_ready) {
			TAILQ_REMOVE(&q->readyq, e, ready);
			e->in_ready = false;
		}
	}
	return op;
}

/* Reports to the administrator and frees <op>. */
static void
queue_op_done(struct queue_op *op, const char *id, int err)
{
	op->done(id, err, op->arg);
	free(op);
}

/* The envelope with the new hold flag is on disk, or not. */
static void
queue_held_cb(const char *id, int err, void *arg)
{
	struct queue_op		*op = arg;
	struct queue_entry	*e = op->e;
	struct queue		*q = op->q;

	e->busy = false;
	if (err == 0) {
		e->held = op->held;
		log_info("queue id=%s %s", id, op->held ? "held" : "released");
	}
	/* Not held: due now (a failed hold too, which lost its timer). */
	if (!e->held) {
		queue_entry_ready(e);
		queue_sweep_arm(q, e->arrival);
	}
	queue_op_done(op, id, err);
	if (!e->held)
		queue_run(q);
}

/* Sets or clears the hold flag, on disk first. */
static int
queue_set_held(struct queue *q, const char *id, bool held,
    queue_done_cb done, void *arg)
{
	struct queue_entry	*e;
	struct queue_op		*op;
	struct envelope		 env;

	if ((e = queue_find(q, id)) == NULL)
		return -1;
	if (e->busy) {
		errno = EBUSY;
		return -1;
	}
	if (spool_env_load(q->spool, id, &env) == -1) {
		errno = ENOENT;
		return -1;
	}
	env.held = held;
	op = queue_op_new(q, e, done, arg);
	op->held = held;
	spool_env_save_start(q->spool, &env, queue_held_cb, op);
	envelope_cleanup(&env);
	return 0;
}

int
queue_hold(struct queue *q, const char *id, queue_done_cb done, void *arg)
{
	return queue_set_held(q, id, true, done, arg);
}

int
queue_release(struct queue *q, const char *id, queue_done_cb done,
    void *arg)
{
	return queue_set_held(q, id, false, done, arg);
}

static void
queue_deleted_cb(const char *id, int err, void *arg)
{
	struct queue_op		*op = arg;
	struct queue_entry	*e = op->e;
	struct queue		*q = op->q;

	if (err == 0) {
		log_info("queue id=%s deleted by the administrator", id);
		queue_entry_free(e);
	} else {
		errno = err;
		log_warn("queue id=%s cannot delete", id);
		e->busy = false;
		if (!e->held)
			queue_entry_ready(e);
	}
	queue_op_done(op, id, err);
	if (err != 0)
		queue_run(q);
}

int
queue_delete(struct queue *q, const char *id, queue_done_cb done, void *arg)
{
	struct queue_entry	*e;

	if ((e = queue_find(q, id)) == NULL)
		return -1;
	if (e->busy) {
		errno = EBUSY;
		return -1;
	}
	spool_remove_start(q->spool, id, queue_deleted_cb,
	    queue_op_new(q, e, done, arg));
	return 0;
}

static void
queue_requeued_cb(const char *id, int err, void *arg)
{
	struct queue_op		*op = arg;
	struct queue		*q = op->q;
	struct queue_entry	*e;

	if (err == 0 && queue_find(q, id) == NULL) {
		log_info("queue id=%s requeued from failed/ rcpts=%zu", id,
		    op->nrcpt);
		e = queue_entry_new(q, id, op->arrival, false);
		queue_sweep_arm(q, e->arrival);
		queue_entry_ready(e);
	}
	queue_op_done(op, id, err);
	if (err == 0)
		queue_run(q);
}

int
queue_requeue(struct queue *q, const char *id, queue_done_cb done,
    void *arg)
{
	struct queue_op	*op;
	struct envelope	 env;
	size_t		 n;

	if (queue_find(q, id) != NULL) {
		errno = EEXIST;
		return -1;
	}
	if (spool_failed_load(q->spool, id, &env) == -1)
		return -1;
	if ((n = envelope_requeue(&env, time_wall())) == 0) {
		envelope_cleanup(&env);
		errno = EINVAL;
		return -1;
	}
	op = queue_op_new(q, NULL, done, arg);
	op->nrcpt = n;
	op->arrival = env.arrival;
	spool_requeue_start(q->spool, &env, queue_requeued_cb, op);
	envelope_cleanup(&env);
	return 0;
}

void
queue_set_observer(struct queue *q, void (*cb)(void *), void *arg)
{
	q->observer = cb;
	q->observer_arg = arg;
}

void
queue_set_conf(struct queue *q, const struct conf *conf,
    struct tls_client *tls)
{
	struct queue_entry	*e;

	q->conf = conf;
	/* Paused upstreams probe again: credentials may have appeared,
	 * an address changed. */
	upstream_list_set_conf(q->ups, conf, tls);
	/* Failover positions refer to the old list of upstreams. */
	TAILQ_FOREACH(e, &q->entries, all)
		e->min_up = 0;
	q->nrestricted = 0;
	queue_run(q);
}

void
queue_network_changed(struct queue *q)
{
	upstream_list_network_changed(q->ups);
	queue_run(q);
}

/* Delivering if any upstream is; else the first one's trouble. */
enum health_state
queue_upstream_state(const struct queue *q)
{
	return upstream_list_state(q->ups);
}

unsigned int
queue_upstreams(const struct queue *q)
{
	return upstream_list_count(q->ups);
}

void
queue_get_upstream(const struct queue *q, unsigned int i,
    struct queue_upstream_stats *st)
{
	struct upstream_stats	us;

	upstream_stats(upstream_list_get(q->ups, i), &us);
	memset(st, 0, sizeof(*st));
	st->name = us.name;
	st->state = us.state;
	st->reason = us.reason;
	st->connections = us.connections;
	st->retry_at = us.retry_at;
	st->probing = us.probing;
	st->has_quota = us.has_quota;
	st->quota = us.quota;
}
