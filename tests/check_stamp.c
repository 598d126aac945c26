/*
 * check_stamp.c - unit tests for stamp.c: where the header section ends
 * and what it holds (table-driven, whole messages), the fields made for
 * what is missing, and the Message-ID generator.
 */
#include "config.h"

#include <check.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stamp.h"
#include "util.h"

/* Messages as lines joined by "\n" (each line without its end): the
 * line before which the fields go (-1: after the last), and what the
 * scan found. */
static const struct {
	const char	*msg;
	int		 at;
	bool		 date, msgid;
} scan_cases[] = {
	{ "Subject: x\n\nbody",				1, false, false },
	{ "Date: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: x\n\nbody",
	    2, true, false },
	{ "Message-ID: <a@b>\n\nbody",			1, false, true },
	{ "message-id:<a@b>\nDATE: x\n\nbody",		2, true, true },
	/* Folded fields stay fields; a folded "Date" is still a Date. */
	{ "Subject: a\n b\n\tc\nDate:\n x\n\nDate: in the body", 5, true,
	    false },
	/* The body starts without the empty line. */
	{ "Subject: x\nThis is the body\n\nmore",	1, false, false },
	{ "Subject: x\n: no name\n",			1, false, false },
	{ "Subject: x\nSubject : obsolete form\n",	1, false, false },
	{ "Subject: x\nX-\x80: high bit\n",		1, false, false },
	/* No header section at all, or a continuation without a field. */
	{ "\nbody",					0, false, false },
	{ " indented first line\nSubject: x",		0, false, false },
	{ "just text",					0, false, false },
	/* Never ends: the fields go after the last line. */
	{ "Subject: x\nTo: y",				-1, false, false },
	{ "Date: x\nMessage-ID: <y@z>",			-1, true, true },
	/* Names that only look alike. */
	{ "Dates: x\nX-Message-ID: y\nMessage-IDs: z\n\n", 3, false, false },
	{ "Resent-Date: x\nResent-Message-ID: <y>\n\n",	2, false, false },
};

START_TEST(test_scan)
{
	struct stamp_scan	 s;
	const char		*p = scan_cases[_i].msg, *nl;
	size_t			 len;
	int			 line = 0, at = -1;

	stamp_scan_init(&s);
	for (;;) {
		nl = strchr(p, '\n');
		len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (stamp_scan_line(&s, p, len, true)) {
			ck_assert_msg(at == -1, "row %d: ended twice", _i);
			at = line;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
		line++;
	}
	ck_assert_msg(at == scan_cases[_i].at, "row %d: at %d", _i, at);
	ck_assert_int_eq(s.in_headers, at == -1);
	ck_assert_int_eq(s.has_date, scan_cases[_i].date);
	ck_assert_int_eq(s.has_msgid, scan_cases[_i].msgid);
}
END_TEST

/* A line taken in pieces (too long for one buffer) is one line: its
 * later pieces never end the header section, nor count as fields. */
START_TEST(test_scan_pieces)
{
	static const struct {
		const char	*piece;
		bool		 eol;
		bool		 ends;
	} pieces[] = {
		{ "Subject: a very long",		false,	false },
		{ " subject, then text with no colon",	false,	false },
		{ "Date: not a field, inside the line",	true,	false },
		{ "X-Long: ",				false,	false },
		{ "",					false,	false },
		{ "",					true,	false },
		{ "",					true,	true },
		{ "Message-ID: <in the body>",		true,	false },
	};
	struct stamp_scan	s;
	size_t			i;

	stamp_scan_init(&s);
	for (i = 0; i < nitems(pieces); i++)
		ck_assert_msg(stamp_scan_line(&s, pieces[i].piece,
		    strlen(pieces[i].piece), pieces[i].eol) == pieces[i].ends,
		    "piece %zu", i);
	ck_assert(!s.in_headers);
	ck_assert(!s.has_date);
	ck_assert(!s.has_msgid);
}
END_TEST

static void
assert_match(const char *re, const char *s)
{
	regex_t	rx;

	ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&rx, s, 0, NULL, 0) == 0, "<%s> !~ /%s/", s,
	    re);
	regfree(&rx);
}

START_TEST(test_missing)
{
	struct stamp_scan	s;
	char			buf[STAMP_FIELDS_MAX], id[320], small[40];
	int			n;

	setenv("TZ", "UTC0", 1);
	tzset();
	stamp_scan_init(&s);
	n = stamp_missing(&s, 1700000000, "lan.example", "\r\n", buf,
	    sizeof(buf), id, sizeof(id));
	ck_assert_int_eq(n, (int)strlen(buf));
	assert_match("^Date: Tue, 14 Nov 2023 22:13:20 \\+0000\r\n"
	    "Message-ID: <20231114221320\\.[0-9a-f]{16}@lan\\.example>\r\n$",
	    buf);
	ck_assert_ptr_nonnull(strstr(buf, id));
	assert_match("^<20231114221320\\.[0-9a-f]{16}@lan\\.example>$", id);

	s.has_date = true;
	n = stamp_missing(&s, 1700000000, "d.example", "\n", buf, sizeof(buf),
	    id, sizeof(id));
	ck_assert_int_gt(n, 0);
	assert_match("^Message-ID: <[0-9]{14}\\.[0-9a-f]{16}@d\\.example>\n$",
	    buf);

	s.has_date = false;
	s.has_msgid = true;
	n = stamp_missing(&s, 1700000000, "d.example", "\n", buf, sizeof(buf),
	    id, sizeof(id));
	ck_assert_str_eq(buf, "Date: Tue, 14 Nov 2023 22:13:20 +0000\n");
	ck_assert_str_eq(id, "");

	s.has_date = true;
	ck_assert_int_eq(stamp_missing(&s, 0, "d.example", "\n", buf,
	    sizeof(buf), NULL, 0), 0);
	ck_assert_str_eq(buf, "");

	/* Too small: refused, never cut. */
	stamp_scan_init(&s);
	ck_assert_int_eq(stamp_missing(&s, 0, "d.example", "\n", small,
	    sizeof(small), NULL, 0), -1);
	ck_assert_int_eq(stamp_msgid(0, "d.example", small, 20), -1);
}
END_TEST

/* The longest domain fits STAMP_FIELDS_MAX; ids differ call to call. */
START_TEST(test_msgid)
{
	struct stamp_scan	s;
	char			dom[256], buf[STAMP_FIELDS_MAX];
	char			a[320], b[320];

	memset(dom, 'd', 255);
	dom[255] = '\0';
	stamp_scan_init(&s);
	ck_assert_int_gt(stamp_missing(&s, 1700000000, dom, "\r\n", buf,
	    sizeof(buf), NULL, 0), 0);
	ck_assert_int_eq(stamp_msgid(1700000000, "x.example", a, sizeof(a)),
	    0);
	ck_assert_int_eq(stamp_msgid(1700000000, "x.example", b, sizeof(b)),
	    0);
	ck_assert_str_ne(a, b);
	ck_assert_uint_eq(stamp_field_name("Date: x", 7), 4);
	ck_assert_uint_eq(stamp_field_name("Date", 4), 0);
	ck_assert_uint_eq(stamp_field_name(": x", 3), 0);
	ck_assert_uint_eq(stamp_field_name("A B: x", 6), 0);
}
END_TEST

static Suite *
stamp_suite(void)
{
	Suite	*s = suite_create("stamp");
	TCase	*tc = tcase_create("stamp");

	tcase_add_loop_test(tc, test_scan, 0, nitems(scan_cases));
	tcase_add_test(tc, test_scan_pieces);
	tcase_add_test(tc, test_missing);
	tcase_add_test(tc, test_msgid);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(stamp_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
