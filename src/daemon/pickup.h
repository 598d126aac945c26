/*
 * pickup.h - the daemon's maildrop pickup: messages that
 * smartrelay-sendmail left in SPOOL/maildrop move into the spool.
 */
#ifndef PICKUP_H
#define PICKUP_H

struct conf;
struct event_base;
struct spool;
struct worker;
struct pickup;

/* Creates SPOOL/maildrop when missing and sets the modes: the spool
 * directory 0711, maildrop 01733.  Run as the daemon's user (the owner
 * of the spool).  Returns 0, or -1 after logging. */
int		 pickup_prepare(const char *spool);

/* Starts the pickup: watches SPOOL/maildrop with inotify, then moves
 * every file already there into <spool>, copying on <worker>.  Each
 * message committed (on stable storage) calls <queued> with its id; once
 * the files there at the start are done, <ready> runs once (later, from
 * the loop, also when there were none).  Rejected files go to
 * SPOOL/corrupt/, logged.  <spool> and <worker> are borrowed and must
 * outlive the result; <conf> is held (a reference, conf_ref()) until
 * pickup_set_conf() or pickup_free().  Returns NULL after logging. */
struct pickup	*pickup_new(struct event_base *, const struct conf *,
		    struct spool *, struct worker *,
		    void (*queued)(const char *id, void *arg),
		    void (*ready)(void *arg), void *arg);

/* SIGHUP: later pickups follow <conf> (a reference is taken). */
void		 pickup_set_conf(struct pickup *, const struct conf *);

/* Stops watching and frees; a file being picked up stays in maildrop/
 * unless its commit has started (worker_free() finishes that).  NULL is
 * a no-op. */
void		 pickup_free(struct pickup *);

#endif /* PICKUP_H */
