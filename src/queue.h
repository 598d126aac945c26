/*
 * queue.h - the scheduler: which committed message goes upstream when.
 *
 * It keeps an index of the spool (id, next attempt, held), hands due
 * messages to at most upstream.connections relay connections, applies
 * each transaction's per-recipient results to the envelope on disk, and
 * retries with exponential backoff and jitter.  Trouble with the
 * upstream itself (unreachable, credentials, quota) pauses the whole
 * queue instead of burning each message's retries; when it clears, the
 * queue drains at once.  Failed recipients get one failure report (DSN)
 * per message, and the message is kept in failed/.
 */
#ifndef QUEUE_H
#define QUEUE_H

#include <stdbool.h>
#include <stdint.h>

struct conf;
struct event_base;
struct evdns_base;
struct spool;
struct tls_client;
struct queue;

/* Upstream health as the queue sees it. */
enum queue_upstream {
	QUEUE_UP_OK,		/* delivering, or nothing to do */
	QUEUE_UP_NOCREDS,	/* no username / password file yet */
	QUEUE_UP_UNAVAILABLE,	/* unreachable; probing */
	QUEUE_UP_AUTH_FAILED,	/* credentials rejected; paused */
	QUEUE_UP_QUOTA,		/* sending limit hit; paused */
};

/* Creates the scheduler.  Nothing happens until queue_load(). */
struct queue	*queue_new(struct event_base *, struct evdns_base *,
		    const struct conf *, struct spool *, struct tls_client *);

/* Indexes every committed message (spool_scan) and schedules them: due
 * ones at once.  Returns the number of messages, or -1. */
long		 queue_load(struct queue *);

/* A message was just committed (the session's hook): attempt it now. */
void		 queue_add(struct queue *, const char *id);

/* SIGUSR1: every deferred message is due now, and a paused upstream
 * (credentials, quota, unavailable) is tried again at once. */
void		 queue_flush(struct queue *);

/* Graceful stop: start nothing new, close idle connections, let
 * transactions in flight finish; <drained> runs once none is left.
 * Envelopes on disk stay consistent whatever happens after. */
void		 queue_stop(struct queue *, void (*drained)(void *), void *arg);

/* Frees everything, abandoning transactions in flight (their messages
 * are retried after a restart). NULL is a no-op. */
void		 queue_free(struct queue *);

enum queue_upstream queue_upstream_state(const struct queue *);
unsigned long	 queue_size(const struct queue *);

/* Delay before attempt number <attempts> + 1 after a temporary failure:
 * retry_min doubled (attempts - 1) times, capped at retry_max, then
 * spread by up to -20%..+0% jitter so messages that failed together do
 * not retry in lockstep.  <rnd> is a uniform random number in [0, 1).
 * Pure, for unit tests. */
uint64_t	 queue_backoff(unsigned int attempts, uint64_t retry_min,
		    uint64_t retry_max, double rnd);

#endif /* QUEUE_H */
