/*
 * check_maildrop.c - unit tests for the maildrop file format and for the
 * line canonicalisation the injector and the daemon share.
 *
 * Pure functions only, in memory.  Parser inputs are copied into heap
 * buffers of their exact length, so the sanitizers catch any read past
 * the end.
 */
#include "config.h"

#include "maildrop.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define HEAD	"smartrelay-maildrop 1\nuid 1000\n"
#define SIZE0	"size 00000000000000000000\n\n"

/* Parses <text> (header only) from an exact-size copy, the file being
 * <text> plus <body> octets. */
static int
parse_exact(const char *text, size_t len, uint64_t body, size_t max_rcpts,
    struct maildrop_env *env, size_t *hdrlen, const char **reason)
{
	char	*copy = xmalloc(len > 0 ? len : 1);
	int	 rc;

	memcpy(copy, text, len);
	rc = maildrop_parse(copy, len, len + body, max_rcpts, env, hdrlen,
	    reason);
	free(copy);
	return rc;
}

/*
 * Round trip.
 */

static const char *const odd_rcpts[] = {
	"bob@example.org",
	"\"john doe\"@example.org",	/* a space: xtext +20 */
	"a+b=c@example.org",		/* '+' and '=' are escaped */
	"<angle>@example.org",		/* so are '<' and '>' */
	"\"q\\\"uote\"@[192.0.2.1]",
	"caf\xc3\xa9@example.org",	/* 8-bit octets */
	"~!#$%&'*/?^_`{|}@x.example",
};

static const struct {
	const char	*sender;
	size_t		 nrcpt;
	uint64_t	 size;
} trip_cases[] = {
	{ "alice@example.org",		1,	0 },
	{ "",				2,	1 },
	{ "a+b=c@example.org",		7,	12345 },
	{ "\"x y\"@example.org",	3,	UINT64_MAX },
};

START_TEST(test_round_trip)
{
	struct maildrop_env	 env, got;
	const char		*reason = "unset";
	char			*text;
	size_t			 len, hdrlen = 0, i;

	env.uid = 4294967295UL;
	env.sender = (char *)trip_cases[_i].sender;
	env.rcpts = (char **)odd_rcpts;
	env.nrcpt = trip_cases[_i].nrcpt;
	env.size = trip_cases[_i].size;
	text = maildrop_format(&env, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_le(len, maildrop_header_max(env.nrcpt));
	if (env.size == UINT64_MAX)	/* cannot fit: refused, no wrap */
		ck_assert_int_eq(parse_exact(text, len, 0, 100, &got, &hdrlen,
		    &reason), -1);
	else {
		ck_assert_int_eq(parse_exact(text, len, env.size, 100, &got,
		    &hdrlen, &reason), 0);
		ck_assert_ptr_null(reason);
		ck_assert_uint_eq(hdrlen, len);
		ck_assert_uint_eq(got.uid, env.uid);
		ck_assert_str_eq(got.sender, env.sender);
		ck_assert_uint_eq(got.nrcpt, env.nrcpt);
		for (i = 0; i < got.nrcpt; i++)
			ck_assert_str_eq(got.rcpts[i], odd_rcpts[i]);
		ck_assert_uint_eq(got.size, env.size);
		maildrop_env_cleanup(&got);
	}
	free(text);
}
END_TEST

/* The size field has one width: the header written again at the end
 * with the real size must cover the provisional one exactly. */
START_TEST(test_fixed_width)
{
	struct maildrop_env	 env;
	char			*a, *b;
	size_t			 alen, blen;
	char			*rcpt = (char *)"b@x";

	memset(&env, 0, sizeof(env));
	env.sender = (char *)"a@x";
	env.rcpts = &rcpt;
	env.nrcpt = 1;
	a = maildrop_format(&env, &alen);
	env.size = 26214400;
	b = maildrop_format(&env, &blen);
	ck_assert_uint_eq(alen, blen);
	ck_assert_str_eq(a, "smartrelay-maildrop 1\nuid 0\nsender a@x\n"
	    "rcpt b@x\n" SIZE0);
	ck_assert_ptr_nonnull(strstr(b, "\nsize 00000000000026214400\n\n"));
	free(a);
	free(b);
}
END_TEST

/* -B8BITMIME (RFC 6152) survives the maildrop; a file without the
 * line declared nothing; UTF-8 addresses pass as xtext. */
START_TEST(test_body)
{
	static const struct {
		enum smtp_body	 body;
		const char	*line;
	} cases[] = {
		{ SMTP_BODY_UNSPEC,	NULL },
		{ SMTP_BODY_7BIT,	"\nbody 7bit\nsize " },
		{ SMTP_BODY_8BITMIME,	"\nbody 8bitmime\nsize " },
	};
	struct maildrop_env	 env, back;
	char			*text, *rcpt = (char *)"j\xc3\xb6rg@x";
	const char		*reason;
	size_t			 i, len, hdrlen;

	for (i = 0; i < nitems(cases); i++) {
		memset(&env, 0, sizeof(env));
		env.sender = (char *)"a@\xc3\xa9.example";
		env.rcpts = &rcpt;
		env.nrcpt = 1;
		env.body = cases[i].body;
		text = maildrop_format(&env, &len);
		ck_assert_ptr_nonnull(text);
		if (cases[i].line != NULL)
			ck_assert_ptr_nonnull(strstr(text, cases[i].line));
		else
			ck_assert_ptr_null(strstr(text, "body"));
		ck_assert_int_eq(parse_exact(text, len, 0, 2, &back,
		    &hdrlen, &reason), 0);
		ck_assert_int_eq(back.body, cases[i].body);
		ck_assert_str_eq(back.sender, "a@\xc3\xa9.example");
		ck_assert_str_eq(back.rcpts[0], "j\xc3\xb6rg@x");
		maildrop_env_cleanup(&back);
		free(text);
	}
}
END_TEST

START_TEST(test_xtext)
{
	struct maildrop_env	 env;
	char			*text;
	size_t			 len;
	char			*rcpt = (char *)"\"a b\"@x";

	memset(&env, 0, sizeof(env));
	env.sender = (char *)"a+b=c<d>@x";
	env.rcpts = &rcpt;
	env.nrcpt = 1;
	text = maildrop_format(&env, &len);
	ck_assert_ptr_nonnull(strstr(text,
	    "\nsender a+2Bb+3Dc+3Cd+3E@x\nrcpt \"a+20b\"@x\n"));
	free(text);
}
END_TEST

static const struct {
	const char	*sender;
	const char	*rcpt;		/* NULL: no recipient at all */
} bad_format_cases[] = {
	{ "a@x",	NULL },
	{ "a@x",	"" },
	{ "a\n@x",	"b@x" },
	{ "a@x",	"b\r@x" },
	{ "a@x",	"b\x7f@x" },
	{ NULL,		"b@x" },
};

START_TEST(test_format_refuses)
{
	struct maildrop_env	 env;
	size_t			 len;
	char			*rcpt = (char *)bad_format_cases[_i].rcpt;

	memset(&env, 0, sizeof(env));
	env.sender = (char *)bad_format_cases[_i].sender;
	env.rcpts = &rcpt;
	env.nrcpt = rcpt != NULL ? 1 : 0;
	errno = 0;
	ck_assert_ptr_null(maildrop_format(&env, &len));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_format_long_address)
{
	struct maildrop_env	 env;
	char			 addr[SMTP_ADDR_BUFSZ + 1], *rcpt = addr;
	char			*text;
	size_t			 len;

	memset(addr, 'a', sizeof(addr) - 1);
	addr[sizeof(addr) - 1] = '\0';
	memset(&env, 0, sizeof(env));
	env.sender = (char *)"";
	env.rcpts = &rcpt;
	env.nrcpt = 1;
	ck_assert_ptr_null(maildrop_format(&env, &len));
	/* The longest allowed one, all escaped, fits the bound. */
	memset(addr, ' ', SMTP_ADDR_BUFSZ - 1);
	addr[SMTP_ADDR_BUFSZ - 1] = '\0';
	text = maildrop_format(&env, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_le(len, maildrop_header_max(1));
	free(text);
}
END_TEST

/*
 * Garbage.
 */

static const struct {
	const char	*text;
	const char	*reason;
} garbage_cases[] = {
	{ "",						"bad-magic" },
	{ "smartrelay-maildrop 2\n",			"bad-magic" },
	{ "smartrelay-maildrop 1",			"bad-magic" },
	{ "smartrelay-maildrop 1\r\nuid 1\n",		"bad-magic" },
	{ "smartrelay-envelope 1\nid 0\n",		"bad-magic" },
	{ "smartrelay-maildrop 1\nuid\n",		"bad-uid" },
	{ "smartrelay-maildrop 1\nuid -1\n",		"bad-uid" },
	{ "smartrelay-maildrop 1\nuid 99999999999999999999\n", "bad-uid" },
	{ HEAD "rcpt b@x\n",				"bad-sender" },
	{ HEAD "sender \n",				"bad-sender" },
	{ HEAD "sender a b@x\n",			"bad-sender" },
	{ HEAD "sender a+4@x\n",			"bad-sender" },
	{ HEAD "sender a+@x\n",				"bad-sender" },
	{ HEAD "sender a+\n",				"bad-sender" },
	{ HEAD "sender a+00b@x\n",			"bad-sender" },
	{ HEAD "sender a+0Ab@x\n",			"bad-sender" },
	{ HEAD "sender a=b@x\n",			"bad-sender" },
	{ HEAD "sender a@x\n",				"truncated" },
	{ HEAD "sender a@x\n" SIZE0,			"no-rcpt" },
	{ HEAD "sender a@x\nrcpt \n" SIZE0,		"bad-rcpt" },
	{ HEAD "sender a@x\nrcpt b\xff@x\n" SIZE0,	"bad-rcpt" },
	{ HEAD "sender a@x\nrcpt b@x\nsize 1x\n\n",	"bad-size" },
	{ HEAD "sender a@x\nrcpt b@x\nsize \n\n",	"bad-size" },
	{ HEAD "sender a@x\nrcpt b@x\nsize 000000000000000000000\n\n",
							"bad-size" },
	{ HEAD "sender a@x\nrcpt b@x\nsize 18446744073709551616\n\n",
							"bad-size" },
	{ HEAD "sender a@x\nrcpt b@x\nhello 1\n" SIZE0,	"bad-size" },
	{ HEAD "sender a@x\nrcpt b@x\nbody 8BITMIME\n" SIZE0, "bad-body" },
	{ HEAD "sender a@x\nrcpt b@x\nbody binarymime\n" SIZE0, "bad-body" },
	{ HEAD "sender a@x\nrcpt b@x\nbody 7bit\nbody 7bit\n" SIZE0,
							"bad-size" },
	{ HEAD "sender a@x\nrcpt b@x\nbody 7bit\n",	"truncated" },
	{ HEAD "sender a@x\nbody 7bit\n" SIZE0,		"no-rcpt" },
	{ HEAD "sender a@x\nrcpt b@x\nsize 0\n",	"no-end" },
	{ HEAD "sender a@x\nrcpt b@x\nsize 0\nx\n",	"no-end" },
	{ HEAD "sender a@x\nrcpt b@x\nsize 0\r\n\r\n",	"bad-size" },
	{ HEAD "sender a@x\nrcpt b@x\nrcpt c@x\nrcpt d@x\n" SIZE0,
							"too-many-rcpts" },
};

START_TEST(test_garbage)
{
	struct maildrop_env	 env;
	const char		*text = garbage_cases[_i].text, *reason;
	size_t			 hdrlen = 0;

	ck_assert_int_eq(parse_exact(text, strlen(text), 0, 2, &env, &hdrlen,
	    &reason), -1);
	ck_assert_str_eq(reason, garbage_cases[_i].reason);
	/* <env> is zeroed on failure, whatever was parsed before. */
	ck_assert_ptr_null(env.sender);
	ck_assert_ptr_null(env.rcpts);
	ck_assert_uint_eq(env.nrcpt, 0);
}
END_TEST

/* Every strict prefix of a valid header fails cleanly. */
START_TEST(test_prefixes)
{
	static const char	 text[] = HEAD "sender <>\nrcpt b@x\n"
				    "rcpt c+20d@x\n" SIZE0;
	struct maildrop_env	 env;
	const char		*reason;
	size_t			 len, hdrlen;

	for (len = 0; len < sizeof(text) - 1; len++) {
		ck_assert_int_eq(parse_exact(text, len, 0, 10, &env, &hdrlen,
		    &reason), -1);
		ck_assert_ptr_nonnull(reason);
	}
	ck_assert_int_eq(parse_exact(text, len, 0, 10, &env, &hdrlen,
	    &reason), 0);
	ck_assert_str_eq(env.sender, "");
	ck_assert_str_eq(env.rcpts[1], "c d@x");
	maildrop_env_cleanup(&env);
	maildrop_env_cleanup(&env);	/* safe twice */
}
END_TEST

/* An overlong line is refused without a search past the line limit. */
START_TEST(test_overlong_line)
{
	size_t			 n = 64 * 1024;
	char			*text = xmalloc(n);
	struct maildrop_env	 env;
	const char		*reason;
	size_t			 hdrlen;

	memset(text, 'a', n);
	memcpy(text, HEAD "sender ", strlen(HEAD "sender "));
	text[n - 1] = '\n';
	ck_assert_int_eq(parse_exact(text, n, 0, 10, &env, &hdrlen, &reason),
	    -1);
	ck_assert_str_eq(reason, "bad-sender");
	free(text);
}
END_TEST

/*
 * Size mismatch: the file must hold exactly "size" octets after the
 * header, no more and no fewer.
 */

static const struct {
	uint64_t	size;		/* in the header */
	uint64_t	body;		/* octets in the file after it */
	int		want;
} size_cases[] = {
	{ 0,		0,		0 },
	{ 10,		10,		0 },
	{ 10,		9,		-1 },
	{ 10,		11,		-1 },
	{ 0,		1,		-1 },
	{ UINT64_MAX,	10,		-1 },
};

START_TEST(test_size_mismatch)
{
	char			 text[256];
	struct maildrop_env	 env;
	const char		*reason;
	size_t			 hdrlen;
	int			 len;

	len = snprintf(text, sizeof(text), HEAD "sender a@x\nrcpt b@x\n"
	    "size %llu\n\n", (unsigned long long)size_cases[_i].size);
	ck_assert_int_eq(parse_exact(text, (size_t)len, size_cases[_i].body,
	    10, &env, &hdrlen, &reason), size_cases[_i].want);
	if (size_cases[_i].want == 0) {
		ck_assert_uint_eq(hdrlen, (size_t)len);
		maildrop_env_cleanup(&env);
	} else
		ck_assert_str_eq(reason, "size-mismatch");
}
END_TEST

/*
 * Canonical lines.
 */

static const struct {
	const char	*line;
	size_t		 len;
	const char	*out;
	size_t		 outlen;
} canon_cases[] = {
	{ "hello",	5,	"hello",	5 },
	{ "hello\r",	6,	"hello",	5 },
	{ "",		0,	"",		0 },
	{ "\r",		1,	"",		0 },
	/* Not SMTP-framed: dots are content, and "." ends nothing. */
	{ ".",		1,	".",		1 },
	{ ".\r",	2,	".",		1 },
	{ "..",		2,	"..",		2 },
	{ ".x",		2,	".x",		2 },
	/* Bare CR and NUL are content (issue 13). */
	{ "a\rb",	3,	"a\rb",		3 },
	{ "a\r\r",	3,	"a\r",		2 },
	{ "10%\r50%\r100%\r", 13, "10%\r50%\r100%", 12 },
	{ "a\0b",	3,	"a\0b",		3 },
	{ ".\0",	2,	".\0",		2 },
};

START_TEST(test_canon)
{
	struct maildrop_canon	 c;
	const char		*out;
	size_t			 outlen;

	maildrop_canon_init(&c, 1000, 0);
	ck_assert_int_eq(maildrop_canon_line(&c, canon_cases[_i].line,
	    canon_cases[_i].len, &out, &outlen), SMTP_DATA_OK);
	ck_assert_uint_eq(outlen, canon_cases[_i].outlen);
	ck_assert(memcmp(out, canon_cases[_i].out, outlen) == 0);
}
END_TEST

/* Lines over 998 octets are content (issue 13), dots and all. */
static const struct {
	char		first;
	size_t		len;		/* without line end */
	bool		cr;
} long_cases[] = {
	{ 'x',	998,	false },
	{ 'x',	998,	true },
	{ 'x',	999,	false },
	{ '.',	997,	false },
	{ '.',	998,	false },
	{ '.',	999,	true },
	{ '.',	5000,	false },
};

START_TEST(test_canon_long)
{
	struct maildrop_canon	 c;
	char			 line[5002];
	const char		*out;
	size_t			 outlen, len = long_cases[_i].len;

	memset(line, 'x', sizeof(line));
	line[0] = long_cases[_i].first;
	if (long_cases[_i].cr)
		line[len++] = '\r';
	maildrop_canon_init(&c, 1 << 20, 0);
	ck_assert_int_eq(maildrop_canon_line(&c, line, len, &out, &outlen),
	    SMTP_DATA_OK);
	ck_assert_ptr_eq(out, line);
	ck_assert_uint_eq(outlen, long_cases[_i].len);
	ck_assert_uint_eq(c.data.size, long_cases[_i].len + 2);
}
END_TEST

/* A line in pieces: the first is its start (a dot there is content),
 * the others follow; the line's end comes through maildrop_canon_line()
 * and is never the end of anything. */
START_TEST(test_canon_pieces)
{
	struct maildrop_canon	 c;
	const char		*out;
	size_t			 outlen;
	int			 i;

	maildrop_canon_init(&c, 1 << 20, 0);
	ck_assert_int_eq(maildrop_canon_piece(&c, ".ab", 3, &out, &outlen),
	    SMTP_DATA_OK);
	ck_assert(outlen == 3 && memcmp(out, ".ab", 3) == 0);
	ck_assert_int_eq(maildrop_canon_piece(&c, ".c\r", 3, &out, &outlen),
	    SMTP_DATA_OK);
	ck_assert(outlen == 3 && memcmp(out, ".c\r", 3) == 0);
	ck_assert_int_eq(maildrop_canon_line(&c, ".\r", 2, &out, &outlen),
	    SMTP_DATA_OK);
	ck_assert(outlen == 1 && memcmp(out, ".", 1) == 0);
	/* A dot piece, then the end: the line ".". */
	ck_assert_int_eq(maildrop_canon_piece(&c, ".", 1, &out, &outlen),
	    SMTP_DATA_OK);
	ck_assert(outlen == 1 && memcmp(out, ".", 1) == 0);
	ck_assert_int_eq(maildrop_canon_line(&c, "", 0, &out, &outlen),
	    SMTP_DATA_OK);
	ck_assert_uint_eq(outlen, 0);
	ck_assert_uint_eq(c.data.size, 9 + 3);
	/* Still the header section: Received: in pieces counts. */
	for (i = 1; i < SMTP_HOPS_MAX; i++) {
		ck_assert_int_eq(maildrop_canon_piece(&c, "Rece", 4, &out,
		    &outlen), SMTP_DATA_OK);
		ck_assert_int_eq(maildrop_canon_line(&c, "ived: x", 7, &out,
		    &outlen), SMTP_DATA_OK);
	}
	ck_assert_int_eq(maildrop_canon_piece(&c, "Received:", 9, &out,
	    &outlen), SMTP_DATA_OK);
	ck_assert_int_eq(maildrop_canon_line(&c, "", 0, &out, &outlen),
	    SMTP_DATA_ELOOP);
}
END_TEST

/* The limit counts canonical octets (CRLF added) plus what was there
 * before, and the first violation sticks. */
START_TEST(test_canon_size)
{
	struct maildrop_canon	 c;
	const char		*out;
	size_t			 outlen;

	maildrop_canon_init(&c, 20, 8);
	ck_assert_int_eq(maildrop_canon_line(&c, "12345678", 8, &out,
	    &outlen), SMTP_DATA_OK);		/* 8 + 10 */
	ck_assert_int_eq(maildrop_canon_line(&c, "", 0, &out, &outlen),
	    SMTP_DATA_OK);			/* 20 */
	ck_assert_int_eq(maildrop_canon_line(&c, "", 0, &out, &outlen),
	    SMTP_DATA_ESIZE);
	ck_assert_int_eq(maildrop_canon_piece(&c, "a\rb", 3, &out, &outlen),
	    SMTP_DATA_ESIZE);
}
END_TEST

START_TEST(test_canon_loop)
{
	struct maildrop_canon	 c;
	const char		*out;
	size_t			 outlen;
	int			 i;

	maildrop_canon_init(&c, 1 << 20, 0);
	for (i = 1; i < SMTP_HOPS_MAX; i++)
		ck_assert_int_eq(maildrop_canon_line(&c, "Received: x", 11,
		    &out, &outlen), SMTP_DATA_OK);
	ck_assert_int_eq(maildrop_canon_line(&c, "Received: x", 11, &out,
	    &outlen), SMTP_DATA_ELOOP);
}
END_TEST

static Suite *
maildrop_suite(void)
{
	Suite	*s = suite_create("maildrop");
	TCase	*tc;

	tc = tcase_create("round_trip");
	tcase_add_loop_test(tc, test_round_trip, 0, nitems(trip_cases));
	tcase_add_test(tc, test_fixed_width);
	tcase_add_test(tc, test_xtext);
	tcase_add_test(tc, test_body);
	suite_add_tcase(s, tc);
	tc = tcase_create("format_refuses");
	tcase_add_loop_test(tc, test_format_refuses, 0,
	    nitems(bad_format_cases));
	tcase_add_test(tc, test_format_long_address);
	suite_add_tcase(s, tc);
	tc = tcase_create("garbage");
	tcase_add_loop_test(tc, test_garbage, 0, nitems(garbage_cases));
	tcase_add_test(tc, test_prefixes);
	tcase_add_test(tc, test_overlong_line);
	suite_add_tcase(s, tc);
	tc = tcase_create("size_mismatch");
	tcase_add_loop_test(tc, test_size_mismatch, 0, nitems(size_cases));
	suite_add_tcase(s, tc);
	tc = tcase_create("canon");
	tcase_add_loop_test(tc, test_canon, 0, nitems(canon_cases));
	tcase_add_loop_test(tc, test_canon_long, 0, nitems(long_cases));
	tcase_add_test(tc, test_canon_pieces);
	tcase_add_test(tc, test_canon_size);
	tcase_add_test(tc, test_canon_loop);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(maildrop_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
