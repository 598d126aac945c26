/*
 * control.h - the daemon side of the control socket smartrelayctl uses.
 *
 * A unix stream socket (mode 0660: the daemon's user and group only)
 * takes one request line per connection ("queue", "show ID", "flush",
 * "stats", "failed", and "flush", "delete", "hold", "release" or
 * "requeue" with one or more IDs or ALL) and answers with one JSON
 * document, then closes.  Ids are case-insensitive.  Peers are checked with
 * SO_PEERCRED: root, the daemon's own user and members of the socket's
 * group are served; anyone else gets an error and is closed.
 */
#ifndef CONTROL_H
#define CONTROL_H

struct conf;
struct event_base;
struct queue;
struct session_ctx;
struct control;

#define CONTROL_REQUEST_MAX	4096	/* request line, with its LF: about
					 * 240 message ids */

/* Binds conf->control_socket: creates the parent directory (0750) when
 * missing, removes a stale socket left by a dead daemon (but refuses to
 * start when a daemon still answers there, or when the path is not a
 * socket), and starts accepting.  <queue> and <sessions> are borrowed
 * and must outlive the control.  Returns NULL after logging. */
struct control	*control_new(struct event_base *, const struct conf *,
		    struct queue *, struct session_ctx *);

/* Closes the socket and every admin connection, and unlinks the socket
 * file.  NULL is a no-op. */
void		 control_free(struct control *);

#endif /* CONTROL_H */
