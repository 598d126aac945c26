/*
 * dial.c - connect to host:port over every address, RFC 8305 style.
 *
 * States: resolving (evdns, bounded by the timeout), connecting (some
 * addresses pending, the stagger timer starting the next), won (the
 * caller holds a socket and may hand it back with dial_next()), done.
 * Invariants: the callback is called at most once per dial_new() or
 * dial_next(), never from inside them, and always as the last thing a
 * dial function does, so the callee may free the dial there.  A pending
 * evdns request holds a small dial_res that outlives dial_free(): evdns
 * calls back with EVUTIL_EAI_CANCEL some time after a cancel.
 */
#include "config.h"

#include "dial.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "cidr.h"
#include "log.h"
#include "util.h"

enum dial_addr_state {
	DIAL_A_UNTRIED,
	DIAL_A_PENDING,		/* connect() in progress */
	DIAL_A_FAILED,
	DIAL_A_WON,		/* the caller holds its socket */
};

/* One address and its attempt. */
struct dial_addr {
	struct dial		*d;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	enum dial_addr_state	 state;
	int			 fd;		/* while PENDING */
	struct event		*ev;		/* while PENDING: writable or
						 * timed out */
	char			 why[160];	/* FAILED: the reason */
};

enum dial_state {
	DIAL_S_RESOLVING,
	DIAL_S_CONNECTING,
	DIAL_S_WON,
	DIAL_S_DONE,		/* failed, or no address left */
};

/* The argument of a pending evdns request; it outlives the dial. */
struct dial_res {
	struct dial		*d;		/* NULL once cancelled */
};

struct dial {
	struct event_base	*base;
	struct evdns_base	*dns;
	char			*host;
	uint16_t		 port;
	int			 family;
	int			 timeout;	/* seconds, per address */
	dial_cb			 cb;
	void			*arg;
	enum dial_state		 state;
	bool			 in_call;	/* in dial_new(), dial_next() */
	struct dial_res		*res;		/* evdns request pending */
	struct evdns_getaddrinfo_request *req;
	struct event		*timer;		/* resolution timeout */
	struct event		*stagger;	/* starts the next address */
	struct event		*later;		/* failure found in_call */
	struct dial_addr	 addrs[DIAL_ADDR_MAX];	/* in dial order */
	size_t			 naddrs;
	char			 error[DIAL_ERROR_MAX];	/* resolution */
	int			 err;		/* DIAL_EDNS or the last errno */
};

static void	dial_start_next(struct dial *);

void
dial_order(const int *family, size_t n, size_t *order)
{
	size_t	i6 = 0, i4 = 0, k = 0;
	bool	six;

	/* Two cursors, one per family, each keeping the resolver order;
	 * "IPv4" here is every family that is not IPv6. */
	for (six = true; k < n; six = !six) {
		while (i6 < n && family[i6] != AF_INET6)
			i6++;
		while (i4 < n && family[i4] == AF_INET6)
			i4++;
		if (six && i6 < n)
			order[k++] = i6++;
		else if (!six && i4 < n)
			order[k++] = i4++;
	}
}

/* "host[addr]:port" for log lines. */
static const char *
dial_peer(const struct dial *d, const struct dial_addr *a, char *buf,
    size_t bufsz)
{
	char	addr[INET6_ADDRSTRLEN];

	snprintf(buf, bufsz, "%s[%s]:%u", d->host,
	    cidr_addr_str((const struct sockaddr *)&a->ss, addr,
	    sizeof(addr)), d->port);
	return buf;
}

/* Records why <a> failed, and says so in the log. */
static void
dial_addr_failed(struct dial *d, struct dial_addr *a, int err,
    const char *why)
{
	char	peer[320], esc[sizeof(a->why) + 8];

	a->state = DIAL_A_FAILED;
	d->err = err;
	snprintf(a->why, sizeof(a->why), "%s", why);
	log_info("dial connect-failed peer=%s reason=\"%s\"",
	    dial_peer(d, a, peer, sizeof(peer)),
	    str_log_escape(why, strlen(why), esc, sizeof(esc)));
}

/* Ends the attempt of <a> (closing its socket unless <keep>). */
static void
dial_addr_stop(struct dial_addr *a, bool keep)
{
	if (a->ev != NULL) {
		event_free(a->ev);
		a->ev = NULL;
	}
	if (a->fd != -1 && !keep)
		close(a->fd);
	a->fd = -1;
}

static size_t
dial_count(const struct dial *d, enum dial_addr_state st)
{
	size_t	i, n = 0;

	for (i = 0; i < d->naddrs; i++)
		if (d->addrs[i].state == st)
			n++;
	return n;
}

/*
 * "cannot connect to host:port: [addr]: reason, [addr]: reason", every
 * address in the order tried, shortened to ", and N more" when it would
 * not fit.  A numeric host with its one address needs no "[addr]: ".
 */
static void
dial_summary(const struct dial *d, char *buf, size_t bufsz)
{
	char	addr[INET6_ADDRSTRLEN], item[sizeof(d->addrs[0].why) + 64];
	size_t	i, len;
	bool	brackets = strchr(d->host, ':') != NULL;

	if (d->naddrs == 0) {
		snprintf(buf, bufsz, "%s", d->error);
		return;
	}
	snprintf(buf, bufsz, "cannot connect to %s%s%s:%u: ",
	    brackets ? "[" : "", d->host, brackets ? "]" : "", d->port);
	cidr_addr_str((const struct sockaddr *)&d->addrs[0].ss, addr,
	    sizeof(addr));
	if (d->naddrs == 1 && strcmp(addr, d->host) == 0) {
		len = strlen(buf);
		snprintf(buf + len, bufsz - len, "%s", d->addrs[0].why);
		return;
	}
	for (i = 0; i < d->naddrs; i++) {
		cidr_addr_str((const struct sockaddr *)&d->addrs[i].ss, addr,
		    sizeof(addr));
		snprintf(item, sizeof(item), "%s[%s]: %s", i > 0 ? ", " : "",
		    addr, d->addrs[i].why);
		len = strlen(buf);
		/* Keep room for ", and 16 more". */
		if (len + strlen(item) + 16 >= bufsz) {
			snprintf(buf + len, bufsz - len, ", and %zu more",
			    d->naddrs - i);
			return;
		}
		memcpy(buf + len, item, strlen(item) + 1);
	}
}

/* Calls back with the failure; the last thing the caller does. */
static void
dial_report_failure(struct dial *d)
{
	char	error[DIAL_ERROR_MAX];

	dial_summary(d, error, sizeof(error));
	d->cb(d, -1, NULL, 0, d->err, error, d->arg);
}

/* Every address failed (or none was found). */
static void
dial_fail(struct dial *d)
{
	d->state = DIAL_S_DONE;
	evtimer_del(d->stagger);
	if (d->in_call) {
		event_active(d->later, EV_TIMEOUT, 1);
		return;
	}
	dial_report_failure(d);
}

static void
dial_later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dial	*d = arg;

	(void)fd;
	(void)what;
	dial_report_failure(d);
}

/* <a> completed the handshake: cancel the others and hand it over. */
static void
dial_won(struct dial *d, struct dial_addr *a)
{
	struct sockaddr_storage	ss = a->ss;
	socklen_t		len = a->len;
	char			peer[320];
	int			fd = a->fd;
	size_t			i;

	dial_addr_stop(a, true);
	a->state = DIAL_A_WON;
	for (i = 0; i < d->naddrs; i++)
		if (d->addrs[i].state == DIAL_A_PENDING) {
			/* Not failed: dial_next() may try it again. */
			log_debug("dial cancelled peer=%s", dial_peer(d,
			    &d->addrs[i], peer, sizeof(peer)));
			dial_addr_stop(&d->addrs[i], false);
			d->addrs[i].state = DIAL_A_UNTRIED;
		}
	evtimer_del(d->stagger);
	d->state = DIAL_S_WON;
	log_debug("dial connected peer=%s", dial_peer(d, a, peer,
	    sizeof(peer)));
	d->cb(d, fd, (struct sockaddr *)&ss, len, 0, NULL, d->arg);
}

/* The socket of a pending attempt became writable, or its time ran
 * out. */
static void
dial_attempt_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dial_addr	*a = arg;
	struct dial		*d = a->d;
	socklen_t		 len = sizeof(int);
	int			 err = 0;

	if (what & EV_TIMEOUT)
		err = ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err == 0) {
		dial_won(d, a);
		return;
	}
	dial_addr_stop(a, false);
	dial_addr_failed(d, a, err, err == ETIMEDOUT ? "timed out" :
	    strerror(err));
	/* RFC 8305 5: a failure starts the next attempt at once. */
	dial_start_next(d);
}

/* Starts connecting to <a>.  Returns 0 when the attempt is pending,
 * -1 when it failed at once (recorded and logged). */
static int
dial_attempt_start(struct dial *d, struct dial_addr *a)
{
	struct timeval	tv = { d->timeout, 0 };
	int		fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM, IPPROTO_TCP);
	if (fd == -1)
		goto fail;
	if (evutil_make_socket_nonblocking(fd) == -1 ||
	    evutil_make_socket_closeonexec(fd) == -1)
		goto fail;
	/* SMTP is request and reply: a short write (the final dot after a
	 * large body, the next MAIL group) must not wait for the ACK of
	 * what went before (Nagle), which the upstream delays. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one)) == -1)
		goto fail;
	/* EINTR: the connection goes on asynchronously (POSIX). */
	if (connect(fd, (struct sockaddr *)&a->ss, a->len) == -1 &&
	    errno != EINPROGRESS && errno != EINTR)
		goto fail;
	a->ev = event_new(d->base, fd, EV_WRITE, dial_attempt_cb, a);
	if (a->ev == NULL || event_add(a->ev, &tv) == -1) {
		errno = ENOMEM;
		goto fail;
	}
	a->fd = fd;
	a->state = DIAL_A_PENDING;
	return 0;
fail:
	dial_addr_failed(d, a, errno, strerror(errno));
	if (a->ev != NULL) {
		event_free(a->ev);
		a->ev = NULL;
	}
	if (fd != -1)
		close(fd);
	return -1;
}

/*
 * Starts the next untried address; while it is pending, the stagger
 * timer starts the one after.  Addresses that fail at once are skipped
 * without waiting.  With nothing left to try and nothing pending, the
 * dial has failed.
 */
static void
dial_start_next(struct dial *d)
{
	struct timeval	tv = { 0, DIAL_STAGGER_MS * 1000 };
	size_t		i;

	for (i = 0; i < d->naddrs; i++) {
		if (d->addrs[i].state != DIAL_A_UNTRIED ||
		    dial_attempt_start(d, &d->addrs[i]) == -1)
			continue;
		if (dial_count(d, DIAL_A_UNTRIED) > 0)
			evtimer_add(d->stagger, &tv);
		else
			evtimer_del(d->stagger);
		return;
	}
	evtimer_del(d->stagger);
	if (dial_count(d, DIAL_A_PENDING) == 0)
		dial_fail(d);
}

static void
dial_stagger_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dial_start_next(arg);
}

/* Keeps the usable addresses of <ai> (at most DIAL_ADDR_MAX, no
 * duplicates) in the order they are to be tried. */
static void
dial_take_addrs(struct dial *d, const struct evutil_addrinfo *ai)
{
	struct dial_addr	got[DIAL_ADDR_MAX];
	int			fam[DIAL_ADDR_MAX] = { 0 };
	size_t			order[DIAL_ADDR_MAX], n = 0, i;

	for (; ai != NULL && n < DIAL_ADDR_MAX; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    (d->family != AF_UNSPEC && ai->ai_family != d->family) ||
		    ai->ai_addrlen > sizeof(got[0].ss))
			continue;
		for (i = 0; i < n; i++)
			if (got[i].len == ai->ai_addrlen &&
			    memcmp(&got[i].ss, ai->ai_addr, got[i].len) == 0)
				break;
		if (i < n)
			continue;
		memset(&got[n], 0, sizeof(got[n]));
		memcpy(&got[n].ss, ai->ai_addr, ai->ai_addrlen);
		got[n].len = (socklen_t)ai->ai_addrlen;
		fam[n] = ai->ai_family;
		n++;
	}
	dial_order(fam, n, order);
	for (i = 0; i < n; i++) {
		d->addrs[i] = got[order[i]];
		d->addrs[i].d = d;
		d->addrs[i].fd = -1;
		d->addrs[i].state = DIAL_A_UNTRIED;
	}
	d->naddrs = n;
}

/* The resolver answered <err> / <ai> (which this frees). */
static void
dial_resolved(struct dial *d, int err, struct evutil_addrinfo *ai)
{
	static const char *const	fam_name[] = { "", "IPv4 ", "IPv6 " };

	evtimer_del(d->timer);
	if (err == 0)
		dial_take_addrs(d, ai);
	if (ai != NULL)
		evutil_freeaddrinfo(ai);
	if (err != 0) {
		d->err = DIAL_EDNS;
		snprintf(d->error, sizeof(d->error), "cannot resolve %s: %s%s",
		    d->host, evutil_gai_strerror(err), d->dns == NULL ?
		    " (no resolver: only numeric addresses work)" : "");
		dial_fail(d);
		return;
	}
	if (d->naddrs == 0) {
		d->err = DIAL_EDNS;
		snprintf(d->error, sizeof(d->error), "cannot resolve %s: no "
		    "%saddress", d->host, fam_name[d->family == AF_INET ? 1 :
		    d->family == AF_INET6 ? 2 : 0]);
		dial_fail(d);
		return;
	}
	d->state = DIAL_S_CONNECTING;
	dial_start_next(d);
}

static void
dial_resolve_cb(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct dial_res	*res = arg;
	struct dial	*d = res->d;

	free(res);
	if (d == NULL) {
		/* Cancelled: the dial is gone. */
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		return;
	}
	d->res = NULL;
	d->req = NULL;
	dial_resolved(d, err, ai);
}

/* Detaches the pending resolution (its callback will find no dial). */
static void
dial_resolve_cancel(struct dial *d)
{
	struct evdns_getaddrinfo_request	*req = d->req;

	if (d->res == NULL)
		return;
	d->res->d = NULL;
	d->res = NULL;
	d->req = NULL;
	if (req != NULL)
		evdns_getaddrinfo_cancel(req);
}

static void
dial_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dial	*d = arg;

	(void)fd;
	(void)what;
	dial_resolve_cancel(d);
	d->err = DIAL_EDNS;
	snprintf(d->error, sizeof(d->error), "cannot resolve %s: timed out",
	    d->host);
	dial_fail(d);
}

/* Resolution on evdns, or only numeric without a resolver. */
static void
dial_resolve_start(struct dial *d)
{
	struct evutil_addrinfo			 hints, *ai = NULL;
	struct evdns_getaddrinfo_request	*req;
	struct timeval				 tv = { d->timeout, 0 };
	char					 port[8];
	int					 err;

	/* No AI_ADDRCONFIG: it hides ::1 on a host with only loopback
	 * IPv6, and an address family that is not configured fails at
	 * connect() at once anyway. */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = d->family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	snprintf(port, sizeof(port), "%u", d->port);
	if (d->dns == NULL) {
		hints.ai_flags = EVUTIL_AI_NUMERICHOST;
		err = evutil_getaddrinfo(d->host, port, &hints, &ai);
		dial_resolved(d, err, err == 0 ? ai : NULL);
		return;
	}
	d->res = xcalloc(1, sizeof(*d->res));
	d->res->d = d;
	evtimer_add(d->timer, &tv);
	/* The callback may run before this returns (numeric address,
	 * hosts file); then there is no request to keep. */
	req = evdns_getaddrinfo(d->dns, d->host, port, &hints,
	    dial_resolve_cb, d->res);
	if (d->res != NULL)
		d->req = req;
}

struct dial *
dial_new(struct event_base *base, struct evdns_base *dns, const char *host,
    uint16_t port, int family, int timeout_secs, dial_cb cb, void *arg)
{
	struct dial	*d;

	if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
		fatalx("dial_new: bad family %d", family);
	d = xcalloc(1, sizeof(*d));
	d->base = base;
	d->dns = dns;
	d->host = xstrdup(host);
	d->port = port;
	d->family = family;
	d->timeout = timeout_secs;
	d->cb = cb;
	d->arg = arg;
	d->state = DIAL_S_RESOLVING;
	d->timer = evtimer_new(base, dial_timer_cb, d);
	d->stagger = evtimer_new(base, dial_stagger_cb, d);
	d->later = event_new(base, -1, 0, dial_later_cb, d);
	if (d->timer == NULL || d->stagger == NULL || d->later == NULL) {
		dial_free(d);
		return NULL;
	}
	d->in_call = true;
	dial_resolve_start(d);
	d->in_call = false;
	return d;
}

int
dial_next(struct dial *d, const char *why)
{
	size_t	i;

	if (d->state != DIAL_S_WON)
		fatalx("dial_next: no connection was handed over");
	for (i = 0; i < d->naddrs; i++)
		if (d->addrs[i].state == DIAL_A_WON)
			dial_addr_failed(d, &d->addrs[i], 0, why);
	if (dial_count(d, DIAL_A_UNTRIED) == 0) {
		d->state = DIAL_S_DONE;
		return -1;
	}
	d->state = DIAL_S_CONNECTING;
	d->in_call = true;
	dial_start_next(d);
	d->in_call = false;
	return 0;
}

void
dial_free(struct dial *d)
{
	size_t	i;

	if (d == NULL)
		return;
	dial_resolve_cancel(d);
	for (i = 0; i < d->naddrs; i++)
		dial_addr_stop(&d->addrs[i], false);
	if (d->timer != NULL)
		event_free(d->timer);
	if (d->stagger != NULL)
		event_free(d->stagger);
	if (d->later != NULL)
		event_free(d->later);
	free(d->host);
	free(d);
}
