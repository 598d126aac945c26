/*
 * queue_int.h - what queue.c (messages, relays, attempts) and
 * queue_up.c (the upstreams: health, probes, quotas, TLS and OAuth
 * contexts) share.  Not for other modules: they use queue.h.
 */
#ifndef QUEUE_INT_H
#define QUEUE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "envelope.h"
#include "health.h"
#include "queue.h"

struct oauth;
struct quota;
struct relay;

struct queue_entry {
	TAILQ_ENTRY(queue_entry) all;
	TAILQ_ENTRY(queue_entry) ready;
	struct queue		*q;
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
};

/* One configured upstream: its health and its trial connections. */
struct queue_up {
	struct queue		*q;
	unsigned int		 idx;		/* in conf->upstream[] */
	struct health		 h;		/* state, reason, next probe */
	struct event		*probe;		/* fires at health_next() */
	unsigned int		 nrelays;
	struct tls_client	*tls_own;	/* when its ca_file differs */
	char			*tls_own_path;
	struct queue_quota	*qq;		/* its account's; NULL: none */
	struct oauth		*oauth;		/* auth = "xoauth2" only */
	int64_t			 pace_until;	/* near the limit: not before */
	struct event		*pace;
	bool			 pace_logged;	/* once per pacing episode */
};

/* One account's sending quota, shared by the upstream sections that log
 * in as the same username (Gmail counts per account, whatever port). */
struct queue_quota {
	char			*account;
	struct quota		*qt;
	bool			 seen;		/* limits set in this reload */
	unsigned int		 inflight_msgs;	/* dispatched, not done */
	unsigned long		 inflight_rcpts;
};

/* One upstream connection and what it carries. */
struct queue_relay {
	TAILQ_ENTRY(queue_relay) entry;
	struct queue		*q;
	struct queue_up		*u;
	struct relay		*r;
	bool			 idle;
	bool			 trial;		/* the probe, until logged in */
	bool			 quitting;	/* sent QUIT: takes no mail */
	struct queue_quota	*qheld;		/* counts this transaction */
	unsigned int		 qcount;	/* ... with these recipients */
	struct queue_entry	*cur;
	struct envelope		 env;
	enum envelope_rcpt_state *before;	/* states before the attempt */
};

struct queue {
	struct event_base	*base;
	struct evdns_base	*dns;
	const struct conf	*conf;
	struct spool		*spool;
	struct tls_client	*tls;
	TAILQ_HEAD(, queue_entry) entries;
	TAILQ_HEAD(, queue_entry) readyq;
	TAILQ_HEAD(, queue_relay) relays;
	unsigned long		 nentries;
	unsigned long		 nrestricted;	/* entries with min_up > 0 */
	unsigned int		 nrelays;
	struct queue_up		 ups[QUEUE_UPSTREAMS_MAX];
	unsigned int		 nups;
	struct queue_quota	 quotas[QUEUE_UPSTREAMS_MAX];
	unsigned int		 nquotas;
	struct event		*sweep;		/* next lifetime expiry */
	bool			 stopping;
	void			(*drained)(void *);
	void			*drained_arg;
	struct queue_stats	 stats;		/* counters only */
	void			(*observer)(void *);
	void			*observer_arg;
	bool			 in_done;	/* inside a relay's done() */
};

/* queue.c */

/* Hands ready entries to idle relays and opens connections. */
void		 queue_run(struct queue *);

/* Tells the observer that contents or states changed. */
void		 queue_changed(struct queue *);

/* Opens one connection to <u>; <trial>: it is <u>'s probe. */
void		 queue_start_relay(struct queue_up *u, bool trial);

/* queue_up.c */

/* The configuration of upstream <u>. */
const struct conf_upstream *queue_cu(const struct queue_up *u);

/* The first upstream, from index <from> on, that is delivering, or
 * NULL: where mail goes now. */
struct queue_up	*queue_target(struct queue *, unsigned int from);

/* Pauses <u> (health_pause()), logging real changes and arming its
 * probe timer. */
void		 queue_up_pause(struct queue_up *u, enum health_state,
		    const char *reason, unsigned int delay, bool self_timed);

/* A connection to <u> ended before logging in (health_conn_failed()). */
void		 queue_up_failed(struct queue_up *u, enum health_state,
		    const char *reason, bool trial);

/* A connection to <u> logged in (health_login_ok()).  Returns true if
 * that ended a pause: <u> takes its mail back. */
bool		 queue_up_logged_in(struct queue_up *u, bool trial);

/* An admin action or a network change: a paused <u> probes now. */
void		 queue_up_probe_now(struct queue_up *u);

/* Credentials configured and readable?  If not, <u> waits for them. */
bool		 queue_have_credentials(struct queue_up *u);

/* Timer callbacks (arg: the struct queue_up).  The probe opens one
 * trial connection whether or not mail waits. */
void		 queue_probe_cb(evutil_socket_t, short, void *);
void		 queue_pace_cb(evutil_socket_t, short, void *);

/* May <u> carry <env> now by its account's quota?  If not it pauses or
 * paces, and the caller keeps the message for later. */
bool		 queue_quota_allows(struct queue_up *u,
		    const struct envelope *env);

/* Takes the upstream list of q->conf (at start and on reload). */
void		 queue_set_ups(struct queue *);

#endif /* QUEUE_INT_H */
