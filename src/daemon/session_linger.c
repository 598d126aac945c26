/*
 * session_linger.c - the end of a client connection: half-close, drop
 * input for a moment, close.
 */
#include "config.h"

#include "session_linger.h"

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#define SESSION_LINGER_SECS	2	/* read and drop input before close */
#define SESSION_LINGER_MAX	(64 * 1024)

static void
session_linger_read_cb(struct bufferevent *bev, void *arg)
{
	struct session_linger	*l = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);

	l->dropped += evbuffer_get_length(in);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (l->dropped > SESSION_LINGER_MAX)
		l->done(l->arg);
}

/* The client closed too, the time is up, or an error: all the same. */
static void
session_linger_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session_linger	*l = arg;

	(void)bev;
	(void)what;
	l->done(l->arg);
}

bool
session_linger_start(struct session_linger *l, struct bufferevent *bev)
{
	struct timeval	tv = { SESSION_LINGER_SECS, 0 };

	if (shutdown(bufferevent_getfd(bev), SHUT_WR) == -1)
		return false;
	bufferevent_setcb(bev, session_linger_read_cb, NULL,
	    session_linger_event_cb, l);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ);
	return true;
}
