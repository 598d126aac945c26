/*
 * session.h - the server side of SMTP, one session per client.
 *
 * A session reads commands and message lines from its bufferevent,
 * answers them (pipelined input is honoured), streams DATA into the
 * spool and answers 250 only after the spool reports the commit.  It
 * knows nothing of the relay: the two meet only at the spool.  STARTTLS
 * (session_tls.c) and AUTH (session_auth.c) are offered once main.c sets
 * ctx->tls and ctx->users.
 */
#ifndef SESSION_H
#define SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>
#include <sys/socket.h>

struct bufferevent;
struct event_base;
struct conf;
struct spool;
struct session;
struct tls_server;
struct users;

/* What all sessions share.  Owned by main.c, which fills the first
 * fields; the session module maintains the list and count. */
struct session_ctx {
	struct event_base	*base;
	const struct conf	*conf;
	struct spool		*spool;
	/* Inbound TLS (STARTTLS offered, listen_tls served) and AUTH
	 * (offered over TLS or on a plaintext-allowed listener); NULL when
	 * not configured.  main.c replaces them on reload: sessions read
	 * them when needed and keep no copy. */
	struct tls_server	*tls;
	const struct users	*users;
	/* Runs the password checks off the loop; NULL: on the loop. */
	struct authcheck	*authcheck;
	/* Told about each committed message (the queue's "new mail"
	 * hook); may be NULL. */
	void			(*committed)(const char *id, void *arg);
	void			*committed_arg;
	/* Called when the last session closed after session_stop_all(). */
	void			(*drained)(void *arg);
	void			*drained_arg;

	TAILQ_HEAD(, session)	 sessions;
	unsigned int		 nsessions;
	bool			 stopping;
	unsigned long		 accepted;	/* messages queued, all time */
	/* Connections turned away at accept, by reason (all time). */
	unsigned long		 refused_not_allowed;
	unsigned long		 refused_max_clients;
	unsigned long		 refused_max_per_ip;
	unsigned long		 refused_early_talker;
	unsigned long		 refused_stopping;
};

/* Prepares <ctx>: empty session list.  The caller sets the callbacks. */
void		session_ctx_init(struct session_ctx *ctx);

/* session_new() flags, from the listener the client came in on. */
#define SESSION_F_TLS		0x1	/* implicit TLS: handshake first */
#define SESSION_F_AUTH_PLAIN	0x2	/* AUTH allowed without TLS
					 * (a loopback auth.plaintext one) */

/* Starts a session on connected socket <fd> (non-blocking, owned by the
 * session from now on) from peer <sa>.  Sends the greeting, after the
 * TLS handshake with SESSION_F_TLS (which needs ctx->tls).  The policy
 * of the client's network (conf_network_find()) applies for the whole
 * session.  Returns 0, or -1 after closing <fd>. */
int		session_new(struct session_ctx *ctx, int fd,
		    const struct sockaddr *sa, socklen_t salen,
		    unsigned int flags);

/* As session_new() without SESSION_F_TLS, on <bev> (which the session
 * owns from now on) instead of a socket: the unit tests drive sessions
 * through one end of a bufferevent_pair.  STARTTLS needs a socket. */
void		session_new_bev(struct session_ctx *ctx,
		    struct bufferevent *bev, const struct sockaddr *sa,
		    socklen_t salen, unsigned int flags);

/* Number of open sessions whose peer address equals that of <sa>. */
unsigned int	session_count_from(const struct session_ctx *ctx,
		    const struct sockaddr *sa);

/* Graceful stop: sessions waiting for a commit get their answer first;
 * all others are told 421 and closed.  ctx->drained runs once none is
 * left (possibly before this returns). */
void		session_stop_all(struct session_ctx *ctx);

/* Closes every session at once, without replies (final teardown). */
void		session_free_all(struct session_ctx *ctx);

#endif /* SESSION_H */
