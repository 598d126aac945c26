/*
 * check_health.c - unit tests for an upstream's health state machine
 * (health.c), the one the queue drives: every paused state has exactly
 * one way out (a probe time or a trial connection), a due probe opens a
 * trial whatever else happens, and a failed trial re-arms with backoff.
 * A fake clock and a fake "relay" (the calls a connection's outcome
 * makes) replace the event loop: no sleeps.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>

#include "health.h"

#define T0	1800000000	/* the fake clock's start, unix seconds */

/* How each paused state is entered, as the queue enters it. */
struct pause_case {
	enum health_state	 st;
	bool			 self_timed;
	unsigned int		 delay;		/* first probe after this */
};

static const struct pause_case pause_cases[] = {
	{ HEALTH_NOCREDS, false, HEALTH_AUTH_RETRY },
	{ HEALTH_UNAVAILABLE, false, HEALTH_PROBE_MIN },
	{ HEALTH_AUTH_FAILED, false, HEALTH_AUTH_RETRY },
	{ HEALTH_QUOTA, false, HEALTH_QUOTA_DAILY },
	{ HEALTH_QUOTA, true, 1234 },
};

/* Enters <pc> from OK at <now> the way the queue does. */
static void
enter(struct health *h, const struct pause_case *pc, int64_t now)
{
	health_init(h);
	if (pc->st == HEALTH_UNAVAILABLE || pc->st == HEALTH_AUTH_FAILED)
		ck_assert(health_conn_failed(h, pc->st, "why", false, now));
	else
		ck_assert(health_pause(h, pc->st, "why", pc->delay,
		    pc->self_timed, now));
}

START_TEST(test_init_delivers)
{
	struct health	h;

	health_init(&h);
	ck_assert_int_eq(h.state, HEALTH_OK);
	ck_assert(health_is_consistent(&h));
	ck_assert_int_eq(health_next(&h), 0);
	ck_assert_int_eq(health_due(&h), HEALTH_WAIT);
	ck_assert_str_eq(health_state_name(HEALTH_AUTH_FAILED),
	    "credentials-rejected");
}
END_TEST

/* Each paused state has a probe time, and reaching it opens a trial
 * (or, for our own quota counters, simply resumes). */
START_TEST(test_pause_has_one_way_out)
{
	const struct pause_case	*pc = &pause_cases[_i];
	struct health		 h;
	enum health_action	 a;

	enter(&h, pc, T0);
	ck_assert_int_eq(h.state, pc->st);
	ck_assert(health_is_consistent(&h));
	ck_assert_int_eq(health_next(&h), T0 + pc->delay);
	a = health_due(&h);
	ck_assert(health_is_consistent(&h));
	if (pc->self_timed) {
		ck_assert_int_eq(a, HEALTH_RESUME);
		ck_assert_int_eq(h.state, HEALTH_OK);
		return;
	}
	ck_assert_int_eq(a, HEALTH_TRIAL);
	ck_assert(h.trial);
	ck_assert_int_eq(health_next(&h), 0);	/* the trial is the way */
	/* A second firing while the trial runs does nothing. */
	ck_assert_int_eq(health_due(&h), HEALTH_WAIT);
	ck_assert(health_login_ok(&h, true));
	ck_assert_int_eq(h.state, HEALTH_OK);
	ck_assert(health_is_consistent(&h));
}
END_TEST

/* A failed trial always re-arms: no paused state is left without a
 * timer, whichever way the trial fails. */
START_TEST(test_failed_trial_rearms)
{
	const struct pause_case	*pc = &pause_cases[_i];
	static const enum health_state how[] = {
		HEALTH_UNAVAILABLE, HEALTH_AUTH_FAILED, HEALTH_OK,
	};
	struct health		 h;
	int64_t			 now = T0;
	size_t			 k;

	for (k = 0; k < sizeof(how) / sizeof(how[0]); k++) {
		enter(&h, pc, now);
		if (pc->self_timed)
			continue;
		now = health_next(&h);
		ck_assert_int_eq(health_due(&h), HEALTH_TRIAL);
		health_conn_failed(&h, how[k], "still down", true, now);
		ck_assert(health_is_consistent(&h));
		ck_assert(!h.trial);
		ck_assert_int_gt(health_next(&h), now);
		ck_assert_int_ne(h.state, HEALTH_OK);
	}
}
END_TEST

/* Unreachable: 10 s, then each failed probe doubles up to a minute, as
 * smartrelay.conf(5) promises. */
START_TEST(test_unavailable_backoff)
{
	static const unsigned int want[] = { 10, 20, 40, 60, 60, 60 };
	struct health	h;
	int64_t		now = T0;
	size_t		k;

	health_init(&h);
	health_conn_failed(&h, HEALTH_UNAVAILABLE, "refused", false, now);
	for (k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		ck_assert_int_eq(health_next(&h) - now, want[k]);
		now = health_next(&h);
		ck_assert_int_eq(health_due(&h), HEALTH_TRIAL);
		health_conn_failed(&h, HEALTH_UNAVAILABLE, "refused", true,
		    now);
	}
	/* Back up: the next outage starts again at 10 s. */
	now = health_next(&h);
	health_due(&h);
	ck_assert(health_login_ok(&h, true));
	health_conn_failed(&h, HEALTH_UNAVAILABLE, "refused", false, now);
	ck_assert_int_eq(health_next(&h) - now, 10);
}
END_TEST

/* Other connections failing while paused change neither the probe time
 * nor a trial in flight: the probe is independent of traffic. */
START_TEST(test_traffic_does_not_move_probe)
{
	struct health	h;
	int64_t		at;

	health_init(&h);
	health_conn_failed(&h, HEALTH_UNAVAILABLE, "refused", false, T0);
	at = health_next(&h);
	health_conn_failed(&h, HEALTH_UNAVAILABLE, "refused", false, T0 + 5);
	ck_assert_int_eq(health_next(&h), at);
	ck_assert(!health_conn_failed(&h, HEALTH_UNAVAILABLE, "refused",
	    false, T0 + 6));
	ck_assert_int_eq(health_due(&h), HEALTH_TRIAL);
	health_conn_failed(&h, HEALTH_UNAVAILABLE, "reset", false, at + 1);
	ck_assert(h.trial);
	ck_assert(health_is_consistent(&h));
	ck_assert_str_eq(h.reason, "reset");
}
END_TEST

/* A sending limit ends only by its own probe: another connection that
 * logs in proves nothing about the quota. */
START_TEST(test_quota_needs_its_own_probe)
{
	struct health	h;

	health_init(&h);
	health_pause(&h, HEALTH_QUOTA, "550 5.4.5", HEALTH_QUOTA_DAILY, false,
	    T0);
	ck_assert(!health_login_ok(&h, false));
	ck_assert_int_eq(h.state, HEALTH_QUOTA);
	ck_assert(health_is_consistent(&h));
	/* An unreachable upstream resumes on any login. */
	health_init(&h);
	health_conn_failed(&h, HEALTH_UNAVAILABLE, "refused", false, T0);
	ck_assert(health_login_ok(&h, false));
	ck_assert_int_eq(h.state, HEALTH_OK);
	ck_assert(health_is_consistent(&h));
}
END_TEST

/* SIGUSR1, a reload or a network change: probe now, unless a trial
 * already runs. */
START_TEST(test_probe_now)
{
	const struct pause_case	*pc = &pause_cases[_i];
	struct health		 h;

	enter(&h, pc, T0);
	health_probe_now(&h, T0 + 1);
	ck_assert_int_eq(health_next(&h), T0 + 1);
	ck_assert(health_is_consistent(&h));
	if (!pc->self_timed) {
		ck_assert_int_eq(health_due(&h), HEALTH_TRIAL);
		health_probe_now(&h, T0 + 2);
		ck_assert_int_eq(health_next(&h), 0);
		ck_assert(h.trial);
	}
	health_init(&h);
	health_probe_now(&h, T0);
	ck_assert_int_eq(health_next(&h), 0);
	ck_assert(health_is_consistent(&h));
}
END_TEST

/* Any sequence of events keeps the invariant, and a paused upstream is
 * always a bounded time away from a trial. */
START_TEST(test_random_walk)
{
	struct health	h;
	int64_t		now = T0;
	unsigned int	seed = 12345, k;
	int		ev;

	health_init(&h);
	for (k = 0; k < 200000; k++) {
		seed = seed * 1103515245u + 12345u;
		ev = (int)((seed >> 16) % 9);
		now += (seed >> 8) % 7;
		switch (ev) {
		case 0:
			health_conn_failed(&h, HEALTH_UNAVAILABLE, "a",
			    (seed & 1) != 0, now);
			break;
		case 1:
			health_conn_failed(&h, HEALTH_AUTH_FAILED, "b",
			    (seed & 1) != 0, now);
			break;
		case 2:
			health_login_ok(&h, (seed & 1) != 0);
			break;
		case 3:
			health_pause(&h, HEALTH_QUOTA, "c", (seed >> 4) % 100,
			    (seed & 1) != 0, now);
			break;
		case 4:
			health_pause(&h, HEALTH_NOCREDS, "d",
			    HEALTH_AUTH_RETRY, false, now);
			break;
		case 5:
			health_probe_now(&h, now);
			break;
		default:
			if (health_next(&h) != 0 && health_next(&h) <= now)
				health_due(&h);
			break;
		}
		ck_assert_msg(health_is_consistent(&h), "step %u event %d "
		    "state %s", k, ev, health_state_name(h.state));
		if (h.state != HEALTH_OK && !h.trial)
			ck_assert_int_le(health_next(&h), now +
			    HEALTH_QUOTA_DAILY);
	}
}
END_TEST

static Suite *
health_suite(void)
{
	Suite	*s = suite_create("health");
	TCase	*tc = tcase_create("states");
	int	 n = (int)(sizeof(pause_cases) / sizeof(pause_cases[0]));

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_init_delivers);
	tcase_add_loop_test(tc, test_pause_has_one_way_out, 0, n);
	tcase_add_loop_test(tc, test_failed_trial_rearms, 0, n);
	tcase_add_test(tc, test_unavailable_backoff);
	tcase_add_test(tc, test_traffic_does_not_move_probe);
	tcase_add_test(tc, test_quota_needs_its_own_probe);
	tcase_add_loop_test(tc, test_probe_now, 0, n);
	tcase_add_test(tc, test_random_walk);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(health_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
