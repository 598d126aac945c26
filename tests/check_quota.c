/*
 * check_quota.c - unit tests for the rolling 24-hour sending quota.
 *
 * Time is simulated: every call gets an explicit <now>.  T0 is the start
 * of a minute, so the minute arithmetic in the expectations stays plain.
 * Files live in a fresh mkdtemp() directory per test, removed at the end.
 */
#include "config.h"

#include "quota.h"

#include <sys/stat.h>

#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define T0		((int64_t)1700000040)	/* a minute start */
#define M0		(T0 / 60)
#define DAY_MIN		(24 * 60)
/* A minute's sends leave the window 24 h after the minute ends. */
#define LEAVES(m)	(((int64_t)(m) + DAY_MIN + 1) * 60)

static char	testdir[PATH_MAX];
static char	qpath[PATH_MAX + 16];

static void
setup(void)
{
	const char	*tmp = getenv("TMPDIR");

	snprintf(testdir, sizeof(testdir), "%s/check_quota.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(testdir));
	snprintf(qpath, sizeof(qpath), "%s/quota", testdir);
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
teardown(void)
{
	ck_assert_int_eq(nftw(testdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static struct quota *
new_quota(uint32_t messages, uint32_t recipients, const char *path)
{
	struct quota_limits	 l = { messages, recipients };

	return quota_new(&l, path);
}

static void
assert_usage(const struct quota *q, int64_t now, uint64_t wm, uint64_t wr)
{
	uint64_t	 m, r;

	quota_usage(q, now, &m, &r);
	ck_assert_uint_eq(m, wm);
	ck_assert_uint_eq(r, wr);
}

static void
write_file(const char *path, const char *text)
{
	FILE	*fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fputs(text, fp) >= 0 || text[0] == '\0', 1);
	ck_assert_int_eq(fclose(fp), 0);
}

/*
 * quota_parse()
 */

static const struct {
	const char	*spec;
	int		 want;
	uint32_t	 messages;
	uint32_t	 recipients;
} parse_cases[] = {
	{ "none",		0,	0,		0 },
	{ "",			0,	0,		0 },
	{ "gmail",		0,	500,		500 },
	{ "workspace",		0,	2000,		10000 },
	{ "1",			0,	1,		1 },
	{ "750",		0,	750,		750 },
	{ "100/2000",		0,	100,		2000 },
	{ "10000000",		0,	10000000,	10000000 },
	{ "10000000/1",		0,	10000000,	1 },
	{ "0500",		0,	500,		500 },
	{ "Gmail",		-1,	0,		0 },
	{ "gmail ",		-1,	0,		0 },
	{ " 500",		-1,	0,		0 },
	{ "500 ",		-1,	0,		0 },
	{ "+500",		-1,	0,		0 },
	{ "-500",		-1,	0,		0 },
	{ "0",			-1,	0,		0 },
	{ "0/10",		-1,	0,		0 },
	{ "10/0",		-1,	0,		0 },
	{ "10000001",		-1,	0,		0 },
	{ "1/10000001",		-1,	0,		0 },
	{ "99999999999999999999999",	-1,	0,	0 },
	{ "18446744073709551617",	-1,	0,	0 },
	{ "500/",		-1,	0,		0 },
	{ "/500",		-1,	0,		0 },
	{ "500//5",		-1,	0,		0 },
	{ "500/5/5",		-1,	0,		0 },
	{ "500x",		-1,	0,		0 },
	{ "5e2",		-1,	0,		0 },
	{ "0x10",		-1,	0,		0 },
	{ "500/ 5",		-1,	0,		0 },
	{ "unlimited",		-1,	0,		0 },
};

START_TEST(test_parse)
{
	struct quota_limits	 l = { 7, 7 };
	char			 err[128] = "";
	int			 rc;

	rc = quota_parse(parse_cases[_i].spec, &l, err, sizeof(err));
	ck_assert_msg(rc == parse_cases[_i].want, "spec \"%s\": rc %d",
	    parse_cases[_i].spec, rc);
	if (rc == 0) {
		ck_assert_uint_eq(l.messages, parse_cases[_i].messages);
		ck_assert_uint_eq(l.recipients, parse_cases[_i].recipients);
	} else
		ck_assert_msg(strstr(err, "quota") != NULL, "err \"%s\"", err);
}
END_TEST

START_TEST(test_parse_errors)
{
	struct quota_limits	 l;
	char			 err[128], tiny[8];

	ck_assert_int_eq(quota_parse("0/5", &l, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "quota messages must be 1 to 10000000");
	ck_assert_int_eq(quota_parse("5/99999999", &l, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "quota recipients must be 1 to 10000000");
	ck_assert_int_eq(quota_parse("lots", &l, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "bad quota \"lots\": expected none, gmail, "
	    "workspace, N or N/M");
	/* One line, whatever the spec holds. */
	ck_assert_int_eq(quota_parse("5\n\x1b[2J", &l, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "bad quota \"5\\x0a\\x1b[2J\": expected none, "
	    "gmail, workspace, N or N/M");
	/* Truncated, still terminated; no buffer at all is fine too. */
	ck_assert_int_eq(quota_parse("lots", &l, tiny, sizeof(tiny)), -1);
	ck_assert_uint_eq(strlen(tiny), sizeof(tiny) - 1);
	ck_assert_int_eq(quota_parse("lots", &l, NULL, 0), -1);
}
END_TEST

/*
 * The window.
 */

START_TEST(test_window_minute_edges)
{
	struct quota	*q = new_quota(0, 0, NULL);

	/* Last second of minute M0 and first second of M0 + 1. */
	quota_record(q, T0 + 59, 3);
	quota_record(q, T0 + 60, 2);
	assert_usage(q, T0 + 60, 2, 5);
	/* M0's sends count until 24 h after M0 ends: never early. */
	assert_usage(q, T0 + 59 + 86400, 2, 5);
	assert_usage(q, LEAVES(M0) - 1, 2, 5);
	assert_usage(q, LEAVES(M0), 1, 2);
	assert_usage(q, LEAVES(M0 + 1) - 1, 1, 2);
	assert_usage(q, LEAVES(M0 + 1), 0, 0);
	assert_usage(q, T0 + 365 * 86400, 0, 0);
	quota_free(q);
}
END_TEST

START_TEST(test_window_ring_wraps)
{
	struct quota	*q = new_quota(0, 0, NULL);
	int64_t		 i;

	/* One message a minute for three days: the window holds the
	 * latest 24 * 60 + 1 minutes, whatever the ring reuses. */
	for (i = 0; i < 3 * DAY_MIN; i++)
		quota_record(q, T0 + i * 60 + 7, 2);
	i--;
	assert_usage(q, T0 + i * 60 + 7, DAY_MIN + 1, 2 * (DAY_MIN + 1));
	assert_usage(q, LEAVES(M0 + i) - 1, 1, 2);
	assert_usage(q, LEAVES(M0 + i), 0, 0);
	quota_free(q);
}
END_TEST

START_TEST(test_clock_back)
{
	struct quota	*q = new_quota(3, 0, NULL);

	quota_record(q, T0 + 3600, 1);
	quota_record(q, T0 + 3660, 1);
	/* Asked an hour earlier, those minutes count as now's. */
	assert_usage(q, T0, 2, 2);
	ck_assert_int_eq(quota_next_send(q, T0, 1), 0);
	quota_record(q, T0, 1);
	assert_usage(q, T0, 3, 3);
	ck_assert_int_eq(quota_next_send(q, T0, 1), LEAVES(M0));
	assert_usage(q, LEAVES(M0), 0, 0);
	quota_free(q);
}
END_TEST

/*
 * quota_next_send()
 */

START_TEST(test_limit_messages)
{
	struct quota	*q = new_quota(5, 0, NULL);
	int64_t		 now = T0 + 1800;

	quota_record(q, T0, 1);
	quota_record(q, T0 + 1, 1);
	quota_record(q, T0 + 2, 1);
	ck_assert_int_eq(quota_next_send(q, T0 + 600, 1), 0);
	quota_record(q, T0 + 600, 1);
	quota_record(q, T0 + 601, 1);
	ck_assert_int_eq(quota_next_send(q, now, 1), LEAVES(M0));
	ck_assert_int_eq(quota_next_send(q, LEAVES(M0) - 1, 1), LEAVES(M0));
	/* Two of five left: below 80 %, no pacing either. */
	ck_assert_int_eq(quota_next_send(q, LEAVES(M0), 1), 0);
	quota_free(q);
}
END_TEST

START_TEST(test_limit_recipients)
{
	struct quota	*q = new_quota(100, 10, NULL);
	int64_t		 now = T0 + 1800;

	quota_record(q, T0, 6);
	quota_record(q, T0 + 600, 4);
	/* Full: one recipient needs the first minute gone, seven both. */
	ck_assert_int_eq(quota_next_send(q, now, 1), LEAVES(M0));
	ck_assert_int_eq(quota_next_send(q, now, 6), LEAVES(M0));
	ck_assert_int_eq(quota_next_send(q, now, 7), LEAVES(M0 + 10));
	ck_assert_int_eq(quota_next_send(q, LEAVES(M0), 7), LEAVES(M0 + 10));
	ck_assert_int_eq(quota_next_send(q, LEAVES(M0 + 10), 7), 0);
	quota_free(q);
}
END_TEST

START_TEST(test_oversize)
{
	struct quota	*q = new_quota(0, 10, NULL);

	/* Alone in an empty window it goes, or it would never go. */
	ck_assert_int_eq(quota_next_send(q, T0, 50), 0);
	quota_record(q, T0, 1);
	ck_assert_int_eq(quota_next_send(q, T0 + 5, 50), LEAVES(M0));
	ck_assert_int_eq(quota_next_send(q, T0 + 5, 9), 0);
	ck_assert_int_eq(quota_next_send(q, LEAVES(M0), 50), 0);
	quota_record(q, LEAVES(M0), 50);
	assert_usage(q, LEAVES(M0), 1, 50);
	ck_assert_int_eq(quota_next_send(q, LEAVES(M0) + 1, 1),
	    LEAVES(M0 + DAY_MIN + 1));
	quota_free(q);
}
END_TEST

START_TEST(test_pacing_messages)
{
	struct quota	*q = new_quota(10, 0, NULL);
	int64_t		 t_old = LEAVES(M0), t1, t2;
	int		 i;

	for (i = 0; i < 7; i++)
		quota_record(q, T0, 1);
	/* 70 %: no pacing. */
	ck_assert_int_eq(quota_next_send(q, T0, 1), 0);
	quota_record(q, T0, 1);
	/* 80 %: R = 2 left for the 86460 s until M0 leaves, so
	 * T = ceil((2 * T0 + 1 * t_old) / 3) = T0 + 28820. */
	t1 = T0 + 28820;
	ck_assert_int_eq(t1, (2 * T0 + t_old + 2) / 3);
	ck_assert_int_eq(quota_next_send(q, T0 + 30, 1), t1);
	ck_assert_int_eq(quota_next_send(q, t1 - 1, 1), t1);
	ck_assert_int_eq(quota_next_send(q, t1, 1), 0);
	quota_record(q, t1, 1);
	/* R = 1: half of what is left, T = ceil((t1 + t_old) / 2). */
	t2 = t1 + 28820;
	ck_assert_int_eq(quota_next_send(q, t1, 1), t2);
	ck_assert_int_eq(quota_next_send(q, t2, 1), 0);
	quota_record(q, t2, 1);
	/* The budget lasted exactly until the first minute leaves. */
	ck_assert_int_eq(quota_next_send(q, t2, 1), t_old);
	quota_free(q);
}
END_TEST

START_TEST(test_pacing_recipients)
{
	struct quota	*q = new_quota(0, 100, NULL);
	int64_t		 t_old = LEAVES(M0);

	quota_record(q, T0, 79);
	ck_assert_int_eq(quota_next_send(q, T0, 10), 0);
	quota_record(q, T0, 1);
	/* R = 20, k = 10: T = ceil((20 * T0 + 10 * t_old) / 30). */
	ck_assert_int_eq(quota_next_send(q, T0, 10),
	    (20 * T0 + 10 * t_old + 29) / 30);
	ck_assert_int_eq(quota_next_send(q, T0, 10), T0 + 28820);
	/* A smaller message takes a smaller share of the time. */
	ck_assert_int_eq(quota_next_send(q, T0, 1),
	    (20 * T0 + t_old + 20) / 21);
	ck_assert_int_eq(quota_next_send(q, T0, 21), LEAVES(M0));
	quota_free(q);
}
END_TEST

START_TEST(test_unlimited)
{
	struct quota		*q = new_quota(0, 0, NULL);
	struct quota_status	 st;
	int			 i;

	for (i = 0; i < 100000; i++)
		quota_record(q, T0 + i / 100, 1000);
	ck_assert_int_eq(quota_next_send(q, T0 + 1000, 1), 0);
	ck_assert_int_eq(quota_next_send(q, T0 + 1000, 100000), 0);
	quota_status(q, T0 + 1000, &st);
	ck_assert_uint_eq(st.messages, 100000);
	ck_assert_uint_eq(st.recipients, 100000000);
	ck_assert_int_eq(st.next_send, 0);
	ck_assert(!st.pacing && !st.at_limit);
	quota_free(q);
}
END_TEST

START_TEST(test_status)
{
	struct quota		*q = new_quota(5, 0, NULL);
	struct quota_limits	 l = { 0, 0 };
	struct quota_status	 st;
	int			 i;

	quota_status(q, T0, &st);
	ck_assert(!st.pacing && !st.at_limit && st.next_send == 0);
	ck_assert_uint_eq(st.limits.messages, 5);
	for (i = 0; i < 4; i++)
		quota_record(q, T0, 1);
	quota_status(q, T0, &st);
	ck_assert(st.pacing && !st.at_limit);
	ck_assert_int_gt(st.next_send, T0);
	quota_record(q, T0, 1);
	quota_status(q, T0 + 60, &st);
	ck_assert(st.pacing && st.at_limit);
	ck_assert_int_eq(st.next_send, LEAVES(M0));
	ck_assert_uint_eq(st.messages, 5);
	/* New limits keep the counters. */
	quota_set_limits(q, &l);
	quota_status(q, T0 + 60, &st);
	ck_assert(!st.pacing && !st.at_limit && st.next_send == 0);
	ck_assert_uint_eq(st.messages, 5);
	quota_free(q);
}
END_TEST

/*
 * Persistence.
 */

START_TEST(test_roundtrip)
{
	struct quota	*q = new_quota(10, 0, qpath), *q2;
	char		 tmp[PATH_MAX + 32];
	int64_t		 now = T0 + 7200;
	int		 i;

	ck_assert_int_eq(quota_load(q, T0), 0);		/* no file yet */
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(quota_record(q, T0 + i * 600, 1 + i), 0);
	ck_assert_int_eq(access(qpath, R_OK), 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", qpath);
	ck_assert_int_eq(access(tmp, F_OK), -1);

	/* Written by quota_record() alone: a crash loses nothing. */
	q2 = new_quota(10, 0, qpath);
	ck_assert_int_eq(quota_load(q2, now), 0);
	assert_usage(q2, now, 8, 36);
	ck_assert_int_eq(quota_next_send(q2, now, 1),
	    quota_next_send(q, now, 1));
	ck_assert_int_gt(quota_next_send(q2, now, 1), now);
	quota_free(q2);

	ck_assert_int_eq(quota_sync(q), 0);
	ck_assert_int_eq(access(tmp, F_OK), -1);
	quota_free(q);

	/* Loaded a day later, the early minutes have left. */
	q = new_quota(10, 0, qpath);
	ck_assert_int_eq(quota_load(q, LEAVES(M0 + 10)), 0);
	assert_usage(q, LEAVES(M0 + 10), 6, 3 + 4 + 5 + 6 + 7 + 8);
	quota_free(q);
}
END_TEST

START_TEST(test_load_format)
{
	struct quota	*q = new_quota(0, 0, qpath);
	char		 text[256];

	/* The documented format, with old and future minutes. */
	snprintf(text, sizeof(text), "smartrelay-quota 1\nlast %lld\n"
	    "%lld 4 9\n%lld 1 1\n%lld 2 3\n%lld 5 6\n%lld 7 7\nend\n",
	    (long long)T0, (long long)(M0 - DAY_MIN - 1),
	    (long long)(M0 - DAY_MIN), (long long)M0,
	    (long long)(M0 + 90), (long long)(M0 + 99999999));
	write_file(qpath, text);
	ck_assert_int_eq(quota_load(q, T0), 0);
	/* M0 - DAY_MIN - 1 has left; the future ones count as M0. */
	assert_usage(q, T0, 15, 17);
	assert_usage(q, LEAVES(M0 - DAY_MIN), 14, 16);
	assert_usage(q, LEAVES(M0), 0, 0);
	/* Loading again replaces, it does not add. */
	ck_assert_int_eq(quota_load(q, T0), 0);
	assert_usage(q, T0, 15, 17);
	quota_free(q);
}
END_TEST

static const char *const corrupt_cases[] = {
	"",
	"garbage\n",
	"smartrelay-quota 1\n",
	"smartrelay-quota 2\nlast 1\nend\n",
	"smartrelay-quota 1\nlast 1700000040\n28333334 1 1\n",
	"smartrelay-quota 1\nlast 1700000040\n28333334 1 1\nend",
	"smartrelay-quota 1\nlast 1700000040\n28333334 1 1\n2833",
	"smartrelay-quota 1\nend\n",
	"smartrelay-quota 1\nlast -1\nend\n",
	"smartrelay-quota 1\nlast 1700000040\n28333334 1\nend\n",
	"smartrelay-quota 1\nlast 1700000040\n28333334 1 1 1\nend\n",
	"smartrelay-quota 1\nlast 1700000040\n28333334  1 1\nend\n",
	"smartrelay-quota 1\nlast 1700000040\n28333334 -1 1\nend\n",
	"smartrelay-quota 1\nlast 1700000040\n28333334 1 4294967296\nend\n",
	"smartrelay-quota 1\nlast 1700000040\n99999999999999999999 1 1\nend\n",
	"smartrelay-quota 1\nlast 1700000040\n28333334 1 1\n"
	    "28333334 1 1\nend\n",
	"smartrelay-quota 1\nlast 1700000040\n28333334 1 1\n"
	    "28333333 1 1\nend\n",
	"smartrelay-quota 1\nlast 1700000040\nend\n28333334 1 1\n",
	"smartrelay-quota 1\nlast 1700000040\nend\nend\n",
	"smartrelay-quota 1\nlast 1700000040\n28333334 1 1"
	    "                                                            "
	    "                                                     \nend\n",
	"smartrelay-quota 1\nlast 1700000040\n28333334 1 1\r\nend\n",
};

START_TEST(test_load_corrupt)
{
	struct quota	*q = new_quota(1, 0, qpath);

	quota_record(q, T0, 1);
	ck_assert_int_ne(quota_next_send(q, T0, 1), 0);
	write_file(qpath, corrupt_cases[_i]);
	ck_assert_msg(quota_load(q, T0 + 60) == -1, "case %d loaded", _i);
	assert_usage(q, T0 + 60, 0, 0);
	ck_assert_int_eq(quota_next_send(q, T0 + 60, 1), 0);
	/* Recording works afterwards and repairs the file. */
	ck_assert_int_eq(quota_record(q, T0 + 60, 1), 0);
	quota_free(q);
	q = new_quota(1, 0, qpath);
	ck_assert_int_eq(quota_load(q, T0 + 60), 0);
	assert_usage(q, T0 + 60, 1, 1);
	quota_free(q);
}
END_TEST

START_TEST(test_load_unreadable)
{
	struct quota	*q = new_quota(1, 0, qpath);

	/* A directory where the file should be. */
	ck_assert_int_eq(mkdir(qpath, 0700), 0);
	ck_assert_int_eq(quota_load(q, T0), -1);
	assert_usage(q, T0, 0, 0);
	ck_assert_int_eq(quota_record(q, T0, 1), -1);
	ck_assert_int_eq(quota_sync(q), -1);
	assert_usage(q, T0, 1, 1);
	quota_free(q);
}
END_TEST

START_TEST(test_save_fails)
{
	char		 bad[PATH_MAX + 16];
	struct quota	*q;

	snprintf(bad, sizeof(bad), "%s/nodir/quota", testdir);
	q = new_quota(0, 0, bad);
	ck_assert_int_eq(quota_load(q, T0), 0);
	ck_assert_int_eq(quota_record(q, T0, 2), -1);
	ck_assert_int_eq(quota_record(q, T0, 2), -1);
	assert_usage(q, T0, 2, 4);
	ck_assert_int_eq(quota_sync(q), -1);
	quota_free(q);
	/* Without a path nothing touches the disk, or the counters. */
	q = new_quota(0, 0, NULL);
	ck_assert_int_eq(quota_record(q, T0, 2), 0);
	ck_assert_int_eq(quota_load(q, T0), 0);
	assert_usage(q, T0, 1, 2);
	ck_assert_int_eq(quota_sync(q), 0);
	quota_free(q);
	quota_free(NULL);
}
END_TEST

static Suite *
quota_suite(void)
{
	Suite	*s = suite_create("quota");
	TCase	*tc;

#define ADD_CASE(name, fn) do {						\
	tc = tcase_create(name);					\
	tcase_add_checked_fixture(tc, setup, teardown);			\
	tcase_add_test(tc, fn);						\
	suite_add_tcase(s, tc);						\
} while (0)
	tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_parse, 0, nitems(parse_cases));
	tcase_add_test(tc, test_parse_errors);
	suite_add_tcase(s, tc);
	ADD_CASE("window", test_window_minute_edges);
	ADD_CASE("ring", test_window_ring_wraps);
	ADD_CASE("clockback", test_clock_back);
	ADD_CASE("limit_messages", test_limit_messages);
	ADD_CASE("limit_recipients", test_limit_recipients);
	ADD_CASE("oversize", test_oversize);
	ADD_CASE("pacing_messages", test_pacing_messages);
	ADD_CASE("pacing_recipients", test_pacing_recipients);
	ADD_CASE("unlimited", test_unlimited);
	ADD_CASE("status", test_status);
	ADD_CASE("roundtrip", test_roundtrip);
	ADD_CASE("load_format", test_load_format);
	ADD_CASE("load_unreadable", test_load_unreadable);
	ADD_CASE("save_fails", test_save_fails);
#undef ADD_CASE
	tc = tcase_create("load_corrupt");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_load_corrupt, 0, nitems(corrupt_cases));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(quota_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
