/*
 * netwatch.h - notice the network coming back (Linux rtnetlink).
 *
 * While the upstream is unreachable the queue probes it on a timer that
 * backs off to a minute.  This watcher listens to the kernel's link,
 * address and route notifications so that the queue can probe at once
 * when a link comes up, an address appears or a default route returns.
 * It only says "something changed, try now": it never decides that the
 * network is down, and the probe timer stays the fallback.  Without
 * netlink (other systems, a sandbox) it is simply absent.
 */
#ifndef NETWATCH_H
#define NETWATCH_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct netwatch;

#define NETWATCH_QUIET_MS	2000	/* calm needed after the last event */
#define NETWATCH_MAX_WAIT_MS	5000	/* ... but never longer than this */

/* Subscribes to rtnetlink link, IPv4/IPv6 address and route groups.
 * After an event that may mean connectivity returned (see
 * netwatch_is_return(), or a receive buffer overrun), it waits for
 * NETWATCH_QUIET_MS without such events, at most NETWATCH_MAX_WAIT_MS
 * after the first one, then logs one line and calls <cb>(<arg>) once
 * for the whole burst.  No timer runs while nothing happens.  Returns
 * NULL after logging a warning when netlink is unavailable; the daemon
 * goes on without it. */
struct netwatch	*netwatch_new(struct event_base *, void (*cb)(void *),
		    void *arg);

/* As netwatch_new(), on an already open datagram socket <fd> (the
 * result owns it and closes it), with the two delays in milliseconds.
 * For tests, which feed hand-built messages through a socketpair.
 * Returns NULL (fd closed) if the event cannot be set up. */
struct netwatch	*netwatch_new_fd(struct event_base *, int fd,
		    unsigned int quiet_ms, unsigned int max_ms,
		    void (*cb)(void *), void *arg);

/* Closes the socket and cancels a pending call.  NULL is a no-op. */
void		 netwatch_free(struct netwatch *);

/* True when the rtnetlink datagram <buf> of <len> bytes holds at least
 * one message meaning connectivity may have come back: RTM_NEWLINK for
 * an interface that is up and running (not loopback); RTM_NEWADDR of
 * non-host scope that is not tentative; RTM_NEWROUTE for a unicast
 * default route in the main table.  Deletions and all else are false.
 * Reads nothing outside <buf>, whatever the bytes; <buf> must be
 * 4-byte aligned as netlink messages are.  Pure, for unit tests. */
bool		 netwatch_is_return(const void *buf, size_t len);

#endif /* NETWATCH_H */
