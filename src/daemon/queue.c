/*
 * queue.c - the scheduler between the spool and the upstreams.
 *
 * Every committed message has an entry in the index (qindex.c: the
 * ready list, a timer per deferred entry, the lifetime sweep, the
 * administrator's operations), which says when entries are due.
 * Each entry goes to the first upstream that is delivering (upstream.h:
 * failover); an idle connection of it takes the next ready entry, and
 * more connections open while more mail waits than connections.  The
 * envelope on disk is rewritten only after a transaction, and a message
 * leaves the queue only when no recipient is pending.  Upstream-wide
 * trouble (unreachable, credentials, quota) pauses that upstream
 * without touching any message's retry count; the upstream says when
 * it takes mail again (on_ready()).  Failed recipients get their
 * failure report from bounce.c before the message moves to failed/.
 */
#include "config.h"

#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attempt.h"
#include "bounce.h"
#include "conf.h"
#include "envelope.h"
#include "log.h"
#include "qindex.h"
#include "relay.h"
#include "spool.h"
#include "upstream.h"
#include "util.h"

struct queue {
	const struct conf	*conf;
	struct spool		*spool;
	struct upstream_list	*ups;
	struct qindex		*ix;		/* the entries */
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

/* Ready entries that <u> should carry, counted up to <limit> + 1. */
static unsigned int
queue_count_for(struct queue *q, struct upstream *u, unsigned int limit)
{
	struct qindex_entry	*e;
	unsigned int		 n = 0;

	/* Without failed-over entries, all of them go to one upstream. */
	if (qindex_restricted(q->ix) == 0 &&
	    upstream_list_target(q->ups, 0) != u)
		return 0;
	for (e = qindex_ready_first(q->ix); e != NULL;
	    e = qindex_ready_next(e))
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
	struct qindex_entry	*e, *next;
	struct attempt		*a;

	if (!upstream_can_take(u) || (qindex_restricted(q->ix) == 0 &&
	    upstream_list_target(q->ups, 0) != u))
		return;
	for (e = qindex_ready_first(q->ix); e != NULL &&
	    upstream_can_take(u); e = next) {
		next = qindex_ready_next(e);
		if (upstream_list_target(q->ups, e->min_up) != u)
			continue;
		qindex_entry_unready(e);
		if ((a = attempt_new(q->spool, e->id, e)) == NULL) {
			/* Logged by the spool; forget it until a restart
			 * quarantines it. */
			qindex_entry_free(e);
			continue;
		}
		if (upstream_send(u, attempt_envelope(a), attempt_data_path(a),
		    a) == -1) {
			/* Not now (the quota): first in line again, for this
			 * upstream later or the next one now. */
			attempt_free(a);
			qindex_entry_ready_first(e);
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
	if (qindex_ready_first(q->ix) != NULL)
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
static void	queue_retire(struct queue *, struct qindex_entry *,
		    const struct envelope *);

/* Applies a transaction's results to the envelope on disk. */
static void
queue_finish_attempt(struct queue *q, struct attempt *a, struct upstream *u,
    enum relay_status st, const char *reply, const char *peer)
{
	struct qindex_entry	*e = attempt_owner(a);
	struct envelope		*env = attempt_envelope(a);
	unsigned int		 idx = upstream_index(u);
	bool			 fail_over, moved, pending;

	e->att = NULL;
	fail_over = upstream_conf(u)->failover_on_reject &&
	    idx + 1 < upstream_list_count(q->ups);
	pending = attempt_finish(a, &q->conf->queue, fail_over, st, reply,
	    peer, &q->counts, &moved);
	if (moved)
		qindex_entry_set_min_up(e, idx + 1);
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

	return qindex_count(q->ix);
}

static const struct upstream_cbs queue_up_cbs = {
	queue_up_ready_cb, queue_up_delivered_cb, queue_up_closed_cb,
	queue_up_state_cb, queue_up_queued_cb,
};

static void	queue_move_failed(struct qindex_entry *);

/* The failure report is on disk (<report_id>), or could not be: queue
 * it, then move the original to failed/. */
static void
queue_report_cb(const char *report_id, void *arg)
{
	struct qindex_entry	*e = arg;
	struct queue		*q = e->owner;

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
queue_bounce(struct queue *q, struct qindex_entry *e)
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
	struct qindex_entry	*e = arg;

	if (err != 0) {
		errno = err;
		log_warn("queue id=%s cannot remove", id);
	} else
		log_info("queue id=%s removed", id);
	if (e != NULL)
		qindex_entry_free(e);
}

/* The envelope of a deferred message is on disk: now it may be tried
 * again (and loaded again from disk for that). */
static void
queue_saved_cb(const char *id, int err, void *arg)
{
	struct qindex_entry	*e = arg;

	if (err != 0) {
		errno = err;
		log_warn("queue id=%s cannot save the envelope; the attempt "
		    "may be repeated", id);
	}
	e->busy = false;
	qindex_entry_schedule(e, e->next);
	queue_run(e->owner);
}

/* The move to failed/ is over: only now does the entry leave the
 * queue. */
static void
queue_failed_cb(const char *id, int err, void *arg)
{
	struct qindex_entry	*e = arg;

	if (err != 0)
		log_warnx("queue id=%s cannot move to failed/", id);
	else
		log_info("queue id=%s moved to failed/", id);
	qindex_entry_free(e);
}

/* Keeps the message of <e> (envelope in e->gone, final states) in
 * failed/ for a human, off the loop. */
static void
queue_move_failed(struct qindex_entry *e)
{
	struct queue	*q = e->owner;

	spool_move_failed_start(q->spool, e->gone, queue_failed_cb, e);
}

/* The message has no pending recipient left: report, then remove it or
 * keep it in failed/, off the loop.  The message stays in the queue,
 * busy, until its files are gone from queue/; then the entry is
 * freed. */
static void
queue_retire(struct queue *q, struct qindex_entry *e,
    const struct envelope *env)
{
	size_t	i;
	bool	failed = false;

	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpts[i].state == ENVELOPE_RCPT_FAILED)
			failed = true;
	if (e == NULL)
		e = qindex_entry_new(q->ix, env->id, env->arrival, false);
	if (qindex_entry_removing(e, env) == -1) {
		log_warnx("queue id=%s cannot copy the envelope; the message "
		    "stays in queue/ until a restart", env->id);
		qindex_entry_free(e);
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

/* <e> outlived queue.lifetime (the index's sweep): its pending
 * recipients expire, and the message retires. */
static void
queue_ix_expire_cb(struct qindex_entry *e, void *arg)
{
	struct queue		*q = arg;
	struct envelope		 env;

	if (spool_env_load(q->spool, e->id, &env) == -1)
		return;
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

/* The index callbacks. */
static void
queue_ix_due_cb(void *arg)
{
	queue_run(arg);
}

static void
queue_ix_changed_cb(void *arg)
{
	queue_changed(arg);
}

static const struct qindex_cbs queue_ix_cbs = {
	queue_ix_due_cb, queue_ix_changed_cb, queue_ix_expire_cb,
};

struct queue *
queue_new(struct event_base *base, struct evdns_base *dns,
    const struct conf *conf, struct spool *spool, struct tls_client *tls)
{
	struct queue	*q;

	q = xcalloc(1, sizeof(*q));
	q->conf = conf;
	q->spool = spool;
	q->ix = qindex_new(base, spool, conf->queue.lifetime, &queue_ix_cbs,
	    q);
	q->ups = upstream_list_new(base, dns, conf, tls, &queue_up_cbs, q);
	srandom((unsigned int)time_wall() ^ (unsigned int)getpid());
	return q;
}

static void
queue_load_cb(const struct envelope *env, void *arg)
{
	struct queue		*q = arg;
	struct qindex_entry	*e;

	if (!attempt_has_pending(env)) {
		/* A crash between the last delivery and the removal. */
		queue_retire(q, NULL, env);
		return;
	}
	e = qindex_entry_new(q->ix, env->id, env->arrival, env->held);
	qindex_entry_schedule(e, env->next_attempt);
	qindex_sweep_arm(q->ix, env->arrival);
}

long
queue_load(struct queue *q)
{
	long	n = spool_scan(q->spool, queue_load_cb, q);

	if (n == -1)
		return -1;
	upstream_has_credentials(upstream_list_get(q->ups, 0));
	queue_run(q);
	return (long)qindex_count(q->ix);
}

void
queue_add(struct queue *q, const char *id)
{
	struct qindex_entry	*e;

	e = qindex_entry_new(q->ix, id, time_wall(), false);
	qindex_sweep_arm(q->ix, e->arrival);
	qindex_entry_ready(e);
	queue_run(q);
}

void
queue_flush(struct queue *q)
{
	struct qindex_entry	*e;

	log_info("queue flush queued=%lu upstream=%s", qindex_count(q->ix),
	    health_state_name(queue_upstream_state(q)));
	for (e = qindex_first(q->ix); e != NULL; e = qindex_next(e))
		if (!e->busy)
			qindex_entry_ready(e);
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
	if (q == NULL)
		return;
	/* No callback comes any more: the attempts are abandoned, and go
	 * with their entries. */
	upstream_list_free(q->ups);
	qindex_free(q->ix);
	free(q);
}

unsigned long
queue_size(const struct queue *q)
{
	return qindex_count(q->ix);
}

void
queue_get_stats(const struct queue *q, struct queue_stats *st)
{
	const struct qindex_entry	*e;
	struct upstream_stats		 us;

	*st = q->stats;
	st->sent = q->counts.sent;
	st->deferred = q->counts.deferred;
	st->bounced = q->counts.bounced;
	st->expired = q->counts.expired;
	st->last_sent = q->counts.last_sent;
	st->depth = qindex_count(q->ix);
	st->held = 0;
	st->oldest = 0;
	st->connections = 0;
	for (e = qindex_first(q->ix); e != NULL; e = qindex_next(e)) {
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
	struct qindex_entry	*e;
	struct envelope		 env;
	long			 n = 0;

	for (e = qindex_first(q->ix); e != NULL; e = qindex_next(e)) {
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
	const struct qindex_entry	*e;
	struct queue_id			*ids = NULL;
	struct queue_ids_failed		 f = { NULL, 0 };

	*n = 0;
	if (sel == QUEUE_SELECT_FAILED) {
		spool_scan_failed(q->spool, queue_ids_failed_cb, &f);
		*n = f.n;
		return f.ids;
	}
	if (qindex_count(q->ix) > 0)
		ids = xcalloc(qindex_count(q->ix), sizeof(*ids));
	for (e = qindex_first(q->ix); e != NULL; e = qindex_next(e)) {
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

int
queue_flush_one(struct queue *q, const char *id)
{
	struct qindex_entry	*e;

	if ((e = qindex_find(q->ix, id)) == NULL)
		return -1;
	if (e->held) {
		errno = EPERM;
		return -1;
	}
	qindex_entry_ready(e);
	queue_run(q);
	return 0;
}

int
queue_hold(struct queue *q, const char *id, queue_done_cb done, void *arg)
{
	return qindex_set_held(q->ix, id, true, done, arg);
}

int
queue_release(struct queue *q, const char *id, queue_done_cb done,
    void *arg)
{
	return qindex_set_held(q->ix, id, false, done, arg);
}

int
queue_delete(struct queue *q, const char *id, queue_done_cb done, void *arg)
{
	return qindex_delete(q->ix, id, done, arg);
}

int
queue_requeue(struct queue *q, const char *id, queue_done_cb done,
    void *arg)
{
	return qindex_requeue(q->ix, id, done, arg);
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
	q->conf = conf;
	qindex_set_lifetime(q->ix, conf->queue.lifetime);
	/* Paused upstreams probe again: credentials may have appeared,
	 * an address changed. */
	upstream_list_set_conf(q->ups, conf, tls);
	/* Failover positions refer to the old list of upstreams. */
	qindex_clear_min_up(q->ix);
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
    struct upstream_stats *st)
{
	upstream_stats(upstream_list_get(q->ups, i), st);
}
