/*
 * listener.c - bind the configured addresses and accept clients.
 *
 * Policy that needs no SMTP conversation is applied here, before a
 * session exists: the allow-list (554 5.7.1, as the relay must never be
 * open), the global and per-address connection caps (421 4.7.0).  When
 * the process runs out of descriptors, accepting pauses for a second
 * instead of spinning on EMFILE.
 */
#include "config.h"

#include "listener.h"

#include <errno.h>
#include <netdb.h>
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

struct listener {
	struct session_ctx	 *ctx;
	struct evconnlistener	**evl;
	size_t			  nevl;
	struct event		 *resume;	/* after EMFILE */
};

/* Answers a client we will not serve and closes.  The socket buffer is
 * empty at this point, so a short non-blocking send cannot block. */
static void
listener_turn_away(int fd, const char *reply)
{
	ssize_t	n;

	n = send(fd, reply, strlen(reply), MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)n;
	shutdown(fd, SHUT_WR);
	evutil_closesocket(fd);
}

static void	listener_add(struct listener *, struct evconnlistener *,
		    const char *);

static void
listener_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener		*l = arg;
	const struct conf	*conf = l->ctx->conf;
	char			 addr[64], reply[512], peek;

	(void)evl;
	cidr_addr_str(sa, addr, sizeof(addr));
	if (!cidr_match_any(conf->allow, conf->nallow, sa)) {
		log_notice("listener reject client=%s reason=not-allowed",
		    addr);
		l->ctx->refused_not_allowed++;
		snprintf(reply, sizeof(reply), "554 5.7.1 %s Client host "
		    "[%s] rejected: Access denied\r\n", conf->hostname, addr);
		listener_turn_away(fd, reply);
		return;
	}
	if (l->ctx->stopping) {
		l->ctx->refused_stopping++;
		snprintf(reply, sizeof(reply), "421 4.3.2 %s Service "
		    "shutting down\r\n", conf->hostname);
		listener_turn_away(fd, reply);
		return;
	}
	if (l->ctx->nsessions >= conf->max_clients) {
		log_warnx("listener reject client=%s reason=max-clients "
		    "limit=%u", addr, conf->max_clients);
		l->ctx->refused_max_clients++;
		snprintf(reply, sizeof(reply), "421 4.7.0 %s Error: too many "
		    "connections\r\n", conf->hostname);
		listener_turn_away(fd, reply);
		return;
	}
	/* An SMTP client speaks after the greeting (RFC 5321 3.1); bytes
	 * that are already here came before it: a bot firing blind, as
	 * Postfix's pregreet test catches them. */
	if (recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
		log_notice("listener reject client=%s reason=early-talker",
		    addr);
		l->ctx->refused_early_talker++;
		snprintf(reply, sizeof(reply), "554 5.5.1 %s Error: talked "
		    "before the greeting\r\n", conf->hostname);
		listener_turn_away(fd, reply);
		return;
	}
	if (session_count_from(l->ctx, sa) >= conf->max_clients_per_ip) {
		log_warnx("listener reject client=%s reason=max-clients-per-ip "
		    "limit=%u", addr, conf->max_clients_per_ip);
		l->ctx->refused_max_per_ip++;
		snprintf(reply, sizeof(reply), "421 4.7.0 %s Error: too many "
		    "connections from %s\r\n", conf->hostname, addr);
		listener_turn_away(fd, reply);
		return;
	}
	session_new(l->ctx, fd, sa, (socklen_t)salen);
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener	*l = arg;
	size_t		 i;

	(void)fd;
	(void)what;
	for (i = 0; i < l->nevl; i++)
		evconnlistener_enable(l->evl[i]);
}

static void
listener_error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener	*l = arg;
	struct timeval	 tv = { LISTENER_PAUSE_SECS, 0 };
	int		 err = EVUTIL_SOCKET_ERROR();
	size_t		 i;

	(void)evl;
	if (err != EMFILE && err != ENFILE && err != ENOBUFS &&
	    err != ENOMEM) {
		log_warnx("listener accept error: %s",
		    evutil_socket_error_to_string(err));
		return;
	}
	log_warnx("listener out of resources (%s): pausing accept for %ds",
	    evutil_socket_error_to_string(err), LISTENER_PAUSE_SECS);
	for (i = 0; i < l->nevl; i++)
		evconnlistener_disable(l->evl[i]);
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

/* Binds one resolved address.  Returns 0, 1 (skipped: the host lacks
 * this family) or -1. */
static int
listener_bind(struct listener *l, const char *entry,
    const struct addrinfo *ai)
{
	struct evconnlistener	*evl;
	/* REUSEABLE_PORT lets a reload bind the new set of addresses
	 * before it lets go of the old one. */
	unsigned int		 flags = LEV_OPT_CLOSE_ON_FREE |
				     LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE |
				     LEV_OPT_REUSEABLE_PORT;

	if (ai->ai_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	evl = evconnlistener_new_bind(l->ctx->base, listener_accept_cb, l,
	    flags, LISTENER_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
	if (evl == NULL) {
		if (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL) {
			log_warn("listener skipping \"%s\"", entry);
			return 1;
		}
		log_warn("listener cannot bind \"%s\"", entry);
		return -1;
	}
	listener_add(l, evl, "");
	return 0;
}

/* Adopts a listening evconnlistener and logs where it listens. */
static void
listener_add(struct listener *l, struct evconnlistener *evl, const char *how)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	char			 addr[64];

	evconnlistener_set_error_cb(evl, listener_error_cb);
	l->evl = xrealloc(l->evl, (l->nevl + 1) * sizeof(*l->evl));
	l->evl[l->nevl++] = evl;
	if (getsockname(evconnlistener_get_fd(evl), (struct sockaddr *)&ss,
	    &sslen) == 0) {
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
	struct evconnlistener	*evl;
	struct listener		*l;
	size_t			 i;

	l = xcalloc(1, sizeof(*l));
	l->ctx = ctx;
	l->resume = evtimer_new(ctx->base, listener_resume_cb, l);
	if (l->resume == NULL)
		fatalx("listener evtimer_new");
	for (i = 0; i < n; i++) {
		if (evutil_make_socket_nonblocking(fds[i]) == -1 ||
		    evutil_make_socket_closeonexec(fds[i]) == -1 ||
		    (evl = evconnlistener_new(ctx->base, listener_accept_cb,
		    l, LEV_OPT_CLOSE_ON_FREE, -1, fds[i])) == NULL) {
			log_warn("listener cannot use inherited socket %d",
			    fds[i]);
			listener_free(l);
			return NULL;
		}
		listener_add(l, evl, " (socket activation)");
	}
	return l;
}

struct listener *
listener_new(struct session_ctx *ctx)
{
	const struct conf	*conf = ctx->conf;
	struct listener		*l;
	struct addrinfo		*res, *ai;
	size_t			 i;
	int			 rc;

	l = xcalloc(1, sizeof(*l));
	l->ctx = ctx;
	l->resume = evtimer_new(ctx->base, listener_resume_cb, l);
	if (l->resume == NULL)
		fatalx("listener evtimer_new");
	for (i = 0; i < conf->nlisten; i++) {
		if (listener_resolve(conf->listen[i], &res) == -1)
			goto fail;
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			rc = listener_bind(l, conf->listen[i], ai);
			if (rc == -1) {
				freeaddrinfo(res);
				goto fail;
			}
		}
		freeaddrinfo(res);
	}
	if (l->nevl == 0) {
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
	for (i = 0; i < l->nevl; i++)
		evconnlistener_free(l->evl[i]);
	free(l->evl);
	if (l->resume != NULL)
		event_free(l->resume);
	free(l);
}
