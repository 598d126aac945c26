/*
 * listener.c - bind the configured addresses and accept clients.
 *
 * Policy that needs no SMTP conversation is applied here, before a
 * session exists: the allow-list (554 5.7.1, as the relay must never be
 * open), the global and per-address connection caps (421 4.7.0).  When
 * the process runs out of descriptors, accepting pauses for a second
 * instead of spinning on EMFILE.  Sockets of listen_tls hand their
 * clients over for implicit TLS; there the refusals are plain close()s,
 * since a TLS client cannot read a plaintext reply, and the early-talker
 * check waits for the handshake (the client speaks first in TLS).
 */
#include "config.h"

#include "listener.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "cidr.h"
#include "conf.h"
#include "log.h"
#include "session.h"
#include "util.h"

#define LISTENER_BACKLOG	511	/* absorbs bursts of connects */
#define LISTENER_PAUSE_SECS	1

/* One listening socket and what its clients get. */
struct listener_sock {
	struct listener		*l;
	struct evconnlistener	*evl;
	unsigned int		 flags;		/* SESSION_F_* */
};

struct listener {
	struct session_ctx	 *ctx;
	struct listener_sock	**socks;
	size_t			  nsocks;
	struct event		 *resume;	/* after EMFILE */
};

/* Answers a client we will not serve and closes.  The socket buffer is
 * empty at this point, so a short non-blocking send cannot block.  A
 * client of an implicit TLS port would take the reply for a broken
 * handshake: it just sees the close. */
static void
listener_turn_away(int fd, const char *reply, unsigned int flags)
{
	ssize_t	n;

	if ((flags & SESSION_F_TLS) == 0) {
		n = send(fd, reply, strlen(reply), MSG_DONTWAIT |
		    MSG_NOSIGNAL);
		(void)n;
	}
	shutdown(fd, SHUT_WR);
	evutil_closesocket(fd);
}

static void	listener_add(struct listener *, struct listener_sock *,
		    const char *);

static void
listener_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener_sock	*ls = arg;
	struct listener		*l = ls->l;
	const struct conf	*conf = l->ctx->conf;
	unsigned int		 flags = ls->flags;
	char			 addr[64], reply[512], peek;

	(void)evl;
	cidr_addr_str(sa, addr, sizeof(addr));
	if (!cidr_match_any(conf->allow, conf->nallow, sa)) {
		log_notice("listener reject client=%s reason=not-allowed",
		    addr);
		l->ctx->refused_not_allowed++;
		snprintf(reply, sizeof(reply), "554 5.7.1 %s Client host "
		    "[%s] rejected: Access denied\r\n", conf->hostname, addr);
		listener_turn_away(fd, reply, flags);
		return;
	}
	if (l->ctx->stopping) {
		l->ctx->refused_stopping++;
		snprintf(reply, sizeof(reply), "421 4.3.2 %s Service "
		    "shutting down\r\n", conf->hostname);
		listener_turn_away(fd, reply, flags);
		return;
	}
	if (l->ctx->nsessions >= conf->max_clients) {
		log_warnx("listener reject client=%s reason=max-clients "
		    "limit=%u", addr, conf->max_clients);
		l->ctx->refused_max_clients++;
		snprintf(reply, sizeof(reply), "421 4.7.0 %s Error: too many "
		    "connections\r\n", conf->hostname);
		listener_turn_away(fd, reply, flags);
		return;
	}
	/* An SMTP client speaks after the greeting (RFC 5321 3.1); bytes
	 * that are already here came before it: a bot firing blind, as
	 * Postfix's pregreet test catches them.  (With implicit TLS the
	 * client hello comes first; the session checks after the
	 * handshake.) */
	if ((flags & SESSION_F_TLS) == 0 &&
	    recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
		log_notice("listener reject client=%s reason=early-talker",
		    addr);
		l->ctx->refused_early_talker++;
		snprintf(reply, sizeof(reply), "554 5.5.1 %s Error: talked "
		    "before the greeting\r\n", conf->hostname);
		listener_turn_away(fd, reply, flags);
		return;
	}
	/* Loopback (by default) is this host's own programs: a PHP-FPM
	 * pool or "smtp-source -s 50" are many clients behind one
	 * address, as Postfix exempts $mynetworks.  max_clients still
	 * bounds them. */
	if (!cidr_match_any(conf->per_ip_exempt, conf->nper_ip_exempt, sa) &&
	    session_count_from(l->ctx, sa) >= conf->max_clients_per_ip) {
		log_warnx("listener reject client=%s reason=max-clients-per-ip "
		    "limit=%u", addr, conf->max_clients_per_ip);
		l->ctx->refused_max_per_ip++;
		snprintf(reply, sizeof(reply), "421 4.7.0 %s Error: too many "
		    "connections from %s\r\n", conf->hostname, addr);
		listener_turn_away(fd, reply, flags);
		return;
	}
	if ((flags & SESSION_F_TLS) && l->ctx->tls == NULL) {
		/* A reload took the certificate away. */
		log_warnx("listener reject client=%s reason=no-tls", addr);
		listener_turn_away(fd, "", flags);
		return;
	}
	session_new(l->ctx, fd, sa, (socklen_t)salen, flags);
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener	*l = arg;
	size_t		 i;

	(void)fd;
	(void)what;
	for (i = 0; i < l->nsocks; i++)
		evconnlistener_enable(l->socks[i]->evl);
}

static void
listener_error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener_sock	*ls = arg;	/* as for accept */
	struct listener		*l = ls->l;
	struct timeval		 tv = { LISTENER_PAUSE_SECS, 0 };
	int			 err = EVUTIL_SOCKET_ERROR();
	size_t			 i;

	(void)evl;
	if (err != EMFILE && err != ENFILE && err != ENOBUFS &&
	    err != ENOMEM) {
		log_warnx("listener accept error: %s",
		    evutil_socket_error_to_string(err));
		return;
	}
	log_warnx("listener out of resources (%s): pausing accept for %ds",
	    evutil_socket_error_to_string(err), LISTENER_PAUSE_SECS);
	for (i = 0; i < l->nsocks; i++)
		evconnlistener_disable(l->socks[i]->evl);
	evtimer_add(l->resume, &tv);
}

/* Resolves one "host:port" entry numerically (no DNS at startup). */
static int
listener_resolve(const char *entry, struct addrinfo **res)
{
	struct addrinfo	 hints;
	char		 host[256], port[8];
	uint16_t	 portnum;
	int		 rc;

	if (conf_split_hostport(entry, host, sizeof(host), &portnum) == -1) {
		log_warnx("listener bad address \"%s\"", entry);
		return -1;
	}
	snprintf(port, sizeof(port), "%u", portnum);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV |
	    (host[0] != '\0' ? AI_NUMERICHOST : 0);
	rc = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, res);
	if (rc != 0) {
		log_warnx("listener cannot use address \"%s\": %s", entry,
		    gai_strerror(rc));
		return -1;
	}
	return 0;
}

/* A listening socket for <flags>, accepting into <l>, with its
 * evconnlistener still to be set. */
static struct listener_sock *
listener_sock_new(struct listener *l, unsigned int flags)
{
	struct listener_sock	*ls = xcalloc(1, sizeof(*ls));

	ls->l = l;
	ls->flags = flags;
	return ls;
}

/* Binds one resolved address.  Returns 0, 1 (skipped: the host lacks
 * this family) or -1. */
static int
listener_bind(struct listener *l, const char *entry,
    const struct addrinfo *ai, unsigned int sflags)
{
	struct listener_sock	*ls = listener_sock_new(l, sflags);
	/* REUSEABLE_PORT lets a reload bind the new set of addresses
	 * before it lets go of the old one. */
	unsigned int		 flags = LEV_OPT_CLOSE_ON_FREE |
				     LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE |
				     LEV_OPT_REUSEABLE_PORT;

	if (ai->ai_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	ls->evl = evconnlistener_new_bind(l->ctx->base, listener_accept_cb,
	    ls, flags, LISTENER_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
	if (ls->evl == NULL) {
		free(ls);
		if (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL) {
			log_warn("listener skipping \"%s\"", entry);
			return 1;
		}
		log_warn("listener cannot bind \"%s\"", entry);
		return -1;
	}
	listener_add(l, ls, (sflags & SESSION_F_TLS) ? " tls=implicit" :
	    (sflags & SESSION_F_AUTH_PLAIN) ? " auth=plaintext" : "");
	return 0;
}

/* Adopts a listening socket and logs where it listens. */
static void
listener_add(struct listener *l, struct listener_sock *ls, const char *how)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	char			 addr[64];

	evconnlistener_set_error_cb(ls->evl, listener_error_cb);
	l->socks = xrealloc(l->socks, (l->nsocks + 1) * sizeof(*l->socks));
	l->socks[l->nsocks++] = ls;
	if (getsockname(evconnlistener_get_fd(ls->evl),
	    (struct sockaddr *)&ss, &sslen) == 0) {
		cidr_addr_str((struct sockaddr *)&ss, addr, sizeof(addr));
		log_info("listener listening addr=%s%s%s:%u%s",
		    ss.ss_family == AF_INET6 ? "[" : "", addr,
		    ss.ss_family == AF_INET6 ? "]" : "",
		    ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port :
		    ((struct sockaddr_in *)&ss)->sin_port), how);
	}
}

struct listener *
listener_new_fds(struct session_ctx *ctx, const int *fds, size_t n)
{
	struct listener_sock	*ls;
	struct listener		*l;
	size_t			 i;

	l = xcalloc(1, sizeof(*l));
	l->ctx = ctx;
	l->resume = evtimer_new(ctx->base, listener_resume_cb, l);
	if (l->resume == NULL)
		fatalx("listener evtimer_new");
	for (i = 0; i < n; i++) {
		ls = listener_sock_new(l, 0);
		if (evutil_make_socket_nonblocking(fds[i]) == -1 ||
		    evutil_make_socket_closeonexec(fds[i]) == -1 ||
		    (ls->evl = evconnlistener_new(ctx->base,
		    listener_accept_cb, ls, LEV_OPT_CLOSE_ON_FREE, -1,
		    fds[i])) == NULL) {
			log_warn("listener cannot use inherited socket %d",
			    fds[i]);
			free(ls);
			listener_free(l);
			return NULL;
		}
		listener_add(l, ls, " (socket activation)");
	}
	return l;
}

/* True when <ai> is a loopback address (127/8, ::1). */
static bool
listener_is_loopback(const struct addrinfo *ai)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	if (ai->ai_family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)ai->ai_addr;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (ai->ai_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)(const void *)ai->ai_addr;
		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	}
	return false;
}

/* The session flags of plain listen entry <entry>: AUTH without TLS
 * when auth.plaintext names it, and only ever on loopback. */
static unsigned int
listener_plain_flags(const struct conf *conf, const char *entry,
    const struct addrinfo *ai)
{
	size_t	i;

	for (i = 0; i < conf->client_auth.nplaintext; i++)
		if (strcmp(conf->client_auth.plaintext[i], entry) == 0) {
			if (listener_is_loopback(ai))
				return SESSION_F_AUTH_PLAIN;
			log_warnx("listener \"%s\": plaintext AUTH only on "
			    "loopback addresses; not allowed here", entry);
		}
	return 0;
}

/* Binds every address of the <n> entries.  Returns 0 or -1. */
static int
listener_bind_all(struct listener *l, char *const *entries, size_t n,
    bool tls)
{
	struct addrinfo	*res, *ai;
	unsigned int	 flags;
	size_t		 i;

	for (i = 0; i < n; i++) {
		if (listener_resolve(entries[i], &res) == -1)
			return -1;
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			flags = tls ? SESSION_F_TLS :
			    listener_plain_flags(l->ctx->conf, entries[i], ai);
			if (listener_bind(l, entries[i], ai, flags) == -1) {
				freeaddrinfo(res);
				return -1;
			}
		}
		freeaddrinfo(res);
	}
	return 0;
}

struct listener *
listener_new(struct session_ctx *ctx)
{
	const struct conf	*conf = ctx->conf;
	struct listener		*l;

	l = xcalloc(1, sizeof(*l));
	l->ctx = ctx;
	l->resume = evtimer_new(ctx->base, listener_resume_cb, l);
	if (l->resume == NULL)
		fatalx("listener evtimer_new");
	if (listener_bind_all(l, conf->listen, conf->nlisten, false) == -1 ||
	    listener_bind_all(l, conf->listen_tls, conf->nlisten_tls, true) ==
	    -1)
		goto fail;
	if (l->nsocks == 0) {
		log_warnx("listener no address could be bound");
		goto fail;
	}
	return l;
fail:
	listener_free(l);
	return NULL;
}

void
listener_free(struct listener *l)
{
	size_t	i;

	if (l == NULL)
		return;
	for (i = 0; i < l->nsocks; i++) {
		evconnlistener_free(l->socks[i]->evl);
		free(l->socks[i]);
	}
	free(l->socks);
	if (l->resume != NULL)
		event_free(l->resume);
	free(l);
}
