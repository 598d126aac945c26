/*
 * check_service.c - unit tests for the service-manager protocols'
 * parsers (service.c): $NOTIFY_SOCKET as a path or abstract address,
 * $LISTEN_PID/$LISTEN_FDS, $WATCHDOG_USEC/$WATCHDOG_PID.  The datagrams
 * themselves are checked end to end by itest_service.py.
 */
#include "config.h"

#include <check.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "service.h"

START_TEST(test_notify_addr)
{
	struct sockaddr_un	sun;
	socklen_t		len;
	size_t			base = offsetof(struct sockaddr_un, sun_path);
	char			longpath[200];

	ck_assert_int_eq(service_notify_addr("/run/systemd/notify", &sun,
	    &len), 0);
	ck_assert_int_eq(sun.sun_family, AF_UNIX);
	ck_assert_str_eq(sun.sun_path, "/run/systemd/notify");
	ck_assert_uint_eq(len, base + strlen("/run/systemd/notify") + 1);

	/* Abstract: a leading NUL and no trailing one in the length. */
	ck_assert_int_eq(service_notify_addr("@sd-notify/1", &sun, &len), 0);
	ck_assert_int_eq(sun.sun_path[0], '\0');
	ck_assert_int_eq(memcmp(sun.sun_path + 1, "sd-notify/1", 11), 0);
	ck_assert_uint_eq(len, base + 12);

	ck_assert_int_eq(service_notify_addr(NULL, &sun, &len), -1);
	ck_assert_int_eq(service_notify_addr("", &sun, &len), -1);
	ck_assert_int_eq(service_notify_addr("@", &sun, &len), -1);
	ck_assert_int_eq(service_notify_addr("relative", &sun, &len), -1);
	ck_assert_int_eq(service_notify_addr("vsock:2:1234", &sun, &len), -1);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	ck_assert_int_eq(service_notify_addr(longpath, &sun, &len), -1);
}
END_TEST

static const struct {
	const char	*pid, *nfds;
	long		 want;
} listen_cases[] = {
	{ "4242", "1", 1 },
	{ "4242", "3", 3 },
	{ "4243", "1", 0 },		/* meant for another process */
	{ NULL, "1", 0 },
	{ "4242", NULL, 0 },
	{ "4242", "0", 0 },
	{ "4242", "-1", 0 },
	{ "4242", "1x", 0 },
	{ "+4242", "1", 0 },
	{ " 4242", "1", 0 },
	{ "4242", "99999999999999999999", 0 },
	{ "", "", 0 },
};

START_TEST(test_parse_listen)
{
	ck_assert_int_eq(service_parse_listen(listen_cases[_i].pid,
	    listen_cases[_i].nfds, 4242), listen_cases[_i].want);
}
END_TEST

START_TEST(test_parse_watchdog)
{
	ck_assert_uint_eq(service_parse_watchdog("400000", NULL, 7), 400000);
	ck_assert_uint_eq(service_parse_watchdog("400000", "7", 7), 400000);
	ck_assert_uint_eq(service_parse_watchdog("400000", "1", 7), 0);
	ck_assert_uint_eq(service_parse_watchdog("400000", "x", 7), 0);
	ck_assert_uint_eq(service_parse_watchdog("0", NULL, 7), 0);
	ck_assert_uint_eq(service_parse_watchdog(NULL, NULL, 7), 0);
	ck_assert_uint_eq(service_parse_watchdog("12us", NULL, 7), 0);
}
END_TEST

/* Without a service manager nothing is inherited. */
START_TEST(test_no_activation)
{
	int		 fds[4];
	const char	*names[4];

	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	ck_assert_uint_eq(service_listen_fds(fds, names, 4), 0);
	setenv("LISTEN_PID", "1", 1);	/* not us */
	setenv("LISTEN_FDS", "2", 1);
	ck_assert_uint_eq(service_listen_fds(fds, names, 4), 0);
	ck_assert_ptr_null(getenv("LISTEN_PID"));
	ck_assert_ptr_null(getenv("LISTEN_FDS"));
}
END_TEST

static Suite *
service_suite(void)
{
	Suite	*s = suite_create("service");
	TCase	*tc = tcase_create("parsers");
	int	 n = (int)(sizeof(listen_cases) / sizeof(listen_cases[0]));

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_notify_addr);
	tcase_add_loop_test(tc, test_parse_listen, 0, n);
	tcase_add_test(tc, test_parse_watchdog);
	tcase_add_test(tc, test_no_activation);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(service_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
