/*
 * upstream.h - the upstream sections as the queue sees them: where mail
 * can go now, and the connections that carry it.
 *
 * Each configured section (conf->upstream[], in failover order) is one
 * struct upstream: its relay connections (relay.h), its health
 * (health.h: delivering, or paused with exactly one probe under way),
 * its account's sending quota (account.h, shared by the sections that
 * log in as the same account), its probe and pacing timers, and the TLS
 * context or OAuth token source it needs of its own.  The list owns them
 * all and reports to its owner (the queue) only through the callbacks
 * given at creation.  It never touches a message in the spool: it
 * carries the envelopes the queue hands it and gives them back with
 * their results.
 */
#ifndef UPSTREAM_H
#define UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "health.h"
#include "quota.h"
#include "relay.h"

struct envelope;
struct event_base;
struct evdns_base;
struct tls_client;
struct upstream;		/* one section */
struct upstream_list;		/* all of them, in failover order */

#define UPSTREAM_MAX	CONF_UPSTREAM_MAX

/* What the list tells its owner, with the <arg> given at creation.
 * on_ready(), on_delivered() and on_closed() come from the loop, never
 * from inside a call into the list; on_state_change() and queued() may
 * come from inside one, and must not call back into the list. */
struct upstream_cbs {
	/* <u> may take a message now: a connection logged in or finished
	 * a transaction, pacing ended, or a pause ended without a login.
	 * Offer mail with upstream_send(). */
	void	(*on_ready)(struct upstream *u, void *arg);
	/* The transaction that upstream_send() started with <txn> ended:
	 * <env> carries each recipient's result (relay.h, done()),
	 * <reply> the reason for the whole message, <peer> where it went
	 * (both borrowed for the call).  <env> is the caller's again; the
	 * quota has counted what was sent. */
	void	(*on_delivered)(struct upstream *u, struct envelope *env,
		    enum relay_status status, const char *reply,
		    const char *peer, void *txn, void *arg);
	/* A connection of <u> is gone (failed, idled out, or finished its
	 * transaction while stopping), after any on_delivered(); what it
	 * means for <u>'s health is already applied. */
	void	(*on_closed)(struct upstream *u, void *arg);
	/* <u>'s state or reason changed (for status lines). */
	void	(*on_state_change)(struct upstream *u, void *arg);
	/* How many messages are queued: for the log lines of a pause. */
	unsigned long (*queued)(void *arg);
};

/* Creates the list for conf->upstream[] (all delivering, no connection
 * open).  <conf> and <tls> (the context for the first section's
 * ca_file) are borrowed until upstream_list_set_conf() replaces them;
 * <cbs> for the list's life. */
struct upstream_list *upstream_list_new(struct event_base *,
		    struct evdns_base *, const struct conf *,
		    struct tls_client *, const struct upstream_cbs *,
		    void *arg);

/* Closes every connection at once, abandoning transactions in flight
 * (no callback is called: the caller still owns their envelopes), and
 * saves the quota counters.  NULL is a no-op. */
void		 upstream_list_free(struct upstream_list *);

/* SIGHUP: later connections use <conf> and <tls>; open ones keep their
 * own references to the old ones.  States stay with positions, and
 * every paused section probes again now (credentials may have
 * appeared, an address changed). */
void		 upstream_list_set_conf(struct upstream_list *,
		    const struct conf *, struct tls_client *);

/* Graceful stop: close the connections that carry nothing now, open no
 * new one, probe no more.  A transaction in flight ends normally, then
 * its connection closes (on_delivered(), then on_closed()). */
void		 upstream_list_stop(struct upstream_list *);

/* The number of sections, and section <i> (0 .. count - 1). */
unsigned int	 upstream_list_count(const struct upstream_list *);
struct upstream	*upstream_list_get(struct upstream_list *,
		    unsigned int i);

/* The first section from position <from> on that is delivering, or
 * NULL: where mail goes now (failover). */
struct upstream	*upstream_list_target(struct upstream_list *,
		    unsigned int from);

/* HEALTH_OK while any section delivers; else the first one's state. */
enum health_state upstream_list_state(const struct upstream_list *);

/* Connections open (or opening), over all sections. */
unsigned int	 upstream_list_connections(const struct upstream_list *);

/* SIGUSR1 or an admin's flush: every paused section probes now. */
void		 upstream_list_probe_now(struct upstream_list *);

/* A link or default route came back: every unreachable section that
 * has no connection open probes now. */
void		 upstream_list_network_changed(struct upstream_list *);

/* <u>'s position in the failover order. */
unsigned int	 upstream_index(const struct upstream *);

/* <u>'s configuration (borrowed until the next reload). */
const struct conf_upstream *upstream_conf(const struct upstream *);

/* Not paused. */
bool		 upstream_is_delivering(const struct upstream *);

/* Near its account's limit, <u> spaces its sends out: none until its
 * pacing timer fires (then on_ready()). */
bool		 upstream_is_pacing(const struct upstream *);

/* Delivering, not pacing, and a logged-in connection is idle: an
 * upstream_send() now will not fail for want of a connection. */
bool		 upstream_can_take(const struct upstream *);

/* Connections that carry no message: connecting or idle. */
unsigned int	 upstream_waiting(const struct upstream *);

/* Mail waits for <u>: opens up to <more> connections while <u> is
 * delivering, within upstream.connections.  When the credentials are
 * missing <u> pauses instead, waiting for them. */
void		 upstream_connect(struct upstream *u, unsigned int more);

/* Credentials configured and readable?  If not, <u> pauses until they
 * are (logged once, with the reason). */
bool		 upstream_has_credentials(struct upstream *u);

/*
 * Sends <env> (its pending recipients; borrowed until on_delivered())
 * whose data is at <data_path> on an idle connection of <u>, and gives
 * <txn> back with the result.  Returns 0, or -1 when it cannot now: no
 * idle connection, or the account's quota says not yet (then <u> paces
 * or pauses, and says on_ready() when it may take mail again).  On -1
 * nothing was sent and nothing will be called for <txn>.
 */
int		 upstream_send(struct upstream *u, struct envelope *env,
		    const char *data_path, void *txn);

/* One section's state, for smartrelayctl stats and the metrics. */
struct upstream_stats {
	const char		*name;		/* borrowed */
	enum health_state	 state;
	const char		*reason;	/* borrowed; "" if ok */
	unsigned int		 connections;
	int64_t			 retry_at;	/* next probe (unix s), or 0 */
	bool			 probing;	/* a trial connection is open */
	bool			 has_quota;	/* quota is not "none" */
	struct quota_status	 quota;		/* its account's counters */
};
void		 upstream_stats(const struct upstream *,
		    struct upstream_stats *);

#endif /* UPSTREAM_H */
