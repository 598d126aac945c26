/*
 * queue.c - the scheduler between the spool and the relay connections.
 *
 * Every committed message has an entry: due entries wait in the ready
 * list, deferred ones on their own timer (libevent keeps the heap).  At
 * most upstream.connections relays run; each idle relay takes the next
 * ready entry.  The envelope on disk is rewritten only after a
 * transaction, and a message leaves the queue only when no recipient is
 * pending.  Upstream-wide trouble (unreachable, credentials, quota)
 * pauses dispatching without touching any message's retry count, and a
 * probe timer (or SIGUSR1) tries again; the first successful login
 * resumes the whole queue at once.  The upstreams themselves (states,
 * probes, quotas) are in queue_up.c.
 */
#include "config.h"

#include "queue_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "dsn.h"
#include "envelope.h"
#include "log.h"
#include "oauth.h"
#include "quota.h"
#include "relay.h"
#include "route.h"
#include "spool.h"
#include "tls.h"
#include "util.h"

#define QUEUE_HEADERS_MAX	(64 * 1024)	/* for failure reports */

void
queue_changed(struct queue *q)
{
	if (q->observer != NULL)
		q->observer(q->observer_arg);
}
static void	queue_relay_ready(struct relay *, void *);
static void	queue_relay_done(struct relay *, struct envelope *,
		    enum relay_status, const char *, void *);
static void	queue_relay_closed(struct relay *, enum relay_status,
		    const struct relay_failure *, void *);

static const struct relay_cbs queue_relay_cbs = {
	queue_relay_ready, queue_relay_done, queue_relay_closed,
};

uint64_t
queue_backoff(unsigned int attempts, uint64_t retry_min, uint64_t retry_max,
    double rnd)
{
	uint64_t	d = retry_min;
	unsigned int	i;

	for (i = 1; i < attempts && d < retry_max; i++)
		d = d > retry_max / 2 ? retry_max : d * 2;
	if (d > retry_max)
		d = retry_max;
	/* Jitter downwards only, so retry_max stays a true maximum. */
	d -= (uint64_t)((double)d * 0.2 * rnd);
	return d > 0 ? d : 1;
}

static double
queue_random(void)
{
	return (double)(random() % 1000000) / 1000000.0;
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
	if (e->gone != NULL) {
		envelope_cleanup(e->gone);
		free(e->gone);
	}
	free(e);
	queue_changed(q);
}

void
queue_start_relay(struct queue_up *u, bool trial)
{
	struct queue		*q = u->q;
	struct queue_relay	*qr;

	qr = xcalloc(1, sizeof(*qr));
	qr->q = q;
	qr->u = u;
	qr->trial = trial;
	qr->r = relay_new(q->base, q->dns, q->conf, queue_cu(u),
	    u->tls_own != NULL ? u->tls_own : q->tls, &queue_relay_cbs, qr);
	if (qr->r == NULL) {
		free(qr);
		queue_up_failed(u, HEALTH_UNAVAILABLE,
		    "cannot start a connection", trial);
		return;
	}
	relay_set_oauth(qr->r, u->oauth);
	TAILQ_INSERT_TAIL(&q->relays, qr, entry);
	q->nrelays++;
	u->nrelays++;
}

/* Forgets relay <qr> (already freed or closing). */
static void
queue_relay_forget(struct queue_relay *qr)
{
	struct queue	*q = qr->q;

	TAILQ_REMOVE(&q->relays, qr, entry);
	q->nrelays--;
	qr->u->nrelays--;
	free(qr->before);
	free(qr);
}

static void	queue_dispatch(struct queue_relay *);

/* Ready entries that <u> should carry, counted up to <limit> + 1. */
static unsigned int
queue_count_for(struct queue *q, struct queue_up *u, unsigned int limit)
{
	struct queue_entry	*e;
	unsigned int		 n = 0;

	/* Without failed-over entries, all of them go to one upstream. */
	if (q->nrestricted == 0 && queue_target(q, 0) != u)
		return 0;
	TAILQ_FOREACH(e, &q->readyq, ready)
		if (queue_target(q, e->min_up) == u && ++n > limit)
			break;
	return n;
}

/* Opens connections to <u> while it has more work than connections. */
static void
queue_run_up(struct queue_up *u)
{
	struct queue		*q = u->q;
	struct queue_relay	*qr;
	unsigned int		 waiting = 0, nready;

	if (u->pace_until > time_wall())
		return;
	TAILQ_FOREACH(qr, &q->relays, entry)
		if (qr->u == u && qr->cur == NULL && !qr->quitting)
			waiting++;	/* connecting or idle */
	if ((nready = queue_count_for(q, u, waiting)) <= waiting)
		return;
	if (!queue_have_credentials(u))
		return;
	while (u->h.state == HEALTH_OK &&
	    u->nrelays < queue_cu(u)->connections && nready > waiting) {
		queue_start_relay(u, false);
		waiting++;
	}
}

/* Hands ready entries to idle relays and opens connections while there
 * is more work than connections. */
void
queue_run(struct queue *q)
{
	struct queue_relay	*qr, *next;
	unsigned int		 i;

	/* Inside done() the finishing relay is about to take the next
	 * message itself; counting it as busy would open a needless
	 * connection.  done() runs the queue when it is over. */
	if (q->stopping || q->in_done)
		return;
	for (qr = TAILQ_FIRST(&q->relays); qr != NULL; qr = next) {
		next = TAILQ_NEXT(qr, entry);
		if (qr->idle && !TAILQ_EMPTY(&q->readyq))
			queue_dispatch(qr);
	}
	/* Paused upstreams are tried by their own probe timer only. */
	for (i = 0; i < q->nups; i++)
		if (q->ups[i].h.state == HEALTH_OK)
			queue_run_up(&q->ups[i]);
}

/* Counts the transaction of <qr> against its account's quota while it
 * runs (pending recipients), and stops counting it. */
static void
queue_quota_hold(struct queue_relay *qr)
{
	struct queue_quota	*qq = qr->u->qq;
	size_t			 i;

	if (qq == NULL)
		return;
	qr->qcount = 0;
	for (i = 0; i < qr->env.nrcpt; i++)
		qr->qcount += qr->env.rcpts[i].state == ENVELOPE_RCPT_PENDING;
	qq->inflight_msgs++;
	qq->inflight_rcpts += qr->qcount;
	qr->qheld = qq;		/* a reload may change qr->u->qq */
}

static void
queue_quota_release(struct queue_relay *qr)
{
	struct queue_quota	*qq = qr->qheld;

	if (qq == NULL)
		return;
	qq->inflight_msgs--;
	qq->inflight_rcpts -= qr->qcount;
	qr->qheld = NULL;
}

/* Gives the next ready entry meant for its upstream to an idle relay. */
static void
queue_dispatch(struct queue_relay *qr)
{
	struct queue		*q = qr->q;
	struct queue_entry	*e, *next;
	char			 path[1024];
	size_t			 i;

	if (qr->u->h.state != HEALTH_OK || (q->nrestricted == 0 &&
	    queue_target(q, 0) != qr->u) || qr->u->pace_until > time_wall())
		return;
	for (e = TAILQ_FIRST(&q->readyq); e != NULL; e = next) {
		next = TAILQ_NEXT(e, ready);
		if (queue_target(q, e->min_up) != qr->u)
			continue;
		TAILQ_REMOVE(&q->readyq, e, ready);
		e->in_ready = false;
		if (spool_env_load(q->spool, e->id, &qr->env) == -1 ||
		    spool_data_path(q->spool, e->id, path, sizeof(path)) ==
		    -1) {
			/* Logged by the spool; forget it until a restart
			 * quarantines it. */
			queue_entry_free(e);
			continue;
		}
		if (!queue_quota_allows(qr->u, &qr->env)) {
			/* First in line again, for this upstream later or
			 * the next one now. */
			envelope_cleanup(&qr->env);
			TAILQ_INSERT_HEAD(&q->readyq, e, ready);
			e->in_ready = true;
			return;
		}
		e->busy = true;
		qr->cur = e;
		qr->idle = false;
		queue_quota_hold(qr);
		qr->before = xrealloc(qr->before, qr->env.nrcpt *
		    sizeof(*qr->before));
		for (i = 0; i < qr->env.nrcpt; i++)
			qr->before[i] = qr->env.rcpts[i].state;
		relay_send(qr->r, &qr->env, path);
		return;
	}
}

/* Closes the idle connections of the upstreams after <u> in failover
 * order: <u> is delivering again and takes their mail back.  (One they
 * still need for failed-over mail opens again on demand.) */
static void
queue_close_idle_after(struct queue_up *u)
{
	struct queue		*q = u->q;
	struct queue_relay	*qr, *next;

	for (qr = TAILQ_FIRST(&q->relays); qr != NULL; qr = next) {
		next = TAILQ_NEXT(qr, entry);
		if (qr->u->idx <= u->idx || !qr->idle || qr->cur != NULL ||
		    qr->quitting)
			continue;
		log_info("upstream name=%s closing an idle connection: "
		    "name=%s delivers again", queue_cu(qr->u)->name,
		    queue_cu(u)->name);
		/* Politely; closed() forgets it. */
		qr->idle = false;
		qr->quitting = true;
		relay_quit(qr->r);
	}
}

static void
queue_relay_ready(struct relay *r, void *arg)
{
	struct queue_relay	*qr = arg;
	struct queue		*q = qr->q;
	bool			 trial = qr->trial;

	(void)r;
	qr->idle = true;
	qr->trial = false;
	/* A login proves the upstream reachable and the credentials good,
	 * but says nothing of a sending limit: only the quota pause's own
	 * probe ends that (health_login_ok). */
	if (queue_up_logged_in(qr->u, trial))
		queue_close_idle_after(qr->u);
	if (q->stopping || qr->u->h.state != HEALTH_OK)
		return;
	if (!TAILQ_EMPTY(&q->readyq))
		queue_dispatch(qr);
	/* A successful login may be the end of a pause: open the rest. */
	queue_run(q);
}

static void	queue_finish_attempt(struct queue_relay *, enum relay_status,
		    const char *);

static void
queue_relay_done(struct relay *r, struct envelope *env,
    enum relay_status st, const char *reply, void *arg)
{
	struct queue_relay	*qr = arg;
	struct queue		*q = qr->q;

	(void)r;
	(void)env;
	q->in_done = true;
	queue_finish_attempt(qr, st, reply);
	q->in_done = false;
	envelope_cleanup(&qr->env);
	qr->cur = NULL;
	qr->idle = true;
	if (q->stopping) {
		relay_free(qr->r);
		queue_relay_forget(qr);
		if (q->nrelays == 0 && q->drained != NULL)
			q->drained(q->drained_arg);
		return;
	}
	if (st == RELAY_QUOTA) {
		queue_up_pause(qr->u, HEALTH_QUOTA, reply,
		    strstr(reply, "5.4.5") != NULL ? HEALTH_QUOTA_DAILY :
		    HEALTH_QUOTA_PEAK, false);
		queue_run(q);
		return;
	}
	if (!TAILQ_EMPTY(&q->readyq))
		queue_dispatch(qr);
	queue_run(q);
}

static void
queue_relay_closed(struct relay *r, enum relay_status st,
    const struct relay_failure *f, void *arg)
{
	struct queue_relay	*qr = arg;
	struct queue		*q = qr->q;
	struct queue_up		*u = qr->u;
	const char		*reason = f->reason;
	bool			 trial = qr->trial;

	(void)r;
	queue_relay_forget(qr);
	/* Probe soon, then every minute at most (health.h): when the
	 * network returns the queue drains within about a minute. */
	if (st == RELAY_UNAVAILABLE)
		queue_up_failed(u, HEALTH_UNAVAILABLE, reason, trial);
	else if (st == RELAY_AUTH_FAILED)
		queue_up_failed(u, HEALTH_AUTH_FAILED, reason, trial);
	else if (trial)
		/* The probe ended before logging in, however: it failed. */
		queue_up_failed(u, HEALTH_UNAVAILABLE, reason, true);
	else
		log_debug("queue relay closed reason=\"%s\"", reason);
	if (q->stopping) {
		if (q->nrelays == 0 && q->drained != NULL)
			q->drained(q->drained_arg);
		return;
	}
	queue_run(q);
}

/* One log line per recipient whose state this attempt decided. */
static void
queue_log_rcpt(struct queue_relay *qr, const struct envelope_rcpt *rc,
    const char *status, const char *reply)
{
	char	delay[32], esc[600];

	str_fmt_duration((uint64_t)(time_wall() - qr->env.arrival), delay,
	    sizeof(delay));
	str_log_escape(reply, strlen(reply), esc, sizeof(esc));
	log_info("delivery id=%s to=<%s> relay=%s delay=%s tries=%u dsn=%s "
	    "status=%s (%s)", qr->env.id, rc->addr,
	    qr->r != NULL ? relay_peer(qr->r) : "none", delay,
	    qr->env.attempts, rc->dsn != NULL ? rc->dsn : "-", status, esc);
}

/* Reads the header section of message <id> (up to the first empty
 * line, bounded) for the failure report.  Caller frees. */
static char *
queue_read_headers(struct queue *q, const char *id, size_t *len)
{
	char	 path[1024], *buf, *end;
	ssize_t	 n;
	int	 fd;

	*len = 0;
	buf = xmalloc(QUEUE_HEADERS_MAX + 1);
	buf[0] = '\0';
	if (spool_data_path(q->spool, id, path, sizeof(path)) == -1 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return buf;
	n = read(fd, buf, QUEUE_HEADERS_MAX);
	close(fd);
	if (n <= 0)
		return buf;
	buf[n] = '\0';
	if ((end = strstr(buf, "\r\n\r\n")) != NULL)
		end[2] = '\0';
	else if ((end = strrchr(buf, '\n')) != NULL)
		end[1] = '\0';	/* whole lines only */
	*len = strlen(buf);
	return buf;
}

/* A failure report being committed, for the log line once it is. */
struct queue_report {
	struct queue_entry	*e;		/* the original, retiring */
	char			*to;
	char			*list;		/* " rewritten=..." or "" */
};

static void	queue_move_failed(struct queue_entry *);

/* The report is on disk (or could not be): queue it, then move the
 * original to failed/. */
static void
queue_report_cb(const char *id, int err, void *arg)
{
	struct queue_report	*r = arg;
	struct queue		*q = r->e->q;

	if (err != 0) {
		errno = err;
		log_warn("queue id=%s cannot commit the failure report",
		    r->e->id);
	} else {
		log_info("queue id=%s failure report id=%s to=<%s>%s",
		    r->e->id, id, r->to, r->list);
		q->stats.reports++;
		queue_add(q, id);
	}
	queue_move_failed(r->e);
	free(r->to);
	free(r->list);
	free(r);
}

/* Queues the failure report for the FAILED recipients of <e>'s message
 * (its envelope in e->gone), except for the null sender (no bounce
 * loops), then moves the message to failed/.  The report is committed
 * before the original moves: a crash in between can only repeat the
 * report, never lose it. */
static void
queue_bounce(struct queue *q, struct queue_entry *e)
{
	const struct envelope	*env = e->gone;
	const char		*to = q->conf->queue.bounce_to;
	struct spool_msg	*msg;
	struct route_result	 res;
	struct queue_report	*r;
	char			*headers, *text;
	char			 err[256], list[1024] = "";
	size_t			 hlen, tlen, i;
	int			 rc;

	if (env->sender[0] == '\0') {
		queue_move_failed(e);
		return;
	}
	if (to[0] == '\0')
		to = env->sender;
	headers = queue_read_headers(q, env->id, &hlen);
	if (dsn_compose(env, q->conf->hostname, to, time_wall(), headers,
	    hlen, &text, &tlen) == -1) {
		free(headers);
		queue_move_failed(e);
		return;
	}
	free(headers);
	/* A local sender (a scanner@domain) has no mailbox either: its
	 * report goes where mail to it would go. */
	if (route_rcpt(&q->conf->route, to, &res, err, sizeof(err)) == -1) {
		route_result_cleanup(&res);
		memset(&res, 0, sizeof(res));
	}
	msg = spool_msg_new(q->spool, "", "127.0.0.1", q->conf->hostname);
	rc = msg != NULL ? 0 : -1;
	if (rc == 0 && res.naddrs == 0)
		rc = spool_msg_add_rcpt(msg, to);
	for (i = 0; rc == 0 && i < res.naddrs; i++)
		rc = spool_msg_add_rcpt(msg, res.addrs[i]);
	if (res.how != ROUTE_REMOTE && res.naddrs > 0) {
		strcopy(list, " rewritten=", sizeof(list));
		route_result_fmt(&res, list + strlen(list),
		    sizeof(list) - strlen(list));
	}
	route_result_cleanup(&res);
	if (rc == -1 || spool_msg_write(msg, text, tlen) == -1) {
		log_warnx("queue id=%s cannot queue the failure report",
		    env->id);
		if (msg != NULL)
			spool_abort(msg);
		free(text);
		queue_move_failed(e);
		return;
	}
	free(text);
	r = xcalloc(1, sizeof(*r));
	r->e = e;
	r->to = xstrdup(to);
	r->list = xstrdup(list);
	spool_commit_start(msg, queue_report_cb, r);
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

/* Past queue.lifetime: every pending recipient fails as expired. */
static void
queue_expire_env(struct envelope *env)
{
	char	reply[600];
	size_t	i;

	snprintf(reply, sizeof(reply), "delivery time expired%s%s",
	    env->last_error != NULL ? "; last error: " : "",
	    env->last_error != NULL ? env->last_error : "");
	for (i = 0; i < env->nrcpt; i++) {
		if (env->rcpts[i].state != ENVELOPE_RCPT_PENDING)
			continue;
		env->rcpts[i].state = ENVELOPE_RCPT_FAILED;
		free(env->rcpts[i].dsn);
		env->rcpts[i].dsn = xstrdup("4.4.7");
		if (env->rcpts[i].reply == NULL)
			env->rcpts[i].reply = xstrdup(reply);
	}
}

static bool
queue_env_has_pending(const struct envelope *env)
{
	size_t	i;

	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpts[i].state == ENVELOPE_RCPT_PENDING)
			return true;
	return false;
}

/*
 * With failover_on_reject, recipients this upstream refused with 5xx
 * stay pending for the next upstream, and the message never comes back
 * here (until a restart, which forgets that).  Returns true if any did.
 */
static bool
queue_fail_over(struct queue_relay *qr)
{
	struct queue		*q = qr->q;
	struct envelope_rcpt	*rc;
	bool			 moved = false;
	size_t			 i;

	if (!queue_cu(qr->u)->failover_on_reject || qr->u->idx + 1 >= q->nups)
		return false;
	for (i = 0; i < qr->env.nrcpt; i++) {
		rc = &qr->env.rcpts[i];
		if (rc->state != ENVELOPE_RCPT_FAILED ||
		    qr->before[i] != ENVELOPE_RCPT_PENDING ||
		    rc->dsn == NULL || rc->dsn[0] != '5')
			continue;
		queue_log_rcpt(qr, rc, "deferred", "refused here; trying the "
		    "next upstream");
		rc->state = ENVELOPE_RCPT_PENDING;
		free(rc->dsn);
		rc->dsn = NULL;
		moved = true;
	}
	if (moved && qr->cur->min_up == 0)
		q->nrestricted++;
	if (moved)
		qr->cur->min_up = qr->u->idx + 1;
	return moved;
}

/* Applies a transaction's results to the envelope on disk. */
static void
queue_finish_attempt(struct queue_relay *qr, enum relay_status st,
    const char *reply)
{
	struct queue		*q = qr->q;
	struct queue_entry	*e = qr->cur;
	struct envelope		*env = &qr->env;
	struct envelope_rcpt	*rc;
	int64_t			 now = time_wall();
	bool			 expired, moved;
	unsigned int		 nsent = 0;
	size_t			 i;

	/* A quota pause is the upstream's state, not this message's. */
	if (st != RELAY_QUOTA)
		env->attempts++;
	moved = queue_fail_over(qr);
	for (i = 0; i < env->nrcpt; i++)
		nsent += env->rcpts[i].state == ENVELOPE_RCPT_SENT &&
		    qr->before[i] != ENVELOPE_RCPT_SENT;
	if (nsent > 0 && qr->qheld != NULL)
		quota_record(qr->qheld->qt, now, nsent);
	queue_quota_release(qr);
	expired = now - env->arrival >= (int64_t)q->conf->queue.lifetime;
	for (i = 0; i < env->nrcpt; i++) {
		rc = &env->rcpts[i];
		if (rc->state == ENVELOPE_RCPT_SENT &&
		    qr->before[i] != ENVELOPE_RCPT_SENT) {
			q->stats.sent++;
			q->stats.last_sent = now;
			queue_log_rcpt(qr, rc, "sent", rc->reply ?
			    rc->reply : "");
		} else if (rc->state == ENVELOPE_RCPT_FAILED &&
		    qr->before[i] != ENVELOPE_RCPT_FAILED) {
			q->stats.bounced++;
			queue_log_rcpt(qr, rc, "bounced", rc->reply ?
			    rc->reply : "");
		} else if (rc->state == ENVELOPE_RCPT_PENDING) {
			if (st != RELAY_OK && reply[0] != '\0') {
				free(rc->reply);
				rc->reply = xstrdup(reply);
			}
			if (!expired) {
				q->stats.deferred++;
				queue_log_rcpt(qr, rc, "deferred", rc->reply ?
				    rc->reply : reply);
			}
		}
	}
	if (queue_env_has_pending(env)) {
		free(env->last_error);
		env->last_error = xstrdup(reply[0] != '\0' ? reply :
		    "some recipients deferred");
	}
	if (expired && queue_env_has_pending(env)) {
		for (i = 0; i < env->nrcpt; i++)
			qr->before[i] = env->rcpts[i].state;
		queue_expire_env(env);
		for (i = 0; i < env->nrcpt; i++)
			if (qr->before[i] == ENVELOPE_RCPT_PENDING) {
				q->stats.expired++;
				queue_log_rcpt(qr, &env->rcpts[i], "expired",
				    env->rcpts[i].reply);
			}
	}
	if (!queue_env_has_pending(env)) {
		queue_retire(q, e, env);
		return;
	}
	/* Stays busy (not dispatched, not deleted) until saved. */
	env->next_attempt = st == RELAY_QUOTA || moved ? now : now +
	    (int64_t)queue_backoff(env->attempts, q->conf->queue.retry_min,
	    q->conf->queue.retry_max, queue_random());
	e->next = env->next_attempt;
	spool_env_save_start(q->spool, env, queue_saved_cb, e);
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
		queue_expire_env(&env);
		for (size_t i = 0; i < env.nrcpt; i++)
			if (env.rcpts[i].dsn != NULL &&
			    strcmp(env.rcpts[i].dsn, "4.4.7") == 0 &&
			    ++q->stats.expired > 0)
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
	unsigned int	 i;

	q = xcalloc(1, sizeof(*q));
	q->base = base;
	q->dns = dns;
	q->conf = conf;
	q->spool = spool;
	q->tls = tls;
	TAILQ_INIT(&q->entries);
	TAILQ_INIT(&q->readyq);
	TAILQ_INIT(&q->relays);
	for (i = 0; i < QUEUE_UPSTREAMS_MAX; i++) {
		q->ups[i].q = q;
		q->ups[i].idx = i;
		q->ups[i].probe = evtimer_new(base, queue_probe_cb,
		    &q->ups[i]);
		q->ups[i].pace = evtimer_new(base, queue_pace_cb, &q->ups[i]);
		if (q->ups[i].probe == NULL || q->ups[i].pace == NULL)
			fatalx("queue evtimer_new");
	}
	queue_set_ups(q);
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

	if (!queue_env_has_pending(env)) {
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
	queue_have_credentials(&q->ups[0]);
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

	unsigned int		 i;

	log_info("queue flush queued=%lu upstream=%s", q->nentries,
	    health_state_name(queue_upstream_state(q)));
	TAILQ_FOREACH(e, &q->entries, all)
		if (!e->busy)
			queue_entry_ready(e);
	/* Paused upstreams try at once, mail or not: whoever sends the
	 * signal wants to know. */
	for (i = 0; i < q->nups; i++)
		queue_up_probe_now(&q->ups[i]);
	queue_run(q);
}

void
queue_stop(struct queue *q, void (*drained)(void *), void *arg)
{
	struct queue_relay	*qr, *next;

	q->stopping = true;
	q->drained = drained;
	q->drained_arg = arg;
	for (qr = TAILQ_FIRST(&q->relays); qr != NULL; qr = next) {
		next = TAILQ_NEXT(qr, entry);
		if (qr->cur != NULL)
			continue;	/* finishes, then done() frees it */
		relay_free(qr->r);
		queue_relay_forget(qr);
	}
	if (q->nrelays == 0 && drained != NULL)
		drained(arg);
}

void
queue_free(struct queue *q)
{
	struct queue_relay	*qr;
	struct queue_entry	*e;
	size_t			 i;

	if (q == NULL)
		return;
	while ((qr = TAILQ_FIRST(&q->relays)) != NULL) {
		relay_free(qr->r);
		envelope_cleanup(&qr->env);
		queue_relay_forget(qr);
	}
	while ((e = TAILQ_FIRST(&q->entries)) != NULL)
		queue_entry_free(e);
	for (i = 0; i < q->nquotas; i++) {
		quota_sync(q->quotas[i].qt);
		quota_free(q->quotas[i].qt);
		free(q->quotas[i].account);
	}
	for (i = 0; i < QUEUE_UPSTREAMS_MAX; i++) {
		oauth_free(q->ups[i].oauth);
		event_free(q->ups[i].probe);
		event_free(q->ups[i].pace);
		tls_client_free(q->ups[i].tls_own);
		free(q->ups[i].tls_own_path);
	}
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
	const struct queue_relay	*qr;

	*st = q->stats;
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
	TAILQ_FOREACH(qr, &q->relays, entry)
		st->connections++;
	st->upstream = queue_upstream_state(q);
	st->upstream_reason = q->ups[0].h.reason;
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
	unsigned int		 i;

	q->conf = conf;
	q->tls = tls;
	queue_set_ups(q);
	/* Failover positions refer to the old list of upstreams. */
	TAILQ_FOREACH(e, &q->entries, all)
		e->min_up = 0;
	q->nrestricted = 0;
	/* Credentials may have appeared, an address changed: look again. */
	for (i = 0; i < q->nups; i++)
		queue_up_probe_now(&q->ups[i]);
	queue_run(q);
}
