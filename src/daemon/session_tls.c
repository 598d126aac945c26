/*
 * session_tls.c - the server side of one TLS handshake, for a session.
 */
#include "config.h"

#include "session_tls.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "tls.h"

#define SESSION_TLS_HANDSHAKE_SECS	30	/* at most */

/* The handshake finished or failed.  A failure has no SMTP reply to
 * give: the client gets the TLS alert, if any, and the close. */
static void
session_tls_end(struct bufferevent *bev, short what,
    const struct session_tls_conn *c, bool implicit)
{
	char	why[256];

	if (what & BEV_EVENT_CONNECTED) {
		log_info("session tls sid=%08x client=%s version=%s "
		    "cipher=%s", c->sid, c->addr, tls_version(bev),
		    tls_cipher(bev));
		/* As the listener's check on plain ports: a client that
		 * talks before the greeting is a bot firing blind. */
		if (implicit && tls_has_pending(bev)) {
			log_notice("session reject client=%s "
			    "reason=early-talker sid=%08x", c->addr, c->sid);
			c->done(c->arg, SESSION_TLS_EARLY);
		} else
			c->done(c->arg, SESSION_TLS_OK);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "handshake timeout");
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "closed during handshake");
	else
		tls_error_string(bev, why, sizeof(why), NULL);
	log_notice("session tls failed sid=%08x client=%s reason=\"%s\"",
	    c->sid, c->addr, why);
	c->done(c->arg, SESSION_TLS_FAILED);
}

static void
session_tls_implicit_cb(struct bufferevent *bev, short what, void *arg)
{
	session_tls_end(bev, what, arg, true);
}

static void
session_tls_starttls_cb(struct bufferevent *bev, short what, void *arg)
{
	session_tls_end(bev, what, arg, false);
}

/* Starts the handshake on <fd>; <implicit>: no STARTTLS before it. */
static struct bufferevent *
session_tls_begin(struct tls_server *tls, struct event_base *base, int fd,
    uint64_t secs, const struct session_tls_conn *conn, bool implicit)
{
	struct bufferevent	*bev;
	struct timeval		 tv;

	if (tls == NULL || (bev = tls_server_wrap(tls, base, fd)) == NULL)
		return NULL;
	/* Nothing is read nor written but the handshake's own records. */
	bufferevent_setcb(bev, NULL, NULL, implicit ?
	    session_tls_implicit_cb : session_tls_starttls_cb, (void *)conn);
	tv.tv_sec = (time_t)(secs < SESSION_TLS_HANDSHAKE_SECS ? secs :
	    SESSION_TLS_HANDSHAKE_SECS);
	tv.tv_usec = 0;
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return bev;
}

struct bufferevent *
session_tls_wrap(struct tls_server *tls, struct event_base *base, int fd,
    uint64_t secs, const struct session_tls_conn *conn)
{
	return session_tls_begin(tls, base, fd, secs, conn, true);
}

/* The plaintext bufferevent goes away with everything it buffered; a
 * duplicate of its descriptor keeps the connection for the TLS one. */
int
session_tls_starttls(struct tls_server *tls, struct event_base *base,
    struct bufferevent **bevp, uint64_t secs,
    const struct session_tls_conn *conn, const char **reason)
{
	struct bufferevent	*bev;
	int			 fd;

	fd = fcntl(bufferevent_getfd(*bevp), F_DUPFD_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("session cannot duplicate socket sid=%08x",
		    conn->sid);
		*reason = "error";
		return -1;
	}
	if ((bev = session_tls_begin(tls, base, fd, secs, conn,
	    false)) == NULL) {
		close(fd);
		*reason = "tls";
		return -1;
	}
	bufferevent_free(*bevp);
	*bevp = bev;
	return 0;
}

const char *
session_tls_refusal(const struct tls_server *tls, const char *args,
    bool active, bool configured)
{
	if (*args != '\0')
		return "501 5.5.4 Syntax: STARTTLS";
	if (active)
		return "503 5.5.1 Error: TLS already active";
	if (tls == NULL) {
		/* Not configured: as any command we do not offer. */
		if (!configured)
			return "502 5.5.1 Error: command not implemented";
		return "454 4.7.0 TLS not available";
	}
	return NULL;
}
