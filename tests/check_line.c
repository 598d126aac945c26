/*
 * check_line.c - unit tests for line.c: bounded line extraction from an
 * evbuffer, CRLF versus bare LF, over-long lines drained and reported
 * once or handed over in pieces, input split across reads.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "line.h"
#include "util.h"

#define CAP	16

/* Feeds <in> in chunks of <chunk> bytes and records what comes out as a
 * string: each line as "text|" ("text/|" for a bare LF), "LONG|" or
 * "LONG/|" for an over-long one. */
static void
line_run(const char *in, size_t chunk, char *got, size_t gotsz)
{
	struct evbuffer		*buf = evbuffer_new();
	struct line_reader	 r;
	char			 out[CAP + 1];
	size_t			 off = 0, n, len, inlen = strlen(in);
	bool			 crlf;
	enum line_rc		 rc;

	line_reader_init(&r, CAP);
	got[0] = '\0';
	while (off < inlen) {
		n = inlen - off < chunk ? inlen - off : chunk;
		evbuffer_add(buf, in + off, n);
		off += n;
		while ((rc = line_get(&r, buf, out, &len, &crlf)) !=
		    LINE_AGAIN) {
			ck_assert_uint_le(evbuffer_get_length(buf), inlen);
			if (rc == LINE_OK) {
				ck_assert_uint_eq(strlen(out), len);
				strncat(got, out, gotsz - strlen(got) - 1);
			} else
				strncat(got, "LONG", gotsz - strlen(got) - 1);
			strncat(got, crlf ? "|" : "/|",
			    gotsz - strlen(got) - 1);
		}
		/* Memory stays bounded by the cap plus one chunk. */
		ck_assert_uint_le(evbuffer_get_length(buf), CAP + chunk);
	}
	evbuffer_free(buf);
}

static const struct {
	const char	*in;
	const char	*want;
} line_cases[] = {
	{ "HELO a\r\n",				"HELO a|" },
	{ "HELO a\n",				"HELO a/|" },
	{ "a\r\nb\nc\r\n",			"a|b/|c|" },
	{ "\r\n\n",				"|/|" },
	{ "partial",				"" },
	{ "bare\rcr\r\n",			"bare\rcr|" },
	{ "x\r\r\n",				"x\r|" },
	/* 14 octets + CRLF = 16: exactly the cap. */
	{ "12345678901234\r\n",			"12345678901234|" },
	{ "123456789012345\n",			"123456789012345/|" },
	/* one over the cap */
	{ "123456789012345\r\nok\r\n",		"LONG|ok|" },
	{ "1234567890123456\nok\n",		"LONG/|ok/|" },
	{ "12345678901234567890123456789012345678901234567890\r\nnext\r\n",
						"LONG|next|" },
	{ "12345678901234567890123456789012345678901234567890\r\r\n.\r\n",
						"LONG|.|" },
	{ "12345678901234567890123456789012345678901234567890\n.\r\n",
						"LONG/|.|" },
};

START_TEST(test_line_table)
{
	static const size_t	chunks[] = { 1, 2, 3, 7, 64 };
	char			got[256];
	size_t			i;

	for (i = 0; i < nitems(chunks); i++) {
		line_run(line_cases[_i].in, chunks[i], got, sizeof(got));
		ck_assert_msg(strcmp(got, line_cases[_i].want) == 0,
		    "case %d chunk %zu: got \"%s\"", _i, chunks[i], got);
	}
}
END_TEST

START_TEST(test_line_huge_no_newline)
{
	struct evbuffer		*buf = evbuffer_new();
	struct line_reader	 r;
	char			 block[4096], out[CAP + 1];
	size_t			 len, i;
	bool			 crlf;

	memset(block, 'A', sizeof(block));
	line_reader_init(&r, CAP);
	/* 1 MiB without a newline never grows the buffer past one block. */
	for (i = 0; i < 256; i++) {
		evbuffer_add(buf, block, sizeof(block));
		ck_assert_int_eq(line_get(&r, buf, out, &len, &crlf),
		    LINE_AGAIN);
		ck_assert_uint_eq(evbuffer_get_length(buf), 0);
	}
	evbuffer_add(buf, "\r\nQUIT\r\n", 8);
	ck_assert_int_eq(line_get(&r, buf, out, &len, &crlf), LINE_TOOLONG);
	ck_assert(crlf);
	ck_assert_int_eq(line_get(&r, buf, out, &len, &crlf), LINE_OK);
	ck_assert_str_eq(out, "QUIT");
	evbuffer_free(buf);
}
END_TEST

/* As line_run(), through line_get_piece(): a piece shows as "text+". */
static void
piece_run(const char *in, size_t chunk, char *got, size_t gotsz)
{
	struct evbuffer		*buf = evbuffer_new();
	struct line_reader	 r;
	char			 out[CAP + 1];
	size_t			 off = 0, n, len, inlen = strlen(in);
	bool			 crlf, more;

	line_reader_init(&r, CAP);
	got[0] = '\0';
	while (off < inlen) {
		n = inlen - off < chunk ? inlen - off : chunk;
		evbuffer_add(buf, in + off, n);
		off += n;
		while (line_get_piece(&r, buf, out, &len, &crlf, &more) ==
		    LINE_OK) {
			ck_assert_uint_eq(strlen(out), len);
			ck_assert_uint_le(len, CAP);
			strncat(got, out, gotsz - strlen(got) - 1);
			if (more) {
				ck_assert(len == CAP || len == CAP - 1);
				ck_assert(!crlf);
			}
			strncat(got, more ? "+" : crlf ? "|" : "/|",
			    gotsz - strlen(got) - 1);
		}
		ck_assert_uint_lt(evbuffer_get_length(buf), CAP);
	}
	evbuffer_free(buf);
}

static const struct {
	const char	*in;
	const char	*want;
} piece_cases[] = {
	{ "HELO a\r\n",				"HELO a|" },
	{ "a\r\nb\nc\r\n",			"a|b/|c|" },
	{ "bare\rcr\r\n",			"bare\rcr|" },
	{ "12345678901234\r\n",			"12345678901234|" },
	{ "123456789012345\n",			"123456789012345/|" },
	/* Over the cap: pieces, then the end. */
	{ "123456789012345\r\nok\r\n",		"123456789012345+|ok|" },
	{ "1234567890123456\nok\n",		"1234567890123456+/|ok/|" },
	{ "12345678901234567890\r\n",		"1234567890123456+7890|" },
	{ "12345678901234567890123456789012345678\r\n.\r\n",
		"1234567890123456+7890123456789012+345678|.|" },
	/* A CR that might start the terminator waits for the next piece. */
	{ "123456789012345\r\r\n",		"123456789012345+\r|" },
	{ "123456789012345\r.\r\n",		"123456789012345+\r.|" },
	{ "123456789012345\r\n.\r\n",		"123456789012345+|.|" },
	{ "\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\n",
		"\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r+\r\r|" },
	{ "partial",				"" },
};

START_TEST(test_piece_table)
{
	static const size_t	chunks[] = { 1, 2, 3, 7, 64 };
	char			got[256];
	size_t			i;

	for (i = 0; i < nitems(chunks); i++) {
		piece_run(piece_cases[_i].in, chunks[i], got, sizeof(got));
		ck_assert_msg(strcmp(got, piece_cases[_i].want) == 0,
		    "case %d chunk %zu: got \"%s\"", _i, chunks[i], got);
	}
}
END_TEST

/* A megabyte without a newline comes out in pieces as it arrives. */
START_TEST(test_piece_huge_no_newline)
{
	struct evbuffer		*buf = evbuffer_new();
	struct line_reader	 r;
	char			 block[4096], out[CAP + 1];
	size_t			 len, i, total = 0;
	bool			 crlf, more;

	memset(block, 'A', sizeof(block));
	line_reader_init(&r, CAP);
	for (i = 0; i < 256; i++) {
		evbuffer_add(buf, block, sizeof(block));
		while (line_get_piece(&r, buf, out, &len, &crlf, &more) ==
		    LINE_OK) {
			ck_assert(more);
			total += len;
		}
		ck_assert_uint_lt(evbuffer_get_length(buf), CAP);
	}
	evbuffer_add(buf, "\r\nQUIT\r\n", 8);
	ck_assert_int_eq(line_get_piece(&r, buf, out, &len, &crlf, &more),
	    LINE_OK);
	ck_assert(!more && crlf);
	total += len;
	ck_assert_uint_eq(total, sizeof(block) * 256);
	ck_assert_int_eq(line_get_piece(&r, buf, out, &len, &crlf, &more),
	    LINE_OK);
	ck_assert(!more);
	ck_assert_str_eq(out, "QUIT");
	evbuffer_free(buf);
}
END_TEST

static Suite *
line_suite(void)
{
	Suite	*s = suite_create("line");
	TCase	*tc;

	tc = tcase_create("split");
	tcase_add_loop_test(tc, test_line_table, 0, nitems(line_cases));
	suite_add_tcase(s, tc);
	tc = tcase_create("bounded");
	tcase_add_test(tc, test_line_huge_no_newline);
	suite_add_tcase(s, tc);
	tc = tcase_create("pieces");
	tcase_add_loop_test(tc, test_piece_table, 0, nitems(piece_cases));
	tcase_add_test(tc, test_piece_huge_no_newline);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(line_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
