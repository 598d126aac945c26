/*
 * relay_auth.h - AUTH to the smarthost, for one connection: PLAIN and
 * LOGIN with the password file (re-read for every connection), XOAUTH2
 * with an access token from the upstream's OAuth token source
 * (refreshed once on a 535, as Gmail revokes tokens early).
 *
 * The exchange itself is lib/saslstep.c; this picks the mechanism from
 * EHLO, gathers the credentials, and says what each reply means.  The
 * connection (relay.c) sends the lines, keeps the states and timeouts,
 * and starts AUTH only on a verified TLS connection.  Credentials are
 * wiped once sent and never logged.
 */
#ifndef RELAY_AUTH_H
#define RELAY_AUTH_H

#include "relay.h"

struct conf_upstream;
struct oauth;
struct relay_auth;

/* What the connection does next. */
enum relay_auth_next {
	RELAY_AUTH_SENT,	/* a line went out: wait for its reply */
	RELAY_AUTH_TOKEN,	/* waiting for an access token: resume()
				 * comes later, from the loop */
	RELAY_AUTH_OK,		/* authenticated */
	RELAY_AUTH_FAIL,	/* the connection fails: relay_auth_failure() */
};

struct relay_auth_conn {
	const char	*peer;		/* for the log, borrowed */
	/* Sends one line; <what> stands for it in debug logs. */
	void	(*cmd)(void *arg, const char *what, const char *line);
	/* After RELAY_AUTH_TOKEN: the token came (SENT) or not (FAIL).
	 * The last thing the token callback does. */
	void	(*resume)(void *arg, enum relay_auth_next next);
	void	*arg;
};

/* For <up> (borrowed for the object's life).  Never NULL. */
struct relay_auth *relay_auth_new(const struct conf_upstream *up,
		    const struct relay_auth_conn *conn);

/* Cancels a pending token request, wipes the credentials.  NULL is a
 * no-op. */
void		 relay_auth_free(struct relay_auth *);

/* The XOAUTH2 token source (borrowed); without one XOAUTH2 fails. */
void		 relay_auth_set_oauth(struct relay_auth *, struct oauth *);

/* A new EHLO: forget the mechanisms offered before. */
void		 relay_auth_reset(struct relay_auth *);

/* The argument of EHLO's AUTH keyword: the first one that offers a
 * usable mechanism decides (the configured one, or PLAIN else LOGIN
 * for auth = "auto"). */
void		 relay_auth_offered(struct relay_auth *, const char *mechs);

/* Starts AUTH with the mechanism the server offered. */
enum relay_auth_next relay_auth_start(struct relay_auth *);

/* A reply (<code>, whole text <reply>) to what AUTH sent. */
enum relay_auth_next relay_auth_reply(struct relay_auth *, int code,
		    const char *reply);

/* After FAIL: what the connection fails with (valid until the next
 * call). */
enum relay_status relay_auth_failure(const struct relay_auth *,
		    enum relay_why *why, const char **reason);

#endif /* RELAY_AUTH_H */
