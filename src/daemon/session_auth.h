/*
 * session_auth.h - the server side of AUTH (RFC 4954, mechanisms PLAIN
 * and LOGIN) for one session: drives the step function of
 * lib/saslstep.c, checks the password (on the check worker when there
 * is one), logs the outcome and answers through the session.
 *
 * The session keeps the policy (when AUTH is offered), the states and
 * the reading of response lines.  A failed attempt counts as a client
 * error.  Credentials are never logged and are wiped after use.
 */
#ifndef SESSION_AUTH_H
#define SESSION_AUTH_H

#include <stdbool.h>

struct authcheck;
struct evbuffer;
struct session_auth;
struct users;

/* What the session does next. */
enum session_auth_next {
	SESSION_AUTH_DONE,	/* the exchange is over (answered) */
	SESSION_AUTH_MORE,	/* a 334 went out: feed the next line */
	SESSION_AUTH_VERIFY,	/* the worker checks the password: stop
				 * reading until checked() */
	SESSION_AUTH_REFUSED,	/* AUTH refused before any exchange
				 * (answered, counted as an error) */
};

struct session_auth_conn {
	unsigned int	 sid;		/* for the log */
	const char	*addr;		/* borrowed */
	/* Sends one reply line (without CRLF). */
	void	(*reply)(void *arg, const char *line);
	/* Counts a client error. */
	void	(*error)(void *arg);
	/* After VERIFY: the worker answered <ok>; the session calls
	 * session_auth_checked() unless it went away meanwhile. */
	void	(*checked)(void *arg, bool ok);
	void	*arg;
};

/* Never NULL. */
struct session_auth *session_auth_new(const struct session_auth_conn *);
void		 session_auth_free(struct session_auth *);

/* "AUTH mechanism [initial-response]": checks against <users>, on <ac>
 * when not NULL.  Refused with 502 when <users> is NULL (no accounts),
 * 538 unless <offered> (the session's policy: TLS, or plaintext
 * allowed) and 503 once authenticated. */
enum session_auth_next session_auth_start(struct session_auth *,
		    const char *args, const struct users *users,
		    bool offered, struct authcheck *ac);

/* After MORE: takes one response line from <in> (a line over the
 * limit of RFC 4954 section 4 is refused) and says in *<next> what
 * follows.  Returns false when no complete line is buffered.  <users>
 * NULL (a reload removed the accounts meanwhile) answers 454 at the
 * check. */
bool		 session_auth_input(struct session_auth *,
		    struct evbuffer *in, const struct users *users,
		    struct authcheck *ac, enum session_auth_next *next);

/* The worker's answer (after VERIFY): answers 235 or 535. */
void		 session_auth_checked(struct session_auth *, bool ok);

/* True once authenticated. */
bool		 session_auth_is_done(const struct session_auth *);

/* Forgets the account and any exchange (STARTTLS). */
void		 session_auth_reset(struct session_auth *);

#endif /* SESSION_AUTH_H */
