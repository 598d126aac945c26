/*
 * attempt.h - one delivery attempt of one queued message.
 *
 * An attempt loads the message's envelope from the spool and notes each
 * recipient's state before it goes upstream.  When the transaction is
 * over, attempt_finish() applies what the upstream answered: one log
 * line and one count per recipient decided, recipients refused here
 * kept for the next upstream (failover_on_reject), expiry past
 * queue.lifetime, and the time of the next attempt.  It never writes
 * the spool: the queue saves the envelope, or retires the message.
 */
#ifndef ATTEMPT_H
#define ATTEMPT_H

#include <stdbool.h>
#include <stdint.h>

#include "relay.h"

struct conf_queue;
struct envelope;
struct spool;
struct attempt;

/* Recipients counted since start (smartrelayctl stats, the metrics). */
struct attempt_counts {
	unsigned long		 sent;		/* delivered */
	unsigned long		 deferred;	/* attempts deferred */
	unsigned long		 bounced;	/* failed (5xx) */
	unsigned long		 expired;	/* past the lifetime */
	int64_t			 last_sent;	/* last delivery, or 0 */
};

/* Loads message <id> from <spool> for an attempt on behalf of <owner>
 * (the caller's, given back by attempt_owner()).  Returns NULL when the
 * spool cannot (it logs why).  The caller owns the result. */
struct attempt	*attempt_new(struct spool *, const char *id, void *owner);
void		 attempt_free(struct attempt *);

/* The envelope (owned by the attempt; lend it to relay_send()), the
 * path of the message's data, and the owner given to attempt_new(). */
struct envelope	*attempt_envelope(struct attempt *);
const char	*attempt_data_path(const struct attempt *);
void		*attempt_owner(const struct attempt *);

/*
 * The transaction ended with <st> and <reply> at <peer> (borrowed for
 * the call); the recipients of the envelope carry their results.
 * Counts them in <c> and logs them.  With <fail_over>, recipients
 * refused with 5xx stay pending for the next upstream (*moved is then
 * true).  Past <qc>->lifetime, the pending ones expire.  Returns true
 * when recipients remain pending; the envelope's next_attempt is then
 * set (at once after a quota pause or a failover, else backoff).
 */
bool		 attempt_finish(struct attempt *, const struct conf_queue *qc,
		    bool fail_over, enum relay_status st, const char *reply,
		    const char *peer, struct attempt_counts *c, bool *moved);

/* Does <env> have a recipient still pending? */
bool		 attempt_has_pending(const struct envelope *env);

/* Past queue.lifetime: every pending recipient of <env> fails as
 * expired (4.4.7), keeping the last error in its reply. */
void		 attempt_expire(struct envelope *env);

/* Delay before attempt number <attempts> + 1 after a temporary failure:
 * retry_min doubled (attempts - 1) times, capped at retry_max, then
 * spread by up to -20%..+0% jitter so messages that failed together do
 * not retry in lockstep.  <rnd> is a uniform random number in [0, 1).
 * Pure, for unit tests. */
uint64_t	 attempt_backoff(unsigned int attempts, uint64_t retry_min,
		    uint64_t retry_max, double rnd);

#endif /* ATTEMPT_H */
