/*
 * check_smtpsrv.c - unit tests for the servers' shared command table
 * and replies (smtpsrv.c), and for the DATA decoder's plain mode that
 * the maildrop uses (smtp.c): one table of verb, state and the reply
 * before any handler, then the reply texts and the EHLO list.
 */
#include "config.h"

#include "smtpsrv.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "smtp.h"
#include "util.h"

static const struct {
	enum smtp_verb		 verb;
	enum smtpsrv_state	 state;
	const char		*want;	/* NULL: the handler runs */
} refusal_cases[] = {
	{ SMTP_VERB_EHLO, SMTPSRV_GREETED, NULL },
	{ SMTP_VERB_HELO, SMTPSRV_RCPT, NULL },
	{ SMTP_VERB_MAIL, SMTPSRV_GREETED,
	  "503 5.5.1 Error: send HELO/EHLO first" },
	{ SMTP_VERB_MAIL, SMTPSRV_READY, NULL },
	{ SMTP_VERB_MAIL, SMTPSRV_MAIL,
	  "503 5.5.1 Error: nested MAIL command" },
	{ SMTP_VERB_MAIL, SMTPSRV_RCPT,
	  "503 5.5.1 Error: nested MAIL command" },
	{ SMTP_VERB_RCPT, SMTPSRV_READY,
	  "503 5.5.1 Error: need MAIL command" },
	{ SMTP_VERB_RCPT, SMTPSRV_MAIL, NULL },
	{ SMTP_VERB_RCPT, SMTPSRV_RCPT, NULL },
	{ SMTP_VERB_DATA, SMTPSRV_GREETED,
	  "503 5.5.1 Error: send HELO/EHLO first" },
	{ SMTP_VERB_DATA, SMTPSRV_MAIL,
	  "503 5.5.1 Error: need RCPT command" },
	{ SMTP_VERB_DATA, SMTPSRV_RCPT, NULL },
	{ SMTP_VERB_STARTTLS, SMTPSRV_READY, NULL },
	{ SMTP_VERB_STARTTLS, SMTPSRV_MAIL,
	  "503 5.5.1 Error: MAIL transaction in progress" },
	{ SMTP_VERB_AUTH, SMTPSRV_GREETED,
	  "503 5.5.1 Error: send EHLO first" },
	{ SMTP_VERB_AUTH, SMTPSRV_RCPT,
	  "503 5.5.1 Error: MAIL transaction in progress" },
	{ SMTP_VERB_QUIT, SMTPSRV_GREETED, NULL },
	{ SMTP_VERB_RSET, SMTPSRV_RCPT, NULL },
	{ SMTP_VERB_UNKNOWN, SMTPSRV_READY,
	  "500 5.5.2 Error: command not recognized" },
};

START_TEST(test_refusal)
{
	const char	*got = smtpsrv_refusal(refusal_cases[_i].verb,
			    refusal_cases[_i].state);

	if (refusal_cases[_i].want == NULL)
		ck_assert_ptr_null(got);
	else
		ck_assert_str_eq(got, refusal_cases[_i].want);
}
END_TEST

START_TEST(test_replies)
{
	ck_assert_str_eq(smtpsrv_helo_syntax(true),
	    "501 5.5.4 Syntax: EHLO hostname");
	ck_assert_str_eq(smtpsrv_mail_reply(SMTP_EPARAM),
	    "555 5.5.4 Unsupported MAIL parameter");
	ck_assert_str_eq(smtpsrv_mail_reply(SMTP_ETOOBIG), "552 5.3.4 "
	    "Message size exceeds fixed maximum message size");
	ck_assert_str_eq(smtpsrv_mail_reply(SMTP_ESYNTAX),
	    "501 5.5.4 Syntax: MAIL FROM:<address>");
	ck_assert_str_eq(smtpsrv_rcpt_reply(SMTP_EADDR),
	    "501 5.1.3 Bad recipient address syntax");
	ck_assert_str_eq(smtpsrv_rcpt_reply(SMTP_EPARAM),
	    "555 5.5.4 Unsupported RCPT parameter");
}
END_TEST

START_TEST(test_ehlo)
{
	struct buf	b = BUF_INIT;

	smtpsrv_ehlo(&b, "mx.test", 1000, 0);
	ck_assert_str_eq(b.p, "250-mx.test\r\n250-PIPELINING\r\n"
	    "250-SIZE 1000\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES");
	buf_free(&b);
	smtpsrv_ehlo(&b, "mx.test", 1, SMTPSRV_EHLO_STARTTLS |
	    SMTPSRV_EHLO_AUTH);
	ck_assert_ptr_nonnull(strstr(b.p, "\r\n250-STARTTLS\r\n"
	    "250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES"));
	buf_free(&b);
}
END_TEST

/* The plain mode: a dot is content and "." ends nothing; the limits
 * still hold. */
START_TEST(test_data_plain)
{
	static const char	*lines[] = { "..", ".", ".x", "", "." };
	struct smtp_data	 d;
	const char		*out;
	size_t			 i, outlen;

	smtp_data_init_plain(&d, 1000, 0);
	for (i = 0; i < nitems(lines); i++) {
		ck_assert_int_eq(smtp_data_line(&d, lines[i],
		    strlen(lines[i]), i % 2 == 0, &out, &outlen),
		    SMTP_DATA_LINE);
		ck_assert_uint_eq(outlen, strlen(lines[i]));
		ck_assert_int_eq(memcmp(out, lines[i], outlen), 0);
	}
	smtp_data_piece(&d, ".a", 2, &out, &outlen);
	ck_assert_uint_eq(outlen, 2);
	ck_assert_int_eq(d.err, SMTP_DATA_OK);
	smtp_data_init_plain(&d, 10, 5);
	(void)smtp_data_line(&d, "1234", 4, true, &out, &outlen);
	ck_assert_int_eq(d.err, SMTP_DATA_ESIZE);
}
END_TEST

static Suite *
smtpsrv_suite(void)
{
	Suite	*s = suite_create("smtpsrv");
	TCase	*tc = tcase_create("table");

	tcase_add_loop_test(tc, test_refusal, 0, nitems(refusal_cases));
	tcase_add_test(tc, test_replies);
	tcase_add_test(tc, test_ehlo);
	tcase_add_test(tc, test_data_plain);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(smtpsrv_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
