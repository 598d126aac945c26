/*
 * check_util.c - unit tests for util.c's pure helpers: the one date
 * formatter (every style, time zones east and west of UTC, half-hour
 * offsets, out-of-range times), the duration parser and formatter, and
 * the one UTF-8 check, and the one xtext codec (xtext.c).
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "util.h"
#include "xtext.h"

#define T	1700000000	/* Tue, 14 Nov 2023 22:13:20 UTC */

static const struct {
	const char		*tz;	/* POSIX TZ, no tzdata needed */
	enum time_style		 style;
	const char		*want;
} fmt_cases[] = {
	{ "UTC0", TIME_RFC5322, "Tue, 14 Nov 2023 22:13:20 +0000" },
	{ "CET-1", TIME_RFC5322, "Tue, 14 Nov 2023 23:13:20 +0100" },
	{ "EST5", TIME_RFC5322, "Tue, 14 Nov 2023 17:13:20 -0500" },
	{ "IST-5:30", TIME_RFC5322, "Wed, 15 Nov 2023 03:43:20 +0530" },
	{ "NST3:30", TIME_RFC5322, "Tue, 14 Nov 2023 18:43:20 -0330" },
	{ "CET-1", TIME_RFC5322_UTC, "Tue, 14 Nov 2023 22:13:20 +0000" },
	{ "CET-1", TIME_ISO, "2023-11-14 23:13:20 +0100" },
	{ "CET-1", TIME_ISO_UTC, "2023-11-14 22:13:20 UTC" },
	{ "CET-1", TIME_COMPACT, "20231114231320" },
	{ "CET-1", TIME_ASCTIME, "Tue Nov 14 23:13:20" },
};

START_TEST(test_time_fmt)
{
	char	buf[64];

	setenv("TZ", fmt_cases[_i].tz, 1);
	tzset();
	ck_assert_str_eq(time_fmt(T, fmt_cases[_i].style, buf, sizeof(buf)),
	    fmt_cases[_i].want);
}
END_TEST

START_TEST(test_time_fmt_edges)
{
	char	buf[64], small[8];

	setenv("TZ", "UTC0", 1);
	tzset();
	/* Beyond year 9999: the epoch, never a 5-digit year. */
	ck_assert_str_eq(time_fmt(INT64_C(300000000000), TIME_RFC5322_UTC,
	    buf, sizeof(buf)), "Thu, 01 Jan 1970 00:00:00 +0000");
	ck_assert_str_eq(time_fmt(0, TIME_ISO_UTC, buf, sizeof(buf)),
	    "1970-01-01 00:00:00 UTC");
	/* As asctime(3): a one-digit day is padded with a space. */
	ck_assert_str_eq(time_fmt(T - 10 * 86400, TIME_ASCTIME, buf,
	    sizeof(buf)), "Sat Nov  4 22:13:20");
	/* Truncated, but terminated. */
	time_fmt(T, TIME_RFC5322, small, sizeof(small));
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
}
END_TEST

START_TEST(test_duration)
{
	uint64_t	v;
	char		buf[32];

	ck_assert_int_eq(str_parse_duration("90s", &v), 0);
	ck_assert_uint_eq(v, 90);
	ck_assert_int_eq(str_parse_duration("5d", &v), 0);
	ck_assert_uint_eq(v, 5 * 86400);
	ck_assert_int_eq(str_parse_duration("5x", &v), -1);
	ck_assert_int_eq(str_parse_duration("", &v), -1);
	ck_assert_str_eq(str_fmt_duration(5400, buf, sizeof(buf)), "1h30m");
	ck_assert_str_eq(str_fmt_duration(0, buf, sizeof(buf)), "0s");
}
END_TEST

static const struct {
	const char	*s;
	size_t		 len;		/* of the first character; 0: bad */
} utf8_cases[] = {
	{ "a", 1 },
	{ "\xc3\xb6", 2 },			/* U+00F6 */
	{ "\xe2\x82\xac", 3 },			/* U+20AC */
	{ "\xf0\x9f\x98\x80", 4 },		/* U+1F600 */
	{ "\xf4\x8f\xbf\xbf", 4 },		/* U+10FFFF */
	{ "\xc0\xaf", 0 },			/* overlong '/' */
	{ "\xe0\x80\xaf", 0 },			/* overlong */
	{ "\xed\xa0\x80", 0 },			/* surrogate */
	{ "\xf4\x90\x80\x80", 0 },		/* above U+10FFFF */
	{ "\xf5\x80\x80\x80", 0 },
	{ "\x80", 0 },				/* continuation first */
	{ "\xc3", 0 },				/* cut short */
	{ "\xe2\x82", 0 },
	{ "\xc3\x28", 0 },			/* not a continuation */
};

START_TEST(test_utf8)
{
	const char	*s = utf8_cases[_i].s;
	size_t		 n = strlen(s);

	ck_assert_uint_eq(str_utf8_len((const unsigned char *)s, n),
	    utf8_cases[_i].len);
	ck_assert(str_is_utf8((const unsigned char *)s, n) ==
	    (utf8_cases[_i].len == n));
}
END_TEST

static const struct {
	const char	*plain;
	const char	*xtext;
} xtext_cases[] = {
	{ "user@example.org", "user@example.org" },
	{ "a+b=c@x", "a+2Bb+3Dc@x" },
	{ "\"two words\"@x", "\"two+20words\"@x" },
	{ "<x>", "+3Cx+3E" },
	{ "j\xc3\xb6rg@x", "j+C3+B6rg@x" },
	{ "", "" },
};

START_TEST(test_xtext_roundtrip)
{
	char	buf[128], *dec;

	xtext_put(buf, xtext_cases[_i].plain);
	ck_assert_str_eq(buf, xtext_cases[_i].xtext);
	dec = xtext_decode(buf, strlen(buf));
	ck_assert_ptr_nonnull(dec);
	ck_assert_str_eq(dec, xtext_cases[_i].plain);
	free(dec);
}
END_TEST

START_TEST(test_xtext_malformed)
{
	static const char *const bad[] = {
		"a b", "a=b", "a+2", "a+", "+zz", "a+00b", "a\tb", "\x80",
		"a\x7f",
	};
	char	*dec;
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(xtext_decode(bad[i], strlen(bad[i])) == NULL,
		    "accepted \"%s\"", bad[i]);
	/* Lower-case hex is read; the length bounds the input. */
	dec = xtext_decode("a+2bzzz", 4);
	ck_assert_str_eq(dec, "a+");
	free(dec);
}
END_TEST

/* Growth across many sizes, NULs inside, formatting past the first
 * allocation, and the hand-over. */
START_TEST(test_buf)
{
	struct buf	 b = BUF_INIT;
	char		*p, big[3000];
	size_t		 i, len;

	p = buf_steal(&b, &len);
	ck_assert_str_eq(p, "");
	ck_assert_uint_eq(len, 0);
	free(p);
	for (i = 0; i < 1000; i++)
		buf_add(&b, "a\0c", 3);
	ck_assert_uint_eq(b.len, 3000);
	ck_assert_int_eq(b.p[b.len], '\0');
	ck_assert_int_eq(memcmp(b.p + 2997, "a\0c", 3), 0);
	buf_free(&b);
	ck_assert_ptr_null(b.p);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_adds(&b, "id ");
	buf_printf(&b, "%s %d", big, 42);
	ck_assert_uint_eq(b.len, 3 + 2999 + 3);
	ck_assert_str_eq(b.p + b.len - 3, " 42");
	p = buf_steal(&b, NULL);
	ck_assert_uint_eq(strlen(p), 3005);
	ck_assert_uint_eq(b.len, 0);
	free(p);
}
END_TEST

static Suite *
util_suite(void)
{
	Suite	*s = suite_create("util");
	TCase	*tc = tcase_create("util");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_time_fmt, 0,
	    (int)(sizeof(fmt_cases) / sizeof(fmt_cases[0])));
	tcase_add_test(tc, test_time_fmt_edges);
	tcase_add_test(tc, test_duration);
	suite_add_tcase(s, tc);
	tc = tcase_create("utf8");
	tcase_add_loop_test(tc, test_utf8, 0,
	    (int)(sizeof(utf8_cases) / sizeof(utf8_cases[0])));
	suite_add_tcase(s, tc);
	tc = tcase_create("xtext");
	tcase_add_loop_test(tc, test_xtext_roundtrip, 0,
	    (int)(sizeof(xtext_cases) / sizeof(xtext_cases[0])));
	tcase_add_test(tc, test_xtext_malformed);
	suite_add_tcase(s, tc);
	tc = tcase_create("buf");
	tcase_add_test(tc, test_buf);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(util_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
