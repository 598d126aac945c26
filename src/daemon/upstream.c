/*
 * upstream.c - the upstream sections and their connections.
 *
 * Each section has a state (delivering, or paused: no credentials,
 * unreachable, credentials rejected, sending limit) with a probe timer
 * that ends the pause; mail goes to the first delivering one
 * (failover), and when a paused one logs in again the later ones' idle
 * connections close so that it takes its mail back.  An account's
 * sending quota (account.h) paces sends near the limit and pauses the
 * section at it.  Sections whose ca_file differs from the first one's,
 * or that log in with XOAUTH2, own a TLS context or an OAuth token
 * source here.  What the queue's messages are is not known here: a
 * connection carries the envelope it was handed, and hands it back.
 */
#include "config.h"

#include "upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "account.h"
#include "envelope.h"
#include "log.h"
#include "oauth.h"
#include "tls.h"
#include "util.h"

/* One connection and the transaction it carries. */
struct upstream_conn {
	TAILQ_ENTRY(upstream_conn) entry;
	struct upstream		*u;
	struct relay		*r;
	bool			 idle;		/* logged in, carries nothing */
	bool			 trial;		/* the probe, until logged in */
	bool			 quitting;	/* sent QUIT: takes no mail */
	void			*txn;		/* the owner's, while sending */
	struct account		*qheld;		/* counts this transaction */
	unsigned int		 qcount;	/* ... with these recipients */
	unsigned int		 nsent;		/* recipients sent before it */
};

struct upstream {
	struct upstream_list	*l;
	unsigned int		 idx;		/* in conf->upstream[] */
	struct health		 h;		/* state, reason, next probe */
	struct event		*probe;		/* fires at health_next() */
	unsigned int		 nconns;
	struct tls_client	*tls_own;	/* when its ca_file differs */
	char			*tls_own_path;
	struct account		*acct;		/* its quota; NULL: none */
	struct oauth		*oauth;		/* auth = "xoauth2" only */
	int64_t			 pace_until;	/* near the limit: not before */
	struct event		*pace;
	bool			 pace_logged;	/* once per pacing episode */
};

struct upstream_list {
	struct event_base	*base;
	struct evdns_base	*dns;
	const struct conf	*conf;
	struct tls_client	*tls;
	const struct upstream_cbs *cbs;
	void			*arg;
	TAILQ_HEAD(, upstream_conn) conns;
	unsigned int		 nconns;
	struct upstream		 ups[UPSTREAM_MAX];
	unsigned int		 nups;
	struct account_list	*accounts;
	bool			 stopping;
};

static void	upstream_relay_ready(struct relay *, void *);
static void	upstream_relay_done(struct relay *, struct envelope *,
		    enum relay_status, const char *, void *);
static void	upstream_relay_closed(struct relay *, enum relay_status,
		    const struct relay_failure *, void *);

static const struct relay_cbs upstream_relay_cbs = {
	upstream_relay_ready, upstream_relay_done, upstream_relay_closed,
};

const struct conf_upstream *
upstream_conf(const struct upstream *u)
{
	return &u->l->conf->upstream[u->idx];
}

unsigned int
upstream_index(const struct upstream *u)
{
	return u->idx;
}

bool
upstream_is_delivering(const struct upstream *u)
{
	return u->h.state == HEALTH_OK;
}

bool
upstream_is_pacing(const struct upstream *u)
{
	return u->pace_until > time_wall();
}

/* The first section, from <from> on, that is delivering (not paused),
 * or NULL: where mail goes now.  A trial connection does not count
 * until it has logged in. */
struct upstream *
upstream_list_target(struct upstream_list *l, unsigned int from)
{
	unsigned int	i;

	for (i = from; i < l->nups; i++)
		if (l->ups[i].h.state == HEALTH_OK)
			return &l->ups[i];
	return NULL;
}

static void
upstream_changed(struct upstream *u)
{
	u->l->cbs->on_state_change(u, u->l->arg);
}

/* Arms <u>'s one timer for its next probe, if any.  A paused upstream
 * without a probe time or a trial would never resume: that is a bug. */
static void
upstream_arm(struct upstream *u)
{
	struct timeval	tv = { 0, 0 };
	int64_t		at = health_next(&u->h), now = time_wall();

	if (!health_is_consistent(&u->h))
		fatalx("upstream %s is %s with probe_at=%lld trial=%d",
		    upstream_conf(u)->name, health_state_name(u->h.state),
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
upstream_log_pause(struct upstream *u)
{
	struct upstream_list	*l = u->l;
	const struct health	*h = &u->h;
	const char		*name = upstream_conf(u)->name;
	const char		*st = health_state_name(h->state);
	int64_t			 in = health_next(h) - time_wall();
	unsigned int		 retry = in > 0 ? (unsigned int)in : 0;
	unsigned long		 queued = l->cbs->queued(l->arg);

	upstream_changed(u);
	if (h->state == HEALTH_NOCREDS)
		log_notice("upstream state=%s reason=\"%s\" queued=%lu "
		    "name=%s: mail is accepted and kept until credentials "
		    "exist; send SIGUSR1 once they do (checked every %us)",
		    st, h->reason, queued, name, retry);
	else if (h->state == HEALTH_AUTH_FAILED)
		log_errx("upstream state=%s reason=\"%s\" queued=%lu "
		    "name=%s: queue paused, nothing bounces; fix the "
		    "credentials and send SIGUSR1 (retrying every %us)", st,
		    h->reason, queued, name, retry);
	else
		log_warnx("upstream state=%s reason=\"%s\" queued=%lu "
		    "retry=%us name=%s", st, h->reason, queued, retry,
		    name);
	if (upstream_list_target(l, 0) != NULL)
		log_notice("upstream failover to=%s while name=%s is %s",
		    upstream_conf(upstream_list_target(l, 0))->name, name, st);
}

/* Pauses <u> (health_pause()), logging real changes and arming its
 * probe timer. */
static void
upstream_pause(struct upstream *u, enum health_state st, const char *reason,
    unsigned int delay, bool self_timed)
{
	if (health_pause(&u->h, st, reason, delay, self_timed, time_wall()))
		upstream_log_pause(u);
	upstream_arm(u);
}

/* A connection to <u> ended before logging in (health_conn_failed()). */
static void
upstream_failed(struct upstream *u, enum health_state st, const char *reason,
    bool trial)
{
	enum health_state	before = u->h.state;

	if (health_conn_failed(&u->h, st, reason, trial, time_wall()))
		upstream_log_pause(u);
	else if (trial)
		log_info("upstream probe failed name=%s state=%s retry=%llds",
		    upstream_conf(u)->name, health_state_name(before),
		    (long long)(health_next(&u->h) - time_wall()));
	upstream_arm(u);
}

/* A connection to <u> logged in (health_login_ok()).  Returns true if
 * that ended a pause: <u> takes its mail back. */
static bool
upstream_logged_in(struct upstream *u, bool trial)
{
	enum health_state	before = u->h.state;

	if (!health_login_ok(&u->h, trial))
		return false;
	upstream_arm(u);
	upstream_changed(u);
	/* The first delivering upstream in order wins: the mail that
	 * failed over comes back here. */
	log_notice("upstream state=ok name=%s: delivering%s (was %s)",
	    upstream_conf(u)->name, trial ? " after probe" : "",
	    health_state_name(before));
	return true;
}

/* Credentials configured and readable?  Checked before connecting so
 * a fresh install says what it waits for instead of failing logins. */
bool
upstream_has_credentials(struct upstream *u)
{
	const struct conf_upstream	*cu = upstream_conf(u);
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
	upstream_pause(u, HEALTH_NOCREDS, why, HEALTH_AUTH_RETRY, false);
	return false;
}

/* Opens one connection to <u>; <trial>: it is <u>'s probe. */
static void
upstream_conn_start(struct upstream *u, bool trial)
{
	struct upstream_list	*l = u->l;
	struct upstream_conn	*c;

	c = xcalloc(1, sizeof(*c));
	c->u = u;
	c->trial = trial;
	c->r = relay_new(l->base, l->dns, l->conf, upstream_conf(u),
	    u->tls_own != NULL ? u->tls_own : l->tls, &upstream_relay_cbs, c);
	if (c->r == NULL) {
		free(c);
		upstream_failed(u, HEALTH_UNAVAILABLE,
		    "cannot start a connection", trial);
		return;
	}
	relay_set_oauth(c->r, u->oauth);
	TAILQ_INSERT_TAIL(&l->conns, c, entry);
	l->nconns++;
	u->nconns++;
}

/* Forgets connection <c> (its relay already freed or closing). */
static void
upstream_conn_forget(struct upstream_conn *c)
{
	struct upstream_list	*l = c->u->l;

	/* A transaction abandoned (relay_free()) sent nothing we know of. */
	if (c->qheld != NULL)
		account_done(c->qheld, c->qcount, 0, time_wall());
	TAILQ_REMOVE(&l->conns, c, entry);
	l->nconns--;
	c->u->nconns--;
	free(c);
}

/* The probe is due: one trial connection, mail or not, whatever the
 * other upstreams are doing (a cached connection elsewhere must not
 * keep a recovered upstream from taking its mail back). */
static void
upstream_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream		*u = arg;
	enum health_state	 before = u->h.state;

	(void)fd;
	(void)what;
	if (u->l->stopping)
		return;
	switch (health_due(&u->h)) {
	case HEALTH_WAIT:
		break;
	case HEALTH_RESUME:
		/* Our own counters say the limit is over: no need to ask. */
		upstream_arm(u);
		upstream_changed(u);
		log_notice("upstream state=ok name=%s: delivering (was %s, "
		    "sending limit over)", upstream_conf(u)->name,
		    health_state_name(before));
		u->l->cbs->on_ready(u, u->l->arg);
		break;
	case HEALTH_TRIAL:
		if (before == HEALTH_NOCREDS && !upstream_has_credentials(u))
			break;	/* paused again, timer re-armed */
		log_info("upstream probe name=%s state=%s: trying one "
		    "connection", upstream_conf(u)->name,
		    health_state_name(before));
		upstream_conn_start(u, true);
		break;
	}
}

static void
upstream_pace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream	*u = arg;

	(void)fd;
	(void)what;
	u->pace_until = 0;
	u->l->cbs->on_ready(u, u->l->arg);
}

/*
 * May <u> carry <env> (its pending recipients) now, by the account's own
 * counters?  At the limit the upstream pauses (QUOTA, so mail fails over
 * to the next one) until the counters make room; near it, sends are
 * spaced out (quota_next_send()).  Either way the caller keeps the
 * message for later.
 */
static bool
upstream_quota_allows(struct upstream *u, const struct envelope *env)
{
	struct quota_status	 st;
	struct timeval		 tv = { 0, 0 };
	unsigned int		 n = 0;
	int64_t			 now = time_wall(), at = 0;
	char			 why[300], when[40];
	size_t			 i;

	if (u->acct == NULL)
		return true;
	for (i = 0; i < env->nrcpt; i++)
		n += env->rcpts[i].state == ENVELOPE_RCPT_PENDING;
	switch (account_check(u->acct, n, now, &at, why, sizeof(why))) {
	case ACCOUNT_SEND:
		u->pace_logged = false;
		return true;
	case ACCOUNT_WAIT:
		return false;
	case ACCOUNT_LIMIT:
		upstream_pause(u, HEALTH_QUOTA, why, (unsigned int)(at - now),
		    true);
		return false;
	case ACCOUNT_PACE:
		break;
	}
	if (!u->pace_logged) {
		account_status(u->acct, now, &st);
		time_fmt(at, TIME_ISO_UTC, when, sizeof(when));
		log_notice("upstream quota pacing name=%s messages=%llu/%u "
		    "recipients=%llu/%u next=\"%s\"", upstream_conf(u)->name,
		    (unsigned long long)st.messages, st.limits.messages,
		    (unsigned long long)st.recipients, st.limits.recipients,
		    when);
	}
	u->pace_logged = true;
	u->pace_until = at;
	tv.tv_sec = (time_t)(at - now);
	evtimer_add(u->pace, &tv);
	return false;
}

/* Counts the transaction of <c> against its account's quota while it
 * runs (its pending recipients), and remembers how many recipients
 * were sent before it, to count what it sends. */
static void
upstream_quota_hold(struct upstream_conn *c, const struct envelope *env)
{
	size_t	i;

	c->qcount = 0;
	c->nsent = 0;
	for (i = 0; i < env->nrcpt; i++) {
		c->qcount += env->rcpts[i].state == ENVELOPE_RCPT_PENDING;
		c->nsent += env->rcpts[i].state == ENVELOPE_RCPT_SENT;
	}
	if (c->u->acct == NULL)
		return;
	account_hold(c->u->acct, c->qcount);
	c->qheld = c->u->acct;	/* a reload may change c->u->acct */
}

/* Records what the transaction of <c> sent (a relay only ever turns
 * pending recipients into sent or failed ones), and stops counting it
 * as in flight. */
static void
upstream_quota_done(struct upstream_conn *c, const struct envelope *env)
{
	unsigned int	n = 0;
	size_t		i;

	for (i = 0; i < env->nrcpt; i++)
		n += env->rcpts[i].state == ENVELOPE_RCPT_SENT;
	if (c->qheld != NULL)
		account_done(c->qheld, c->qcount, n > c->nsent ?
		    n - c->nsent : 0, time_wall());
	c->qheld = NULL;
}

static struct upstream_conn *
upstream_idle_conn(const struct upstream *u)
{
	struct upstream_conn	*c;

	TAILQ_FOREACH(c, &u->l->conns, entry)
		if (c->u == u && c->idle && c->txn == NULL && !c->quitting)
			return c;
	return NULL;
}

bool
upstream_can_take(const struct upstream *u)
{
	return u->h.state == HEALTH_OK && !upstream_is_pacing(u) &&
	    upstream_idle_conn(u) != NULL;
}

unsigned int
upstream_waiting(const struct upstream *u)
{
	struct upstream_conn	*c;
	unsigned int		 n = 0;

	TAILQ_FOREACH(c, &u->l->conns, entry)
		if (c->u == u && c->txn == NULL && !c->quitting)
			n++;	/* connecting or idle */
	return n;
}

void
upstream_connect(struct upstream *u, unsigned int more)
{
	if (more == 0 || u->l->stopping || !upstream_has_credentials(u))
		return;
	while (u->h.state == HEALTH_OK &&
	    u->nconns < upstream_conf(u)->connections && more > 0) {
		upstream_conn_start(u, false);
		more--;
	}
}

int
upstream_send(struct upstream *u, struct envelope *env, const char *data_path,
    void *txn)
{
	struct upstream_conn	*c;

	if (!upstream_can_take(u) || (c = upstream_idle_conn(u)) == NULL)
		return -1;
	if (!upstream_quota_allows(u, env))
		return -1;
	c->idle = false;
	c->txn = txn;
	upstream_quota_hold(c, env);
	relay_send(c->r, env, data_path);
	return 0;
}

/* Closes the idle connections of the upstreams after <u> in failover
 * order: <u> is delivering again and takes their mail back.  (One they
 * still need for failed-over mail opens again on demand.) */
static void
upstream_close_idle_after(struct upstream *u)
{
	struct upstream_conn	*c, *next;

	for (c = TAILQ_FIRST(&u->l->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->u->idx <= u->idx || !c->idle || c->txn != NULL ||
		    c->quitting)
			continue;
		log_info("upstream name=%s closing an idle connection: "
		    "name=%s delivers again", upstream_conf(c->u)->name,
		    upstream_conf(u)->name);
		/* Politely; closed() forgets it. */
		c->idle = false;
		c->quitting = true;
		relay_quit(c->r);
	}
}

static void
upstream_relay_ready(struct relay *r, void *arg)
{
	struct upstream_conn	*c = arg;
	struct upstream		*u = c->u;
	bool			 trial = c->trial;

	(void)r;
	c->idle = true;
	c->trial = false;
	/* A login proves the upstream reachable and the credentials good,
	 * but says nothing of a sending limit: only the quota pause's own
	 * probe ends that (health_login_ok). */
	if (upstream_logged_in(u, trial))
		upstream_close_idle_after(u);
	/* A successful login may also be the end of a pause. */
	u->l->cbs->on_ready(u, u->l->arg);
}

static void
upstream_relay_done(struct relay *r, struct envelope *env,
    enum relay_status st, const char *reply, void *arg)
{
	struct upstream_conn	*c = arg;
	struct upstream		*u = c->u;
	struct upstream_list	*l = u->l;
	void			*txn = c->txn;

	upstream_quota_done(c, env);
	l->cbs->on_delivered(u, env, st, reply, relay_peer(r), txn, l->arg);
	c->txn = NULL;
	c->idle = true;
	if (l->stopping) {
		relay_free(c->r);
		upstream_conn_forget(c);
		l->cbs->on_closed(u, l->arg);
		return;
	}
	if (st == RELAY_QUOTA)
		upstream_pause(u, HEALTH_QUOTA, reply,
		    strstr(reply, "5.4.5") != NULL ? HEALTH_QUOTA_DAILY :
		    HEALTH_QUOTA_PEAK, false);
	l->cbs->on_ready(u, l->arg);
}

static void
upstream_relay_closed(struct relay *r, enum relay_status st,
    const struct relay_failure *f, void *arg)
{
	struct upstream_conn	*c = arg;
	struct upstream		*u = c->u;
	const char		*reason = f->reason;
	bool			 trial = c->trial;

	(void)r;
	upstream_conn_forget(c);
	/* Probe soon, then every minute at most (health.h): when the
	 * network returns the queue drains within about a minute. */
	if (st == RELAY_UNAVAILABLE)
		upstream_failed(u, HEALTH_UNAVAILABLE, reason, trial);
	else if (st == RELAY_AUTH_FAILED)
		upstream_failed(u, HEALTH_AUTH_FAILED, reason, trial);
	else if (trial)
		/* The probe ended before logging in, however: it failed. */
		upstream_failed(u, HEALTH_UNAVAILABLE, reason, true);
	else
		log_debug("upstream relay closed reason=\"%s\"", reason);
	u->l->cbs->on_closed(u, u->l->arg);
}

/* An upstream whose ca_file differs from the first one's (whose context
 * comes from main) gets its own TLS context.  Open connections hold
 * their own reference to a replaced one (tls_client_ref()). */
static void
upstream_set_tls(struct upstream *u, const char *ca_file)
{
	struct upstream_list	*l = u->l;

	if (u->tls_own_path != NULL && ca_file != NULL &&
	    strcmp(u->tls_own_path, ca_file) == 0)
		return;
	tls_client_free(u->tls_own);
	free(u->tls_own_path);
	u->tls_own = NULL;
	u->tls_own_path = NULL;
	if (ca_file == NULL || strcmp(ca_file, l->conf->upstream[0].ca_file)
	    == 0)
		return;
	u->tls_own_path = xstrdup(ca_file);
	if ((u->tls_own = tls_client_new(ca_file)) == NULL)
		upstream_pause(u, HEALTH_UNAVAILABLE, "cannot load "
		    "upstream.ca_file", HEALTH_PROBE_MAX, false);
}

/* Takes the upstream list of l->conf.  States stay with positions. */
static void
upstream_list_take_conf(struct upstream_list *l)
{
	struct upstream	*u;
	unsigned int	 i, n = (unsigned int)l->conf->nupstream;

	if (n > UPSTREAM_MAX)
		n = UPSTREAM_MAX;	/* conf refuses more */
	l->nups = n;
	account_list_reload(l->accounts);
	for (i = 0; i < UPSTREAM_MAX; i++) {
		u = &l->ups[i];
		upstream_set_tls(u, i < n ? l->conf->upstream[i].ca_file :
		    NULL);
		u->acct = i < n ? account_list_get(l->accounts,
		    &l->conf->upstream[i]) : NULL;
		if (i < n && l->conf->upstream[i].auth == CONF_AUTH_XOAUTH2) {
			/* A reload keeps the cached token unless the OAuth
			 * settings changed. */
			if (u->oauth == NULL)
				u->oauth = oauth_new(l->base, l->dns,
				    l->conf, &l->conf->upstream[i]);
			else
				oauth_set_upstream(u->oauth, l->conf,
				    &l->conf->upstream[i]);
		}
		if (i >= n) {
			evtimer_del(u->probe);
			health_init(&u->h);
		}
	}
}

struct upstream_list *
upstream_list_new(struct event_base *base, struct evdns_base *dns,
    const struct conf *conf, struct tls_client *tls,
    const struct upstream_cbs *cbs, void *arg)
{
	struct upstream_list	*l;
	struct upstream		*u;
	unsigned int		 i;

	l = xcalloc(1, sizeof(*l));
	l->base = base;
	l->dns = dns;
	l->conf = conf;
	l->tls = tls;
	l->cbs = cbs;
	l->arg = arg;
	TAILQ_INIT(&l->conns);
	l->accounts = account_list_new(conf->spool);
	for (i = 0; i < UPSTREAM_MAX; i++) {
		u = &l->ups[i];
		u->l = l;
		u->idx = i;
		health_init(&u->h);
		u->probe = evtimer_new(base, upstream_probe_cb, u);
		u->pace = evtimer_new(base, upstream_pace_cb, u);
		if (u->probe == NULL || u->pace == NULL)
			fatalx("upstream evtimer_new");
	}
	upstream_list_take_conf(l);
	return l;
}

void
upstream_list_free(struct upstream_list *l)
{
	struct upstream_conn	*c;
	unsigned int		 i;

	if (l == NULL)
		return;
	while ((c = TAILQ_FIRST(&l->conns)) != NULL) {
		relay_free(c->r);
		upstream_conn_forget(c);
	}
	account_list_free(l->accounts);
	for (i = 0; i < UPSTREAM_MAX; i++) {
		oauth_free(l->ups[i].oauth);
		event_free(l->ups[i].probe);
		event_free(l->ups[i].pace);
		tls_client_free(l->ups[i].tls_own);
		free(l->ups[i].tls_own_path);
	}
	free(l);
}

void
upstream_list_set_conf(struct upstream_list *l, const struct conf *conf,
    struct tls_client *tls)
{
	l->conf = conf;
	l->tls = tls;
	upstream_list_take_conf(l);
	upstream_list_probe_now(l);
}

void
upstream_list_stop(struct upstream_list *l)
{
	struct upstream_conn	*c, *next;

	l->stopping = true;
	for (c = TAILQ_FIRST(&l->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->txn != NULL)
			continue;	/* finishes, then done() frees it */
		relay_free(c->r);
		upstream_conn_forget(c);
	}
}

unsigned int
upstream_list_count(const struct upstream_list *l)
{
	return l->nups;
}

struct upstream *
upstream_list_get(struct upstream_list *l, unsigned int i)
{
	return &l->ups[i];
}

unsigned int
upstream_list_connections(const struct upstream_list *l)
{
	return l->nconns;
}

/* An admin action or a network change: a paused <u> probes now. */
static void
upstream_probe_now(struct upstream *u)
{
	health_probe_now(&u->h, time_wall());
	upstream_arm(u);
}

void
upstream_list_probe_now(struct upstream_list *l)
{
	unsigned int	i;

	for (i = 0; i < l->nups; i++)
		upstream_probe_now(&l->ups[i]);
}

void
upstream_list_network_changed(struct upstream_list *l)
{
	unsigned int	i;

	for (i = 0; i < l->nups; i++)
		if (l->ups[i].h.state == HEALTH_UNAVAILABLE &&
		    l->ups[i].nconns == 0) {
			log_info("upstream network-changed name=%s: probing "
			    "now", upstream_conf(&l->ups[i])->name);
			upstream_probe_now(&l->ups[i]);
		}
}

/* Delivering if any upstream is; else the first one's trouble. */
enum health_state
upstream_list_state(const struct upstream_list *l)
{
	unsigned int	i;

	for (i = 0; i < l->nups; i++)
		if (l->ups[i].h.state == HEALTH_OK)
			return HEALTH_OK;
	return l->ups[0].h.state;
}

void
upstream_stats(const struct upstream *u, struct upstream_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->name = upstream_conf(u)->name;
	st->state = u->h.state;
	st->reason = u->h.reason;
	st->connections = u->nconns;
	st->retry_at = health_next(&u->h);
	st->probing = u->h.trial;
	if (u->acct != NULL) {
		st->has_quota = true;
		account_status(u->acct, time_wall(), &st->quota);
	}
}
