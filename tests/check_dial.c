/*
 * check_dial.c - unit tests for dial.c: the RFC 8305 address order
 * (table-driven), and whole dials over real loopback sockets.  The
 * name "multi.test" resolves to ::1 and 127.0.0.1 through an evdns_base
 * without nameservers that loaded a temporary hosts file.  A listener
 * whose accept queue is full drops SYNs, which stands in for a
 * firewall's blackhole without needing root.  Every loop is bounded by
 * a timer; nothing sleeps.
 */
#include "config.h"

#include "dial.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "cidr.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* dial_order */

static const struct {
	const char	*families;	/* '6' AF_INET6, '4' AF_INET */
	const char	*want;		/* indices, one digit each */
} order_cases[] = {
	{ "",		"" },
	{ "4",		"0" },
	{ "6",		"0" },
	{ "44",		"01" },
	{ "66",		"01" },
	{ "64",		"01" },
	{ "46",		"10" },		/* IPv6 first when both exist */
	{ "6644",	"0213" },
	{ "4466",	"2031" },
	{ "46464",	"10324" },
	{ "66646",	"03124" },
	{ "44446",	"40123" },
	{ "64444",	"01234" },
	{ "4666",	"1023" },
};

START_TEST(test_order)
{
	const char	*fam = order_cases[_i].families;
	int		 family[16] = { 0 };
	size_t		 order[16], n = strlen(fam), i;
	char		 got[17];

	for (i = 0; i < n; i++)
		family[i] = fam[i] == '6' ? AF_INET6 : AF_INET;
	dial_order(family, n, order);
	for (i = 0; i < n; i++)
		got[i] = (char)('0' + order[i]);
	got[n] = '\0';
	ck_assert_msg(strcmp(got, order_cases[_i].want) == 0,
	    "families %s: want order %s, got %s", fam,
	    order_cases[_i].want, got);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Dials over loopback */

struct world {
	struct event_base	*base;
	struct evdns_base	*dns;
	struct event		*guard;		/* bounds each loop */
	char			 hosts[64];
	uint16_t		 port;		/* same on ::1 and 127.0.0.1 */
	int			 fd4, fd6;	/* listeners or placeholders */
	int			 filler;	/* fills a full accept queue */
};

struct outcome {
	struct world	*w;
	unsigned int	 calls;
	int		 fd;
	int		 err;		/* DIAL_EDNS or an errno */
	char		 addr[INET6_ADDRSTRLEN];
	char		 error[DIAL_ERROR_MAX];
	bool		 free_in_cb;	/* dial_free() from the callback */
};

static struct world	W;

static void
world_guard_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static void
world_setup(void)
{
	FILE	*fp;
	int	 fd;

	memset(&W, 0, sizeof(W));
	W.fd4 = W.fd6 = W.filler = -1;
	snprintf(W.hosts, sizeof(W.hosts), "/tmp/check_dial.XXXXXX");
	fd = mkstemp(W.hosts);
	ck_assert_int_ne(fd, -1);
	fp = fdopen(fd, "w");
	ck_assert_ptr_nonnull(fp);
	fputs("::1 multi.test\n127.0.0.1 multi.test\n"
	    "::1 six.test\n", fp);
	ck_assert_int_eq(fclose(fp), 0);
	W.base = event_base_new();
	ck_assert_ptr_nonnull(W.base);
	W.dns = evdns_base_new(W.base, 0);
	ck_assert_ptr_nonnull(W.dns);
	ck_assert_int_eq(evdns_base_load_hosts(W.dns, W.hosts), 0);
	W.guard = evtimer_new(W.base, world_guard_cb, W.base);
	ck_assert_ptr_nonnull(W.guard);
}

static void
world_teardown(void)
{
	if (W.filler != -1)
		close(W.filler);
	if (W.fd4 != -1)
		close(W.fd4);
	if (W.fd6 != -1)
		close(W.fd6);
	event_free(W.guard);
	evdns_base_free(W.dns, 0);
	event_base_free(W.base);
	unlink(W.hosts);
}

/* A TCP socket bound to loopback of <family> on <port> (0: any), and
 * listening with <backlog> unless it is -1 (then connecting to it is
 * refused).  Returns the socket, or -1 when the port is taken. */
static int
bound(int family, uint16_t port, int backlog)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 len;
	int			 fd, on = 1;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	}
	fd = socket(family, SOCK_STREAM, 0);
	ck_assert_int_ne(fd, -1);
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1) {
		ck_assert_int_eq(errno, EADDRINUSE);
		close(fd);
		return -1;
	}
	if (backlog >= 0)
		ck_assert_int_eq(listen(fd, backlog), 0);
	return fd;
}

static uint16_t
bound_port(int fd)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(ss);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	return ntohs(ss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* One port with sockets on both loopback addresses: backlog -1 means
 * bound but not listening (refused), -2 a listener whose accept queue
 * is full (SYNs dropped: a blackhole). */
static void
world_ports(int backlog4, int backlog6)
{
	int	i;

	for (i = 0; i < 100 && W.fd6 == -1; i++) {
		W.fd4 = bound(AF_INET, 0, backlog4 == -2 ? 0 : backlog4);
		W.port = bound_port(W.fd4);
		W.fd6 = bound(AF_INET6, W.port, backlog6 == -2 ? 0 : backlog6);
		if (W.fd6 == -1) {
			close(W.fd4);
			W.fd4 = -1;
		}
	}
	ck_assert_int_ne(W.fd6, -1);
	if (backlog6 == -2) {
		struct sockaddr_in6	sin6;

		/* One connection nobody accepts fills a queue of 0. */
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(W.port);
		sin6.sin6_addr = in6addr_loopback;
		W.filler = socket(AF_INET6, SOCK_STREAM, 0);
		ck_assert_int_eq(connect(W.filler, (struct sockaddr *)&sin6,
		    sizeof(sin6)), 0);
	}
	ck_assert_int_ne(backlog4, -2);
}

static void
outcome_cb(struct dial *d, int fd, const struct sockaddr *sa,
    socklen_t salen, int err, const char *error, void *arg)
{
	struct outcome	*o = arg;

	o->calls++;
	o->err = err;
	o->fd = fd;
	o->addr[0] = '\0';
	o->error[0] = '\0';
	if (fd != -1) {
		ck_assert_ptr_nonnull(sa);
		ck_assert_uint_ge(salen, sizeof(struct sockaddr_in));
		ck_assert_ptr_null(error);
		cidr_addr_str(sa, o->addr, sizeof(o->addr));
	} else {
		ck_assert_ptr_null(sa);
		ck_assert_ptr_nonnull(error);
		snprintf(o->error, sizeof(o->error), "%s", error);
	}
	if (o->free_in_cb)
		dial_free(d);
	event_base_loopbreak(o->w->base);
}

/* Runs the loop until the next callback (or <secs>); then lets what
 * is already due run, so a second callback would be seen. */
static void
world_run(struct outcome *o, unsigned int calls, int secs)
{
	struct timeval	tv = { secs, 0 };

	evtimer_add(W.guard, &tv);
	while (o->calls < calls && evtimer_pending(W.guard, NULL))
		event_base_loop(W.base, EVLOOP_ONCE);
	evtimer_del(W.guard);
	ck_assert_msg(o->calls == calls, "%u callbacks, want %u", o->calls,
	    calls);
	event_base_loop(W.base, EVLOOP_NONBLOCK);
	event_base_loop(W.base, EVLOOP_NONBLOCK);
	ck_assert_uint_eq(o->calls, calls);
}

static void
peer_is(int fd, const char *addr)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(ss);
	char			buf[INET6_ADDRSTRLEN];

	ck_assert_int_eq(getpeername(fd, (struct sockaddr *)&ss, &len), 0);
	ck_assert_str_eq(cidr_addr_str((struct sockaddr *)&ss, buf,
	    sizeof(buf)), addr);
}

/* Nagle is off: the final dot after a large body goes at once, not
 * after the upstream's delayed ACK of the body. */
static void
nodelay_is_set(int fd)
{
	int		on = 0;
	socklen_t	len = sizeof(on);

	ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
	    &len), 0);
	ck_assert_int_ne(on, 0);
}

static double
mono(void)
{
	return (double)time_mono_ms() / 1000.0;
}

/* Nothing listens on ::1, 127.0.0.1 listens: the second address
 * connects, and no callback comes from inside dial_new(). */
START_TEST(test_refused_then_v4)
{
	struct outcome	 o = { .w = &W, .free_in_cb = true };
	struct dial	*d;

	world_ports(8, -1);
	d = dial_new(W.base, W.dns, "multi.test", W.port, AF_UNSPEC, 10,
	    outcome_cb, &o);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(o.calls, 0);
	world_run(&o, 1, 20);
	ck_assert_int_ne(o.fd, -1);
	ck_assert_str_eq(o.addr, "127.0.0.1");
	peer_is(o.fd, "127.0.0.1");
	nodelay_is_set(o.fd);
	close(o.fd);
}
END_TEST

/* Both refused: exactly one failure, naming both addresses in the
 * order tried. */
START_TEST(test_all_refused)
{
	struct outcome	 o = { .w = &W, .free_in_cb = true };
	struct dial	*d;
	char		 want[160];

	world_ports(-1, -1);
	d = dial_new(W.base, W.dns, "multi.test", W.port, AF_UNSPEC, 10,
	    outcome_cb, &o);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(o.calls, 0);
	world_run(&o, 1, 20);
	ck_assert_int_eq(o.fd, -1);
	snprintf(want, sizeof(want), "cannot connect to multi.test:%u: "
	    "[::1]: %s, [127.0.0.1]: %s", W.port, strerror(ECONNREFUSED),
	    strerror(ECONNREFUSED));
	ck_assert_str_eq(o.error, want);
	ck_assert_int_eq(o.err, ECONNREFUSED);
}
END_TEST

/* Both listen: the first winner is handed back with dial_next(), and
 * the other address follows; then nothing is left. */
START_TEST(test_next_after_win)
{
	struct outcome	 o = { .w = &W };
	struct dial	*d;
	char		 first[INET6_ADDRSTRLEN];

	world_ports(8, 8);
	d = dial_new(W.base, W.dns, "multi.test", W.port, AF_UNSPEC, 10,
	    outcome_cb, &o);
	ck_assert_ptr_nonnull(d);
	world_run(&o, 1, 20);
	ck_assert_int_ne(o.fd, -1);
	/* ::1 normally, unless the stagger fired first on a slow box. */
	snprintf(first, sizeof(first), "%s", o.addr);
	close(o.fd);
	ck_assert_int_eq(dial_next(d, "greeting: 421 go away"), 0);
	ck_assert_uint_eq(o.calls, 1);
	world_run(&o, 2, 20);
	ck_assert_int_ne(o.fd, -1);
	ck_assert_str_ne(o.addr, first);
	ck_assert(strcmp(o.addr, "::1") == 0 ||
	    strcmp(o.addr, "127.0.0.1") == 0);
	peer_is(o.fd, o.addr);
	close(o.fd);
	ck_assert_int_eq(dial_next(d, "TLS failed"), -1);
	dial_free(d);
}
END_TEST

/* After dial_next(), a failure of the rest names what the first one
 * did, too. */
START_TEST(test_next_then_refused)
{
	struct outcome	 o = { .w = &W, .free_in_cb = false };
	struct dial	*d;
	char		 want[200];

	world_ports(-1, 8);
	d = dial_new(W.base, W.dns, "multi.test", W.port, AF_UNSPEC, 10,
	    outcome_cb, &o);
	world_run(&o, 1, 20);
	ck_assert_str_eq(o.addr, "::1");
	close(o.fd);
	ck_assert_int_eq(dial_next(d, "greeting: 421 go away"), 0);
	world_run(&o, 2, 20);
	ck_assert_int_eq(o.fd, -1);
	snprintf(want, sizeof(want), "cannot connect to multi.test:%u: "
	    "[::1]: greeting: 421 go away, [127.0.0.1]: %s", W.port,
	    strerror(ECONNREFUSED));
	ck_assert_str_eq(o.error, want);
	dial_free(d);
}
END_TEST

/* AF_INET only ever tries 127.0.0.1, although ::1 would answer. */
START_TEST(test_family_ipv4)
{
	struct outcome	 o = { .w = &W };
	struct dial	*d;

	world_ports(8, 8);
	d = dial_new(W.base, W.dns, "multi.test", W.port, AF_INET, 10,
	    outcome_cb, &o);
	world_run(&o, 1, 20);
	ck_assert_str_eq(o.addr, "127.0.0.1");
	close(o.fd);
	ck_assert_int_eq(dial_next(d, "no"), -1);
	dial_free(d);
}
END_TEST

/* A name with no address of the family asked for. */
START_TEST(test_family_missing)
{
	struct outcome	 o = { .w = &W, .free_in_cb = true };

	world_ports(8, 8);
	ck_assert_ptr_nonnull(dial_new(W.base, W.dns, "six.test", W.port,
	    AF_INET, 10, outcome_cb, &o));
	ck_assert_uint_eq(o.calls, 0);
	world_run(&o, 1, 20);
	ck_assert_str_eq(o.error, "cannot resolve six.test: no IPv4 address");
	ck_assert_int_eq(o.err, DIAL_EDNS);
}
END_TEST

/* ::1 drops the SYN: 127.0.0.1 starts after the stagger delay and
 * wins long before the per-address timeout; the ::1 attempt is
 * cancelled, and dial_next() tries it again. */
START_TEST(test_blackhole_stagger)
{
	struct outcome	 o = { .w = &W };
	struct dial	*d;
	double		 t0 = mono(), took;

	world_ports(8, -2);
	d = dial_new(W.base, W.dns, "multi.test", W.port, AF_UNSPEC, 5,
	    outcome_cb, &o);
	world_run(&o, 1, 20);
	took = mono() - t0;
	ck_assert_str_eq(o.addr, "127.0.0.1");
	ck_assert_msg(took >= DIAL_STAGGER_MS / 1000.0 - 0.01,
	    "won after %.3fs, before the stagger delay", took);
	ck_assert_msg(took < 5.0, "won after %.3fs: not before ::1 timed out",
	    took);
	close(o.fd);
	/* The cancelled ::1 counts as untried: it gets its own timeout. */
	ck_assert_int_eq(dial_next(d, "no"), 0);
	world_run(&o, 2, 20);
	ck_assert_int_eq(o.fd, -1);
	ck_assert_ptr_nonnull(strstr(o.error, "[::1]: timed out"));
	ck_assert_int_eq(o.err, ETIMEDOUT);
	dial_free(d);
}
END_TEST

/* A pending address that never answers fails after its timeout. */
START_TEST(test_timeout)
{
	struct outcome	 o = { .w = &W, .free_in_cb = true };
	double		 t0 = mono();
	char		 want[100];

	world_ports(8, -2);
	ck_assert_ptr_nonnull(dial_new(W.base, W.dns, "multi.test", W.port,
	    AF_INET6, 1, outcome_cb, &o));
	world_run(&o, 1, 20);
	ck_assert_double_ge(mono() - t0, 0.9);
	snprintf(want, sizeof(want), "cannot connect to multi.test:%u: "
	    "[::1]: timed out", W.port);
	ck_assert_str_eq(o.error, want);
}
END_TEST

/* A name the resolver cannot answer (no nameservers): the resolution
 * is bounded by the timeout, then cancelled. */
START_TEST(test_resolve_timeout)
{
	struct outcome	 o = { .w = &W, .free_in_cb = true };

	ck_assert_ptr_nonnull(dial_new(W.base, W.dns, "nosuch.test", 25,
	    AF_UNSPEC, 1, outcome_cb, &o));
	world_run(&o, 1, 20);
	ck_assert_str_eq(o.error, "cannot resolve nosuch.test: timed out");
	ck_assert_int_eq(o.err, DIAL_EDNS);
}
END_TEST

/* Freed while resolving: no callback, and the late cancel answer from
 * evdns finds no dial. */
START_TEST(test_free_resolving)
{
	struct outcome	 o = { .w = &W };
	struct dial	*d;
	struct timeval	 tv = { 0, 200 * 1000 };

	d = dial_new(W.base, W.dns, "nosuch.test", 25, AF_UNSPEC, 10,
	    outcome_cb, &o);
	ck_assert_ptr_nonnull(d);
	dial_free(d);
	event_base_loopexit(W.base, &tv);
	event_base_dispatch(W.base);
	ck_assert_uint_eq(o.calls, 0);
}
END_TEST

/* Freed while connecting (::1 pending in a blackhole). */
START_TEST(test_free_connecting)
{
	struct outcome	 o = { .w = &W };
	struct dial	*d;
	struct timeval	 tv = { 0, 100 * 1000 };

	world_ports(-1, -2);
	d = dial_new(W.base, W.dns, "multi.test", W.port, AF_INET6, 10,
	    outcome_cb, &o);
	event_base_loopexit(W.base, &tv);
	event_base_dispatch(W.base);
	dial_free(d);
	event_base_loop(W.base, EVLOOP_NONBLOCK);
	ck_assert_uint_eq(o.calls, 0);
}
END_TEST

/* No resolver: numeric hosts work, names fail clearly. */
START_TEST(test_no_resolver)
{
	struct outcome	 o = { .w = &W, .free_in_cb = true };

	world_ports(8, 8);
	ck_assert_ptr_nonnull(dial_new(W.base, NULL, "127.0.0.1", W.port,
	    AF_UNSPEC, 10, outcome_cb, &o));
	ck_assert_uint_eq(o.calls, 0);
	world_run(&o, 1, 20);
	ck_assert_str_eq(o.addr, "127.0.0.1");
	close(o.fd);
	ck_assert_ptr_nonnull(dial_new(W.base, NULL, "multi.test", W.port,
	    AF_UNSPEC, 10, outcome_cb, &o));
	ck_assert_uint_eq(o.calls, 1);
	world_run(&o, 2, 20);
	ck_assert_int_eq(o.fd, -1);
	ck_assert_msg(strncmp(o.error, "cannot resolve multi.test: ", 27)
	    == 0, "%s", o.error);
}
END_TEST

/* A numeric host with its one address: no "[addr]: " repeat. */
START_TEST(test_numeric_refused)
{
	struct outcome	 o = { .w = &W, .free_in_cb = true };
	char		 want[100];

	world_ports(-1, -1);
	ck_assert_ptr_nonnull(dial_new(W.base, W.dns, "127.0.0.1", W.port,
	    AF_UNSPEC, 10, outcome_cb, &o));
	ck_assert_uint_eq(o.calls, 0);
	world_run(&o, 1, 20);
	snprintf(want, sizeof(want), "cannot connect to 127.0.0.1:%u: %s",
	    W.port, strerror(ECONNREFUSED));
	ck_assert_str_eq(o.error, want);
}
END_TEST

static Suite *
dial_suite(void)
{
	Suite	*s = suite_create("dial");
	TCase	*tc;

	tc = tcase_create("order");
	tcase_add_loop_test(tc, test_order, 0, nitems(order_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("loopback");
	tcase_add_checked_fixture(tc, world_setup, world_teardown);
	tcase_add_test(tc, test_refused_then_v4);
	tcase_add_test(tc, test_all_refused);
	tcase_add_test(tc, test_next_after_win);
	tcase_add_test(tc, test_next_then_refused);
	tcase_add_test(tc, test_family_ipv4);
	tcase_add_test(tc, test_family_missing);
	tcase_add_test(tc, test_blackhole_stagger);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_resolve_timeout);
	tcase_add_test(tc, test_free_resolving);
	tcase_add_test(tc, test_free_connecting);
	tcase_add_test(tc, test_no_resolver);
	tcase_add_test(tc, test_numeric_refused);
	/* Each test is bounded by its own loop guard (20 s at most); this
	 * is the backstop for a loaded machine. */
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(dial_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
