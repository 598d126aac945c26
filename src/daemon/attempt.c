/*
 * attempt.c - one delivery attempt of one message, from loading its
 * envelope to what the upstream's answers make of it.
 *
 * The per-recipient log line ("delivery id=... status=sent") is
 * written here, once per recipient whose state an attempt decided.
 */
#include "config.h"

#include "attempt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "envelope.h"
#include "log.h"
#include "spool.h"
#include "util.h"

struct attempt {
	struct envelope		 env;
	char			 path[1024];	/* the data file */
	enum envelope_rcpt_state *before;	/* states before the attempt */
	void			*owner;
	const char		*peer;		/* during attempt_finish() */
};

struct attempt *
attempt_new(struct spool *spool, const char *id, void *owner)
{
	struct attempt	*t;
	size_t		 i;

	t = xcalloc(1, sizeof(*t));
	if (spool_env_load(spool, id, &t->env) == -1) {
		free(t);
		return NULL;
	}
	if (spool_data_path(spool, id, t->path, sizeof(t->path)) == -1) {
		attempt_free(t);
		return NULL;
	}
	t->owner = owner;
	t->before = xcalloc(t->env.nrcpt + 1, sizeof(*t->before));
	for (i = 0; i < t->env.nrcpt; i++)
		t->before[i] = t->env.rcpts[i].state;
	return t;
}

void
attempt_free(struct attempt *t)
{
	if (t == NULL)
		return;
	envelope_cleanup(&t->env);
	free(t->before);
	free(t);
}

struct envelope *
attempt_envelope(struct attempt *t)
{
	return &t->env;
}

const char *
attempt_data_path(const struct attempt *t)
{
	return t->path;
}

void *
attempt_owner(const struct attempt *t)
{
	return t->owner;
}

uint64_t
attempt_backoff(unsigned int attempts, uint64_t retry_min, uint64_t retry_max,
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
attempt_random(void)
{
	return (double)(random() % 1000000) / 1000000.0;
}

/* One log line per recipient whose state this attempt decided. */
static void
attempt_log_rcpt(const struct attempt *t, const struct envelope_rcpt *rc,
    const char *status, const char *reply)
{
	char	delay[32], esc[600];

	str_fmt_duration((uint64_t)(time_wall() - t->env.arrival), delay,
	    sizeof(delay));
	str_log_escape(reply, strlen(reply), esc, sizeof(esc));
	log_info("delivery id=%s to=<%s> relay=%s delay=%s tries=%u dsn=%s "
	    "status=%s (%s)", t->env.id, rc->addr,
	    t->peer != NULL ? t->peer : "none", delay,
	    t->env.attempts, rc->dsn != NULL ? rc->dsn : "-", status, esc);
}

void
attempt_expire(struct envelope *env)
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

bool
attempt_has_pending(const struct envelope *env)
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
 * here (until a restart, which forgets that; the queue keeps the
 * position).  Returns true if any did.
 */
static bool
attempt_fail_over(struct attempt *t)
{
	struct envelope_rcpt	*rc;
	bool			 moved = false;
	size_t			 i;

	for (i = 0; i < t->env.nrcpt; i++) {
		rc = &t->env.rcpts[i];
		if (rc->state != ENVELOPE_RCPT_FAILED ||
		    t->before[i] != ENVELOPE_RCPT_PENDING ||
		    rc->dsn == NULL || rc->dsn[0] != '5')
			continue;
		attempt_log_rcpt(t, rc, "deferred", "refused here; trying the "
		    "next upstream");
		rc->state = ENVELOPE_RCPT_PENDING;
		free(rc->dsn);
		rc->dsn = NULL;
		moved = true;
	}
	return moved;
}

bool
attempt_finish(struct attempt *t, const struct conf_queue *qc,
    bool fail_over, enum relay_status st, const char *reply,
    const char *peer, struct attempt_counts *c, bool *moved)
{
	struct envelope		*env = &t->env;
	struct envelope_rcpt	*rc;
	int64_t			 now = time_wall();
	bool			 expired;
	size_t			 i;

	t->peer = peer;
	/* A quota pause is the upstream's state, not this message's. */
	if (st != RELAY_QUOTA)
		env->attempts++;
	*moved = fail_over && attempt_fail_over(t);
	expired = now - env->arrival >= (int64_t)qc->lifetime;
	for (i = 0; i < env->nrcpt; i++) {
		rc = &env->rcpts[i];
		if (rc->state == ENVELOPE_RCPT_SENT &&
		    t->before[i] != ENVELOPE_RCPT_SENT) {
			c->sent++;
			c->last_sent = now;
			attempt_log_rcpt(t, rc, "sent", rc->reply ?
			    rc->reply : "");
		} else if (rc->state == ENVELOPE_RCPT_FAILED &&
		    t->before[i] != ENVELOPE_RCPT_FAILED) {
			c->bounced++;
			attempt_log_rcpt(t, rc, "bounced", rc->reply ?
			    rc->reply : "");
		} else if (rc->state == ENVELOPE_RCPT_PENDING) {
			if (st != RELAY_OK && reply[0] != '\0') {
				free(rc->reply);
				rc->reply = xstrdup(reply);
			}
			if (!expired) {
				c->deferred++;
				attempt_log_rcpt(t, rc, "deferred", rc->reply ?
				    rc->reply : reply);
			}
		}
	}
	if (attempt_has_pending(env)) {
		free(env->last_error);
		env->last_error = xstrdup(reply[0] != '\0' ? reply :
		    "some recipients deferred");
	}
	if (expired && attempt_has_pending(env)) {
		for (i = 0; i < env->nrcpt; i++)
			t->before[i] = env->rcpts[i].state;
		attempt_expire(env);
		for (i = 0; i < env->nrcpt; i++)
			if (t->before[i] == ENVELOPE_RCPT_PENDING) {
				c->expired++;
				attempt_log_rcpt(t, &env->rcpts[i], "expired",
				    env->rcpts[i].reply);
			}
	}
	if (!attempt_has_pending(env))
		return false;
	env->next_attempt = st == RELAY_QUOTA || *moved ? now : now +
	    (int64_t)attempt_backoff(env->attempts, qc->retry_min,
	    qc->retry_max, attempt_random());
	return true;
}
