/*
 * qindex.h - the queue's index of the spool: one entry per queued
 * message (id, arrival, next attempt, held), the ready list of those
 * due, a timer per deferred entry, the lifetime sweep, and the
 * administrator's operations on the disk (hold, release, delete,
 * requeue).  The scheduler (queue.c) owns the index and is told
 * through callbacks when entries become due, when the index changed
 * and when an entry outlived queue.lifetime.
 */
#ifndef QINDEX_H
#define QINDEX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "envelope.h"

struct attempt;
struct event;
struct event_base;
struct qindex;
struct spool;

/* One queued message.  The index keeps the lists, the timer, min_up
 * (qindex_entry_set_min_up()) and gone (qindex_entry_removing()); the
 * owner may set busy, next and att, and reads the rest. */
struct qindex_entry {
	TAILQ_ENTRY(qindex_entry) all;
	TAILQ_ENTRY(qindex_entry) ready;
	struct qindex		*ix;
	void			*owner;		/* the index's <arg> */
	char			 id[ENVELOPE_ID_LEN + 1];
	struct event		*timer;
	int64_t			 arrival;
	bool			 in_ready;
	bool			 busy;		/* with a relay, or saving */
	int64_t			 next;		/* when saved: next attempt */
	bool			 held;
	unsigned int		 min_up;	/* rejected by the upstreams
						 * before this one (failover) */
	struct envelope		*gone;		/* delivered, its files being
						 * removed: listed from this */
	struct attempt		*att;		/* with an upstream; freed
						 * with the entry */
};

struct qindex_cbs {
	/* Entries became due (a timer, an administrator): dispatch. */
	void	(*due)(void *arg);
	/* An entry came or went, or changed state. */
	void	(*changed)(void *arg);
	/* <e> (not busy, not held) outlived queue.lifetime. */
	void	(*expire)(struct qindex_entry *e, void *arg);
};

/* An empty index; <cbs> and <spool> are borrowed for its life. */
struct qindex	*qindex_new(struct event_base *, struct spool *,
		    uint64_t lifetime, const struct qindex_cbs *cbs,
		    void *arg);

/* Frees every entry (and its attempt), then the index.  NULL is a
 * no-op. */
void		 qindex_free(struct qindex *);

/* SIGHUP: queue.lifetime in seconds from now on. */
void		 qindex_set_lifetime(struct qindex *, uint64_t lifetime);

unsigned long	 qindex_count(const struct qindex *);

/* Entries with min_up > 0: without any, all go to the first upstream. */
unsigned long	 qindex_restricted(const struct qindex *);

/* Every entry in queue order, and the ready ones in their order; the
 * next one is read before the current one may be freed. */
struct qindex_entry *qindex_first(const struct qindex *);
struct qindex_entry *qindex_next(const struct qindex_entry *);
struct qindex_entry *qindex_ready_first(const struct qindex *);
struct qindex_entry *qindex_ready_next(const struct qindex_entry *);

/* The entry of message <id>, or NULL with errno ENOENT. */
struct qindex_entry *qindex_find(const struct qindex *, const char *id);

/* A new entry, at the end of the queue, neither ready nor timed. */
struct qindex_entry *qindex_entry_new(struct qindex *, const char *id,
		    int64_t arrival, bool held);
void		 qindex_entry_free(struct qindex_entry *);

/* Due now: onto the ready list (unless busy or held). */
void		 qindex_entry_ready(struct qindex_entry *);

/* Schedules <e> for <when> (unix time): the ready list if due. */
void		 qindex_entry_schedule(struct qindex_entry *, int64_t when);

/* Takes <e> off the ready list (dispatched), or puts it back first in
 * line (not taken after all). */
void		 qindex_entry_unready(struct qindex_entry *);
void		 qindex_entry_ready_first(struct qindex_entry *);

/* Failover: only the upstreams from <min_up> on may take <e>. */
void		 qindex_entry_set_min_up(struct qindex_entry *,
		    unsigned int min_up);

/* The old list of upstreams is gone: every entry may go anywhere. */
void		 qindex_clear_min_up(struct qindex *);

/* Keeps <e> in the queue, busy (never dispatched, held or deleted) and
 * listed from a copy of <env>, while the files of the delivered message
 * are removed.  Returns 0, or -1 if <env> could not be copied. */
int		 qindex_entry_removing(struct qindex_entry *,
		    const struct envelope *env);

/* Makes sure the sweep runs no later than <arrival> + lifetime. */
void		 qindex_sweep_arm(struct qindex *, int64_t arrival);

/* The administrator's operations, as queue.h says of queue_hold(),
 * queue_release(), queue_delete() and queue_requeue(); cbs->due runs
 * after <done> when entries became due. */
typedef void	(*qindex_done_cb)(const char *id, int err, void *arg);
int		 qindex_set_held(struct qindex *, const char *id, bool held,
		    qindex_done_cb done, void *arg);
int		 qindex_delete(struct qindex *, const char *id,
		    qindex_done_cb done, void *arg);
int		 qindex_requeue(struct qindex *, const char *id,
		    qindex_done_cb done, void *arg);

#endif /* QINDEX_H */
