/*
 * check_netwatch.c - unit tests for the network watcher: which rtnetlink
 * messages mean "the network may be back" (netwatch_is_return, with
 * hand-built datagrams and a random-bytes loop that must never read out
 * of bounds), and the debounce, driven over a datagram socketpair with
 * short delays instead of a netlink socket.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <event2/event.h>

#include "netwatch.h"
#include "util.h"

/* A datagram being built; uint32_t keeps it aligned as netlink is. */
struct nlbuf {
	uint32_t	w[512];
	size_t		len;
};

/* Appends a message of <type> with <body> and returns its header. */
static struct nlmsghdr *
nb_msg(struct nlbuf *b, uint16_t type, const void *body, size_t bodylen)
{
	struct nlmsghdr	*nh = (struct nlmsghdr *)((char *)b->w + b->len);

	ck_assert_uint_le(b->len + NLMSG_SPACE(bodylen), sizeof(b->w));
	memset(nh, 0, NLMSG_SPACE(bodylen));
	nh->nlmsg_len = NLMSG_LENGTH(bodylen);
	nh->nlmsg_type = type;
	memcpy(NLMSG_DATA(nh), body, bodylen);
	b->len += NLMSG_SPACE(bodylen);
	return nh;
}

/* Appends an attribute to <nh>, the last message in <b>. */
static void
nb_attr(struct nlbuf *b, struct nlmsghdr *nh, uint16_t type,
    const void *data, size_t len)
{
	struct rtattr	*rta = (struct rtattr *)((char *)nh +
			    NLMSG_ALIGN(nh->nlmsg_len));

	ck_assert_uint_le(b->len + RTA_SPACE(len), sizeof(b->w));
	memset(rta, 0, RTA_SPACE(len));
	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_SPACE(len);
	b->len = (size_t)((char *)nh - (char *)b->w) + nh->nlmsg_len;
}

#define UPRUN	(IFF_UP | IFF_RUNNING)

static const struct {
	const char	*name;
	uint16_t	 type;
	unsigned int	 flags;		/* ifi_flags or ifa_flags */
	unsigned char	 family, scope, dst_len, table, rtype;
	uint32_t	 rta_table;	/* 0: no RTA_TABLE attribute */
	bool		 want;
} cases[] = {
	{ "link up", RTM_NEWLINK, UPRUN, 0, 0, 0, 0, 0, 0, true },
	{ "link up, no carrier", RTM_NEWLINK, IFF_UP, 0, 0, 0, 0, 0, 0,
	    false },
	{ "link down", RTM_NEWLINK, IFF_RUNNING, 0, 0, 0, 0, 0, 0, false },
	{ "loopback up", RTM_NEWLINK, UPRUN | IFF_LOOPBACK, 0, 0, 0, 0, 0, 0,
	    false },
	{ "link deleted", RTM_DELLINK, UPRUN, 0, 0, 0, 0, 0, 0, false },
	{ "v4 address", RTM_NEWADDR, 0, AF_INET, RT_SCOPE_UNIVERSE, 0, 0, 0,
	    0, true },
	{ "v6 link-local", RTM_NEWADDR, 0, AF_INET6, RT_SCOPE_LINK, 0, 0, 0,
	    0, true },
	{ "host-scope address", RTM_NEWADDR, 0, AF_INET, RT_SCOPE_HOST, 0, 0,
	    0, 0, false },
	{ "tentative v6", RTM_NEWADDR, IFA_F_TENTATIVE, AF_INET6,
	    RT_SCOPE_UNIVERSE, 0, 0, 0, 0, false },
	{ "address deleted", RTM_DELADDR, 0, AF_INET, RT_SCOPE_UNIVERSE, 0, 0,
	    0, 0, false },
	{ "address, other family", RTM_NEWADDR, 0, AF_PACKET,
	    RT_SCOPE_UNIVERSE, 0, 0, 0, 0, false },
	{ "v4 default", RTM_NEWROUTE, 0, AF_INET, 0, 0, RT_TABLE_MAIN,
	    RTN_UNICAST, 0, true },
	{ "v6 default", RTM_NEWROUTE, 0, AF_INET6, 0, 0, RT_TABLE_MAIN,
	    RTN_UNICAST, 0, true },
	{ "default, RTA_TABLE main", RTM_NEWROUTE, 0, AF_INET, 0, 0,
	    RT_TABLE_COMPAT, RTN_UNICAST, RT_TABLE_MAIN, true },
	{ "default, RTA_TABLE 1000", RTM_NEWROUTE, 0, AF_INET, 0, 0,
	    RT_TABLE_MAIN, RTN_UNICAST, 1000, false },
	{ "subnet route", RTM_NEWROUTE, 0, AF_INET, 0, 24, RT_TABLE_MAIN,
	    RTN_UNICAST, 0, false },
	{ "default, local table", RTM_NEWROUTE, 0, AF_INET, 0, 0,
	    RT_TABLE_LOCAL, RTN_UNICAST, 0, false },
	{ "unreachable default", RTM_NEWROUTE, 0, AF_INET, 0, 0,
	    RT_TABLE_MAIN, RTN_UNREACHABLE, 0, false },
	{ "default deleted", RTM_DELROUTE, 0, AF_INET, 0, 0, RT_TABLE_MAIN,
	    RTN_UNICAST, 0, false },
	{ "neighbour", RTM_NEWNEIGH, 0, AF_INET, 0, 0, 0, 0, 0, false },
	{ "done", NLMSG_DONE, 0, 0, 0, 0, 0, 0, 0, false },
	{ "error", NLMSG_ERROR, 0, 0, 0, 0, 0, 0, 0, false },
};

/* Builds cases[i] into <b> and returns its header. */
static struct nlmsghdr *
build_case(struct nlbuf *b, size_t i)
{
	struct ifinfomsg	ifi;
	struct ifaddrmsg	ifa;
	struct rtmsg		rtm;
	struct nlmsghdr		*nh;
	uint32_t		gw = 0x0100000a;

	switch (cases[i].type) {
	case RTM_NEWLINK:
	case RTM_DELLINK:
		memset(&ifi, 0, sizeof(ifi));
		ifi.ifi_index = 2;
		ifi.ifi_flags = cases[i].flags;
		return nb_msg(b, cases[i].type, &ifi, sizeof(ifi));
	case RTM_NEWADDR:
	case RTM_DELADDR:
		memset(&ifa, 0, sizeof(ifa));
		ifa.ifa_family = cases[i].family;
		ifa.ifa_flags = (unsigned char)cases[i].flags;
		ifa.ifa_scope = cases[i].scope;
		ifa.ifa_index = 2;
		return nb_msg(b, cases[i].type, &ifa, sizeof(ifa));
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
		memset(&rtm, 0, sizeof(rtm));
		rtm.rtm_family = cases[i].family;
		rtm.rtm_dst_len = cases[i].dst_len;
		rtm.rtm_table = cases[i].table;
		rtm.rtm_type = cases[i].rtype;
		nh = nb_msg(b, cases[i].type, &rtm, sizeof(rtm));
		nb_attr(b, nh, RTA_GATEWAY, &gw, sizeof(gw));
		if (cases[i].rta_table != 0)
			nb_attr(b, nh, RTA_TABLE, &cases[i].rta_table,
			    sizeof(cases[i].rta_table));
		return nh;
	default:
		/* Zeroed bodies big enough for any of the three. */
		memset(&rtm, 0, sizeof(rtm));
		memset(&ifi, 0, sizeof(ifi));
		return nb_msg(b, cases[i].type, &ifi, sizeof(ifi));
	}
}

START_TEST(test_classify)
{
	struct nlbuf	b = { .len = 0 };

	build_case(&b, (size_t)_i);
	ck_assert_msg(netwatch_is_return(b.w, b.len) == cases[_i].want,
	    "case \"%s\"", cases[_i].name);
}
END_TEST

/* A relevant message after irrelevant ones in one datagram counts. */
START_TEST(test_classify_multipart)
{
	struct nlbuf	b = { .len = 0 };

	build_case(&b, 2);		/* link down */
	build_case(&b, 16);		/* default, local table */
	ck_assert(!netwatch_is_return(b.w, b.len));
	build_case(&b, 11);		/* v4 default */
	ck_assert(netwatch_is_return(b.w, b.len));
}
END_TEST

/* Lengths that do not add up are never followed. */
START_TEST(test_classify_bad_lengths)
{
	struct nlbuf	 b = { .len = 0 };
	struct nlmsghdr	*nh;

	ck_assert(!netwatch_is_return(b.w, 0));
	nh = build_case(&b, 0);		/* link up */
	ck_assert(netwatch_is_return(b.w, b.len));
	/* The datagram is shorter than the message claims. */
	ck_assert(!netwatch_is_return(b.w, b.len - 1));
	ck_assert(!netwatch_is_return(b.w, sizeof(*nh) - 1));
	/* The message is shorter than its fixed part. */
	nh->nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg) - 1);
	ck_assert(!netwatch_is_return(b.w, b.len));
	nh->nlmsg_len = sizeof(*nh) - 1;
	ck_assert(!netwatch_is_return(b.w, b.len));
	nh->nlmsg_len = UINT32_MAX;
	ck_assert(!netwatch_is_return(b.w, b.len));
}
END_TEST

/* A route whose attributes overrun the message: no attribute is read
 * outside it, and the fixed part still decides. */
START_TEST(test_classify_bad_rta)
{
	struct nlbuf	 b = { .len = 0 };
	struct nlmsghdr	*nh;
	struct rtattr	*rta;

	nh = build_case(&b, 13);	/* default, RTA_TABLE main */
	ck_assert(netwatch_is_return(b.w, b.len));
	rta = RTM_RTA((struct rtmsg *)NLMSG_DATA(nh));
	rta = (struct rtattr *)((char *)rta + RTA_ALIGN(rta->rta_len));
	ck_assert_uint_eq(rta->rta_type, RTA_TABLE);
	rta->rta_len = 200;		/* past the end: not followed */
	ck_assert(!netwatch_is_return(b.w, b.len));	/* table COMPAT */
	rta->rta_len = RTA_LENGTH(2);	/* too short for a table id */
	ck_assert(!netwatch_is_return(b.w, b.len));
}
END_TEST

/*
 * Random bytes, and valid datagrams with random damage, in buffers of
 * exactly their length: under the sanitizers any read past the end is
 * a failure.
 */
START_TEST(test_classify_fuzz)
{
	struct nlbuf	 b;
	uint32_t	*copy;
	size_t		 len, j, k;
	unsigned int	 seed = 12345;
	int		 round;

	for (round = 0; round < 20000; round++) {
		b.len = 0;
		if (round % 2 == 0) {
			len = (size_t)rand_r(&seed) % 600;
			for (j = 0; j < nitems(b.w); j++)
				b.w[j] = (uint32_t)rand_r(&seed);
			/* Small lengths make long message chains. */
			if (len >= 4 && rand_r(&seed) % 2 == 0)
				b.w[0] = (uint32_t)rand_r(&seed) % 64;
		} else {
			k = 1 + (size_t)rand_r(&seed) % 4;
			for (j = 0; j < k; j++)
				build_case(&b, (size_t)rand_r(&seed) %
				    nitems(cases));
			for (j = 0; j < 4; j++)
				((unsigned char *)b.w)[(size_t)rand_r(&seed) %
				    b.len] = (unsigned char)rand_r(&seed);
			len = b.len - (size_t)rand_r(&seed) % 8 % b.len;
		}
		copy = xmalloc(len == 0 ? 1 : len);
		memcpy(copy, b.w, len);
		(void)netwatch_is_return(copy, len);
		free(copy);
	}
}
END_TEST

/* ---- debounce, over a socketpair ---- */

struct fixture {
	struct event_base	*base;
	struct netwatch		*nw;
	int			 peer;		/* our end */
	unsigned int		 calls;
	uint64_t		 t0, first_call;
	struct event		*flap;		/* sends every 20 ms */
	unsigned int		 nflaps;
};

static void
fx_cb(void *arg)
{
	struct fixture	*fx = arg;

	if (fx->calls++ == 0)
		fx->first_call = time_mono_ms();
}

static void
fx_setup(struct fixture *fx, unsigned int quiet_ms, unsigned int max_ms)
{
	int	sv[2];

	memset(fx, 0, sizeof(*fx));
	fx->base = event_base_new();
	ck_assert_ptr_nonnull(fx->base);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv), 0);
	fx->peer = sv[0];
	fx->nw = netwatch_new_fd(fx->base, sv[1], quiet_ms, max_ms, fx_cb,
	    fx);
	ck_assert_ptr_nonnull(fx->nw);
	/* Idle: only the read event, no timer. */
	ck_assert_int_eq(event_base_get_num_events(fx->base,
	    EVENT_BASE_COUNT_ADDED), 1);
}

static void
fx_teardown(struct fixture *fx)
{
	netwatch_free(fx->nw);
	if (fx->flap != NULL)
		event_free(fx->flap);
	close(fx->peer);
	event_base_free(fx->base);
}

/* Sends cases[i] as one datagram. */
static void
fx_send(struct fixture *fx, size_t i)
{
	struct nlbuf	b = { .len = 0 };

	build_case(&b, i);
	ck_assert_int_eq(send(fx->peer, b.w, b.len, 0), (ssize_t)b.len);
}

/* Runs the loop for <ms> milliseconds. */
static void
fx_run(struct fixture *fx, unsigned int ms)
{
	struct timeval	tv = { ms / 1000, ms % 1000 * 1000 };

	event_base_loopexit(fx->base, &tv);
	event_base_dispatch(fx->base);
}

START_TEST(test_debounce_once)
{
	struct fixture	fx;

	fx_setup(&fx, 100, 300);
	fx.t0 = time_mono_ms();
	fx_send(&fx, 0);		/* link up */
	fx_send(&fx, 11);		/* default route: same burst */
	fx_run(&fx, 400);
	ck_assert_uint_eq(fx.calls, 1);
	ck_assert_uint_ge(fx.first_call - fx.t0, 100);
	ck_assert_uint_lt(fx.first_call - fx.t0, 250);
	/* Back to idle: no timer left behind. */
	ck_assert_int_eq(event_base_get_num_events(fx.base,
	    EVENT_BASE_COUNT_ADDED), 1);
	/* A later event is a new burst. */
	fx_send(&fx, 5);		/* v4 address */
	fx_run(&fx, 250);
	ck_assert_uint_eq(fx.calls, 2);
	fx_teardown(&fx);
}
END_TEST

START_TEST(test_debounce_ignores)
{
	struct fixture	fx;
	size_t		i;

	fx_setup(&fx, 50, 100);
	for (i = 0; i < nitems(cases); i++)
		if (!cases[i].want)
			fx_send(&fx, i);
	fx_run(&fx, 200);
	ck_assert_uint_eq(fx.calls, 0);
	ck_assert_int_eq(event_base_get_num_events(fx.base,
	    EVENT_BASE_COUNT_ADDED), 1);
	fx_teardown(&fx);
}
END_TEST

static void
fx_flap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture	*fx = arg;
	struct timeval	 tv = { 0, 20 * 1000 };

	(void)fd;
	(void)what;
	fx_send(fx, fx->nflaps++ % 2 == 0 ? 2 : 0);	/* down, up */
	if (fx->calls == 0 && time_mono_ms() - fx->t0 < 300)
		evtimer_add(fx->flap, &tv);
}

/* Events every 20 ms for 300 ms never leave 300 ms of quiet: the cap
 * fires at 400 ms, not 300 ms after the last event. */
START_TEST(test_debounce_cap)
{
	struct fixture	fx;

	fx_setup(&fx, 300, 400);
	fx.flap = evtimer_new(fx.base, fx_flap_cb, &fx);
	fx.t0 = time_mono_ms();
	fx_flap_cb(-1, 0, &fx);
	fx_run(&fx, 900);
	ck_assert_uint_ge(fx.nflaps, 10);
	ck_assert_uint_eq(fx.calls, 1);
	ck_assert_uint_ge(fx.first_call - fx.t0, 390);
	ck_assert_uint_lt(fx.first_call - fx.t0, 560);
	fx_teardown(&fx);
}
END_TEST

/* Freeing with a call pending cancels it. */
START_TEST(test_free_pending)
{
	struct fixture	fx;

	fx_setup(&fx, 100, 300);
	fx_send(&fx, 0);
	fx_run(&fx, 20);
	ck_assert_int_eq(event_base_get_num_events(fx.base,
	    EVENT_BASE_COUNT_ADDED), 2);
	netwatch_free(fx.nw);
	fx.nw = NULL;
	fx_run(&fx, 200);
	ck_assert_uint_eq(fx.calls, 0);
	fx_teardown(&fx);
	netwatch_free(NULL);
}
END_TEST

/* The real socket: where netlink exists it subscribes; where it does
 * not, NULL (after a warning) is the documented answer. */
START_TEST(test_netlink_open)
{
	struct event_base	*base = event_base_new();
	struct netwatch		*nw;

	nw = netwatch_new(base, fx_cb, NULL);
	if (nw != NULL)
		ck_assert_int_eq(event_base_get_num_events(base,
		    EVENT_BASE_COUNT_ADDED), 1);
	netwatch_free(nw);
	event_base_free(base);
}
END_TEST

static Suite *
netwatch_suite(void)
{
	Suite	*s = suite_create("netwatch");
	TCase	*tc;

	tc = tcase_create("classify");
	tcase_add_loop_test(tc, test_classify, 0, nitems(cases));
	tcase_add_test(tc, test_classify_multipart);
	tcase_add_test(tc, test_classify_bad_lengths);
	tcase_add_test(tc, test_classify_bad_rta);
	tcase_add_test(tc, test_classify_fuzz);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	tc = tcase_create("debounce");
	tcase_add_test(tc, test_debounce_once);
	tcase_add_test(tc, test_debounce_ignores);
	tcase_add_test(tc, test_debounce_cap);
	tcase_add_test(tc, test_free_pending);
	tcase_add_test(tc, test_netlink_open);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(netwatch_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
