/*
 * check_mailq.c - unit tests for mailq.c: Postfix's mailq layout, byte
 * for byte (the header, the status marks, the reason lines and when
 * they repeat, the summary's arithmetic), and what it makes printable.
 * The expected texts were written from Postfix's showq_compat.c formats
 * (L_STRING_FORMAT, L_SENDER_FORMAT), not from mailq.c.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailq.h"
#include "util.h"

#define T	1700000000	/* Tue Nov 14 22:13:20 2023 UTC */
#define ID	"0123456789abcdef"
#define HEAD	"----Queue ID----- --Size-- ---Arrival Time---- " \
		"--Sender/Recipient------\n"
/* 17 + 1 + 8 + 1 + 19 + 1 columns before a recipient. */
#define RCPT	"                                               "
/* "(451 4.3.0 later)" ends in column 78. */
#define LATER	"                                                             (451 4.3.0 later)\n"
#define UNAVAIL	"                                                          (reason unavailable)\n"

/* Runs <fn> on a memory stream; returns the text (caller frees). */
static char *
run(void (*fn)(struct mailq *))
{
	struct mailq	 mq;
	char		*buf = NULL;
	size_t		 len = 0;
	FILE		*f;

	setenv("TZ", "UTC0", 1);
	tzset();
	ck_assert_ptr_nonnull(f = open_memstream(&buf, &len));
	mailq_init(&mq, f);
	fn(&mq);
	ck_assert_int_eq(fclose(f), 0);
	return buf;
}

static void
empty_fn(struct mailq *mq)
{
	mailq_summary(mq, MAILQ_EMPTY);
}

START_TEST(test_empty)
{
	char	*out = run(empty_fn);

	ck_assert_str_eq(out, "Mail queue is empty\n");
	free(out);
}
END_TEST

static void
one_fn(struct mailq *mq)
{
	static const struct mailq_rcpt	rc[] = {
		{ "a@x.test", NULL }, { "b@y.test", NULL },
	};
	struct mailq_msg		m = { ID, 0, 1234, T, "s@client.test",
					    rc, 2 };

	mailq_message(mq, &m);
	mailq_summary(mq, MAILQ_EMPTY);
}

START_TEST(test_one_message)
{
	char	*out = run(one_fn);

	ck_assert_str_eq(out, HEAD
	    ID "      1234 Tue Nov 14 22:13:20 s@client.test\n"
	    RCPT "a@x.test\n"
	    RCPT "b@y.test\n"
	    "\n"
	    "-- 1 Kbytes in 1 Request.\n");
	free(out);
}
END_TEST

/* A held message, one being delivered, a deferred one whose recipients
 * share a reason, then one whose reasons differ, and the null sender. */
static void
marks_fn(struct mailq *mq)
{
	static const struct mailq_rcpt	plain[] = { { "h@x.test", NULL } };
	static const struct mailq_rcpt	same[] = {
		{ "a@x.test", "451 4.3.0 later" },
		{ "b@x.test", "451 4.3.0 later" },
	};
	static const struct mailq_rcpt	mixed[] = {
		{ "a@x.test", "451 4.3.0 later" }, { "b@x.test", NULL },
		{ "c@x.test", NULL }, { "d@x.test", "451 4.3.0 later" },
	};
	struct mailq_msg		m[] = {
		{ ID, MAILQ_HELD, 100, T, "s@client.test", plain, 1 },
		{ "fedcba9876543210", MAILQ_ACTIVE, 2000, T - 10 * 86400,
		    "s@client.test", plain, 1 },
		{ ID, 0, 3000, T, "", same, 2 },
		{ ID, 0, 99999999, T, "s@client.test", mixed, 4 },
	};
	size_t				i;

	for (i = 0; i < nitems(m); i++)
		mailq_message(mq, &m[i]);
	mailq_summary(mq, MAILQ_EMPTY);
}

START_TEST(test_marks_and_reasons)
{
	char	*out = run(marks_fn);

	ck_assert_str_eq(out, HEAD
	    ID "!      100 Tue Nov 14 22:13:20 s@client.test\n"
	    RCPT "h@x.test\n"
	    "\n"
	    "fedcba9876543210*     2000 Sat Nov  4 22:13:20 s@client.test\n"
	    RCPT "h@x.test\n"
	    "\n"
	    ID "      3000 Tue Nov 14 22:13:20 MAILER-DAEMON\n"
	    LATER
	    RCPT "a@x.test\n"
	    RCPT "b@x.test\n"
	    "\n"
	    ID "  99999999 Tue Nov 14 22:13:20 s@client.test\n"
	    LATER
	    RCPT "a@x.test\n"
	    UNAVAIL
	    RCPT "b@x.test\n"
	    RCPT "c@x.test\n"
	    LATER
	    RCPT "d@x.test\n"
	    "\n"
	    /* (100 + 2000 + 3000 + 99999999) / 1024, rounded down */
	    "-- 97661 Kbytes in 4 Requests.\n");
	free(out);
}
END_TEST

/* Text from clients and the upstream: controls (C0, DEL, C1) and
 * invalid UTF-8 print as one '?' per byte; valid UTF-8 passes; a reason
 * too long to right-align starts at the margin. */
static void
hostile_fn(struct mailq *mq)
{
	static const struct mailq_rcpt	rc[] = {
		{ "caf\xc3\xa9\x1b[31m@x.test", "bad\r\n\xff\xc2\x85 reply "
		    "that goes on and on and on and on and on and on and on "
		    "and on and end" },
	};
	struct mailq_msg		m = { ID, 0, 5, T, "a\x7f" "b@x.test",
					    rc, 1 };

	mailq_message(mq, &m);
	mailq_summary(mq, MAILQ_EMPTY);
}

START_TEST(test_printable)
{
	char	*out = run(hostile_fn);

	ck_assert_str_eq(out, HEAD
	    ID "         5 Tue Nov 14 22:13:20 a?b@x.test\n"
	    "(bad????? reply that goes on and on and on and on and on and on "
	    "and on and on and end)\n"
	    RCPT "caf\xc3\xa9?[31m@x.test\n"
	    "\n"
	    "-- 0 Kbytes in 1 Request.\n");
	free(out);
}
END_TEST

static Suite *
mailq_suite(void)
{
	Suite	*s = suite_create("mailq");
	TCase	*tc = tcase_create("layout");

	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_one_message);
	tcase_add_test(tc, test_marks_and_reasons);
	tcase_add_test(tc, test_printable);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(mailq_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
