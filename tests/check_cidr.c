/*
 * check_cidr.c - unit tests for cidr.c: parsing networks, matching
 * IPv4, IPv6 and IPv4-mapped socket addresses, printing addresses.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "util.h"

/*
 * cidr_parse
 */
static const struct {
	const char	*s;
	int		 want;		/* 0 or -1 */
	int		 family;
	const char	*addr;		/* expected network, inet_ntop form */
	unsigned int	 prefix;
} parse_cases[] = {
	{ "10.0.0.0/8",			0, AF_INET,  "10.0.0.0",	8 },
	{ "192.168.1.0/24",		0, AF_INET,  "192.168.1.0",	24 },
	{ "192.168.1.20/32",		0, AF_INET,  "192.168.1.20",	32 },
	{ "192.168.1.20",		0, AF_INET,  "192.168.1.20",	32 },
	{ "0.0.0.0/0",			0, AF_INET,  "0.0.0.0",		0 },
	{ "10.0.0.0/08",		0, AF_INET,  "10.0.0.0",	8 },
	{ "10.0.0.0/008",		0, AF_INET,  "10.0.0.0",	8 },
	{ "172.16.0.0/12",		0, AF_INET,  "172.16.0.0",	12 },
	{ "fd00::/8",			0, AF_INET6, "fd00::",		8 },
	{ "FD00::/8",			0, AF_INET6, "fd00::",		8 },
	{ "::1/128",			0, AF_INET6, "::1",		128 },
	{ "::1",			0, AF_INET6, "::1",		128 },
	{ "::/0",			0, AF_INET6, "::",		0 },
	{ "2001:db8::/32",		0, AF_INET6, "2001:db8::",	32 },
	{ "2001:db8::/127",		0, AF_INET6, "2001:db8::",	127 },
	{ "fe80::/10",			0, AF_INET6, "fe80::",		10 },
	{ "::ffff:10.0.0.0/104",	0, AF_INET,  "10.0.0.0",	8 },
	{ "::ffff:192.0.2.1",		0, AF_INET,  "192.0.2.1",	32 },
	{ "::ffff:0:0/96",		0, AF_INET,  "0.0.0.0",		0 },
	/* Errors. */
	{ "",				-1, 0, NULL, 0 },
	{ "/8",				-1, 0, NULL, 0 },
	{ "1.2.3.4/",			-1, 0, NULL, 0 },
	{ "1.2.3.4/33",			-1, 0, NULL, 0 },
	{ "1.2.3.4/-1",			-1, 0, NULL, 0 },
	{ "1.2.3.4/+8",			-1, 0, NULL, 0 },
	{ "1.2.3.4/ 8",			-1, 0, NULL, 0 },
	{ "1.2.3.4/8 ",			-1, 0, NULL, 0 },
	{ "1.2.3.4/0008",		-1, 0, NULL, 0 },
	{ "1.2.3.4/4294967328",		-1, 0, NULL, 0 },
	{ "1.2.3.4/32/32",		-1, 0, NULL, 0 },
	{ "1.2.3.4/8x",			-1, 0, NULL, 0 },
	{ "::/129",			-1, 0, NULL, 0 },
	{ "::1/200",			-1, 0, NULL, 0 },
	{ "10.0.0.1/8",			-1, 0, NULL, 0 },
	{ "192.168.1.1/31",		-1, 0, NULL, 0 },
	{ "fd00::1/8",			-1, 0, NULL, 0 },
	{ "2001:db8::1/127",		-1, 0, NULL, 0 },
	{ "::ffff:10.0.0.1/104",	-1, 0, NULL, 0 },
	{ "::ffff:10.0.0.0/95",		-1, 0, NULL, 0 },
	{ "10.0.0",			-1, 0, NULL, 0 },
	{ "10/8",			-1, 0, NULL, 0 },
	{ "010.0.0.0/8",		-1, 0, NULL, 0 },
	{ "256.0.0.0/8",		-1, 0, NULL, 0 },
	{ " 10.0.0.0/8",		-1, 0, NULL, 0 },
	{ "10.0.0.0 /8",		-1, 0, NULL, 0 },
	{ "localhost",			-1, 0, NULL, 0 },
	{ "fe80::1%eth0",		-1, 0, NULL, 0 },
	{ ":::/8",			-1, 0, NULL, 0 },
	{ "1:2:3:4:5:6:7:8:9/128",	-1, 0, NULL, 0 },
	{ "10.0.0.0/8\n",		-1, 0, NULL, 0 },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/8",
	    -1, 0, NULL, 0 },
};

START_TEST(test_parse)
{
	struct cidr	c, want;
	int		rc;

	memset(&c, 0x5a, sizeof(c));
	rc = cidr_parse(parse_cases[_i].s, &c);
	ck_assert_msg(rc == parse_cases[_i].want, "\"%s\": rc %d",
	    parse_cases[_i].s, rc);
	if (rc != 0)
		return;
	memset(&want, 0, sizeof(want));
	ck_assert_int_eq(inet_pton(parse_cases[_i].family,
	    parse_cases[_i].addr, want.addr), 1);
	ck_assert_int_eq(c.family, parse_cases[_i].family);
	ck_assert_uint_eq(c.prefix, parse_cases[_i].prefix);
	/* All 16 bytes: the unused tail of an IPv4 network is zero. */
	ck_assert_int_eq(memcmp(c.addr, want.addr, sizeof(c.addr)), 0);
}
END_TEST

/* A failed parse leaves <out> alone. */
START_TEST(test_parse_failure_untouched)
{
	struct cidr	c, copy;

	memset(&c, 0x5a, sizeof(c));
	copy = c;
	ck_assert_int_eq(cidr_parse("10.0.0.1/8", &c), -1);
	ck_assert_int_eq(memcmp(&c, &copy, sizeof(c)), 0);
}
END_TEST

/*
 * cidr_match_any, with a socket address built from <addr>.  Mapped
 * addresses are given as "::ffff:a.b.c.d" and arrive as AF_INET6.
 */
static void
make_sa(const char *addr, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (strchr(addr, ':') != NULL) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(25);
		ck_assert_int_eq(inet_pton(AF_INET6, addr, &sin6->sin6_addr),
		    1);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(25);
		ck_assert_int_eq(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
	}
}

static const struct {
	const char	*nets[3];	/* NULL-terminated, at most 3 */
	const char	*addr;
	bool		 want;
} match_cases[] = {
	/* IPv4 /24 boundaries. */
	{ { "192.168.1.0/24" },		"192.168.1.0",		true },
	{ { "192.168.1.0/24" },		"192.168.1.255",	true },
	{ { "192.168.1.0/24" },		"192.168.1.77",		true },
	{ { "192.168.1.0/24" },		"192.168.0.255",	false },
	{ { "192.168.1.0/24" },		"192.168.2.0",		false },
	{ { "192.168.1.0/24" },		"10.0.0.1",		false },
	/* Non-byte-aligned prefixes. */
	{ { "172.16.0.0/12" },		"172.31.255.255",	true },
	{ { "172.16.0.0/12" },		"172.32.0.0",		false },
	{ { "172.16.0.0/12" },		"172.15.255.255",	false },
	{ { "10.0.0.128/25" },		"10.0.0.128",		true },
	{ { "10.0.0.128/25" },		"10.0.0.127",		false },
	/* Host routes and /0. */
	{ { "192.168.1.20" },		"192.168.1.20",		true },
	{ { "192.168.1.20" },		"192.168.1.21",		false },
	{ { "0.0.0.0/0" },		"203.0.113.9",		true },
	{ { "0.0.0.0/0" },		"::1",			false },
	{ { "::/0" },			"2001:db8::1",		true },
	{ { "::/0" },			"10.0.0.1",		false },
	/* IPv6, including the /127 boundaries. */
	{ { "::1" },			"::1",			true },
	{ { "::1" },			"::2",			false },
	{ { "fd00::/8" },		"fd12:3456::1",		true },
	{ { "fd00::/8" },		"fe00::1",		false },
	{ { "2001:db8::/127" },		"2001:db8::",		true },
	{ { "2001:db8::/127" },		"2001:db8::1",		true },
	{ { "2001:db8::/127" },		"2001:db8::2",		false },
	{ { "2001:db8::/127" },
	    "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",		false },
	/* IPv4-mapped clients are judged as IPv4. */
	{ { "10.0.0.0/8" },		"::ffff:10.1.2.3",	true },
	{ { "10.0.0.0/8" },		"::ffff:11.1.2.3",	false },
	{ { "127.0.0.1" },		"::ffff:127.0.0.1",	true },
	{ { "::ffff:10.0.0.0/104" },	"10.9.9.9",		true },
	{ { "::ffff:10.0.0.0/104" },	"::ffff:10.9.9.9",	true },
	{ { "::/0" },			"::ffff:10.9.9.9",	false },
	{ { "::/64" },			"::ffff:10.9.9.9",	false },
	/* IPv4-compatible (deprecated) is not mapped. */
	{ { "10.0.0.0/8" },		"::10.1.2.3",		false },
	/* Several networks; the empty list matches nothing. */
	{ { "::1", "127.0.0.1", "192.168.0.0/16" }, "192.168.44.1", true },
	{ { "::1", "127.0.0.1", "192.168.0.0/16" }, "::1",	true },
	{ { "::1", "127.0.0.1", "192.168.0.0/16" }, "10.0.0.1",	false },
	{ { NULL },			"127.0.0.1",		false },
};

START_TEST(test_match)
{
	struct cidr		list[3];
	struct sockaddr_storage	ss;
	size_t			n;

	for (n = 0; n < nitems(match_cases[_i].nets) &&
	    match_cases[_i].nets[n] != NULL; n++)
		ck_assert_int_eq(cidr_parse(match_cases[_i].nets[n],
		    &list[n]), 0);
	make_sa(match_cases[_i].addr, &ss);
	ck_assert_msg(cidr_match_any(list, n, (struct sockaddr *)&ss) ==
	    match_cases[_i].want, "row %d: %s", _i, match_cases[_i].addr);
}
END_TEST

START_TEST(test_match_other_family)
{
	struct cidr		c;
	struct sockaddr_storage	ss;

	ck_assert_int_eq(cidr_parse("0.0.0.0/0", &c), 0);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	ck_assert(!cidr_match_any(&c, 1, (struct sockaddr *)&ss));
	ck_assert(!cidr_match_any(&c, 1, NULL));
}
END_TEST

/*
 * cidr_contains
 */
static const struct {
	const char	*outer, *inner;
	bool		 want;
} contains_cases[] = {
	{ "10.0.0.0/8",		"10.1.2.3/32",		true },
	{ "10.0.0.0/8",		"10.0.0.0/8",		true },
	{ "10.0.0.0/8",		"10.0.0.0/7",		false },
	{ "10.0.0.0/8",		"11.0.0.1",		false },
	{ "127.0.0.0/29",	"127.0.0.3/32",		true },
	{ "127.0.0.0/29",	"127.0.0.8/32",		false },
	{ "fd00::/8",		"fd12::/16",		true },
	{ "fd00::/8",		"fe80::1",		false },
	{ "10.0.0.0/8",		"::ffff:10.0.0.1",	true },	/* mapped: IPv4 */
};

START_TEST(test_contains)
{
	struct cidr	a, b;

	ck_assert_int_eq(cidr_parse(contains_cases[_i].outer, &a), 0);
	ck_assert_int_eq(cidr_parse(contains_cases[_i].inner, &b), 0);
	ck_assert_msg(cidr_contains(&a, &b) == contains_cases[_i].want,
	    "%s in %s", contains_cases[_i].inner, contains_cases[_i].outer);
}
END_TEST

/*
 * cidr_addr_str
 */
static const struct {
	const char	*addr;
	const char	*want;
} str_cases[] = {
	{ "192.0.2.1",			"192.0.2.1" },
	{ "::1",			"::1" },
	{ "2001:db8::1",		"2001:db8::1" },
	{ "::ffff:192.0.2.1",		"192.0.2.1" },
	{ "::ffff:0.0.0.0",		"0.0.0.0" },
	{ "::192.0.2.1",		"::192.0.2.1" },
};

START_TEST(test_addr_str)
{
	struct sockaddr_storage	ss;
	char			buf[64];

	make_sa(str_cases[_i].addr, &ss);
	ck_assert_str_eq(cidr_addr_str((struct sockaddr *)&ss, buf,
	    sizeof(buf)), str_cases[_i].want);
}
END_TEST

START_TEST(test_addr_str_errors)
{
	struct sockaddr_storage	ss;
	char			buf[64], small[4];

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	ck_assert_str_eq(cidr_addr_str((struct sockaddr *)&ss, buf,
	    sizeof(buf)), "?");
	ck_assert_str_eq(cidr_addr_str(NULL, buf, sizeof(buf)), "?");
	make_sa("192.0.2.1", &ss);
	ck_assert_str_eq(cidr_addr_str((struct sockaddr *)&ss, small,
	    sizeof(small)), "?");
	/* Exactly big enough: "192.0.2.1" plus its NUL. */
	ck_assert_str_eq(cidr_addr_str((struct sockaddr *)&ss, buf, 10),
	    "192.0.2.1");
}
END_TEST

/*
 * cidr_same_addr
 */
static const struct {
	const char	*a, *b;
	bool		 want;
} same_cases[] = {
	{ "192.0.2.1",		"192.0.2.1",		true },
	{ "192.0.2.1",		"192.0.2.2",		false },
	{ "2001:db8::1",	"2001:db8::1",		true },
	{ "2001:db8::1",	"2001:db8::2",		false },
	{ "::ffff:192.0.2.1",	"192.0.2.1",		false },
	{ "::1",		"127.0.0.1",		false },
};

START_TEST(test_same_addr)
{
	struct sockaddr_storage	a, b;

	make_sa(same_cases[_i].a, &a);
	make_sa(same_cases[_i].b, &b);
	ck_assert(cidr_same_addr((struct sockaddr *)&a,
	    (struct sockaddr *)&b) == same_cases[_i].want);
	ck_assert(cidr_same_addr((struct sockaddr *)&b,
	    (struct sockaddr *)&a) == same_cases[_i].want);
}
END_TEST

START_TEST(test_same_addr_port)
{
	struct sockaddr_storage	a, b;
	struct sockaddr_in	sin;

	make_sa("192.0.2.1", &a);
	make_sa("192.0.2.1", &b);
	memcpy(&sin, &b, sizeof(sin));
	sin.sin_port = htons(2525);
	memcpy(&b, &sin, sizeof(sin));
	ck_assert(cidr_same_addr((struct sockaddr *)&a,
	    (struct sockaddr *)&b));
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.ss_family = b.ss_family = AF_UNIX;
	ck_assert(!cidr_same_addr((struct sockaddr *)&a,
	    (struct sockaddr *)&b));
}
END_TEST

static Suite *
cidr_suite(void)
{
	Suite	*s = suite_create("cidr");
	TCase	*tc;

	tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_parse, 0, nitems(parse_cases));
	tcase_add_test(tc, test_parse_failure_untouched);
	suite_add_tcase(s, tc);

	tc = tcase_create("match");
	tcase_add_loop_test(tc, test_match, 0, nitems(match_cases));
	tcase_add_test(tc, test_match_other_family);
	tcase_add_loop_test(tc, test_contains, 0, nitems(contains_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("addr_str");
	tcase_add_loop_test(tc, test_addr_str, 0, nitems(str_cases));
	tcase_add_test(tc, test_addr_str_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("same_addr");
	tcase_add_loop_test(tc, test_same_addr, 0, nitems(same_cases));
	tcase_add_test(tc, test_same_addr_port);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(cidr_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
