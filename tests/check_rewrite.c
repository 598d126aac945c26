/*
 * check_rewrite.c - unit tests for the From: rewriting of rewrite.c.
 *
 * A table of header blocks with the exact block expected back, then
 * properties that a table cannot show well: folding of long values
 * (every line within 998 octets, unfolding gives the value back),
 * encoded words within 75 octets, the bounds, and hostile blocks.
 */
#include "config.h"

#include "rewrite.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "buf.h"
#include "util.h"

#define ACCT	"acct@gmail.test"
#define VIA	" via smartrelay"

static const struct {
	const char	*name;
	const char	*in;
	const char	*display;	/* the network name or NULL */
	enum rewrite_rc	 want;
	const char	*out;		/* for REWRITE_OK */
} from_cases[] = {
	{ "quoted display with comma",
	  "Received: x\r\nFrom: \"Doe, John\" <john@x.test>\r\n"
	  "Subject: hi\r\n\r\n", NULL, REWRITE_OK,
	  "Received: x\r\n"
	  "From: \"Doe, John via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: \"Doe, John\" <john@x.test>\r\n"
	  "Reply-To: \"Doe, John\" <john@x.test>\r\n"
	  "Subject: hi\r\n\r\n" },
	{ "quotes and backslashes escaped",
	  "From: \"say \\\"hi\\\" \\\\ x\" <a@b.test>\r\n\r\n", NULL,
	  REWRITE_OK,
	  "From: \"say \\\"hi\\\" \\\\ x via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: \"say \\\"hi\\\" \\\\ x\" <a@b.test>\r\n"
	  "Reply-To: \"say \\\"hi\\\" \\\\ x\" <a@b.test>\r\n\r\n" },
	{ "atoms, a dot and a comment",
	  "From: Mr. John (the boss) Doe <john@x.test>\r\n\r\n", NULL,
	  REWRITE_OK,
	  "From: \"Mr. John Doe via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: Mr. John (the boss) Doe <john@x.test>\r\n"
	  "Reply-To: Mr. John (the boss) Doe <john@x.test>\r\n\r\n" },
	{ "addr-spec with a comment (cron)",
	  "From: root@host.test (Cron Daemon)\r\nTo: a@b.test\r\n\r\n",
	  NULL, REWRITE_OK,
	  "From: \"Cron Daemon via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: root@host.test (Cron Daemon)\r\n"
	  "Reply-To: root@host.test (Cron Daemon)\r\n"
	  "To: a@b.test\r\n\r\n" },
	{ "no display name: the address, no Reply-To without a domain",
	  "From: root\r\n\r\n", NULL, REWRITE_OK,
	  "From: \"root via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: root\r\n\r\n" },
	{ "angle-less addr-spec",
	  "From: scanner@printer.lan\r\n\r\n", NULL, REWRITE_OK,
	  "From: \"scanner@printer.lan via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: scanner@printer.lan\r\n"
	  "Reply-To: scanner@printer.lan\r\n\r\n" },
	{ "angle address without display",
	  "From: <scanner@printer.lan>\r\n\r\n", NULL, REWRITE_OK,
	  "From: \"scanner@printer.lan via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: <scanner@printer.lan>\r\n"
	  "Reply-To: <scanner@printer.lan>\r\n\r\n" },
	{ "empty quoted display falls back to the address",
	  "From: \"\" <a@b.test>\r\n\r\n", NULL, REWRITE_OK,
	  "From: \"a@b.test via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: \"\" <a@b.test>\r\n"
	  "Reply-To: \"\" <a@b.test>\r\n\r\n" },
	{ "network name wins",
	  "From: \"Doe\" <a@b.test>\r\n\r\n", "Office printer", REWRITE_OK,
	  "From: \"Office printer via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: \"Doe\" <a@b.test>\r\n"
	  "Reply-To: \"Doe\" <a@b.test>\r\n\r\n" },
	{ "network name with quotes",
	  "From: a@b.test\r\n\r\n", "Lab \"3\"", REWRITE_OK,
	  "From: \"Lab \\\"3\\\" via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: a@b.test\r\nReply-To: a@b.test\r\n\r\n" },
	{ "UTF-8 network name is Q encoded",
	  "From: a@b.test\r\n\r\n", "B\xc3\xbcro", REWRITE_OK,
	  "From: =?UTF-8?Q?B=C3=BCro_via_smartrelay?= <" ACCT ">\r\n"
	  "X-Original-From: a@b.test\r\nReply-To: a@b.test\r\n\r\n" },
	{ "raw UTF-8 display (RFC 6532)",
	  "From: J\xc3\xb6rg <j@x.test>\r\n\r\n", NULL, REWRITE_OK,
	  "From: =?UTF-8?Q?J=C3=B6rg_via_smartrelay?= <" ACCT ">\r\n"
	  "X-Original-From: J\xc3\xb6rg <j@x.test>\r\n"
	  "Reply-To: J\xc3\xb6rg <j@x.test>\r\n\r\n" },
	{ "8-bit that is not UTF-8 is Latin-1",
	  "From: J\xf6rg <j@x.test>\r\n\r\n", NULL, REWRITE_OK,
	  "From: =?ISO-8859-1?Q?J=F6rg_via_smartrelay?= <" ACCT ">\r\n"
	  "X-Original-From: J\xf6rg <j@x.test>\r\n"
	  "Reply-To: J\xf6rg <j@x.test>\r\n\r\n" },
	{ "encoded word kept, never quoted",
	  "From: =?UTF-8?B?SsO2cmc=?= <j@x.test>\r\n\r\n", NULL, REWRITE_OK,
	  "From: =?UTF-8?B?SsO2cmc=?= \"via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: =?UTF-8?B?SsO2cmc=?= <j@x.test>\r\n"
	  "Reply-To: =?UTF-8?B?SsO2cmc=?= <j@x.test>\r\n\r\n" },
	{ "encoded words around a quoted string",
	  "From: =?UTF-8?B?SsO2cmc=?= \"Mr. X\" =?utf-8?q?a?= <j@x.test>"
	  "\r\n\r\n", NULL, REWRITE_OK,
	  "From: =?UTF-8?B?SsO2cmc=?= \"Mr. X\" =?utf-8?q?a?= "
	  "\"via smartrelay\"\r\n <" ACCT ">\r\n"
	  "X-Original-From: =?UTF-8?B?SsO2cmc=?= \"Mr. X\" =?utf-8?q?a?= "
	  "<j@x.test>\r\n"
	  "Reply-To: =?UTF-8?B?SsO2cmc=?= \"Mr. X\" =?utf-8?q?a?= "
	  "<j@x.test>\r\n\r\n" },
	{ "8-bit text next to an encoded word keeps its space",
	  "From: =?UTF-8?Q?a?= \xc3\xa9 <j@x.test>\r\n\r\n", NULL,
	  REWRITE_OK,
	  "From: =?UTF-8?Q?a?= =?UTF-8?Q?_=C3=A9_via_smartrelay?= <" ACCT
	  ">\r\n"
	  "X-Original-From: =?UTF-8?Q?a?= \xc3\xa9 <j@x.test>\r\n"
	  "Reply-To: =?UTF-8?Q?a?= \xc3\xa9 <j@x.test>\r\n\r\n" },
	{ "an encoded word in a quoted string stays quoted text",
	  "From: \"=?UTF-8?Q?x?=\" <a@b.test>\r\n\r\n", NULL, REWRITE_OK,
	  "From: \"=?UTF-8?Q?x?= via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: \"=?UTF-8?Q?x?=\" <a@b.test>\r\n"
	  "Reply-To: \"=?UTF-8?Q?x?=\" <a@b.test>\r\n\r\n" },
	{ "folded From is unfolded",
	  "From: John\r\n\tDoe\r\n <a@b.test>\r\nX: y\r\n\r\n", NULL,
	  REWRITE_OK,
	  "From: \"John Doe via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: John\tDoe <a@b.test>\r\n"
	  "Reply-To: John\tDoe <a@b.test>\r\n"
	  "X: y\r\n\r\n" },
	{ "missing From: added at the end, no X-Original-From",
	  "Received: x\r\nSubject: s\r\n\r\n", NULL, REWRITE_OK,
	  "Received: x\r\nSubject: s\r\nFrom: <" ACCT ">\r\n\r\n" },
	{ "missing From: with a network name",
	  "Subject: s\r\n\r\n", "Office printer", REWRITE_OK,
	  "Subject: s\r\n"
	  "From: \"Office printer via smartrelay\" <" ACCT ">\r\n\r\n" },
	{ "two From: fields, the second one dropped",
	  "From: a@x.test\r\nTo: t@x.test\r\nFrom: b@y.test\r\n\r\n", NULL,
	  REWRITE_OK,
	  "From: <" ACCT ">\r\nX-Original-From: a@x.test\r\n"
	  "X-Original-From: b@y.test\r\nTo: t@x.test\r\n\r\n" },
	{ "mailbox list: Reply-To gets all of them",
	  "From: a@x.test, \"B\" <b@y.test>\r\n\r\n", "Office printer",
	  REWRITE_OK,
	  "From: \"Office printer via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: a@x.test, \"B\" <b@y.test>\r\n"
	  "Reply-To: a@x.test, \"B\" <b@y.test>\r\n\r\n" },
	{ "group: no Reply-To",
	  "From: team: a@x.test, b@y.test;\r\n\r\n", NULL, REWRITE_OK,
	  "From: <" ACCT ">\r\n"
	  "X-Original-From: team: a@x.test, b@y.test;\r\n\r\n" },
	{ "unparsable value: kept in X-Original-From only",
	  "From: \"unterminated <a@b.test>\r\n\r\n", NULL, REWRITE_OK,
	  "From: <" ACCT ">\r\n"
	  "X-Original-From: \"unterminated <a@b.test>\r\n\r\n" },
	{ "existing Reply-To kept, none added",
	  "Reply-To: r@x.test\r\nFrom: a@x.test\r\n\r\n", NULL, REWRITE_OK,
	  "Reply-To: r@x.test\r\n"
	  "From: \"a@x.test via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: a@x.test\r\n\r\n" },
	{ "Sender naming someone else is renamed",
	  "From: a@x.test\r\nSender: s@x.test\r\n\r\n", NULL, REWRITE_OK,
	  "From: \"a@x.test via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: a@x.test\r\nReply-To: a@x.test\r\n"
	  "X-Original-Sender: s@x.test\r\n\r\n" },
	{ "Sender that is the account stays",
	  "From: a@x.test\r\nsender:  <ACCT@gmail.test>\r\n\r\n", NULL,
	  REWRITE_OK,
	  "From: \"a@x.test via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: a@x.test\r\nReply-To: a@x.test\r\n"
	  "sender:  <ACCT@gmail.test>\r\n\r\n" },
	{ "other fields byte-identical, names case-insensitive",
	  "DKIM-Signature: v=1; a=rsa-sha256;\r\n\tb=abc\r\n"
	  "fROM :a@x.test\r\nX-From: z\r\n\r\n", NULL, REWRITE_OK,
	  "DKIM-Signature: v=1; a=rsa-sha256;\r\n\tb=abc\r\n"
	  "From: \"a@x.test via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From:a@x.test\r\nReply-To:a@x.test\r\n"
	  "X-From: z\r\n\r\n" },
	{ "header block without an empty line (no body)",
	  "From: a@x.test\r\nSubject: s\r\n", NULL, REWRITE_OK,
	  "From: \"a@x.test via smartrelay\" <" ACCT ">\r\n"
	  "X-Original-From: a@x.test\r\nReply-To: a@x.test\r\n"
	  "Subject: s\r\n" },
	{ "already the account (any case)",
	  "From: Me <Acct@Gmail.Test>\r\n\r\n", NULL, REWRITE_UNCHANGED,
	  NULL },
	{ "bare LF", "From: a@x.test\nX: y\r\n\r\n", NULL,
	  REWRITE_EMALFORMED, NULL },
	{ "bare CR", "From: a@x.test\rX: y\r\n\r\n", NULL,
	  REWRITE_EMALFORMED, NULL },
	{ "line that is not a field", "From: a@x.test\r\n.\r\n\r\n", NULL,
	  REWRITE_EMALFORMED, NULL },
	{ "continuation first", " From: a@x.test\r\n\r\n", NULL,
	  REWRITE_EMALFORMED, NULL },
	{ "partial last line", "From: a@x.test\r\nX: y", NULL,
	  REWRITE_EMALFORMED, NULL },
	{ "body after the empty line", "From: a@x.test\r\n\r\nbody\r\n",
	  NULL, REWRITE_EMALFORMED, NULL },
};

/* Runs rewrite_from() with the test parameters; the output as a new
 * NUL-terminated string (caller frees) or NULL when nothing came. */
static char *
run(const char *in, size_t len, const char *display, const char *suffix,
    enum rewrite_rc *rc)
{
	struct rewrite_params	 pa = { ACCT, display, suffix };
	struct buf		 out = BUF_INIT;
	char			*s = NULL;

	*rc = rewrite_from(in, len, &pa, &out);
	if (*rc != REWRITE_OK)
		ck_assert_uint_eq(out.len, 0);
	else
		s = buf_steal(&out, NULL);
	buf_free(&out);
	return s;
}

START_TEST(test_from)
{
	enum rewrite_rc	 rc;
	char		*got;

	got = run(from_cases[_i].in, strlen(from_cases[_i].in),
	    from_cases[_i].display, VIA, &rc);
	ck_assert_msg(rc == from_cases[_i].want, "%s: rc %s",
	    from_cases[_i].name, rewrite_rc_str(rc));
	if (rc == REWRITE_OK)
		ck_assert_msg(strcmp(got, from_cases[_i].out) == 0,
		    "%s: got\n%s", from_cases[_i].name, got);
	free(got);
}
END_TEST

static const struct {
	const char	*in;
	bool		 eof;
	enum rewrite_rc	 want;
	size_t		 hlen;
} len_cases[] = {
	{ "A: b\r\n\r\nbody\r\n",	false,	REWRITE_OK,		8 },
	{ "\r\nbody\r\n",		false,	REWRITE_OK,		2 },
	{ "A: b\r\n c\r\n\r\n",		true,	REWRITE_OK,		12 },
	{ "A: b\r\nB: c\r\n",		true,	REWRITE_OK,		12 },
	{ "A: b\r\nB: c\r\n",		false,	REWRITE_ETOOBIG,	0 },
	{ "",				true,	REWRITE_OK,		0 },
	{ "A: b\r\nbody\r\n\r\n",	false,	REWRITE_EMALFORMED,	0 },
	{ ": b\r\n\r\n",		false,	REWRITE_EMALFORMED,	0 },
	{ "A b: c\r\n\r\n",		false,	REWRITE_EMALFORMED,	0 },
	{ "A\t: b\r\n\r\n",		false,	REWRITE_OK,		9 },
	{ "A: b\r",			true,	REWRITE_EMALFORMED,	0 },
};

START_TEST(test_header_len)
{
	size_t	hlen = 99;

	ck_assert_int_eq(rewrite_header_len(len_cases[_i].in,
	    strlen(len_cases[_i].in), len_cases[_i].eof, &hlen),
	    len_cases[_i].want);
	if (len_cases[_i].want == REWRITE_OK)
		ck_assert_uint_eq(hlen, len_cases[_i].hlen);
}
END_TEST

/* A NUL anywhere in the block is refused, and never read past. */
START_TEST(test_nul)
{
	static const char	in[] = "From: a@x\0.test\r\n\r\n";
	enum rewrite_rc		rc;

	ck_assert_ptr_null(run(in, sizeof(in) - 1, NULL, VIA, &rc));
	ck_assert_int_eq(rc, REWRITE_EMALFORMED);
}
END_TEST

/* 998 octets per line pass, 999 do not. */
START_TEST(test_line_limit)
{
	char		 in[1100];
	char		*got;
	enum rewrite_rc	 rc;
	size_t		 hlen;

	memset(in, 'x', sizeof(in));
	memcpy(in, "X-Long: ", 8);
	memcpy(in + 998, "\r\n\r\n", 4);
	ck_assert_int_eq(rewrite_header_len(in, 1002, false, &hlen),
	    REWRITE_OK);
	got = run(in, 1002, NULL, VIA, &rc);
	ck_assert_int_eq(rc, REWRITE_OK);
	ck_assert_ptr_nonnull(strstr(got, "\r\nFrom: <" ACCT ">\r\n\r\n"));
	free(got);
	memset(in + 998, 'x', 4);
	memcpy(in + 999, "\r\n\r\n", 4);
	ck_assert_int_eq(rewrite_header_len(in, 1003, false, &hlen),
	    REWRITE_ELONGLINE);
	ck_assert_ptr_null(run(in, 1003, NULL, VIA, &rc));
	ck_assert_int_eq(rc, REWRITE_ELONGLINE);
}
END_TEST

/* A block of exactly the limit passes; one octet more does not. */
START_TEST(test_block_limit)
{
	size_t		 n = REWRITE_HEADER_MAX, i, hlen;
	char		*in = xmalloc(n + 2);
	enum rewrite_rc	 rc;
	char		*got;

	/* "X: yyy...\r\n" lines of 100 octets, then the empty line. */
	for (i = 0; i + 100 <= n - 2; i += 100) {
		memset(in + i, 'y', 98);
		memcpy(in + i, "X: ", 3);
		memcpy(in + i + 98, "\r\n", 2);
	}
	memset(in + i, 'y', n - 2 - i);
	memcpy(in + i, "Z:", 2);
	memcpy(in + n - 4, "\r\n\r\n", 4);
	ck_assert_int_eq(rewrite_header_len(in, n, false, &hlen), REWRITE_OK);
	ck_assert_uint_eq(hlen, n);
	got = run(in, n, NULL, VIA, &rc);
	ck_assert_int_eq(rc, REWRITE_OK);
	free(got);
	/* One more octet on the last field. */
	memcpy(in + n - 4, "y\r\n\r\n", 5);
	ck_assert_int_eq(rewrite_header_len(in, n + 1, false, &hlen),
	    REWRITE_ETOOBIG);
	ck_assert_ptr_null(run(in, n + 1, NULL, VIA, &rc));
	ck_assert_int_eq(rc, REWRITE_ETOOBIG);
	free(in);
}
END_TEST

/* Checks that <s> consists of CRLF lines of at most 998 octets, and
 * that each encoded word in it is at most 75 octets. */
static void
check_lines(const char *s)
{
	const char	*p, *crlf, *w, *e;

	for (p = s; *p != '\0'; p = crlf + 2) {
		crlf = strstr(p, "\r\n");
		ck_assert_ptr_nonnull(crlf);
		ck_assert_uint_le((size_t)(crlf - p), REWRITE_LINE_MAX);
		ck_assert_ptr_null(memchr(p, '\n', (size_t)(crlf - p)));
		ck_assert_ptr_null(memchr(p, '\r', (size_t)(crlf - p)));
	}
	for (w = s; (w = strstr(w, "=?UTF-8?Q?")) != NULL; w = e) {
		e = strstr(w + 10, "?=");
		ck_assert_ptr_nonnull(e);
		e += 2;
		ck_assert_uint_le((size_t)(e - w), 75);
	}
}

/* The value of the first field called <name> in <s>, unfolded. */
static char *
unfolded(const char *s, const char *name)
{
	char		 key[64];
	const char	*p, *q;
	char		*v;
	size_t		 n = 0;

	snprintf(key, sizeof(key), "\r\n%s:", name);
	p = strstr(s, key);
	ck_assert_ptr_nonnull(p);
	p += strlen(key);
	v = xmalloc(strlen(p) + 1);
	for (q = p; *q != '\0'; q++) {
		if (q[0] == '\r' && q[1] == '\n') {
			if (q[2] != ' ' && q[2] != '\t')
				break;
			q++;
			continue;
		}
		v[n++] = *q;
	}
	v[n] = '\0';
	return v;
}

/* A long display name, folded over many lines, is refolded in all
 * three fields without losing or adding a character. */
START_TEST(test_long_value_refolded)
{
	char		 in[8192], want[8192];
	char		*got, *v;
	size_t		 n = 0, w = 0, i;
	enum rewrite_rc	 rc;

	n += (size_t)snprintf(in, sizeof(in), "Received: x\r\nFrom:");
	w += (size_t)snprintf(want, sizeof(want), " ");
	for (i = 0; i < 120; i++) {
		n += (size_t)snprintf(in + n, sizeof(in) - n, "%s word%zu",
		    i % 10 == 9 ? "\r\n" : "", i);
		w += (size_t)snprintf(want + w, sizeof(want) - w, "%sword%zu",
		    i > 0 ? " " : "", i);
	}
	n += (size_t)snprintf(in + n, sizeof(in) - n, " <a@b.test>\r\n\r\n");
	got = run(in, n, NULL, VIA, &rc);
	ck_assert_int_eq(rc, REWRITE_OK);
	check_lines(got);
	v = unfolded(got, "X-Original-From");
	ck_assert_str_eq(v + 1, strcat(strcpy(in, want + 1), " <a@b.test>"));
	free(v);
	v = unfolded(got, "From");
	ck_assert_uint_lt(strlen(want) + 64, sizeof(in));
	strcat(strcat(strcat(strcpy(in, " \""), want + 1), VIA),
	    "\" <" ACCT ">");
	ck_assert_str_eq(v, in);
	free(v);
	free(got);
}
END_TEST

/* The display name of the From: line that starts <s>, decoded from
 * its Q encoded words (whitespace between them ignored, RFC 2047 6.2).
 * Static buffer. */
static const char *
q_decode(const char *s)
{
	static char	 out[4096];
	const char	*w, *e;
	size_t		 n = 0;
	unsigned int	 x;

	ck_assert(strncmp(s, "From: ", 6) == 0);
	for (w = s; (w = strstr(w, "=?UTF-8?Q?")) != NULL &&
	    w < strstr(s, "<"); w = e + 2) {
		e = strstr(w + 10, "?=");
		for (w += 10; w < e && n + 1 < sizeof(out); w++) {
			if (*w == '_')
				out[n++] = ' ';
			else if (*w == '=' && sscanf(w + 1, "%2X", &x) == 1) {
				out[n++] = (char)x;
				w += 2;
			} else
				out[n++] = *w;
		}
	}
	out[n] = '\0';
	return out;
}

/* A long UTF-8 name becomes several encoded words, each within 75
 * octets, split between characters. */
START_TEST(test_long_utf8_display)
{
	char		 name[700], *got;
	enum rewrite_rc	 rc;
	size_t		 i;

	for (i = 0; i + 2 <= 600; i += 2)
		memcpy(name + i, "\xc3\xa9", 2);
	name[600] = '\0';
	got = run("From: a@b.test\r\n\r\n", 18, name, VIA, &rc);
	ck_assert_int_eq(rc, REWRITE_OK);
	check_lines(got);
	ck_assert_str_eq(q_decode(got), strcat(name, VIA));
	free(got);
}
END_TEST

/* One token too long to fold under 998 once renamed: passed through. */
START_TEST(test_unfoldable)
{
	char		 in[1100];
	enum rewrite_rc	 rc;

	memset(in, 'a', sizeof(in));
	memcpy(in, "From: ", 6);
	memcpy(in + 990, "@b.test\r\n\r\n", 11);
	ck_assert_ptr_null(run(in, 1001, NULL, VIA, &rc));
	ck_assert_int_eq(rc, REWRITE_ELONGLINE);
}
END_TEST

START_TEST(test_params)
{
	struct rewrite_params	 pa = { "not an address", NULL, VIA };
	struct buf		 b = BUF_INIT, *out = &b;
	static const char	 in[] = "From: a@b.test\r\n\r\n";

	ck_assert_int_eq(rewrite_from(in, strlen(in), &pa, out),
	    REWRITE_EPARAM);
	pa.account = "<a@b.test>";
	ck_assert_int_eq(rewrite_from(in, strlen(in), &pa, out),
	    REWRITE_EPARAM);
	pa.account = ACCT;
	pa.display = "evil\r\nBcc: x@y.test";
	ck_assert_int_eq(rewrite_from(in, strlen(in), &pa, out),
	    REWRITE_EPARAM);
	pa.display = NULL;
	pa.suffix = "\n.";
	ck_assert_int_eq(rewrite_from(in, strlen(in), &pa, out),
	    REWRITE_EPARAM);
	pa.suffix = NULL;
	ck_assert_int_eq(rewrite_from(in, strlen(in), &pa, out), REWRITE_OK);
	ck_assert_uint_gt(out->len, 0);
	buf_free(out);
}
END_TEST

/* Control characters in a display name are encoded, never written. */
START_TEST(test_controls_encoded)
{
	char		*got;
	enum rewrite_rc	 rc;

	got = run("From: a@b.test\r\n\r\n", 18, "a\tb\001c\x7f", "", &rc);
	ck_assert_int_eq(rc, REWRITE_OK);
	ck_assert_ptr_nonnull(strstr(got,
	    "From: =?UTF-8?Q?a_b=01c=7F?= <" ACCT ">\r\n"));
	check_lines(got);
	free(got);
}
END_TEST

/* Hostile values: whatever comes, the result is CRLF lines within the
 * limit and the other fields stay. */
static const char *const hostile[] = {
	"From: ((((((((((((((((((((((((((((((a)\r\nX: y\r\n\r\n",
	"From: \\\r\nX: y\r\n\r\n",
	"From: <<<>>>\r\nX: y\r\n\r\n",
	"From: \"\\\r\nX: y\r\n\r\n",
	"From: [a@b.test\r\nX: y\r\n\r\n",
	"From: a@[1.2.3.4]\r\nX: y\r\n\r\n",
	"From: =?\r\nX: y\r\n\r\n",
	"From: =?x?Q?\?= <a@b.test>\r\nX: y\r\n\r\n",
	"From: ,,,\r\nX: y\r\n\r\n",
	"From:\r\nX: y\r\n\r\n",
	"From: \x01\x02\x7f <a@b.test>\r\nX: y\r\n\r\n",
	"From: \xff\xfe\xc3 <a@b.test>\r\nX: y\r\n\r\n",
	"From: a@b.test (=?UTF-8?Q?x?=)\r\nX: y\r\n\r\n",
	"From: \"a\r\n .\r\n \" <a@b.test>\r\nX: y\r\n\r\n",
};

START_TEST(test_hostile)
{
	char		*got;
	enum rewrite_rc	 rc;

	got = run(hostile[_i], strlen(hostile[_i]), NULL, VIA, &rc);
	ck_assert_int_eq(rc, REWRITE_OK);
	check_lines(got);
	ck_assert_ptr_nonnull(strstr(got, "\r\nX: y\r\n\r\n"));
	ck_assert(strncmp(got, "From: ", 6) == 0);
	ck_assert_ptr_nonnull(strstr(got, "<" ACCT ">\r\n"));
	free(got);
}
END_TEST

static Suite *
rewrite_suite(void)
{
	Suite	*s = suite_create("rewrite");
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
	ADD_LOOP("from", test_from, nitems(from_cases));
	ADD_LOOP("header-len", test_header_len, nitems(len_cases));
	ADD_CASE("nul", test_nul);
	ADD_CASE("line-limit", test_line_limit);
	ADD_CASE("block-limit", test_block_limit);
	ADD_CASE("long-value-refolded", test_long_value_refolded);
	ADD_CASE("long-utf8-display", test_long_utf8_display);
	ADD_CASE("unfoldable", test_unfoldable);
	ADD_CASE("params", test_params);
	ADD_CASE("controls-encoded", test_controls_encoded);
	ADD_LOOP("hostile", test_hostile, nitems(hostile));
#undef ADD_CASE
#undef ADD_LOOP
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(rewrite_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
