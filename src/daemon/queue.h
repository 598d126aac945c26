/*
 * queue.h - the scheduler: which committed message goes upstream when.
 *
 * It keeps an index of the spool (id, next attempt, held), hands due
 * messages to the first upstream that is delivering (upstream.h:
 * several upstream sections are tried in order, failover), applies
 * each transaction's per-recipient results to the envelope on disk, and
 * retries with exponential backoff and jitter.  Trouble with an
 * upstream itself (unreachable, credentials, quota) pauses that
 * upstream instead of burning each message's retries; when it clears,
 * its mail goes at once.  Failed recipients get one failure report
 * (DSN) per message, and the message is kept in failed/.
 */
#ifndef QUEUE_H
#define QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "envelope.h"
#include "health.h"

struct conf;
struct envelope;
struct event_base;
struct evdns_base;
struct spool;
struct tls_client;
struct upstream_stats;
struct queue;

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

/* The network configuration changed (a link or default route came
 * back): every unreachable upstream is tried again now. */
void		 queue_network_changed(struct queue *);

/* HEALTH_OK while any upstream delivers; else the first one's state. */
enum health_state queue_upstream_state(const struct queue *);

/* Per upstream, in failover order (0 .. queue_upstreams() - 1): its
 * state, as upstream_stats() gives it. */
unsigned int	 queue_upstreams(const struct queue *);
void		 queue_get_upstream(const struct queue *, unsigned int,
		    struct upstream_stats *);
unsigned long	 queue_size(const struct queue *);

/* <cb> runs after the queue's contents or the upstream state changed
 * (for status lines); it must not call back into the queue. */
void		 queue_set_observer(struct queue *, void (*cb)(void *),
		    void *arg);

/* SIGHUP: later connections use <conf> and <tls> (both borrowed until
 * the next call).  Connections already open hold their own references
 * to the old ones. */
void		 queue_set_conf(struct queue *, const struct conf *,
		    struct tls_client *);

/* Counters since start, for smartrelayctl stats and the metrics. */
struct queue_stats {
	unsigned long		 sent;		/* recipients delivered */
	unsigned long		 deferred;	/* recipient attempts deferred */
	unsigned long		 bounced;	/* recipients failed (5xx) */
	unsigned long		 expired;	/* recipients past lifetime */
	unsigned long		 reports;	/* failure reports queued */
	unsigned long		 depth;		/* messages in the queue */
	unsigned long		 held;
	int64_t			 oldest;	/* arrival of the oldest, or 0 */
	int64_t			 last_sent;	/* last delivery, or 0 */
	unsigned int		 connections;	/* upstream connections open */
	enum health_state	 upstream;
	const char		*upstream_reason;	/* borrowed; "" if ok */
};
void		 queue_get_stats(const struct queue *, struct queue_stats *);

/* Calls <cb> for every queued message with its envelope as on disk
 * (borrowed for the call) and whether a relay has it right now.
 * Returns the number listed. */
long		 queue_list(struct queue *, void (*cb)(const struct envelope *,
		    bool busy, void *), void *arg);

/* Which messages queue_ids() lists. */
enum queue_select {
	QUEUE_SELECT_ALL,
	QUEUE_SELECT_HELD,
	QUEUE_SELECT_NOT_HELD,
	QUEUE_SELECT_FAILED,	/* those kept in failed/ */
};

struct queue_id {
	char			 id[ENVELOPE_ID_LEN + 1];
};

/* The ids of the queued messages that <sel> picks, in queue order, for
 * an operation on "ALL" that changes the queue as it goes (delivered
 * messages whose files are still being removed are left out): a new
 * array of *n entries (NULL when none) that the caller frees. */
struct queue_id	*queue_ids(const struct queue *, enum queue_select,
		    size_t *n);

/* Per-message admin operations.  flush_one makes a message due now and
 * returns 0, or -1 with errno ENOENT (no such message) or EPERM (held).
 * The others change the disk off the loop: each returns -1 with errno
 * ENOENT (no such message) or EBUSY (being delivered or changed right
 * now: try again in a moment), or 0 once started; then <done> runs
 * later on the loop, never from inside the call, with 0 once the change
 * is on stable storage (and logged), or an errno value.  hold/release
 * rewrite the envelope; a held message is never attempted (and never
 * expires while held); delete removes the message without any report. */
typedef void	(*queue_done_cb)(const char *id, int err, void *arg);
int		 queue_flush_one(struct queue *, const char *id);
int		 queue_hold(struct queue *, const char *id, queue_done_cb done,
		    void *arg);
int		 queue_release(struct queue *, const char *id,
		    queue_done_cb done, void *arg);
int		 queue_delete(struct queue *, const char *id,
		    queue_done_cb done, void *arg);

/* Sends a message kept in failed/ again: its failed recipients become
 * pending (those already sent are never sent twice), its attempts and
 * lifetime start over, and it is attempted at once (spool_requeue_start()
 * moves it, durably).  Returns -1 with errno ENOENT (not in failed/),
 * EEXIST (in the queue) or EINVAL (no failed recipient), or 0 and then
 * <done> reports as above (EEXIST, ENOENT or that of the spool). */
int		 queue_requeue(struct queue *, const char *id,
		    queue_done_cb done, void *arg);

#endif /* QUEUE_H */
