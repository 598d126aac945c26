/*
 * check_queue.c - unit tests for the scheduler's pure parts: the retry
 * backoff schedule (attempt_backoff) and how upstream replies are
 * classified (relay_classify), which decides bounce versus retry versus
 * pause.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>

#include "attempt.h"
#include "queue.h"
#include "relay.h"
#include "relay_reply.h"
#include "util.h"

static const struct {
	unsigned int	attempts;
	uint64_t	min, max;
	uint64_t	want;		/* with no jitter */
} backoff_cases[] = {
	{ 1, 60, 3600, 60 },
	{ 2, 60, 3600, 120 },
	{ 3, 60, 3600, 240 },
	{ 6, 60, 3600, 1920 },
	{ 7, 60, 3600, 3600 },		/* 3840 capped */
	{ 50, 60, 3600, 3600 },
	{ 4000000000u, 60, 3600, 3600 },	/* no overflow */
	{ 0, 60, 3600, 60 },
	{ 3, 1, 4, 4 },
	{ 10, 5, 5, 5 },
	{ 64, UINT64_MAX / 4, UINT64_MAX, UINT64_MAX },
};

START_TEST(test_backoff_schedule)
{
	uint64_t	got;

	got = attempt_backoff(backoff_cases[_i].attempts,
	    backoff_cases[_i].min, backoff_cases[_i].max, 0.0);
	ck_assert_uint_eq(got, backoff_cases[_i].want);
}
END_TEST

START_TEST(test_backoff_jitter)
{
	uint64_t	lo, hi;
	double		r;

	/* Jitter only shortens, by at most 20%, and never reaches 0. */
	for (r = 0.0; r < 1.0; r += 0.01) {
		lo = attempt_backoff(7, 60, 3600, r);
		ck_assert_uint_le(lo, 3600);
		ck_assert_uint_ge(lo, 2880);
	}
	hi = attempt_backoff(1, 1, 3600, 0.99);
	ck_assert_uint_ge(hi, 1);
}
END_TEST

static const struct {
	int			 code;
	const char		*text;
	enum relay_status	 want;
} classify_cases[] = {
	{ 250, "2.0.0 OK", RELAY_OK },
	{ 354, "Go ahead", RELAY_OK },
	{ 421, "4.7.0 Try again later", RELAY_TEMPFAIL },
	{ 450, "4.2.1 The user you are trying to contact is receiving mail "
	    "at a rate", RELAY_QUOTA },
	{ 451, "4.3.0 Mail server temporarily rejected", RELAY_TEMPFAIL },
	{ 452, "4.5.3 Your message has too many recipients",
	    RELAY_TEMPFAIL },
	{ 550, "5.4.5 Daily user sending limit exceeded", RELAY_QUOTA },
	{ 550, "5.1.1 The email account that you tried to reach does not "
	    "exist", RELAY_PERMFAIL },
	{ 552, "5.3.4 Message too big", RELAY_PERMFAIL },
	{ 554, "5.6.0 Message rejected", RELAY_PERMFAIL },
	{ 550, "", RELAY_PERMFAIL },
	{ 450, "", RELAY_TEMPFAIL },
};

START_TEST(test_classify)
{
	ck_assert_int_eq(relay_classify(classify_cases[_i].code,
	    classify_cases[_i].text), classify_cases[_i].want);
}
END_TEST

static Suite *
queue_suite(void)
{
	Suite	*s = suite_create("queue");
	TCase	*tc;

	tc = tcase_create("backoff");
	tcase_add_loop_test(tc, test_backoff_schedule, 0,
	    nitems(backoff_cases));
	tcase_add_test(tc, test_backoff_jitter);
	suite_add_tcase(s, tc);
	tc = tcase_create("classify");
	tcase_add_loop_test(tc, test_classify, 0, nitems(classify_cases));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(queue_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
