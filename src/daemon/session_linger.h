/*
 * session_linger.h - the end of a client connection once its last
 * reply is out: the write side is shut down and what the client still
 * sends is read and dropped for a moment (2 seconds, 64 KiB at most)
 * before the close.  Closing with unread input makes the kernel send a
 * reset, which can destroy that last reply (a 421 after garbage, say)
 * before the client reads it.
 */
#ifndef SESSION_LINGER_H
#define SESSION_LINGER_H

#include <stdbool.h>
#include <stddef.h>

struct bufferevent;

/* Embedded in the session, which keeps it alive while it lingers. */
struct session_linger {
	void	(*done)(void *arg);	/* time to close */
	void	*arg;
	size_t	 dropped;		/* octets read and dropped */
};

/* Half-closes <bev> (its output flushed) and takes over its callbacks
 * until <l>'s done() runs.  Input buffered already is dropped at the
 * next read callback (bufferevent_trigger() runs it at once).  Returns
 * false, with nothing changed, when the socket cannot be half-closed:
 * close at once. */
bool		 session_linger_start(struct session_linger *l,
		    struct bufferevent *bev);

#endif /* SESSION_LINGER_H */
