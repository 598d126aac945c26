/*
 * pickup.h - the daemon's maildrop pickup: messages that
 * smartrelay-sendmail left in SPOOL/maildrop move into the spool.
 */
#ifndef PICKUP_H
#define PICKUP_H

struct conf;
struct event_base;
struct spool;
struct pickup;

/* Creates SPOOL/maildrop when missing and sets the modes: the spool
 * directory 0711, maildrop 01733.  Run as the daemon's user (the owner
 * of the spool).  Returns 0, or -1 after logging. */
int		 pickup_prepare(const char *spool);

/* Starts the pickup: watches SPOOL/maildrop with inotify, then moves
 * every file already there into <spool>.  Each message committed calls
 * <queued> with its id.  Rejected files go to SPOOL/corrupt/, logged.
 * <spool> is borrowed and must outlive the result; <conf> is held (a
 * reference, conf_ref()) until pickup_set_conf() or pickup_free().
 * Returns NULL after logging. */
struct pickup	*pickup_new(struct event_base *, const struct conf *,
		    struct spool *, void (*queued)(const char *id, void *arg),
		    void *arg);

/* SIGHUP: later pickups follow <conf> (a reference is taken). */
void		 pickup_set_conf(struct pickup *, const struct conf *);

/* Stops watching and frees.  NULL is a no-op. */
void		 pickup_free(struct pickup *);

#endif /* PICKUP_H */
