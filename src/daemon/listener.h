/*
 * listener.h - bind the configured addresses, accept clients, and turn
 * away those outside the allow-list (554 5.7.1) or over the connection
 * caps (421 4.7.0) before a session is ever created.
 */
#ifndef LISTENER_H
#define LISTENER_H

#include <stddef.h>

struct session_ctx;
struct listener;

/* Binds every "listen" address of ctx->conf (IPv6 sockets are v6-only).
 * An address family the host lacks (EAFNOSUPPORT, EADDRNOTAVAIL) is
 * skipped with a warning as long as another address bound.  Logs one
 * "listener listening addr=..." line per socket, with the real port when
 * the configured one is 0.  Accepting starts at once.  Returns NULL
 * after logging the reason. */
struct listener	*listener_new(struct session_ctx *ctx);

/* Takes over <n> sockets that are already bound and listening (systemd
 * socket activation); the listen addresses of the configuration are
 * then not used.  Returns NULL after logging. */
struct listener	*listener_new_fds(struct session_ctx *ctx, const int *fds,
		    size_t n);

/* Stops accepting and closes the sockets.  NULL is a no-op. */
void		 listener_free(struct listener *);

#endif /* LISTENER_H */
