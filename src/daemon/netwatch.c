/*
 * netwatch.c - rtnetlink listener that tells the daemon "the network
 * may be back, probe now".
 *
 * One non-blocking NETLINK_ROUTE socket, one persistent read event and
 * one one-shot debounce timer that is armed only after a relevant
 * event: an idle watcher costs no wake-ups.  Messages are classified by
 * netwatch_is_return(), which trusts nothing in the datagram.  Nothing
 * here knows about the queue; main.c connects the callback.
 */
#include "config.h"

#include "netwatch.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <event2/event.h>

#include "log.h"
#include "util.h"

#define NETWATCH_BUF_SIZE	16384	/* > one page: a whole datagram */
#define NETWATCH_READS_MAX	64	/* datagrams per wake-up */

struct netwatch {
	int			 fd;
	struct event		*ev_read;
	struct event		*ev_timer;	/* debounce, one-shot */
	unsigned int		 quiet_ms;
	unsigned int		 max_ms;
	bool			 pending;	/* a burst is being debounced */
	uint64_t		 first_ms;	/* its first event */
	unsigned int		 nevents;	/* ... and how many */
	void			(*cb)(void *);
	void			*arg;
	uint32_t		 buf[NETWATCH_BUF_SIZE / 4];	/* aligned */
};

static bool
netwatch_link_is_up(const struct nlmsghdr *nh)
{
	const struct ifinfomsg	*ifi;

	if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
		return false;
	ifi = NLMSG_DATA(nh);
	return (ifi->ifi_flags & IFF_LOOPBACK) == 0 &&
	    (ifi->ifi_flags & IFF_UP) != 0 &&
	    (ifi->ifi_flags & IFF_RUNNING) != 0;
}

static bool
netwatch_addr_is_usable(const struct nlmsghdr *nh)
{
	const struct ifaddrmsg	*ifa;

	if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifa)))
		return false;
	ifa = NLMSG_DATA(nh);
	/* A tentative IPv6 address cannot be used until duplicate address
	 * detection ends; the kernel announces it again then. */
	return (ifa->ifa_family == AF_INET || ifa->ifa_family == AF_INET6) &&
	    ifa->ifa_scope != RT_SCOPE_HOST &&
	    (ifa->ifa_flags & IFA_F_TENTATIVE) == 0;
}

static bool
netwatch_route_is_default(const struct nlmsghdr *nh)
{
	const struct rtmsg	*rtm;
	const struct rtattr	*rta;
	uint32_t		 table;
	int			 alen;

	if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(*rtm)))
		return false;
	rtm = NLMSG_DATA(nh);
	if ((rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) ||
	    rtm->rtm_dst_len != 0 || rtm->rtm_type != RTN_UNICAST)
		return false;
	/* Table ids above 255 only fit in the RTA_TABLE attribute. */
	table = rtm->rtm_table;
	alen = (int)(nh->nlmsg_len - NLMSG_LENGTH(sizeof(*rtm)));
	for (rta = RTM_RTA(rtm); RTA_OK(rta, alen); rta = RTA_NEXT(rta, alen))
		if (rta->rta_type == RTA_TABLE &&
		    RTA_PAYLOAD(rta) >= sizeof(table))
			memcpy(&table, RTA_DATA(rta), sizeof(table));
	return table == RT_TABLE_MAIN;
}

bool
netwatch_is_return(const void *buf, size_t len)
{
	const struct nlmsghdr	*nh = buf;
	size_t			 step;

	/* NLMSG_OK() and NLMSG_NEXT() in unsigned arithmetic, stopping
	 * before a pointer could pass the end of <buf>. */
	while (len >= sizeof(*nh) && nh->nlmsg_len >= sizeof(*nh) &&
	    nh->nlmsg_len <= len) {
		switch (nh->nlmsg_type) {
		case RTM_NEWLINK:
			if (netwatch_link_is_up(nh))
				return true;
			break;
		case RTM_NEWADDR:
			if (netwatch_addr_is_usable(nh))
				return true;
			break;
		case RTM_NEWROUTE:
			if (netwatch_route_is_default(nh))
				return true;
			break;
		default:
			break;
		}
		step = NLMSG_ALIGN(nh->nlmsg_len);
		if (step >= len)
			break;
		len -= step;
		nh = (const struct nlmsghdr *)((const char *)nh + step);
	}
	return false;
}

/* A relevant event: (re)arm the one-shot timer, bounded by max_ms after
 * the first event of the burst so that a flapping link still gets its
 * probe. */
static void
netwatch_note(struct netwatch *nw)
{
	struct timeval	tv;
	uint64_t	now = time_mono_ms(), due;

	if (!nw->pending) {
		nw->pending = true;
		nw->first_ms = now;
		nw->nevents = 0;
	}
	nw->nevents++;
	due = now + nw->quiet_ms;
	if (due > nw->first_ms + nw->max_ms)
		due = nw->first_ms + nw->max_ms;
	due = due > now ? due - now : 0;
	tv.tv_sec = (time_t)(due / 1000);
	tv.tv_usec = (suseconds_t)(due % 1000 * 1000);
	if (evtimer_add(nw->ev_timer, &tv) == -1)
		log_warnx("netwatch cannot arm its timer");
}

static void
netwatch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct netwatch	*nw = arg;

	(void)fd;
	(void)what;
	log_info("network changed: probing upstream events=%u", nw->nevents);
	nw->pending = false;
	nw->cb(nw->arg);
}

static void
netwatch_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct netwatch		*nw = arg;
	struct sockaddr_nl	 from;
	socklen_t		 fromlen;
	ssize_t			 n;
	int			 i;
	bool			 changed = false;

	(void)what;
	for (i = 0; i < NETWATCH_READS_MAX; i++) {
		fromlen = sizeof(from);
		memset(&from, 0, sizeof(from));
		n = recvfrom(fd, nw->buf, sizeof(nw->buf), MSG_TRUNC,
		    (struct sockaddr *)&from, &fromlen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == -1 && errno == ENOBUFS) {
			/* Overrun: events were lost, assume the worst. */
			changed = true;
			continue;
		}
		if (n == -1) {
			log_warn("netwatch recv; network changes are "
			    "noticed by the probe timer only");
			event_del(nw->ev_read);
			break;
		}
		if (n == 0)
			break;
		/* Only the kernel speaks for the network. */
		if (fromlen >= sizeof(from) && from.nl_family == AF_NETLINK &&
		    from.nl_pid != 0)
			continue;
		if ((size_t)n > sizeof(nw->buf) ||
		    netwatch_is_return(nw->buf, (size_t)n))
			changed = true;	/* truncated: assume the worst too */
	}
	if (changed)
		netwatch_note(nw);
}

struct netwatch *
netwatch_new_fd(struct event_base *base, int fd, unsigned int quiet_ms,
    unsigned int max_ms, void (*cb)(void *), void *arg)
{
	struct netwatch	*nw;

	nw = xcalloc(1, sizeof(*nw));
	nw->fd = fd;
	nw->quiet_ms = quiet_ms;
	nw->max_ms = max_ms < quiet_ms ? quiet_ms : max_ms;
	nw->cb = cb;
	nw->arg = arg;
	nw->ev_read = event_new(base, fd, EV_READ | EV_PERSIST,
	    netwatch_read_cb, nw);
	nw->ev_timer = evtimer_new(base, netwatch_timer_cb, nw);
	if (nw->ev_read == NULL || nw->ev_timer == NULL ||
	    event_add(nw->ev_read, NULL) == -1) {
		log_warnx("netwatch cannot set up its events");
		netwatch_free(nw);
		return NULL;
	}
	return nw;
}

struct netwatch *
netwatch_new(struct event_base *base, void (*cb)(void *), void *arg)
{
	struct sockaddr_nl	sa;
	int			fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    NETLINK_ROUTE);
	if (fd == -1) {
		log_warn("netwatch cannot open a netlink socket; network "
		    "changes are noticed by the probe timer only");
		return NULL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
	    RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		log_warn("netwatch cannot subscribe to netlink; network "
		    "changes are noticed by the probe timer only");
		close(fd);
		return NULL;
	}
	log_debug("netwatch watching links, addresses and routes");
	return netwatch_new_fd(base, fd, NETWATCH_QUIET_MS,
	    NETWATCH_MAX_WAIT_MS, cb, arg);
}

void
netwatch_free(struct netwatch *nw)
{
	if (nw == NULL)
		return;
	if (nw->ev_read != NULL)
		event_free(nw->ev_read);
	if (nw->ev_timer != NULL)
		event_free(nw->ev_timer);
	close(nw->fd);
	free(nw);
}
