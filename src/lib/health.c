/*
 * health.c - one upstream's health, as a pure state machine (health.h).
 *
 * Every transition keeps the one invariant: a paused upstream has a
 * probe time or a trial, never both and never neither (0 means "no
 * probe time", so a probe is never due at 0).  Pure: no clock, no I/O,
 * no allocation.
 */
#include "config.h"

#include "health.h"

#include <stdio.h>
#include <string.h>

static const char *const health_names[HEALTH_NSTATES] = {
	[HEALTH_OK] = "ok",
	[HEALTH_NOCREDS] = "waiting-for-credentials",
	[HEALTH_UNAVAILABLE] = "unavailable",
	[HEALTH_AUTH_FAILED] = "credentials-rejected",
	[HEALTH_QUOTA] = "quota-exceeded",
};

void
health_init(struct health *h)
{
	memset(h, 0, sizeof(*h));
	h->state = HEALTH_OK;
}

/* Sets state and reason; true if either changed. */
static bool
health_set(struct health *h, enum health_state st, const char *reason)
{
	bool	changed = st != h->state || strcmp(reason, h->reason) != 0;

	h->state = st;
	snprintf(h->reason, sizeof(h->reason), "%s", reason);
	return changed;
}

bool
health_pause(struct health *h, enum health_state st, const char *reason,
    unsigned int delay, bool self_timed, int64_t now)
{
	bool	changed;

	if (st == HEALTH_OK)
		st = HEALTH_UNAVAILABLE;	/* a pause needs a reason */
	changed = health_set(h, st, reason);
	h->trial = false;
	h->self_timed = self_timed && st == HEALTH_QUOTA;
	h->probe_at = now + (int64_t)delay;
	if (h->probe_at <= 0)
		h->probe_at = 1;
	if (st != HEALTH_UNAVAILABLE)
		h->backoff = 0;
	return changed;
}

bool
health_conn_failed(struct health *h, enum health_state st,
    const char *reason, bool was_trial, int64_t now)
{
	bool		 trial = was_trial && h->trial;
	unsigned int	 delay;

	if (st != HEALTH_AUTH_FAILED)
		st = HEALTH_UNAVAILABLE;
	if (st == HEALTH_AUTH_FAILED)
		return health_pause(h, st, reason, HEALTH_AUTH_RETRY, false,
		    now);
	if (trial || h->state == HEALTH_OK || h->backoff == 0) {
		/* The first failure, or a failed probe: back off. */
		delay = trial && h->backoff > 0 ? h->backoff * 2 :
		    HEALTH_PROBE_MIN;
		if (delay > HEALTH_PROBE_MAX)
			delay = HEALTH_PROBE_MAX;
		h->backoff = delay;
		return health_pause(h, st, reason, delay, false, now);
	}
	/* Another connection of an upstream already paused: the probe
	 * (or the trial in flight) stays as it is. */
	return health_set(h, st, reason);
}

bool
health_login_ok(struct health *h, bool was_trial)
{
	bool	trial = was_trial && h->trial;

	if (h->state == HEALTH_OK)
		return false;
	if (h->state == HEALTH_QUOTA && !trial)
		return false;
	health_init(h);
	return true;
}

enum health_action
health_due(struct health *h)
{
	if (h->state == HEALTH_OK || h->trial)
		return HEALTH_WAIT;
	if (h->state == HEALTH_QUOTA && h->self_timed) {
		health_init(h);
		return HEALTH_RESUME;
	}
	h->probe_at = 0;
	h->trial = true;
	return HEALTH_TRIAL;
}

void
health_probe_now(struct health *h, int64_t now)
{
	if (h->state != HEALTH_OK && !h->trial)
		h->probe_at = now > 0 ? now : 1;
}

int64_t
health_next(const struct health *h)
{
	return h->state == HEALTH_OK || h->trial ? 0 : h->probe_at;
}

bool
health_is_consistent(const struct health *h)
{
	if (h->state == HEALTH_OK)
		return h->probe_at == 0 && !h->trial && h->reason[0] == '\0';
	return (h->probe_at != 0) != h->trial;
}

const char *
health_state_name(enum health_state st)
{
	if ((unsigned int)st >= HEALTH_NSTATES)
		return "unknown";
	return health_names[st];
}
