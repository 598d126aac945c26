/*
 * check_addrlist.c - unit tests for the RFC 5322 address-list parser
 * (addrlist.c): one table of values with the mailboxes, groups, empty
 * elements or the failing element expected, then the phrase words.
 */
#include "config.h"

#include "addrlist.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"

static const struct {
	const char	*in;
	int		 rc;
	const char	*addrs;		/* copied addresses, ' ' between */
	const char	*first_phrase;	/* of the first mailbox, or NULL */
	const char	*first_cmt;	/* of the first mailbox, or NULL */
	size_t		 ngroups, nempty;
	const char	*bad;		/* the failing element (rc -1) */
} cases[] = {
	{ "a@b.test", 0, "a@b.test", NULL, NULL, 0, 0, NULL },
	{ "John Doe <john@x.test>", 0, "john@x.test", "John Doe", NULL, 0,
	  0, NULL },
	{ "\"Doe, John\" <john@x.test>, b@y.test", 0,
	  "john@x.test b@y.test", "\"Doe, John\"", NULL, 0, 0, NULL },
	{ "root@host.test (Cron Daemon)", 0, "root@host.test", NULL,
	  "Cron Daemon", 0, 0, NULL },
	{ "root", 0, "root", NULL, NULL, 0, 0, NULL },
	{ "Mr. John (the boss) Doe <john@x.test>", 0, "john@x.test",
	  "Mr. John (the boss) Doe", NULL, 0, 0, NULL },
	{ "undisclosed-recipients:;", 0, "", NULL, NULL, 1, 0, NULL },
	{ "team: a@x.test, B <b@x.test>; c@y.test, g2:;, d@y.test", 0,
	  "a@x.test b@x.test c@y.test d@y.test", NULL, NULL, 2, 0, NULL },
	{ "g: a@x.test", 0, "a@x.test", NULL, NULL, 1, 0, NULL },
	{ "a@x.test,,b@x.test", 0, "a@x.test b@x.test", NULL, NULL, 0, 1,
	  NULL },
	{ "a@x.test,", 0, "a@x.test", NULL, NULL, 0, 1, NULL },
	{ "", 0, "", NULL, NULL, 0, 1, NULL },
	{ "<@relay.test,@r2.test:user@x.test>", 0, "user@x.test", NULL,
	  NULL, 0, 0, NULL },
	{ "a(x)@b.test", 0, "a@b.test", NULL, "x", 0, 0, NULL },
	{ "< a@b.test >", 0, "a@b.test", NULL, NULL, 0, 0, NULL },
	{ "\"a b\"@x.test", 0, "\"a b\"@x.test", NULL, NULL, 0, 0, NULL },
	{ "a@[192.0.2.1]", 0, "a@[192.0.2.1]", NULL, NULL, 0, 0, NULL },
	{ "a@x.test,\r\n\tb@y.test", 0, "a@x.test b@y.test", NULL, NULL, 0,
	  0, NULL },
	{ "<>", 0, "", NULL, NULL, 0, 0, NULL },
	{ "J\xc3\xb6rg <j@x.test>", 0, "j@x.test", "J\xc3\xb6rg", NULL, 0,
	  0, NULL },
	{ "john doe@x.test", -1, "", NULL, NULL, 0, 0, "john doe@x.test" },
	{ "a@x.test, <b@x.test", -1, "a@x.test", NULL, NULL, 0, 0,
	  "<b@x.test" },
	{ "a@x.test>", -1, "", NULL, NULL, 0, 0, "a@x.test>" },
	{ "a@x.test; b@x.test", -1, "", NULL, NULL, 0, 0, "a@x.test;" },
	{ "Name <a@x.test> junk", -1, "", NULL, NULL, 0, 0,
	  "Name <a@x.test> junk" },
	{ "\"unterminated", -1, "", NULL, NULL, 0, 0, "\"unterminated" },
	{ "(unterminated comment", -1, "", NULL, NULL, 0, 0,
	  "(unterminated comment" },
	{ "a: b: c@x.test;", -1, "", NULL, NULL, 1, 0, "b:" },
	{ "<a@x.test> <b@x.test>", -1, "", NULL, NULL, 0, 0,
	  "<a@x.test> <" },
	{ ": a@x.test;", -1, "", NULL, NULL, 0, 0, ":" },
};

struct got {
	struct buf		addrs;
	struct addrlist_mbox	first;
	size_t			n;
};

static int
collect(void *arg, const struct addrlist_mbox *mb)
{
	struct got	*g = arg;
	char		 a[64];

	ck_assert_int_eq(addrlist_addr_copy(mb, a, sizeof(a)), 0);
	if (g->n++ == 0)
		g->first = *mb;
	else
		buf_adds(&g->addrs, " ");
	buf_adds(&g->addrs, a);
	return 0;
}

static void
assert_slice(const char *p, size_t n, const char *want)
{
	if (want == NULL) {
		ck_assert_ptr_null(p);
		return;
	}
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(n, strlen(want));
	ck_assert(memcmp(p, want, n) == 0);
}

START_TEST(test_parse)
{
	struct got		g;
	struct addrlist_info	info;
	const char		*in = cases[_i].in;
	int			 rc;

	memset(&g, 0, sizeof(g));
	buf_adds(&g.addrs, "");
	rc = addrlist_parse(in, strlen(in), collect, &g, &info);
	ck_assert_msg(rc == cases[_i].rc, "%s: rc %d", in, rc);
	ck_assert_str_eq(g.addrs.p, cases[_i].addrs);
	ck_assert_uint_eq(info.nmbox, g.n);
	ck_assert_uint_eq(info.ngroups, cases[_i].ngroups);
	ck_assert_uint_eq(info.nempty, cases[_i].nempty);
	if (rc == -1)
		assert_slice(info.bad, info.badlen, cases[_i].bad);
	else if (g.n > 0) {
		assert_slice(g.first.phrase, g.first.phraselen,
		    cases[_i].first_phrase);
		assert_slice(g.first.cmt, g.first.cmtlen, cases[_i].first_cmt);
	}
	buf_free(&g.addrs);
}
END_TEST

static int
stop_at_second(void *arg, const struct addrlist_mbox *mb)
{
	size_t	*n = arg;

	(void)mb;
	return ++*n == 2 ? -1 : 0;
}

START_TEST(test_callback_stops)
{
	struct addrlist_info	info;
	static const char	in[] = "a@x.test, b@x.test, c@x.test";
	size_t			n = 0;

	ck_assert_int_eq(addrlist_parse(in, strlen(in), stop_at_second, &n,
	    &info), -1);
	ck_assert_uint_eq(n, 2);
	ck_assert_ptr_null(info.bad);
	/* Without a callback, the counts only. */
	ck_assert_int_eq(addrlist_parse(in, strlen(in), NULL, NULL, &info),
	    0);
	ck_assert_uint_eq(info.nmbox, 3);
}
END_TEST

START_TEST(test_copy_bounds)
{
	struct addrlist_mbox	mb;
	char			out[9];

	memset(&mb, 0, sizeof(mb));
	mb.addr = "a (x) @ b.test";
	mb.addrlen = strlen(mb.addr);
	ck_assert_int_eq(addrlist_addr_copy(&mb, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "a@b.test");
	ck_assert_int_eq(addrlist_addr_copy(&mb, out, 8), -1);
	/* What does not lex is kept, for the caller's check to refuse. */
	mb.addr = "a\\b@x";
	mb.addrlen = strlen(mb.addr);
	ck_assert_int_eq(addrlist_addr_copy(&mb, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "a\\b@x");
}
END_TEST

START_TEST(test_phrase_words)
{
	static const char	 in[] =
	    "Mr. \"J \\\"x\\\"\" (c) =?UTF-8?Q?x?=,";
	const char		*p = in, *end = in + strlen(in);
	struct addrlist_word	 w;
	static const struct {
		const char	*text;
		bool		 quoted, spaced;
	} want[] = {
		{ "Mr.", false, false }, { "J \\\"x\\\"", true, true },
		{ "=?UTF-8?Q?x?=", false, true }, { ",", false, false },
	};
	size_t			 i;

	for (i = 0; i < nitems(want); i++) {
		ck_assert(addrlist_phrase_word(&p, end, &w));
		assert_slice(w.p, w.len, want[i].text);
		ck_assert(w.quoted == want[i].quoted);
		ck_assert(w.spaced == want[i].spaced);
	}
	ck_assert(!addrlist_phrase_word(&p, end, &w));
	p = "\"open";
	ck_assert(!addrlist_phrase_word(&p, p + 5, &w));
}
END_TEST

static Suite *
addrlist_suite(void)
{
	Suite	*s = suite_create("addrlist");
	TCase	*tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_parse, 0, nitems(cases));
	tcase_add_test(tc, test_callback_stops);
	tcase_add_test(tc, test_copy_bounds);
	tcase_add_test(tc, test_phrase_words);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(addrlist_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
