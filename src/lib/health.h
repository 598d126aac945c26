/*
 * health.h - one upstream's health, as a pure state machine.
 *
 * An upstream delivers (HEALTH_OK) or is paused for one reason.  The
 * invariant: a paused upstream always has exactly one way out under
 * way, either a probe due at a set time (the caller keeps one timer for
 * it) or one trial connection open.  The probe is its own action, not a
 * side effect of traffic: when it is due, the caller opens a trial
 * connection (connect, TLS, EHLO, AUTH) whether or not mail waits, and
 * reports how it ended.  An admin action (SIGUSR1, a reload, a network
 * change) makes the probe due at once.  No clock and no I/O here: every
 * call takes "now" (unix seconds), so tests drive it with a fake clock.
 */
#ifndef HEALTH_H
#define HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#define HEALTH_PROBE_MIN	10	/* unreachable: first probe, s */
#define HEALTH_PROBE_MAX	60	/* ... doubling up to this */
#define HEALTH_AUTH_RETRY	600	/* credentials rejected or missing */
#define HEALTH_QUOTA_PEAK	600	/* 450 4.2.1: peak limit */
#define HEALTH_QUOTA_DAILY	3600	/* 550 5.4.5: rolling 24 h limit */

enum health_state {
	HEALTH_OK,		/* delivering, or nothing to do */
	HEALTH_NOCREDS,		/* no username or password file yet */
	HEALTH_UNAVAILABLE,	/* unreachable; probing with backoff */
	HEALTH_AUTH_FAILED,	/* credentials rejected; paused */
	HEALTH_QUOTA,		/* sending limit hit; paused */
};
#define HEALTH_NSTATES	(HEALTH_QUOTA + 1)

struct health {
	enum health_state	 state;
	char			 reason[512];	/* "" when OK */
	unsigned int		 backoff;	/* unreachable: last delay, s */
	int64_t			 probe_at;	/* paused: probe due then;
						 * 0 while a trial runs */
	bool			 trial;		/* a trial connection is open */
	bool			 self_timed;	/* QUOTA by our own counters:
						 * ends at probe_at, no trial */
};

/* What the caller does when the probe is due. */
enum health_action {
	HEALTH_WAIT,		/* nothing (not paused, or a trial runs) */
	HEALTH_TRIAL,		/* open one trial connection now */
	HEALTH_RESUME,		/* the pause is over without asking */
};

/* Delivering, nothing pending. */
void		 health_init(struct health *);

/* Pauses in <st> (not HEALTH_OK) for <reason> until a probe <delay>
 * seconds after <now>; <self_timed> (QUOTA only) means the pause simply
 * ends then.  Forgets a trial in flight (its result no longer decides).
 * Returns true if the state or the reason changed (worth a log line). */
bool		 health_pause(struct health *, enum health_state st,
		    const char *reason, unsigned int delay, bool self_timed,
		    int64_t now);

/* A connection ended before it logged in: <st> is HEALTH_UNAVAILABLE
 * (network, TLS, greeting) or HEALTH_AUTH_FAILED; anything else counts
 * as unavailable.  <was_trial> says whether it was the trial.  The
 * first failure probes after HEALTH_PROBE_MIN, each failed trial doubles
 * that up to HEALTH_PROBE_MAX; rejected credentials wait
 * HEALTH_AUTH_RETRY.  A failure while a trial runs waits for the trial.
 * Returns true if the state or the reason changed. */
bool		 health_conn_failed(struct health *, enum health_state st,
		    const char *reason, bool was_trial, int64_t now);

/* A connection logged in.  That ends any pause, except that a sending
 * limit ends only by its own probe (<was_trial>): a login says nothing
 * about a quota.  Returns true if a pause ended. */
bool		 health_login_ok(struct health *, bool was_trial);

/* The probe time came (the caller's timer fired): what to do.  On
 * HEALTH_TRIAL the trial counts as open until health_conn_failed() or
 * health_login_ok() reports it. */
enum health_action health_due(struct health *);

/* An admin action or a network change: a paused upstream without a
 * trial in flight is probed at once (health_next() becomes <now>). */
void		 health_probe_now(struct health *, int64_t now);

/* When the caller's timer must fire next (unix seconds), or 0: none. */
int64_t		 health_next(const struct health *);

/* The invariant above holds: OK has no probe and no trial; a paused
 * state has exactly one of them. */
bool		 health_is_consistent(const struct health *);

/* "ok", "waiting-for-credentials", "unavailable", ... */
const char	*health_state_name(enum health_state);

#endif /* HEALTH_H */
