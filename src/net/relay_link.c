/*
 * relay_link.c - a relay's connection to the smarthost (relay_link.h).
 *
 * Owns the dial, the bufferevent (and so the socket) and the reply
 * being read.  Invariants: nothing received in plaintext is read as if
 * it came over TLS (the input is drained before the handshake), and a
 * handshake that ends without a verified peer is a failure.  The next
 * address always starts over from TCP, never from plaintext.
 */
#include "config.h"

#include "relay_link.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cidr.h"
#include "conf.h"
#include "dial.h"
#include "line.h"
#include "log.h"
#include "relay_reply.h"
#include "relay_txn.h"
#include "tls.h"
#include "util.h"

#define RELAY_CONNECT_TIMEOUT	30	/* seconds, resolution, each address's
					 * connect, and the TLS handshake */

struct relay_link {
	struct event_base	*base;
	struct evdns_base	*dns;
	const struct conf_upstream *up;	/* one of conf->upstream[] */
	struct tls_client	*tls;
	struct relay_link_cbs	 cbs;
	void			*arg;
	struct dial		*dial;		/* until relay_link_stay(): the
						 * addresses left to try */
	struct bufferevent	*bev;		/* NULL until connected */
	bool			 in_tls;
	bool			 handshake;	/* TLS handshake under way */
	char			 peer[300];

	/* The reply being read. */
	struct relay_reply	 rr;
};

static void	relay_link_read_cb(struct bufferevent *, void *);
static void	relay_link_write_cb(struct bufferevent *, void *);
static void	relay_link_event_cb(struct bufferevent *, short, void *);

struct relay_link *
relay_link_new(struct event_base *base, struct evdns_base *dns,
    const struct conf_upstream *up, struct tls_client *tls,
    const struct relay_link_cbs *cbs, void *arg)
{
	struct relay_link	*l;

	l = xcalloc(1, sizeof(*l));
	l->base = base;
	l->dns = dns;
	l->up = up;
	/* Held for the link's whole life: a reload may replace it while
	 * this connection still runs (STARTTLS comes later). */
	l->tls = tls_client_ref(tls);
	l->cbs = *cbs;
	l->arg = arg;
	snprintf(l->peer, sizeof(l->peer), "%s:%u", up->host, up->port);
	relay_reply_init(&l->rr);
	return l;
}

void
relay_link_free(struct relay_link *l)
{
	if (l == NULL)
		return;
	dial_free(l->dial);
	if (l->bev != NULL)
		bufferevent_free(l->bev);
	tls_client_free(l->tls);
	free(l);
}

/* The socket events go to the link, which passes them on. */
static void
relay_link_watch(struct relay_link *l)
{
	bufferevent_setcb(l->bev, relay_link_read_cb, relay_link_write_cb,
	    relay_link_event_cb, l);
	bufferevent_setwatermark(l->bev, EV_WRITE, RELAY_OUT_LOW, 0);
	bufferevent_enable(l->bev, EV_READ | EV_WRITE);
}

void
relay_link_attach(struct relay_link *l, struct bufferevent *bev)
{
	l->bev = bev;
	relay_link_watch(l);
}

/* The dial is over: a socket connected to one of the host's addresses
 * (remembered as "host[ip]:port"), or why none could be reached. */
static void
relay_link_dial_cb(struct dial *d, int fd, const struct sockaddr *sa,
    socklen_t salen, int err, const char *error, void *arg)
{
	struct relay_link	*l = arg;
	char			 addr[64];

	(void)d;
	(void)salen;
	if (fd == -1) {
		l->cbs.failed(l->arg, err == DIAL_EDNS ? RELAY_WHY_DNS :
		    err == ECONNREFUSED ? RELAY_WHY_REFUSED :
		    err == ETIMEDOUT ? RELAY_WHY_TIMEOUT : RELAY_WHY_NETWORK,
		    error);
		return;
	}
	l->bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (l->bev == NULL) {
		close(fd);
		l->cbs.failed(l->arg, RELAY_WHY_LOCAL,
		    "cannot set up a connection");
		return;
	}
	snprintf(l->peer, sizeof(l->peer), "%s[%s]:%u", l->up->host,
	    cidr_addr_str(sa, addr, sizeof(addr)), l->up->port);
	relay_link_watch(l);
	l->cbs.connected(l->arg);
}

int
relay_link_dial(struct relay_link *l)
{
	static const int	 family[] = {
		[CONF_FAMILY_ANY] = AF_UNSPEC, [CONF_FAMILY_IPV4] = AF_INET,
		[CONF_FAMILY_IPV6] = AF_INET6,
	};

	/* Resolution runs on evdns (the loop never blocks on DNS), and
	 * every address is tried, RFC 8305 style.  dial never calls back
	 * from inside dial_new(), so neither do we from here. */
	l->dial = dial_new(l->base, l->dns, l->up->host, l->up->port,
	    family[l->up->address_family], RELAY_CONNECT_TIMEOUT,
	    relay_link_dial_cb, l);
	return l->dial == NULL ? -1 : 0;
}

int
relay_link_next(struct relay_link *l, const char *why)
{
	if (l->dial == NULL)
		return -1;
	/* Safe inside its own callback: libevent holds a reference until
	 * the callback returns, and relay.c stops at a link not open. */
	bufferevent_free(l->bev);
	l->bev = NULL;
	if (dial_next(l->dial, why) == -1)
		return -1;
	/* What a new connection must not inherit from the previous one. */
	l->in_tls = false;
	l->handshake = false;
	relay_reply_init(&l->rr);
	snprintf(l->peer, sizeof(l->peer), "%s:%u", l->up->host,
	    l->up->port);
	return 0;
}

void
relay_link_stay(struct relay_link *l)
{
	dial_free(l->dial);
	l->dial = NULL;
}

int
relay_link_starttls(struct relay_link *l)
{
	struct bufferevent	*tlsbev;

	/* RFC 3207 / CVE-2011-0411: whatever the server sent along with
	 * its 220 must not be read as if it came over TLS. */
	evbuffer_drain(bufferevent_get_input(l->bev),
	    evbuffer_get_length(bufferevent_get_input(l->bev)));
	line_reader_init(&l->rr.reader, RELAY_REPLY_LINE_MAX);
	tlsbev = tls_client_wrap(l->tls, l->base, l->bev,
	    l->up->verify_name);
	if (tlsbev == NULL)
		return -1;
	l->bev = tlsbev;
	l->in_tls = true;
	l->handshake = true;
	relay_link_set_timeout(l, RELAY_CONNECT_TIMEOUT);
	relay_link_watch(l);
	return 0;
}

void
relay_link_cmd(struct relay_link *l, const char *what, const char *fmt, ...)
{
	struct evbuffer	*out = bufferevent_get_output(l->bev);
	va_list		 ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	if (log_is_debug())
		log_debug("relay send peer=%s %s", l->peer, what);
}

void
relay_link_set_timeout(struct relay_link *l, int secs)
{
	struct timeval	tv = { secs, 0 };

	bufferevent_set_timeouts(l->bev, &tv, &tv);
}

int
relay_link_read(struct relay_link *l,
    void (*more)(void *arg, const char *text), void *arg,
    const char **error)
{
	return relay_reply_read(&l->rr, bufferevent_get_input(l->bev), more,
	    arg, error);
}

int
relay_link_code(const struct relay_link *l)
{
	return l->rr.code;
}

const char *
relay_link_reply(const struct relay_link *l)
{
	return l->rr.reply;
}

struct evbuffer *
relay_link_output(struct relay_link *l)
{
	return bufferevent_get_output(l->bev);
}

bool
relay_link_is_open(const struct relay_link *l)
{
	return l->bev != NULL;
}

bool
relay_link_is_tls(const struct relay_link *l)
{
	return l->in_tls;
}

bool
relay_link_is_verified(struct relay_link *l)
{
	return l->in_tls && tls_is_verified(l->bev);
}

const char *
relay_link_peer(const struct relay_link *l)
{
	return l->peer;
}

static void
relay_link_read_cb(struct bufferevent *bev, void *arg)
{
	struct relay_link	*l = arg;

	(void)bev;
	l->cbs.readable(l->arg);
}

static void
relay_link_write_cb(struct bufferevent *bev, void *arg)
{
	struct relay_link	*l = arg;

	(void)bev;
	l->cbs.writable(l->arg);
}

/* What a failed handshake means (tls_error_string()). */
static enum relay_why
relay_link_tls_why(enum tls_failure k)
{
	switch (k) {
	case TLS_FAIL_CERT_NAME:
		return RELAY_WHY_CERT_NAME;
	case TLS_FAIL_CERT_IP:
		return RELAY_WHY_CERT_IP;
	case TLS_FAIL_CERT:
		return RELAY_WHY_CERT;
	case TLS_FAIL_NOT_TLS:
		return RELAY_WHY_TLS_PLAIN;
	case TLS_FAIL_OTHER:
		break;
	}
	return RELAY_WHY_TLS;
}

/* The TLS handshake finished: belt and braces on verification. */
static void
relay_link_secured(struct relay_link *l)
{
	char	desc[128];

	if (!l->handshake)
		fatalx("relay: connected outside a TLS handshake");
	l->handshake = false;
	if (!tls_is_verified(l->bev)) {
		l->cbs.failed(l->arg, RELAY_WHY_CERT,
		    "TLS peer not verified");
		return;
	}
	log_debug("relay tls peer=%s %s", l->peer,
	    tls_describe(l->bev, desc, sizeof(desc)));
	l->cbs.secured(l->arg);
}

/* The connection failed or closed: in the handshake, say why TLS
 * failed; otherwise say how it ended. */
static void
relay_link_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct relay_link	*l = arg;
	char			 why[512];
	char			 reason[sizeof(why) + sizeof(l->peer) + 32];
	enum tls_failure	 kind;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		relay_link_secured(l);
		return;
	}
	if (l->handshake) {
		if (what & BEV_EVENT_TIMEOUT) {
			snprintf(reason, sizeof(reason),
			    "TLS with %s failed: timeout", l->peer);
			l->cbs.failed(l->arg, RELAY_WHY_TIMEOUT, reason);
		} else {
			tls_error_string(l->bev, why, sizeof(why), &kind);
			snprintf(reason, sizeof(reason),
			    "TLS with %s failed: %s", l->peer, why);
			l->cbs.failed(l->arg, relay_link_tls_why(kind),
			    reason);
		}
		return;
	}
	l->cbs.broken(l->arg, (what & BEV_EVENT_TIMEOUT) ?
	    RELAY_WHY_TIMEOUT : RELAY_WHY_CLOSED,
	    (what & BEV_EVENT_TIMEOUT) ? "timeout" :
	    (what & BEV_EVENT_EOF) ? "connection closed by server" :
	    "connection error");
}
