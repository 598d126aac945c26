/*
 * relay.h - the client side of SMTP to the smarthost: one relay object
 * is one upstream connection.
 *
 * It resolves and connects without blocking the loop, to every address of
 * the host in turn (dial.h: RFC 8305; a TLS, greeting, EHLO or STARTTLS
 * failure moves on to the next address), does TLS (implicit,
 * or EHLO + STARTTLS + EHLO; never a plaintext fallback), authenticates
 * (PLAIN or LOGIN, password re-read from its file for every connection;
 * or XOAUTH2 with a token from oauth.h, refreshed once on a 535),
 * then runs transactions for the queue one message at a time, several
 * per connection, with PIPELINING when offered.  It never touches the
 * spool's envelopes on disk: the queue hands it an envelope, the relay
 * fills in each recipient's result, and the queue decides what to keep.
 */
#ifndef RELAY_H
#define RELAY_H

#include <stdbool.h>
#include <stddef.h>

struct bufferevent;
struct conf;
struct conf_upstream;
struct envelope;
struct event_base;
struct evdns_base;
struct oauth;
struct tls_client;
struct relay;

/* Why a connection or a transaction ended the way it did. */
enum relay_status {
	RELAY_OK,		/* transaction ran: see each recipient */
	RELAY_PERMFAIL,		/* 5xx: only from relay_classify()
				 * (relay_reply.h) */
	RELAY_TEMPFAIL,		/* this message: 4xx to MAIL/DATA, timeout or
				 * reset mid-transaction: retry it later */
	RELAY_UNAVAILABLE,	/* DNS, connect, 421/5xx greeting, TLS or
				 * certificate failure, no STARTTLS: the
				 * whole queue waits */
	RELAY_AUTH_FAILED,	/* 535/534/530 to AUTH, no usable mechanism,
				 * unreadable password: the queue pauses */
	RELAY_QUOTA,		/* Gmail's 550 5.4.5 / 450 4.2.1: pause */
	RELAY_IDLE,		/* closed after the idle time (not an error) */
};

/* How far a connection got when it ended. */
enum relay_stage {
	RELAY_STAGE_CONNECT,	/* DNS and TCP */
	RELAY_STAGE_TLS,	/* handshake and certificate */
	RELAY_STAGE_SMTP,	/* greeting, EHLO, STARTTLS */
	RELAY_STAGE_AUTH,	/* token and login */
	RELAY_STAGE_TXN,	/* carrying a message */
	RELAY_STAGE_IDLE,	/* logged in, nothing in flight */
};

/* What went wrong, as a code: the log's wording comes with it, and
 * smartrelayctl test's advice is chosen by it (never by the wording). */
enum relay_why {
	RELAY_WHY_NONE,		/* idle close, or a transaction's status */
	RELAY_WHY_DNS,		/* the name does not resolve */
	RELAY_WHY_REFUSED,	/* connection refused */
	RELAY_WHY_TIMEOUT,	/* no answer */
	RELAY_WHY_NETWORK,	/* other network errors (unreachable, ...) */
	RELAY_WHY_TLS,		/* the TLS handshake failed otherwise */
	RELAY_WHY_TLS_PLAIN,	/* the port does not speak TLS at once */
	RELAY_WHY_CERT_NAME,	/* the certificate is for another name */
	RELAY_WHY_CERT_IP,	/* ... or does not name this address */
	RELAY_WHY_CERT,		/* not trusted, expired, ... */
	RELAY_WHY_NO_STARTTLS,	/* plaintext only: refused */
	RELAY_WHY_GREETING,	/* 4xx/5xx greeting */
	RELAY_WHY_PROTOCOL,	/* malformed or unexpected replies */
	RELAY_WHY_CLOSED,	/* the server closed or reset the connection */
	RELAY_WHY_LOCAL,	/* our side: memory, TLS set-up, spool file */
	RELAY_WHY_AUTH_REJECTED, /* 535: username or password */
	RELAY_WHY_AUTH_BLOCKED,	/* 534: the provider blocked the sign-in */
	RELAY_WHY_AUTH_NEEDS_TLS, /* 530: STARTTLS first */
	RELAY_WHY_AUTH_NO_MECH,	/* no usable AUTH mechanism offered */
	RELAY_WHY_AUTH_FAILED,	/* AUTH refused otherwise */
	RELAY_WHY_NO_USERNAME,	/* upstream.username is not set */
	RELAY_WHY_PASSWORD,	/* the password file cannot be used */
	RELAY_WHY_NO_XOAUTH2,	/* XOAUTH2 not offered */
	RELAY_WHY_XOAUTH2_REFUSED, /* a fresh token refused */
	RELAY_WHY_TOKEN,	/* the token endpoint could not be used */
	RELAY_WHY_TOKEN_GRANT,	/* invalid_grant: consent again */
	RELAY_WHY_TOKEN_CLIENT,	/* the OAuth client was rejected */
	RELAY_WHY_OAUTH_CONF,	/* XOAUTH2 without an OAuth configuration */
};

/* Why a connection ended: given to closed(), borrowed for the call. */
struct relay_failure {
	enum relay_stage	 stage;
	enum relay_why		 why;
	const char		*reason;	/* plain words for the log */
};

struct relay_cbs {
	/* Connected, TLS verified, authenticated and idle: hand it a
	 * message with relay_send(), or let it idle out. */
	void	(*ready)(struct relay *, void *arg);
	/* The transaction for <env> finished.  Per recipient: PENDING ones
	 * that got 250 are now SENT, 5xx are FAILED (dsn and reply set),
	 * 4xx stay PENDING with the reply recorded.  With RELAY_TEMPFAIL
	 * or RELAY_QUOTA, <reply> is the reason for the whole message.
	 * The relay forgets <env> before calling this. */
	void	(*done)(struct relay *, struct envelope *env,
		    enum relay_status status, const char *reply, void *arg);
	/* The connection is gone (after any done()); <reason> says why in
	 * plain words.  The relay is freed right after this returns. */
	void	(*closed)(struct relay *, enum relay_status status,
		    const struct relay_failure *f, void *arg);
};

/* Starts connecting to <up>, one of conf->upstream[] (both borrowed
 * for the relay's life).  Callbacks come later, from the loop, never
 * from inside relay_new().  Returns NULL only if the connection cannot
 * even be started (then nothing is called). */
struct relay	*relay_new(struct event_base *, struct evdns_base *,
		    const struct conf *, const struct conf_upstream *,
		    struct tls_client *, const struct relay_cbs *, void *arg);

/* As relay_new(), on <bev>, already connected in plaintext (the relay
 * owns it from now on), instead of dialling up->host: the unit tests
 * drive a relay through one end of a bufferevent_pair.  With implicit
 * TLS a failure to set it up may call closed() before this returns. */
struct relay	*relay_new_bev(struct event_base *, const struct conf *,
		    const struct conf_upstream *, struct tls_client *,
		    const struct relay_cbs *, void *arg,
		    struct bufferevent *bev);

/* Gives the relay the token source for auth = "xoauth2" (borrowed for
 * the relay's life).  Call right after relay_new(), before the loop
 * runs again; without one, XOAUTH2 fails with RELAY_AUTH_FAILED. */
void		 relay_set_oauth(struct relay *, struct oauth *);

/* Sends <env> (borrowed until done()) whose data is at <data_path>.
 * Only PENDING recipients are sent, at most 100 per transaction (more
 * go in further transactions on the same connection).  A message over
 * the upstream's advertised SIZE fails at once (5.3.4) without being
 * sent.  With from.rewrite = account, MAIL FROM is the upstream's
 * account (the null sender stays null) and the header block goes out
 * rewritten by rewrite_from(); SIZE= counts what is sent.  A message
 * whose envelope says "reencode" goes re-encoded (reencode.h, mime.h);
 * one that cannot be made conformant without changing what its reader
 * sees fails at once (554 5.6.0, with the reason) without being sent.
 * Only valid between ready() and the next callback. */
void		 relay_send(struct relay *, struct envelope *env,
		    const char *data_path);

/* Ends an idle connection politely: QUIT, then closed() with RELAY_IDLE
 * from the loop.  Only acts between ready() or done() and the next
 * relay_send(); otherwise a no-op. */
void		 relay_quit(struct relay *);

/* Closes at once.  No callback is called afterwards, closed() included.
 * May be called from inside a callback (the memory goes when it
 * returns).  NULL is a no-op.  A transaction in flight is abandoned:
 * its envelope was not changed on disk, so the message is retried. */
void		 relay_free(struct relay *);

/* "smtp.gmail.com[142.250.1.108]:587" for log lines. */
const char	*relay_peer(const struct relay *);

#endif /* RELAY_H */
