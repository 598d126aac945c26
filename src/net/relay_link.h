/*
 * relay_link.h - a relay's connection to the smarthost, under its SMTP
 * state machine (relay.c): the dial to the host's addresses (dial.h),
 * going on to the next address when asked, the TLS wrap and the
 * certificate check (tls.h), command lines out, replies in
 * (relay_reply.h), timeouts.
 *
 * It knows no SMTP state: it says what happened through callbacks, and
 * relay.c decides what that means (stage, status, falling through).
 */
#ifndef RELAY_LINK_H
#define RELAY_LINK_H

#include <stdbool.h>

#include "relay.h"

struct bufferevent;
struct conf_upstream;
struct evbuffer;
struct event_base;
struct evdns_base;
struct relay_link;
struct tls_client;

/* What happened.  Each is the last thing the link's own libevent
 * callback does, so the owner may free the link from it. */
struct relay_link_cbs {
	/* relay_link_dial() reached an address, in plaintext. */
	void	(*connected)(void *arg);
	/* The TLS handshake is over and the peer verified. */
	void	(*secured)(void *arg);
	/* Input came: read it with relay_link_read(). */
	void	(*readable)(void *arg);
	/* The output drained below RELAY_OUT_LOW (relay_txn.h). */
	void	(*writable)(void *arg);
	/* No address could be reached, or TLS failed: <why>, and <reason>
	 * in plain words (borrowed for the call). */
	void	(*failed)(void *arg, enum relay_why why, const char *reason);
	/* Outside the handshake: a timeout (RELAY_WHY_TIMEOUT), or the
	 * connection ended (RELAY_WHY_CLOSED); <what> says which. */
	void	(*broken)(void *arg, enum relay_why why, const char *what);
};

/* A link to <up> (borrowed for the link's life; it holds a reference
 * to <tls>), not connected yet.  Never NULL. */
struct relay_link *relay_link_new(struct event_base *, struct evdns_base *,
		    const struct conf_upstream *up, struct tls_client *tls,
		    const struct relay_link_cbs *, void *arg);

/* Closes the connection, stops the dial.  No callback afterwards.
 * NULL is a no-op. */
void		 relay_link_free(struct relay_link *);

/* Starts resolving and connecting (every address, RFC 8305 style);
 * connected() or failed() comes later, from the loop.  Returns -1 if
 * the dial cannot even start (then nothing is called). */
int		 relay_link_dial(struct relay_link *);

/* Takes <bev>, already connected in plaintext, instead of dialling
 * (the unit tests' bufferevent_pair).  Calls nothing. */
void		 relay_link_attach(struct relay_link *, struct bufferevent *);

/* Gives up this address for the dial's next one, starting over from
 * TCP (connected() or failed() comes later).  Returns -1 when there is
 * none left, or after relay_link_stay(). */
int		 relay_link_next(struct relay_link *, const char *why);

/* From now on no other address is tried. */
void		 relay_link_stay(struct relay_link *);

/* Drops what was read in plaintext and starts the TLS handshake
 * (secured() or failed() comes later).  Returns -1 if TLS cannot be
 * set up (logged). */
int		 relay_link_starttls(struct relay_link *);

/* Sends one command line (CRLF added).  <what> replaces the line in
 * debug logs, so credentials never reach the log. */
void		 relay_link_cmd(struct relay_link *, const char *what,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The read and write timeout, in seconds. */
void		 relay_link_set_timeout(struct relay_link *, int secs);

/* Reads one complete reply (relay_reply_read(), <more> and <arg> as
 * there).  Returns 1 when one is ready (relay_link_code(),
 * relay_link_reply()), 0 when more input is needed, -1 on a malformed
 * reply, <*error> saying how. */
int		 relay_link_read(struct relay_link *,
		    void (*more)(void *arg, const char *text), void *arg,
		    const char **error);
int		 relay_link_code(const struct relay_link *);
/* "250 text; more text": valid until the next read. */
const char	*relay_link_reply(const struct relay_link *);

/* Where a transaction writes. */
struct evbuffer	*relay_link_output(struct relay_link *);

/* Connected (false between addresses). */
bool		 relay_link_is_open(const struct relay_link *);
/* TLS is set up (not necessarily finished). */
bool		 relay_link_is_tls(const struct relay_link *);
/* TLS is up and the peer's certificate verified. */
bool		 relay_link_is_verified(struct relay_link *);

/* "host[ip]:port", or "host:port" before connecting: a buffer that
 * lives as long as the link. */
const char	*relay_link_peer(const struct relay_link *);

#endif /* RELAY_LINK_H */
