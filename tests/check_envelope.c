/*
 * check_envelope.c - unit tests for the envelope text format.
 *
 * Everything happens in memory: envelope_format() and envelope_parse()
 * are called directly, no files.  Parser inputs are copied into buffers
 * of their exact length, so the sanitizers catch any read past the end.
 */
#include "config.h"

#include "envelope.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define EID	"0006123abcd01f2e"
#define EHEAD	"smartrelay-envelope 1\nid " EID "\n"
#define EMIN	EHEAD "sender <>\nrcpt pending - b@x\n"

/* The example from the top of envelope.c, verbatim. */
static const char example_env[] = EHEAD
    "arrival 1795000000\nsize 1234\nclient 127.0.0.1\n"
    "helo client.example\nsender alice@example.org\nattempts 0\n"
    "next 0\nheld 0\nerror some text to end of line\n"
    "rcpt pending - bob@example.org\n"
    "rcpt failed 5.1.1 dan@example.org 550 5.1.1 no such user here\n"
    "end\n";

/*
 * Helpers.
 */

/* Parses <len> octets of <text> from an exact-size heap copy. */
static int
parse_exact(struct envelope *env, const char *text, size_t len,
    struct envelope_error *err)
{
	char	*copy = xmalloc(len > 0 ? len : 1);
	int	 rc;

	memcpy(copy, text, len);
	rc = envelope_parse(env, copy, len, EID, err);
	free(copy);
	return rc;
}

static void
assert_str_or_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		ck_assert_ptr_eq(a, b);
	else
		ck_assert_str_eq(a, b);
}

/* Every field of <a> (as formatted) equals that of <b> (as parsed). */
static void
assert_env_eq(const struct envelope *a, const struct envelope *b)
{
	size_t	i;

	ck_assert_str_eq(a->id, b->id);
	ck_assert_str_eq(a->sender, b->sender);
	/* NULL is written and read back as "". */
	ck_assert_str_eq(a->client != NULL ? a->client : "", b->client);
	ck_assert_str_eq(a->helo != NULL ? a->helo : "", b->helo);
	ck_assert_int_eq(a->arrival, b->arrival);
	ck_assert_uint_eq(a->size, b->size);
	ck_assert_uint_eq(a->attempts, b->attempts);
	ck_assert_int_eq(a->next_attempt, b->next_attempt);
	ck_assert_int_eq(a->held, b->held);
	ck_assert_int_eq(a->reencode, b->reencode);
	ck_assert_int_eq(a->body, b->body);
	ck_assert_int_eq(a->smtputf8, b->smtputf8);
	ck_assert_int_eq(a->eightbit, b->eightbit);
	assert_str_or_null(a->last_error, b->last_error);
	ck_assert_uint_eq(a->nrcpt, b->nrcpt);
	for (i = 0; i < a->nrcpt; i++) {
		ck_assert_str_eq(a->rcpts[i].addr, b->rcpts[i].addr);
		ck_assert_int_eq(a->rcpts[i].state, b->rcpts[i].state);
		assert_str_or_null(a->rcpts[i].dsn, b->rcpts[i].dsn);
		assert_str_or_null(a->rcpts[i].reply, b->rcpts[i].reply);
	}
}

/* A small valid envelope; the caller cleans it up. */
static void
env_min(struct envelope *env)
{
	memset(env, 0, sizeof(*env));
	memcpy(env->id, EID, sizeof(EID));
	env->sender = xstrdup("a@example.org");
	ck_assert_int_eq(envelope_add_rcpt(env, "b@example.org"), 0);
}

/* Formats <env>, parses the text back into <back> and checks that
 * nothing changed.  Returns the text; the caller frees it. */
static char *
roundtrip(const struct envelope *env, struct envelope *back)
{
	struct envelope_error	 err = { NULL, 0 };
	char			*text;
	size_t			 len;

	ck_assert_int_eq(envelope_format(env, &text, &len), 0);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(strlen(text), len);
	ck_assert_msg(parse_exact(back, text, len, &err) == 0,
	    "reparse failed: %s at line %zu", err.reason, err.line);
	assert_env_eq(env, back);
	return text;
}

/*
 * Parsing.
 */

static const struct {
	const char	*text;
	size_t		 len;		/* 0: strlen(text) */
	const char	*why;		/* NULL: parses */
} parse_cases[] = {
	{ example_env, 0, NULL },
	{ EMIN "end\n", 0, NULL },
	{ EMIN "held 1\nattempts 4294967295\nend\n", 0, NULL },
	{ EMIN "reencode 1\nend\n", 0, NULL },
	{ EMIN "reencode 0\nend\n", 0, NULL },
	{ EMIN "body 8bitmime\nsmtputf8 1\neightbit header\nend\n", 0, NULL },
	{ EMIN "body 7bit\nsmtputf8 0\neightbit body\nend\n", 0, NULL },
	{ EMIN "body 8BITMIME\nend\n", 0, "bad-name" },
	{ EMIN "body\nend\n", 0, "bad-name" },
	{ EMIN "body binarymime\nend\n", 0, "bad-name" },
	{ EMIN "body 7bit\nbody 7bit\nend\n", 0, "repeated-key" },
	{ EMIN "smtputf8 2\nend\n", 0, "bad-number" },
	{ EMIN "smtputf8 yes\nend\n", 0, "bad-number" },
	{ EMIN "eightbit\nend\n", 0, "bad-name" },
	{ EMIN "eightbit none\nend\n", 0, "bad-name" },
	{ EMIN "eightbit body header\nend\n", 0, "not-a-token" },
	{ EMIN "client\nhelo\nerror\nend\n", 0, NULL },
	{ EMIN "rcpt sent 2.0.0 c+2Bd@x 250 2.0.0  ok \nend\n", 0, NULL },
	{ "", 0, "no-end" },
	{ EMIN, 0, "no-end" },
	{ EMIN "end", 0, "no-end" },			/* no final LF */
	{ EMIN "end\r\n", 0, "unknown-key" },
	{ EMIN "end\nend\n", 0, "data-after-end" },
	{ EMIN "colour blue\nend\n", 0, "unknown-key" },
	{ EMIN "arrival 12x\nend\n", 0, "bad-number" },
	{ EMIN "arrival -5\nend\n", 0, "bad-number" },
	{ EMIN "arrival 99999999999999999999\nend\n", 0, "bad-number" },
	{ EMIN "size\nend\n", 0, "bad-number" },
	{ EMIN "held 2\nend\n", 0, "bad-number" },
	{ EMIN "reencode 2\nend\n", 0, "bad-number" },
	{ EMIN "reencode yes\nend\n", 0, "bad-number" },
	{ EMIN "reencode 1\nreencode 1\nend\n", 0, "repeated-key" },
	{ EMIN "attempts 4294967296\nend\n", 0, "bad-number" },
	{ EMIN "sender a@b\nend\n", 0, "repeated-key" },
	{ EMIN "helo a b\nend\n", 0, "not-a-token" },
	{ "smartrelay-envelope 1\nsender <>\nrcpt pending - b@x\nend\n", 0,
	    "missing-key" },				/* no id */
	{ EHEAD "rcpt pending - b@x\nend\n", 0, "missing-key" }, /* sender */
	{ EHEAD "sender <>\nend\n", 0, "missing-key" },	/* no rcpt */
	{ "smartrelay-envelope 1\nid 0006123abcd01f2f\nsender <>\n"
	    "rcpt pending - b@x\nend\n", 0, "id-mismatch" },
	{ "smartrelay-envelope 1\nid 0006123ABCD01F2E\nsender <>\n"
	    "rcpt pending - b@x\nend\n", 0, "bad-id" },
	{ "smartrelay-envelope 2\nid " EID "\nsender <>\n"
	    "rcpt pending - b@x\nend\n", 0, "bad-header" },
	{ EHEAD "sender\nrcpt pending - b@x\nend\n", 0, "bad-xtext" },
	{ EHEAD "sender a+4@b\nrcpt pending - b@x\nend\n", 0, "bad-xtext" },
	{ EHEAD "sender a+00b\nrcpt pending - b@x\nend\n", 0, "bad-xtext" },
	{ EMIN "rcpt queued - b@x\nend\n", 0, "rcpt-state" },
	{ EMIN "rcpt pending -\nend\n", 0, "rcpt-syntax" },
	{ EMIN "rcpt pending - \nend\n", 0, "rcpt-address" },
	{ EMIN "rcpt pending\nend\n", 0, "rcpt-syntax" },
	{ EMIN "rcpt failed 5.1.1\x01 b@x\nend\n", 0, "rcpt-dsn" },
	{ EMIN "error a\0b\nend\n", sizeof(EMIN "error a\0b\nend\n") - 1,
	    "nul-byte" },
};

START_TEST(test_parse)
{
	struct envelope		 env;
	struct envelope_error	 err = { NULL, 0 };
	const char		*text = parse_cases[_i].text;
	size_t			 len = parse_cases[_i].len;

	if (len == 0)
		len = strlen(text);
	memset(&env, 0xa5, sizeof(env));	/* parse needs no init */
	if (parse_cases[_i].why == NULL) {
		ck_assert_int_eq(parse_exact(&env, text, len, &err), 0);
		ck_assert_str_eq(env.id, EID);
		ck_assert_ptr_nonnull(env.sender);
		ck_assert_ptr_nonnull(env.client);
		ck_assert_ptr_nonnull(env.helo);
		ck_assert_uint_ge(env.nrcpt, 1);
		envelope_cleanup(&env);
		return;
	}
	ck_assert_int_eq(parse_exact(&env, text, len, &err), -1);
	ck_assert_str_eq(err.reason, parse_cases[_i].why);
	ck_assert_uint_ge(err.line, 1);
	/* Cleaned up: all zero, nothing leaks. */
	ck_assert_ptr_null(env.sender);
	ck_assert_ptr_null(env.rcpts);
	ck_assert_uint_eq(env.nrcpt, 0);
	ck_assert_str_eq(env.id, "");
	/* The <err> argument is optional. */
	ck_assert_int_eq(parse_exact(&env, text, len, NULL), -1);
}
END_TEST

/* The reason comes with the line it was found on. */
START_TEST(test_parse_line)
{
	struct envelope		env;
	struct envelope_error	err = { NULL, 0 };

	ck_assert_int_eq(parse_exact(&env, EMIN "colour blue\nend\n",
	    strlen(EMIN "colour blue\nend\n"), &err), -1);
	ck_assert_str_eq(err.reason, "unknown-key");
	ck_assert_uint_eq(err.line, 5);
	ck_assert_int_eq(parse_exact(&env, "x\n", 2, &err), -1);
	ck_assert_str_eq(err.reason, "bad-header");
	ck_assert_uint_eq(err.line, 1);
	ck_assert_int_eq(envelope_parse(&env, EMIN "end\n",
	    strlen(EMIN "end\n"), "0006123abcd01f2f", &err), -1);
	ck_assert_str_eq(err.reason, "id-mismatch");
	ck_assert_uint_eq(err.line, 5);
}
END_TEST

START_TEST(test_example)
{
	struct envelope	 env;
	char		*text;
	size_t		 len;

	ck_assert_int_eq(parse_exact(&env, example_env, strlen(example_env),
	    NULL), 0);
	ck_assert_str_eq(env.id, EID);
	ck_assert_int_eq(env.arrival, 1795000000);
	ck_assert_uint_eq(env.size, 1234);
	ck_assert_str_eq(env.client, "127.0.0.1");
	ck_assert_str_eq(env.helo, "client.example");
	ck_assert_str_eq(env.sender, "alice@example.org");
	ck_assert_uint_eq(env.attempts, 0);
	ck_assert_int_eq(env.next_attempt, 0);
	ck_assert(!env.held);
	ck_assert(!env.reencode);
	ck_assert_str_eq(env.last_error, "some text to end of line");
	ck_assert_uint_eq(env.nrcpt, 2);
	ck_assert_str_eq(env.rcpts[0].addr, "bob@example.org");
	ck_assert_int_eq(env.rcpts[0].state, ENVELOPE_RCPT_PENDING);
	ck_assert_ptr_null(env.rcpts[0].dsn);
	ck_assert_ptr_null(env.rcpts[0].reply);
	ck_assert_str_eq(env.rcpts[1].addr, "dan@example.org");
	ck_assert_int_eq(env.rcpts[1].state, ENVELOPE_RCPT_FAILED);
	ck_assert_str_eq(env.rcpts[1].dsn, "5.1.1");
	ck_assert_str_eq(env.rcpts[1].reply, "550 5.1.1 no such user here");
	/* Formatting it again reproduces the text exactly. */
	ck_assert_int_eq(envelope_format(&env, &text, &len), 0);
	ck_assert_uint_eq(len, strlen(example_env));
	ck_assert_str_eq(text, example_env);
	free(text);
	envelope_cleanup(&env);
}
END_TEST

/* A message from failed/ made ready again: the failed recipient is
 * pending, the sent one stays sent, the rest starts over. */
START_TEST(test_requeue)
{
	static const char failed_env[] = EHEAD
	    "arrival 1795000000\nsize 1234\nclient 127.0.0.1\n"
	    "helo client.example\nsender alice@example.org\nattempts 7\n"
	    "next 1795003600\nheld 1\nerror 451 4.3.0 try later\n"
	    "rcpt sent 2.0.0 bob@example.org 250 2.0.0 OK\n"
	    "rcpt failed 5.1.1 dan@example.org 550 5.1.1 no such user here\n"
	    "rcpt failed 4.4.7 eve@example.org delivery time expired\n"
	    "end\n";
	static const char want[] = EHEAD
	    "arrival 1796000000\nsize 1234\nclient 127.0.0.1\n"
	    "helo client.example\nsender alice@example.org\nattempts 0\n"
	    "next 0\nheld 0\n"
	    "rcpt sent 2.0.0 bob@example.org 250 2.0.0 OK\n"
	    "rcpt pending - dan@example.org\n"
	    "rcpt pending - eve@example.org\n"
	    "end\n";
	struct envelope	 env;
	char		*text;
	size_t		 len;

	ck_assert_int_eq(parse_exact(&env, failed_env, strlen(failed_env),
	    NULL), 0);
	ck_assert_uint_eq(envelope_requeue(&env, 1796000000), 2);
	ck_assert_int_eq(envelope_format(&env, &text, &len), 0);
	ck_assert_str_eq(text, want);
	free(text);
	/* Nothing failed is left: nothing to send again. */
	ck_assert_uint_eq(envelope_requeue(&env, 1796000001), 0);
	envelope_cleanup(&env);
}
END_TEST

/* Absent client and helo come back as "", never NULL. */
START_TEST(test_parse_defaults)
{
	struct envelope	env;

	ck_assert_int_eq(parse_exact(&env, EMIN "end\n",
	    strlen(EMIN "end\n"), NULL), 0);
	ck_assert_str_eq(env.sender, "");
	ck_assert_str_eq(env.client, "");
	ck_assert_str_eq(env.helo, "");
	ck_assert_int_eq(env.arrival, 0);
	ck_assert_ptr_null(env.last_error);
	ck_assert_str_eq(env.rcpts[0].addr, "b@x");
	envelope_cleanup(&env);
	envelope_cleanup(&env);		/* twice is harmless */
}
END_TEST

/* Random bytes, truncations and over-long lines must be refused, never
 * crash or read past the end. */
START_TEST(test_garbage)
{
	struct envelope	 env;
	char		*buf = xmalloc(20000);
	size_t		 len, i, head;
	int		 round;

	srand(4711);
	for (round = 0; round < 1000; round++) {
		len = (size_t)rand() % 20000;
		memcpy(buf, EMIN, len < sizeof(EMIN) - 1 ? len :
		    sizeof(EMIN) - 1);
		for (i = round % 2 == 0 ? 0 : sizeof(EMIN) - 1; i < len; i++)
			buf[i] = (char)(round % 3 == 0 ? 'a' : rand());
		ck_assert_int_eq(parse_exact(&env, buf, len, NULL), -1);
	}
	/* Every proper prefix of a good envelope is incomplete. */
	for (len = 0; len < strlen(example_env); len++)
		ck_assert_int_eq(parse_exact(&env, example_env, len, NULL), -1);
	/* A line of 8193 octets, within an otherwise good envelope. */
	head = sizeof(EMIN "error ") - 1;
	memcpy(buf, EMIN "error ", head);
	len = sizeof(EMIN) - 1 + 8193;
	memset(buf + head, 'x', len - head);
	memcpy(buf + len, "\nend\n", 5);
	ck_assert_int_eq(parse_exact(&env, buf, len + 5, NULL), -1);
	len--;				/* 8192 is fine */
	memcpy(buf + len, "\nend\n", 5);
	ck_assert_int_eq(parse_exact(&env, buf, len + 5, NULL), 0);
	envelope_cleanup(&env);
	free(buf);
}
END_TEST

/* One byte of the example changed, at every position and to a few
 * values: whatever parses must format to text that parses to the same
 * envelope and formats to the same text again. */
START_TEST(test_mutations)
{
	static const char	 vals[] = { '\0', ' ', '\n', '+', '-', '0',
				    'a', 'F', '\x7f', '\xff' };
	struct envelope		 env, back, again;
	char			 buf[sizeof(example_env)], *text, *text2;
	size_t			 pos, v, len, len2, nok = 0;

	for (pos = 0; pos < sizeof(example_env) - 1; pos++)
		for (v = 0; v < nitems(vals); v++) {
			memcpy(buf, example_env, sizeof(buf));
			buf[pos] = vals[v];
			if (parse_exact(&env, buf, sizeof(buf) - 1, NULL) ==
			    -1)
				continue;
			nok++;
			text = roundtrip(&env, &back);
			len = strlen(text);
			ck_assert_int_eq(parse_exact(&again, text, len, NULL),
			    0);
			ck_assert_int_eq(envelope_format(&again, &text2,
			    &len2), 0);
			ck_assert_str_eq(text, text2);
			free(text);
			free(text2);
			envelope_cleanup(&env);
			envelope_cleanup(&back);
			envelope_cleanup(&again);
		}
	ck_assert_uint_gt(nok, 50);	/* e.g. digits, text, replies */
}
END_TEST

/*
 * Formatting.
 */

/* RFC 6152 and RFC 6531 flags (issue 13): an envelope written before
 * them loads as "declared nothing, 7-bit", and each value survives a
 * round trip. */
START_TEST(test_mime_flags)
{
	static const struct {
		enum envelope_body	 body;
		bool			 smtputf8;
		enum envelope_8bit	 eightbit;
		const char		*line;	/* in the text, or NULL */
	} cases[] = {
		{ ENVELOPE_BODY_UNSPEC, false, ENVELOPE_8BIT_NONE, NULL },
		{ ENVELOPE_BODY_8BITMIME, false, ENVELOPE_8BIT_NONE,
		    "\nbody 8bitmime\n" },
		{ ENVELOPE_BODY_7BIT, false, ENVELOPE_8BIT_NONE,
		    "\nbody 7bit\n" },
		{ ENVELOPE_BODY_UNSPEC, true, ENVELOPE_8BIT_NONE,
		    "\nsmtputf8 1\n" },
		{ ENVELOPE_BODY_UNSPEC, false, ENVELOPE_8BIT_BODY,
		    "\neightbit body\n" },
		{ ENVELOPE_BODY_8BITMIME, true, ENVELOPE_8BIT_HEADER,
		    "\nbody 8bitmime\nsmtputf8 1\neightbit header\n" },
	};
	struct envelope	 env, back;
	char		*text;
	size_t		 i;

	ck_assert_int_eq(parse_exact(&env, example_env, strlen(example_env),
	    NULL), 0);
	ck_assert_int_eq(env.body, ENVELOPE_BODY_UNSPEC);
	ck_assert(!env.smtputf8);
	ck_assert_int_eq(env.eightbit, ENVELOPE_8BIT_NONE);
	envelope_cleanup(&env);
	for (i = 0; i < nitems(cases); i++) {
		env_min(&env);
		env.body = cases[i].body;
		env.smtputf8 = cases[i].smtputf8;
		env.eightbit = cases[i].eightbit;
		free(env.sender);
		env.sender = xstrdup("j\xc3\xb6rg@b\xc3\xbc" "cher.example");
		text = roundtrip(&env, &back);
		if (cases[i].line != NULL)
			ck_assert_ptr_nonnull(strstr(text, cases[i].line));
		else
			ck_assert_ptr_null(strstr(text, "body"));
		ck_assert_ptr_nonnull(strstr(text, "\nsender "
		    "j+C3+B6rg@b+C3+BCcher.example\n"));
		ck_assert_str_eq(back.sender,
		    "j\xc3\xb6rg@b\xc3\xbc" "cher.example");
		free(text);
		envelope_cleanup(&back);
		envelope_cleanup(&env);
	}
	/* Out-of-range values are not written. */
	env_min(&env);
	env.body = (enum envelope_body)3;
	ck_assert_int_eq(envelope_format(&env, &text, &i), -1);
	env.body = ENVELOPE_BODY_UNSPEC;
	env.eightbit = (enum envelope_8bit)3;
	ck_assert_int_eq(envelope_format(&env, &text, &i), -1);
	envelope_cleanup(&env);
}
END_TEST

START_TEST(test_roundtrip_odd)
{
	struct envelope	 env, back;
	char		*text;

	env_min(&env);
	free(env.sender);
	env.sender = xstrdup("\"john doe\"@x");
	env.client = xstrdup("::1");
	env.helo = xstrdup("my host+=");
	env.arrival = 1795000000;
	env.size = UINT64_MAX;
	env.attempts = 3;
	env.next_attempt = 1795000123;
	env.held = true;
	env.reencode = true;
	env.last_error = xstrdup("421 try later");
	free(env.rcpts[0].addr);
	env.rcpts[0].addr = xstrdup("a+b=c@example.org");
	env.rcpts[0].state = ENVELOPE_RCPT_FAILED;
	env.rcpts[0].dsn = xstrdup("5.1.1");
	env.rcpts[0].reply = xstrdup("550 5.1.1 no such  user");
	ck_assert_int_eq(envelope_add_rcpt(&env, "\"john doe\"@x"), 0);
	env.rcpts[1].state = ENVELOPE_RCPT_SENT;
	env.rcpts[1].dsn = xstrdup("2.0.0");
	env.rcpts[1].reply = xstrdup("250 ok");
	ck_assert_int_eq(envelope_add_rcpt(&env, "plain@example.org"), 0);

	text = roundtrip(&env, &back);
	ck_assert_ptr_nonnull(strstr(text, "\nsender \"john+20doe\"@x\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nclient ::1\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nhelo my+20host+2B+3D\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nsize 18446744073709551615\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nheld 1\nreencode 1\n"
	    "error 421 try later\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nrcpt failed 5.1.1 "
	    "a+2Bb+3Dc@example.org 550 5.1.1 no such  user\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nrcpt sent 2.0.0 "
	    "\"john+20doe\"@x 250 ok\n"));
	ck_assert_ptr_nonnull(strstr(text,
	    "\nrcpt pending - plain@example.org\nend\n"));
	free(text);
	envelope_cleanup(&back);
	envelope_cleanup(&env);
}
END_TEST

/* Every byte value but NUL survives xtext in every xtext field. */
START_TEST(test_roundtrip_bytes)
{
	struct envelope	 env, back;
	char		 all[256], *text;
	int		 c;

	for (c = 1; c < 256; c++)
		all[c - 1] = (char)c;
	all[255] = '\0';
	env_min(&env);
	free(env.sender);
	env.sender = xstrdup(all);
	env.client = xstrdup(all);
	env.helo = xstrdup(all + 200);
	ck_assert_int_eq(envelope_add_rcpt(&env, all), 0);
	ck_assert_int_eq(envelope_add_rcpt(&env, " "), 0);
	text = roundtrip(&env, &back);
	/* Only the LFs of the format itself, no stray ones. */
	for (c = 0; text[c] != '\0'; c++)
		ck_assert((unsigned char)text[c] >= ' ' || text[c] == '\n');
	free(text);
	envelope_cleanup(&back);
	envelope_cleanup(&env);
}
END_TEST

/* "" is the null sender, written "<>"; a sender that is literally "<>"
 * must not turn into the null sender. */
START_TEST(test_null_sender)
{
	struct envelope	 env, back;
	char		*text;

	env_min(&env);
	free(env.sender);
	env.sender = xstrdup("");
	text = roundtrip(&env, &back);
	ck_assert_ptr_nonnull(strstr(text, "\nsender <>\n"));
	free(text);
	envelope_cleanup(&back);
	free(env.sender);
	env.sender = xstrdup("<>");
	text = roundtrip(&env, &back);
	ck_assert_ptr_nonnull(strstr(text, "\nsender +3C+3E\n"));
	free(text);
	envelope_cleanup(&back);
	envelope_cleanup(&env);
}
END_TEST

/* Control bytes in free text become spaces, long text is cut, bad DSNs
 * become "-", and NULL client/helo are written empty. */
START_TEST(test_format_lossy)
{
	struct envelope	 env, back;
	char		*text, *longtext;
	size_t		 len;

	env_min(&env);
	env.last_error = xstrdup("421 try\r\nlater\x01\x7f");
	env.rcpts[0].dsn = xstrdup("5 1");
	env.rcpts[0].reply = xstrdup("550 no\tsuch");
	ck_assert_int_eq(envelope_add_rcpt(&env, "c@x"), 0);
	env.rcpts[1].dsn = xstrdup("5.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1");
	ck_assert_int_eq(envelope_format(&env, &text, &len), 0);
	ck_assert_ptr_nonnull(strstr(text, "\nclient \nhelo \n"));
	ck_assert_ptr_nonnull(strstr(text, "\nerror 421 try  later  \n"));
	ck_assert_ptr_nonnull(strstr(text,
	    "\nrcpt pending - b@example.org 550 no such\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nrcpt pending - c@x\n"));
	ck_assert_int_eq(parse_exact(&back, text, len, NULL), 0);
	ck_assert_str_eq(back.last_error, "421 try  later  ");
	ck_assert_ptr_null(back.rcpts[0].dsn);
	ck_assert_str_eq(back.client, "");
	free(text);
	envelope_cleanup(&back);

	/* Free text is kept to 2048 octets. */
	longtext = xmalloc(5001);
	memset(longtext, 'e', 5000);
	longtext[5000] = '\0';
	free(env.last_error);
	env.last_error = longtext;
	ck_assert_int_eq(envelope_format(&env, &text, &len), 0);
	ck_assert_int_eq(parse_exact(&back, text, len, NULL), 0);
	ck_assert_uint_eq(strlen(back.last_error), 2048);
	free(text);
	envelope_cleanup(&back);
	envelope_cleanup(&env);
}
END_TEST

/* Fields at the size limit pass, one octet more does not; and an
 * address of ENVELOPE_FIELD_MAX octets that all need escaping still
 * gives a line the parser takes. */
START_TEST(test_field_limits)
{
	struct envelope	 env, back;
	char		 big[ENVELOPE_FIELD_MAX + 2], *text;

	memset(big, '\xfe', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert(!envelope_field_is_valid(big, true));
	ck_assert(!envelope_field_is_valid(NULL, true));
	ck_assert(!envelope_field_is_valid("", false));
	ck_assert(envelope_field_is_valid("", true));
	env_min(&env);
	ck_assert_int_eq(envelope_add_rcpt(&env, big), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(envelope_add_rcpt(&env, ""), -1);
	ck_assert_int_eq(envelope_add_rcpt(&env, NULL), -1);
	ck_assert_uint_eq(env.nrcpt, 1);
	big[ENVELOPE_FIELD_MAX] = '\0';
	ck_assert(envelope_field_is_valid(big, false));
	ck_assert_int_eq(envelope_add_rcpt(&env, big), 0);
	env.helo = xstrdup(big);
	text = roundtrip(&env, &back);
	free(text);
	envelope_cleanup(&back);
	envelope_cleanup(&env);
}
END_TEST

/* Ids: 16 lowercase hex digits, nothing else. */
static const struct {
	const char	*id;
	bool		 ok;
} id_cases[] = {
	{ EID, true },
	{ "0000000000000000", true },
	{ "ffffffffffffffff", true },
	{ "", false },
	{ "0006123abcd01f2", false },
	{ "0006123abcd01f2e0", false },
	{ "0006123ABCD01F2E", false },
	{ "0006123abcd01f2g", false },
	{ "../../etc/passwd", false },
	{ "0006123abcd01f/e", false },
};

START_TEST(test_id)
{
	ck_assert_int_eq(envelope_id_is_valid(id_cases[_i].id),
	    id_cases[_i].ok);
}
END_TEST

/* What would not parse again is refused, with *out NULL. */
enum bad_kind {
	BAD_NO_RCPT, BAD_ID, BAD_ARRIVAL, BAD_NEXT, BAD_NO_SENDER,
	BAD_LONG_SENDER, BAD_LONG_CLIENT, BAD_LONG_HELO, BAD_RCPT_ADDR,
	BAD_RCPT_EMPTY, BAD_RCPT_STATE, BAD_TOO_BIG,
};

START_TEST(test_format_invalid)
{
	struct envelope	 env;
	char		 big[ENVELOPE_FIELD_MAX + 2], dummy[] = "x";
	char		*text = dummy;
	size_t		 len = 1, i, nrcpt;

	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	env_min(&env);
	nrcpt = env.nrcpt;
	switch ((enum bad_kind)_i) {
	case BAD_NO_RCPT:
		env.nrcpt = 0;
		break;
	case BAD_ID:
		env.id[3] = 'X';
		break;
	case BAD_ARRIVAL:
		env.arrival = -1;
		break;
	case BAD_NEXT:
		env.next_attempt = -1;
		break;
	case BAD_NO_SENDER:
		free(env.sender);
		env.sender = NULL;
		break;
	case BAD_LONG_SENDER:
		free(env.sender);
		env.sender = xstrdup(big);
		break;
	case BAD_LONG_CLIENT:
		env.client = xstrdup(big);
		break;
	case BAD_LONG_HELO:
		env.helo = xstrdup(big);
		break;
	case BAD_RCPT_ADDR:
		free(env.rcpts[0].addr);
		env.rcpts[0].addr = xstrdup(big);
		break;
	case BAD_RCPT_EMPTY:
		env.rcpts[0].addr[0] = '\0';
		break;
	case BAD_RCPT_STATE:
		env.rcpts[0].state = (enum envelope_rcpt_state)3;
		break;
	case BAD_TOO_BIG:
		/* Over 4 MiB of text from valid 1 KiB recipients. */
		big[ENVELOPE_FIELD_MAX] = '\0';
		for (i = 0; i < ENVELOPE_MAX / ENVELOPE_FIELD_MAX; i++)
			ck_assert_int_eq(envelope_add_rcpt(&env, big), 0);
		nrcpt = env.nrcpt;
		break;
	}
	errno = 0;
	ck_assert_int_eq(envelope_format(&env, &text, &len), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(text);
	ck_assert_uint_eq(len, 0);
	env.nrcpt = nrcpt;
	envelope_cleanup(&env);
}
END_TEST

static Suite *
envelope_suite(void)
{
	Suite	*s = suite_create("envelope");
	TCase	*tc;

#define ADD_CASE(name, fn) do {						\
	tc = tcase_create(name);					\
	tcase_add_test(tc, fn);						\
	suite_add_tcase(s, tc);						\
} while (0)
#define ADD_LOOP(name, fn, n) do {					\
	tc = tcase_create(name);					\
	tcase_add_loop_test(tc, fn, 0, n);				\
	suite_add_tcase(s, tc);						\
} while (0)
	ADD_LOOP("parse", test_parse, nitems(parse_cases));
	ADD_CASE("parse-line", test_parse_line);
	ADD_CASE("example", test_example);
	ADD_CASE("requeue", test_requeue);
	ADD_CASE("defaults", test_parse_defaults);
	ADD_CASE("garbage", test_garbage);
	ADD_CASE("mutations", test_mutations);
	ADD_CASE("roundtrip", test_roundtrip_odd);
	ADD_CASE("mime-flags", test_mime_flags);
	ADD_CASE("bytes", test_roundtrip_bytes);
	ADD_CASE("nullsender", test_null_sender);
	ADD_CASE("lossy", test_format_lossy);
	ADD_CASE("limits", test_field_limits);
	ADD_LOOP("id", test_id, nitems(id_cases));
	ADD_LOOP("invalid", test_format_invalid, BAD_TOO_BIG + 1);
#undef ADD_CASE
#undef ADD_LOOP
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(envelope_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
