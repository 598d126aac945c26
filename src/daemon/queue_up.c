/*
 * queue_up.c - the upstreams as the scheduler sees them.
 *
 * Each upstream section has a state (delivering, or paused: no
 * credentials, unreachable, credentials rejected, sending limit) with a
 * probe timer that ends the pause; mail goes to the first delivering one
 * (failover).  An account's sending quota (quota.h) paces sends near the
 * limit and pauses the upstream at it.  Upstreams whose ca_file differs
 * from the first one's, or that log in with XOAUTH2, own a TLS context
 * or an OAuth token source here.
 */
#include "config.h"

#include "queue_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "oauth.h"
#include "quota.h"
#include "tls.h"
#include "util.h"

const struct conf_upstream *
queue_cu(const struct queue_up *u)
{
	return &u->q->conf->upstream[u->idx];
}


/* The first upstream, from <from> on, that is delivering (not paused),
 * or NULL: where mail goes now.  A trial connection does not count
 * until it has logged in. */
struct queue_up *
queue_target(struct queue *q, unsigned int from)
{
	unsigned int	i;

	for (i = from; i < q->nups; i++)
		if (q->ups[i].h.state == HEALTH_OK)
			return &q->ups[i];
	return NULL;
}

/* Arms <u>'s one timer for its next probe, if any.  A paused upstream
 * without a probe time or a trial would never resume: that is a bug. */
static void
queue_up_arm(struct queue_up *u)
{
	struct timeval	tv = { 0, 0 };
	int64_t		at = health_next(&u->h), now = time_wall();

	if (!health_is_consistent(&u->h))
		fatalx("queue: upstream %s is %s with probe_at=%lld trial=%d",
		    queue_cu(u)->name, health_state_name(u->h.state),
		    (long long)u->h.probe_at, (int)u->h.trial);
	evtimer_del(u->probe);
	if (at == 0)
		return;
	if (at > now)
		tv.tv_sec = (time_t)(at - now);
	evtimer_add(u->probe, &tv);
}

/* Logs a pause that changed <u>'s state or reason. */
static void
queue_up_log_pause(struct queue_up *u)
{
	struct queue		*q = u->q;
	const struct health	*h = &u->h;
	const char		*name = queue_cu(u)->name;
	const char		*st = health_state_name(h->state);
	int64_t			 in = health_next(h) - time_wall();
	unsigned int		 retry = in > 0 ? (unsigned int)in : 0;

	queue_changed(q);
	if (h->state == HEALTH_NOCREDS)
		log_notice("upstream state=%s reason=\"%s\" queued=%lu "
		    "name=%s: mail is accepted and kept until credentials "
		    "exist; send SIGUSR1 once they do (checked every %us)",
		    st, h->reason, q->nentries, name, retry);
	else if (h->state == HEALTH_AUTH_FAILED)
		log_errx("upstream state=%s reason=\"%s\" queued=%lu "
		    "name=%s: queue paused, nothing bounces; fix the "
		    "credentials and send SIGUSR1 (retrying every %us)", st,
		    h->reason, q->nentries, name, retry);
	else
		log_warnx("upstream state=%s reason=\"%s\" queued=%lu "
		    "retry=%us name=%s", st, h->reason, q->nentries, retry,
		    name);
	if (queue_target(q, 0) != NULL)
		log_notice("upstream failover to=%s while name=%s is %s",
		    queue_cu(queue_target(q, 0))->name, name, st);
}

void
queue_up_pause(struct queue_up *u, enum health_state st, const char *reason,
    unsigned int delay, bool self_timed)
{
	if (health_pause(&u->h, st, reason, delay, self_timed, time_wall()))
		queue_up_log_pause(u);
	queue_up_arm(u);
}

void
queue_up_failed(struct queue_up *u, enum health_state st, const char *reason,
    bool trial)
{
	enum health_state	before = u->h.state;

	if (health_conn_failed(&u->h, st, reason, trial, time_wall()))
		queue_up_log_pause(u);
	else if (trial)
		log_info("upstream probe failed name=%s state=%s retry=%llds",
		    queue_cu(u)->name, health_state_name(before),
		    (long long)(health_next(&u->h) - time_wall()));
	queue_up_arm(u);
}

bool
queue_up_logged_in(struct queue_up *u, bool trial)
{
	enum health_state	before = u->h.state;

	if (!health_login_ok(&u->h, trial))
		return false;
	queue_up_arm(u);
	queue_changed(u->q);
	/* The first delivering upstream in order wins: the mail that
	 * failed over comes back here. */
	log_notice("upstream state=ok name=%s: delivering%s (was %s)",
	    queue_cu(u)->name, trial ? " after probe" : "",
	    health_state_name(before));
	return true;
}

/* Credentials configured and readable?  Checked before connecting so
 * a fresh install says what it waits for instead of failing logins. */
bool
queue_have_credentials(struct queue_up *u)
{
	const struct conf_upstream	*cu = queue_cu(u);
	const char			*path = cu->password_file;
	char				 why[600];

	if (cu->auth == CONF_AUTH_XOAUTH2)
		path = cu->oauth_refresh_token_file;
	if (cu->username[0] != '\0' && path[0] != '\0' &&
	    access(path, R_OK) == 0)
		return true;
	if (cu->username[0] == '\0')
		snprintf(why, sizeof(why), "upstream.username is not set");
	else if (path[0] == '\0')
		snprintf(why, sizeof(why), "upstream.oauth_refresh_token_file "
		    "is not set");
	else
		snprintf(why, sizeof(why), "cannot read %s: %s", path,
		    strerror(errno));
	queue_up_pause(u, HEALTH_NOCREDS, why, HEALTH_AUTH_RETRY, false);
	return false;
}

/* The probe is due: one trial connection, mail or not, whatever the
 * other upstreams are doing (a cached connection elsewhere must not
 * keep a recovered upstream from taking its mail back). */
void
queue_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue_up		*u = arg;
	enum health_state	 before = u->h.state;

	(void)fd;
	(void)what;
	if (u->q->stopping)
		return;
	switch (health_due(&u->h)) {
	case HEALTH_WAIT:
		break;
	case HEALTH_RESUME:
		/* Our own counters say the limit is over: no need to ask. */
		queue_up_arm(u);
		queue_changed(u->q);
		log_notice("upstream state=ok name=%s: delivering (was %s, "
		    "sending limit over)", queue_cu(u)->name,
		    health_state_name(before));
		queue_run(u->q);
		break;
	case HEALTH_TRIAL:
		if (before == HEALTH_NOCREDS && !queue_have_credentials(u))
			break;	/* paused again, timer re-armed */
		log_info("upstream probe name=%s state=%s: trying one "
		    "connection", queue_cu(u)->name,
		    health_state_name(before));
		queue_start_relay(u, true);
		break;
	}
}


void
queue_pace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue_up	*u = arg;

	(void)fd;
	(void)what;
	u->pace_until = 0;
	queue_run(u->q);
}

/*
 * May <u> carry <env> (its pending recipients) now, by the account's own
 * counters?  At the limit the upstream pauses (QUOTA, so mail fails over
 * to the next one) until the counters make room; near it, sends are
 * spaced out (quota_next_send()).  Either way the caller keeps the
 * message for later.
 */
bool
queue_quota_allows(struct queue_up *u, const struct envelope *env)
{
	struct quota_status	 st;
	struct timeval		 tv = { 0, 0 };
	unsigned int		 n = 0;
	int64_t			 now = time_wall(), at;
	char			 why[300], when[40];
	size_t			 i;

	if (u->qq == NULL)
		return true;
	for (i = 0; i < env->nrcpt; i++)
		n += env->rcpts[i].state == ENVELOPE_RCPT_PENDING;
	quota_status(u->qq->qt, now, &st);
	/* Transactions in flight are not counted yet: wait for them
	 * rather than send past the limit on parallel connections. */
	if (u->qq->inflight_msgs > 0 && ((st.limits.messages != 0 &&
	    st.messages + u->qq->inflight_msgs + 1 > st.limits.messages) ||
	    (st.limits.recipients != 0 && st.recipients +
	    u->qq->inflight_rcpts + n > st.limits.recipients)))
		return false;
	if ((at = quota_next_send(u->qq->qt, now, n)) == 0) {
		u->pace_logged = false;
		return true;
	}
	time_fmt(at, TIME_ISO_UTC, when, sizeof(when));
	if ((st.limits.messages != 0 && st.messages + 1 > st.limits.messages) ||
	    (st.limits.recipients != 0 && st.recipients > 0 &&
	    st.recipients + n > st.limits.recipients)) {
		snprintf(why, sizeof(why), "sending limit reached: %llu of %u "
		    "messages, %llu of %u recipients in 24 h; resumes %s",
		    (unsigned long long)st.messages, st.limits.messages,
		    (unsigned long long)st.recipients, st.limits.recipients,
		    when);
		queue_up_pause(u, HEALTH_QUOTA, why, (unsigned int)(at - now),
		    true);
		return false;
	}
	if (!u->pace_logged)
		log_notice("upstream quota pacing name=%s messages=%llu/%u "
		    "recipients=%llu/%u next=\"%s\"", queue_cu(u)->name,
		    (unsigned long long)st.messages, st.limits.messages,
		    (unsigned long long)st.recipients, st.limits.recipients,
		    when);
	u->pace_logged = true;
	u->pace_until = at;
	tv.tv_sec = (time_t)(at - now);
	evtimer_add(u->pace, &tv);
	return false;
}


/* An upstream whose ca_file differs from the first one's (whose context
 * comes from main) gets its own TLS context.  Open connections hold
 * their own reference to a replaced one (tls_client_ref()). */
static void
queue_set_tls(struct queue_up *u, const char *ca_file)
{
	struct queue	*q = u->q;

	if (u->tls_own_path != NULL && ca_file != NULL &&
	    strcmp(u->tls_own_path, ca_file) == 0)
		return;
	tls_client_free(u->tls_own);
	free(u->tls_own_path);
	u->tls_own = NULL;
	u->tls_own_path = NULL;
	if (ca_file == NULL || strcmp(ca_file, q->conf->upstream[0].ca_file)
	    == 0)
		return;
	u->tls_own_path = xstrdup(ca_file);
	if ((u->tls_own = tls_client_new(ca_file)) == NULL)
		queue_up_pause(u, HEALTH_UNAVAILABLE, "cannot load "
		    "upstream.ca_file", HEALTH_PROBE_MAX, false);
}

/*
 * The counters of <cu>'s account, made (and loaded from the spool) on
 * first use, or NULL when its quota is "none".  The first section of an
 * account that sets limits decides them.
 */
static struct queue_quota *
queue_quota_for(struct queue *q, const struct conf_upstream *cu)
{
	struct queue_quota	*qq;
	struct quota_limits	 lim;
	char			 path[1200], name[300];
	unsigned int		 i;
	size_t			 k;

	if (quota_parse(cu->quota, &lim, NULL, 0) == -1 ||
	    (lim.messages == 0 && lim.recipients == 0))
		return NULL;
	for (i = 0; i < q->nquotas; i++) {
		qq = &q->quotas[i];
		if (strcmp(qq->account, cu->username) != 0)
			continue;
		/* A reload may have changed the limits. */
		if (!qq->seen)
			quota_set_limits(qq->qt, &lim);
		qq->seen = true;
		return qq;
	}
	if (q->nquotas == QUEUE_UPSTREAMS_MAX)
		return NULL;
	/* The file name keeps the account readable but safe. */
	snprintf(name, sizeof(name), "%s", cu->username[0] != '\0' ?
	    cu->username : "-");
	for (k = 0; name[k] != '\0'; k++)
		if (!isalnum((unsigned char)name[k]) &&
		    strchr("@.-_+", name[k]) == NULL)
			name[k] = '_';
	snprintf(path, sizeof(path), "%s/quota.%s", q->conf->spool, name);
	qq = &q->quotas[q->nquotas++];
	qq->account = xstrdup(cu->username);
	qq->qt = quota_new(&lim, path);
	qq->seen = true;
	quota_load(qq->qt, time_wall());
	return qq;
}

/*
 * Takes the upstream list of q->conf.  States stay with positions; a
 * reload probes paused upstreams again anyway (queue_set_conf).
 */
void
queue_set_ups(struct queue *q)
{
	struct queue_up	*u;
	unsigned int	 i, n = (unsigned int)q->conf->nupstream;

	if (n > QUEUE_UPSTREAMS_MAX)
		n = QUEUE_UPSTREAMS_MAX;	/* conf refuses more */
	q->nups = n;
	for (i = 0; i < q->nquotas; i++)
		q->quotas[i].seen = false;
	for (i = 0; i < QUEUE_UPSTREAMS_MAX; i++) {
		u = &q->ups[i];
		queue_set_tls(u, i < n ? q->conf->upstream[i].ca_file : NULL);
		u->qq = i < n ? queue_quota_for(q, &q->conf->upstream[i]) :
		    NULL;
		if (i < n && q->conf->upstream[i].auth == CONF_AUTH_XOAUTH2) {
			/* A reload keeps the cached token unless the OAuth
			 * settings changed. */
			if (u->oauth == NULL)
				u->oauth = oauth_new(q->base, q->dns,
				    q->conf, &q->conf->upstream[i]);
			else
				oauth_set_upstream(u->oauth, q->conf,
				    &q->conf->upstream[i]);
		}
		if (i >= n) {
			evtimer_del(u->probe);
			health_init(&u->h);
		}
	}
}


void
queue_up_probe_now(struct queue_up *u)
{
	health_probe_now(&u->h, time_wall());
	queue_up_arm(u);
}

void
queue_network_changed(struct queue *q)
{
	unsigned int	i;

	for (i = 0; i < q->nups; i++)
		if (q->ups[i].h.state == HEALTH_UNAVAILABLE &&
		    q->ups[i].nrelays == 0) {
			log_info("upstream network-changed name=%s: probing "
			    "now", queue_cu(&q->ups[i])->name);
			queue_up_probe_now(&q->ups[i]);
		}
	queue_run(q);
}


/* Delivering if any upstream is; else the first one's trouble. */
enum health_state
queue_upstream_state(const struct queue *q)
{
	unsigned int	i;

	for (i = 0; i < q->nups; i++)
		if (q->ups[i].h.state == HEALTH_OK)
			return HEALTH_OK;
	return q->ups[0].h.state;
}

unsigned int
queue_upstreams(const struct queue *q)
{
	return q->nups;
}

void
queue_get_upstream(const struct queue *q, unsigned int i,
    struct queue_upstream_stats *st)
{
	const struct queue_up	*u = &q->ups[i];

	memset(st, 0, sizeof(*st));
	st->name = q->conf->upstream[i].name;
	st->state = u->h.state;
	st->reason = u->h.reason;
	st->connections = u->nrelays;
	st->retry_at = health_next(&u->h);
	st->probing = u->h.trial;
	if (u->qq != NULL) {
		st->has_quota = true;
		quota_status(u->qq->qt, time_wall(), &st->quota);
	}
}

