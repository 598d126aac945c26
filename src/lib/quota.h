/*
 * quota.h - sending-quota awareness for one upstream account.
 *
 * Counts the messages and recipients accepted upstream in a rolling
 * 24-hour window of one-minute buckets (fixed memory), persists them in a
 * small text file, and tells the scheduler when the next message may go:
 * paced near the limit, held at it, so Gmail never answers 550 5.4.5 and
 * never locks the account out for a day.  No event loop and no clock: the
 * caller passes <now> (unix seconds, >= 0) to every function.
 */
#ifndef QUOTA_H
#define QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUOTA_MAX		10000000	/* largest configurable limit */
#define QUOTA_PACE_PERCENT	80		/* pacing from this usage on */

/* A limit of 0 means unlimited. */
struct quota_limits {
	uint32_t	 messages;	/* per rolling 24 h */
	uint32_t	 recipients;	/* per rolling 24 h */
};

struct quota;				/* one account's counters */

/* What smartrelayctl stats, the metrics and the log show. */
struct quota_status {
	uint64_t		 messages;	/* used in the window */
	uint64_t		 recipients;	/* used in the window */
	struct quota_limits	 limits;
	int64_t			 next_send;	/* quota_next_send(q, now, 1) */
	bool			 pacing;	/* usage >= 80 % of a limit */
	bool			 at_limit;	/* held until next_send */
};

/* Parses the "quota" option: "none" or "" (unlimited), "gmail" (500
 * messages and 500 recipients a day, Gmail's consumer limit), "workspace"
 * (2000 messages, 10000 recipients), "N" (N of each) or "N/M" (N
 * messages, M recipients), N and M decimal in 1..QUOTA_MAX with no sign,
 * space or anything else.  Names are case-sensitive.  Returns 0, or -1
 * with a one-line reason in <err> (<errsz> bytes, may be 0). */
int		 quota_parse(const char *spec, struct quota_limits *out,
		    char *err, size_t errsz);

/* Creates empty counters with <limits> (NULL: unlimited).  <path> (NULL:
 * no persistence) is copied; the file is not read until quota_load().
 * The caller owns the result (quota_free()). */
struct quota	*quota_new(const struct quota_limits *limits, const char *path);
void		 quota_free(struct quota *);

/* SIGHUP: new limits, the counters are kept. */
void		 quota_set_limits(struct quota *, const struct quota_limits *);

/* Replaces the counters by the file's (no-op without a path).  Minutes
 * older than the window are dropped; minutes after <now> (the clock
 * stepped back) count as <now>'s.  A missing file means empty counters
 * and returns 0; an unreadable or corrupt one is logged, leaves the
 * counters empty and returns -1. */
int		 quota_load(struct quota *, int64_t now);

/* One message was accepted upstream at <now> with <nrcpt> recipients.
 * With a path, rewrites the file atomically (temporary file in the same
 * directory, then rename) but without fsync: a power cut may lose the
 * last records, a crash of the daemon alone loses none.  Returns 0, or -1
 * if the file could not be written (logged once until a write works; the
 * counters in memory are updated anyway). */
int		 quota_record(struct quota *, int64_t now, unsigned int nrcpt);

/* Writes the file durably: write, fsync, rename, fsync the directory.
 * For shutdown.  Returns 0 (also without a path), or -1 after logging. */
int		 quota_sync(struct quota *);

/* Messages and recipients counted in the window at <now>: a minute's
 * sends count until 24 h after that minute ends. */
void		 quota_usage(const struct quota *, int64_t now,
		    uint64_t *messages, uint64_t *recipients);

/* When may a message with <nrcpt> recipients go?  Returns 0 for now, or
 * the unix time (> now) at which to ask again:
 * - at the limit (the message would exceed a limit): the time when
 *   enough minutes have left the window for it to fit (asked again
 *   then, pacing may name a later time);
 * - pacing, per limit L with usage u >= 80 % of L: the remaining budget
 *   R = L - u is spread until the oldest counted minute leaves the window
 *   (time t_old).  With k the message's share (1, or its recipients) and
 *   <last> the previous send, it may go at the first whole second T with
 *       T - last >= (t_old - T) * k / R,
 *   i.e. T = ceil((R * last + k * t_old) / (R + k));
 * - a message with more recipients than the recipient limit counts as
 *   exactly the limit, so it goes once the window holds no recipient
 *   instead of waiting forever (the upstream then judges it).
 * Unlimited limits never delay. */
int64_t		 quota_next_send(const struct quota *, int64_t now,
		    unsigned int nrcpt);

/* Fills <st> for <now>; next_send and at_limit are for a one-recipient
 * message. */
void		 quota_status(const struct quota *, int64_t now,
		    struct quota_status *st);

#endif /* QUOTA_H */
