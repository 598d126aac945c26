/*
 * session_tls.h - the server side of one TLS handshake: implicit TLS
 * (listen_tls) before the greeting, or STARTTLS (RFC 3207) once its 220
 * is out.  It puts a TLS bufferevent on the client's socket, bounds the
 * handshake in time, logs how it ended and tells the session.
 *
 * The session owns the bufferevent it is given back (freeing it stops
 * the handshake) and keeps <conn> alive while the handshake runs.
 */
#ifndef SESSION_TLS_H
#define SESSION_TLS_H

#include <stdbool.h>
#include <stdint.h>

struct bufferevent;
struct event_base;
struct tls_server;

/* How a handshake ended. */
enum session_tls_end {
	SESSION_TLS_FAILED,	/* logged; no SMTP reply can be given */
	SESSION_TLS_OK,		/* the bufferevent carries SMTP now, with
				 * its callbacks the session's to set */
	SESSION_TLS_EARLY,	/* as OK, but with implicit TLS the client
				 * talked before the greeting (logged) */
};

struct session_tls_conn {
	unsigned int	 sid;		/* for the log */
	const char	*addr;		/* borrowed */
	void	(*done)(void *arg, enum session_tls_end end);
	void	*arg;
};

/* The reply to "STARTTLS <args>" when it cannot start (a client error)
 * given the server's <tls> context (NULL: none), whether TLS is
 * <active> already and whether it is <configured> (NULL <tls> then
 * means it failed to load); NULL when it may.  Static string. */
const char	*session_tls_refusal(const struct tls_server *tls,
		    const char *args, bool active, bool configured);

/* Implicit TLS: starts the handshake on socket <fd>, for at most
 * <secs> seconds and never more than 30.  Returns the TLS bufferevent,
 * which owns <fd>; NULL after logging, <fd> then still the caller's. */
struct bufferevent *session_tls_wrap(struct tls_server *, struct event_base *,
		    int fd, uint64_t secs, const struct session_tls_conn *);

/* STARTTLS: as session_tls_wrap() on a duplicate of the socket of the
 * plaintext *<bevp>, which is freed with everything it buffered and
 * replaced by the TLS one.  Returns 0, or -1 after logging with *<bevp>
 * unchanged and *<reason> the word for the close ("error", "tls"). */
int		 session_tls_starttls(struct tls_server *,
		    struct event_base *, struct bufferevent **bevp,
		    uint64_t secs, const struct session_tls_conn *,
		    const char **reason);

#endif /* SESSION_TLS_H */
