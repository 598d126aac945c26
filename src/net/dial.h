/*
 * dial.h - one outgoing TCP connection to host:port over every address
 * the name resolves to, as RFC 8305 (Happy Eyeballs v2) describes.
 *
 * The name is resolved with evdns (never blocking the loop), the
 * addresses are tried IPv6 and IPv4 interleaved, the next one starting
 * DIAL_STAGGER_MS after the previous while that one is still pending,
 * and the first to complete the TCP handshake wins; the others are
 * cancelled.  A winner that proves unusable later (TLS, greeting) is
 * handed back with dial_next(), which goes on with the addresses not
 * yet tried.  No TLS and no SMTP here: the caller does those.
 */
#ifndef DIAL_H
#define DIAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct evdns_base;
struct dial;

#define DIAL_STAGGER_MS		250	/* RFC 8305 5: Connection Attempt
					 * Delay, recommended 250 ms */
#define DIAL_ADDR_MAX		16	/* addresses kept per name */
#define DIAL_ERROR_MAX		512	/* a failure summary, truncated */
#define DIAL_EDNS		(-1)	/* <err>: the name did not resolve */

/*
 * The outcome of dial_new() or dial_next().  On success <fd> >= 0 is a
 * connected non-blocking socket (close-on-exec) that the callee now
 * owns, and <sa>/<salen> its peer (borrowed for the call).  On failure
 * <fd> is -1, <sa> NULL, and <error> says why in plain words: "cannot
 * resolve HOST: ..." or "cannot connect to HOST:PORT: [ADDR]: reason,
 * [ADDR]: reason" (the address is left out when HOST is that one
 * address), and <err> is DIAL_EDNS when the name did not resolve, else
 * the errno of the last address tried (ECONNREFUSED, ETIMEDOUT, ...).
 * Never called from inside dial_new() or dial_next(); the
 * callee may call dial_free() or dial_next() from it.
 */
typedef void	(*dial_cb)(struct dial *, int fd,
		    const struct sockaddr *sa, socklen_t salen, int err,
		    const char *error, void *arg);

/*
 * Starts resolving <host> (borrowed: it is copied) and connecting to
 * <port>.  <family> is AF_UNSPEC, AF_INET or AF_INET6 (only addresses of
 * that family are used).  Each address gets <timeout_secs> to complete
 * the handshake, and the resolution as long.  Without <dns> (no resolver
 * configured) only a numeric <host> works.  Returns NULL only when the
 * attempt cannot even start (then <cb> is never called); otherwise <cb>
 * is called exactly once, unless dial_free() comes first.
 */
struct dial	*dial_new(struct event_base *, struct evdns_base *dns,
		    const char *host, uint16_t port, int family,
		    int timeout_secs, dial_cb cb, void *arg);

/*
 * After the socket dial_cb() gave turned out unusable (TLS handshake,
 * certificate, greeting, EHLO or STARTTLS failed): logs <why> for that
 * address and goes on with the addresses not yet tried, including those
 * whose attempts were cancelled when that socket won.  The caller has
 * already closed the socket.  Returns 0 when the callback will follow,
 * -1 when no address is left (then nothing is called).  Only valid
 * after a successful callback.
 */
int		 dial_next(struct dial *, const char *why);

/* Cancels the resolution and the attempts in flight; no callback is
 * called afterwards.  May be called from inside the callback.  NULL is
 * a no-op. */
void		 dial_free(struct dial *);

/*
 * RFC 8305 4: the order in which to try <n> addresses whose families
 * are <family>[i] (AF_INET6, AF_INET, ...).  Writes into <order> the
 * indices to try, first to last.  Within a family the given (resolver)
 * order is kept; the families alternate, IPv6 first when both are
 * present; addresses of a family that runs out first are followed by
 * the rest of the other.  Pure.
 */
void		 dial_order(const int *family, size_t n, size_t *order);

#endif /* DIAL_H */
