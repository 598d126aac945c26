/*
 * check_ehlo.c - unit tests for ehlo.c: the extensions an EHLO reply
 * offers, read one keyword line at a time, and the AUTH list handed on.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ehlo.h"

START_TEST(test_keywords)
{
	struct ehlo_ext	x;

	ehlo_ext_reset(&x);
	ck_assert(!x.starttls && !x.pipelining && !x.eightbitmime &&
	    !x.smtputf8 && x.size == 0);
	ck_assert_ptr_null(ehlo_ext_line(&x, "starttls"));
	ck_assert_ptr_null(ehlo_ext_line(&x, "PIPELINING"));
	ck_assert_ptr_null(ehlo_ext_line(&x, "8BITMIME"));
	ck_assert_ptr_null(ehlo_ext_line(&x, "SMTPUTF8"));
	ck_assert_ptr_null(ehlo_ext_line(&x, "SIZE 35882577"));
	ck_assert(x.starttls && x.pipelining && x.eightbitmime &&
	    x.smtputf8);
	ck_assert_uint_eq(x.size, 35882577);
	ehlo_ext_reset(&x);
	ck_assert(!x.starttls && x.size == 0);
}
END_TEST

START_TEST(test_size_without_limit)
{
	struct ehlo_ext	x;

	ehlo_ext_reset(&x);
	ck_assert_ptr_null(ehlo_ext_line(&x, "SIZE"));
	ck_assert_uint_eq(x.size, 0);
}
END_TEST

START_TEST(test_auth_list)
{
	struct ehlo_ext	x;

	ehlo_ext_reset(&x);
	ck_assert_str_eq(ehlo_ext_line(&x, "AUTH LOGIN PLAIN XOAUTH2"),
	    "LOGIN PLAIN XOAUTH2");
	ck_assert_str_eq(ehlo_ext_line(&x, "AUTH=LOGIN"), "LOGIN");
	/* Not AUTH, nor any keyword we use. */
	ck_assert_ptr_null(ehlo_ext_line(&x, "AUTHX PLAIN"));
	ck_assert_ptr_null(ehlo_ext_line(&x, "STARTTLSX"));
	ck_assert_ptr_null(ehlo_ext_line(&x, "ENHANCEDSTATUSCODES"));
	ck_assert(!x.starttls);
}
END_TEST

static Suite *
ehlo_suite(void)
{
	Suite	*s = suite_create("ehlo");
	TCase	*tc = tcase_create("ext");

	tcase_add_test(tc, test_keywords);
	tcase_add_test(tc, test_size_without_limit);
	tcase_add_test(tc, test_auth_list);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(ehlo_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
